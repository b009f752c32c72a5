/*
 * backup: is there a recent, plausible backup, and room for the next?
 *
 * Per configured target (one result, item = the target's name):
 *
 *  - the newest file or directory matching a path glob: critical when
 *    older than max_age (default 26 h: a nightly job plus slack), warning
 *    past warn_age when set;
 *  - its size against the median of the BACKUP_SIZE_HISTORY before it:
 *    warning below min_size_ratio (default 0.5; a broken job often writes
 *    a tiny file), critical when empty;
 *  - the free space of the file system it lies on, with the disk check's
 *    fill-rate prediction (seed 001: a backup volume filled up over
 *    months until the server ran out of resources);
 *  - optionally the systemd unit of the job, whose last run must have
 *    succeeded.
 *
 * A missing directory or no match at all is critical (there is no
 * backup); what the agent cannot look at (a directory it may not read, no
 * system bus) is unknown with the reason.  Never a silent ok.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <systemd/sd-bus.h>

#include "../common/config.h"
#include "../common/util.h"
#include "check.h"
#include "claims.h"
#include "fillrate.h"
#include "journal.h"
#include "pathscan.h"
#include "predict.h"
#include "systemd.h"
#include "unitrun.h"

#define BACKUP_SIZE_HISTORY 10
/* Matches kept, newest first: the newest and enough before it for the
 * size history, with room for directories among them. */
#define BACKUP_KEEP (2 * (BACKUP_SIZE_HISTORY + 1))
/* Journal lines of a failed job in the result's context. */
#define BACKUP_JOURNAL_LINES 20
#define BACKUP_NAME_MAX 128
/* sd-bus waits 25 s for a reply by default: a hung systemd must not hold
 * the agent's loop that long for every property */
#define BACKUP_BUS_TIMEOUT_US (2 * 1000 * 1000)

struct backup_target {
	char *name;    /* the result's item */
	char *pattern; /* glob(7), absolute */
	char *dir;     /* the pattern's leading directory without wildcards */
	int64_t max_age_ms;
	int64_t warn_age_ms;   /* 0: off */
	int64_t max_matches;   /* paths of the pattern looked at */
	double min_size_ratio; /* 0: off */
	char *unit;            /* NULL: none */
	struct predict_config predict;
};

struct backup_ctx {
	const struct check_env *env;
	struct backup_target defaults;
	struct backup_target *targets;
	size_t ntargets;
	struct fillrate *fillrate;
	sd_bus *bus; /* opened on first use, dropped after an error */
};

/* One finding about a target, for the summary; problems sort first. */
struct aspect {
	enum check_state state;
	char text[320];
};

struct verdict {
	struct aspect a[6];
	size_t n;
	json_t *metrics;
	json_t *context; /* the failed job's unit and journal, or NULL */
};

static void add_aspect(struct verdict *v, enum check_state state,
		       const char *fmt, ...) __attribute__((format(printf, 3, 4)));

static void add_aspect(struct verdict *v, enum check_state state,
		       const char *fmt, ...)
{
	va_list ap;

	if (v->n == ARRAY_SIZE(v->a))
		return;
	va_start(ap, fmt);
	vsnprintf(v->a[v->n].text, sizeof(v->a[v->n].text), fmt, ap);
	va_end(ap);
	v->a[v->n++].state = state;
}

static void target_free(struct backup_target *t)
{
	free(t->name);
	free(t->pattern);
	free(t->dir);
	free(t->unit);
}

static void backup_free(void *p)
{
	struct backup_ctx *ctx = p;

	if (ctx == NULL)
		return;
	claims_drop(ctx->env ? ctx->env->claims : NULL, ctx);
	for (size_t i = 0; i < ctx->ntargets; i++)
		target_free(&ctx->targets[i]);
	free(ctx->targets);
	fillrate_free(ctx->fillrate);
	sd_bus_flush_close_unref(ctx->bus);
	free(ctx);
}

/* The part of pattern before the path component with the first wildcard. */
static char *leading_dir(const char *pattern)
{
	size_t wild = strcspn(pattern, "*?[");
	size_t slash = 0;

	for (size_t i = 0; i < wild; i++)
		if (pattern[i] == '/')
			slash = i;
	if (slash == 0)
		return xstrdup("/");
	return xasprintf("%.*s", (int)slash, pattern);
}

