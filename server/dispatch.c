#include "dispatch.h"

#include <errno.h>
#include <jansson.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/log.h"
#include "../common/util.h"
#include "desk.h"
#include "notify.h"
#include "smtp.h"
#include "store.h"
#include "webhook.h"
#include "writer.h"

/* A row's outcome that is not a failure: it waits for another row. */
#define OUTCOME_HOLD 1

struct item {
	int64_t id, ticket_id;
	int attempts;
	char *channel, *target, *subject, *body, *key, *kind;
};

/* The last sends to one recipient list, a ring of notify.rate.mails. */
struct rate {
	char *target; /* NULL: a free slot */
	int64_t used_ms;
	int64_t *sent;
	int n, head;
};

/*
 * A lane's round uses its own nc and hook, taken between two rounds from
 * what the last dispatch_reconfigure() published (lane_adopt()), so that
 * one send never sees half of two configurations.  The configurations
 * themselves live until exit (reload.h).
 */
struct lane {
	struct dispatch *p;
	char *name;			   /* the webhook's; NULL: the mail lane */
	pthread_t thread;
	atomic_bool abandon;		   /* a send in flight gives up: we stop */
	bool retired;			   /* under p->lock: its channel is gone */
	unsigned seen;			   /* kicks seen */
	unsigned generation;		   /* of the nc it uses */
	const struct notify_config *nc;
	const struct notify_webhook *hook; /* in nc; NULL: the mail lane */
	int64_t backoff_ms, blocked_until_ms; /* the peer is away: wait */
	struct rate *rates;		   /* the mail lane's */
};

struct dispatch {
	struct desk *d;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stopping;
	unsigned kicks;
	/* Under lock: the newest notify: and its number, for lane_adopt(). */
	const struct notify_config *nc;
	unsigned generation;
	int64_t purged_ms; /* under lock: the last purge, by whichever lane */
	/* The lanes; only the thread that starts and stops the sender
	 * (dispatch_start(), _reconfigure(), _stop()) touches the array. */
	struct lane **lanes;
	size_t nlanes;
};

/*
 * What became of a send: result 0 (sent), OUTCOME_HOLD (not tried: it
 * waits until hold_ms), -EINVAL (never going to work), or another -errno
 * (tried again with backoff).
 */
struct outcome {
	int result;
	int64_t hold_ms;
	const char *error;
	const char *external_id; /* a Zammad create: the id to remember */
};

struct mark_job {
	struct desk *d;
	const struct notify_config *nc;
	const struct item *v;
	size_t n;
	const char *webhook;
	struct outcome o;
	int64_t now_ms;
	size_t sent, retried, failed; /* the job's count */
};

static char *column_dup(sqlite3_stmt *s, int col)
{
	const char *t = (const char *)sqlite3_column_text(s, col);

	return t ? xstrdup(t) : NULL;
}

static void items_free(struct item *v, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(v[i].channel);
		free(v[i].target);
		free(v[i].subject);
		free(v[i].body);
		free(v[i].key);
		free(v[i].kind);
	}
}

/* The rows of s (bound already, OUTBOX_COLUMNS), at most max; s is reset. */
static size_t load_rows(sqlite3_stmt *s, struct item *v, size_t max)
{
	size_t n = 0;

	while (n < max && sqlite3_step(s) == SQLITE_ROW) {
		v[n] = (struct item){
			.id = sqlite3_column_int64(s, 0),
			.ticket_id = sqlite3_column_int64(s, 1),
			.channel = column_dup(s, 2),
			.target = column_dup(s, 3),
			.subject = column_dup(s, 4),
			.body = column_dup(s, 5),
			.key = column_dup(s, 6),
			.attempts = sqlite3_column_int(s, 7),
			.kind = column_dup(s, 8),
		};
		if (v[n].target == NULL || v[n].body == NULL || v[n].key == NULL) {
			items_free(&v[n], 1);
			continue;
		}
		n++;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return n;
}

/* min(next_attempt) of s (bound already), -1 for none; s is reset. */
static int64_t load_next(sqlite3_stmt *s)
{
	int64_t next = -1;

	if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL)
		next = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return next;
}

/* Under the store lock: the committed pending count for /metrics. */
static void refresh_pending(struct desk *d)
{
	int64_t pending;

	if (desk_outbox_pending(d, &pending) == 0)
		d->counters.pending = pending;
}

