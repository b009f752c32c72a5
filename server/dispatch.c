#include "dispatch.h"

#include <errno.h>
#include <pthread.h>
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

struct dispatch {
	struct desk *d;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stopping, kicked;
};

struct item {
	int64_t id, ticket_id;
	int attempts;
	char *channel, *target, *subject, *body, *key;
};

struct mark_job {
	struct desk *d;
	const struct item *it;
	bool sent, give_up;
	int64_t now_ms, next_ms;
	const char *error;
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
	}
}

/* The due rows, copied out under the store lock; and the next due time. */
static size_t load_due(struct desk *d, int64_t now_ms, struct item *v,
		       int64_t *ret_next)
{
	sqlite3_stmt *s = d->stmt[DESK_OUTBOX_DUE];
	size_t n = 0;

	store_lock(d->st);
	sqlite3_bind_int64(s, 1, now_ms);
	sqlite3_bind_int(s, 2, DISPATCH_BATCH_MAX);
	while (n < DISPATCH_BATCH_MAX && sqlite3_step(s) == SQLITE_ROW) {
		v[n] = (struct item){
			.id = sqlite3_column_int64(s, 0),
			.ticket_id = sqlite3_column_int64(s, 1),
			.channel = column_dup(s, 2),
			.target = column_dup(s, 3),
			.subject = column_dup(s, 4),
			.body = column_dup(s, 5),
			.key = column_dup(s, 6),
			.attempts = sqlite3_column_int(s, 7),
		};
		n++;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	s = d->stmt[DESK_OUTBOX_NEXT];
	*ret_next = -1;
	if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL)
		*ret_next = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	store_unlock(d->st);
	return n;
}

static int mark_apply(struct store *st, void *arg)
{
	struct mark_job *j = arg;
	sqlite3_stmt *s;

	(void)st;
	if (j->sent) {
		s = j->d->stmt[DESK_OUTBOX_SENT];
		sqlite3_bind_int64(s, 1, j->it->id);
		sqlite3_bind_int64(s, 2, j->now_ms);
	} else {
		s = j->d->stmt[DESK_OUTBOX_RETRY];
		sqlite3_bind_int64(s, 1, j->it->id);
		sqlite3_bind_int64(s, 2, j->next_ms);
		db_bind_text(s, 3, j->error);
		sqlite3_bind_int(s, 4, j->give_up);
	}
	return db_step_done(s);
}

static const struct notify_webhook *webhook_named(const struct notify_config *nc,
						  const char *name)
{
	for (size_t i = 0; i < nc->nwebhooks; i++)
		if (strcmp(nc->webhooks[i].name, name) == 0)
			return &nc->webhooks[i];
	return NULL;
}

static int64_t backoff(const struct notify_config *nc, int attempts)
{
	int64_t delay = nc->retry_initial_ms;

	for (int i = 0; i < attempts && delay < nc->retry_max_ms; i++)
		delay *= 2;
	return delay < nc->retry_max_ms ? delay : nc->retry_max_ms;
}

