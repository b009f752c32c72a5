#include "liveness.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/config.h"
#include "../common/db.h"
#include "../common/log.h"
#include "../common/util.h"
#include "metrics.h"
#include "store.h"
#include "writer.h"

/* Hosts flagged in one round at most; the rest wait for the next one. */
#define ROUND_MAX 1000
/* An interval_s outside these bounds is not believed. */
#define INTERVAL_MIN_MS 1000
#define INTERVAL_MAX_MS (24 * 3600 * 1000LL)

static const char *const liveness_steps[] = {
	/* 1: the last heartbeat of every host that ever sent one */
	"CREATE TABLE liveness ("
	"  host_id INTEGER PRIMARY KEY REFERENCES hosts(id),"
	"  last_heartbeat INTEGER NOT NULL," /* the collector's clock */
	"  last_observed INTEGER NOT NULL,"  /* the agent's clock */
	"  interval_ms INTEGER,"	     /* NULL: liveness.default_interval */
	"  silent_since INTEGER);",	     /* flagged at; NULL while alive */
};

const struct db_schema liveness_schema = {
	.module = "liveness",
	.steps = liveness_steps,
	.nsteps = ARRAY_SIZE(liveness_steps),
};

enum stmt {
	STMT_STATE,
	STMT_HEARTBEAT,
	STMT_CANDIDATES,
	STMT_FLAG,
	STMT_TALLY,
	STMT_COUNT,
};

static const char *const stmt_sql[STMT_COUNT] = {
	[STMT_STATE] = "SELECT silent_since, last_heartbeat, last_observed"
		       " FROM liveness WHERE host_id = ?1",
	[STMT_HEARTBEAT] =
		"INSERT INTO liveness(host_id, last_heartbeat, last_observed,"
		" interval_ms) VALUES (?1, ?2, ?3, ?4)"
		" ON CONFLICT(host_id) DO UPDATE SET"
		" last_heartbeat = max(last_heartbeat, ?2),"
		" last_observed = max(last_observed, ?3),"
		" interval_ms = ?4, silent_since = NULL",
	/*
	 * A scan, but of one small row per host every few seconds; the
	 * deadline depends on settings that a reload may change, so it is
	 * not stored.
	 */
	[STMT_CANDIDATES] =
		"SELECT l.host_id, h.name, l.last_heartbeat, l.last_observed,"
		" coalesce(l.interval_ms, ?3)"
		" FROM liveness l JOIN hosts h ON h.id = l.host_id"
		" WHERE l.silent_since IS NULL"
		" AND max(l.last_heartbeat, ?1) + ?2 * coalesce(l.interval_ms, ?3) <= ?4"
		" ORDER BY l.last_heartbeat LIMIT ?5",
	[STMT_FLAG] = "UPDATE liveness SET silent_since = ?2"
		      " WHERE host_id = ?1 AND silent_since IS NULL"
		      " AND last_heartbeat = ?3",
	[STMT_TALLY] = "SELECT count(*), count(silent_since) FROM liveness",
};

struct liveness {
	struct store *st;
	struct writer *w;
	sqlite3_stmt *stmt[STMT_COUNT];
	struct store *reader;	/* /metrics reads here; NULL: st */
	sqlite3_stmt *tally;	/* STMT_TALLY on the reader */
	int64_t start_ms;
	pthread_t thread;
	pthread_mutex_t lock; /* conf, stopping */
	pthread_cond_t wake;
	struct liveness_config conf;
	bool stopping;
	bool running;
	atomic_uint_fast64_t rounds;  /* timer rounds done */
	atomic_uint_fast64_t flagged; /* hosts found silent */
};

void liveness_config_defaults(struct liveness_config *conf)
{
	*conf = (struct liveness_config){
		.missed_heartbeats = 3,
		.default_interval_ms = 60 * 1000,
		.check_every_ms = 5 * 1000,
	};
}

void liveness_parse(struct cfg *cfg, const struct cfg_node *node,
		    struct liveness_config *conf)
{
	int64_t v;

