/*
 * The agent's children: the subreaper setting, the registry of owned
 * children and the list of the others (children.h).
 */
#include "children.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/prctl.h>
#include <unistd.h>

#include "util.h"

/* A handful: the running plugins, apt-get, the deliverer. */
static pid_t *owned;
static size_t nowned, owned_cap;

int children_adopt_orphans(void)
{
	return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) < 0 ? -errno : 0;
}

void children_own(pid_t pid)
{
	if (nowned == owned_cap) {
		owned_cap = owned_cap ? owned_cap * 2 : 8;
		owned = xreallocarray(owned, owned_cap, sizeof(*owned));
	}
	owned[nowned++] = pid;
}

void children_disown(pid_t pid)
{
	for (size_t i = 0; i < nowned; i++) {
		if (owned[i] == pid) {
			owned[i] = owned[--nowned];
			return;
		}
	}
}

bool children_owned(pid_t pid)
{
	for (size_t i = 0; i < nowned; i++)
		if (owned[i] == pid)
			return true;
	return false;
}

/* Append the unowned pids that one task's children file lists. */
static int read_task_children(int taskdir, const char *tid, pid_t **list,
			      size_t *n, size_t *cap)
{
	char path[NAME_MAX + 16];
	long pid;
	FILE *fp;
	int fd;

	snprintf(path, sizeof(path), "%s/children", tid);
	fd = openat(taskdir, path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT ? 0 : -errno; /* a thread that ended */
	fp = fdopen(fd, "r");
	if (fp == NULL) {
		close(fd);
		return -ENOMEM;
	}
	while (fscanf(fp, "%ld", &pid) == 1) {
		if (pid <= 0 || children_owned((pid_t)pid))
			continue;
		if (*n == *cap) {
			*cap = *cap ? *cap * 2 : 16;
			*list = xreallocarray(*list, *cap, sizeof(**list));
		}
		(*list)[(*n)++] = (pid_t)pid;
	}
	fclose(fp);
	return 0;
}

int children_unowned(pid_t **ret, size_t *ret_n)
{
	pid_t *list = NULL;
	size_t n = 0, cap = 0;
	struct dirent *de;
	DIR *dir = opendir("/proc/self/task");
	int r = 0;

	if (dir == NULL)
		return -errno;
	while (r == 0 && (de = readdir(dir)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		r = read_task_children(dirfd(dir), de->d_name, &list, &n, &cap);
	}
	closedir(dir);
	if (r < 0) {
		free(list);
		return r;
	}
	*ret = list;
	*ret_n = n;
	return 0;
}