/* Send one row and record the outcome. */
static void deliver(struct dispatch *p, const struct item *it)
{
	struct desk *d = p->d;
	const struct notify_config *nc = d->hc->notify;
	struct mark_job j = { .d = d, .it = it };
	char err[512] = "";
	int r;

	if (strcmp(it->channel, "mail") == 0) {
		r = nc->smtp_url ? smtp_send(nc, it->target, it->subject ? it->subject : "",
					     it->body, it->key, err, sizeof(err))
				 : (snprintf(err, sizeof(err), "no notify.smtp.url"), -EINVAL);
	} else {
		const struct notify_webhook *w = webhook_named(nc, it->target);

		r = w ? webhook_send(w, it->body, it->key, w->timeout_ms, err, sizeof(err))
		      : (snprintf(err, sizeof(err), "webhook '%s' is no longer configured",
				  it->target), -EINVAL);
	}
	j.now_ms = time_now_ms();
	j.sent = r == 0;
	j.error = err;
	j.give_up = r == -EINVAL || it->attempts + 1 >= nc->retry_attempts;
	j.next_ms = j.now_ms + backoff(nc, it->attempts);
	r = writer_run(d->writer, mark_apply, &j);
	if (r < 0) {
		log_warnx("notification %lld: recording the outcome failed: %s",
			  (long long)it->id, strerror(-r));
		return;
	}
	if (j.sent) {
		d->counters.sent++;
		log_info("ticket %lld: %s to %s sent", (long long)it->ticket_id,
			 it->channel, it->target);
	} else if (j.give_up) {
		d->counters.failed++;
		log_warnx("ticket %lld: %s to %s failed for good after %d attempts: %s",
			  (long long)it->ticket_id, it->channel, it->target,
			  it->attempts + 1, err);
	} else {
		d->counters.retried++;
		log_notice("ticket %lld: %s to %s failed, retrying: %s",
			   (long long)it->ticket_id, it->channel, it->target, err);
	}
}

static void wait_until(struct dispatch *p, int64_t next_ms)
{
	int64_t now = time_now_ms(), poll = p->d->hc->notify->poll_ms;
	int64_t delay = next_ms >= 0 && next_ms - now < poll ? next_ms - now : poll;
	struct timespec ts;

	if (delay <= 0)
		return;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += delay / 1000;
	ts.tv_nsec += (delay % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&p->lock);
	if (!p->stopping && !p->kicked)
		pthread_cond_timedwait(&p->cond, &p->lock, &ts);
	p->kicked = false;
	pthread_mutex_unlock(&p->lock);
}

static bool stopping(struct dispatch *p)
{
	bool s;

	pthread_mutex_lock(&p->lock);
	s = p->stopping;
	pthread_mutex_unlock(&p->lock);
	return s;
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

/* The sender thread: purge hourly, send what is due, sleep until the next. */
static void *dispatch_main(void *arg)
{
	struct dispatch *p = arg;
	struct item items[DISPATCH_BATCH_MAX];
	int64_t purged_ms = 0;

	while (!stopping(p)) {
		int64_t next, now = time_now_ms();
		size_t n;

		if (now - purged_ms >= DISPATCH_PURGE_EVERY_MS) {
			struct purge_job job = { p->d, now - p->d->hc->notify->keep_ms };
			int r = writer_run(p->d->writer, purge_apply, &job);

			if (r > 0)
				log_info("notifications: forgot %d old rows", r);
			purged_ms = now;
		}
		n = load_due(p->d, now, items, &next);

		for (size_t i = 0; i < n && !stopping(p); i++)
			deliver(p, &items[i]);
		items_free(items, n);
		if (n < DISPATCH_BATCH_MAX)
			wait_until(p, next);
	}
	return NULL;
}

int dispatch_start(struct desk *d, struct dispatch **ret)
{
	struct dispatch *p = xcalloc(1, sizeof(*p));
	pthread_condattr_t attr;
	int r;

	p->d = d;
	pthread_mutex_init(&p->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cond, &attr);
	pthread_condattr_destroy(&attr);
	r = pthread_create(&p->thread, NULL, dispatch_main, p);
	if (r != 0) {
		pthread_cond_destroy(&p->cond);
		pthread_mutex_destroy(&p->lock);
		free(p);
		return -r;
	}
	*ret = p;
	return 0;
}

void dispatch_kick(struct dispatch *p)
{
	pthread_mutex_lock(&p->lock);
	p->kicked = true;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
}

void dispatch_stop(struct dispatch *p)
{
	if (p == NULL)
		return;
	pthread_mutex_lock(&p->lock);
	p->stopping = true;
	pthread_cond_signal(&p->cond);
	pthread_mutex_unlock(&p->lock);
	pthread_join(p->thread, NULL);
	pthread_cond_destroy(&p->cond);
	pthread_mutex_destroy(&p->lock);
	free(p);
}