static int64_t backoff(const struct notify_config *nc, int attempts)
{
	int64_t delay = nc->retry_initial_ms;

	for (int i = 0; i < attempts && delay < nc->retry_max_ms; i++)
		delay *= 2;
	return delay < nc->retry_max_ms ? delay : nc->retry_max_ms;
}

/* Writer job: every row of the send gets the outcome. */
static int mark_apply(struct store *st, void *arg)
{
	struct mark_job *j = arg;
	int r = 0;

	(void)st;
	j->sent = j->retried = j->failed = 0;
	for (size_t i = 0; r == 0 && i < j->n; i++) {
		const struct item *it = &j->v[i];
		bool hold = j->o.result == OUTCOME_HOLD;
		bool give_up = j->o.result == -EINVAL ||
			       (!hold && it->attempts + 1 >= j->nc->retry_attempts);
		sqlite3_stmt *s;

		if (j->o.result == 0) {
			s = j->d->stmt[DESK_OUTBOX_SENT];
			sqlite3_bind_int64(s, 1, it->id);
			sqlite3_bind_int64(s, 2, j->now_ms);
			j->sent++;
		} else {
			s = j->d->stmt[DESK_OUTBOX_RETRY];
			sqlite3_bind_int64(s, 1, it->id);
			sqlite3_bind_int64(s, 2, hold ? j->o.hold_ms
						      : j->now_ms + backoff(j->nc, it->attempts));
			db_bind_text(s, 3, j->o.error);
			sqlite3_bind_int(s, 4, give_up);
			sqlite3_bind_int(s, 5, hold);
			if (give_up)
				j->failed++;
			else if (!hold)
				j->retried++;
		}
		r = db_step_done(s);
	}
	if (r == 0 && j->o.result == 0 && j->o.external_id) {
		sqlite3_stmt *s = j->d->stmt[DESK_EXTERNAL_SET];

		db_bind_text(s, 1, j->webhook);
		sqlite3_bind_int64(s, 2, j->v[0].ticket_id);
		db_bind_text(s, 3, j->o.external_id);
		r = db_step_done(s);
	}
	return r;
}

/* Record the outcome of sending v[0..n) in one writer job, and say so. */
static void record(struct lane *l, const struct item *v, size_t n,
		   const struct outcome *o)
{
	struct desk *d = l->p->d;
	struct mark_job j = { .d = d, .nc = l->nc, .v = v, .n = n,
			      .webhook = l->hook ? l->hook->name : NULL, .o = *o,
			      .now_ms = time_now_ms() };
	const char *what = l->hook ? "webhook" : "mail";
	int r = writer_run(d->writer, mark_apply, &j);

	if (r < 0) {
		log_warnx("notification %lld: recording the outcome failed: %s",
			  (long long)v[0].id, strerror(-r));
		return;
	}
	d->counters.sent += j.sent;
	d->counters.failed += j.failed;
	d->counters.retried += j.retried;
	store_lock(d->st);
	refresh_pending(d);
	store_unlock(d->st);
	if (o->result == OUTCOME_HOLD)
		return;
	if (j.sent && n > 1)
		log_info("%s to %s sent: a digest of %zu notifications", what, v[0].target, n);
	else if (j.sent)
		log_info("ticket %lld: %s to %s sent", (long long)v[0].ticket_id, what,
			 v[0].target);
	if (j.failed)
		log_warnx("ticket %lld: %s to %s failed for good (%zu of %zu rows): %s",
			  (long long)v[0].ticket_id, what, v[0].target, j.failed, n,
			  o->error ? o->error : "");
	if (j.retried)
		log_notice("ticket %lld: %s to %s failed, retrying: %s",
			   (long long)v[0].ticket_id, what, v[0].target,
			   o->error ? o->error : "");
}

/* The peer could not be reached: the whole lane waits, doubling. */
static void lane_failed(struct lane *l, int64_t now_ms)
{
	const struct notify_config *nc = l->nc;

	l->backoff_ms = l->backoff_ms ? l->backoff_ms * 2 : nc->retry_initial_ms;
	if (l->backoff_ms > nc->retry_max_ms)
		l->backoff_ms = nc->retry_max_ms;
	l->blocked_until_ms = now_ms + l->backoff_ms;
}

static void lane_reached(struct lane *l)
{
	l->backoff_ms = 0;
	l->blocked_until_ms = 0;
}

/* Whether the lane is to end: the server stops, or its channel is gone. */
static bool lane_stopping(struct lane *l)
{
	bool s;

	pthread_mutex_lock(&l->p->lock);
	s = l->p->stopping || l->retired;
	pthread_mutex_unlock(&l->p->lock);
	return s;
}

