#include "retention.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/config.h"
#include "../common/db.h"
#include "../common/util.h"
#include "metrics.h"
#include "store.h"
#include "writer.h"

#define DAY_MS (24 * 3600 * 1000LL)
/* How often the cursor goes back to look at the rows kept behind it. */
#define SWEEP_EVERY_MS (3600 * 1000LL)

enum {
	RS_WINDOW,
	RS_TICKET_OPEN,
	RS_BOUNDARY,
	RS_DELETE,
	RS_COUNT,
};

static const char *const rs_sql[RS_COUNT] = {
	[RS_WINDOW] = "SELECT seq, coalesce(ticket_id, 0), observed_at, received_at"
		      " FROM events WHERE seq > ?1 ORDER BY seq LIMIT ?2",
	[RS_TICKET_OPEN] = "SELECT status NOT IN ('resolved', 'closed')"
			   " FROM tickets WHERE id = ?1",
	/* The keep_per_ticket-th latest event of a ticket, as its API orders them. */
	[RS_BOUNDARY] = "SELECT observed_at, seq FROM events WHERE ticket_id = ?1"
			" ORDER BY observed_at DESC, seq DESC LIMIT 1 OFFSET ?2",
	/* Only whole runs of the window: no other row lies between its rows. */
	[RS_DELETE] = "DELETE FROM events WHERE seq BETWEEN ?1 AND ?2",
};

/*
 * What ticket retention needs indexed: a ticket may be deleted only when
 * no ticket is merged into it, and its ids in other ticket systems go
 * with it.  After the helpdesk's tables (store.c's order).
 */
static const char *const ticket_retention_steps[] = {
	/* 1: the references to a ticket that had no index of their own */
	"CREATE INDEX hd_tickets_merged ON hd_tickets(merged_into)"
	"  WHERE merged_into IS NOT NULL;"
	"CREATE INDEX hd_external_ticket ON hd_external(ticket_id);",
};

const struct db_schema ticket_retention_schema = {
	.module = "ticket_retention",
	.steps = ticket_retention_steps,
	.nsteps = ARRAY_SIZE(ticket_retention_steps),
};

enum {
	RT_CLOSED,
	RT_DELETABLE,
	RT_DEL_EVENTS,
	RT_DEL_JOURNAL,
	RT_DEL_OUTBOX,
	RT_DEL_EXTERNAL,
	RT_DEL_DESK,
	RT_FORGET_PROBLEM,
	RT_DEL_TICKET,
	RT_COUNT,
};

static const char *const rt_sql[RT_COUNT] = {
	/* Closed tickets after the cursor, oldest first (tickets_status). */
	[RT_CLOSED] = "SELECT id, opened_at FROM tickets"
		      " WHERE status = 'closed' AND id > ?1 ORDER BY id LIMIT ?2",
	/*
	 * The ticket's problem key when it may go: closed, unchanged since
	 * the cutoff (?2), not the newest ticket (SQLite gives a new row
	 * max(id) + 1: a deleted newest id would come back as another
	 * ticket), with no child, no parent that is not closed, nothing
	 * merged into it and no notification still to send.
	 */
	[RT_DELETABLE] =
		"SELECT t.host_id, t.check_name, t.item FROM tickets t"
		" WHERE t.id = ?1 AND t.status = 'closed'"
		" AND t.id < (SELECT max(id) FROM tickets)"
		" AND max(t.last_seen, t.opened_at, coalesce(t.resolved_at, 0),"
		"  coalesce((SELECT max(at) FROM journal WHERE ticket_id = t.id), 0)) < ?2"
		" AND NOT EXISTS (SELECT 1 FROM tickets c WHERE c.parent_id = t.id)"
		" AND NOT EXISTS (SELECT 1 FROM tickets p WHERE p.id = t.parent_id"
		"  AND p.status <> 'closed')"
		" AND NOT EXISTS (SELECT 1 FROM hd_tickets m WHERE m.merged_into = t.id)"
		" AND NOT EXISTS (SELECT 1 FROM hd_outbox o WHERE o.ticket_id = t.id"
		"  AND o.state = 'pending')",
	/* A ticket's events may be many (retention.events 0): in chunks. */
	[RT_DEL_EVENTS] = "DELETE FROM events WHERE seq IN"
			  " (SELECT seq FROM events WHERE ticket_id = ?1 LIMIT ?2)",
	[RT_DEL_JOURNAL] = "DELETE FROM journal WHERE ticket_id = ?1",
	[RT_DEL_OUTBOX] = "DELETE FROM hd_outbox WHERE ticket_id = ?1",
	[RT_DEL_EXTERNAL] = "DELETE FROM hd_external WHERE ticket_id = ?1",
	[RT_DEL_DESK] = "DELETE FROM hd_tickets WHERE ticket_id = ?1",
	/* The key's next problem opens a ticket of its own, never this id. */
	[RT_FORGET_PROBLEM] = "UPDATE problems SET ticket_id = NULL, prior_status = NULL"
			      " WHERE host_id = ?2 AND check_name = ?3 AND item = ?4"
			      " AND ticket_id = ?1",
	[RT_DEL_TICKET] = "DELETE FROM tickets WHERE id = ?1",
};

