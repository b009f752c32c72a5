/*
 * services: systemd units over sd-bus.
 *
 * Items:
 *   failed          how many units are failed, with their names
 *   <unit>          one per unit with a problem: failed (with its last
 *                   journal lines and the package upgrades before the
 *                   failure as context), a watched unit that is not
 *                   active, or a restart loop; ok once, when it recovers
 *   <name>.timer    one per configured timer: did the last run of the
 *                   service behind it succeed, and is it recent
 *   <pattern>       a watched pattern no unit matches
 *
 * Two paths feed the same evaluation.  The poll on the interval lists
 * the units (one ListUnits call) and reads a few properties of the
 * interesting ones.  Between polls the check is subscribed to systemd's
 * PropertiesChanged signals: the bus connection is the check's watch_fd,
 * so a unit failing is reported within milliseconds, not at the next
 * poll.  Without a subscription (an old systemd, a bus that refuses the
 * match) the poll alone still finds everything, later.
 *
 * Units reported with a problem are remembered in the agent's state
 * database, so that an agent restarted meanwhile still sends the ok that
 * resolves the ticket.
 */
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include "../common/config.h"
#include "../common/db.h"
#include "../common/util.h"
#include "check.h"
#include "journal.h"
#include "claims.h"
#include "pkglog.h"
#include "systemd.h"
#include "unitrun.h"


#define BUS_TIMEOUT_US (5 * 1000 * 1000ULL)
#define UNITS_MAX 4096       /* units tracked at once */
#define NAMES_IN_SUMMARY 8
#define UPGRADES_IN_CONTEXT 50
/* A state that says nothing yet: a unit in transition is not reported. */
#define STATE_SKIP (-1)
/* Restart times kept per unit: the most restarts_warning can ask for. */
#define RESTARTS_KEPT 16
/* Passes of dispatching and handling per wake-up, see settle(). */
#define SETTLE_PASSES_MAX 64

struct unit {
	char *name;
	char active[24];        /* ActiveState last seen */
	char sub[24];           /* SubState */
	bool seen;              /* listed by the current poll */
	bool changed;           /* a signal changed it since the last look */
	bool job;               /* a job is queued: it is in transition */
	bool known_bad;         /* reported with a problem, no ok sent yet */
	bool forget_pending;    /* its ok went out: delete its row next time */
	int reported;           /* state last reported, STATE_SKIP for none */
	bool have_restarts;     /* nrestarts is known */
	uint32_t nrestarts;     /* NRestarts last seen */
	uint32_t nrestarts_seen; /* what restart_ms accounts for */
	/* when restarts were seen (monotonic), a ring of the latest */
	int64_t restart_ms[RESTARTS_KEPT];
	uint32_t nrecorded;
	/* the failure being reported: context is computed once per failure */
	bool claim_checked;     /* claimed_by is known for this failure */
	char claimed_by[160];   /* the check that reports it (claims.h), or "" */
	uint64_t failed_at_us;
	char *fail_summary;
	json_t *fail_context;
};

struct services_ctx {
	const struct check_env *env;
	/* configuration */
	bool report_failed;
	int failed_state;       /* enum check_state */
	char **ignore;
	char **watch;
	char **timers;
	int64_t timer_max_age_ms;
	int64_t restarts_warning;
	int64_t restarts_window_ms;
	int64_t journal_lines;
	int64_t journal_wait_ms;
	char *journal_dir;
	int64_t upgrade_window_ms;
	char *bus_address;
	struct pkglog_cache pkglog;
	/* state */
	sd_bus *bus;
	sd_bus_slot *match;
	bool subscribed;
	/* what the agent polls: the bus and kick, an eventfd that is made
	 * readable while sd-bus holds queued messages (see settle) */
	int epfd;
	int kick;
	char bus_error[256];
	struct unit *units;
	size_t nunits;
	bool db_ready;
	sqlite3_stmt *db_add;
	sqlite3_stmt *db_del;
};

static const char *const schema_steps[] = {
	"CREATE TABLE services_reported ("
	" unit TEXT PRIMARY KEY,"
	" since INTEGER NOT NULL)",
};

static const struct db_schema services_schema = {
	.module = "services",
	.steps = schema_steps,
	.nsteps = ARRAY_SIZE(schema_steps),
};

/* --- units ----------------------------------------------------------------- */

static bool matches(char *const *patterns, const char *name)
{
	for (size_t i = 0; patterns && patterns[i]; i++)
		if (fnmatch(patterns[i], name, 0) == 0)
			return true;
	return false;
}

static bool is_glob(const char *p)
{
	return strpbrk(p, "*?[") != NULL;
}

static bool has_suffix(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

static void unit_forget_failure(struct unit *u)
{
	free(u->fail_summary);
	json_decref(u->fail_context);
	u->fail_summary = NULL;
	u->fail_context = NULL;
	u->failed_at_us = 0;
	u->claim_checked = false;
}

static struct unit *unit_find(struct services_ctx *ctx, const char *name)
{
	for (size_t i = 0; i < ctx->nunits; i++)
		if (strcmp(ctx->units[i].name, name) == 0)
			return &ctx->units[i];
	return NULL;
}

/* The unit's entry, created when missing; NULL when the table is full. */
static struct unit *unit_get(struct services_ctx *ctx, const char *name)
{
	struct unit *u = unit_find(ctx, name);

	if (u != NULL)
		return u;
	if (ctx->nunits == UNITS_MAX)
		return NULL;
	ctx->units = xreallocarray(ctx->units, ctx->nunits + 1,
				   sizeof(*ctx->units));
	u = &ctx->units[ctx->nunits++];
	*u = (struct unit){ .name = xstrdup(name), .reported = STATE_SKIP };
	return u;
}

static void units_free(struct services_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nunits; i++) {
		free(ctx->units[i].name);
		unit_forget_failure(&ctx->units[i]);
	}
	free(ctx->units);
	ctx->units = NULL;
	ctx->nunits = 0;
}

