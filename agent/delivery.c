#include "delivery.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../common/log.h"
#include "../common/util.h"
#include "agent.h"
#include "credential.h"
#include "deliverer.h"
#include "event.h"
#include "held.h"
#include "outbox.h"
#include "service.h"
#include "statedb.h"

#define JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))
/* Retry-After beyond this is not honoured as given. */
#define RETRY_AFTER_MAX_MS (3600 * 1000)
/* A failed scheduled rotation is tried again after this. */
#define ROTATE_RETRY_MS (10 * 60 * 1000)
/* While the outbox stays full, repeat the drop summary this often. */
#define DROP_LOG_EVERY_MS (15 * 60 * 1000)
/* Results held in memory while the outbox cannot be written (held.h). */
#define HELD_MAX 1000
/* ... tried again in the outbox this often, and sent directly this many at once */
#define HELD_RETRY_MS 5000
#define HELD_DIRECT_MAX 100
#define EVENTS_PATH "/api/v1/events"

enum attempt {
	ATTEMPT_EMPTY,	 /* nothing to send */
	ATTEMPT_SENT,	 /* acknowledged, or settled (a refused event dropped) */
	ATTEMPT_FAILED,	 /* try again later; d->why says why */
	ATTEMPT_ABORTED, /* should_abort said so */
	ATTEMPT_STARTED, /* a request is with the deliverer */
};

/* What the deliverer is working on. */
enum job {
	JOB_NONE,
	JOB_BATCH,  /* d->batch, from the outbox */
	JOB_DIRECT, /* d->direct: held events, which the outbox could not take */
	JOB_ROTATE, /* the scheduled credential rotation */
};

struct delivery {
	struct outbox *ob;
	sqlite3 *db;		/* the state database: the wait is kept there */
	const struct agent_config *conf;
	char *collectors;	/* conf's URLs as one string: what a kept wait is for */
	bool (*should_abort)(void *);
	void *abort_arg;
	char *credential_path; /* NULL when the token is configured */
	char *deliverer_path;
	struct deliverer *dv;	    /* the running deliverer, or NULL */
	struct deliverer *retiring; /* asked to exit, not reaped yet */
	int64_t retire_deadline_ms;
	int64_t idle_since_ms;	    /* monotonic; dv has nothing to do */
	/* failover, kept across deliverers */
	size_t current;		    /* the URL that answered last */
	int64_t primary_retry_at_ms;
	/* the request in flight */
	enum job job;
	int64_t job_deadline_ms;
	struct outbox_batch batch;
	json_t *direct;		/* the held events in flight (JOB_DIRECT) */
	/* results the outbox could not take, until it can */
	struct held held;
	int64_t held_retry_ms;	/* monotonic; when to try the outbox again */
	int64_t held_logged_ms; /* monotonic; 0: not said in this streak */
	size_t *sent;		/* during a flush: events acknowledged */
	/* what to send next, and when */
	size_t limit;		/* events in the next batch: halved on 400/413 */
	bool pending;		/* the outbox may hold something */
	bool change_queued;	/* ... and a state change is among it */
	int64_t drained_ms;	/* monotonic; the outbox was last empty */
	int64_t delay_ms;	/* last backoff delay; 0 after a success */
	int64_t next_try_ms;	/* monotonic */
	int64_t retry_after_ms; /* the last answer's Retry-After */
	int64_t retry_until_ms; /* monotonic; not before, said Retry-After */
	unsigned failures;	/* consecutive failed attempts */
	bool wait_saved;	/* a wait is in the state database */
	bool wait_unsaved_logged; /* a failed save was logged in this streak */
	int64_t rotate_retry_ms; /* monotonic; a failed rotation waits */
	int64_t drop_logged_ms;
	char why[1024];
};

int64_t delivery_backoff_next(int64_t prev_ms, int64_t base_ms,
			      int64_t cap_ms, uint32_t random)
{
	int64_t hi = prev_ms * 3, v;

	if (hi <= base_ms)
		v = base_ms;
	else
		v = base_ms + (int64_t)(random % (uint64_t)(hi - base_ms + 1));
	return v < cap_ms ? v : cap_ms;
}

/* The collectors' URLs as one string: what a wait kept applies to. */
static char *collectors_key(const struct agent_config *conf)
{
	size_t n = 1;
	char *key;

	for (size_t i = 0; conf->server_urls[i]; i++)
		n += strlen(conf->server_urls[i]) + 1;
	key = xcalloc(1, n);
	for (size_t i = 0; conf->server_urls[i]; i++) {
		if (i > 0)
			strlcat_safe(key, "\n", n);
		strlcat_safe(key, conf->server_urls[i], n);
	}
	return key;
}

/*
 * Keep the wait schedule_retry() set (w), or forget it (NULL), across a
 * restart.  Best effort: the outbox uses the same database, and a failure
 * costs only the wait after a restart, but that is the backoff the fleet
 * counts on when agents restart together: a warning, once in a streak of
 * failed saves (a save that works or a delivery ends the streak).
 */
static void save_wait(struct delivery *d, const struct statedb_wait *w)
{
	int r = statedb_wait_save(d->db, d->collectors, w);

	if (r < 0 && !d->wait_unsaved_logged && w != NULL)
		log_warnx("cannot keep the delivery wait in the state database: %s; if the agent restarts, it forgets the backoff and tries the collectors at once",
			  strerror(-r));
	else if (r < 0 && !d->wait_unsaved_logged)
		log_warnx("cannot clear the delivery wait in the state database: %s; if the agent restarts, it waits before its first attempt",
			  strerror(-r));
	d->wait_unsaved_logged = r < 0;
	d->wait_saved = r == 0 && w != NULL;
}