struct retention {
	struct store *st;
	sqlite3_stmt *stmt[RS_COUNT];
	sqlite3_stmt *tstmt[RT_COUNT];
	struct writer *w;
	pthread_t thread;
	pthread_mutex_t lock; /* conf, stopping, backlog */
	pthread_cond_t wake;
	struct retention_config conf;
	bool running, stopping, backlog;
	atomic_bool queued; /* a prune job waits in the writer's queue */
	/* The writer's (or store_lock()'s): where the next job starts. */
	int64_t cursor;
	int64_t sweep_at_ms;
	/* The same for closed tickets, by id (back to 0 after each pass). */
	int64_t ticket_cursor;
	atomic_uint_fast64_t deleted, kept, jobs, failed, tickets_deleted;
	/*
	 * What the job in the writer did, counted into deleted and kept only
	 * once its commit succeeded (the writer's thread, like cursor).
	 */
	uint64_t job_deleted, job_kept, job_tickets_deleted;
	/*
	 * received_at of the first event after the cursor as the last job
	 * saw it (of its last one when it ran out of chunk; 0: no events),
	 * for the metrics: they must not take the
	 * writer's store lock (a scrape would wait for its commits).
	 */
	atomic_int_fast64_t next_received_ms;
};

void retention_config_defaults(struct retention_config *conf)
{
	*conf = (struct retention_config){
		.events_ms = 30 * DAY_MS,
		.tickets_ms = 400 * DAY_MS,
		.event_ids_ms = 7 * DAY_MS,
		.keep_per_ticket = 100,
		.prune_every_ms = 60 * 1000,
		.chunk = 2000,
	};
}

/* A duration key within [min_ms, max_ms] (0 allowed when zero_ok). */
static void get_span(struct cfg *cfg, const struct cfg_node *node,
		     const char *key, int64_t min_ms, int64_t max_ms,
		     bool zero_ok, const char *range, int64_t *ret)
{
	int64_t v;

	if (cfg_get_duration(cfg, node, key, &v) <= 0)
		return;
	if ((v == 0 && zero_ok) || (v >= min_ms && v <= max_ms))
		*ret = v;
	else
		cfg_error(cfg, cfg_get(cfg, node, key), "must be %s", range);
}

void retention_parse(struct cfg *cfg, const struct cfg_node *node,
		     struct retention_config *conf)
{
	char need[32], have[32];