/* Drop entries that need no memory: fine, unwatched, nothing to resolve. */
static void units_prune(struct services_ctx *ctx)
{
	size_t kept = 0;

	for (size_t i = 0; i < ctx->nunits; i++) {
		struct unit *u = &ctx->units[i];
		bool keep = u->known_bad || u->forget_pending ||
			    matches(ctx->watch, u->name) ||
			    (u->have_restarts && u->nrestarts > 0) ||
			    strcmp(u->active, "failed") == 0;

		if (keep) {
			ctx->units[kept++] = *u;
		} else {
			free(u->name);
			unit_forget_failure(u);
		}
	}
	ctx->nunits = kept;
}

/* --- the state database: units with an open problem ------------------------ */

static void db_prepare_once(struct services_ctx *ctx)
{
	sqlite3 *db = ctx->env ? ctx->env->db : NULL;
	sqlite3_stmt *s;

	if (ctx->db_ready || db == NULL)
		return;
	ctx->db_ready = true;
	if (db_migrate(db, &services_schema) < 0 ||
	    db_prepare(db, "INSERT OR REPLACE INTO services_reported(unit, since)"
			   " VALUES (?1, ?2)", &ctx->db_add) < 0 ||
	    db_prepare(db, "DELETE FROM services_reported WHERE unit = ?1",
		       &ctx->db_del) < 0)
		return;
	if (sqlite3_prepare_v2(db, "SELECT unit FROM services_reported", -1,
			       &s, NULL) != SQLITE_OK)
		return;
	while (sqlite3_step(s) == SQLITE_ROW) {
		struct unit *u = unit_get(ctx, (const char *)sqlite3_column_text(s, 0));

		if (u != NULL)
			u->known_bad = true;
	}
	sqlite3_finalize(s);
}

/*
 * Remember that u was reported bad (bad) or that its ok was reported.
 * The row of a bad unit is written at once: should the agent die before
 * the event is in the outbox, the next run sends an ok nobody waited
 * for, which is harmless.  The row of a recovered unit goes only once
 * the ok is in the outbox, for without the row the next run would never
 * send that ok: the agent queues what collect() or on_ready() returned
 * before it calls the check again (or frees it), so db_forget_pending()
 * at the start of those calls deletes it.  A run that delivers nothing
 * (env->read_only) writes nothing.
 */
static void db_remember(struct services_ctx *ctx, struct unit *u, bool bad)
{
	if (ctx->env == NULL || ctx->env->read_only)
		return;
	u->forget_pending = !bad;
	if (!bad || ctx->db_add == NULL)
		return;
	db_bind_text(ctx->db_add, 1, u->name);
	sqlite3_bind_int64(ctx->db_add, 2, time_now_ms() / 1000);
	db_step_done(ctx->db_add); /* without the row the agent only forgets sooner */
}

/*
 * Delete the rows of units whose ok the agent has queued since; none
 * while the agent holds results it could not queue (env->results_unstored),
 * for that ok may be among them: the rows go at a later call.
 */
static void db_forget_pending(struct services_ctx *ctx)
{
	if (ctx->env != NULL && ctx->env->results_unstored)
		return;
	for (size_t i = 0; i < ctx->nunits; i++) {
		struct unit *u = &ctx->units[i];

		if (!u->forget_pending)
			continue;
		u->forget_pending = false;
		if (ctx->db_del == NULL)
			continue;
		db_bind_text(ctx->db_del, 1, u->name);
		db_step_done(ctx->db_del);
	}
}

/* --- configuration ---------------------------------------------------------- */

static void bus_drop(struct services_ctx *ctx);

static void services_free(void *p)
{
	struct services_ctx *ctx = p;

	if (ctx == NULL)
		return;
	db_forget_pending(ctx);
	bus_drop(ctx);
	if (ctx->epfd >= 0)
		close(ctx->epfd);
	if (ctx->kick >= 0)
		close(ctx->kick);
	sqlite3_finalize(ctx->db_add);
	sqlite3_finalize(ctx->db_del);
	units_free(ctx);
	cfg_string_list_free(ctx->ignore);
	cfg_string_list_free(ctx->watch);
	cfg_string_list_free(ctx->timers);
	free(ctx->journal_dir);
	free(ctx->bus_address);
	pkglog_cache_free(&ctx->pkglog);
	free(ctx);
}

static int services_configure(struct cfg *cfg, const struct cfg_node *node,
			      const struct check_env *env, void **ret_ctx)
{
	static const char *const states[] = { "ok", "warning", "critical", NULL };
	struct services_ctx *ctx = xcalloc(1, sizeof(*ctx));

	ctx->env = env;
	ctx->epfd = ctx->kick = -1;
	ctx->report_failed = true;
	ctx->failed_state = CHECK_CRITICAL;
	ctx->restarts_warning = 3;
	ctx->restarts_window_ms = 3600 * 1000;
	ctx->journal_lines = 20;
	ctx->journal_wait_ms = 300;
	ctx->upgrade_window_ms = 2 * 3600 * 1000;

	cfg_get_bool(cfg, node, "failed", &ctx->report_failed);
	cfg_get_enum(cfg, node, "failed_state", states, &ctx->failed_state);
	cfg_get_string_list(cfg, node, "ignore", &ctx->ignore);
	cfg_get_string_list(cfg, node, "watch", &ctx->watch);
	cfg_get_string_list(cfg, node, "timers", &ctx->timers);
	cfg_get_duration(cfg, node, "timer_max_age", &ctx->timer_max_age_ms);
	cfg_get_int(cfg, node, "restarts_warning", 0, RESTARTS_KEPT,
		    &ctx->restarts_warning);
	if (cfg_get_duration(cfg, node, "restarts_window",
			     &ctx->restarts_window_ms) > 0 &&
	    ctx->restarts_window_ms < 1000)
		cfg_error(cfg, cfg_get(cfg, node, "restarts_window"),
			  "restarts_window must be at least 1s");
	cfg_get_int(cfg, node, "journal_lines", 0, JOURNAL_LINES_MAX,
		    &ctx->journal_lines);
	cfg_get_duration(cfg, node, "journal_wait", &ctx->journal_wait_ms);
	cfg_get_path(cfg, node, "journal_directory", &ctx->journal_dir);
	cfg_get_duration(cfg, node, "upgrade_window", &ctx->upgrade_window_ms);
	cfg_get_string(cfg, node, "bus_address", &ctx->bus_address);
	pkglog_cache_configure(&ctx->pkglog, cfg, node);

	if (ctx->journal_wait_ms > 5000)
		cfg_error(cfg, cfg_get(cfg, node, "journal_wait"),
			  "journal_wait must be at most 5s: the agent waits for it");
	for (size_t i = 0; ctx->timers && ctx->timers[i]; i++)
		if (!has_suffix(ctx->timers[i], ".timer"))
			cfg_error(cfg, cfg_get(cfg, node, "timers"),
				  "'%s' does not name a .timer unit",
				  ctx->timers[i]);
	*ret_ctx = ctx;
	return 0;
}