/*
 * At start: a wait from before the restart for the same collectors,
 * capped as schedule_retry() caps it (RETRY_AFTER_MAX_MS, backoff_max),
 * so that a wall clock set back does not stall delivery for long.
 */
static void restore_wait(struct delivery *d)
{
	struct statedb_wait w;
	int64_t left, cap;
	int r = statedb_wait_load(d->db, d->collectors, &w);

	if (r < 0) {
		if (r != -ENOENT)
			log_debug("cannot read the delivery wait from the state database: %s",
				  strerror(-r));
		return;
	}
	d->wait_saved = true;
	cap = w.retry_after ? RETRY_AFTER_MAX_MS : d->conf->backoff_max_ms;
	left = w.not_before_ms - time_now_ms();
	if (left > cap)
		left = cap;
	if (left <= 0)
		return;
	d->delay_ms = w.delay_ms < d->conf->backoff_max_ms
			      ? w.delay_ms
			      : d->conf->backoff_max_ms;
	d->next_try_ms = time_mono_ms() + left;
	if (w.retry_after)
		d->retry_until_ms = d->next_try_ms;
	log_info("%s before the restart: next attempt in %llds",
		 w.retry_after ? "the collector asked to wait (Retry-After)"
			       : "delivery was failing",
		 (long long)(left + 999) / 1000);
}

/*
 * The credential the deliverer will present: configured, or the enrolled
 * credential file, which must be readable now (the secret itself is the
 * deliverer's to read).  0 and *ret_path (NULL for a configured token).
 */
static int check_credential(const struct agent_config *conf, char **ret_path,
			    char *why, size_t whylen)
{
	char *path, *secret = NULL;
	int r;

	if (conf->token != NULL) {
		*ret_path = NULL;
		return 0;
	}
	path = credential_path(conf->state_dir);
	r = credential_read(path, &secret);
	if (r < 0) {
		snprintf(why, whylen,
			 "no credential: server.token and server.token_file are not set and %s cannot be read (%s); enroll this host first: tocsin-agent enroll --server URL --token TOKEN",
			 path, strerror(-r));
		free(path);
		return r;
	}
	explicit_bzero(secret, strlen(secret));
	free(secret);
	*ret_path = path;
	return 0;
}

int delivery_new(sqlite3 *db, const struct agent_config *conf,
		 bool (*should_abort)(void *), void *abort_arg,
		 struct delivery **ret, char *why, size_t whylen)
{
	struct delivery *d = xcalloc(1, sizeof(*d));
	int r, wait_r;

	d->should_abort = should_abort;
	d->abort_arg = abort_arg;
	d->conf = conf;
	d->limit = conf->outbox.batch_events;
	d->pending = true;
	d->db = db;
	d->collectors = collectors_key(conf);
	held_init(&d->held, HELD_MAX);
	r = outbox_open(db, &conf->outbox, &d->ob);
	if (r < 0) {
		snprintf(why, whylen, "cannot open the outbox: %s%s",
			 strerror(-r),
			 r == -EPROTO ? " (written by a newer tocsin-agent)" : "");
		goto fail;
	}
	/* the outbox works without it: a failure costs the wait at a restart */
	wait_r = statedb_wait_migrate(db);
	if (wait_r < 0)
		log_warnx("cannot keep delivery waits in the state database: %s%s; if the agent restarts, it forgets the backoff and tries the collectors at once",
			  strerror(-wait_r),
			  wait_r == -EPROTO ? " (written by a newer tocsin-agent)" : "");
	r = check_credential(conf, &d->credential_path, why, whylen);
	if (r == 0)
		r = deliverer_locate(conf->deliverer_path, &d->deliverer_path,
				     why, whylen);
	if (r < 0)
		goto fail;
	if (wait_r == 0)
		restore_wait(d);
	*ret = d;
	return 0;
fail:
	delivery_free(d);
	return r;
}

/*
 * A deliverer ended: a warning unless it ended as asked or the caller
 * logs why (quiet); its cost at debug level either way.
 */
static void log_exit(const struct deliverer_exit *e, bool quiet)
{
	char how[128];

	deliverer_describe_exit(e, how, sizeof(how));
	if (!quiet && !(e->killed || (WIFEXITED(e->status) &&
				      WEXITSTATUS(e->status) == 0)))
		log_warnx("the deliverer (pid %d) %s after %u requests",
			  (int)e->pid, how, e->requests);
	log_debug("deliverer %d %s: %u requests in %lld ms, %lld us CPU",
		  (int)e->pid, how, e->requests, (long long)e->lifetime_ms,
		  (long long)e->cpu_us);
}

/* Forget the request in flight; a batch's events stay in the outbox. */
static void job_drop(struct delivery *d)
{
	if (d->job == JOB_BATCH)
		outbox_batch_free(&d->batch);
	json_decref(d->direct);
	d->direct = NULL;
	d->job = JOB_NONE;
}

/* Stop every deliverer now: the one at work is killed, an idle one exits. */
static void stop_deliverers(struct delivery *d)
{
	struct deliverer_exit e;

	if (d->dv != NULL) {
		bool busy = deliverer_busy(d->dv);

		deliverer_end(d->dv, busy, &e);
		d->dv = NULL;
		if (busy)
			log_info("abandoned the request in flight (deliverer %d): %s",
				 (int)e.pid, d->job == JOB_BATCH
						     ? "its events stay in the outbox"
						     : d->job == JOB_DIRECT
						     ? "its events stay held in memory"
						     : "it is made again later");
		log_exit(&e, true);
	}
	if (d->retiring != NULL) {
		deliverer_end(d->retiring, false, &e);
		d->retiring = NULL;
		log_exit(&e, true);
	}
	job_drop(d);
	d->pending = true;
}

static int store_held(struct delivery *d);

