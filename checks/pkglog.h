/*
 * Package upgrades as the package manager logged them, shared by the
 * updates check (recently upgraded packages) and the services check (the
 * upgrades that preceded a unit failure).
 *
 * Two logs, read together because each misses something: apt's
 * /var/log/apt/history.log (a paragraph per transaction: Start-Date,
 * Upgrade: pkg:arch (old, new), ..., End-Date) knows only apt's work;
 * /var/log/dpkg.log ("upgrade pkg:arch old new", later "status installed
 * pkg:arch new", one line each) also sees `dpkg -i` and has the exact time
 * a package was in place.  The same upgrade found in both is kept once,
 * with dpkg's time.  Rotated files (.1, .1.gz, .2.gz) are read too when
 * their modification time says they may hold records of the window.
 *
 * Everything is bounded: a plain file is read from at most max_bytes
 * before its end, a compressed one up to PKGLOG_GZ_MAX decompressed bytes,
 * lines longer than PKGLOG_LINE_MAX are skipped, and at most max records
 * are kept: the newest, whichever log they come from, and records older
 * than the window are dropped while reading.  Times in both logs are
 * local time.
 */
#ifndef TOCSIN_PKGLOG_H
#define TOCSIN_PKGLOG_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define PKGLOG_LINE_MAX (256 * 1024)
#define PKGLOG_GZ_MAX (64u * 1024 * 1024)
/* An upgrade logged this long after a failure still counts: dpkg logs
 * "status installed" after the postinst that may have restarted (and
 * broken) the service. */
#define PKGLOG_AFTER_SLACK_MS (5 * 60 * 1000)

enum pkglog_source {
	PKGLOG_APT,
	PKGLOG_DPKG,
};

struct pkglog_upgrade {
	int64_t at_ms;  /* wall clock: when the new version was in place */
	char *package;  /* without the architecture */
	char *arch;     /* "amd64", "all", "" when not logged */
	char *from;
	char *to;
	enum pkglog_source source;
};

struct pkglog {
	struct pkglog_upgrade *v; /* oldest first after pkglog_finish() */
	size_t n;
	size_t cap;
	size_t max;
	int64_t since_ms;      /* older records are dropped by pkglog_finish() */
	size_t dropped;        /* records dropped for the max limit */
	size_t skipped_lines;  /* lines too long or not understood */
	/* history.log parser state: the open transaction */
	int64_t txn_start_ms;
	size_t txn_first;
};

void pkglog_init(struct pkglog *log, int64_t since_ms, size_t max);
void pkglog_clear(struct pkglog *log);

/* Feed one line of each log (no trailing newline needed). */
void pkglog_history_line(struct pkglog *log, const char *line);
void pkglog_dpkg_line(struct pkglog *log, const char *line);
/* Sort by time, drop records before since_ms, merge twins. */
void pkglog_finish(struct pkglog *log);

/*
 * Read path and its rotations into log.  An unreadable file is -errno
 * with err saying which file and why; a missing one holds nothing (a
 * system that never ran apt has no history.log).  Call pkglog_finish()
 * after the last file.
 */
int pkglog_read_history(struct pkglog *log, const char *path,
			size_t max_bytes, char *err, size_t errlen);
int pkglog_read_dpkg(struct pkglog *log, const char *path, size_t max_bytes,
		     char *err, size_t errlen);

/*
 * The upgrades of the window before when_ms (and up to
 * PKGLOG_AFTER_SLACK_MS after it): *ret_first is the index of the first,
 * the return value the count.
 */
size_t pkglog_window(const struct pkglog *log, int64_t when_ms,
		     int64_t window_ms, size_t *ret_first);
/*
 * "4 min after the upgrade of libssl3 3.0.11 -> 3.0.13 and 2 other
 * packages" for the records [first, first + n), naming the latest one at
 * or before when_ms; "during the upgrade of ..." when all came later.
 */
void pkglog_describe(const struct pkglog *log, size_t first, size_t n,
		     int64_t when_ms, char *buf, size_t size);
/* [{"package", "arch", "from", "to", "at"}...], newest first, at most max. */
json_t *pkglog_json(const struct pkglog *log, size_t first, size_t n,
		    size_t max);

/*
 * Both logs of a host, re-read only when one of the files changed: what a
 * check keeps between rounds.
 */
struct pkglog_cache {
	char *history_path;  /* NULL or "" to ignore that log */
	char *dpkg_path;
	size_t max_bytes;
	size_t max_records;
	struct pkglog log;
	bool loaded;
	int error;           /* -errno of the last read, 0 when fine */
	char why[512];       /* what went wrong, when error < 0 */
	/* what the files looked like when read */
	struct pkglog_stamp {
		dev_t dev;
		ino_t ino;
		off_t size;
		int64_t mtime_ns;
	} stamps[2];
	int64_t loaded_since_ms;
};

struct cfg;
struct cfg_node;

/*
 * Initialise c from a check's configuration keys history_log, dpkg_log
 * (absolute paths, "" to ignore one) and log_max_bytes, with Debian's
 * paths and 4 MiB as defaults.  Errors go to cfg.
 */
void pkglog_cache_configure(struct pkglog_cache *c, struct cfg *cfg,
			    const struct cfg_node *node);
/* Takes copies of the paths. */
void pkglog_cache_init(struct pkglog_cache *c, const char *history_path,
		       const char *dpkg_path, size_t max_bytes,
		       size_t max_records);
void pkglog_cache_free(struct pkglog_cache *c);
/*
 * Make c->log hold the upgrades since since_ms.  0 when it does (reading
 * only when a file changed or since_ms reaches further back than the last
 * read), else -errno with c->why set; c->log then holds what could be read.
 */
int pkglog_cache_refresh(struct pkglog_cache *c, int64_t since_ms);

#endif
