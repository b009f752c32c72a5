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
#include "event.h"
#include "outbox.h"
#include "service.h"
#include "transport.h"

#define JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))
/* Retry-After beyond this is not honoured as given. */
#define RETRY_AFTER_MAX_MS (3600 * 1000)
/* A failed scheduled rotation is tried again after this. */
#define ROTATE_RETRY_MS (10 * 60 * 1000)
/* While the outbox stays full, repeat the drop summary this often. */
#define DROP_LOG_EVERY_MS (15 * 60 * 1000)

enum attempt {
	ATTEMPT_EMPTY,	 /* nothing to send */
	ATTEMPT_SENT,	 /* acknowledged, or settled (a refused event dropped) */
	ATTEMPT_FAILED,	 /* try again later; d->why says why */
	ATTEMPT_ABORTED, /* should_abort said so */
};

struct delivery {
	struct outbox *ob;
	struct transport *t;
	const struct agent_config *conf;
	bool (*should_abort)(void *);
	void *abort_arg;
	char *credential_path; /* NULL when the token is configured */
	char *token;
	size_t limit;		/* events in the next batch: halved on 400/413 */
	bool pending;		/* the outbox may hold something */
	int64_t delay_ms;	/* last backoff delay; 0 after a success */
	int64_t next_try_ms;	/* monotonic */
	int64_t retry_after_ms; /* the last answer's Retry-After */
	unsigned failures;	/* consecutive failed attempts */
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

/* The token to present: configured, or the enrolled credential. */
static int load_token(struct delivery *d, const struct agent_config *conf,
		      char *why, size_t whylen)
{
	char *path = NULL, *token = NULL;
	int r;

	if (conf->token != NULL) {
		token = xstrdup(conf->token);
	} else {
		path = credential_path(conf->state_dir);
		r = credential_read(path, &token);
		if (r < 0) {
			snprintf(why, whylen,
				 "no credential: server.token and server.token_file are not set and %s cannot be read (%s); enroll this host first: tocsin-agent enroll --server URL --token TOKEN",
				 path, strerror(-r));
			free(path);
			return r;
		}
	}
	free(d->credential_path);
	d->credential_path = path;
	if (d->token)
		explicit_bzero(d->token, strlen(d->token));
	free(d->token);
	d->token = token;
	return 0;
}

static int make_transport(struct delivery *d, const struct agent_config *conf,
			  char *why, size_t whylen)
{
	struct transport_options o;
	struct transport *t;
	int r;

	agent_transport_options(conf, d->token, &o);
	o.should_abort = d->should_abort;
	o.abort_arg = d->abort_arg;
	r = transport_new(&o, &t);
	if (r < 0) {
		snprintf(why, whylen, "cannot set up the transport: %s",
			 strerror(-r));
		return r;
	}
	transport_free(d->t);
	d->t = t;
	return 0;
}

int delivery_new(sqlite3 *db, const struct agent_config *conf,
		 bool (*should_abort)(void *), void *abort_arg,
		 struct delivery **ret, char *why, size_t whylen)
{
	struct delivery *d = xcalloc(1, sizeof(*d));
	int r;