void delivery_free(struct delivery *d)
{
	if (d == NULL)
		return;
	stop_deliverers(d);
	if (store_held(d) < 0)
		log_errorx("outbox: %zu results held in memory are lost: the outbox could not take them (the checks that keep what they reported say it again after the restart)",
			   held_count(&d->held));
	held_fini(&d->held);
	outbox_close(d->ob);
	free(d->collectors);
	free(d->credential_path);
	free(d->deliverer_path);
	free(d);
}

/* The same collector URLs, in the same order? */
static bool same_urls(char *const *a, char *const *b)
{
	size_t i = 0;

	if (a == NULL || b == NULL)
		return a == b;
	for (; a[i] && b[i]; i++)
		if (strcmp(a[i], b[i]) != 0)
			return false;
	return a[i] == NULL && b[i] == NULL;
}

int delivery_reconfigure(struct delivery *d, const struct agent_config *conf,
			 char *why, size_t whylen)
{
	char *cred = NULL, *path = NULL;
	int r;

	/* Check the new settings aside: a failure keeps the old. */
	r = check_credential(conf, &cred, why, whylen);
	if (r == 0)
		r = deliverer_locate(conf->deliverer_path, &path, why, whylen);
	if (r < 0) {
		free(cred);
		return r;
	}
	stop_deliverers(d);
	free(d->credential_path);
	free(d->deliverer_path);
	d->credential_path = cred;
	d->deliverer_path = path;
	/*
	 * With the same collectors, what they told us stands: a fleet
	 * reloaded at once must not return at once to one that asked to
	 * wait (Retry-After, the backoff).  New URLs start afresh.
	 */
	if (!same_urls(d->conf->server_urls, conf->server_urls)) {
		d->current = 0;
		d->primary_retry_at_ms = 0;
		d->next_try_ms = 0;
		d->retry_until_ms = 0;
	}
	free(d->collectors);
	d->collectors = collectors_key(conf);
	d->conf = conf;
	d->limit = conf->outbox.batch_events;
	d->pending = true;
	d->drained_ms = 0;
	outbox_set_limits(d->ob, &conf->outbox);
	return 0;
}

const char *delivery_url(const struct delivery *d)
{
	return d->conf->server_urls[d->current];
}

static uint64_t queued(struct delivery *d)
{
	struct outbox_stats st = { 0 };

	outbox_stats(d->ob, &st);
	return st.queued;
}

static void log_drops(struct delivery *d, const struct outbox_drops *drops)
{
	struct outbox_stats st;
	int64_t now = time_mono_ms();
	char since[TIME_RFC3339_LEN] = "";

	if (drops->repeats == 0 && drops->changes == 0)
		return;
	if (d->drop_logged_ms != 0 && now - d->drop_logged_ms < DROP_LOG_EVERY_MS)
		return;
	d->drop_logged_ms = now;
	if (outbox_stats(d->ob, &st) < 0)
		return;
	if (st.dropped_since_ms)
		time_format_rfc3339(st.dropped_since_ms, since);
	log_warnx("outbox full (%llu events, %llu bytes; limits %llu events, %llu bytes): dropped %llu repeated samples and %llu older state changes, oldest first; since %s %llu repeated samples and %llu state changes dropped, to be reported to the collector when it is back",
		  (unsigned long long)st.queued, (unsigned long long)st.bytes,
		  (unsigned long long)d->conf->outbox.max_events,
		  (unsigned long long)d->conf->outbox.max_bytes,
		  (unsigned long long)drops->repeats,
		  (unsigned long long)drops->changes, since,
		  (unsigned long long)st.dropped_repeats,
		  (unsigned long long)st.dropped_changes);
}

/* Results are in the outbox (drops: what that cost): send them when due. */
static void queued_now(struct delivery *d, const struct outbox_drops *drops,
		       bool urgent)
{
	log_drops(d, drops);
	d->pending = true;
	/*
	 * A change goes at once (one seen as it happened even before the
	 * backoff would allow); repeats ride with it or wait a while.
	 */
	if (drops->queued_changes > 0) {
		d->change_queued = true;
		/* ... but not before the collector asked us to come back */
		if (urgent)
			d->next_try_ms = d->retry_until_ms;
	}
}

/*
 * Write the held results to the outbox, with the ids they were made
 * with.  0 when nothing is held any more, else -errno (they stay held).
 */
static int store_held(struct delivery *d)
{
	struct outbox_drops drops, before = {
		.repeats = d->held.dropped_repeats,
		.changes = d->held.dropped_changes,
	};
	size_t n = held_count(&d->held);
	int r;

	if (n + before.repeats + before.changes == 0)
		return 0;
	r = outbox_enqueue_events(d->ob, d->held.events, &before, time_now_ms(),
				  &drops);
	if (r < 0)
		return r;
	log_notice("outbox: writable again: %zu results held in memory are in it now; %llu dropped meanwhile, to be reported to the collector",
		   n, (unsigned long long)(before.repeats + before.changes));
	held_clear(&d->held);
	d->held_logged_ms = 0;
	queued_now(d, &drops, false);
	return 0;
}

/*
 * The outbox cannot take results (err): hold them in memory, with the
 * ids they keep, until it can or a direct send delivered them.  Said
 * once in a streak, and again every DROP_LOG_EVERY_MS while it lasts.
 */
static void hold(struct delivery *d, const struct check_results *results,
		 int err)
{
	int64_t now = time_now_ms(), mono = time_mono_ms();

	for (size_t i = 0; i < results->n; i++) {
		json_t *ev = event_from_result(&results->v[i], now);

		if (ev != NULL) /* else logged and counted there */
			held_add(&d->held, ev);
	}
	d->held_retry_ms = mono + HELD_RETRY_MS;
	if (d->held_logged_ms != 0 && mono - d->held_logged_ms < DROP_LOG_EVERY_MS)
		return;
	d->held_logged_ms = mono;
	log_errorx("outbox: cannot write (%s): %zu results held in memory, %llu dropped; they go to the outbox when it can take them, and directly to the collector meanwhile",
		   strerror(-err), held_count(&d->held),
		   (unsigned long long)(d->held.dropped_repeats +
					d->held.dropped_changes));
}