/* --- the bus ----------------------------------------------------------------- */

static void bus_drop(struct services_ctx *ctx)
{
	if (ctx->bus != NULL && ctx->epfd >= 0)
		epoll_ctl(ctx->epfd, EPOLL_CTL_DEL, sd_bus_get_fd(ctx->bus), NULL);
	ctx->match = sd_bus_slot_unref(ctx->match);
	ctx->bus = sd_bus_flush_close_unref(ctx->bus);
	ctx->subscribed = false;
}

static int on_properties_changed(sd_bus_message *m, void *userdata,
				 sd_bus_error *error);
static void report_failed_summary(struct services_ctx *ctx,
				  struct check_results *out);

/*
 * Put the bus into the descriptor the agent polls (made once, with the
 * kick eventfd).  0 or -errno: then the check has no subscription and
 * the poll on its interval still sees everything.
 */
static int watch_bus(struct services_ctx *ctx)
{
	struct epoll_event ev = { .events = EPOLLIN };

	if (ctx->epfd < 0) {
		ctx->epfd = epoll_create1(EPOLL_CLOEXEC);
		ctx->kick = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (ctx->epfd < 0 || ctx->kick < 0 ||
		    epoll_ctl(ctx->epfd, EPOLL_CTL_ADD, ctx->kick, &ev) < 0)
			return -errno;
	}
	if (epoll_ctl(ctx->epfd, EPOLL_CTL_ADD, sd_bus_get_fd(ctx->bus), &ev) < 0)
		return -errno;
	return 0;
}

/* Connect and subscribe; 0, or -errno with ctx->bus_error set. */
static int bus_connect(struct services_ctx *ctx)
{
	sd_bus_error err = SD_BUS_ERROR_NULL;
	int r;

	if (ctx->bus != NULL)
		return 0;
	r = systemd_bus_open(ctx->bus_address, BUS_TIMEOUT_US, &ctx->bus,
			     ctx->bus_error, sizeof(ctx->bus_error));
	if (r < 0) {
		ctx->bus = NULL;
		return r;
	}
	/*
	 * systemd sends unit signals only while someone is subscribed.  A
	 * failed subscription leaves the poll, which still sees everything.
	 */
	r = sd_bus_call_method(ctx->bus, SYSTEMD_DEST, SYSTEMD_PATH, SYSTEMD_MANAGER,
			       "Subscribe", &err, NULL, NULL);
	sd_bus_error_free(&err);
	if (r >= 0)
		r = sd_bus_add_match(ctx->bus, &ctx->match,
				     "type='signal',sender='" SYSTEMD_DEST "',"
				     "interface='org.freedesktop.DBus.Properties',"
				     "member='PropertiesChanged',"
				     "path_namespace='" SYSTEMD_UNIT_PREFIX "'",
				     on_properties_changed, ctx);
	if (r >= 0)
		r = watch_bus(ctx);
	ctx->subscribed = r >= 0;
	ctx->bus_error[0] = '\0';
	return 0;
}

/* Properties of a unit object over the check's bus; see systemd.h. */
static int get_string(struct services_ctx *ctx, const char *path,
		      const char *iface, const char *name, char **ret_str)
{
	return systemd_get_string(ctx->bus, path, iface, name, ret_str, NULL, 0);
}

static int get_trivial(struct services_ctx *ctx, const char *path,
		       const char *iface, const char *name, char type,
		       void *ret)
{
	return systemd_get_trivial(ctx->bus, path, iface, name, type, ret,
				   NULL, 0);
}

/* --- evaluation --------------------------------------------------------------- */

/* The collector refuses an event whose context is over 64 KiB (and with
 * it the whole batch): stay well below. */
#define CONTEXT_MAX (32 * 1024)
/* A failure younger than this may not be in the journal yet. */
#define FRESH_FAILURE_MS (10 * 1000)

static size_t json_size(const json_t *j)
{
	return json_dumpb(j, NULL, 0, JSON_COMPACT | JSON_ENCODE_ANY);
}

/* Drop the oldest journal lines, then the oldest upgrades, until c fits. */
static void fit_context(json_t *c)
{
	json_t *journal = json_object_get(c, "journal");
	json_t *upgrades = json_object_get(c, "upgrades");
	size_t size = json_size(c);

	while (size > CONTEXT_MAX && json_array_size(journal) > 0) {
		size -= json_size(json_array_get(journal, 0)) + 1;
		json_array_remove(journal, 0);
	}
	while (size > CONTEXT_MAX && json_array_size(upgrades) > 0) {
		size_t last = json_array_size(upgrades) - 1;

		size -= json_size(json_array_get(upgrades, last)) + 1;
		json_array_remove(upgrades, last);
	}
}

/*
 * The context of a failure, computed once per failure (identified by the
 * time the unit entered the failed state): its result, its last journal
 * lines and the package upgrades of the window before it.
 */