	d->should_abort = should_abort;
	d->abort_arg = abort_arg;
	d->conf = conf;
	d->limit = conf->outbox.batch_events;
	d->pending = true;
	r = outbox_open(db, &conf->outbox, &d->ob);
	if (r < 0) {
		snprintf(why, whylen, "cannot open the outbox: %s%s",
			 strerror(-r),
			 r == -EPROTO ? " (written by a newer tocsin-agent)" : "");
		goto fail;
	}
	r = load_token(d, conf, why, whylen);
	if (r == 0)
		r = make_transport(d, conf, why, whylen);
	if (r < 0)
		goto fail;
	*ret = d;
	return 0;
fail:
	delivery_free(d);
	return r;
}

void delivery_free(struct delivery *d)
{
	if (d == NULL)
		return;
	transport_free(d->t);
	outbox_close(d->ob);
	free(d->credential_path);
	if (d->token)
		explicit_bzero(d->token, strlen(d->token));
	free(d->token);
	free(d);
}

int delivery_reconfigure(struct delivery *d, const struct agent_config *conf,
			 char *why, size_t whylen)
{
	struct delivery next = *d;
	int r;

	/* Build the new token and transport aside: a failure keeps the old. */
	next.token = NULL;
	next.credential_path = NULL;
	next.t = NULL;
	r = load_token(&next, conf, why, whylen);
	if (r == 0)
		r = make_transport(&next, conf, why, whylen);
	if (r < 0) {
		free(next.credential_path);
		free(next.token);
		transport_free(next.t);
		return r;
	}
	transport_free(d->t);
	free(d->credential_path);
	free(d->token);
	d->t = next.t;
	d->token = next.token;
	d->credential_path = next.credential_path;
	d->conf = conf;
	d->limit = conf->outbox.batch_events;
	d->pending = true;
	outbox_set_limits(d->ob, &conf->outbox);
	return 0;
}

const char *delivery_url(const struct delivery *d)
{
	return transport_url(d->t);
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

/* Last resort when the outbox cannot be written: one direct attempt. */
static void send_direct(struct delivery *d, const struct check_results *results)
{
	struct transport_reply reply;
	json_t *events = json_array(), *batch;
	int64_t now = time_now_ms();
	char *body;

	for (size_t i = 0; i < results->n; i++)
		json_array_append_new(events, event_from_result(&results->v[i], now));
	batch = event_batch(d->conf->host, events);
	body = batch ? json_dumps(batch, JSON_FLAGS) : NULL;
	json_decref(batch);
	json_decref(events);
	if (body != NULL &&
	    transport_post(d->t, "/api/v1/events", body, strlen(body), &reply) == 0)
		log_warnx("sent %zu events directly instead", results->n);
	else
		log_errorx("%zu events lost: %s", results->n,
			   body ? reply.error : "cannot encode them");
	free(body);
}

void delivery_queue(struct delivery *d, const struct check_results *results,
		    bool urgent)
{
	struct outbox_drops drops;
	int r;

	if (results->n == 0)
		return;
	r = outbox_enqueue(d->ob, results, time_now_ms(), &drops);
	if (r < 0) {
		log_errorx("cannot write %zu events to the outbox: %s",
			   results->n, strerror(-r));
		send_direct(d, results);
		return;
	}
	log_drops(d, &drops);
	d->pending = true;
	if (urgent)
		d->next_try_ms = 0;
}

/* The credential file changed under us (a rotation by hand): take it. */
static bool credential_changed(struct delivery *d)
{
	char *token = NULL;

	if (d->credential_path == NULL ||
	    credential_read(d->credential_path, &token) < 0)
		return false;
	if (strcmp(token, d->token) == 0) {
		explicit_bzero(token, strlen(token));
		free(token);
		return false;
	}
	explicit_bzero(d->token, strlen(d->token));
	free(d->token);
	d->token = token;
	transport_set_token(d->t, token);
	log_notice("using the new credential from %s", d->credential_path);
	return true;
}

/* 401/403: say what is wrong and what to do; the events stay queued. */
static void auth_refused(struct delivery *d, const struct transport_reply *reply,
			 uint64_t queued)
{
	if (reply->status == 401)
		snprintf(d->why, sizeof(d->why),
			 "the collector at %s refused this host's credential (HTTP 401: %s); %llu events stay in the outbox; %s",
			 reply->url, reply->message, (unsigned long long)queued,
			 d->credential_path
				 ? "re-enroll this host: tocsin-agent enroll --server URL --token TOKEN"
				 : "check server.token");
	else /* the collector's message says what: host, credential, client certificate */
		snprintf(d->why, sizeof(d->why),
			 "the collector at %s refused the events of host %s (HTTP 403: %s); %llu events stay in the outbox until that is fixed",
			 reply->url, d->conf->host, reply->message,
			 (unsigned long long)queued);
}

/*
 * A batch the collector will never take (400/413): split it, or drop it
 * when it is a single event.  0, or -errno when the outbox failed.
 */
static int batch_refused(struct delivery *d, const struct outbox_batch *b,
			 const struct transport_reply *reply)
{
	char *text;
	int r;

	if (b->n > 1) {
		d->limit = b->n / 2;
		log_info("the collector refused a batch of %zu events (HTTP %ld: %s); retrying in batches of %zu",
			 b->n, reply->status, reply->message, d->limit);
		return 0;
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

static void log_report(const struct outbox_batch *b)
{
	json_t *ev = json_array_get(b->events, 0);

	if (b->report_id != NULL)
		log_notice("reported to the collector: %s",
			   json_string_value(json_object_get(ev, "summary")));
}

/* A batch was taken: delete it, and let the batch size grow back. */
static int batch_acked(struct delivery *d, const struct outbox_batch *b,
		       const struct transport_reply *reply)
{
	int r = outbox_ack(d->ob, b, time_now_ms());

	if (r < 0) {
		snprintf(d->why, sizeof(d->why),
			 "the collector took %zu events but the outbox cannot delete them (%s): they will be sent again and recognised as duplicates",
			 b->n, strerror(-r));
		return r;
	}
	log_report(b);
	if (reply->switched)
		log_notice("delivering to %s now", reply->url);
	d->limit = d->limit * 2 < d->conf->outbox.batch_events
			   ? d->limit * 2
			   : d->conf->outbox.batch_events;
	log_debug("delivered %zu events to %s", b->n, reply->url);
	return 0;
}

static enum attempt attempt_status(struct delivery *d,
				   const struct outbox_batch *b,
				   const struct transport_reply *reply)
{
	struct outbox_stats st = { 0 };
	long s = reply->status;

	if (s == 400 || s == 413)
		return batch_refused(d, b, reply) < 0 ? ATTEMPT_FAILED
						       : ATTEMPT_SENT;
	if ((s == 401 || s == 403) && credential_changed(d)) {
		d->next_try_ms = 0;
		snprintf(d->why, sizeof(d->why), "retrying with the new credential");
		return ATTEMPT_SENT;
	}
	outbox_stats(d->ob, &st);
	if (s == 401 || s == 403)
		auth_refused(d, reply, st.queued);
	else
		snprintf(d->why, sizeof(d->why), "%.900s; %llu events stay in the outbox",
			 reply->error, (unsigned long long)st.queued);
	return ATTEMPT_FAILED;
}

/* One batch to the collector, and what its answer means. */
static enum attempt attempt(struct delivery *d, size_t *ret_sent)
{
	struct transport_reply reply;
	struct outbox_batch b;
	json_t *batch;
	char *body;
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
	batch = event_batch(d->conf->host, b.events);
	body = batch ? json_dumps(batch, JSON_FLAGS) : NULL;
	json_decref(batch);
	if (body == NULL) {
		outbox_batch_free(&b);
		snprintf(d->why, sizeof(d->why), "cannot encode the events");
		return ATTEMPT_FAILED;
	}
	r = transport_post(d->t, "/api/v1/events", body, strlen(body), &reply);
	free(body);
	if (r == 0) {
		r = batch_acked(d, &b, &reply);
		if (r == 0 && ret_sent)
			*ret_sent += b.n;
		outbox_batch_free(&b);
		return r < 0 ? ATTEMPT_FAILED : ATTEMPT_SENT;
	}
	if (r == -ECANCELED) {
		outbox_batch_free(&b);
		return ATTEMPT_ABORTED;
	}
	d->retry_after_ms = reply.retry_after_ms;
	r = attempt_status(d, &b, &reply);
	outbox_batch_free(&b);
	return r;
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
	log_warnx("%s; next attempt in %llds", d->why, (long long)(wait + 999) / 1000);
}

/* When the credential file is old enough, trade it for a new one. */
static void maybe_rotate(struct delivery *d)
{
	struct credential_grant g = { 0 };
	struct stat st;
	char err[1024];
	int r;

	if (d->conf->rotate_every_ms <= 0 || d->credential_path == NULL ||
	    time_mono_ms() < d->rotate_retry_ms ||
	    stat(d->credential_path, &st) < 0 ||
	    (int64_t)st.st_mtime * 1000 + d->conf->rotate_every_ms > time_now_ms())
		return;
	d->rotate_retry_ms = time_mono_ms() + ROTATE_RETRY_MS;
	r = credential_rotate(d->t, &g, err, sizeof(err));
	if (r == -ECANCELED)
		return;
	if (r < 0) {
		log_warnx("scheduled credential rotation failed: %s; the current credential stays in use",
			  err);
		return;
	}
	r = credential_store(d->credential_path, &g, transport_url(d->t));
	if (r < 0) {
		/* Using a secret we could not store would lock a restart out. */
		log_errorx("rotated to credential %lld but cannot store it in %s (%s): keeping the old one, which the collector honours for 1 h",
			   (long long)g.id, d->credential_path, strerror(-r));
	} else {
		explicit_bzero(d->token, strlen(d->token));
		free(d->token);
		d->token = xstrdup(g.secret);
		transport_set_token(d->t, d->token);
		d->rotate_retry_ms = 0;
		log_notice("credential rotated: now credential %lld, stored in %s",
			   (long long)g.id, d->credential_path);
	}
	credential_grant_clear(&g);
}

static void update_status(struct delivery *d, enum attempt a)
{
	struct outbox_stats st = { 0 };

	outbox_stats(d->ob, &st);
	if (a == ATTEMPT_FAILED)
		service_status("cannot deliver (%u attempts): %llu events queued",
			       d->failures, (unsigned long long)st.queued);
	else
		service_status("delivering to %s: %llu events queued",
			       transport_url(d->t), (unsigned long long)st.queued);
}

bool delivery_run(struct delivery *d)
{
	enum attempt a;

	maybe_rotate(d);
	if (!d->pending || time_mono_ms() < d->next_try_ms)
		return true;
	d->retry_after_ms = 0;
	a = attempt(d, NULL);
	switch (a) {
	case ATTEMPT_ABORTED:
		return false;
	case ATTEMPT_FAILED:
		schedule_retry(d);
		break;
	case ATTEMPT_SENT:
		if (d->failures > 0)
			log_info("delivering to %s again after %u failed attempts",
				 transport_url(d->t), d->failures);
		d->failures = 0;
		d->delay_ms = 0;
		d->next_try_ms = 0;
		break;
	case ATTEMPT_EMPTY:
		return true;
	}
	update_status(d, a);
	return true;
}

int64_t delivery_wait_ms(const struct delivery *d)
{
	int64_t left;

	if (!d->pending)
		return INT64_MAX;
	left = d->next_try_ms - time_mono_ms();
	return left > 0 ? left : 0;
}

int delivery_flush(struct delivery *d, size_t *ret_sent, char *why,
		   size_t whylen)
{
	size_t sent = 0;
	enum attempt a;

	do {
		d->retry_after_ms = 0;
		a = attempt(d, &sent);
	} while (a == ATTEMPT_SENT);
	*ret_sent = sent;
	if (a == ATTEMPT_EMPTY)
		return 0;
	strlcpy_safe(why, a == ATTEMPT_ABORTED ? "interrupted" : d->why, whylen);
	return a == ATTEMPT_ABORTED ? -ECANCELED : -EIO;
}