void delivery_queue(struct delivery *d, const struct check_results *results,
		    bool urgent)
{
	struct outbox_drops drops;
	int r;

	if (results->n == 0)
		return;
	/* what is held goes first, so the outbox keeps the order */
	r = store_held(d);
	if (r == 0)
		r = outbox_enqueue(d->ob, results, time_now_ms(), &drops);
	if (r < 0) {
		hold(d, results, r);
		return;
	}
	queued_now(d, &drops, urgent);
}

bool delivery_unstored(const struct delivery *d)
{
	return d != NULL && held_count(&d->held) > 0;
}

/*
 * When queued repeats go: hold_repeats after the outbox was last emptied,
 * so that the collector hears from us at least that often (its silence
 * detection counts on it).
 */
static int64_t hold_until(const struct delivery *d)
{
	return d->drained_ms + d->conf->hold_repeats_ms;
}

/* Only repeated samples are queued, and they may wait still. */
static bool holding(const struct delivery *d, int64_t now)
{
	return !d->change_queued && d->drained_ms != 0 && now < hold_until(d);
}

/* The running deliverer, started with the state it must continue from. */
static int ensure_deliverer(struct delivery *d)
{
	int64_t retry_in = d->primary_retry_at_ms - time_mono_ms();
	json_t *hello;
	int r;

	if (d->dv != NULL)
		return 0;
	hello = deliverer_hello(d->conf, NULL, d->conf->token, d->credential_path,
				d->current, retry_in > 0 ? retry_in : 0);
	r = deliverer_spawn(d->deliverer_path, hello, &d->dv);
	json_decref(hello);
	if (r < 0) {
		snprintf(d->why, sizeof(d->why), "cannot start the deliverer %s: %s",
			 d->deliverer_path, strerror(-r));
		return r;
	}
	log_debug("started the deliverer %s (pid %d)", d->deliverer_path,
		  (int)deliverer_pid(d->dv));
	return 0;
}

/* A request may try every URL, each for server.timeout. */
static int64_t job_limit_ms(const struct agent_config *conf)
{
	int64_t n = 0;

	while (conf->server_urls[n])
		n++;
	return conf->timeout_ms * n + DELIVERER_SLACK_MS;
}

/* Hand a request to the deliverer (started when none runs).  0 or -errno. */
static int start_job(struct delivery *d, enum job job, const char *op,
		     const json_t *extra, const char *body, size_t len)
{
	struct deliverer_exit e;
	int r = ensure_deliverer(d);

	if (r < 0)
		return r;
	r = deliverer_request(d->dv, op, extra, body, len);
	if (r < 0) {
		deliverer_end(d->dv, true, &e);
		d->dv = NULL;
		snprintf(d->why, sizeof(d->why),
			 "cannot hand the request to the deliverer (pid %d): %s",
			 (int)e.pid, strerror(-r));
		log_exit(&e, false);
		return r;
	}
	d->job = job;
	d->job_deadline_ms = time_mono_ms() + job_limit_ms(d->conf);
	return 0;
}

/*
 * Hand events (an array, borrowed) to the deliverer as one batch for the
 * collector's events endpoint.  0, or -errno and d->why.
 */
static int post_events(struct delivery *d, enum job job, json_t *events)
{
	json_t *batch = event_batch(d->conf->host, events), *extra;
	char *body = batch ? json_dumps(batch, JSON_FLAGS) : NULL;
	int r;

	json_decref(batch);
	if (body == NULL) {
		snprintf(d->why, sizeof(d->why), "cannot encode the events");
		return -ENOMEM;
	}
	extra = json_pack("{s:s}", "path", EVENTS_PATH);
	r = start_job(d, job, "post", extra, body, strlen(body));
	json_decref(extra);
	free(body);
	return r;
}

/* Take the next batch from the outbox and hand it to the deliverer. */
static enum attempt begin_batch(struct delivery *d)
{
	struct outbox_batch b;
	int r;

	r = outbox_next_batch(d->ob, d->limit, &b);
	if (r < 0) {
		snprintf(d->why, sizeof(d->why), "cannot read the outbox: %s",
			 strerror(-r));
		return ATTEMPT_FAILED;
	}
	if (b.n == 0 && b.last_seq == 0) {
		outbox_batch_free(&b);
		d->pending = false;
		d->change_queued = false;
		d->drained_ms = time_mono_ms();
		return ATTEMPT_EMPTY;
	}
	if (b.n == 0) { /* only unreadable rows: clear them */
		r = outbox_ack(d->ob, &b, time_now_ms());
		outbox_batch_free(&b);
		if (r < 0)
			snprintf(d->why, sizeof(d->why),
				 "cannot clear unreadable rows from the outbox: %s",
				 strerror(-r));
		return r < 0 ? ATTEMPT_FAILED : ATTEMPT_SENT;
	}
	r = post_events(d, JOB_BATCH, b.events);
	if (r < 0) {
		outbox_batch_free(&b);
		strlcat_safe(d->why, "; the events stay in the outbox", sizeof(d->why));
		return ATTEMPT_FAILED;
	}
	d->batch = b;
	return ATTEMPT_STARTED;
}

