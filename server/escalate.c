#include "escalate.h"

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
#include "store.h"
#include "writer.h"

struct escalate {
	struct desk *d;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool stopping;
};

static void format_due(int64_t ms, char *buf, size_t size)
{
	char t[TIME_RFC3339_LEN];

	time_format_rfc3339(ms, t);
	snprintf(buf, size, "%s", t);
}

/* Warning and breach of one clock; bit says which clock. */
static int check_clock(struct desk *d, const struct desk_core *core,
		       struct desk_row *row, const struct sla_clock *c,
		       unsigned bit, int64_t now_ms)
{
	const char *clock = bit == DESK_CLOCK_RESPONSE ? "response" : "resolution";
	char text[160], due[TIME_RFC3339_LEN];
	int r = 0;

	if (c->target_ms < 0 || !c->running)
		return 0;
	format_due(c->due_ms, due, sizeof(due));
	if (!(row->overdue & bit) && c->due_ms >= 0 && c->due_ms <= now_ms) {
		row->overdue |= bit;
		row->warned |= bit; /* a late warning would only add noise */
		snprintf(text, sizeof(text), "the %s target was due at %s", clock, due);
		r = store_journal_add(d->st, core->id, now_ms, DESK_SYSTEM_ACTOR,
				      "overdue", NULL, clock, text);
		if (r == 0)
			r = desk_announce(d, core, TICKET_ACTION, now_ms,
					  DESK_SYSTEM_ACTOR, "overdue", NULL, clock, text);
	} else if (!(row->warned & bit) && c->warn_ms >= 0 && c->warn_ms <= now_ms) {
		row->warned |= bit;
		snprintf(text, sizeof(text), "the %s target is due at %s", clock, due);
		r = store_journal_add(d->st, core->id, now_ms, DESK_SYSTEM_ACTOR,
				      "sla_warning", NULL, clock, text);
		if (r == 0)
			r = desk_announce(d, core, TICKET_ACTION, now_ms,
					  DESK_SYSTEM_ACTOR, "sla_warning", NULL, clock,
					  text);
	}
	return r;
}

/*
 * A periodic status update to the customer is due: the next one is set
 * after now by arithmetic (a server that was down for a week does not
 * catch up one period at a time), and journaled and announced only when
 * someone will hear it (notify_wants_status_update()): the journal says
 * what happened, not what was meant to.
 */
static int status_update(struct desk *d, const struct desk_core *core,
			 struct desk_row *row, int64_t now_ms)
{
	int64_t every = d->hc->status_every_ms;
	int r;

	row->next_status_at += ((now_ms - row->next_status_at) / every + 1) * every;
	if (!notify_wants_status_update(d, core, row))
		return 0;
	r = store_journal_add(d->st, core->id, now_ms, DESK_SYSTEM_ACTOR,
			      "status_update", NULL, sla_status_name(core->status),
			      "status update to the customer");
	if (r == 0)
		r = desk_announce(d, core, TICKET_ACTION, now_ms, DESK_SYSTEM_ACTOR,
				  "status_update", NULL, sla_status_name(core->status),
				  NULL);
	return r;
}

static int auto_close(struct desk *d, struct desk_core *core, int64_t now_ms)
{
	char text[96], after[32];
	int r;

	format_duration(d->hc->close_after_ms / 1000, after, sizeof(after));
	snprintf(text, sizeof(text), "closed automatically %s after its resolution", after);
	r = desk_set_status(d, core->id, STATUS_CLOSED, now_ms);
	if (r == 0)
		r = store_journal_add(d->st, core->id, now_ms, DESK_SYSTEM_ACTOR, "status",
				      "resolved", "closed", text);
	core->status = STATUS_CLOSED;
	if (r == 0)
		r = desk_announce(d, core, TICKET_CLOSED, now_ms, DESK_SYSTEM_ACTOR,
				  "status", "resolved", "closed", text);
	return r;
}

/* Everything that has come due for one ticket (core and row loaded). */
static int handle_loaded(struct desk *d, struct desk_core *core,
			 struct desk_row *row, int64_t now_ms)
{
	struct sla_state sla;
	int r = 0;

	if (sla_status_open(core->status)) {
		r = desk_sla(d, core, row, now_ms, &sla);
		if (r == 0)
			r = check_clock(d, core, row, &sla.response, DESK_CLOCK_RESPONSE, now_ms);
		if (r == 0)
			r = check_clock(d, core, row, &sla.resolution, DESK_CLOCK_RESOLUTION,
					now_ms);
		if (r == 0 && row->next_status_at >= 0 && row->next_status_at <= now_ms &&
		    d->hc->status_every_ms > 0)
			r = status_update(d, core, row, now_ms);
	} else if (core->status == STATUS_RESOLVED && d->hc->close_after_ms > 0 &&
		   core->resolved_ms >= 0 &&
		   core->resolved_ms + d->hc->close_after_ms <= now_ms) {
		r = auto_close(d, core, now_ms);
	}
	if (r == 0)
		r = desk_refresh(d, core, row, now_ms);
	return r;
}