	if (cfg_expect_map(cfg, node) < 0)
		return;
	get_span(cfg, node, "events", 1000, 3650 * DAY_MS, true,
		 "0 (keep for ever) or between 1s and 3650d", &conf->events_ms);
	get_span(cfg, node, "tickets", 1000, 3650 * DAY_MS, true,
		 "0 (keep for ever) or between 1s and 3650d", &conf->tickets_ms);
	get_span(cfg, node, "event_ids", 0, 3650 * DAY_MS, true,
		 "at most 3650d", &conf->event_ids_ms);
	get_span(cfg, node, "prune_every", 100, 3600 * 1000LL, false,
		 "between 100ms and 1h", &conf->prune_every_ms);
	cfg_get_int(cfg, node, "keep_per_ticket", 0, 100000,
		    &conf->keep_per_ticket);
	cfg_get_int(cfg, node, "chunk", 10, 100000, &conf->chunk);
	if (conf->events_ms > 0 && conf->events_ms < conf->event_ids_ms) {
		format_duration(conf->event_ids_ms / 1000, need, sizeof(need));
		format_duration(conf->events_ms / 1000, have, sizeof(have));
		cfg_error(cfg, cfg_get(cfg, node, "events") ? cfg_get(cfg, node, "events") : node,
			  "%s is shorter than retention.event_ids (%s): an event's id is"
			  " its idempotency key and goes with it, and agents may resend an"
			  " event until their outbox drops it (its max age, 7d by default)",
			  have, need);
	}
}

/* What one job needs to know of a ticket its events belong to. */
struct ticket_seen {
	int64_t id;
	bool open;
	bool bounded;	    /* it has more than keep_per_ticket events */
	int64_t b_observed; /* ... and this is the last one kept */
	int64_t b_seq;
};

static int ticket_seen(struct retention *rt, int64_t keep,
		       struct ticket_seen *t)
{
	sqlite3_stmt *s = rt->stmt[RS_TICKET_OPEN];
	int rc;

	sqlite3_bind_int64(s, 1, t->id);
	rc = sqlite3_step(s);
	t->open = rc == SQLITE_ROW && sqlite3_column_int(s, 0) != 0;
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sqlite_to_errno(rc);
	if (!t->open || keep == 0)
		return 0;
	s = rt->stmt[RS_BOUNDARY];
	sqlite3_bind_int64(s, 1, t->id);
	sqlite3_bind_int64(s, 2, keep - 1);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		t->bounded = true;
		t->b_observed = sqlite3_column_int64(s, 0);
		t->b_seq = sqlite3_column_int64(s, 1);
	}
	sqlite3_reset(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sqlite_to_errno(rc);
}

struct window {
	int64_t *seq, *ticket, *observed, *received;
	size_t n;
	struct ticket_seen *tickets;
	size_t ntickets;
};

static void window_free(struct window *w)
{
	free(w->seq);
	free(w->ticket);
	free(w->observed);
	free(w->received);
	free(w->tickets);
}

/* The next rows after the cursor, at most chunk. */
static int read_window(struct retention *rt, int64_t chunk, struct window *w)
{
	sqlite3_stmt *s = rt->stmt[RS_WINDOW];
	int rc;

	w->seq = xreallocarray(NULL, (size_t)chunk, sizeof(int64_t));
	w->ticket = xreallocarray(NULL, (size_t)chunk, sizeof(int64_t));
	w->observed = xreallocarray(NULL, (size_t)chunk, sizeof(int64_t));
	w->received = xreallocarray(NULL, (size_t)chunk, sizeof(int64_t));
	w->tickets = xreallocarray(NULL, (size_t)chunk, sizeof(*w->tickets));
	sqlite3_bind_int64(s, 1, rt->cursor);
	sqlite3_bind_int64(s, 2, chunk);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW && w->n < (size_t)chunk) {
		w->seq[w->n] = sqlite3_column_int64(s, 0);
		w->ticket[w->n] = sqlite3_column_int64(s, 1);
		w->observed[w->n] = sqlite3_column_int64(s, 2);
		w->received[w->n] = sqlite3_column_int64(s, 3);
		w->n++;
	}
	sqlite3_reset(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sqlite_to_errno(rc);
}