/* 401/403: say what is wrong and what to do; the events stay queued. */
static void auth_refused(struct delivery *d,
			 const struct deliverer_post_reply *reply, const char *url)
{
	if (reply->status == 401)
		snprintf(d->why, sizeof(d->why),
			 "the collector at %s refused this host's credential (HTTP 401: %s); %llu events stay in the outbox; %s",
			 url, reply->message, (unsigned long long)queued(d),
			 d->credential_path
				 ? "re-enroll this host: tocsin-agent enroll --server URL --token TOKEN"
				 : "check server.token");
	else /* the collector's message says what: host, credential, client certificate */
		snprintf(d->why, sizeof(d->why),
			 "the collector at %s refused the events of host %s (HTTP 403: %s); %llu events stay in the outbox until that is fixed",
			 url, d->conf->host, reply->message,
			 (unsigned long long)queued(d));
}

/*
 * A batch the collector will never take (400/413): split it, or drop it
 * when it is a single event the collector refused in its own words
 * ({"error": ...}): a 400 from something else in between (a proxy, a
 * TLS port spoken to in plain HTTP) refuses no event, and dropping one
 * after the other would empty the outbox.  0; -EAGAIN (d->why) when the
 * event stays and the delivery backs off; -errno when the outbox failed.
 */
static int batch_refused(struct delivery *d, const struct outbox_batch *b,
			 const struct deliverer_post_reply *reply)
{
	char *text;
	int r;

	if (b->n > 1) {
		d->limit = b->n / 2;
		log_info("the collector refused a batch of %zu events (HTTP %ld: %s); retrying in batches of %zu",
			 b->n, reply->status, reply->message, d->limit);
		return 0;
	}
	if (!reply->explained) {
		snprintf(d->why, sizeof(d->why),
			 "%s answered HTTP %ld, but not in the collector's words ({\"error\": ...}): is something else answering there? (%.200s); %llu events stay in the outbox",
			 d->conf->server_urls[reply->url], reply->status,
			 reply->message, (unsigned long long)queued(d));
		return -EAGAIN;
	}
	r = outbox_reject(d->ob, b, time_now_ms());
	if (r < 0) {
		snprintf(d->why, sizeof(d->why),
			 "cannot drop a refused event from the outbox: %s",
			 strerror(-r));
		return r;
	}
	text = json_dumps(json_array_get(b->events, 0), JSON_COMPACT);
	log_warnx("the collector refused an event for good (HTTP %ld: %s); dropped and counted: %.300s",
		  reply->status, reply->message, text ? text : "");
	free(text);
	return 0;
}

/* A batch was taken: delete it, and let the batch size grow back. */
static int batch_acked(struct delivery *d, const struct outbox_batch *b,
		       const struct deliverer_post_reply *reply)
{
	const char *url = d->conf->server_urls[reply->url];
	json_t *ev = json_array_get(b->events, 0);
	int r = outbox_ack(d->ob, b, time_now_ms());

	if (r < 0) {
		snprintf(d->why, sizeof(d->why),
			 "the collector took %zu events but the outbox cannot delete them (%s): they will be sent again and recognised as duplicates",
			 b->n, strerror(-r));
		return r;
	}
	if (b->report_id != NULL)
		log_notice("reported to the collector: %s",
			   json_string_value(json_object_get(ev, "summary")));
	if (reply->switched)
		log_notice("delivering to %s now", url);
	d->limit = d->limit * 2 < d->conf->outbox.batch_events
			   ? d->limit * 2
			   : d->conf->outbox.batch_events;
	if (d->sent)
		*d->sent += b->n;
	log_debug("delivered %zu events to %s", b->n, url);
	return 0;
}

/* The URL that answered, and when the deliverer tries the first again. */
static void note_failover(struct delivery *d,
			  const struct deliverer_post_reply *p)
{
	d->current = p->current;
	d->primary_retry_at_ms = time_mono_ms() + p->primary_retry_in_ms;
}

/* The answer to a batch, as the old in-process transport gave it. */
static enum attempt finish_batch(struct delivery *d,
				 const struct deliverer_post_reply *p)
{
	const struct outbox_batch *b = &d->batch;
	long s = p->status;

	note_failover(d, p);
	if (s >= 200 && s < 300 && p->accepted < 0) {
		/* the collector says 2xx only after its commit, and says so */
		snprintf(d->why, sizeof(d->why),
			 "%s answered HTTP %ld, but not with the collector's acknowledgement ({\"accepted\": ...}): is something else answering there? %llu events stay in the outbox",
			 d->conf->server_urls[p->url], s,
			 (unsigned long long)queued(d));
		return ATTEMPT_FAILED;
	}
	if (s >= 200 && s < 300)
		return batch_acked(d, b, p) < 0 ? ATTEMPT_FAILED : ATTEMPT_SENT;
	d->retry_after_ms = p->retry_after_ms;
	if (s == 400 || s == 413)
		return batch_refused(d, b, p) < 0 ? ATTEMPT_FAILED : ATTEMPT_SENT;
	if ((s == 401 || s == 403) && p->credential_changed) {
		log_notice("using the new credential from %s", d->credential_path);
		d->next_try_ms = 0;
		return ATTEMPT_SENT;
	}
	if (s == 401 || s == 403)
		auth_refused(d, p, d->conf->server_urls[p->url]);
	else if (s >= 300 && s < 500)
		snprintf(d->why, sizeof(d->why),
			 "the collector at %s answered HTTP %ld%s%s; %llu events stay in the outbox",
			 d->conf->server_urls[p->url], s, p->message[0] ? ": " : "",
			 p->message, (unsigned long long)queued(d));
	else
		snprintf(d->why, sizeof(d->why), "%.900s; %llu events stay in the outbox",
			 p->error, (unsigned long long)queued(d));
	return ATTEMPT_FAILED;
}

/*
 * The answer to held events sent directly: delivered, they are held no
 * more; else they stay held and the delivery backs off (d->why).
 */
