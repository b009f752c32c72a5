#include "desk.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "dispatch.h"
#include "escalate.h"
#include "inventory.h"
#include "metrics.h"
#include "notify.h"
#include "routing.h"
#include "store.h"
#include "writer.h"

static const char *const desk_steps[] = {
	/* 1: the helpdesk's ticket fields, the outbox, history lookups */
	"CREATE TABLE hd_tickets ("
	"  ticket_id INTEGER PRIMARY KEY REFERENCES tickets(id),"
	"  customer TEXT, contract TEXT,"
	"  category TEXT NOT NULL, queue TEXT NOT NULL,"
	"  level INTEGER NOT NULL CHECK (level BETWEEN 1 AND 3),"
	"  assignee TEXT,"
	"  impact TEXT NOT NULL, urgency TEXT NOT NULL, priority TEXT NOT NULL,"
	"  priority_manual INTEGER NOT NULL DEFAULT 0,"
	"  response_target INTEGER, resolution_target INTEGER,"
	"  response_due INTEGER, resolution_due INTEGER,"
	"  warned INTEGER NOT NULL DEFAULT 0, overdue INTEGER NOT NULL DEFAULT 0,"
	"  merged_into INTEGER REFERENCES tickets(id),"
	"  next_status_at INTEGER, next_check INTEGER,"
	"  hint TEXT, description TEXT);"
	/* The timer's query: only tickets with something due, by time. */
	"CREATE INDEX hd_tickets_next_check ON hd_tickets(next_check)"
	"  WHERE next_check IS NOT NULL;"
	"CREATE INDEX hd_tickets_history ON tickets(host_id, check_name, id);"
	"CREATE TABLE hd_outbox ("
	"  id INTEGER PRIMARY KEY,"
	"  ticket_id INTEGER NOT NULL,"
	"  channel TEXT NOT NULL CHECK (channel IN ('mail', 'webhook')),"
	"  target TEXT NOT NULL,"
	"  subject TEXT, body TEXT NOT NULL,"
	"  idem_key TEXT NOT NULL UNIQUE,"
	"  cancel_key TEXT,"
	"  created INTEGER NOT NULL, next_attempt INTEGER NOT NULL,"
	"  attempts INTEGER NOT NULL DEFAULT 0,"
	"  state TEXT NOT NULL DEFAULT 'pending'"
	"    CHECK (state IN ('pending', 'sent', 'failed', 'cancelled')),"
	"  last_error TEXT, sent_at INTEGER);"
	"CREATE INDEX hd_outbox_due ON hd_outbox(next_attempt)"
	"  WHERE state = 'pending';"
	"CREATE INDEX hd_outbox_cancel ON hd_outbox(cancel_key)"
	"  WHERE state = 'pending' AND cancel_key IS NOT NULL;"
	"CREATE INDEX hd_outbox_created ON hd_outbox(created);",
};

const struct db_schema desk_schema = {
	.module = "helpdesk",
	.steps = desk_steps,
	.nsteps = ARRAY_SIZE(desk_steps),
};

#define ROW_COLUMNS                                                        \
	"customer, contract, category, queue, level, assignee, impact,"    \
	" urgency, priority, priority_manual, response_target,"            \
	" resolution_target, response_due, resolution_due, warned, overdue," \
	" merged_into, next_status_at, next_check"