static void describe_failure(struct services_ctx *ctx, struct unit *u)
{
	char *path = systemd_unit_path(u->name), *result = NULL, why[512];
	char at[TIME_RFC3339_LEN], upgrades[512] = "", window[32];
	const char *iface = systemd_unit_interface(u->name);
	json_t *ctxj, *lines = NULL;
	uint64_t since = 0;
	int64_t when_ms;
	size_t first = 0, n = 0;

	if (path)
		get_trivial(ctx, path, SYSTEMD_UNIT, "StateChangeTimestamp", 't', &since);
	if (u->fail_summary != NULL && since == u->failed_at_us)
		goto done; /* the same failure as before */
	unit_forget_failure(u);
	u->failed_at_us = since;
	when_ms = since ? (int64_t)(since / 1000) : time_now_ms();
	if (path && iface)
		get_string(ctx, path, iface, "Result", &result);

	time_format_rfc3339(when_ms, at);
	format_duration(ctx->upgrade_window_ms / 1000, window, sizeof(window));
	ctxj = json_pack("{s:s, s:s, s:s, s:s}", "unit", u->name, "result",
			 result ? result : "", "failed_at", at, "upgrade_window",
			 window);
	if (ctx->journal_lines > 0) {
		/* journald may lag behind a failure that just happened; an old
		 * one (found at start-up) is worth no wait.  journald stamps
		 * systemd's "Failed with result" line on receipt, which may be
		 * a little before or after the state change (the slack); an
		 * earlier failure's line is older than a restart takes. */
		bool recent = time_now_ms() - when_ms < FRESH_FAILURE_MS;

		if (journal_unit_tail(ctx->journal_dir, u->name,
				      (size_t)ctx->journal_lines,
				      since > 50000 ? since - 50000 : 1,
				      recent ? (uint64_t)ctx->journal_wait_ms * 1000 : 0,
				      &lines, why, sizeof(why)) < 0)
			json_object_set_new(ctxj, "journal_error", json_string(why));
		else
			json_object_set_new(ctxj, "journal", lines);
	}
	if (pkglog_cache_refresh(&ctx->pkglog, when_ms - ctx->upgrade_window_ms) < 0)
		json_object_set_new(ctxj, "upgrades_error",
				    json_string(ctx->pkglog.why));
	n = pkglog_window(&ctx->pkglog.log, when_ms, ctx->upgrade_window_ms, &first);
	json_object_set_new(ctxj, "upgrades",
			    pkglog_json(&ctx->pkglog.log, first, n,
					UPGRADES_IN_CONTEXT));
	if (n > 0) {
		pkglog_describe(&ctx->pkglog.log, first, n, when_ms, upgrades,
				sizeof(upgrades));
		u->fail_summary = xasprintf("%s failed %s", u->name, upgrades);
	} else if (result && *result) {
		u->fail_summary = xasprintf("%s failed (%s)", u->name, result);
	} else {
		u->fail_summary = xasprintf("%s failed", u->name);
	}
	fit_context(ctxj);
	u->fail_context = ctxj;
done:
	free(result);
	free(path);
}

static bool is_active(const struct unit *u)
{
	return strcmp(u->active, "active") == 0 ||
	       strcmp(u->active, "reloading") == 0;
}

static bool in_transition(const struct unit *u)
{
	return u->job || strcmp(u->active, "activating") == 0 ||
	       strcmp(u->active, "deactivating") == 0;
}

/*
 * Record the restarts NRestarts rose by since the last look, at the time
 * of this look.  NRestarts only counts (systemd resets it on an explicit
 * start), so it says nothing about now: the times do.
 */
static void account_restarts(struct unit *u)
{
	int64_t now = time_mono_ms();

	if (!u->have_restarts)
		return;
	for (uint32_t i = u->nrestarts_seen;
	     i < u->nrestarts && i - u->nrestarts_seen < RESTARTS_KEPT; i++)
		u->restart_ms[u->nrecorded++ % RESTARTS_KEPT] = now;
	u->nrestarts_seen = u->nrestarts;
}

/* Restarts seen within the window that ends now. */
static uint32_t recent_restarts(const struct services_ctx *ctx,
				const struct unit *u)
{
	int64_t since = time_mono_ms() - ctx->restarts_window_ms;
	uint32_t n = 0, kept = u->nrecorded < RESTARTS_KEPT ? u->nrecorded
							    : RESTARTS_KEPT;

	for (uint32_t i = 0; i < kept; i++)
		n += u->restart_ms[i] >= since;
	return n;
}

/* Waiting to be started again, or starting: in a loop right now. */
static bool auto_restarting(const struct unit *u)
{
	return strcmp(u->sub, "auto-restart") == 0 ||
	       strcmp(u->active, "activating") == 0;
}

/*
 * A restart loop: restarts_warning restarts seen within restarts_window,
 * or, for an agent that has not watched long enough to know (just
 * started), NRestarts at the threshold while the unit is being restarted.
 * A unit that restarted three times last month and runs now is fine.
 */
static bool restart_loop(const struct services_ctx *ctx, const struct unit *u)
{
	if (!u->have_restarts || ctx->restarts_warning == 0)
		return false;
	return recent_restarts(ctx, u) >= (uint32_t)ctx->restarts_warning ||
	       (auto_restarting(u) &&
		u->nrestarts >= (uint32_t)ctx->restarts_warning);
}

/*
 * Who reports the failure of u instead of this check (claims.h): a claim
 * on the unit itself, or on a timer that triggers it (TriggeredBy).  The
 * label, or NULL; asked once per failure.
 */
static const char *unit_claim(struct services_ctx *ctx, struct unit *u)
{
	const struct claims *c = ctx->env ? ctx->env->claims : NULL;
	const char *label = claims_find(c, u->name);
	char **triggers = NULL, *path;

	if (u->claim_checked)
		return u->claimed_by[0] ? u->claimed_by : NULL;
	if (label == NULL && claims_unit(c, 0) != NULL && ctx->bus != NULL) {
		path = systemd_unit_path(u->name);
		if (path == NULL || systemd_get_strv(ctx->bus, path, SYSTEMD_UNIT,
						     "TriggeredBy", &triggers,
						     NULL, 0) < 0) {
			free(path);
			return NULL; /* ask again next time */
		}
		for (size_t i = 0; triggers && triggers[i]; i++)
			if (label == NULL)
				label = claims_find(c, triggers[i]);
		for (size_t i = 0; triggers && triggers[i]; i++)
			free(triggers[i]);
		free(triggers);
		free(path);
	}
	u->claim_checked = true;
	strlcpy_safe(u->claimed_by, label ? label : "", sizeof(u->claimed_by));
	return label ? u->claimed_by : NULL;
}

