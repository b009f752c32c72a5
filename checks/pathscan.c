/*
 * The newest matches of a path pattern, bounded; see pathscan.h.
 */
#include "pathscan.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../common/util.h"

#define COMPONENTS_MAX 64

struct walk {
	char *comps[COMPONENTS_MAX];
	size_t ncomps;
	size_t max_matches;
	size_t keep;
	size_t entries;
	struct pathscan *s;
	char path[PATH_MAX];
};

static bool has_wildcard(const char *comp)
{
	return strpbrk(comp, "*?[\\") != NULL;
}

static void note_unreadable(struct pathscan *s, const char *path, int err)
{
	if (s->unreadable++ > 0)
		return;
	strlcpy_safe(s->first_bad, path[0] ? path : "/", sizeof(s->first_bad));
	s->first_errno = err;
}

/* Keep the file among the newest (newest first), if it is one of them. */
static void keep_newest(struct walk *w, const struct stat *st)
{
	struct pathscan *s = w->s;
	int64_t mtime = (int64_t)st->st_mtim.tv_sec * 1000 +
			st->st_mtim.tv_nsec / 1000000;
	size_t at = s->n;

	while (at > 0 && s->newest[at - 1].mtime_ms < mtime)
		at--;
	if (at == w->keep)
		return;
	if (s->n == w->keep)
		free(s->newest[--s->n].path);
	memmove(&s->newest[at + 1], &s->newest[at],
		(s->n - at) * sizeof(*s->newest));
	s->newest[at] = (struct pathscan_file){
		.path = xstrdup(w->path),
		.mtime_ms = mtime,
		.size = (uint64_t)st->st_size,
		.regular = S_ISREG(st->st_mode),
	};
	s->n++;
}

/* w->path matched the whole pattern: a file or a directory counts. */
static void consider(struct walk *w)
{
	struct stat st;

	if (stat(w->path, &st) < 0) {
		/* gone meanwhile (rotated away), or a dangling link: no match */
		if (errno != ENOENT)
			note_unreadable(w->s, w->path, errno);
		return;
	}
	if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode))
		return;
	if (w->s->matches == w->max_matches) {
		w->s->capped = true;
		return;
	}
	w->s->matches++;
	keep_newest(w, &st);
}

/* Append "/name" to w->path at len; false when it would be too long. */
static bool append(struct walk *w, size_t len, const char *name)
{
	size_t n = strlen(name);

	if (len + 1 + n >= sizeof(w->path))
		return false;
	w->path[len] = '/';
	memcpy(w->path + len + 1, name, n + 1);
	return true;
}

static void walk(struct walk *w, size_t len, size_t i);

/* Go on from w->path (len + 1 + strlen(name) long now) to component i. */
static void step(struct walk *w, size_t len, const char *name, size_t i)
{
	if (!append(w, len, name)) {
		note_unreadable(w->s, w->path, ENAMETOOLONG);
		return;
	}
	if (i + 1 == w->ncomps)
		consider(w);
	else
		walk(w, len + 1 + strlen(name), i + 1);
	w->path[len] = '\0';
}

/* Match component i and what follows in the directory w->path. */
static void walk(struct walk *w, size_t len, size_t i)
{
	const char *comp = w->comps[i];
	struct dirent *de;
	DIR *d;

	if (!has_wildcard(comp)) {
		step(w, len, comp, i);
		return;
	}
	d = opendir(len ? w->path : "/");
	if (d == NULL) {
		/* a match of an earlier wildcard that is no directory */
		if (errno != ENOENT && errno != ENOTDIR)
			note_unreadable(w->s, w->path, errno);
		return;
	}
	while (!w->s->capped && (de = readdir(d)) != NULL) {
		if (++w->entries > PATHSCAN_ENTRIES_MAX) {
			w->s->capped = true;
			break;
		}
		if (strcmp(de->d_name, ".") == 0 || strcmp(de->d_name, "..") == 0 ||
		    fnmatch(comp, de->d_name, FNM_PERIOD) != 0)
			continue;
		step(w, len, de->d_name, i);
	}
	closedir(d);
}

void pathscan_run(const char *pattern, size_t max_matches, size_t keep,
		  struct pathscan *ret)
{
	struct walk *w = xcalloc(1, sizeof(*w));
	char *copy = xstrdup(pattern), *save = NULL;

	*ret = (struct pathscan){ 0 };
	w->s = ret;
	w->max_matches = max_matches;
	w->keep = keep ? keep : 1;
	ret->newest = xcalloc(w->keep, sizeof(*ret->newest));
	for (char *c = strtok_r(copy, "/", &save); c != NULL;
	     c = strtok_r(NULL, "/", &save)) {
		if (w->ncomps == COMPONENTS_MAX) {
			note_unreadable(ret, pattern, ENAMETOOLONG);
			goto out;
		}
		w->comps[w->ncomps++] = c;
	}
	if (w->ncomps > 0)
		walk(w, 0, 0);
out:
	free(copy);
	free(w);
}

void pathscan_clear(struct pathscan *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->newest[i].path);
	free(s->newest);
	*s = (struct pathscan){ 0 };
}