static const char *const stmt_sql[DESK_STMT_COUNT] = {
	[DESK_ROW_INSERT] =
		"INSERT INTO hd_tickets(ticket_id, " ROW_COLUMNS ", hint, description)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
		" ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22)",
	[DESK_ROW_GET] = "SELECT " ROW_COLUMNS " FROM hd_tickets WHERE ticket_id = ?1",
	[DESK_ROW_UPDATE] =
		"UPDATE hd_tickets SET customer = ?2, contract = ?3, category = ?4,"
		" queue = ?5, level = ?6, assignee = ?7, impact = ?8, urgency = ?9,"
		" priority = ?10, priority_manual = ?11, response_target = ?12,"
		" resolution_target = ?13, response_due = ?14, resolution_due = ?15,"
		" warned = ?16, overdue = ?17, merged_into = ?18,"
		" next_status_at = ?19, next_check = ?20 WHERE ticket_id = ?1",
	[DESK_TEXTS] = "SELECT hint, description FROM hd_tickets WHERE ticket_id = ?1",
	[DESK_OPEN_SCAN] =
		"SELECT t.id, t.opened_at, t.status, t.resolved_at, h.contract,"
		" h.response_target, h.resolution_target, h.warned, h.overdue,"
		" h.next_status_at, j.at, j.action, j.new_value"
		" FROM tickets t JOIN hd_tickets h ON h.ticket_id = t.id"
		" LEFT JOIN journal j ON j.ticket_id = t.id AND j.action IN"
		"  ('status', 'opened', 'recovered', 'resolved', 'reopened', 'closed')"
		" WHERE t.status <> 'closed' ORDER BY t.id, j.id",
	[DESK_CACHE_UPDATE] =
		"UPDATE hd_tickets SET response_due = ?2, resolution_due = ?3,"
		" next_check = ?4 WHERE ticket_id = ?1",
	[DESK_CORE_GET] =
		"SELECT t.id, t.host_id, coalesce(t.parent_id, 0), h.name,"
		" t.check_name, t.item, t.title, t.summary, t.state, t.status,"
		" t.opened_at, t.resolved_at, t.flapping"
		" FROM tickets t JOIN hosts h ON h.id = t.host_id WHERE t.id = ?1",
	[DESK_CHANGES] =
		"SELECT at, action, new_value FROM journal WHERE ticket_id = ?1"
		" AND action IN ('status', 'opened', 'recovered', 'resolved',"
		" 'reopened', 'closed') ORDER BY id",
	[DESK_SET_STATUS] =
		"UPDATE tickets SET status = ?2, resolved_at = CASE"
		" WHEN ?2 = 'resolved' THEN ?3"
		" WHEN ?2 = 'closed' THEN coalesce(resolved_at, ?3)"
		" ELSE NULL END WHERE id = ?1",
	[DESK_DUE] = "SELECT ticket_id FROM hd_tickets WHERE next_check <= ?1"
		     " ORDER BY next_check LIMIT ?2",
	[DESK_HISTORY] =
		"SELECT t.id, t.item, t.opened_at, t.resolved_at, t.status,"
		" (SELECT j.text FROM journal j WHERE j.ticket_id = t.id AND"
		"  ((j.action = 'status' AND j.new_value = 'resolved')"
		"   OR j.action = 'resolved') ORDER BY j.id DESC LIMIT 1)"
		" FROM tickets t WHERE t.host_id = ?1 AND t.check_name = ?2"
		" AND t.id < ?3 AND t.status IN ('resolved', 'closed')"
		/* A merged duplicate teaches nothing of its own. */
		" AND NOT EXISTS (SELECT 1 FROM hd_tickets x WHERE x.ticket_id = t.id"
		"  AND x.merged_into IS NOT NULL)"
		" ORDER BY t.id DESC LIMIT ?4",
	[DESK_OUTBOX_ADD] =
		"INSERT INTO hd_outbox(ticket_id, channel, target, subject, body,"
		" idem_key, cancel_key, created, next_attempt)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)"
		" ON CONFLICT(idem_key) DO NOTHING",
	[DESK_OUTBOX_CANCEL] =
		"UPDATE hd_outbox SET state = 'cancelled'"
		" WHERE state = 'pending' AND cancel_key = ?1",
	[DESK_OUTBOX_DUE] =
		"SELECT id, ticket_id, channel, target, subject, body, idem_key,"
		" attempts FROM hd_outbox WHERE state = 'pending'"
		" AND next_attempt <= ?1 ORDER BY next_attempt, id LIMIT ?2",
	[DESK_OUTBOX_SENT] =
		"UPDATE hd_outbox SET state = 'sent', sent_at = ?2,"
		" attempts = attempts + 1, last_error = NULL"
		" WHERE id = ?1 AND state = 'pending'",
	[DESK_OUTBOX_RETRY] =
		"UPDATE hd_outbox SET attempts = attempts + 1, next_attempt = ?2,"
		" last_error = ?3,"
		" state = CASE WHEN ?4 THEN 'failed' ELSE 'pending' END"
		" WHERE id = ?1 AND state = 'pending'",
	[DESK_OUTBOX_COUNT] =
		"SELECT count(*) FROM hd_outbox WHERE state = 'pending'",
	[DESK_OUTBOX_PURGE] =
		"DELETE FROM hd_outbox WHERE created < ?1 AND state <> 'pending'",
	[DESK_OUTBOX_NEXT] =
		"SELECT min(next_attempt) FROM hd_outbox WHERE state = 'pending'",
};