/*
 * The state of a unit's item and its summary (and context, a new
 * reference or NULL); STATE_SKIP when there is nothing to say now.
 */
static int unit_state(struct services_ctx *ctx, struct unit *u, char *summary,
		      size_t size, json_t **ret_context)
{
	bool watched = matches(ctx->watch, u->name);

	*ret_context = NULL;
	account_restarts(u);
	if (strcmp(u->active, "failed") == 0 && ctx->report_failed &&
	    !matches(ctx->ignore, u->name)) {
		const char *owner = unit_claim(ctx, u);

		if (owner != NULL) {
			/* one ticket per failed backup job: the other check's;
			 * an ok resolves what this check said before the claim */
			if (!u->known_bad)
				return STATE_SKIP;
			snprintf(summary, size, "%s failed; %s reports it",
				 u->name, owner);
			return CHECK_OK;
		}
		describe_failure(ctx, u);
		strlcpy_safe(summary, u->fail_summary, size);
		*ret_context = json_incref(u->fail_context);
		return ctx->failed_state;
	}
	if (strcmp(u->active, "failed") != 0)
		unit_forget_failure(u);
	if (restart_loop(ctx, u)) {
		char window[32];

		format_duration(ctx->restarts_window_ms / 1000, window,
				sizeof(window));
		snprintf(summary, size,
			 "%s is restarting in a loop: %u restarts in the last %s, %u in all (%s/%s)",
			 u->name, recent_restarts(ctx, u), window, u->nrestarts,
			 u->active, u->sub);
		return CHECK_WARNING;
	}
	if (watched && !is_active(u)) {
		if (in_transition(u))
			return STATE_SKIP;
		snprintf(summary, size, "%s is %s (%s), it must be active",
			 u->name, u->active[0] ? u->active : "not loaded",
			 u->sub[0] ? u->sub : "-");
		return CHECK_CRITICAL;
	}
	if (!watched && !u->known_bad)
		return STATE_SKIP;
	if (in_transition(u) && !is_active(u))
		return STATE_SKIP;
	snprintf(summary, size, "%s is %s (%s)", u->name,
		 u->active[0] ? u->active : "inactive", u->sub[0] ? u->sub : "dead");
	return CHECK_OK;
}

/* Report the unit when its state says something (always, or on change). */
static void report_unit(struct services_ctx *ctx, struct unit *u,
			bool only_changes, struct check_results *out)
{
	char summary[1024];
	json_t *context, *metrics;
	struct check_result *r;
	int st = unit_state(ctx, u, summary, sizeof(summary), &context);

	if (st == STATE_SKIP || (only_changes && st == u->reported)) {
		json_decref(context);
		return;
	}
	metrics = u->have_restarts ? json_pack("{s:I, s:I}", "restarts",
					       (json_int_t)u->nrestarts,
					       "restarts_recent",
					       (json_int_t)recent_restarts(ctx, u))
				   : NULL;
	r = check_results_add(out, u->name, (enum check_state)st, metrics,
			      "%s", summary);
	r->context = context;
	if ((st != CHECK_OK) != u->known_bad) {
		u->known_bad = st != CHECK_OK;
		db_remember(ctx, u, u->known_bad);
	}
	u->reported = st;
}

/* --- signals --------------------------------------------------------------------- */

static void copy_state(char *dst, size_t size, const char *src)
{
	strlcpy_safe(dst, src ? src : "", size);
}

/* Read the a{sv} of a PropertiesChanged into the unit. */
static int read_changes(sd_bus_message *m, const char *iface, struct unit *u,
			bool *ret_interesting)
{
	int r = sd_bus_message_enter_container(m, SD_BUS_TYPE_ARRAY, "{sv}");

	while (r > 0) {
		const char *prop, *s, *jpath;
		uint32_t n;

		r = sd_bus_message_enter_container(m, SD_BUS_TYPE_DICT_ENTRY, "sv");
		if (r <= 0)
			break;
		r = sd_bus_message_read(m, "s", &prop);
		if (r < 0)
			break;
		if (strcmp(iface, SYSTEMD_UNIT) == 0 && strcmp(prop, "ActiveState") == 0 &&
		    sd_bus_message_read(m, "v", "s", &s) > 0) {
			copy_state(u->active, sizeof(u->active), s);
			*ret_interesting = true;
		} else if (strcmp(iface, SYSTEMD_UNIT) == 0 && strcmp(prop, "SubState") == 0 &&
			   sd_bus_message_read(m, "v", "s", &s) > 0) {
			copy_state(u->sub, sizeof(u->sub), s);
		} else if (strcmp(iface, SYSTEMD_UNIT) == 0 && strcmp(prop, "Job") == 0 &&
			   sd_bus_message_read(m, "v", "(uo)", &n, &jpath) > 0) {
			u->job = n != 0;
		} else if (strcmp(iface, SYSTEMD_SERVICE) == 0 &&
			   strcmp(prop, "NRestarts") == 0 &&
			   sd_bus_message_read(m, "v", "u", &n) > 0) {
			if (!u->have_restarts) /* the signal says it just rose */
				u->nrestarts_seen = n ? n - 1 : 0;
			u->nrestarts = n;
			u->have_restarts = true;
			*ret_interesting = true;
		} else {
			r = sd_bus_message_skip(m, "v");
			if (r < 0)
				break;
		}
		r = sd_bus_message_exit_container(m);
	}
	return r < 0 ? r : 0;
}

/*
 * A unit's properties changed.  Only units that matter get an entry:
 * failed ones, watched ones, restarting ones and those already known.
 * The evaluation waits until the bus queue is drained (handle_changes).
 */
