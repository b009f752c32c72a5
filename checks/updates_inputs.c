/*
 * What an apt simulation's answer depends on, as one number: see
 * updates_inputs_fingerprint() in updates.h.  Not a cryptographic hash:
 * it only has to change when a file changes, and the files are local.
 */
#include "updates.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FNV_OFFSET 0xcbf29ce484222325ULL
#define FNV_PRIME 0x100000001b3ULL

static uint64_t fnv1a(uint64_t h, const void *data, size_t len)
{
	const unsigned char *p = data;

	for (size_t i = 0; i < len; i++) {
		h ^= p[i];
		h *= FNV_PRIME;
	}
	return h;
}

/*
 * One file's part: its path (relative to the input, so that the sum does
 * not depend on where the walk started) with what stat says, or the
 * errno when there is nothing to stat.  The parts are added, so the
 * order in which a directory lists its entries does not matter.
 */
static uint64_t entry_part(const char *base, const char *name, int err,
			   const struct stat *st)
{
	uint64_t h = fnv1a(FNV_OFFSET, base, strlen(base) + 1);

	h = fnv1a(h, name, strlen(name) + 1);
	if (err != 0)
		return fnv1a(h, &err, sizeof(err));
	h = fnv1a(h, &st->st_dev, sizeof(st->st_dev));
	h = fnv1a(h, &st->st_ino, sizeof(st->st_ino));
	h = fnv1a(h, &st->st_mode, sizeof(st->st_mode));
	h = fnv1a(h, &st->st_size, sizeof(st->st_size));
	h = fnv1a(h, &st->st_mtim.tv_sec, sizeof(st->st_mtim.tv_sec));
	return fnv1a(h, &st->st_mtim.tv_nsec, sizeof(st->st_mtim.tv_nsec));
}

/* apt's own lock files change without changing any answer. */
static bool ignored(const char *name)
{
	return name[0] == '.' || strcmp(name, "lock") == 0 ||
	       strcmp(name, "partial") == 0;
}

/*
 * The entries of the directory dfd (named rel below the input base),
 * descending depth more levels; at the last level directories are left
 * out, files and links count.
 */
static uint64_t walk(int dfd, const char *base, const char *rel, int depth)
{
	uint64_t sum = 0;
	struct dirent *de;
	DIR *d = fdopendir(dfd);

	if (d == NULL) {
		close(dfd);
		return entry_part(base, rel, errno, NULL);
	}
	while ((de = readdir(d)) != NULL) {
		char name[512];
		struct stat st;

		if (ignored(de->d_name))
			continue;
		snprintf(name, sizeof(name), "%s/%s", rel, de->d_name);
		if (fstatat(dirfd(d), de->d_name, &st, 0) < 0) {
			sum += entry_part(base, name, errno, NULL);
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			sum += entry_part(base, name, 0, &st);
		} else if (depth > 1) {
			int sub = openat(dirfd(d), de->d_name,
					 O_RDONLY | O_DIRECTORY | O_CLOEXEC);

			sum += sub < 0 ? entry_part(base, name, errno, NULL)
				       : walk(sub, base, name, depth - 1);
		}
	}
	closedir(d);
	return sum;
}

uint64_t updates_inputs_fingerprint(const struct updates_input *inputs,
				    size_t n)
{
	uint64_t sum = FNV_OFFSET;

	for (size_t i = 0; i < n; i++) {
		const struct updates_input *in = &inputs[i];
		struct stat st;
		int fd;

		if (in->path == NULL || in->path[0] == '\0')
			continue;
		if (stat(in->path, &st) < 0) {
			sum += entry_part(in->path, "", errno, NULL);
			continue;
		}
		if (in->depth == 0 || !S_ISDIR(st.st_mode)) {
			sum += entry_part(in->path, "", 0, &st);
			continue;
		}
		fd = open(in->path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		sum += fd < 0 ? entry_part(in->path, "", errno, NULL)
			      : walk(fd, in->path, "", in->depth);
	}
	return sum;
}