int desk_open(const struct helpdesk_config *hc, const struct inventory *inv,
	      struct store *st, struct desk **ret)
{
	struct desk *d = xcalloc(1, sizeof(*d));
	int r = 0;

	/* Before any thread exists: libcurl's global set-up is not thread-safe. */
	curl_global_init(CURL_GLOBAL_DEFAULT);
	d->hc = hc;
	d->inv = inv;
	d->st = st;
	for (int i = 0; r == 0 && i < DESK_STMT_COUNT; i++)
		r = store_prepare(st, stmt_sql[i], &d->stmt[i]);
	if (r == 0)
		r = routing_listen(st, d);
	if (r == 0)
		r = notify_listen(st, d);
	if (r < 0) {
		desk_free(d);
		return r;
	}
	*ret = d;
	return 0;
}

struct recompute_job {
	struct desk *d;
	size_t n;
};

static int recompute_apply(struct store *st, void *arg)
{
	struct recompute_job *j = arg;

	(void)st;
	return desk_recompute_all(j->d, time_now_ms(), true, &j->n);
}

int desk_start(struct desk *d, struct writer *w)
{
	struct recompute_job job = { .d = d };
	int r;

	d->writer = w;
	r = writer_run(w, recompute_apply, &job);
	if (r < 0)
		return r;
	r = escalate_start(d, &d->timer);
	if (r == 0)
		r = dispatch_start(d, &d->dispatch);
	return r;
}

void desk_stop(struct desk *d)
{
	if (d == NULL)
		return;
	escalate_stop(d->timer);
	d->timer = NULL;
	dispatch_stop(d->dispatch);
	d->dispatch = NULL;
}

void desk_free(struct desk *d)
{
	if (d == NULL)
		return;
	desk_stop(d);
	for (int i = 0; i < DESK_STMT_COUNT; i++)
		sqlite3_finalize(d->stmt[i]);
	free(d);
	curl_global_cleanup();
}

static void bind_name(sqlite3_stmt *s, int i, const char *v)
{
	db_bind_text(s, i, v[0] ? v : NULL);
}

static void bind_opt(sqlite3_stmt *s, int i, int64_t v)
{
	if (v < 0)
		sqlite3_bind_null(s, i);
	else
		sqlite3_bind_int64(s, i, v);
}

static void bind_row(sqlite3_stmt *s, const struct desk_row *r)
{
	sqlite3_bind_int64(s, 1, r->ticket_id);
	bind_name(s, 2, r->customer);
	bind_name(s, 3, r->contract);
	db_bind_text(s, 4, r->category);
	db_bind_text(s, 5, r->queue);
	sqlite3_bind_int(s, 6, r->level);
	bind_name(s, 7, r->assignee);
	db_bind_text(s, 8, r->impact);
	db_bind_text(s, 9, r->urgency);
	db_bind_text(s, 10, r->priority);
	sqlite3_bind_int(s, 11, r->priority_manual);
	bind_opt(s, 12, r->response_target);
	bind_opt(s, 13, r->resolution_target);
	bind_opt(s, 14, r->response_due);
	bind_opt(s, 15, r->resolution_due);
	sqlite3_bind_int(s, 16, (int)r->warned);
	sqlite3_bind_int(s, 17, (int)r->overdue);
	if (r->merged_into > 0)
		sqlite3_bind_int64(s, 18, r->merged_into);
	else
		sqlite3_bind_null(s, 18);
	bind_opt(s, 19, r->next_status_at);
	bind_opt(s, 20, r->next_check);
}

int desk_row_insert(struct desk *d, const struct desk_row *row,
		    const char *hint, const char *description)
{
	sqlite3_stmt *s = d->stmt[DESK_ROW_INSERT];

	bind_row(s, row);
	db_bind_text(s, 21, hint);
	db_bind_text(s, 22, description);
	return db_step_done(s);
}

int desk_row_update(struct desk *d, const struct desk_row *row)
{
	sqlite3_stmt *s = d->stmt[DESK_ROW_UPDATE];

	bind_row(s, row);
	return db_step_done(s);
}