static enum attempt finish_direct(struct delivery *d,
				  const struct deliverer_post_reply *p)
{
	size_t n = json_array_size(d->direct);
	const char *url = d->conf->server_urls[p->url];
	long s = p->status;
	enum attempt a = ATTEMPT_FAILED;

	note_failover(d, p);
	d->retry_after_ms = p->retry_after_ms;
	if (s >= 200 && s < 300 && p->accepted >= 0) {
		held_remove(&d->held, d->direct);
		if (d->sent)
			*d->sent += n;
		log_notice("sent %zu results held in memory directly to %s", n, url);
		a = ATTEMPT_SENT;
	} else if (s >= 200 && s < 300) {
		snprintf(d->why, sizeof(d->why),
			 "%s answered HTTP %ld, but not with the collector's acknowledgement; %zu results stay held in memory",
			 url, s, held_count(&d->held));
	} else if (s != 0) {
		snprintf(d->why, sizeof(d->why),
			 "the collector at %s answered HTTP %ld%s%.600s; %zu results stay held in memory",
			 url, s, p->message[0] ? ": " : "", p->message,
			 held_count(&d->held));
	} else {
		snprintf(d->why, sizeof(d->why), "%.900s; %zu results stay held in memory",
			 p->error, held_count(&d->held));
	}
	json_decref(d->direct);
	d->direct = NULL;
	return a;
}

static void finish_rotate(struct delivery *d, const json_t *reply)
{
	static const char *const results[] = { "rotated", "unstored", "failed",
					       NULL };
	const char *result;
	json_int_t id = json_integer_value(json_object_get(reply, "credential_id"));
	char why[256], err[1024];

	if (deliverer_result(reply, results, &result, why, sizeof(why)) < 0) {
		log_warnx("scheduled credential rotation failed: %s", why);
		return;
	}
	/* the collector's words, through the deliverer: one line for the log */
	if (deliverer_reply_text(reply, "error", err, sizeof(err)) < 0 ||
	    err[0] == '\0')
		strlcpy_safe(err, "no reason given", sizeof(err));
	if (strcmp(result, "failed") == 0) {
		log_warnx("scheduled credential rotation failed: %.900s; the current credential stays in use",
			  err);
	} else if (strcmp(result, "unstored") == 0) {
		log_errorx("rotated to credential %lld but cannot store it in %s (%.200s): keeping the old one, which the collector honours for 1 h",
			   (long long)id, d->credential_path, err);
	} else {
		d->rotate_retry_ms = 0;
		log_notice("credential rotated: now credential %lld, stored in %s",
			   (long long)id, d->credential_path);
	}
}

static size_t url_count(const struct agent_config *conf)
{
	size_t n = 0;

	while (conf->server_urls[n])
		n++;
	return n;
}

/*
 * The deliverer answered the request in flight.  For a batch, what the
 * answer means; ATTEMPT_EMPTY for the other kinds of work, and
 * ATTEMPT_FAILED (d->why) when the answer is not one: then the caller
 * ends the deliverer.
 */
static enum attempt finish_job(struct delivery *d, json_t *reply)
{
	struct deliverer_post_reply p;
	enum job job = d->job;
	enum attempt a = ATTEMPT_EMPTY;

	if (job == JOB_ROTATE) {
		d->job = JOB_NONE;
		finish_rotate(d, reply);
		return a;
	}
	if (deliverer_post_reply(reply, url_count(d->conf), &p, d->why,
				 sizeof(d->why)) < 0)
		return ATTEMPT_FAILED; /* the job stays for job_failed() */
	d->job = JOB_NONE;
	if (job == JOB_DIRECT)
		return finish_direct(d, &p);
	a = finish_batch(d, &p);
	outbox_batch_free(&d->batch);
	return a;
}

/*
 * The request in flight will not be answered (what: the deliverer died,
 * hung or babbled).  For a batch the attempt failed (d->why); the other
 * kinds of work are logged here.
 */
static enum attempt job_failed(struct delivery *d, const char *what)
{
	enum job job = d->job;

	job_drop(d);
	switch (job) {
	case JOB_BATCH:
		snprintf(d->why, sizeof(d->why), "%.800s; %llu events stay in the outbox",
			 what, (unsigned long long)queued(d));
		return ATTEMPT_FAILED;
	case JOB_DIRECT:
		snprintf(d->why, sizeof(d->why), "%.800s; %zu results stay held in memory",
			 what, held_count(&d->held));
		return ATTEMPT_FAILED;
	case JOB_ROTATE:
		log_warnx("scheduled credential rotation failed: %s; the current credential stays in use",
			  what);
		break;
	case JOB_NONE:
		break;
	}
	return ATTEMPT_EMPTY;
}

/*
 * End the running deliverer, which failed us, and say how in what: one
 * that closed the socket (died) is reaped to learn how it ended, one that
 * hung or babbled is killed.  The caller logs what.
 */
static void end_deliverer(struct delivery *d, bool died, char *what,
			  size_t whylen, const char *why_prefix)
{
	struct deliverer_exit e;
	char how[128];

	deliverer_end(d->dv, !died, &e);
	d->dv = NULL;
	deliverer_describe_exit(&e, how, sizeof(how));
	snprintf(what, whylen, "%s (deliverer pid %d %s)", why_prefix,
		 (int)e.pid, how);
	log_exit(&e, true);
}

/*
 * End the deliverer after deliverer_read() or deliverer_wait() failed
 * with r and why (their words on what was wrong), and say how in what.
 */
static void end_unanswered(struct delivery *d, int r, const char *why,
			   char *what, size_t whylen)
{
	char prefix[512];

	if (deliverer_ended(r))
		snprintf(prefix, sizeof(prefix), "the deliverer ended %s%s%.400s",
			 d->job != JOB_NONE ? "during a request" : "unasked",
			 why[0] != '\0' ? ": " : "", why);
	else if (deliverer_babbled(r))
		snprintf(prefix, sizeof(prefix),
			 "the deliverer sent what is not an answer: %.400s", why);
	else
		snprintf(prefix, sizeof(prefix), "%.400s", why);
	end_deliverer(d, deliverer_ended(r), what, whylen, prefix);
}

