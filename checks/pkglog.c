/*
 * Package upgrades from apt's history.log and dpkg.log, see pkglog.h.
 */
#include "pkglog.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <zlib.h>

#include "../common/config.h"
#include "../common/utf8.h"
#include "../common/util.h"

/* Two records of one upgrade, one per log, are this close in time. */
#define TWIN_MS (60 * 60 * 1000)
/* How far back "status installed" looks for its "upgrade" line. */
#define INSTALLED_LOOKBACK 256

void pkglog_init(struct pkglog *log, int64_t since_ms, size_t max)
{
	*log = (struct pkglog){ .since_ms = since_ms, .max = max ? max : 1 };
}

static void upgrade_free(struct pkglog_upgrade *u)
{
	free(u->package);
	free(u->arch);
	free(u->from);
	free(u->to);
}

void pkglog_clear(struct pkglog *log)
{
	for (size_t i = 0; i < log->n; i++)
		upgrade_free(&log->v[i]);
	free(log->v);
	pkglog_init(log, log->since_ms, log->max);
}

/*
 * "2026-05-09  07:28:46" or "2026-05-09 07:28:46", local time, into
 * milliseconds since the epoch.  Returns the rest of the text, NULL when
 * it does not start with such a time.
 */
static const char *parse_local_time(const char *s, int64_t *ret_ms)
{
	struct tm tm = { .tm_isdst = -1 };
	int n = 0;
	time_t t;

	if (sscanf(s, "%4d-%2d-%2d %2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon,
		   &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6 ||
	    n == 0)
		return NULL;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	t = mktime(&tm);
	if (t == (time_t)-1)
		return NULL;
	*ret_ms = (int64_t)t * 1000;
	return s + n;
}

static int cmp_ms(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/*
 * Make room while reading: drop the records older than the window (with
 * TWIN_MS of slack, since a time may still move to a later End-Date or
 * "status installed"), then the oldest beyond max, whatever file they
 * came from: the newest records stay, the order of reading does not
 * matter.  The open transaction and the last INSTALLED_LOOKBACK records
 * are left alone, since their times may still change.  O(n log n), and
 * called only when the array is full, so O(log n) per record.
 */
static void prune(struct pkglog *log)
{
	size_t fixed = log->n > INSTALLED_LOOKBACK ? log->n - INSTALLED_LOOKBACK : 0;
	size_t excess, kept = 0, dropped_old = 0, dropped_max = 0;
	int64_t *times, cut = INT64_MIN, floor_ms;

	if (log->txn_first < fixed)
		fixed = log->txn_first;
	if (fixed == 0)
		return;
	floor_ms = log->since_ms > INT64_MIN + TWIN_MS ? log->since_ms - TWIN_MS
						       : INT64_MIN;
	excess = log->n > log->max ? log->n - log->max : 0;
	if (excess > fixed)
		excess = fixed;
	if (excess > 0) {
		/* the time below which the oldest `excess` records lie */
		times = xcalloc(fixed, sizeof(*times));
		for (size_t i = 0; i < fixed; i++)
			times[i] = log->v[i].at_ms;
		qsort(times, fixed, sizeof(*times), cmp_ms);
		cut = times[excess - 1];
		free(times);
	}
	for (size_t i = 0; i < log->n; i++) {
		struct pkglog_upgrade *u = &log->v[i];

		if (i < fixed && u->at_ms < floor_ms) {
			dropped_old++;
		} else if (i < fixed && dropped_max < excess && u->at_ms <= cut) {
			dropped_max++;
		} else {
			log->v[kept++] = *u;
			continue;
		}
		upgrade_free(u);
	}
	log->n = kept;
	log->txn_first -= dropped_old + dropped_max;
	log->dropped += dropped_max;
}

/* A new record at the end, which the caller fills in. */
static struct pkglog_upgrade *add_record(struct pkglog *log)
{
	if (log->n == log->cap && log->n >= 2 * log->max)
		prune(log);
	if (log->n == log->cap) {
		log->cap = log->cap ? log->cap * 2 : 64;
		log->v = xreallocarray(log->v, log->cap, sizeof(*log->v));
	}
	return &log->v[log->n++];
}

/*
 * "libssl3:amd64" -> package "libssl3", arch "amd64".  Every field of a
 * log line is kept as valid UTF-8 (utf8_dup): it goes into summaries and
 * JSON, and a log file may hold any bytes.
 */
static void set_name(struct pkglog_upgrade *u, const char *name, size_t len)
{
	const char *colon = memchr(name, ':', len);
	size_t plen = colon ? (size_t)(colon - name) : len;

	u->package = utf8_dup(name, plen);
	u->arch = colon ? utf8_dup(colon + 1, len - plen - 1) : xstrdup("");
}

/*
 * The list after "Upgrade: ": "a:amd64 (1.0, 1.1), b:all (2, 3)".
 * Returns false when it is not that shape; records added so far stay.
 */
static bool parse_upgrade_list(struct pkglog *log, const char *s)
{
	while (*s != '\0') {
		const char *name, *open, *comma, *close;
		struct pkglog_upgrade *u;

		while (*s == ' ' || *s == ',')
			s++;
		if (*s == '\0')
			break;
		name = s;
		open = strstr(s, " (");
		if (open == NULL)
			return false;
		close = strchr(open, ')');
		comma = memchr(open, ',', close ? (size_t)(close - open) : 0);
		if (close == NULL || comma == NULL || open == name)
			return false;
		u = add_record(log);
		*u = (struct pkglog_upgrade){
			.at_ms = log->txn_start_ms,
			.source = PKGLOG_APT,
		};
		set_name(u, name, (size_t)(open - name));
		u->from = utf8_dup(open + 2, (size_t)(comma - open - 2));
		comma++;
		while (*comma == ' ')
			comma++;
		u->to = utf8_dup(comma, (size_t)(close - comma));
		s = close + 1;
	}
	return true;
}

void pkglog_history_line(struct pkglog *log, const char *line)
{
	int64_t t;

	if (strncmp(line, "Start-Date:", 11) == 0) {
		if (parse_local_time(line + 11 + strspn(line + 11, " "), &t) == NULL) {
			log->skipped_lines++;
			return;
		}
		log->txn_start_ms = t;
		log->txn_first = log->n;
	} else if (strncmp(line, "End-Date:", 9) == 0) {
		/* The transaction's packages were in place by its end. */
		if (parse_local_time(line + 9 + strspn(line + 9, " "), &t) == NULL) {
			log->skipped_lines++;
			return;
		}
		for (size_t i = log->txn_first; i < log->n; i++)
			log->v[i].at_ms = t;
		log->txn_first = log->n;
	} else if (strncmp(line, "Upgrade:", 8) == 0) {
		if (log->txn_start_ms == 0 || !parse_upgrade_list(log, line + 8))
			log->skipped_lines++;
	}
}

/* "status installed pkg ver": the upgrade of pkg to ver is complete. */
static void mark_installed(struct pkglog *log, const char *pkg, size_t len,
			   const char *ver, int64_t t)
{
	size_t stop = log->n > INSTALLED_LOOKBACK ? log->n - INSTALLED_LOOKBACK : 0;
	const char *colon = memchr(pkg, ':', len);
	size_t plen = colon ? (size_t)(colon - pkg) : len;

	for (size_t i = log->n; i > stop; i--) {
		struct pkglog_upgrade *u = &log->v[i - 1];

		if (u->source == PKGLOG_DPKG && strlen(u->package) == plen &&
		    strncmp(u->package, pkg, plen) == 0 &&
		    strcmp(u->to, ver) == 0) {
			u->at_ms = t;
			return;
		}
	}
}

void pkglog_dpkg_line(struct pkglog *log, const char *line)
{
	char action[32], status[32], pkg[256], v1[256], v2[256];
	struct pkglog_upgrade *u;
	const char *rest;
	int64_t t;

	rest = parse_local_time(line, &t);
	if (rest == NULL) {
		log->skipped_lines++;
		return;
	}
	if (sscanf(rest, " %31s", action) != 1)
		return;
	if (strcmp(action, "upgrade") == 0) {
		if (sscanf(rest, " %*s %255s %255s %255s", pkg, v1, v2) != 3) {
			log->skipped_lines++;
			return;
		}
		u = add_record(log);
		*u = (struct pkglog_upgrade){ .at_ms = t, .source = PKGLOG_DPKG };
		set_name(u, pkg, strlen(pkg));
		u->from = utf8_dup(v1, strlen(v1));
		u->to = utf8_dup(v2, strlen(v2));
		log->txn_first = log->n; /* dpkg.log has no transactions */
	} else if (strcmp(action, "status") == 0) {
		if (sscanf(rest, " %*s %31s %255s %255s", status, pkg, v1) == 3 &&
		    strcmp(status, "installed") == 0)
			mark_installed(log, pkg, strlen(pkg), v1, t);
	}
}

static int cmp_identity(const void *a, const void *b)
{
	const struct pkglog_upgrade *x = a, *y = b;
	int c = strcmp(x->package, y->package);

	if (c == 0)
		c = strcmp(x->from, y->from);
	if (c == 0)
		c = strcmp(x->to, y->to);
	if (c == 0)
		c = (x->at_ms > y->at_ms) - (x->at_ms < y->at_ms);
	return c;
}

static int cmp_time(const void *a, const void *b)
{
	const struct pkglog_upgrade *x = a, *y = b;
	int c = (x->at_ms > y->at_ms) - (x->at_ms < y->at_ms);

	return c ? c : strcmp(x->package, y->package);
}

static bool same_upgrade(const struct pkglog_upgrade *x,
			 const struct pkglog_upgrade *y)
{
	return strcmp(x->package, y->package) == 0 &&
	       strcmp(x->from, y->from) == 0 && strcmp(x->to, y->to) == 0;
}

/* An apt record whose dpkg twin is within TWIN_MS says nothing new. */
static bool has_dpkg_twin(const struct pkglog *log, size_t i)
{
	const struct pkglog_upgrade *u = &log->v[i];

	for (size_t j = i; j > 0 && same_upgrade(&log->v[j - 1], u); j--)
		if (log->v[j - 1].source == PKGLOG_DPKG &&
		    llabs(log->v[j - 1].at_ms - u->at_ms) <= TWIN_MS)
			return true;
	for (size_t j = i + 1; j < log->n && same_upgrade(&log->v[j], u); j++)
		if (log->v[j].source == PKGLOG_DPKG &&
		    llabs(log->v[j].at_ms - u->at_ms) <= TWIN_MS)
			return true;
	return false;
}

void pkglog_finish(struct pkglog *log)
{
	size_t kept = 0;
	bool *drop;

	if (log->n == 0)
		return;
	qsort(log->v, log->n, sizeof(*log->v), cmp_identity);
	drop = xcalloc(log->n, sizeof(*drop));
	for (size_t i = 0; i < log->n; i++)
		drop[i] = log->v[i].at_ms < log->since_ms ||
			  (log->v[i].source == PKGLOG_APT && has_dpkg_twin(log, i));
	for (size_t i = 0; i < log->n; i++) {
		if (drop[i])
			upgrade_free(&log->v[i]);
		else
			log->v[kept++] = log->v[i];
	}
	free(drop);
	log->n = kept;
	qsort(log->v, log->n, sizeof(*log->v), cmp_time);
	if (log->n > log->max) {
		/* the newest max stay, from whichever log */
		size_t excess = log->n - log->max;

		for (size_t i = 0; i < excess; i++)
			upgrade_free(&log->v[i]);
		memmove(log->v, log->v + excess, log->max * sizeof(*log->v));
		log->n = log->max;
		log->dropped += excess;
	}
	if (log->n > 0 && log->cap > 2 * log->n) {
		/* reading needed room for twice max; the window is kept */
		log->cap = log->n;
		log->v = xreallocarray(log->v, log->cap, sizeof(*log->v));
	}
	log->txn_first = log->n;
}

/* --- reading files ------------------------------------------------------- */

typedef void (*line_fn)(struct pkglog *log, const char *line);

/* Splits a byte stream into lines; lines over PKGLOG_LINE_MAX are skipped. */
struct line_splitter {
	struct pkglog *log;
	line_fn fn;
	char *buf;
	size_t len;
	size_t cap;
	bool overlong;   /* inside a line that is being skipped */
	bool skip_first; /* started mid-file: the first line is partial */
};

static void splitter_feed(struct line_splitter *sp, const char *data, size_t n)
{
	while (n > 0) {
		const char *nl = memchr(data, '\n', n);
		size_t take = nl ? (size_t)(nl - data) : n;

		if (!sp->overlong && sp->len + take > PKGLOG_LINE_MAX) {
			sp->overlong = true;
			sp->len = 0;
		}
		if (!sp->overlong) {
			if (sp->len + take + 1 > sp->cap) {
				while (sp->len + take + 1 > sp->cap)
					sp->cap = sp->cap ? sp->cap * 2 : 4096;
				sp->buf = xreallocarray(sp->buf, sp->cap, 1);
			}
			memcpy(sp->buf + sp->len, data, take);
			sp->len += take;
		}
		if (nl == NULL)
			return;
		if (sp->overlong) {
			sp->log->skipped_lines++;
		} else if (!sp->skip_first) {
			sp->buf[sp->len] = '\0';
			sp->fn(sp->log, sp->buf);
		}
		sp->overlong = sp->skip_first = false;
		sp->len = 0;
		data = nl + 1;
		n -= take + 1;
	}
}

static void splitter_end(struct line_splitter *sp)
{
	static const char nl = '\n';

	if (sp->len > 0 || sp->overlong)
		splitter_feed(sp, &nl, 1);
	free(sp->buf);
}

/* The last max_bytes of a plain file. */
static int read_plain(int fd, size_t max_bytes, struct line_splitter *sp)
{
	char buf[65536];
	struct stat st;
	ssize_t n;

	if (fstat(fd, &st) < 0)
		return -errno;
	if (S_ISDIR(st.st_mode))
		return -EISDIR;
	if (st.st_size > (off_t)max_bytes) {
		if (lseek(fd, st.st_size - (off_t)max_bytes, SEEK_SET) < 0)
			return -errno;
		sp->skip_first = true;
	}
	for (size_t total = 0; total < max_bytes; total += (size_t)n) {
		size_t want = max_bytes - total < sizeof(buf) ? max_bytes - total
							      : sizeof(buf);

		n = read(fd, buf, want);
		if (n < 0 && errno == EINTR) {
			n = 0;
			continue;
		}
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		splitter_feed(sp, buf, (size_t)n);
	}
	return 0;
}

/*
 * A gzip file from its start, up to PKGLOG_GZ_MAX decompressed bytes.
 * Takes fd: it is closed in every case.
 */
static int read_gz(int fd, struct line_splitter *sp)
{
	char buf[65536];
	gzFile gz = gzdopen(fd, "rb");
	size_t total = 0;
	int n, r = 0;

	if (gz == NULL) {
		close(fd); /* gzclose would have, had there been a gz */
		return -ENOMEM;
	}
	while (total < PKGLOG_GZ_MAX && (n = gzread(gz, buf, sizeof(buf))) > 0) {
		splitter_feed(sp, buf, (size_t)n);
		total += (size_t)n;
	}
	if (total < PKGLOG_GZ_MAX) {
		int zerr;

		gzerror(gz, &zerr);
		if (zerr != Z_OK)
			r = -EBADMSG;
	}
	gzclose(gz); /* closes fd */
	return r;
}

static int read_one(struct pkglog *log, line_fn fn, const char *path,
		    bool gz, size_t max_bytes)
{
	struct line_splitter sp = { .log = log, .fn = fn };
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	int r;

	if (fd < 0)
		return -errno;
	if (gz) {
		r = read_gz(fd, &sp);
	} else {
		r = read_plain(fd, max_bytes, &sp);
		close(fd);
	}
	splitter_end(&sp);
	return r;
}

/*
 * path's rotations, oldest first, then path itself.  A rotation last
 * written before since_ms holds nothing newer and is skipped.
 */
static int read_log(struct pkglog *log, line_fn fn, const char *path,
		    size_t max_bytes, char *err, size_t errlen)
{
	static const struct {
		const char *suffix;
		bool gz;
	} rotations[] = { { ".2.gz", true }, { ".1.gz", true }, { ".1", false } };
	int r;

	for (size_t i = 0; i < ARRAY_SIZE(rotations); i++) {
		char *p = xasprintf("%s%s", path, rotations[i].suffix);
		struct stat st;

		if (stat(p, &st) == 0 &&
		    (int64_t)st.st_mtime * 1000 >= log->since_ms) {
			r = read_one(log, fn, p, rotations[i].gz, max_bytes);
			if (r < 0) {
				snprintf(err, errlen, "cannot read %s: %s", p,
					 strerror(-r));
				free(p);
				return r;
			}
		}
		free(p);
		/* a transaction does not continue across files */
		log->txn_start_ms = 0;
		log->txn_first = log->n;
	}
	r = read_one(log, fn, path, false, max_bytes);
	/* a system that never ran apt (a fresh image) has no log yet */
	if (r == -ENOENT)
		r = 0;
	if (r < 0)
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(-r));
	log->txn_start_ms = 0;
	log->txn_first = log->n;
	return r;
}

int pkglog_read_history(struct pkglog *log, const char *path,
			size_t max_bytes, char *err, size_t errlen)
{
	return read_log(log, pkglog_history_line, path, max_bytes, err, errlen);
}

int pkglog_read_dpkg(struct pkglog *log, const char *path, size_t max_bytes,
		     char *err, size_t errlen)
{
	return read_log(log, pkglog_dpkg_line, path, max_bytes, err, errlen);
}

/* --- the window before a failure ------------------------------------------ */

size_t pkglog_window(const struct pkglog *log, int64_t when_ms,
		     int64_t window_ms, size_t *ret_first)
{
	size_t first = 0, end;

	while (first < log->n && log->v[first].at_ms < when_ms - window_ms)
		first++;
	end = first;
	while (end < log->n && log->v[end].at_ms <= when_ms + PKGLOG_AFTER_SLACK_MS)
		end++;
	*ret_first = first;
	return end - first;
}

void pkglog_describe(const struct pkglog *log, size_t first, size_t n,
		     int64_t when_ms, char *buf, size_t size)
{
	const struct pkglog_upgrade *u;
	size_t pick = first;
	char ago[32];
	int len;

	if (n == 0) {
		snprintf(buf, size, "no package upgrades before");
		return;
	}
	/* the latest upgrade at or before the failure, else the first after */
	for (size_t i = first; i < first + n && log->v[i].at_ms <= when_ms; i++)
		pick = i;
	u = &log->v[pick];
	if (u->at_ms <= when_ms) {
		format_duration((when_ms - u->at_ms) / 1000, ago, sizeof(ago));
		len = snprintf(buf, size, "%s after the upgrade of %s %s -> %s",
			       ago, u->package, u->from, u->to);
	} else {
		len = snprintf(buf, size, "during the upgrade of %s %s -> %s",
			       u->package, u->from, u->to);
	}
	if (n > 1 && len > 0 && (size_t)len < size)
		snprintf(buf + len, size - (size_t)len, " and %zu other package%s",
			 n - 1, n - 1 == 1 ? "" : "s");
}

json_t *pkglog_json(const struct pkglog *log, size_t first, size_t n,
		    size_t max)
{
	json_t *a = json_array();

	for (size_t i = first + n; i > first && json_array_size(a) < max; i--) {
		const struct pkglog_upgrade *u = &log->v[i - 1];
		char at[TIME_RFC3339_LEN];

		time_format_rfc3339(u->at_ms, at);
		json_array_append_new(a, json_pack("{s:s, s:s, s:s, s:s, s:s}",
						   "package", u->package, "arch",
						   u->arch, "from", u->from, "to",
						   u->to, "at", at));
	}
	return a;
}

/* --- cache ------------------------------------------------------------------ */

void pkglog_cache_init(struct pkglog_cache *c, const char *history_path,
		       const char *dpkg_path, size_t max_bytes,
		       size_t max_records)
{
	*c = (struct pkglog_cache){
		.history_path = history_path && *history_path ? xstrdup(history_path) : NULL,
		.dpkg_path = dpkg_path && *dpkg_path ? xstrdup(dpkg_path) : NULL,
		.max_bytes = max_bytes,
		.max_records = max_records,
	};
	pkglog_init(&c->log, 0, max_records);
}

void pkglog_cache_configure(struct pkglog_cache *c, struct cfg *cfg,
			    const struct cfg_node *node)
{
	char *history = xstrdup("/var/log/apt/history.log");
	char *dpkg = xstrdup("/var/log/dpkg.log");
	uint64_t max = 4 * 1024 * 1024;

	/* "" switches a log off, so it is read as a string, then checked */
	cfg_get_string(cfg, node, "history_log", &history);
	cfg_get_string(cfg, node, "dpkg_log", &dpkg);
	cfg_get_size(cfg, node, "log_max_bytes", &max);
	if (history[0] != '\0' && history[0] != '/')
		cfg_error(cfg, cfg_get(cfg, node, "history_log"),
			  "'%s' is not an absolute path", history);
	if (dpkg[0] != '\0' && dpkg[0] != '/')
		cfg_error(cfg, cfg_get(cfg, node, "dpkg_log"),
			  "'%s' is not an absolute path", dpkg);
	if (max < 4096 || max > 256ULL * 1024 * 1024) {
		cfg_error(cfg, cfg_get(cfg, node, "log_max_bytes"),
			  "log_max_bytes must be from 4KiB to 256MiB");
		max = 4 * 1024 * 1024;
	}
	pkglog_cache_init(c, history, dpkg, (size_t)max, 4096);
	free(history);
	free(dpkg);
}

void pkglog_cache_free(struct pkglog_cache *c)
{
	pkglog_clear(&c->log);
	free(c->history_path);
	free(c->dpkg_path);
	c->history_path = c->dpkg_path = NULL;
}

static void stamp_of(const char *path, struct pkglog_stamp *ret)
{
	struct stat st;

	*ret = (struct pkglog_stamp){ 0 };
	if (path == NULL || stat(path, &st) < 0)
		return;
	*ret = (struct pkglog_stamp){
		.dev = st.st_dev,
		.ino = st.st_ino,
		.size = st.st_size,
		.mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 +
			    st.st_mtim.tv_nsec,
	};
}

static bool same_stamp(const struct pkglog_stamp *a,
		       const struct pkglog_stamp *b)
{
	return a->dev == b->dev && a->ino == b->ino && a->size == b->size &&
	       a->mtime_ns == b->mtime_ns;
}

int pkglog_cache_refresh(struct pkglog_cache *c, int64_t since_ms)
{
	struct pkglog_stamp now[2];
	int r = 0;

	stamp_of(c->history_path, &now[0]);
	stamp_of(c->dpkg_path, &now[1]);
	if (c->loaded && c->error == 0 && since_ms >= c->loaded_since_ms &&
	    same_stamp(&now[0], &c->stamps[0]) &&
	    same_stamp(&now[1], &c->stamps[1]))
		return 0;
	pkglog_clear(&c->log);
	pkglog_init(&c->log, since_ms, c->max_records);
	c->why[0] = '\0';
	if (c->history_path)
		r = pkglog_read_history(&c->log, c->history_path, c->max_bytes,
					c->why, sizeof(c->why));
	if (c->dpkg_path) {
		char why[512] = "";
		int r2 = pkglog_read_dpkg(&c->log, c->dpkg_path, c->max_bytes,
					  why, sizeof(why));

		if (r2 < 0 && r == 0) {
			r = r2;
			strlcpy_safe(c->why, why, sizeof(c->why));
		}
	}
	pkglog_finish(&c->log);
	c->stamps[0] = now[0];
	c->stamps[1] = now[1];
	c->loaded = true;
	c->loaded_since_ms = since_ms;
	c->error = r;
	return r;
}