	if (cfg_expect_map(cfg, node) < 0)
		return;
	if (cfg_get_int(cfg, node, "missed_heartbeats", 1, 1000, &v) > 0)
		conf->missed_heartbeats = v;
	if (cfg_get_duration(cfg, node, "default_interval", &v) > 0) {
		if (v < INTERVAL_MIN_MS || v > INTERVAL_MAX_MS)
			cfg_error(cfg, cfg_get(cfg, node, "default_interval"),
				  "default_interval must be between 1s and 1d");
		else
			conf->default_interval_ms = v;
	}
	if (cfg_get_duration(cfg, node, "check_every", &v) > 0) {
		if (v < 100 || v > 600 * 1000)
			cfg_error(cfg, cfg_get(cfg, node, "check_every"),
				  "check_every must be between 100ms and 10m");
		else
			conf->check_every_ms = v;
	}
}

/* metrics.interval_s of a heartbeat in ms, or 0 when absent or absurd. */
static int64_t heartbeat_interval_ms(const char *metrics)
{
	json_t *doc = metrics ? json_loads(metrics, 0, NULL) : NULL;
	json_t *v = json_object_get(doc, "interval_s");
	int64_t ms = 0;

	if (json_is_number(v)) {
		double s = json_number_value(v);

		if (s * 1000 >= INTERVAL_MIN_MS && s * 1000 <= INTERVAL_MAX_MS)
			ms = (int64_t)(s * 1000);
	}
	json_decref(doc);
	return ms;
}

static bool is_heartbeat(const struct ingest_event *ev)
{
	return strcmp(ev->check, LIVENESS_CHECK) == 0 &&
	       strcmp(ev->item, LIVENESS_ITEM) == 0;
}