static int on_properties_changed(sd_bus_message *m, void *userdata,
				 sd_bus_error *error)
{
	struct services_ctx *ctx = userdata;
	struct unit probe = { .reported = STATE_SKIP }, *u;
	const char *iface;
	char *name = NULL;
	bool interesting = false;

	(void)error;
	if (sd_bus_path_decode(sd_bus_message_get_path(m), SYSTEMD_UNIT_PREFIX, &name) <= 0 ||
	    sd_bus_message_read(m, "s", &iface) < 0)
		goto done;
	u = unit_find(ctx, name);
	if (u == NULL) {
		/* look at the change before spending an entry on it */
		if (read_changes(m, iface, &probe, &interesting) < 0 || !interesting)
			goto done;
		if (strcmp(probe.active, "failed") != 0 && !matches(ctx->watch, name) &&
		    !(probe.have_restarts && probe.nrestarts > 0) &&
		    strcmp(probe.sub, "auto-restart") != 0)
			goto done;
		u = unit_get(ctx, name);
		if (u == NULL)
			goto done;
		if (probe.active[0])
			memcpy(u->active, probe.active, sizeof(u->active));
		if (probe.sub[0])
			memcpy(u->sub, probe.sub, sizeof(u->sub));
		u->job = probe.job;
		if (probe.have_restarts) {
			/* the count just went up, by one at least */
			u->have_restarts = true;
			u->nrestarts = probe.nrestarts;
			u->nrestarts_seen = probe.nrestarts_seen;
		}
	} else if (read_changes(m, iface, u, &interesting) < 0 || !interesting) {
		goto done;
	}
	u->changed = true;
done:
	free(name);
	return 0;
}

/* Dispatch what the bus has queued; false when the connection is gone. */
static bool bus_drain(struct services_ctx *ctx)
{
	int r;

	while ((r = sd_bus_process(ctx->bus, NULL)) > 0)
		;
	if (r < 0) {
		snprintf(ctx->bus_error, sizeof(ctx->bus_error),
			 "lost the system bus: %s", strerror(-r));
		bus_drop(ctx);
		return false;
	}
	return true;
}

/* Whether a job (start, stop, restart) is queued for the unit at path. */
static bool unit_has_job(struct services_ctx *ctx, const char *path)
{
	sd_bus_error err = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	const char *job_path = NULL;
	uint32_t id = 0;
	int r = sd_bus_get_property(ctx->bus, SYSTEMD_DEST, path, SYSTEMD_UNIT, "Job",
				    &err, &reply, "(uo)");

	if (r >= 0)
		r = sd_bus_message_read(reply, "(uo)", &id, &job_path);
	sd_bus_error_free(&err);
	sd_bus_message_unref(reply);
	return r > 0 && id != 0;
}

/*
 * Ask for the unit's state now.  A signal may describe a passing state:
 * systemd 252 takes a service that will be restarted through "failed"
 * before "auto-restart", and a restart through "inactive"; the answer to
 * a call comes after systemd finished the transition.
 */
static void refresh_unit(struct services_ctx *ctx, struct unit *u)
{
	char *path = systemd_unit_path(u->name), *active = NULL, *sub = NULL;

	if (path == NULL)
		return;
	if (get_string(ctx, path, SYSTEMD_UNIT, "ActiveState", &active) == 0 &&
	    get_string(ctx, path, SYSTEMD_UNIT, "SubState", &sub) == 0) {
		copy_state(u->active, sizeof(u->active), active);
		copy_state(u->sub, sizeof(u->sub), sub);
	}
	u->job = unit_has_job(ctx, path);
	if (strcmp(u->sub, "auto-restart") == 0 && has_suffix(u->name, ".service") &&
	    get_trivial(ctx, path, SYSTEMD_SERVICE, "NRestarts", 'u', &u->nrestarts) == 0 &&
	    !u->have_restarts) {
		u->have_restarts = true;
		u->nrestarts_seen = u->nrestarts;
	}
	free(active);
	free(sub);
	free(path);
}

/* Report the units signals changed, when their state did; how many. */
static size_t handle_changes(struct services_ctx *ctx, struct check_results *out)
{
	size_t before = out->n;

	for (size_t i = 0; i < ctx->nunits; i++) {
		struct unit *u = &ctx->units[i];

		if (!u->changed)
			continue;
		u->changed = false;
		refresh_unit(ctx, u);
		report_unit(ctx, u, true, out);
	}
	return out->n - before;
}

static bool any_changed(const struct services_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nunits; i++)
		if (ctx->units[i].changed)
			return true;
	return false;
}

/* Whether sd-bus holds messages it has read but not dispatched. */
static bool bus_has_queued(struct services_ctx *ctx)
{
	uint64_t t = UINT64_MAX;

	return ctx->bus != NULL && sd_bus_get_timeout(ctx->bus, &t) >= 0 && t == 0;
}

/*
 * Dispatch what the bus has and report what it changed, until a pass
 * finds nothing new: handling a change makes calls, and sd-bus reads the
 * signals that arrive meanwhile into its queue, where the agent's poll()
 * of the socket cannot see them (a burst of restarts, then a failure,
 * would wait for the next poll on the interval).  Bounded, so that a
 * storm cannot hold the agent here: what is left then makes the kick
 * eventfd readable, and the agent calls on_ready again at once.  The
 * failed count goes out once, after the units that changed it.  false
 * when the bus was lost.
 */
static bool settle(struct services_ctx *ctx, struct check_results *out)
{
	size_t reported = 0;
	uint64_t one = 1, drained;
	bool ok = true;
	int pass;

	if (ctx->kick >= 0)
		(void)!read(ctx->kick, &drained, sizeof(drained));
	for (pass = 0; pass < SETTLE_PASSES_MAX; pass++) {
		if (!bus_drain(ctx)) {
			ok = false;
			break;
		}
		if (!any_changed(ctx))
			break;
		reported += handle_changes(ctx, out);
	}
	if (reported > 0)
		report_failed_summary(ctx, out);
	if (ok && pass == SETTLE_PASSES_MAX && ctx->kick >= 0 &&
	    (any_changed(ctx) || bus_has_queued(ctx)))
		(void)!write(ctx->kick, &one, sizeof(one));
	return ok;
}

/* --- the poll ---------------------------------------------------------------------- */