/* Keys a target shares with the check's defaults. */
static void parse_limits(struct cfg *cfg, const struct cfg_node *map,
			 struct backup_target *t)
{
	cfg_get_duration(cfg, map, "max_age", &t->max_age_ms);
	cfg_get_duration(cfg, map, "warn_age", &t->warn_age_ms);
	cfg_get_double(cfg, map, "min_size_ratio", 0.0, 1.0, &t->min_size_ratio);
	cfg_get_int(cfg, map, "max_matches", 1, 1000000, &t->max_matches);
	predict_config_parse(cfg, map, &t->predict);
	if (t->warn_age_ms > 0 && t->warn_age_ms >= t->max_age_ms)
		cfg_error(cfg, map, "warn_age must be shorter than max_age");
}

static bool name_taken(const struct backup_ctx *ctx, const char *name)
{
	for (size_t i = 0; i < ctx->ntargets; i++)
		if (strcmp(ctx->targets[i].name, name) == 0)
			return true;
	return false;
}

/* One item of targets: into ctx->targets when valid, else errors. */
static void parse_target(struct cfg *cfg, const struct cfg_node *item,
			 struct backup_ctx *ctx)
{
	struct backup_target t = ctx->defaults;
	const struct cfg_node *path_node = cfg_get(cfg, item, "path");

	t.name = t.pattern = t.dir = t.unit = NULL;
	if (item->type != CFG_MAP) {
		cfg_error(cfg, item, "expected a mapping with a path");
		return;
	}
	parse_limits(cfg, item, &t);
	cfg_get_string(cfg, item, "name", &t.name);
	cfg_get_string(cfg, item, "unit", &t.unit);
	if (cfg_get_string(cfg, item, "path", &t.pattern) <= 0) {
		if (path_node == NULL)
			cfg_error(cfg, item, "a backup target needs a path");
		goto fail;
	}
	if (t.pattern[0] != '/') {
		cfg_error(cfg, path_node, "path '%s' is not absolute", t.pattern);
		goto fail;
	}
	if (t.name == NULL)
		t.name = xstrdup(t.pattern);
	if (strlen(t.name) > BACKUP_NAME_MAX || t.name[0] == '\0') {
		cfg_error(cfg, cfg_get(cfg, item, "name"),
			  "name must be 1 to %d characters", BACKUP_NAME_MAX);
		goto fail;
	}
	if (name_taken(ctx, t.name)) {
		cfg_error(cfg, item, "a backup target named '%s' already exists",
			  t.name);
		goto fail;
	}
	if (t.unit != NULL && !unitrun_name_valid(t.unit)) {
		cfg_error(cfg, cfg_get(cfg, item, "unit"),
			  "'%s' is not a systemd unit name ending in .service or .timer",
			  t.unit);
		goto fail;
	}
	t.dir = leading_dir(t.pattern);
	if (t.unit != NULL) {
		/* this target reports its job's failure; services leaves it */
		char *label = xasprintf("backup target %s", t.name);

		claims_add(ctx->env ? ctx->env->claims : NULL, ctx, t.unit, label);
		free(label);
	}
	ctx->targets[ctx->ntargets++] = t;
	return;
fail:
	target_free(&t);
}

/*
 * Called per configuration load: the check-level keys are the defaults
 * every target starts from.  Targets with errors are left out (and the
 * errors recorded); the context is returned in any case.
 */
static int backup_configure(struct cfg *cfg, const struct cfg_node *node,
			    const struct check_env *env, void **ret_ctx)
{
	struct backup_ctx *ctx = xcalloc(1, sizeof(*ctx));
	const struct cfg_node *list;

	ctx->env = env;
	ctx->fillrate = fillrate_new("backup", env);
	ctx->defaults.max_age_ms = 26 * 3600 * 1000LL;
	ctx->defaults.min_size_ratio = 0.5;
	ctx->defaults.max_matches = 10000;
	predict_config_defaults(&ctx->defaults.predict);
	parse_limits(cfg, node, &ctx->defaults);

	list = cfg_get(cfg, node, "targets");
	if (list != NULL && list->type == CFG_SEQ) {
		ctx->targets = xcalloc(list->nitems, sizeof(*ctx->targets));
		for (size_t i = 0; i < list->nitems; i++)
			parse_target(cfg, list->items[i], ctx);
	} else if (list != NULL && list->type != CFG_NULL) {
		cfg_error(cfg, list, "expected a list of backup targets");
	}
	*ret_ctx = ctx;
	return 0;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return (x > y) - (x < y);
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash && slash[1] ? slash + 1 : path;
}

