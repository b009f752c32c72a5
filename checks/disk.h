/*
 * Disk space and inodes: the pure part of the disk check, exposed for
 * its unit tests.
 */
#ifndef TOCSIN_DISK_H
#define TOCSIN_DISK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "check.h"

/* A threshold that is not set is < 0 (percent) or 0 (bytes). */
struct disk_thresholds {
	double warning_pct;
	double critical_pct;
	uint64_t warning_free;
	uint64_t critical_free;
	double inodes_warning_pct;
	double inodes_critical_pct;
};

struct disk_usage {
	uint64_t total;     /* bytes in the file system */
	uint64_t used;      /* bytes in use */
	uint64_t avail;     /* bytes an unprivileged user can still write */
	uint64_t inodes;    /* 0 when the file system has no inode limit */
	uint64_t inodes_free;
};

/* Used share as df(1) shows it: used / (used + avail), reserve excluded. */
double disk_used_percent(const struct disk_usage *u);
double disk_inodes_used_percent(const struct disk_usage *u);

/*
 * Rate a mount: returns the state and writes the one-line summary
 * ("/srv: 93.1% used, 6.2 GiB free of 90 GiB") into summary.
 */
enum check_state disk_evaluate(const char *mount,
			       const struct disk_thresholds *t,
			       const struct disk_usage *u, char *summary,
			       size_t size);

/* True for file system types that hold no user data (tmpfs, proc, ...). */
bool disk_fstype_is_pseudo(const char *fstype);
/* True for network file systems (nfs, cifs, ...), which can hang statvfs. */
bool disk_fstype_is_remote(const char *fstype);

#endif