/* ---- mail: rate per recipient list, digests ------------------------------ */

/* The rate slot of target (the least recently used one is reused). */
static struct rate *rate_of(struct lane *l, const char *target, int64_t now_ms)
{
	int cap = l->nc->rate_mails;
	struct rate *oldest = &l->rates[0];

	for (size_t i = 0; i < DISPATCH_RATE_TARGETS; i++) {
		struct rate *r = &l->rates[i];

		if (r->target && strcmp(r->target, target) == 0) {
			r->used_ms = now_ms;
			return r;
		}
		if (r->target == NULL || r->used_ms < oldest->used_ms)
			oldest = r;
		if (r->target == NULL)
			break;
	}
	free(oldest->target);
	free(oldest->sent);
	*oldest = (struct rate){ .target = xstrdup(target), .used_ms = now_ms,
				 .sent = xcalloc((size_t)cap, sizeof(int64_t)) };
	return oldest;
}

/* Whether target had its notify.rate.mails within per; then *ret_until. */
static bool rate_full(const struct notify_config *nc, const struct rate *r,
		      int64_t now_ms, int64_t *ret_until)
{
	if (nc->rate_mails <= 0 || r->n < nc->rate_mails ||
	    r->sent[r->head] + nc->rate_per_ms <= now_ms)
		return false;
	*ret_until = r->sent[r->head] + nc->rate_per_ms;
	return true;
}

/* How many more mails target may get now. */
static int rate_left(const struct notify_config *nc, const struct rate *r, int64_t now_ms)
{
	int used = 0;

	for (int i = 0; i < r->n; i++)
		if (r->sent[(r->head + i) % nc->rate_mails] + nc->rate_per_ms > now_ms)
			used++;
	return nc->rate_mails - used;
}

static void rate_record(const struct notify_config *nc, struct rate *r, int64_t now_ms)
{
	if (nc->rate_mails <= 0)
		return;
	if (r->n < nc->rate_mails) {
		r->sent[(r->head + r->n++) % nc->rate_mails] = now_ms;
		return;
	}
	r->sent[r->head] = now_ms;
	r->head = (r->head + 1) % nc->rate_mails;
}

/*
 * A reload changed notify.rate.mails from old_cap to new_cap: each ring
 * keeps its newest sends that fit, oldest first, so that a list which
 * had its mails still waits for its window.
 */
static void rates_resize(struct lane *l, int old_cap, int new_cap)
{
	for (size_t i = 0; i < DISPATCH_RATE_TARGETS; i++) {
		struct rate *r = &l->rates[i];
		int keep = r->n < new_cap ? r->n : new_cap > 0 ? new_cap : 0;
		int64_t *sent;

		if (r->target == NULL)
			continue;
		sent = xcalloc((size_t)(new_cap > 0 ? new_cap : 0), sizeof(*sent));
		for (int k = 0; k < keep; k++)
			sent[k] = r->sent[(r->head + r->n - keep + k) % old_cap];
		free(r->sent);
		*r = (struct rate){ .target = r->target, .used_ms = r->used_ms,
				    .sent = sent, .n = keep };
	}
}

struct defer_job {
	struct desk *d;
	const char *target;
	int64_t until_ms;
};

static int defer_apply(struct store *st, void *arg)
{
	struct defer_job *j = arg;
	sqlite3_stmt *s = j->d->stmt[DESK_OUTBOX_DEFER];

	(void)st;
	db_bind_text(s, 1, j->target);
	sqlite3_bind_int64(s, 2, j->until_ms);
	return db_step_done(s);
}

/*
 * One mail carrying v[0..n) for their recipient list: a list of what is
 * in it, then each mail as it would have gone alone, cut at
 * notify.max_body.  Malloc'ed subject and body.
 */