/* Age of the newest backup against max_age and warn_age. */
static void judge_age(const struct backup_target *t,
		      const struct pathscan_file *newest, int64_t now_ms,
		      struct verdict *v)
{
	int64_t age = now_ms - newest->mtime_ms;
	char a[32], limit[32];

	if (age < 0)
		age = 0; /* written "in the future": clock skew, not a problem */
	format_duration(age / 1000, a, sizeof(a));
	json_object_set_new(v->metrics, "newest_age_s",
			    json_integer((json_int_t)(age / 1000)));
	if (age > t->max_age_ms) {
		format_duration(t->max_age_ms / 1000, limit, sizeof(limit));
		add_aspect(v, CHECK_CRITICAL,
			   "newest backup %s is %s old (critical past %s)",
			   base_name(newest->path), a, limit);
	} else if (t->warn_age_ms > 0 && age > t->warn_age_ms) {
		format_duration(t->warn_age_ms / 1000, limit, sizeof(limit));
		add_aspect(v, CHECK_WARNING,
			   "newest backup %s is %s old (warning past %s)",
			   base_name(newest->path), a, limit);
	} else {
		add_aspect(v, CHECK_OK, "newest backup %s is %s old",
			   base_name(newest->path), a);
	}
}

/* Size of the newest backup against the median of those before it. */
static void judge_size(const struct backup_target *t,
		       const struct pathscan_file *files, size_t n,
		       struct verdict *v)
{
	uint64_t prev[BACKUP_SIZE_HISTORY], median;
	char sz[32], med[32];
	size_t np = 0;

	if (!files[0].regular)
		return;
	for (size_t i = 1; i < n && np < BACKUP_SIZE_HISTORY; i++)
		if (files[i].regular)
			prev[np++] = files[i].size;
	format_bytes(files[0].size, sz, sizeof(sz));
	json_object_set_new(v->metrics, "newest_size_bytes",
			    json_integer((json_int_t)files[0].size));
	if (files[0].size == 0) {
		add_aspect(v, CHECK_CRITICAL, "newest backup %s is empty",
			   base_name(files[0].path));
		return;
	}
	if (np == 0) {
		add_aspect(v, CHECK_OK, "%s, no earlier backup to compare with", sz);
		return;
	}
	qsort(prev, np, sizeof(*prev), cmp_u64);
	median = np % 2 ? prev[np / 2] : prev[np / 2 - 1] / 2 + prev[np / 2] / 2;
	format_bytes(median, med, sizeof(med));
	json_object_set_new(v->metrics, "median_size_bytes",
			    json_integer((json_int_t)median));
	if (t->min_size_ratio > 0 && median > 0 &&
	    (double)files[0].size < t->min_size_ratio * (double)median)
		add_aspect(v, CHECK_WARNING,
			   "newest backup %s is %s, %.0f%% of the median %s of the %zu before (warning below %.0f%%)",
			   base_name(files[0].path), sz,
			   100.0 * (double)files[0].size / (double)median, med,
			   np, 100.0 * t->min_size_ratio);
	else
		add_aspect(v, CHECK_OK, "%s, median %s of the %zu before", sz,
			   med, np);
}