static int handle_ticket(struct desk *d, int64_t id, int64_t now_ms)
{
	struct desk_core core = { 0 };
	struct desk_row row;
	int r;

	r = desk_core_get(d, id, &core);
	if (r > 0)
		r = desk_row_get(d, id, &row);
	if (r > 0)
		r = handle_loaded(d, &core, &row, now_ms);
	if (r == 0) {
		sqlite3_bind_int64(d->stmt[DESK_CHECK_OK], 1, id);
		r = db_step_done(d->stmt[DESK_CHECK_OK]);
	}
	desk_core_clear(&core);
	return r;
}

/*
 * One ticket failed: what it did is undone, and the timer looks at it
 * again after a delay that doubles with each failure in a row (from a
 * second, or the tick, up to an hour), so that one broken ticket neither
 * stops the others nor costs a job every tick.
 */
static int push_out(struct desk *d, int64_t id, int64_t now_ms, int err)
{
	sqlite3_stmt *s = d->stmt[DESK_CHECK_FAILED];
	int64_t first = d->hc->tick_ms > 1000 ? d->hc->tick_ms : 1000;

	desk_warn_limited(d, DESK_TROUBLE_TIMER,
			  "escalation: ticket %lld failed (%s); the others go on, it is tried again later",
			  (long long)id, strerror(-err));
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, now_ms);
	sqlite3_bind_int64(s, 3, first);
	sqlite3_bind_int64(s, 4, ESCALATE_BACKOFF_MAX_MS);
	return db_step_done(s);
}

/*
 * Writer job: the due tickets, found by the index on next_check, each
 * under a savepoint of its own.  Returns how many it looked at; fails
 * only when the store itself does.
 */
int escalate_run_due(struct store *st, void *arg)
{
	struct escalate_due *j = arg;
	struct desk *d = j->d;
	sqlite3_stmt *s = d->stmt[DESK_DUE];
	int64_t ids[ESCALATE_BATCH_MAX];
	size_t n = 0;
	int rc, r = 0;

	sqlite3_bind_int64(s, 1, j->now_ms);
	sqlite3_bind_int(s, 2, ESCALATE_BATCH_MAX);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW && n < ESCALATE_BATCH_MAX)
		ids[n++] = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW)
		return sqlite_to_errno(rc);
	for (size_t i = 0; r == 0 && i < n; i++) {
		r = store_savepoint(st);
		if (r < 0)
			break;
		r = handle_ticket(d, ids[i], j->now_ms);
		if (r < 0) {
			store_rollback_to_savepoint(st);
			j->failed++;
			r = push_out(d, ids[i], j->now_ms, r);
		} else {
			r = store_release_savepoint(st);
		}
	}
	return r < 0 ? r : (int)n;
}

/* The earliest next_check of any ticket, -1 for none: is a job worth it? */
static int64_t next_due(struct desk *d)
{
	sqlite3_stmt *s = d->stmt[DESK_NEXT_DUE];
	int64_t next = -1;

	store_lock(d->st);
	if (sqlite3_step(s) == SQLITE_ROW && sqlite3_column_type(s, 0) != SQLITE_NULL)
		next = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	store_unlock(d->st);
	return next;
}

/*
 * The timer thread: a writer job when something is due (an indexed
 * min() says so; nothing is written when nothing is due), at once again
 * when a batch was full, else after the tick.
 */
static void *escalate_main(void *arg)
{
	struct escalate *e = arg;

	pthread_mutex_lock(&e->lock);
	while (!e->stopping) {
		struct escalate_due job = { .d = e->d };
		/* At the top: a reload's helpdesk.tick applies from here. */
		int64_t tick = e->d->hc->tick_ms;
		struct timespec ts;
		int64_t next;
		int r = 0;

		pthread_mutex_unlock(&e->lock);
		job.now_ms = time_now_ms();
		next = next_due(e->d);
		if (next >= 0 && next <= job.now_ms) {
			e->d->counters.timer_jobs++;
			r = writer_run(e->d->writer, escalate_run_due, &job);
			if (r < 0 && r != -ESHUTDOWN)
				log_warnx("escalation: handling due tickets failed: %s",
					  strerror(-r));
		}
		pthread_mutex_lock(&e->lock);
		if (e->stopping)
			break;
		ts = time_mono_deadline(tick);
		/* The batch was full: there is more due right now. */
		if (r < ESCALATE_BATCH_MAX)
			pthread_cond_timedwait(&e->cond, &e->lock, &ts);
	}
	pthread_mutex_unlock(&e->lock);
	return NULL;
}

int escalate_start(struct desk *d, struct escalate **ret)
{
	struct escalate *e = xcalloc(1, sizeof(*e));
	int r;

	e->d = d;
	pthread_mutex_init(&e->lock, NULL);
	cond_init_monotonic(&e->cond);
	r = pthread_create(&e->thread, NULL, escalate_main, e);
	if (r != 0) {
		pthread_cond_destroy(&e->cond);
		pthread_mutex_destroy(&e->lock);
		free(e);
		return -r;
	}
	*ret = e;
	return 0;
}

void escalate_stop(struct escalate *e)
{
	if (e == NULL)
		return;
	pthread_mutex_lock(&e->lock);
	e->stopping = true;
	pthread_cond_signal(&e->cond);
	pthread_mutex_unlock(&e->lock);
	pthread_join(e->thread, NULL);
	pthread_cond_destroy(&e->cond);
	pthread_mutex_destroy(&e->lock);
	free(e);
}