static void digest_compose(const struct notify_config *nc, const struct item *v,
			   size_t n, char **ret_subject, char **ret_body)
{
	size_t len = 0, cut;
	char *body = NULL, *subject;
	FILE *fp = open_memstream(&body, &len);

	if (fp == NULL)
		abort(); /* as x*alloc(): out of memory */
	fprintf(fp, "%zu notifications for you, in one mail:\n\n", n);
	for (size_t i = 0; i < n; i++)
		fprintf(fp, "  %s\n", v[i].subject ? v[i].subject : "");
	for (size_t i = 0; i < n; i++)
		fprintf(fp, "\n==== %s ====\n\n%s\n", v[i].subject ? v[i].subject : "",
			v[i].body);
	fclose(fp);
	if (len > nc->max_body) {
		static const char more[] = "\n\n... (cut: the rest is in the tickets)\n";

		cut = notify_utf8_cut(body, nc->max_body - sizeof(more));
		memcpy(body + cut, more, sizeof(more));
	}
	subject = xasprintf("[Tocsin] %zu notifications: %s", n, v[0].subject ? v[0].subject : "");
	subject[notify_utf8_cut(subject, strlen(subject) > NOTIFY_SUBJECT_MAX
						 ? NOTIFY_SUBJECT_MAX
						 : strlen(subject))] = '\0';
	*ret_subject = subject;
	*ret_body = body;
}

/*
 * Send v[0..n) to target: as one mail when n is 1, else as one digest.
 * The outcome is recorded (unless abandoned as we stop) and the lane
 * backs off when the server is away.  Returns the send's result.
 */
static int mail_send(struct lane *l, struct rate *rt, const char *target,
		     const struct item *v, size_t n, int64_t now_ms)
{
	struct desk *d = l->p->d;
	const struct notify_config *nc = l->nc;
	struct outcome o = { 0 };
	char err[512] = "", *subject, *body;

	if (n == 1) {
		o.result = smtp_send(nc, target, v[0].subject ? v[0].subject : "", v[0].body,
				     v[0].key, &l->abandon, err, sizeof(err));
	} else {
		digest_compose(nc, v, n, &subject, &body);
		o.result = smtp_send(nc, target, subject, body, v[0].key, &l->abandon, err,
				     sizeof(err));
		if (o.result == 0)
			d->counters.digests++;
		free(subject);
		free(body);
	}
	/* Abandoned as we stop: the rows stay as they were, for the next start. */
	if (o.result == -ECANCELED)
		return o.result;
	o.error = err;
	record(l, v, n, &o);
	if (o.result == 0)
		rate_record(nc, rt, now_ms);
	if (o.result == -EAGAIN)
		lane_failed(l, now_ms);
	else
		lane_reached(l);
	return o.result;
}

/*
 * Everything due for one recipient list: later when its rate is used up
 * (the rows wait for the window, in a writer job); one mail each while
 * the rate allows them all; else one digest of them all, so that a burst
 * costs the list one mail.
 */
static void mail_target(struct lane *l, const char *target, int64_t now_ms)
{
	struct desk *d = l->p->d;
	const struct notify_config *nc = l->nc;
	struct rate *rt = rate_of(l, target, now_ms);
	struct item *v;
	int64_t until;
	size_t n;

	if (rate_full(nc, rt, now_ms, &until)) {
		struct defer_job j = { d, target, until };

		writer_run(d->writer, defer_apply, &j);
		return;
	}
	v = xcalloc(DISPATCH_DIGEST_MAX, sizeof(*v));
	store_lock(d->st);
	db_bind_text(d->stmt[DESK_OUTBOX_TARGET_DUE], 1, target);
	sqlite3_bind_int64(d->stmt[DESK_OUTBOX_TARGET_DUE], 2, now_ms);
	sqlite3_bind_int(d->stmt[DESK_OUTBOX_TARGET_DUE], 3, DISPATCH_DIGEST_MAX);
	n = load_rows(d->stmt[DESK_OUTBOX_TARGET_DUE], v, DISPATCH_DIGEST_MAX);
	store_unlock(d->st);
	if (n > 1 && (nc->rate_mails <= 0 || n <= (size_t)rate_left(nc, rt, now_ms))) {
		for (size_t i = 0; i < n && l->blocked_until_ms <= now_ms && !lane_stopping(l); i++)
			if (mail_send(l, rt, target, &v[i], 1, now_ms) == -ECANCELED)
				break;
	} else if (n > 0) {
		mail_send(l, rt, target, v, n, now_ms);
	}
	items_free(v, n);
	free(v);
}