/* ListUnits: update every unit that matters, mark what was seen. */
static int poll_units(struct services_ctx *ctx)
{
	sd_bus_error err = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	const char *name, *desc, *load, *active, *sub, *follow, *path, *jtype, *jpath;
	uint32_t job;
	int r;

	for (size_t i = 0; i < ctx->nunits; i++)
		ctx->units[i].seen = false;
	r = sd_bus_call_method(ctx->bus, SYSTEMD_DEST, SYSTEMD_PATH, SYSTEMD_MANAGER,
			       "ListUnits", &err, &reply, NULL);
	if (r < 0) {
		snprintf(ctx->bus_error, sizeof(ctx->bus_error),
			 "ListUnits failed: %s",
			 err.message ? err.message : strerror(-r));
		sd_bus_error_free(&err);
		return r;
	}
	r = sd_bus_message_enter_container(reply, SD_BUS_TYPE_ARRAY, "(ssssssouso)");
	while (r > 0 &&
	       (r = sd_bus_message_read(reply, "(ssssssouso)", &name, &desc, &load,
					&active, &sub, &follow, &path, &job,
					&jtype, &jpath)) > 0) {
		struct unit *u = unit_find(ctx, name);

		if (u == NULL && strcmp(active, "failed") != 0 &&
		    strcmp(sub, "auto-restart") != 0 && !matches(ctx->watch, name))
			continue;
		if (u == NULL && (u = unit_get(ctx, name)) == NULL)
			continue;
		copy_state(u->active, sizeof(u->active), active);
		copy_state(u->sub, sizeof(u->sub), sub);
		u->job = job != 0;
		u->seen = true;
	}
	sd_bus_message_unref(reply);
	if (r < 0)
		snprintf(ctx->bus_error, sizeof(ctx->bus_error),
			 "cannot read the unit list: %s", strerror(-r));
	return r < 0 ? r : 0;
}

/*
 * Watched names without a glob that ListUnits did not show (not loaded:
 * never started, or no such unit file): load them to say which.
 */
static void poll_unlisted_watched(struct services_ctx *ctx)
{
	for (size_t i = 0; ctx->watch && ctx->watch[i]; i++) {
		const char *name = ctx->watch[i];
		char *path = NULL, *load = NULL, *active = NULL, *sub = NULL;
		struct unit *u;

		if (is_glob(name) || ((u = unit_find(ctx, name)) && u->seen))
			continue;
		if ((u = unit_get(ctx, name)) == NULL)
			continue;
		u->seen = true;
		if (systemd_load_unit(ctx->bus, name, &path, NULL, 0) == 0 &&
		    get_string(ctx, path, SYSTEMD_UNIT, "LoadState", &load) == 0 &&
		    get_string(ctx, path, SYSTEMD_UNIT, "ActiveState", &active) == 0 &&
		    get_string(ctx, path, SYSTEMD_UNIT, "SubState", &sub) == 0) {
			copy_state(u->active, sizeof(u->active),
				   strcmp(load, "not-found") == 0 ? "" : active);
			copy_state(u->sub, sizeof(u->sub),
				   strcmp(load, "not-found") == 0 ? "no such unit" : sub);
		}
		free(path);
		free(load);
		free(active);
		free(sub);
	}
}

/* NRestarts of the service units that may be in a loop. */
static void poll_restarts(struct services_ctx *ctx)
{
	for (size_t i = 0; i < ctx->nunits; i++) {
		struct unit *u = &ctx->units[i];
		char *path;

		if (!u->seen || !has_suffix(u->name, ".service"))
			continue;
		path = systemd_unit_path(u->name);
		if (path && get_trivial(ctx, path, SYSTEMD_SERVICE, "NRestarts", 'u',
					&u->nrestarts) == 0 && !u->have_restarts) {
			/* no history yet: old restarts are not a rise */
			u->have_restarts = true;
			u->nrestarts_seen = u->nrestarts;
		}
		free(path);
	}
}

static void report_failed_summary(struct services_ctx *ctx,
				  struct check_results *out)
{
	struct check_names names, left;
	char buf[768], left_buf[512];

	if (!ctx->report_failed)
		return;
	check_names_init(&names, buf, sizeof(buf), NAMES_IN_SUMMARY);
	check_names_init(&left, left_buf, sizeof(left_buf), NAMES_IN_SUMMARY);
	for (size_t i = 0; i < ctx->nunits; i++) {
		struct unit *u = &ctx->units[i];
		const char *owner;
		char one[256];

		if (strcmp(u->active, "failed") != 0 || matches(ctx->ignore, u->name))
			continue;
		/* a unit another check reports counts there, not here */
		owner = unit_claim(ctx, u);
		if (owner == NULL) {
			check_names_add(&names, u->name);
			continue;
		}
		snprintf(one, sizeof(one), "%s (%s)", u->name, owner);
		check_names_add(&left, one);
	}
	check_names_end(&names);
	check_names_end(&left);
	check_results_add(out, "failed",
			  names.total ? (enum check_state)ctx->failed_state : CHECK_OK,
			  json_pack("{s:I}", "failed", (json_int_t)names.total),
			  "%zu failed unit%s%s%s%s%s", names.total,
			  names.total == 1 ? "" : "s", names.total ? ": " : "", buf,
			  left.total ? "; reported by other checks: " : "",
			  left_buf);
}