static void schedule_retry(struct delivery *d)
{
	int64_t wait = d->retry_after_ms;

	d->failures++;
	d->delay_ms = delivery_backoff_next(d->delay_ms, DELIVERY_BACKOFF_BASE_MS,
					    d->conf->backoff_max_ms,
					    arc4random());
	if (wait <= 0)
		wait = d->delay_ms;
	else if (wait > RETRY_AFTER_MAX_MS)
		wait = RETRY_AFTER_MAX_MS;
	d->next_try_ms = time_mono_ms() + wait;
	d->retry_until_ms = d->retry_after_ms > 0 ? d->next_try_ms : 0;
	save_wait(d, &(struct statedb_wait){
			     .not_before_ms = time_now_ms() + wait,
			     .delay_ms = d->delay_ms,
			     .retry_after = d->retry_after_ms > 0,
		     });
	log_warnx("%s; next attempt in %llds", d->why, (long long)(wait + 999) / 1000);
}

static void update_status(struct delivery *d, enum attempt a)
{
	if (a == ATTEMPT_FAILED)
		service_status("cannot deliver (%u attempts): %llu events queued",
			       d->failures, (unsigned long long)queued(d));
	else
		service_status("delivering to %s: %llu events queued",
			       delivery_url(d), (unsigned long long)queued(d));
}

/* The daemon's bookkeeping after an attempt ended. */
static void attempt_done(struct delivery *d, enum attempt a)
{
	switch (a) {
	case ATTEMPT_FAILED:
		schedule_retry(d);
		break;
	case ATTEMPT_SENT:
		if (d->failures > 0)
			log_info("delivering to %s again after %u failed attempts",
				 delivery_url(d), d->failures);
		d->failures = 0;
		d->delay_ms = 0;
		d->next_try_ms = 0;
		d->retry_until_ms = 0;
		d->wait_unsaved_logged = false; /* a new streak warns again */
		if (d->wait_saved)
			save_wait(d, NULL);
		break;
	default:
		return;
	}
	update_status(d, a);
}

/* The credential file is old enough to be traded for a new one. */
static bool rotation_due(const struct delivery *d, int64_t now)
{
	struct stat st;

	return d->conf->rotate_every_ms > 0 && d->credential_path != NULL &&
	       now >= d->rotate_retry_ms && stat(d->credential_path, &st) == 0 &&
	       (int64_t)st.st_mtime * 1000 + d->conf->rotate_every_ms <=
		       time_now_ms();
}

/* Hand the oldest held events to the deliverer, to be sent directly. */
static enum attempt begin_direct(struct delivery *d)
{
	json_t *events = json_array();
	size_t n = held_count(&d->held);
	int r;

	for (size_t i = 0; i < n && i < HELD_DIRECT_MAX; i++)
		json_array_append(events, json_array_get(d->held.events, i));
	r = post_events(d, JOB_DIRECT, events);
	if (r < 0) {
		json_decref(events);
		strlcat_safe(d->why, "; the results stay held in memory", sizeof(d->why));
		return ATTEMPT_FAILED;
	}
	d->direct = events;
	return ATTEMPT_STARTED;
}

/*
 * Start the next piece of work that is due: a rotation, a direct send, a
 * batch.  True when more may be started at once (a request is in flight,
 * or unreadable rows were cleared).
 */
static bool start_next(struct delivery *d, int64_t now)
{
	enum attempt a;

	if (rotation_due(d, now)) {
		d->rotate_retry_ms = now + ROTATE_RETRY_MS;
		if (start_job(d, JOB_ROTATE, "rotate", NULL, NULL, 0) == 0)
			return true;
		log_warnx("scheduled credential rotation failed: %s; the current credential stays in use",
			  d->why);
	}
	if (now < d->next_try_ms)
		return false;
	d->retry_after_ms = 0;
	if (held_count(&d->held) > 0)
		a = begin_direct(d);
	else if (!d->pending || holding(d, now))
		return false;
	else
		a = begin_batch(d);
	if (a == ATTEMPT_STARTED)
		return true;
	attempt_done(d, a);
	return a == ATTEMPT_SENT;
}

/* Reap a deliverer that was asked to exit; kill it when it takes too long. */
static void reap_retiring(struct delivery *d, bool wait)
{
	struct deliverer_exit e;
	int64_t left = d->retire_deadline_ms - time_mono_ms();

	if (d->retiring == NULL)
		return;
	if (deliverer_reap(d->retiring, wait || left <= 0 ? (left > 0 ? left : 1) : 0,
			   &e) == 0)
		return;
	if (e.killed)
		log_warnx("the deliverer (pid %d) did not exit within %d ms of being asked and was killed",
			  (int)e.pid, DELIVERER_EXIT_GRACE_MS);
	else
		log_exit(&e, true);
	deliverer_free(d->retiring);
	d->retiring = NULL;
}

/* Ask the idle deliverer to exit. */
static void retire(struct delivery *d)
{
	reap_retiring(d, true); /* at most one at a time */
	deliverer_retire(d->dv);
	d->retiring = d->dv;
	d->retire_deadline_ms = time_mono_ms() + DELIVERER_EXIT_GRACE_MS;
	d->dv = NULL;
}

/* The request in flight took longer than its limit: kill the deliverer. */
static enum attempt job_timed_out(struct delivery *d)
{
	pid_t pid = deliverer_pid(d->dv);
	char what[512];

	end_deliverer(d, false, what, sizeof(what), "");
	snprintf(what, sizeof(what),
		 "the deliverer (pid %d) did not answer within %lld s and was killed",
		 (int)pid, (long long)job_limit_ms(d->conf) / 1000);
	return job_failed(d, what);
}