/* The mail lane's round: each recipient list with something due. */
static size_t mail_round(struct lane *l, int64_t now_ms, int64_t *ret_next)
{
	struct desk *d = l->p->d;
	struct item batch[DISPATCH_BATCH_MAX];
	const char *done[DISPATCH_BATCH_MAX];
	size_t n, ndone = 0;

	store_lock(d->st);
	sqlite3_bind_int64(d->stmt[DESK_OUTBOX_DUE_MAIL], 1, now_ms);
	sqlite3_bind_int(d->stmt[DESK_OUTBOX_DUE_MAIL], 2, DISPATCH_BATCH_MAX);
	n = load_rows(d->stmt[DESK_OUTBOX_DUE_MAIL], batch, DISPATCH_BATCH_MAX);
	refresh_pending(d);
	store_unlock(d->st);
	for (size_t i = 0; i < n && l->blocked_until_ms <= now_ms && !lane_stopping(l); i++) {
		bool seen = false;

		for (size_t k = 0; k < ndone && !seen; k++)
			seen = strcmp(done[k], batch[i].target) == 0;
		if (seen)
			continue;
		done[ndone++] = batch[i].target;
		mail_target(l, batch[i].target, now_ms);
	}
	items_free(batch, n);
	store_lock(d->st);
	*ret_next = load_next(d->stmt[DESK_OUTBOX_NEXT_MAIL]);
	store_unlock(d->st);
	return n;
}

/* ---- webhooks ----------------------------------------------------------- */

/*
 * A Zammad update needs the id Zammad gave the ticket: 1 and ext, or 0
 * and the outcome (wait for the creation still pending, or give up when
 * there will be none).
 */
