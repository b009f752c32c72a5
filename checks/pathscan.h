/*
 * The newest files and directories a path pattern matches, found with
 * bounded work and memory, for the backup check.
 *
 * glob(3) is the obvious tool and the wrong one here: GLOB_ERR makes one
 * unreadable subdirectory fail the whole match (without it, such errors
 * vanish), and it collects every match in memory before one can be looked
 * at.  This walks the pattern one component at a time (readdir and
 * fnmatch where a component has wildcards), stops after max_matches,
 * keeps only the `keep` newest, and counts what it could not read (and
 * names the first) instead of failing.
 *
 * Pattern syntax as glob(7) without braces or tilde: '*', '?', '[...]'
 * and '\' escapes within a component, a leading '.' matched only by name,
 * and wildcards in directory components too (/srv/backup/<star>/daily/<star>.tar).
 */
#ifndef TOCSIN_PATHSCAN_H
#define TOCSIN_PATHSCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Directory entries read per scan at most, whatever matches. */
#define PATHSCAN_ENTRIES_MAX 1000000

struct pathscan_file {
	char *path;
	int64_t mtime_ms;
	uint64_t size;
	bool regular; /* else a directory */
};

struct pathscan {
	struct pathscan_file *newest; /* newest first, at most keep */
	size_t n;
	size_t matches;      /* files and directories that matched */
	bool capped;         /* stopped at max_matches or PATHSCAN_ENTRIES_MAX */
	size_t unreadable;   /* directories and files that could not be read */
	char first_bad[512]; /* the first of them */
	int first_errno;
};

/*
 * Scan for the absolute pattern into *ret (which the caller clears with
 * pathscan_clear).  Never fails: what cannot be read is counted in ret.
 */
void pathscan_run(const char *pattern, size_t max_matches, size_t keep,
		  struct pathscan *ret);
void pathscan_clear(struct pathscan *s);

#endif