/* One timer: the result of the last run of the unit it triggers. */
static void report_timer(struct services_ctx *ctx, const char *timer,
			 int64_t now_ms, struct check_results *out)
{
	struct unitrun u;
	char ago[32], max[32];
	const char *result, *owner;
	int64_t age_s;
	json_t *m;

	owner = claims_find(ctx->env ? ctx->env->claims : NULL, timer);
	if (owner != NULL) {
		check_results_add(out, timer, CHECK_OK, NULL,
				  "%s: %s reports its runs", timer, owner);
		return;
	}
	if (unitrun_read(ctx->bus, timer, &u, NULL, 0) < 0 ||
	    strcmp(u.unit, u.service) == 0) {
		/* not loaded, or systemd would not say what it triggers */
		check_results_add(out, timer, CHECK_UNKNOWN, NULL,
				  "%s: no such timer, or systemd did not say", timer);
		return;
	}
	if (u.last_trigger_us == 0) {
		check_results_add(out, timer,
				  ctx->timer_max_age_ms ? CHECK_WARNING : CHECK_OK,
				  NULL, "%s has not triggered %s yet", timer, u.service);
		return;
	}
	age_s = now_ms / 1000 - (int64_t)(u.last_trigger_us / 1000000);
	if (age_s < 0)
		age_s = 0;
	format_duration(age_s, ago, sizeof(ago));
	m = json_pack("{s:f}", "last_run_hours", (double)age_s / 3600);
	result = u.result[0] ? u.result : NULL;
	if (result && strcmp(result, "success") != 0 && u.active_state[0] &&
	    strcmp(u.active_state, "activating") != 0 &&
	    strcmp(u.active_state, "active") != 0) {
		check_results_add(out, timer, CHECK_CRITICAL, m,
				  "%s: the last run of %s %s ago failed (%s)",
				  timer, u.service, ago, result);
	} else if (ctx->timer_max_age_ms && age_s * 1000 > ctx->timer_max_age_ms) {
		format_duration(ctx->timer_max_age_ms / 1000, max, sizeof(max));
		check_results_add(out, timer, CHECK_WARNING, m,
				  "%s last ran %s %s ago, more than %s", timer,
				  u.service, ago, max);
	} else {
		check_results_add(out, timer, CHECK_OK, m,
				  "%s: %s ran %s ago (%s)", timer, u.service, ago,
				  result ? result : "?");
	}
}

/* Timers named or matched by the configuration, each once. */
static void report_timers(struct services_ctx *ctx, int64_t now_ms,
			  struct check_results *out)
{
	sd_bus_error err = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	const char *name, *desc, *load, *active, *sub, *follow, *path, *jtype, *jpath;
	uint32_t job;
	int r;

	for (size_t i = 0; ctx->timers && ctx->timers[i]; i++) {
		const char *pattern = ctx->timers[i];
		size_t found = 0;

		if (!is_glob(pattern)) {
			report_timer(ctx, pattern, now_ms, out);
			continue;
		}
		r = sd_bus_call_method(ctx->bus, SYSTEMD_DEST, SYSTEMD_PATH, SYSTEMD_MANAGER,
				       "ListUnitsByPatterns", &err, &reply,
				       "asas", 0, 1, pattern);
		sd_bus_error_free(&err);
		if (r >= 0)
			r = sd_bus_message_enter_container(reply, SD_BUS_TYPE_ARRAY,
							   "(ssssssouso)");
		while (r > 0 &&
		       (r = sd_bus_message_read(reply, "(ssssssouso)", &name, &desc,
						&load, &active, &sub, &follow, &path,
						&job, &jtype, &jpath)) > 0) {
			report_timer(ctx, name, now_ms, out);
			found++;
		}
		reply = sd_bus_message_unref(reply);
		if (found == 0)
			check_results_add(out, pattern, CHECK_WARNING, NULL,
					  "no timer matches '%s'", pattern);
	}
}

/* Watched globs without a single match are a problem of their own. */
static void report_unmatched_watch(struct services_ctx *ctx,
				   struct check_results *out)
{
	for (size_t i = 0; ctx->watch && ctx->watch[i]; i++) {
		bool found = false;

		if (!is_glob(ctx->watch[i]))
			continue;
		for (size_t j = 0; j < ctx->nunits && !found; j++)
			found = ctx->units[j].seen &&
				fnmatch(ctx->watch[i], ctx->units[j].name, 0) == 0;
		check_results_add(out, ctx->watch[i],
				  found ? CHECK_OK : CHECK_CRITICAL, NULL,
				  found ? "units matching '%s' are watched"
					: "no unit matches '%s', which must be active",
				  ctx->watch[i]);
	}
}

static void report_bus_down(struct services_ctx *ctx, struct check_results *out)
{
	check_results_add(out, "failed", CHECK_UNKNOWN, NULL, "%s", ctx->bus_error);
}

static int services_collect(void *p, int64_t now_ms, struct check_results *out)
{
	struct services_ctx *ctx = p;

	db_prepare_once(ctx);
	db_forget_pending(ctx);
	if (bus_connect(ctx) < 0 || !bus_drain(ctx)) {
		report_bus_down(ctx, out);
		return 0;
	}
	if (poll_units(ctx) < 0) {
		report_bus_down(ctx, out);
		bus_drop(ctx);
		return 0;
	}
	poll_unlisted_watched(ctx);
	for (size_t i = 0; i < ctx->nunits; i++) {
		struct unit *u = &ctx->units[i];

		if (!u->seen) {
			/* gone from the list: unloaded, hence not failed */
			copy_state(u->active, sizeof(u->active), "inactive");
			copy_state(u->sub, sizeof(u->sub), "dead");
			u->job = false;
		}
	}
	poll_restarts(ctx);
	for (size_t i = 0; i < ctx->nunits; i++) {
		struct unit *u = &ctx->units[i];

		u->changed = false;
		report_unit(ctx, u, false, out);
	}
	report_failed_summary(ctx, out);
	report_unmatched_watch(ctx, out);
	report_timers(ctx, now_ms, out);
	units_prune(ctx);
	/* signals that came in during the calls above */
	if (ctx->bus)
		settle(ctx, out);
	return 0;
}

static int services_watch_fd(void *p)
{
	struct services_ctx *ctx = p;

	return ctx->bus && ctx->subscribed ? ctx->epfd : -1;
}

static int services_on_ready(void *p, int64_t now_ms, struct check_results *out)
{
	struct services_ctx *ctx = p;

	(void)now_ms;
	db_forget_pending(ctx);
	if (ctx->bus == NULL)
		return 0;
	if (!settle(ctx, out))
		report_bus_down(ctx, out);
	return 0;
}

const struct check check_services = {
	.name = "services",
	.default_interval_ms = 60 * 1000,
	.enabled_by_default = true,
	.configure = services_configure,
	.collect = services_collect,
	.free = services_free,
	.watch_fd = services_watch_fd,
	.on_ready = services_on_ready,
};