static int zammad_ticket(struct lane *l, const struct item *it, int64_t now_ms,
			 char *ext, size_t extlen, struct outcome *o)
{
	struct desk *d = l->p->d;
	sqlite3_stmt *s = d->stmt[DESK_EXTERNAL_GET];
	char state[16] = "";
	int64_t next = 0;
	int found = 0;

	store_lock(d->st);
	db_bind_text(s, 1, l->hook->name);
	sqlite3_bind_int64(s, 2, it->ticket_id);
	if (sqlite3_step(s) == SQLITE_ROW) {
		strlcpy_safe(ext, (const char *)sqlite3_column_text(s, 0), extlen);
		found = 1;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	s = d->stmt[DESK_OUTBOX_CREATE_STATE];
	db_bind_text(s, 1, l->hook->name);
	sqlite3_bind_int64(s, 2, it->ticket_id);
	if (!found && sqlite3_step(s) == SQLITE_ROW) {
		strlcpy_safe(state, (const char *)sqlite3_column_text(s, 0), sizeof(state));
		next = sqlite3_column_int64(s, 1);
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	store_unlock(d->st);
	if (found)
		return 1;
	if (strcmp(state, "pending") == 0) {
		o->result = OUTCOME_HOLD;
		o->hold_ms = next > now_ms ? next + 1 : now_ms + l->nc->poll_ms;
		o->error = "waiting for the ticket's creation in Zammad";
		return 0;
	}
	o->result = -EINVAL;
	o->error = state[0] ? "no Zammad ticket to update: its creation did not succeed"
			    : "no Zammad ticket to update: the ticket opened before this webhook sent creations";
	return 0;
}

/* The id in Zammad's answer to a creation ({"id": 17, ...}). */
static int zammad_id(const char *reply, char *ext, size_t extlen)
{
	json_t *doc = json_loads(reply, 0, NULL), *id = json_object_get(doc, "id");
	int r = 0;

	if (json_is_integer(id))
		snprintf(ext, extlen, "%lld", (long long)json_integer_value(id));
	else if (json_is_string(id) && json_string_length(id) < extlen &&
		 strspn(json_string_value(id), "0123456789") == json_string_length(id) &&
		 json_string_length(id) > 0)
		strlcpy_safe(ext, json_string_value(id), extlen);
	else
		r = -EINVAL;
	json_decref(doc);
	return r;
}

static void hook_row(struct lane *l, const struct item *it, int64_t now_ms)
{
	const struct notify_webhook *w = l->hook;
	bool zammad = w->format == WEBHOOK_ZAMMAD;
	bool update = zammad && strcmp(it->kind, "update") == 0;
	bool create = zammad && strcmp(it->kind, "create") == 0;
	char err[512] = "", ext[32], *url = NULL, *reply = NULL;
	struct outcome o = { .error = err };

	if (update) {
		if (zammad_ticket(l, it, now_ms, ext, sizeof(ext), &o) == 0) {
			record(l, it, 1, &o);
			return;
		}
		url = xasprintf("%.*s/%s", (int)(strlen(w->url) - (w->url[strlen(w->url) - 1] == '/')),
				w->url, ext);
	}
	o.result = webhook_send(w, url ? url : w->url, update, it->body, it->key,
				create ? &reply : NULL, &l->abandon, err, sizeof(err));
	if (o.result == -ECANCELED) {
		free(url);
		return; /* we stop: the row stays as it was, for the next start */
	}
	if (o.result == 0 && create) {
		if (zammad_id(reply, ext, sizeof(ext)) == 0)
			o.external_id = ext;
		else
			log_warnx("webhook %s: Zammad answered the creation of ticket %lld without an id; its updates cannot be sent",
				  w->name, (long long)it->ticket_id);
	}
	record(l, it, 1, &o);
	if (o.result == -EAGAIN)
		lane_failed(l, now_ms);
	else
		lane_reached(l);
	free(reply);
	free(url);
}

/* A webhook lane's round: its due rows in order (a creation first). */
static size_t hook_round(struct lane *l, int64_t now_ms, int64_t *ret_next)
{
	struct desk *d = l->p->d;
	struct item batch[DISPATCH_BATCH_MAX];
	size_t n;

	store_lock(d->st);
	sqlite3_bind_int64(d->stmt[DESK_OUTBOX_DUE_HOOK], 1, now_ms);
	sqlite3_bind_int(d->stmt[DESK_OUTBOX_DUE_HOOK], 2, DISPATCH_BATCH_MAX);
	db_bind_text(d->stmt[DESK_OUTBOX_DUE_HOOK], 3, l->hook->name);
	n = load_rows(d->stmt[DESK_OUTBOX_DUE_HOOK], batch, DISPATCH_BATCH_MAX);
	refresh_pending(d);
	store_unlock(d->st);
	for (size_t i = 0; i < n && l->blocked_until_ms <= now_ms && !lane_stopping(l); i++)
		hook_row(l, &batch[i], now_ms);
	items_free(batch, n);
	store_lock(d->st);
	db_bind_text(d->stmt[DESK_OUTBOX_NEXT_HOOK], 1, l->hook->name);
	*ret_next = load_next(d->stmt[DESK_OUTBOX_NEXT_HOOK]);
	store_unlock(d->st);
	return n;
}

/* ---- the lanes' threads --------------------------------------------------- */

static const struct notify_webhook *webhook_named(const struct notify_config *nc,
						  const char *name)
{
	for (size_t i = 0; i < nc->nwebhooks; i++)
		if (strcmp(nc->webhooks[i].name, name) == 0)
			return &nc->webhooks[i];
	return NULL;
}

/*
 * Between two rounds: take up the newest notify: if a reload published
 * one.  The lane's backoff survives unless its peer changed (another
 * SMTP server or webhook URL: it may well be up); the mail lane's rates
 * survive, resized to a new notify.rate.mails.  False: the lane is to end.
 */
static bool lane_adopt(struct lane *l)
{
	struct dispatch *p = l->p;
	const struct notify_config *nc, *old = l->nc;
	const struct notify_webhook *hook = NULL;
	bool end;

	pthread_mutex_lock(&p->lock);
	end = p->stopping || l->retired;
	nc = p->nc;
	l->generation = p->generation;
	pthread_mutex_unlock(&p->lock);
	if (end)
		return false;
	if (nc == old)
		return true;
	if (l->name != NULL && (hook = webhook_named(nc, l->name)) == NULL)
		return false; /* cannot be: retired before its config is published */
	if (hook ? str_differs(hook->url, l->hook->url)
		 : str_differs(nc->smtp_url, old->smtp_url))
		lane_reached(l);
	if (l->rates && nc->rate_mails != old->rate_mails)
		rates_resize(l, old->rate_mails, nc->rate_mails);
	l->nc = nc;
	l->hook = hook;
	return true;
}

/* Sleep until next_ms (at most a poll), a kick, a reload or the stop. */
static void lane_wait(struct lane *l, int64_t next_ms)
{
	struct dispatch *p = l->p;
	int64_t now = time_now_ms(), poll = l->nc->poll_ms;
	int64_t delay = next_ms >= 0 && next_ms - now < poll ? next_ms - now : poll;
	struct timespec ts;

	if (delay <= 0)
		return;
	ts = time_mono_deadline(delay);
	pthread_mutex_lock(&p->lock);
	while (!p->stopping && !l->retired && p->kicks == l->seen &&
	       p->generation == l->generation &&
	       pthread_cond_timedwait(&p->cond, &p->lock, &ts) == 0)
		;
	l->seen = p->kicks;
	pthread_mutex_unlock(&p->lock);
}

struct purge_job {
	struct desk *d;
	int64_t before_ms;
};

/* Writer job: forget rows that are done and older than notify.keep. */
static int purge_apply(struct store *st, void *arg)
{
	struct purge_job *j = arg;
	sqlite3_stmt *s = j->d->stmt[DESK_OUTBOX_PURGE];
	int r;

	sqlite3_bind_int64(s, 1, j->before_ms);
	r = db_step_done(s);
	return r < 0 ? r : sqlite3_changes(store_db(st));
}

/* Hourly, by whichever lane comes first: forget old rows. */
static void lane_purge(struct lane *l, int64_t now_ms)
{
	struct dispatch *p = l->p;
	struct purge_job job = { p->d, now_ms - l->nc->keep_ms };
	bool due;
	int r;

	pthread_mutex_lock(&p->lock);
	due = now_ms - p->purged_ms >= DISPATCH_PURGE_EVERY_MS;
	if (due)
		p->purged_ms = now_ms;
	pthread_mutex_unlock(&p->lock);
	if (!due)
		return;
	r = writer_run(p->d->writer, purge_apply, &job);
	if (r > 0)
		log_info("notifications: forgot %d old rows", r);
}

/* A lane: send what is due, sleep until the next, until it is to end. */
static void *lane_main(void *arg)
{
	struct lane *l = arg;

	while (lane_adopt(l)) {
		int64_t next = -1, now = time_now_ms();
		size_t n = 0;

		lane_purge(l, now);
		if (now >= l->blocked_until_ms)
			n = l->hook ? hook_round(l, now, &next) : mail_round(l, now, &next);
		if (l->blocked_until_ms > now && (next < 0 || next < l->blocked_until_ms))
			next = l->blocked_until_ms;
		if (n < DISPATCH_BATCH_MAX || l->blocked_until_ms > time_now_ms())
			lane_wait(l, next);
	}
	return NULL;
}

struct unsendable_job {
	struct desk *d;
	const struct notify_config *nc;
	int failed; /* rows failed */
};

/*
 * Writer job, at start and after a reload: pending rows no lane of nc
 * will send (mail without notify.smtp.url, a webhook no longer
 * configured) fail, saying why.
 */
static int unsendable_apply(struct store *st, void *arg)
{
	struct unsendable_job *j = arg;
	struct desk *d = j->d;
	sqlite3_stmt *s = d->stmt[DESK_OUTBOX_LANES], *u = d->stmt[DESK_OUTBOX_FAIL_UNSENDABLE];
	char **names = NULL, *why;
	size_t n = 0;
	int r = 0;

	while (sqlite3_step(s) == SQLITE_ROW) {
		names = xreallocarray(names, n + 1, sizeof(*names));
		names[n++] = column_dup(s, 1);
	}
	sqlite3_reset(s);
	if (j->nc->smtp_url == NULL) {
		db_bind_text(u, 1, "mail");
		db_bind_text(u, 3, "no notify.smtp.url is configured");
		r = db_step_done(u);
		sqlite3_clear_bindings(u);
		if (r == 0)
			j->failed += sqlite3_changes(store_db(st));
	}
	for (size_t i = 0; i < n; i++) {
		if (r == 0 && names[i] && webhook_named(j->nc, names[i]) == NULL) {
			why = xasprintf("webhook '%s' is no longer configured", names[i]);
			db_bind_text(u, 1, "webhook");
			db_bind_text(u, 2, names[i]);
			db_bind_text(u, 3, why);
			r = db_step_done(u);
			sqlite3_clear_bindings(u);
			free(why);
			if (r == 0)
				j->failed += sqlite3_changes(store_db(st));
		}
		free(names[i]);
	}
	free(names);
	return r;
}

static void lane_free(struct lane *l)
{
	for (size_t k = 0; l->rates && k < DISPATCH_RATE_TARGETS; k++) {
		free(l->rates[k].target);
		free(l->rates[k].sent);
	}
	free(l->rates);
	free(l->name);
	free(l);
}

/* A lane for the webhook named name (NULL: mail) of nc, running. */
static int lane_start(struct dispatch *p, const struct notify_config *nc,
		      const char *name)
{
	struct lane *l = xcalloc(1, sizeof(*l));
	int r;

	*l = (struct lane){ .p = p, .nc = nc };
	atomic_init(&l->abandon, false);
	if (name) {
		l->name = xstrdup(name);
		l->hook = webhook_named(nc, name);
	} else {
		l->rates = xcalloc(DISPATCH_RATE_TARGETS, sizeof(struct rate));
	}
	pthread_mutex_lock(&p->lock);
	l->generation = p->generation;
	l->seen = p->kicks;
	pthread_mutex_unlock(&p->lock);
	r = -pthread_create(&l->thread, NULL, lane_main, l);
	if (r < 0) {
		lane_free(l);
		return r;
	}
	p->lanes = xreallocarray(p->lanes, p->nlanes + 1, sizeof(*p->lanes));
	p->lanes[p->nlanes++] = l;
	return 0;
}

static bool lane_wanted(const struct lane *l, const struct notify_config *nc)
{
	return l->name ? webhook_named(nc, l->name) != NULL : nc->smtp_url != NULL;
}

static bool has_lane(const struct dispatch *p, const char *name)
{
	for (size_t i = 0; i < p->nlanes; i++)
		if (name ? p->lanes[i]->name && strcmp(p->lanes[i]->name, name) == 0
			 : p->lanes[i]->name == NULL)
			return true;
	return false;
}

/*
 * Make the lanes those of nc: lanes whose channel is gone are retired
 * (a send in flight abandoned) and joined, nc is published for the
 * others, and lanes for new channels start.  First error of a start,
 * the other lanes still started; *ret_change counts what changed.
 */
static int lanes_sync(struct dispatch *p, const struct notify_config *nc,
		      struct dispatch_change *ret_change)
{
	size_t kept = 0;
	int r = 0, e;

	pthread_mutex_lock(&p->lock);
	for (size_t i = 0; i < p->nlanes; i++)
		if (!lane_wanted(p->lanes[i], nc)) {
			p->lanes[i]->retired = true;
			atomic_store(&p->lanes[i]->abandon, true);
		}
	p->nc = nc;
	p->generation++;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (size_t i = 0; i < p->nlanes; i++) {
		struct lane *l = p->lanes[i];

		if (!l->retired) {
			p->lanes[kept++] = l;
			continue;
		}
		pthread_join(l->thread, NULL);
		ret_change->removed++;
		lane_free(l);
	}
	p->nlanes = kept;
	if (nc->smtp_url && !has_lane(p, NULL)) {
		e = lane_start(p, nc, NULL);
		r = r < 0 ? r : e;
		ret_change->added += e == 0;
	}
	for (size_t i = 0; i < nc->nwebhooks; i++) {
		if (has_lane(p, nc->webhooks[i].name))
			continue;
		e = lane_start(p, nc, nc->webhooks[i].name);
		r = r < 0 ? r : e;
		ret_change->added += e == 0;
	}
	return r;
}

int dispatch_start(struct desk *d, struct dispatch **ret_dispatch)
{
	struct dispatch *p = xcalloc(1, sizeof(*p));
	struct unsendable_job job = { .d = d, .nc = d->notify };
	struct dispatch_change change = { 0 };
	int r;

	r = writer_run(d->writer, unsendable_apply, &job);
	if (r < 0) {
		free(p);
		return r;
	}
	p->d = d;
	pthread_mutex_init(&p->lock, NULL);
	cond_init_monotonic(&p->cond);
	r = lanes_sync(p, d->notify, &change);
	if (r < 0) {
		dispatch_stop(p);
		return r;
	}
	*ret_dispatch = p;
	return 0;
}

int dispatch_reconfigure(struct dispatch *p, const struct notify_config *nc,
			 struct dispatch_change *ret_change)
{
	struct unsendable_job job = { .d = p->d, .nc = nc };
	int r, e;

	*ret_change = (struct dispatch_change){ 0 };
	r = lanes_sync(p, nc, ret_change);
	/* After the joins: no retired lane is still sending what fails here. */
	e = writer_run(p->d->writer, unsendable_apply, &job);
	ret_change->failed = job.failed;
	ret_change->lanes = p->nlanes;
	return r < 0 ? r : e;
}

void dispatch_kick(struct dispatch *p)
{
	pthread_mutex_lock(&p->lock);
	p->kicks++;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

void dispatch_stop(struct dispatch *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_broadcast(&p->cond);
	pthread_mutex_unlock(&p->lock);
	for (size_t i = 0; i < p->nlanes; i++)
		atomic_store(&p->lanes[i]->abandon, true);
	for (size_t i = 0; i < p->nlanes; i++) {
		pthread_join(p->lanes[i]->thread, NULL);
		lane_free(p->lanes[i]);
	}
	free(p->lanes);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