/* Whether row i is among its open ticket's latest: kept whatever its age. */
static int kept_for_ticket(struct retention *rt, struct window *w, size_t i,
			   int64_t keep, bool *ret)
{
	struct ticket_seen *t = NULL;

	*ret = false;
	if (w->ticket[i] == 0)
		return 0;
	for (size_t k = 0; k < w->ntickets && t == NULL; k++)
		if (w->tickets[k].id == w->ticket[i])
			t = &w->tickets[k];
	if (t == NULL) {
		int r;

		t = &w->tickets[w->ntickets++];
		*t = (struct ticket_seen){ .id = w->ticket[i] };
		r = ticket_seen(rt, keep, t);
		if (r < 0)
			return r;
	}
	*ret = t->open && keep > 0 &&
	       (!t->bounded || w->observed[i] > t->b_observed ||
		(w->observed[i] == t->b_observed && w->seq[i] >= t->b_seq));
	return 0;
}

static int delete_run(struct retention *rt, int64_t from, int64_t to,
		      uint64_t *deleted)
{
	sqlite3_stmt *s = rt->stmt[RS_DELETE];
	int r;

	sqlite3_bind_int64(s, 1, from);
	sqlite3_bind_int64(s, 2, to);
	r = db_step_done(s);
	if (r == 0)
		*deleted += (uint64_t)sqlite3_changes(store_db(rt->st));
	return r;
}

int retention_prune(struct retention *rt, int64_t now_ms)
{
	struct retention_config conf;
	struct window w = { 0 };
	uint64_t deleted = 0, kept = 0;
	int64_t cutoff, run_from = 0, run_to = 0;
	size_t i;
	int r;

	pthread_mutex_lock(&rt->lock);
	conf = rt->conf;
	pthread_mutex_unlock(&rt->lock);
	if (conf.events_ms <= 0)
		return 0;
	cutoff = now_ms - conf.events_ms;
	if (now_ms >= rt->sweep_at_ms) {
		rt->cursor = 0;
		rt->sweep_at_ms = now_ms + SWEEP_EVERY_MS;
	}
	r = read_window(rt, conf.chunk, &w);
	for (i = 0; r == 0 && i < w.n && w.received[i] < cutoff; i++) {
		bool keep;

		r = kept_for_ticket(rt, &w, i, conf.keep_per_ticket, &keep);
		if (r < 0)
			break;
		if (keep) {
			kept++;
			if (run_from > 0)
				r = delete_run(rt, run_from, run_to, &deleted);
			run_from = 0;
			continue;
		}
		if (run_from == 0)
			run_from = w.seq[i];
		run_to = w.seq[i];
	}
	if (r == 0 && run_from > 0)
		r = delete_run(rt, run_from, run_to, &deleted);
	if (r == 0 && i > 0)
		rt->cursor = w.seq[i - 1];
	if (r == 0)
		atomic_store(&rt->next_received_ms,
			     i < w.n ? w.received[i] : i > 0 ? w.received[i - 1] : 0);
	window_free(&w);
	if (r < 0)
		return r;
	rt->job_deleted = deleted;
	rt->job_kept = kept;
	return (int)i;
}


/* ---- closed tickets --------------------------------------------------- */

/* Closed tickets after the ticket cursor, at most chunk. */
struct closed_window {
	int64_t *id, *opened;
	size_t n;
};

static int read_closed(struct retention *rt, int64_t chunk,
		       struct closed_window *w)
{
	sqlite3_stmt *s = rt->tstmt[RT_CLOSED];
	int rc;

	w->id = xreallocarray(NULL, (size_t)chunk, sizeof(int64_t));
	w->opened = xreallocarray(NULL, (size_t)chunk, sizeof(int64_t));
	sqlite3_bind_int64(s, 1, rt->ticket_cursor);
	sqlite3_bind_int64(s, 2, chunk);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW && w->n < (size_t)chunk) {
		w->id[w->n] = sqlite3_column_int64(s, 0);
		w->opened[w->n] = sqlite3_column_int64(s, 1);
		w->n++;
	}
	sqlite3_reset(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sqlite_to_errno(rc);
}