static void column_name(sqlite3_stmt *s, int col, char *buf)
{
	const char *t = (const char *)sqlite3_column_text(s, col);

	strlcpy_safe(buf, t ? t : "", DESK_NAME_MAX);
}

static int64_t column_opt(sqlite3_stmt *s, int col)
{
	return sqlite3_column_type(s, col) == SQLITE_NULL
		       ? -1
		       : sqlite3_column_int64(s, col);
}

int desk_row_get(struct desk *d, int64_t ticket_id, struct desk_row *ret)
{
	sqlite3_stmt *s = d->stmt[DESK_ROW_GET];
	int rc, found = 0;

	sqlite3_bind_int64(s, 1, ticket_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		struct desk_row *r = ret;

		memset(r, 0, sizeof(*r));
		r->ticket_id = ticket_id;
		column_name(s, 0, r->customer);
		column_name(s, 1, r->contract);
		column_name(s, 2, r->category);
		column_name(s, 3, r->queue);
		r->level = sqlite3_column_int(s, 4);
		column_name(s, 5, r->assignee);
		column_name(s, 6, r->impact);
		column_name(s, 7, r->urgency);
		column_name(s, 8, r->priority);
		r->priority_manual = sqlite3_column_int(s, 9) != 0;
		r->response_target = column_opt(s, 10);
		r->resolution_target = column_opt(s, 11);
		r->response_due = column_opt(s, 12);
		r->resolution_due = column_opt(s, 13);
		r->warned = (unsigned)sqlite3_column_int(s, 14);
		r->overdue = (unsigned)sqlite3_column_int(s, 15);
		r->merged_into = column_opt(s, 16) > 0 ? sqlite3_column_int64(s, 16) : 0;
		r->next_status_at = column_opt(s, 17);
		r->next_check = column_opt(s, 18);
		found = 1;
		rc = SQLITE_DONE;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_DONE ? found : sqlite_to_errno(rc);
}

static void column_copy(sqlite3_stmt *s, int col, char *buf, size_t size)
{
	const char *t = (const char *)sqlite3_column_text(s, col);

	strlcpy_safe(buf, t ? t : "", size);
}

int desk_core_get(struct desk *d, int64_t ticket_id, struct desk_core *ret)
{
	sqlite3_stmt *s = d->stmt[DESK_CORE_GET];
	int rc, found = 0;

	sqlite3_bind_int64(s, 1, ticket_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		struct desk_core *c = ret;

		memset(c, 0, sizeof(*c));
		c->id = sqlite3_column_int64(s, 0);
		c->host_id = sqlite3_column_int64(s, 1);
		c->parent_id = sqlite3_column_int64(s, 2);
		column_copy(s, 3, c->host, sizeof(c->host));
		column_copy(s, 4, c->check, sizeof(c->check));
		column_copy(s, 5, c->item, sizeof(c->item));
		column_copy(s, 6, c->title, sizeof(c->title));
		column_copy(s, 7, c->summary, sizeof(c->summary));
		column_copy(s, 8, c->state, sizeof(c->state));
		if (sla_status_parse((const char *)sqlite3_column_text(s, 9),
				     &c->status) < 0)
			c->status = STATUS_NEW;
		c->opened_ms = sqlite3_column_int64(s, 10);
		c->resolved_ms = column_opt(s, 11);
		c->flapping = sqlite3_column_int(s, 12) != 0;
		found = 1;
		rc = SQLITE_DONE;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_DONE ? found : sqlite_to_errno(rc);
}

int desk_set_status(struct desk *d, int64_t ticket_id,
		    enum ticket_status status, int64_t now_ms)
{
	sqlite3_stmt *s = d->stmt[DESK_SET_STATUS];

	sqlite3_bind_int64(s, 1, ticket_id);
	db_bind_text(s, 2, sla_status_name(status));
	sqlite3_bind_int64(s, 3, now_ms);
	return db_step_done(s);
}

const struct contract *desk_contract(struct desk *d, const struct desk_row *row)
{
	return row->contract[0] ? helpdesk_contract(d->hc, row->contract) : NULL;
}

int desk_priority_index(struct desk *d, const struct desk_row *row)
{
	int p = helpdesk_index(d->hc->priorities, row->priority);

	return p < 0 ? d->hc->npriorities - 1 : p;
}

void desk_targets(struct desk *d, struct desk_row *row, int64_t opened_ms)
{
	const struct contract *c = desk_contract(d, row);
	int p = desk_priority_index(d, row);

	row->response_target = row->resolution_target = -1;
	if (c == NULL)
		return;
	row->response_target = contract_target_ms(c, &c->response[p], opened_ms);
	row->resolution_target = contract_target_ms(c, &c->resolution[p], opened_ms);
}

/* The status changes of a ticket, from its journal (malloc'ed). */
static int load_changes(struct desk *d, int64_t ticket_id,
			struct sla_change **ret, size_t *ret_n)
{
	sqlite3_stmt *s = d->stmt[DESK_CHANGES];
	struct sla_change *v = NULL;
	size_t n = 0, cap = 0;
	int rc;

	sqlite3_bind_int64(s, 1, ticket_id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		int st = sla_status_after((const char *)sqlite3_column_text(s, 1),
					  (const char *)sqlite3_column_text(s, 2));

		if (st < 0)
			continue;
		if (n == cap) {
			cap = cap * 2 + 8;
			v = xreallocarray(v, cap, sizeof(*v));
		}
		v[n].at_ms = sqlite3_column_int64(s, 0);
		v[n].status = (enum ticket_status)st;
		n++;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc != SQLITE_DONE) {
		free(v);
		return sqlite_to_errno(rc);
	}
	*ret = v;
	*ret_n = n;
	return 0;
}

int desk_sla(struct desk *d, const struct desk_core *core,
	     const struct desk_row *row, int64_t now_ms, struct sla_state *ret)
{
	const struct contract *c = desk_contract(d, row);
	struct sla_change *changes = NULL;
	size_t n = 0;
	int r;

	if (c == NULL) {
		sla_compute(NULL, core->opened_ms, NULL, 0, now_ms, -1, -1,
			    d->hc->warn_share, ret);
		return 0;
	}
	r = load_changes(d, core->id, &changes, &n);
	if (r < 0)
		return r;
	sla_compute(c->calendar, core->opened_ms, changes, n, now_ms,
		    row->response_target, row->resolution_target,
		    d->hc->warn_share, ret);
	free(changes);
	return 0;
}

static void consider(int64_t *next, int64_t t)
{
	if (t >= 0 && t != CALENDAR_NEVER && (*next < 0 || t < *next))
		*next = t;
}

/* The next instant a clock needs the timer: its warning, then its breach. */
static void consider_clock(int64_t *next, const struct sla_clock *c,
			   unsigned bit, const struct desk_row *row)
{
	if (c->target_ms < 0 || !c->running)
		return;
	if (!(row->warned & bit))
		consider(next, c->warn_ms);
	if (!(row->overdue & bit))
		consider(next, c->due_ms);
}

/* Due caches and next_check of row from its clocks. */
static void plan(struct desk *d, const struct desk_core *core,
		 struct desk_row *row, const struct sla_state *sla, int64_t now_ms)
{
	int64_t next = -1;

	row->response_due = sla->response.due_ms == CALENDAR_NEVER ? -1 : sla->response.due_ms;
	row->resolution_due =
		sla->resolution.due_ms == CALENDAR_NEVER ? -1 : sla->resolution.due_ms;
	if (sla_status_open(core->status)) {
		consider_clock(&next, &sla->response, DESK_CLOCK_RESPONSE, row);
		consider_clock(&next, &sla->resolution, DESK_CLOCK_RESOLUTION, row);
		consider(&next, row->next_status_at);
	} else if (core->status == STATUS_RESOLVED && d->hc->close_after_ms > 0) {
		consider(&next, (core->resolved_ms >= 0 ? core->resolved_ms : now_ms) +
					d->hc->close_after_ms);
	}
	row->next_check = next;
}

int desk_refresh(struct desk *d, const struct desk_core *core,
		 struct desk_row *row, int64_t now_ms)
{
	struct sla_state sla;
	int r;

	r = desk_sla(d, core, row, now_ms, &sla);
	if (r < 0)
		return r;
	plan(d, core, row, &sla, now_ms);
	return desk_row_update(d, row);
}

/* One ticket of the bulk scan, with its status changes. */
struct scan {
	struct desk_core core;
	struct desk_row row;
	struct sla_change *changes;
	size_t n, cap;
	struct desk_row *out; /* results to write after the scan */
	size_t nout, capout;
};

static void scan_finish(struct desk *d, struct scan *sc, int64_t now_ms)
{
	const struct contract *c = desk_contract(d, &sc->row);
	struct sla_state sla;

	sla_compute(c ? c->calendar : NULL, sc->core.opened_ms, sc->changes, sc->n, now_ms,
		    c ? sc->row.response_target : -1, c ? sc->row.resolution_target : -1,
		    d->hc->warn_share, &sla);
	plan(d, &sc->core, &sc->row, &sla, now_ms);
	if (sc->nout == sc->capout) {
		sc->capout = sc->capout * 2 + 1024;
		sc->out = xreallocarray(sc->out, sc->capout, sizeof(*sc->out));
	}
	sc->out[sc->nout++] = sc->row;
	sc->n = 0;
}

static void scan_row(sqlite3_stmt *s, struct scan *sc)
{
	memset(&sc->core, 0, sizeof(sc->core));
	memset(&sc->row, 0, sizeof(sc->row));
	sc->core.id = sc->row.ticket_id = sqlite3_column_int64(s, 0);
	sc->core.opened_ms = sqlite3_column_int64(s, 1);
	if (sla_status_parse((const char *)sqlite3_column_text(s, 2), &sc->core.status) < 0)
		sc->core.status = STATUS_NEW;
	sc->core.resolved_ms = column_opt(s, 3);
	column_name(s, 4, sc->row.contract);
	sc->row.response_target = column_opt(s, 5);
	sc->row.resolution_target = column_opt(s, 6);
	sc->row.warned = (unsigned)sqlite3_column_int(s, 7);
	sc->row.overdue = (unsigned)sqlite3_column_int(s, 8);
	sc->row.next_status_at = column_opt(s, 9);
}

static void scan_change(sqlite3_stmt *s, struct scan *sc)
{
	int st;

	if (sqlite3_column_type(s, 10) == SQLITE_NULL)
		return;
	st = sla_status_after((const char *)sqlite3_column_text(s, 11),
			      (const char *)sqlite3_column_text(s, 12));
	if (st < 0)
		return;
	if (sc->n == sc->cap) {
		sc->cap = sc->cap * 2 + 16;
		sc->changes = xreallocarray(sc->changes, sc->cap, sizeof(*sc->changes));
	}
	sc->changes[sc->n++] = (struct sla_change){ sqlite3_column_int64(s, 10),
						    (enum ticket_status)st };
}

int desk_recompute_all(struct desk *d, int64_t now_ms, bool write, size_t *ret_n)
{
	sqlite3_stmt *s = d->stmt[DESK_OPEN_SCAN], *u = d->stmt[DESK_CACHE_UPDATE];
	struct scan sc = { 0 };
	int64_t current = -1;
	int rc, r = 0;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(s, 0);

		if (id != current) {
			if (current >= 0)
				scan_finish(d, &sc, now_ms);
			scan_row(s, &sc);
			current = id;
		}
		scan_change(s, &sc);
	}
	if (current >= 0)
		scan_finish(d, &sc, now_ms);
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		r = sqlite_to_errno(rc);
	for (size_t i = 0; r == 0 && write && i < sc.nout; i++) {
		sqlite3_bind_int64(u, 1, sc.out[i].ticket_id);
		bind_opt(u, 2, sc.out[i].response_due);
		bind_opt(u, 3, sc.out[i].resolution_due);
		bind_opt(u, 4, sc.out[i].next_check);
		r = db_step_done(u);
	}
	if (r == 0)
		*ret_n = sc.nout;
	free(sc.changes);
	free(sc.out);
	return r;
}

int desk_announce(struct desk *d, const struct desk_core *core, int kind,
		  int64_t at_ms, const char *actor, const char *field,
		  const char *old_value, const char *new_value, const char *text)
{
	enum check_state state = CHECK_UNKNOWN;
	struct ticket_change c;

	check_state_parse(core->state, &state);
	c = (struct ticket_change){
		.kind = (enum ticket_change_kind)kind,
		.ticket_id = core->id,
		.at_ms = at_ms,
		.actor = actor,
		.host = core->host,
		.check = core->check,
		.item = core->item,
		.state = state,
		.summary = text ? text : core->summary,
		.field = field,
		.old_value = old_value,
		.new_value = new_value,
		.parent_id = core->parent_id,
		.flapping = core->flapping,
	};
	return store_ticket_changed(d->st, &c);
}

static json_t *json_time_or_null(int64_t ms)
{
	char buf[TIME_RFC3339_LEN];

	if (ms < 0 || ms == CALENDAR_NEVER)
		return json_null();
	time_format_rfc3339(ms, buf);
	return json_string(buf);
}

static json_t *json_name(const char *v)
{
	return v[0] ? json_string(v) : json_null();
}

static json_t *clock_json(const struct sla_clock *c)
{
	const char *state;

	if (c->target_ms < 0)
		return json_null();
	if (c->done_ms >= 0)
		state = c->breached ? "breached" : "met";
	else if (c->breached)
		state = "overdue";
	else
		state = c->paused ? "paused" : "running";
	return json_pack("{s:I, s:I, s:I, s:o, s:o, s:s, s:b}", "target_s",
			 (json_int_t)(c->target_ms / 1000), "elapsed_s",
			 (json_int_t)(c->elapsed_ms / 1000), "paused_s",
			 (json_int_t)(c->paused_ms / 1000), "due",
			 json_time_or_null(c->due_ms), "stopped",
			 json_time_or_null(c->done_ms), "state", state,
			 "breached", c->breached);
}

/* Previous tickets for the same host and check, with their notes. */
int desk_history(struct desk *d, const struct desk_core *core, json_t **ret)
{
	sqlite3_stmt *s = d->stmt[DESK_HISTORY];
	json_t *list = json_array();
	int rc;

	sqlite3_bind_int64(s, 1, core->host_id);
	db_bind_text(s, 2, core->check);
	sqlite3_bind_int64(s, 3, core->id);
	sqlite3_bind_int(s, 4, d->hc->history_max);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *note = (const char *)sqlite3_column_text(s, 5);

		json_array_append_new(
			list,
			json_pack("{s:I, s:s, s:o, s:o, s:s, s:o}", "id",
				  (json_int_t)sqlite3_column_int64(s, 0), "item",
				  (const char *)sqlite3_column_text(s, 1), "opened_at",
				  json_time_or_null(sqlite3_column_int64(s, 2)),
				  "resolved_at", json_time_or_null(column_opt(s, 3)),
				  "status", (const char *)sqlite3_column_text(s, 4),
				  "resolution", note ? json_string(note) : json_null()));
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc != SQLITE_DONE) {
		json_decref(list);
		return sqlite_to_errno(rc);
	}
	*ret = list;
	return 0;
}