/* Free space where the backups go, with its fill-rate prediction. */
static void judge_space(struct backup_ctx *ctx, const struct backup_target *t,
			int64_t now_ms, struct verdict *v)
{
	struct statvfs sv;
	struct prediction p;
	uint64_t frsize, avail, used;
	char freeb[32], text[96], horizon[32];
	int r;

	if (statvfs(t->dir, &sv) < 0) {
		add_aspect(v, CHECK_UNKNOWN, "cannot read the free space of %s: %s",
			   t->dir, strerror(errno));
		return;
	}
	frsize = sv.f_frsize ? sv.f_frsize : sv.f_bsize;
	avail = (uint64_t)sv.f_bavail * frsize;
	used = (uint64_t)(sv.f_blocks - sv.f_bfree) * frsize;
	format_bytes(avail, freeb, sizeof(freeb));
	json_object_set_new(v->metrics, "free_bytes", json_integer((json_int_t)avail));
	if (!t->predict.enabled) {
		add_aspect(v, CHECK_OK, "%s free", freeb);
		return;
	}
	r = fillrate_observe(ctx->fillrate, t->dir, &t->predict, now_ms, used,
			     avail, &p);
	if (r < 0) {
		add_aspect(v, CHECK_OK, "%s free (no fill-rate prediction: %s)",
			   freeb, fillrate_strerror(r));
		return;
	}
	predict_format(&p, text, sizeof(text));
	if (p.usable)
		json_object_set_new(v->metrics, "fill_rate_bytes_per_day",
				    json_real(p.rate * 86400.0));
	if (p.state == CHECK_OK) {
		add_aspect(v, CHECK_OK, "%s free%s%s", freeb, text[0] ? ", " : "",
			   text);
		return;
	}
	json_object_set_new(v->metrics, "full_in_s",
			    json_integer((json_int_t)p.full_in_s));
	format_duration((p.state == CHECK_CRITICAL ? t->predict.critical_ms
						   : t->predict.warning_ms) / 1000,
			horizon, sizeof(horizon));
	add_aspect(v, p.state, "backup volume %s %s (%s within %s), %s free",
		   t->dir, text, check_state_name(p.state), horizon, freeb);
}

/*
 * What the services check would have attached to the job's failure (it
 * leaves the unit to this target, claims.h): the unit, its result and
 * its last journal lines.  New reference.
 */
static json_t *failure_context(const struct unitrun *u)
{
	json_t *c = json_pack("{s:s, s:s, s:i}", "unit", u->service, "result",
			      u->result, "exit_status", (int)u->exec_status);
	json_t *lines = NULL;
	char why[256];

	/* the newest lines: the failed run's, since it was the last */
	if (journal_unit_tail(NULL, u->service, BACKUP_JOURNAL_LINES, 0, 0,
			      &lines, why, sizeof(why)) < 0)
		json_object_set_new(c, "journal_error", json_string(why));
	else
		json_object_set_new(c, "journal", lines);
	return c;
}

/* The last run of the backup job's unit, over the system bus. */
static void judge_unit(struct backup_ctx *ctx, const struct backup_target *t,
		       int64_t now_ms, struct verdict *v)
{
	struct unitrun u;
	char err[256], ago[48] = "";
	int r;

	if (t->unit == NULL)
		return;
	if (ctx->bus == NULL &&
	    systemd_bus_open(NULL, BACKUP_BUS_TIMEOUT_US, &ctx->bus, err,
			     sizeof(err)) < 0) {
		add_aspect(v, CHECK_UNKNOWN, "cannot ask systemd about %s: %s",
			   t->unit, err);
		return;
	}
	r = unitrun_read(ctx->bus, t->unit, &u, err, sizeof(err));
	if (r < 0) {
		/* reconnect next time: the bus may have restarted */
		ctx->bus = sd_bus_flush_close_unref(ctx->bus);
		add_aspect(v, CHECK_UNKNOWN, "cannot ask systemd about %s: %s",
			   t->unit, err);
		return;
	}
	if (strcmp(u.load_state, "loaded") != 0) {
		add_aspect(v, CHECK_UNKNOWN, "unit %s is %s", u.service,
			   u.load_state);
		return;
	}
	if (u.exit_us > 0) {
		char d[32];
		int64_t age_s = now_ms / 1000 - (int64_t)(u.exit_us / 1000000);

		format_duration(age_s > 0 ? age_s : 0, d, sizeof(d));
		snprintf(ago, sizeof(ago), " %s ago", d);
	}
	json_object_set_new(v->metrics, "unit_exit_status",
			    json_integer(u.exec_status));
	if (strcmp(u.result, "success") != 0) {
		add_aspect(v, CHECK_CRITICAL,
			   "last run of %s failed%s: %s, status %d", u.service,
			   ago, u.result, (int)u.exec_status);
		v->context = failure_context(&u);
	}
	else if (u.exit_us == 0)
		/* A failed unit stays loaded until reset-failed, so a failure
		 * is never lost; a run that went well is forgotten once systemd
		 * unloads an unreferenced unit (a timer keeps it loaded).  The
		 * age of the newest backup still tells whether it ran. */
		add_aspect(v, CHECK_OK, "systemd has no record of a run of %s (%s)",
			   u.service, u.active_state);
	else
		add_aspect(v, CHECK_OK, "last run of %s succeeded%s", u.service,
			   ago);
}