/* Statement i of the ticket statements on ticket id; rows it changed. */
static int ticket_step(struct retention *rt, int i, int64_t id,
		       int64_t *changed)
{
	sqlite3_stmt *s = rt->tstmt[i];
	int r;

	sqlite3_bind_int64(s, 1, id);
	r = db_step_done(s);
	if (r == 0 && changed != NULL)
		*changed += sqlite3_changes(store_db(rt->st));
	return r;
}

/*
 * 1 and the problem key of ticket id when it may be deleted at cutoff,
 * 0 when it stays, or -errno.  The caller frees *ret_check, *ret_item.
 */
static int ticket_deletable(struct retention *rt, int64_t id, int64_t cutoff,
			    int64_t *ret_host, char **ret_check, char **ret_item)
{
	sqlite3_stmt *s = rt->tstmt[RT_DELETABLE];
	int rc;

	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, cutoff);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		const char *check = (const char *)sqlite3_column_text(s, 1);
		const char *item = (const char *)sqlite3_column_text(s, 2);

		*ret_host = sqlite3_column_int64(s, 0);
		*ret_check = xstrdup(check ? check : "");
		*ret_item = xstrdup(item ? item : "");
	}
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sqlite_to_errno(rc);
	return rc == SQLITE_ROW;
}

enum ticket_fate {
	TICKET_KEPT,	/* not (yet) to be deleted */
	TICKET_DELETED, /* gone with every row of it */
	TICKET_LATER,	/* its events took the budget: the next job goes on */
};

static int forget_problem(struct retention *rt, int64_t id, int64_t host_id,
			  const char *check, const char *item)
{
	sqlite3_stmt *s = rt->tstmt[RT_FORGET_PROBLEM];

	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, host_id);
	db_bind_text(s, 3, check);
	db_bind_text(s, 4, item);
	return db_step_done(s);
}

/*
 * Delete ticket id and everything of it if it may go at cutoff, rows
 * counted against *budget.  Its events go first, at most *budget of
 * them; the rest (journal, notifications, the helpdesk's row, ids in
 * other systems, the ticket) in the same job, so a ticket is never seen
 * with half a history.  The problem key forgets the ticket.
 */
static int ticket_delete(struct retention *rt, int64_t id, int64_t cutoff,
			 int64_t *budget, enum ticket_fate *ret)
{
	static const int rest[] = {
		RT_DEL_JOURNAL, RT_DEL_OUTBOX, RT_DEL_EXTERNAL, RT_DEL_DESK,
	};
	sqlite3_stmt *s = rt->tstmt[RT_DEL_EVENTS];
	char *check = NULL, *item = NULL;
	int64_t host_id = 0, rows = 0;
	int r;

	*ret = TICKET_KEPT;
	r = ticket_deletable(rt, id, cutoff, &host_id, &check, &item);
	if (r <= 0)
		goto out;
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, *budget);
	r = db_step_done(s);
	if (r < 0)
		goto out;
	*budget -= sqlite3_changes(store_db(rt->st));
	if (*budget <= 0) {
		*ret = TICKET_LATER;
		goto out;
	}
	for (size_t i = 0; r == 0 && i < ARRAY_SIZE(rest); i++)
		r = ticket_step(rt, rest[i], id, &rows);
	if (r == 0)
		r = forget_problem(rt, id, host_id, check, item);
	if (r == 0)
		r = ticket_step(rt, RT_DEL_TICKET, id, &rows);
	if (r == 0) {
		*budget -= rows;
		*ret = TICKET_DELETED;
	}
out:
	free(check);
	free(item);
	return r < 0 ? r : 0;
}