void delivery_run(struct delivery *d)
{
	int64_t now = time_mono_ms();

	reap_retiring(d, false);
	/* room may have come back: what is held is best kept in the outbox */
	if (held_count(&d->held) > 0 && now >= d->held_retry_ms) {
		d->held_retry_ms = now + HELD_RETRY_MS;
		store_held(d);
	}
	if (d->job != JOB_NONE) {
		if (now >= d->job_deadline_ms)
			attempt_done(d, job_timed_out(d));
		if (d->job != JOB_NONE)
			return;
	}
	while (d->job == JOB_NONE && start_next(d, now))
		;
	if (d->job == JOB_NONE && d->dv != NULL &&
	    now - d->idle_since_ms >= d->conf->deliverer_linger_ms)
		retire(d);
}

int64_t delivery_wait_ms(const struct delivery *d)
{
	int64_t now = time_mono_ms(), wait = INT64_MAX;

	if (d->job != JOB_NONE)
		wait = d->job_deadline_ms - now;
	else if (held_count(&d->held) > 0)
		wait = (d->held_retry_ms < d->next_try_ms ? d->held_retry_ms
							  : d->next_try_ms) - now;
	else if (d->pending && holding(d, now))
		wait = (hold_until(d) > d->next_try_ms ? hold_until(d)
						       : d->next_try_ms) - now;
	else if (d->pending)
		wait = d->next_try_ms - now;
	if (d->job == JOB_NONE && d->dv != NULL &&
	    d->idle_since_ms + d->conf->deliverer_linger_ms - now < wait)
		wait = d->idle_since_ms + d->conf->deliverer_linger_ms - now;
	if (d->retiring != NULL && d->retire_deadline_ms - now < wait)
		wait = d->retire_deadline_ms - now;
	return wait > 0 ? wait : 0;
}

size_t delivery_pollfds(const struct delivery *d, struct pollfd *pfds,
			size_t max)
{
	size_t n = 0;

	if (d->dv != NULL && n < max)
		pfds[n++] = (struct pollfd){ .fd = deliverer_fd(d->dv),
					     .events = POLLIN };
	if (d->retiring != NULL && n < max)
		pfds[n++] = (struct pollfd){ .fd = deliverer_fd(d->retiring),
					     .events = POLLIN };
	return n;
}

/* The deliverer sent what is not an answer to the job in flight (d->why). */
static enum attempt babbled(struct delivery *d)
{
	char what[512], prefix[256];

	strlcpy_safe(prefix, d->why, sizeof(prefix));
	end_deliverer(d, false, what, sizeof(what), prefix);
	return job_failed(d, what);
}

/* The deliverer has something to say: an answer, or its end. */
static enum attempt read_answer(struct delivery *d)
{
	char what[1024], why[512] = "";
	json_t *reply = NULL;
	enum attempt a;
	int r = deliverer_read(d->dv, &reply, why, sizeof(why));

	if (r == 0)
		return ATTEMPT_STARTED;
	if (r > 0) {
		d->idle_since_ms = time_mono_ms();
		a = finish_job(d, reply);
		json_decref(reply);
		if (a != ATTEMPT_FAILED || d->job == JOB_NONE)
			return a;
		/* not an answer: the job is still in d->job */
		return babbled(d);
	}
	end_unanswered(d, r, why, what, sizeof(what));
	if (d->job == JOB_NONE) {
		/* it had nothing to do: the next request starts another */
		log_warnx("%s", what);
		return ATTEMPT_EMPTY;
	}
	return job_failed(d, what);
}

void delivery_on_ready(struct delivery *d, const struct pollfd *pfds, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (!(pfds[i].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		if (d->dv != NULL && pfds[i].fd == deliverer_fd(d->dv))
			attempt_done(d, read_answer(d));
		else if (d->retiring != NULL &&
			 pfds[i].fd == deliverer_fd(d->retiring))
			reap_retiring(d, false);
	}
}

/* --once: wait for the answer in flight, then act on it. */
static enum attempt flush_wait(struct delivery *d)
{
	json_t *reply = NULL;
	char what[1024], why[512] = "";
	enum attempt a;
	int r = deliverer_wait(d->dv, d->job_deadline_ms, d->should_abort,
			       d->abort_arg, &reply, why, sizeof(why));

	if (r == -ECANCELED) {
		end_deliverer(d, false, what, sizeof(what), "interrupted");
		job_drop(d);
		return ATTEMPT_ABORTED;
	}
	if (r == -ETIMEDOUT)
		return job_timed_out(d);
	if (r < 0) {
		end_unanswered(d, r, why, what, sizeof(what));
		return job_failed(d, what);
	}
	d->idle_since_ms = time_mono_ms();
	a = finish_job(d, reply);
	json_decref(reply);
	if (a == ATTEMPT_FAILED && d->job != JOB_NONE)
		return babbled(d);
	return a;
}

int delivery_flush(struct delivery *d, size_t *ret_sent, char *why,
		   size_t whylen)
{
	enum attempt a = ATTEMPT_EMPTY;
	size_t sent = 0;

	d->sent = &sent;
	for (;;) {
		d->retry_after_ms = 0;
		a = store_held(d) < 0 ? begin_direct(d) : begin_batch(d);
		if (a == ATTEMPT_STARTED)
			a = flush_wait(d);
		if (a != ATTEMPT_SENT)
			break;
	}
	d->sent = NULL;
	if (d->dv != NULL)
		retire(d);
	reap_retiring(d, true);
	*ret_sent = sent;
	if (a == ATTEMPT_EMPTY)
		return 0;
	strlcpy_safe(why, a == ATTEMPT_ABORTED ? "interrupted" : d->why, whylen);
	return a == ATTEMPT_ABORTED ? -ECANCELED : -EIO;
}