/*
 * Look at the backups themselves: missing directory, no match, age, size.
 * Returns false when the directory is not there to look at any further.
 */
static bool judge_files(const struct backup_target *t, int64_t now_ms,
			struct verdict *v)
{
	struct pathscan scan;
	struct stat st;
	int r;

	r = stat(t->dir, &st) < 0 ? errno : S_ISDIR(st.st_mode) ? 0 : ENOTDIR;
	if (r == ENOENT || r == ENOTDIR) {
		/* an unmounted backup volume looks just like this */
		add_aspect(v, CHECK_CRITICAL, "directory %s does not exist",
			   t->dir);
		return false;
	}
	if (r != 0) {
		add_aspect(v, CHECK_UNKNOWN, "cannot look at %s: %s", t->dir,
			   strerror(r));
		return false;
	}
	pathscan_run(t->pattern, (size_t)t->max_matches, BACKUP_KEEP, &scan);
	if (scan.unreadable > 0) {
		char more[64] = "";

		/* what could be read is still judged below */
		if (scan.unreadable > 1)
			snprintf(more, sizeof(more), " (and %zu more)",
				 scan.unreadable - 1);
		add_aspect(v, CHECK_UNKNOWN, "cannot read %s: %s%s",
			   scan.first_bad, strerror(scan.first_errno), more);
	}
	if (scan.capped)
		add_aspect(v, CHECK_WARNING,
			   "stopped looking after %zu matches of %s (max_matches %lld): the newest may be among the rest",
			   scan.matches, t->pattern, (long long)t->max_matches);
	if (scan.matches == 0 && scan.unreadable == 0)
		add_aspect(v, CHECK_CRITICAL, "no backup matches %s", t->pattern);
	if (scan.matches > 0) {
		json_object_set_new(v->metrics, "backups",
				    json_integer((json_int_t)scan.matches));
		judge_age(t, &scan.newest[0], now_ms, v);
		judge_size(t, scan.newest, scan.n, v);
	}
	pathscan_clear(&scan);
	return true;
}

/*
 * One result for target t: "name: problems first; then the facts", in
 * the state of its worst finding.  The metrics object goes to the result.
 */
static void report_target(struct backup_ctx *ctx, const struct backup_target *t,
			  int64_t now_ms, struct check_results *out)
{
	struct verdict v = { .metrics = json_object() };
	enum check_state state = CHECK_OK;
	char summary[1024];
	bool first = true;

	if (judge_files(t, now_ms, &v))
		judge_space(ctx, t, now_ms, &v);
	judge_unit(ctx, t, now_ms, &v);

	snprintf(summary, sizeof(summary), "%s: ", t->name);
	for (int sev = 3; sev >= 0; sev--) {
		for (size_t i = 0; i < v.n; i++) {
			if (check_state_severity(v.a[i].state) != sev)
				continue;
			if (!first)
				strlcat_safe(summary, "; ", sizeof(summary));
			strlcat_safe(summary, v.a[i].text, sizeof(summary));
			state = check_state_worst(state, v.a[i].state);
			first = false;
		}
	}
	check_results_add(out, t->name, state, v.metrics, "%s", summary)
		->context = v.context;
}

static int backup_collect(void *p, int64_t now_ms, struct check_results *out)
{
	struct backup_ctx *ctx = p;

	if (ctx->ntargets == 0)
		check_results_add(out, "targets", CHECK_UNKNOWN, NULL,
				  "the backup check is enabled but has no targets (checks.backup.targets)");
	for (size_t i = 0; i < ctx->ntargets; i++)
		report_target(ctx, &ctx->targets[i], now_ms, out);
	return 0;
}

const struct check check_backup = {
	.name = "backup",
	.default_interval_ms = 5 * 60 * 1000,
	.enabled_by_default = false,
	.configure = backup_configure,
	.collect = backup_collect,
	.free = backup_free,
};