static void row_json(const struct desk_row *row, json_t *t)
{
	json_object_set_new(t, "customer", json_name(row->customer));
	json_object_set_new(t, "contract", json_name(row->contract));
	json_object_set_new(t, "category", json_string(row->category));
	json_object_set_new(t, "queue", json_string(row->queue));
	json_object_set_new(t, "level", json_integer(row->level));
	json_object_set_new(t, "assignee", json_name(row->assignee));
	json_object_set_new(t, "impact", json_string(row->impact));
	json_object_set_new(t, "urgency", json_string(row->urgency));
	json_object_set_new(t, "priority", json_string(row->priority));
	json_object_set_new(t, "response_due", json_time_or_null(row->response_due));
	json_object_set_new(t, "resolution_due", json_time_or_null(row->resolution_due));
	json_object_set_new(t, "overdue", json_boolean(row->overdue != 0));
	json_object_set_new(t, "merged_into",
			    row->merged_into > 0 ? json_integer(row->merged_into)
						 : json_null());
}

/* Hint and description of a ticket, read only for the full view. */
static void texts_json(struct desk *d, int64_t ticket_id, json_t *t)
{
	sqlite3_stmt *s = d->stmt[DESK_TEXTS];

	sqlite3_bind_int64(s, 1, ticket_id);
	if (sqlite3_step(s) == SQLITE_ROW) {
		const char *hint = (const char *)sqlite3_column_text(s, 0);
		const char *desc = (const char *)sqlite3_column_text(s, 1);

		json_object_set_new(t, "knowledge_hint", hint ? json_string(hint) : json_null());
		json_object_set_new(t, "description", desc ? json_string(desc) : json_null());
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
}

int desk_ticket_json(struct desk *d, int64_t ticket_id, json_t *t, bool full,
		     int64_t now_ms)
{
	struct desk_row row;
	struct desk_core core;
	struct sla_state sla;
	json_t *history;
	int r;

	r = desk_row_get(d, ticket_id, &row);
	if (r <= 0)
		return r;
	row_json(&row, t);
	if (!full)
		return 0;
	r = desk_core_get(d, ticket_id, &core);
	if (r <= 0)
		return r;
	texts_json(d, ticket_id, t);
	r = desk_sla(d, &core, &row, now_ms, &sla);
	if (r < 0)
		return r;
	json_object_set_new(t, "sla",
			    json_pack("{s:o, s:o}", "response", clock_json(&sla.response),
				      "resolution", clock_json(&sla.resolution)));
	r = desk_history(d, &core, &history);
	if (r < 0)
		return r;
	json_object_set_new(t, "history", history);
	return 0;
}

int desk_tickets_json(struct desk *d, json_t *list, int64_t now_ms)
{
	size_t i;
	json_t *t;

	json_array_foreach(list, i, t) {
		int r = desk_ticket_json(d, json_integer_value(json_object_get(t, "id")),
					 t, false, now_ms);

		if (r < 0)
			return r;
	}
	return 0;
}

int desk_texts(struct desk *d, int64_t ticket_id, char **ret_hint,
	       char **ret_description)
{
	sqlite3_stmt *s = d->stmt[DESK_TEXTS];
	int rc;

	*ret_hint = *ret_description = NULL;
	sqlite3_bind_int64(s, 1, ticket_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		const char *h = (const char *)sqlite3_column_text(s, 0);
		const char *t = (const char *)sqlite3_column_text(s, 1);

		*ret_hint = h ? xstrdup(h) : NULL;
		*ret_description = t ? xstrdup(t) : NULL;
		rc = SQLITE_DONE;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_DONE ? 0 : sqlite_to_errno(rc);
}

int desk_outbox_add(struct desk *d, const struct desk_outbox_item *it)
{
	sqlite3_stmt *s = d->stmt[DESK_OUTBOX_ADD];
	int r;

	sqlite3_bind_int64(s, 1, it->ticket_id);
	db_bind_text(s, 2, it->channel);
	db_bind_text(s, 3, it->target);
	db_bind_text(s, 4, it->subject);
	db_bind_text(s, 5, it->body);
	db_bind_text(s, 6, it->idem_key);
	db_bind_text(s, 7, it->cancel_key);
	sqlite3_bind_int64(s, 8, it->created_ms);
	sqlite3_bind_int64(s, 9, it->not_before_ms);
	r = db_step_done(s);
	if (r < 0)
		return r;
	return sqlite3_changes(store_db(d->st)) > 0 ? 1 : 0;
}

int desk_outbox_cancel(struct desk *d, const char *cancel_key)
{
	sqlite3_stmt *s = d->stmt[DESK_OUTBOX_CANCEL];
	int r;

	db_bind_text(s, 1, cancel_key);
	r = db_step_done(s);
	if (r < 0)
		return r;
	return sqlite3_changes(store_db(d->st));
}

void desk_count_on(struct desk *d, struct desk *reader)
{
	d->counts_from = reader;
}

void desk_metrics(void *arg, struct metrics_out *out)
{
	struct desk *d = arg;
	struct desk *from = d->counts_from ? d->counts_from : d;
	sqlite3_stmt *s = from->stmt[DESK_OUTBOX_COUNT];
	int64_t pending = 0;

	store_lock(from->st);
	if (sqlite3_step(s) == SQLITE_ROW)
		pending = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	store_unlock(from->st);
	metrics_gauge(out, "tocsin_notify_queued",
		      "Notifications (mail and webhooks) waiting to be sent.", NULL,
		      (double)pending);
	metrics_counter(out, "tocsin_notify_total",
			"Notifications since start, by outcome.",
			"result=\"queued\"", d->counters.queued);
	metrics_counter(out, "tocsin_notify_total", NULL, "result=\"sent\"",
			d->counters.sent);
	metrics_counter(out, "tocsin_notify_total", NULL, "result=\"retried\"",
			d->counters.retried);
	metrics_counter(out, "tocsin_notify_total", NULL, "result=\"failed\"",
			d->counters.failed);
	metrics_counter(out, "tocsin_notify_total", NULL, "result=\"cancelled\"",
			d->counters.cancelled);
}