int retention_prune_tickets(struct retention *rt, int64_t now_ms)
{
	struct retention_config conf;
	struct closed_window w = { 0 };
	int64_t cutoff, budget;
	uint64_t deleted = 0;
	enum ticket_fate fate = TICKET_KEPT;
	bool more;
	size_t i;
	int r;

	pthread_mutex_lock(&rt->lock);
	conf = rt->conf;
	pthread_mutex_unlock(&rt->lock);
	if (conf.tickets_ms <= 0)
		return 0;
	cutoff = now_ms - conf.tickets_ms;
	budget = conf.chunk;
	r = read_closed(rt, conf.chunk, &w);
	/* Ids go with the opening time: past the cutoff, nothing is old. */
	for (i = 0; r == 0 && i < w.n && w.opened[i] < cutoff; i++) {
		r = ticket_delete(rt, w.id[i], cutoff, &budget, &fate);
		if (r < 0 || fate == TICKET_LATER)
			break;
		if (fate == TICKET_DELETED)
			deleted++;
		if (budget <= 0) {
			i++;
			break;
		}
	}
	/*
	 * The budget spent or a full window looked at: the next job goes on
	 * from here.  Else this pass is over, and the next starts again from
	 * the first closed ticket: those kept (changed lately, related,
	 * notifying) may go by then, and tickets closed behind the cursor
	 * are found.
	 */
	more = budget <= 0 || (i == (size_t)conf.chunk && i == w.n);
	if (r == 0)
		rt->ticket_cursor = !more ? 0 : i > 0 ? w.id[i - 1] : rt->ticket_cursor;
	free(w.id);
	free(w.opened);
	if (r < 0)
		return r;
	rt->job_tickets_deleted = deleted;
	/* Only deletions make it urgent: a window of kept tickets can wait. */
	return budget <= 0 || (more && deleted > 0) ? (int)conf.chunk : (int)deleted;
}

/* ---- timer ---------------------------------------------------------------- */

/*
 * Events first; closed tickets once the events have no backlog, so one
 * job does at most about one chunk of either.  A failed job is rolled
 * back whole: the cursors go back with it.
 */
static int prune_job(struct store *st, void *arg)
{
	struct retention *rt = arg;
	int64_t now_ms = time_now_ms(), cursor = rt->cursor;
	int64_t sweep_at = rt->sweep_at_ms, chunk;
	int n, m;

	(void)st;
	pthread_mutex_lock(&rt->lock);
	chunk = rt->conf.chunk;
	pthread_mutex_unlock(&rt->lock);
	n = retention_prune(rt, now_ms);
	if (n < 0 || n >= chunk)
		return n;
	m = retention_prune_tickets(rt, now_ms);
	if (m < 0) {
		rt->cursor = cursor;
		rt->sweep_at_ms = sweep_at;
		rt->job_deleted = rt->job_kept = 0;
		return m;
	}
	return n > m ? n : m;
}

static void prune_done(void *arg, int result)
{
	struct retention *rt = arg;

	atomic_fetch_add(&rt->jobs, 1);
	if (result < 0) {
		atomic_fetch_add(&rt->failed, 1);
	} else {
		/* Committed: now the deletions are real (a scrape that says
		 * so must find them gone). */
		atomic_fetch_add(&rt->deleted, rt->job_deleted);
		atomic_fetch_add(&rt->kept, rt->job_kept);
		atomic_fetch_add(&rt->tickets_deleted, rt->job_tickets_deleted);
	}
	rt->job_deleted = rt->job_kept = rt->job_tickets_deleted = 0;
	pthread_mutex_lock(&rt->lock);
	/* A full chunk: there is a backlog, the next job follows at once. */
	if (result >= rt->conf.chunk)
		rt->backlog = true;
	atomic_store(&rt->queued, false);
	pthread_cond_signal(&rt->wake);
	pthread_mutex_unlock(&rt->lock);
}

static void *timer_main(void *arg)
{
	struct retention *rt = arg;

	pthread_mutex_lock(&rt->lock);
	while (!rt->stopping) {
		struct timespec until = time_mono_deadline(rt->conf.prune_every_ms);

		while (!rt->backlog && !rt->stopping &&
		       pthread_cond_timedwait(&rt->wake, &rt->lock, &until) != ETIMEDOUT)
			;
		if (rt->stopping)
			break;
		rt->backlog = false;
		if ((rt->conf.events_ms <= 0 && rt->conf.tickets_ms <= 0) ||
		    atomic_exchange(&rt->queued, true))
			continue;
		pthread_mutex_unlock(&rt->lock);
		/* Refused (queue full, stopping): the next round tries again. */
		if (writer_post(rt->w, prune_job, rt, prune_done) < 0)
			atomic_store(&rt->queued, false);
		pthread_mutex_lock(&rt->lock);
	}
	pthread_mutex_unlock(&rt->lock);
	return NULL;
}