/* The host's silence state: 1 and the fields when it has a row, 0 when not. */
static int host_state(struct liveness *lv, int64_t host_id,
		      int64_t *ret_silent_since, int64_t *ret_last_heartbeat,
		      int64_t *ret_last_observed)
{
	sqlite3_stmt *s = lv->stmt[STMT_STATE];
	int rc, found = 0;

	sqlite3_bind_int64(s, 1, host_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*ret_silent_since = sqlite3_column_type(s, 0) == SQLITE_NULL
					    ? 0
					    : sqlite3_column_int64(s, 0);
		*ret_last_heartbeat = sqlite3_column_int64(s, 1);
		*ret_last_observed = sqlite3_column_int64(s, 2);
		found = 1;
		rc = SQLITE_DONE;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_DONE ? found : sqlite_to_errno(rc);
}

static int record_heartbeat(struct liveness *lv, int64_t host_id,
			    int64_t now_ms, int64_t observed_ms,
			    int64_t interval_ms)
{
	sqlite3_stmt *s = lv->stmt[STMT_HEARTBEAT];

	sqlite3_bind_int64(s, 1, host_id);
	sqlite3_bind_int64(s, 2, now_ms);
	sqlite3_bind_int64(s, 3, observed_ms);
	if (interval_ms > 0)
		sqlite3_bind_int64(s, 4, interval_ms);
	else
		sqlite3_bind_null(s, 4);
	return db_step_done(s);
}

/*
 * A batch with heartbeats from a host that was silent: the first ok
 * heartbeat newer than the silence carries the gap in its summary, so
 * the journal line of the resolution says how long the host was gone.
 * The copy of the events and the new summary belong to the caller.
 */
static struct ingest_event *events_with_gap(const struct lifecycle_config *lc,
					    const struct ingest_batch *b,
					    int64_t now_ms, int64_t gap_ms,
					    int64_t last_observed_ms,
					    char **ret_summary)
{
	struct ingest_event *evs = xreallocarray(NULL, b->nevents, sizeof(*evs));
	char gap[32];

	memcpy(evs, b->events, b->nevents * sizeof(*evs));
	*ret_summary = NULL;
	format_duration(gap_ms / 1000, gap, sizeof(gap));
	for (size_t i = 0; i < b->nevents; i++) {
		if (!is_heartbeat(&evs[i]) || evs[i].state != CHECK_OK ||
		    dedup_cap_observed(lc, evs[i].observed_ms, now_ms) <=
			    last_observed_ms)
			continue;
		*ret_summary = xasprintf("%s; back after %s of silence",
					 evs[i].summary, gap);
		evs[i].summary = *ret_summary;
		break;
	}
	return evs;
}

int liveness_ingest(struct liveness *lv, struct store *st,
		    const struct ingest_batch *batch, int64_t now_ms,
		    struct dedup_stats *ret_stats)
{
	int64_t host_id, observed = INT64_MIN, interval = 0;
	int64_t silent_since = 0, last_heartbeat = 0, last_observed = 0;
	struct ingest_event *evs = NULL;
	char *summary = NULL;
	struct dedup *d;
	int r;

	for (size_t i = 0; i < batch->nevents; i++) {
		if (!is_heartbeat(&batch->events[i]))
			continue;
		/* The newest heartbeat of the batch says the interval. */
		if (batch->events[i].observed_ms >= observed) {
			observed = batch->events[i].observed_ms;
			interval = heartbeat_interval_ms(batch->events[i].metrics);
		}
	}
	if (observed == INT64_MIN)
		return dedup_apply(st, batch, now_ms, ret_stats);
	d = dedup_get(st);
	if (d == NULL)
		return -ENOMEM;
	/*
	 * On the lifecycle's timeline: the silence is dated just after it,
	 * so a clock that ran a year ahead cannot date it beyond every
	 * correctly dated heartbeat to come.
	 */
	observed = dedup_cap_observed(d->lc, observed, now_ms);

	r = store_host_touch(st, batch->host, now_ms, &host_id);
	if (r == 0)
		r = host_state(lv, host_id, &silent_since, &last_heartbeat,
			       &last_observed);
	if (r < 0)
		return r;
	if (r == 1 && silent_since > 0) {
		evs = events_with_gap(d->lc, batch, now_ms,
				      now_ms - last_heartbeat, last_observed,
				      &summary);
		r = dedup_apply_events(st, batch->host, evs, batch->nevents,
				       now_ms, ret_stats);
	} else {
		r = dedup_apply(st, batch, now_ms, ret_stats);
	}
	if (r == 0)
		r = record_heartbeat(lv, host_id, now_ms, observed, interval);
	free(evs);
	free(summary);
	return r;
}

struct candidate {
	int64_t host_id;
	char *name;
	int64_t last_heartbeat_ms;
	int64_t last_observed_ms;
	int64_t interval_ms;
};

struct round {
	struct liveness *lv;
	struct candidate *c;
	size_t n;
	int64_t now_ms;
	int64_t missed;
	int64_t default_interval_ms;
	int flagged;
};

static void round_free(struct round *rd)
{
	for (size_t i = 0; i < rd->n; i++)
		free(rd->c[i].name);
	free(rd->c);
}

/* Read, under the store lock, the hosts that look silent at now_ms. */
static int find_candidates(struct liveness *lv, struct round *rd)
{
	sqlite3_stmt *s = lv->stmt[STMT_CANDIDATES];
	int rc;

	rd->c = xcalloc(ROUND_MAX, sizeof(*rd->c));
	store_lock(lv->st);
	sqlite3_bind_int64(s, 1, lv->start_ms);
	sqlite3_bind_int64(s, 2, rd->missed);
	sqlite3_bind_int64(s, 3, rd->default_interval_ms);
	sqlite3_bind_int64(s, 4, rd->now_ms);
	sqlite3_bind_int64(s, 5, ROUND_MAX);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW && rd->n < ROUND_MAX) {
		struct candidate *c = &rd->c[rd->n++];

		c->host_id = sqlite3_column_int64(s, 0);
		c->name = xstrdup((const char *)sqlite3_column_text(s, 1));
		c->last_heartbeat_ms = sqlite3_column_int64(s, 2);
		c->last_observed_ms = sqlite3_column_int64(s, 3);
		c->interval_ms = sqlite3_column_int64(s, 4);
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	store_unlock(lv->st);
	return rc == SQLITE_DONE || rc == SQLITE_ROW ? 0 : sqlite_to_errno(rc);
}

/* "web01 silent for 3 min (last heartbeat 2026-12-01 10:00 UTC, expected every 60 s)" */
static char *silence_summary(const struct candidate *c, int64_t now_ms)
{
	char stamp[TIME_RFC3339_LEN], gap[32], every[32];

	time_format_rfc3339(c->last_heartbeat_ms, stamp);
	stamp[10] = ' ';
	stamp[16] = '\0';
	format_duration((now_ms - c->last_heartbeat_ms) / 1000, gap,
			sizeof(gap));
	format_duration(c->interval_ms / 1000, every, sizeof(every));
	return xasprintf("%s silent for %s (last heartbeat %s UTC, expected every %s)",
			 c->name, gap, stamp, every);
}

/*
 * Flag one host and raise its critical heartbeat event.  The event is
 * dated just after the host's last heartbeat in the agent's own clock:
 * the silence began then, and the agent's next heartbeat, whatever the
 * skew between the two clocks, is newer and resolves it.
 */
static int raise_silence(struct round *rd, const struct candidate *c)
{
	struct liveness *lv = rd->lv;
	sqlite3_stmt *s = lv->stmt[STMT_FLAG];
	struct ingest_event ev = { 0 };
	struct dedup_stats stats;
	char uuid[UUID_STR_LEN];
	int r;

	sqlite3_bind_int64(s, 1, c->host_id);
	sqlite3_bind_int64(s, 2, rd->now_ms);
	sqlite3_bind_int64(s, 3, c->last_heartbeat_ms);
	r = db_step_done(s);
	if (r < 0)
		return r;
	/* A heartbeat arrived since the candidates were read. */
	if (sqlite3_changes(store_db(lv->st)) == 0)
		return 0;
	r = uuid_generate(uuid);
	if (r == 0)
		r = uuid_to_bytes(uuid, ev.id);
	if (r < 0)
		return r;
	ev.check = LIVENESS_CHECK;
	ev.item = LIVENESS_ITEM;
	ev.state = CHECK_CRITICAL;
	ev.observed_ms = c->last_observed_ms + 1;
	ev.metrics = xasprintf("{\"silent_s\":%lld,\"interval_s\":%lld}",
			       (long long)((rd->now_ms - c->last_heartbeat_ms) / 1000),
			       (long long)(c->interval_ms / 1000));
	ev.summary = silence_summary(c, rd->now_ms);
	/* Raised once per silence: confirm_after has no repeats to count. */
	r = dedup_apply_raised(lv->st, c->name, &ev, 1, rd->now_ms, &stats);
	free(ev.metrics);
	free((char *)(uintptr_t)ev.summary);
	if (r < 0)
		return r;
	rd->flagged++;
	return 0;
}

/* Writer job: every candidate of a round, all in one commit. */
static int round_apply(struct store *st, void *arg)
{
	struct round *rd = arg;
	int r = 0;

	(void)st;
	rd->flagged = 0;
	for (size_t i = 0; r == 0 && i < rd->n; i++)
		r = raise_silence(rd, &rd->c[i]);
	return r < 0 ? r : rd->flagged;
}

int liveness_check_now(struct liveness *lv, int64_t now_ms)
{
	struct round rd = { .lv = lv, .now_ms = now_ms };
	int r;

	pthread_mutex_lock(&lv->lock);
	rd.missed = lv->conf.missed_heartbeats;
	rd.default_interval_ms = lv->conf.default_interval_ms;
	pthread_mutex_unlock(&lv->lock);
	r = find_candidates(lv, &rd);
	if (r == 0 && rd.n > 0)
		r = writer_run(lv->w, round_apply, &rd);
	round_free(&rd);
	if (r > 0)
		lv->flagged += (unsigned)r;
	lv->rounds++;
	return r;
}

/* The timer: a round every check_every until liveness_stop(). */
static void *timer_main(void *p)
{
	struct liveness *lv = p;

	pthread_mutex_lock(&lv->lock);
	while (!lv->stopping) {
		struct timespec until = time_mono_deadline(lv->conf.check_every_ms);
		int r;

		while (!lv->stopping &&
		       pthread_cond_timedwait(&lv->wake, &lv->lock, &until) !=
			       ETIMEDOUT)
			;
		if (lv->stopping)
			break;
		pthread_mutex_unlock(&lv->lock);
		r = liveness_check_now(lv, time_now_ms());
		if (r > 0)
			log_notice("silence detection: %d host%s stopped sending heartbeats",
				   r, r == 1 ? "" : "s");
		else if (r < 0 && r != -ESHUTDOWN)
			log_warnx("silence detection failed: %s (%s)",
				  strerror(-r), store_errmsg(lv->st));
		pthread_mutex_lock(&lv->lock);
	}
	pthread_mutex_unlock(&lv->lock);
	return NULL;
}

int liveness_attach_reader(struct liveness *lv, struct store *reader)
{
	int r = store_prepare(reader, stmt_sql[STMT_TALLY], &lv->tally);

	if (r == 0)
		lv->reader = reader;
	return r;
}

void liveness_metrics(void *arg, struct metrics_out *out)
{
	struct liveness *lv = arg;
	struct store *st = lv->reader ? lv->reader : lv->st;
	sqlite3_stmt *s = lv->reader ? lv->tally : lv->stmt[STMT_TALLY];
	int64_t tracked = 0, silent = 0;

	/* On the reader: a scrape does not wait for the writer's commits. */
	store_lock(st);
	if (sqlite3_step(s) == SQLITE_ROW) {
		tracked = sqlite3_column_int64(s, 0);
		silent = sqlite3_column_int64(s, 1);
	}
	sqlite3_reset(s);
	store_unlock(st);
	metrics_counter(out, "tocsin_silence_rounds_total",
			"Rounds of silence detection done.", NULL, lv->rounds);
	metrics_counter(out, "tocsin_silence_flagged_total",
			"Hosts found silent (one critical heartbeat event each).",
			NULL, lv->flagged);
	metrics_gauge(out, "tocsin_heartbeat_hosts",
		      "Hosts that sent heartbeats, by state.",
		      "state=\"alive\"", (double)(tracked - silent));
	metrics_gauge(out, "tocsin_heartbeat_hosts", NULL, "state=\"silent\"",
		      (double)silent);
}

void liveness_configure(struct liveness *lv, const struct liveness_config *conf)
{
	pthread_mutex_lock(&lv->lock);
	lv->conf = *conf;
	pthread_cond_signal(&lv->wake);
	pthread_mutex_unlock(&lv->lock);
}

int liveness_start(struct store *st, struct writer *w,
		   const struct liveness_config *conf, int64_t start_ms,
		   struct liveness **ret)
{
	struct liveness *lv = xcalloc(1, sizeof(*lv));
	int r = 0;

	lv->st = st;
	lv->w = w;
	lv->conf = *conf;
	lv->start_ms = start_ms;
	pthread_mutex_init(&lv->lock, NULL);
	cond_init_monotonic(&lv->wake);
	for (int i = 0; r == 0 && i < STMT_COUNT; i++)
		r = store_prepare(st, stmt_sql[i], &lv->stmt[i]);
	if (r == 0) {
		r = -pthread_create(&lv->thread, NULL, timer_main, lv);
		lv->running = r == 0;
	}
	if (r < 0) {
		liveness_stop(lv);
		return r;
	}
	*ret = lv;
	return 0;
}

void liveness_stop(struct liveness *lv)
{
	if (lv == NULL)
		return;
	if (lv->running) {
		pthread_mutex_lock(&lv->lock);
		lv->stopping = true;
		pthread_cond_signal(&lv->wake);
		pthread_mutex_unlock(&lv->lock);
		pthread_join(lv->thread, NULL);
	}
	for (int i = 0; i < STMT_COUNT; i++)
		sqlite3_finalize(lv->stmt[i]);
	sqlite3_finalize(lv->tally);
	pthread_cond_destroy(&lv->wake);
	pthread_mutex_destroy(&lv->lock);
	free(lv);
}