int retention_open(struct store *st, const struct retention_config *conf,
		   struct retention **ret)
{
	struct retention *rt = xcalloc(1, sizeof(*rt));
	int r = 0;

	rt->st = st;
	rt->conf = *conf;
	atomic_init(&rt->queued, false);
	pthread_mutex_init(&rt->lock, NULL);
	cond_init_monotonic(&rt->wake);
	for (int i = 0; r == 0 && i < RS_COUNT; i++)
		r = store_prepare(st, rs_sql[i], &rt->stmt[i]);
	for (int i = 0; r == 0 && i < RT_COUNT; i++)
		r = store_prepare(st, rt_sql[i], &rt->tstmt[i]);
	if (r < 0) {
		retention_close(rt);
		return r;
	}
	*ret = rt;
	return 0;
}

int retention_start(struct retention *rt, struct writer *w)
{
	int r;

	rt->w = w;
	r = -pthread_create(&rt->thread, NULL, timer_main, rt);
	rt->running = r == 0;
	return r;
}

void retention_close(struct retention *rt)
{
	if (rt == NULL)
		return;
	if (rt->running) {
		pthread_mutex_lock(&rt->lock);
		rt->stopping = true;
		pthread_cond_signal(&rt->wake);
		pthread_mutex_unlock(&rt->lock);
		pthread_join(rt->thread, NULL);
		/* A job still queued calls prune_done(rt): the writer runs it. */
		while (atomic_load(&rt->queued)) {
			struct timespec ms = { .tv_nsec = 1000000L };

			nanosleep(&ms, NULL);
		}
	}
	for (int i = 0; i < RS_COUNT; i++)
		sqlite3_finalize(rt->stmt[i]);
	for (int i = 0; i < RT_COUNT; i++)
		sqlite3_finalize(rt->tstmt[i]);
	pthread_cond_destroy(&rt->wake);
	pthread_mutex_destroy(&rt->lock);
	free(rt);
}

void retention_configure(struct retention *rt,
			 const struct retention_config *conf)
{
	pthread_mutex_lock(&rt->lock);
	rt->conf = *conf;
	pthread_cond_signal(&rt->wake);
	pthread_mutex_unlock(&rt->lock);
}

void retention_metrics(void *arg, struct metrics_out *out)
{
	struct retention *rt = arg;
	int64_t next = atomic_load(&rt->next_received_ms), now = time_now_ms();

	metrics_counter(out, "tocsin_retention_events_deleted_total",
			"Events deleted because retention.events passed.", NULL,
			atomic_load(&rt->deleted));
	metrics_counter(out, "tocsin_retention_events_kept_total",
			"Events past retention.events looked at and kept: among an open ticket's latest keep_per_ticket.",
			NULL, atomic_load(&rt->kept));
	metrics_counter(out, "tocsin_retention_tickets_deleted_total",
			"Closed tickets deleted with all their rows because retention.tickets passed since their last change.",
			NULL, atomic_load(&rt->tickets_deleted));
	metrics_counter(out, "tocsin_retention_jobs_total",
			"Prune jobs run by the writer, by outcome.", "result=\"ok\"",
			atomic_load(&rt->jobs) - atomic_load(&rt->failed));
	metrics_counter(out, "tocsin_retention_jobs_total", NULL,
			"result=\"failed\"", atomic_load(&rt->failed));
	metrics_gauge(out, "tocsin_retention_next_event_age_seconds",
		      "Age of the oldest event the last prune job left for later (stays near retention.events while pruning keeps up; 0 when not known).",
		      NULL, next > 0 ? (double)(now - next) / 1000.0 : 0.0);
}
