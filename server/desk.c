#include "desk.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
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
	/*
	 * 2: lanes (mail, each webhook) with their own due index, importance
	 * for a full outbox, the pending count kept by triggers (exact in
	 * every transaction, so the bound holds and /metrics needs no
	 * count(*)), the ids other ticket systems gave our tickets, and the
	 * timer's per-ticket backoff.
	 */
	"ALTER TABLE hd_tickets ADD COLUMN urgency_manual INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE hd_tickets ADD COLUMN check_failures INTEGER NOT NULL DEFAULT 0;"
	"ALTER TABLE hd_outbox ADD COLUMN kind TEXT NOT NULL DEFAULT '';"
	"ALTER TABLE hd_outbox ADD COLUMN importance INTEGER NOT NULL DEFAULT 2;"
	"DROP INDEX hd_outbox_due;"
	"CREATE INDEX hd_outbox_mail_due ON hd_outbox(channel, next_attempt)"
	"  WHERE state = 'pending';"
	"CREATE INDEX hd_outbox_lane ON hd_outbox(channel, target, next_attempt)"
	"  WHERE state = 'pending';"
	"CREATE INDEX hd_outbox_least ON hd_outbox(importance, id)"
	"  WHERE state = 'pending';"
	"CREATE INDEX hd_outbox_ticket ON hd_outbox(ticket_id);"
	"CREATE TABLE hd_outbox_pending ("
	"  id INTEGER PRIMARY KEY CHECK (id = 1), n INTEGER NOT NULL);"
	"INSERT INTO hd_outbox_pending VALUES"
	"  (1, (SELECT count(*) FROM hd_outbox WHERE state = 'pending'));"
	"CREATE TRIGGER hd_outbox_pending_insert AFTER INSERT ON hd_outbox"
	"  WHEN NEW.state = 'pending'"
	"  BEGIN UPDATE hd_outbox_pending SET n = n + 1; END;"
	"CREATE TRIGGER hd_outbox_pending_state AFTER UPDATE OF state ON hd_outbox"
	"  WHEN (OLD.state = 'pending') <> (NEW.state = 'pending')"
	"  BEGIN UPDATE hd_outbox_pending"
	"    SET n = n + CASE WHEN NEW.state = 'pending' THEN 1 ELSE -1 END; END;"
	"CREATE TRIGGER hd_outbox_pending_delete AFTER DELETE ON hd_outbox"
	"  WHEN OLD.state = 'pending'"
	"  BEGIN UPDATE hd_outbox_pending SET n = n - 1; END;"
	"CREATE TABLE hd_external ("
	"  webhook TEXT NOT NULL, ticket_id INTEGER NOT NULL,"
	"  external_id TEXT NOT NULL, PRIMARY KEY (webhook, ticket_id));"
	/*
	 * The history of a host's check looks at finished tickets only; with
	 * thousands open for one host and check (a burst), the index of step 1
	 * made every opening scan them all.
	 */
	"CREATE INDEX hd_tickets_finished ON tickets(host_id, check_name, id)"
	"  WHERE status IN ('resolved', 'closed');",
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
	" merged_into, next_status_at, next_check, urgency_manual"

#define OUTBOX_COLUMNS \
	"id, ticket_id, channel, target, subject, body, idem_key, attempts, kind"

static const char *const stmt_sql[DESK_STMT_COUNT] = {
	[DESK_ROW_INSERT] =
		"INSERT INTO hd_tickets(ticket_id, " ROW_COLUMNS ", hint, description)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13,"
		" ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21, ?22, ?23)"
		" ON CONFLICT(ticket_id) DO NOTHING",
	[DESK_ROW_GET] = "SELECT " ROW_COLUMNS " FROM hd_tickets WHERE ticket_id = ?1",
	[DESK_ROW_UPDATE] =
		"UPDATE hd_tickets SET customer = ?2, contract = ?3, category = ?4,"
		" queue = ?5, level = ?6, assignee = ?7, impact = ?8, urgency = ?9,"
		" priority = ?10, priority_manual = ?11, response_target = ?12,"
		" resolution_target = ?13, response_due = ?14, resolution_due = ?15,"
		" warned = ?16, overdue = ?17, merged_into = ?18,"
		" next_status_at = ?19, next_check = ?20, urgency_manual = ?21"
		" WHERE ticket_id = ?1",
	[DESK_TEXTS] = "SELECT hint, description FROM hd_tickets WHERE ticket_id = ?1",
	[DESK_OPEN_SCAN] =
		"SELECT t.id, t.opened_at, t.status, t.resolved_at, h.contract,"
		" h.response_target, h.resolution_target, h.warned, h.overdue,"
		" h.next_status_at, j.at, j.action, j.new_value, h.customer"
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
	/*
	 * The resolution note of an earlier ticket: a technician's note
	 * (resolve) first, then a technician's text on closing it, and only
	 * then the agent's ok summary the system resolved it with ('tocsin'
	 * is DESK_SYSTEM_ACTOR); the latest of the best kind.
	 */
	[DESK_HISTORY] =
		"SELECT t.id, t.item, t.opened_at, t.resolved_at, t.status,"
		" (SELECT j.text FROM journal j WHERE j.ticket_id = t.id"
		"  AND j.text IS NOT NULL AND"
		"  ((j.action = 'status' AND j.new_value IN ('resolved', 'closed')"
		"    AND j.actor <> 'tocsin') OR j.action = 'resolved')"
		"  ORDER BY CASE WHEN j.actor = 'tocsin' THEN 2"
		"   WHEN j.new_value = 'resolved' THEN 0 ELSE 1 END, j.id DESC LIMIT 1)"
		" FROM tickets t WHERE t.host_id = ?1 AND t.check_name = ?2"
		" AND t.id < ?3 AND t.status IN ('resolved', 'closed')"
		/* A merged duplicate teaches nothing of its own. */
		" AND NOT EXISTS (SELECT 1 FROM hd_tickets x WHERE x.ticket_id = t.id"
		"  AND x.merged_into IS NOT NULL)"
		" ORDER BY t.id DESC LIMIT ?4",
	[DESK_OUTBOX_ADD] =
		"INSERT INTO hd_outbox(ticket_id, channel, target, subject, body,"
		" idem_key, cancel_key, created, next_attempt, kind, importance,"
		" state, last_error)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13)"
		" ON CONFLICT(idem_key) DO NOTHING",
	[DESK_OUTBOX_CANCEL] =
		"UPDATE hd_outbox SET state = 'cancelled'"
		" WHERE state = 'pending' AND cancel_key = ?1",
	/* A read first: nearly always nothing to cancel, and a read is
	 * cheaper than a write statement that finds nothing. */
	[DESK_OUTBOX_CANCEL_PROBE] =
		"SELECT 1 FROM hd_outbox"
		" WHERE cancel_key = ?1 AND state = 'pending' LIMIT 1",
	[DESK_OUTBOX_SENT] =
		"UPDATE hd_outbox SET state = 'sent', sent_at = ?2,"
		" attempts = attempts + 1, last_error = NULL"
		" WHERE id = ?1 AND state = 'pending'",
	/* ?5: the attempt does not count (the row only waits for another). */
	[DESK_OUTBOX_RETRY] =
		"UPDATE hd_outbox SET attempts = attempts + CASE WHEN ?5 THEN 0 ELSE 1 END,"
		" next_attempt = ?2, last_error = ?3,"
		" state = CASE WHEN ?4 THEN 'failed' ELSE 'pending' END"
		" WHERE id = ?1 AND state = 'pending'",
	[DESK_OUTBOX_PURGE] =
		"DELETE FROM hd_outbox WHERE created < ?1 AND state <> 'pending'",
	[DESK_OUTBOX_PENDING] = "SELECT n FROM hd_outbox_pending",
	[DESK_OUTBOX_LEAST] =
		"SELECT id, importance FROM hd_outbox WHERE state = 'pending'"
		" ORDER BY importance, id LIMIT 1",
	[DESK_OUTBOX_DROP] =
		"UPDATE hd_outbox SET state = 'failed', last_error = ?2"
		" WHERE id = ?1 AND state = 'pending'",
	[DESK_OUTBOX_DUE_MAIL] =
		"SELECT " OUTBOX_COLUMNS " FROM hd_outbox WHERE state = 'pending'"
		" AND channel = 'mail' AND next_attempt <= ?1"
		" ORDER BY next_attempt, id LIMIT ?2",
	[DESK_OUTBOX_DUE_HOOK] =
		"SELECT " OUTBOX_COLUMNS " FROM hd_outbox WHERE state = 'pending'"
		" AND channel = 'webhook' AND target = ?3 AND next_attempt <= ?1"
		" ORDER BY next_attempt, id LIMIT ?2",
	[DESK_OUTBOX_NEXT_MAIL] =
		"SELECT min(next_attempt) FROM hd_outbox WHERE state = 'pending'"
		" AND channel = 'mail'",
	[DESK_OUTBOX_NEXT_HOOK] =
		"SELECT min(next_attempt) FROM hd_outbox WHERE state = 'pending'"
		" AND channel = 'webhook' AND target = ?1",
	[DESK_OUTBOX_TARGET_DUE] =
		"SELECT " OUTBOX_COLUMNS " FROM hd_outbox WHERE state = 'pending'"
		" AND channel = 'mail' AND target = ?1 AND next_attempt <= ?2"
		" ORDER BY id LIMIT ?3",
	[DESK_OUTBOX_DEFER] =
		"UPDATE hd_outbox SET next_attempt = ?2 WHERE state = 'pending'"
		" AND channel = 'mail' AND target = ?1 AND next_attempt < ?2",
	[DESK_OUTBOX_LANES] =
		"SELECT DISTINCT channel, target FROM hd_outbox WHERE state = 'pending'"
		" AND channel = 'webhook'",
	[DESK_OUTBOX_FAIL_UNSENDABLE] =
		"UPDATE hd_outbox SET state = 'failed', last_error = ?3"
		" WHERE state = 'pending' AND channel = ?1 AND (?2 IS NULL OR target = ?2)",
	[DESK_OUTBOX_CREATE_STATE] =
		"SELECT state, next_attempt FROM hd_outbox WHERE ticket_id = ?2"
		" AND channel = 'webhook' AND target = ?1 AND kind = 'create'"
		" ORDER BY id DESC LIMIT 1",
	[DESK_EXTERNAL_GET] =
		"SELECT external_id FROM hd_external WHERE webhook = ?1 AND ticket_id = ?2",
	[DESK_EXTERNAL_SET] =
		"INSERT INTO hd_external(webhook, ticket_id, external_id)"
		" VALUES (?1, ?2, ?3) ON CONFLICT(webhook, ticket_id)"
		" DO UPDATE SET external_id = excluded.external_id",
	/* Who took the problem away last, and when (a reopen asks). */
	[DESK_LAST_RESOLUTION] =
		"SELECT at, actor FROM journal WHERE ticket_id = ?1 AND"
		" (action IN ('resolved', 'recovered') OR (action = 'status' AND"
		"  new_value IN ('resolved', 'recovered', 'closed')))"
		" ORDER BY id DESC LIMIT 1",
	[DESK_NEXT_DUE] =
		"SELECT min(next_check) FROM hd_tickets WHERE next_check IS NOT NULL",
	/* ?2 now, ?3 the first delay, ?4 the longest: doubling per failure. */
	[DESK_CHECK_FAILED] =
		"UPDATE hd_tickets SET check_failures = check_failures + 1,"
		" next_check = ?2 + min(?3 * (1 << min(check_failures, 20)), ?4)"
		" WHERE ticket_id = ?1",
	[DESK_CHECK_OK] =
		"UPDATE hd_tickets SET check_failures = 0"
		" WHERE ticket_id = ?1 AND check_failures <> 0",
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
	d->notify = hc->notify;
	d->mail_reaches = notify_mail_reaches(hc, inv);
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

void desk_reconfigure(struct desk *d, const struct helpdesk_config *hc,
		      const struct inventory *inv)
{
	atomic_store(&d->hc, hc);
	d->inv = inv;
	d->notify = hc->notify;
	d->mail_reaches = notify_mail_reaches(hc, inv);
}

struct recompute_job {
	struct desk *d;
	size_t n;
	struct desk_orphans orphans;
};

/* Writer job at start: every clock recomputed, the pending mirror set. */
static int recompute_apply(struct store *st, void *arg)
{
	struct recompute_job *j = arg;
	int64_t pending;
	int r;

	(void)st;
	r = desk_recompute_all(j->d, time_now_ms(), true, &j->n, &j->orphans);
	if (r == 0)
		r = desk_outbox_pending(j->d, &pending);
	if (r == 0)
		j->d->counters.pending = pending;
	return r;
}

int desk_start(struct desk *d, struct writer *w)
{
	struct recompute_job job = { .d = d };
	char *warning;
	int r;

	d->writer = w;
	r = writer_run(w, recompute_apply, &job);
	for (size_t pos = 0; (warning = desk_orphans_next_warning(&job.orphans, &pos));
	     free(warning))
		log_warnx("%s", warning);
	desk_orphans_clear(&job.orphans);
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
	sqlite3_bind_int(s, 21, r->urgency_manual);
}

int desk_row_insert(struct desk *d, const struct desk_row *row,
		    const char *hint, const char *description)
{
	sqlite3_stmt *s = d->stmt[DESK_ROW_INSERT];

	bind_row(s, row);
	db_bind_text(s, 22, hint);
	db_bind_text(s, 23, description);
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
		r->urgency_manual = sqlite3_column_int(s, 19) != 0;
		found = 1;
		rc = SQLITE_DONE;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_DONE ? found : sqlite_to_errno(rc);
}

static char *column_dup(sqlite3_stmt *s, int col)
{
	const char *t = (const char *)sqlite3_column_text(s, col);

	return xstrdup(t ? t : "");
}

int desk_core_get(struct desk *d, int64_t ticket_id, struct desk_core *ret)
{
	sqlite3_stmt *s = d->stmt[DESK_CORE_GET];
	int rc, found = 0;

	sqlite3_bind_int64(s, 1, ticket_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		struct desk_core *c = ret;
		const char *t;

		memset(c, 0, sizeof(*c));
		c->id = sqlite3_column_int64(s, 0);
		c->host_id = sqlite3_column_int64(s, 1);
		c->parent_id = sqlite3_column_int64(s, 2);
		c->host = column_dup(s, 3);
		c->check = column_dup(s, 4);
		c->item = column_dup(s, 5);
		c->title = column_dup(s, 6);
		c->summary = column_dup(s, 7);
		/* A check state name: ok, warning, critical, unknown. */
		t = (const char *)sqlite3_column_text(s, 8);
		strlcpy_safe(c->state, t ? t : "", sizeof(c->state));
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

void desk_core_clear(struct desk_core *c)
{
	free(c->host);
	free(c->check);
	free(c->item);
	free(c->title);
	free(c->summary);
	memset(c, 0, sizeof(*c));
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

	/* A contract no longer configured has no targets to look up: the
	 * ticket keeps those it has, whatever the new priority. */
	if (c == NULL && row->contract[0] != '\0')
		return;
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

void desk_clock(struct desk *d, const struct desk_row *row,
		struct helpdesk_clock *ret)
{
	helpdesk_clock_for(d->hc, d->inv, row->contract, row->customer, ret);
}

int desk_sla(struct desk *d, const struct desk_core *core,
	     const struct desk_row *row, int64_t now_ms, struct sla_state *ret)
{
	struct helpdesk_clock clock;
	struct sla_change *changes = NULL;
	size_t n = 0;
	int r;

	if (row->contract[0] == '\0') {
		sla_compute(NULL, core->opened_ms, NULL, 0, now_ms, -1, -1,
			    d->hc->warn_share, ret);
		return 0;
	}
	desk_clock(d, row, &clock);
	r = load_changes(d, core->id, &changes, &n);
	if (r < 0)
		return r;
	sla_compute(clock.calendar, core->opened_ms, changes, n, now_ms,
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

/* One clock's bits that its state no longer justifies are cleared. */
static void reset_clock_flags(const struct sla_clock *c, unsigned bit,
			      double share, struct desk_row *row)
{
	if (c->target_ms < 0) {
		row->warned &= ~bit;
		row->overdue &= ~bit;
		return;
	}
	if (!c->breached)
		row->overdue &= ~bit;
	if (!(row->overdue & bit) && (double)c->elapsed_ms < (double)c->target_ms * share)
		row->warned &= ~bit;
}

void desk_reset_flags(struct desk *d, struct desk_row *row,
		      const struct sla_state *sla)
{
	reset_clock_flags(&sla->response, DESK_CLOCK_RESPONSE, d->hc->warn_share, row);
	reset_clock_flags(&sla->resolution, DESK_CLOCK_RESOLUTION, d->hc->warn_share, row);
}

int desk_plan(struct desk *d, const struct desk_core *core, struct desk_row *row,
	      int64_t now_ms)
{
	struct sla_state sla;
	int r;

	r = desk_sla(d, core, row, now_ms, &sla);
	if (r < 0)
		return r;
	plan(d, core, row, &sla, now_ms);
	return 0;
}

int desk_refresh(struct desk *d, const struct desk_core *core,
		 struct desk_row *row, int64_t now_ms)
{
	int r = desk_plan(d, core, row, now_ms);

	return r < 0 ? r : desk_row_update(d, row);
}

/* One ticket of the bulk scan, with its status changes. */
struct scan {
	struct desk_core core;
	struct desk_row row;
	struct sla_change *changes;
	size_t n, cap;
	struct desk_row *out; /* results to write after the scan */
	size_t nout, capout;
	struct desk_orphans *orphans; /* or NULL */
};

/*
 * Count an open ticket of a contract no longer configured under its
 * contract and the calendar it runs on instead.  The groups are few (the
 * contract names once configured times those configured now), so a
 * linear search does.
 */
static void orphan_count(struct desk_orphans *o, const struct desk_row *row,
			 const struct helpdesk_clock *clock)
{
	const char *instead = clock->instead ? clock->instead->id : "";
	struct desk_orphan *g;

	o->tickets++;
	for (size_t i = 0; i < o->n; i++) {
		g = &o->v[i];
		if (strcmp(g->contract, row->contract) == 0 &&
		    strcmp(g->instead, instead) == 0) {
			g->n++;
			return;
		}
	}
	if (o->n == o->cap) {
		o->cap = o->cap * 2 + 4;
		o->v = xreallocarray(o->v, o->cap, sizeof(*o->v));
	}
	g = &o->v[o->n++];
	memset(g, 0, sizeof(*g));
	strlcpy_safe(g->contract, row->contract, sizeof(g->contract));
	strlcpy_safe(g->instead, instead, sizeof(g->instead));
	g->n = 1;
}

static void scan_finish(struct desk *d, struct scan *sc, int64_t now_ms)
{
	const bool has = sc->row.contract[0] != '\0';
	struct helpdesk_clock clock = { .calendar = NULL };
	struct sla_state sla;

	if (has)
		desk_clock(d, &sc->row, &clock);
	if (has && clock.contract == NULL && sc->orphans != NULL &&
	    sla_status_open(sc->core.status))
		orphan_count(sc->orphans, &sc->row, &clock);
	sla_compute(clock.calendar, sc->core.opened_ms, sc->changes, sc->n, now_ms,
		    has ? sc->row.response_target : -1, has ? sc->row.resolution_target : -1,
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
	column_name(s, 13, sc->row.customer);
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

int desk_recompute_all(struct desk *d, int64_t now_ms, bool write, size_t *ret_n,
		       struct desk_orphans *ret_orphans)
{
	sqlite3_stmt *s = d->stmt[DESK_OPEN_SCAN], *u = d->stmt[DESK_CACHE_UPDATE];
	struct desk_orphans orphans = { 0 };
	struct scan sc = { .orphans = &orphans };
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
	if (r == 0) {
		*ret_n = sc.nout;
		if (write)
			atomic_store(&d->counters.orphaned, orphans.tickets);
		if (ret_orphans != NULL) {
			*ret_orphans = orphans;
			orphans = (struct desk_orphans){ 0 };
		}
	}
	desk_orphans_clear(&orphans);
	free(sc.changes);
	free(sc.out);
	return r;
}

void desk_orphans_clear(struct desk_orphans *o)
{
	free(o->v);
	*o = (struct desk_orphans){ 0 };
}

/*
 * The calendars the tickets of one missing contract (the group at first)
 * use instead: "the calendar of contract \"gold-2027\"" alone, or with
 * counts when they use several.
 */
static void orphan_calendars(const struct desk_orphans *o, size_t first,
			     size_t total, char *buf, size_t len)
{
	bool several = o->v[first].n != total;

	buf[0] = '\0';
	for (size_t i = first; i < o->n; i++) {
		const struct desk_orphan *g = &o->v[i];
		char part[2 * DESK_NAME_MAX + 64];

		if (strcmp(g->contract, o->v[first].contract) != 0)
			continue;
		if (g->instead[0] != '\0')
			snprintf(part, sizeof(part), "the calendar of contract \"%s\"",
				 g->instead);
		else
			snprintf(part, sizeof(part), "a 24x7 calendar");
		if (buf[0] != '\0')
			strlcat_safe(buf, ", ", len);
		strlcat_safe(buf, part, len);
		if (several) {
			snprintf(part, sizeof(part), " (%zu)", g->n);
			strlcat_safe(buf, part, len);
		}
	}
}

char *desk_orphans_next_warning(const struct desk_orphans *o, size_t *pos)
{
	for (size_t i = *pos; i < o->n; i++) {
		size_t total = 0;
		bool seen = false;
		char cals[1024];

		for (size_t k = 0; k < i && !seen; k++)
			seen = strcmp(o->v[k].contract, o->v[i].contract) == 0;
		if (seen)
			continue;
		for (size_t k = i; k < o->n; k++)
			if (strcmp(o->v[k].contract, o->v[i].contract) == 0)
				total += o->v[k].n;
		orphan_calendars(o, i, total, cals, sizeof(cals));
		*pos = i + 1;
		return xasprintf("contract \"%s\" is no longer configured: %zu open ticket%s keep%s %s targets and use%s %s",
				 o->v[i].contract, total, total == 1 ? "" : "s",
				 total == 1 ? "s" : "", total == 1 ? "its" : "their",
				 total == 1 ? "s" : "", cals);
	}
	*pos = o->n;
	return NULL;
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

/*
 * Which calendar the clocks run on (sla.calendar: a contract id, "24x7",
 * or null without a contract) and, when it is not the ticket's own
 * contract's, why (sla.calendar_note), so that a technician sees it.
 */
static void calendar_json(struct desk *d, const struct desk_row *row, json_t *sla)
{
	struct helpdesk_clock clock;
	const char *cu = row->customer[0] ? row->customer : NULL;
	const struct customer *customer;
	char *note;

	if (row->contract[0] == '\0') {
		json_object_set_new(sla, "calendar", json_null());
		json_object_set_new(sla, "calendar_note", json_null());
		return;
	}
	desk_clock(d, row, &clock);
	if (clock.contract != NULL) {
		json_object_set_new(sla, "calendar", json_string(clock.contract->id));
		json_object_set_new(sla, "calendar_note", json_null());
		return;
	}
	customer = cu ? inventory_customer(d->inv, cu) : NULL;
	if (clock.instead != NULL && customer && customer->contract == clock.instead)
		note = xasprintf("contract %s is no longer configured: the ticket keeps its targets, its clocks use the calendar of contract %s (customer %s's)",
				 row->contract, clock.instead->id, cu);
	else if (clock.instead != NULL)
		note = xasprintf("contract %s is no longer configured: the ticket keeps its targets, its clocks use the calendar of contract %s (helpdesk.default_contract)",
				 row->contract, clock.instead->id);
	else if (cu != NULL && customer == NULL)
		note = xasprintf("contract %s is no longer configured: the ticket keeps its targets, its clocks run round the clock (24x7: customer %s is no longer configured either)",
				 row->contract, cu);
	else
		note = xasprintf("contract %s is no longer configured: the ticket keeps its targets, its clocks run round the clock (24x7: %s%s has no contract)",
				 row->contract, cu ? "customer " : "", cu ? cu : "the helpdesk");
	json_object_set_new(sla, "calendar",
			    json_string(clock.instead ? clock.instead->id : "24x7"));
	json_object_set_new(sla, "calendar_note", json_string(note));
	free(note);
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
	struct desk_core core = { 0 };
	struct desk_row row;
	struct sla_state sla;
	json_t *history, *sla_json;
	int r;

	r = desk_row_get(d, ticket_id, &row);
	if (r <= 0)
		return r;
	row_json(&row, t);
	if (!full)
		return 0;
	r = desk_core_get(d, ticket_id, &core);
	if (r <= 0)
		goto out;
	texts_json(d, ticket_id, t);
	r = desk_sla(d, &core, &row, now_ms, &sla);
	if (r < 0)
		goto out;
	sla_json = json_pack("{s:o, s:o}", "response", clock_json(&sla.response),
			     "resolution", clock_json(&sla.resolution));
	calendar_json(d, &row, sla_json);
	json_object_set_new(t, "sla", sla_json);
	r = desk_history(d, &core, &history);
	if (r == 0)
		json_object_set_new(t, "history", history);
out:
	desk_core_clear(&core);
	return r < 0 ? r : 0;
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

/* Insert it as state (with why for a row that is not pending). */
static int outbox_insert(struct desk *d, const struct desk_outbox_item *it,
			 const char *state, const char *why)
{
	sqlite3_stmt *s = d->stmt[DESK_OUTBOX_ADD];
	int r;

	sqlite3_bind_int64(s, 1, it->ticket_id);
	db_bind_text(s, 2, it->channel);
	db_bind_text(s, 3, it->target);
	db_bind_text(s, 4, it->subject);
	db_bind_text(s, 5, it->body ? it->body : "");
	db_bind_text(s, 6, it->idem_key);
	db_bind_text(s, 7, it->cancel_key);
	sqlite3_bind_int64(s, 8, it->created_ms);
	sqlite3_bind_int64(s, 9, it->not_before_ms);
	db_bind_text(s, 10, it->kind ? it->kind : "");
	sqlite3_bind_int(s, 11, it->importance > 0 ? it->importance : DESK_IMPORTANCE_NORMAL);
	db_bind_text(s, 12, state);
	db_bind_text(s, 13, why);
	r = db_step_done(s);
	if (r < 0)
		return r;
	return sqlite3_changes(store_db(d->st)) > 0 ? 1 : 0;
}

int desk_outbox_pending(struct desk *d, int64_t *ret)
{
	sqlite3_stmt *s = d->stmt[DESK_OUTBOX_PENDING];
	int rc = sqlite3_step(s);

	if (rc == SQLITE_ROW)
		*ret = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? 0 : sqlite_to_errno(rc == SQLITE_DONE ? SQLITE_CORRUPT : rc);
}

/*
 * The outbox is full: drop its least important pending row (the oldest
 * of those) when it matters no more than it.  1 when there is room now,
 * 0 when it is the one to drop.
 */
static int outbox_make_room(struct desk *d, const struct desk_outbox_item *it,
			    const char *why)
{
	sqlite3_stmt *s = d->stmt[DESK_OUTBOX_LEAST];
	int64_t id = 0;
	int importance = 0, rc, r;

	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		id = sqlite3_column_int64(s, 0);
		importance = sqlite3_column_int(s, 1);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sqlite_to_errno(rc);
	if (rc == SQLITE_DONE || importance > it->importance)
		return 0;
	s = d->stmt[DESK_OUTBOX_DROP];
	sqlite3_bind_int64(s, 1, id);
	db_bind_text(s, 2, why);
	r = db_step_done(s);
	return r < 0 ? r : 1;
}

int desk_outbox_add(struct desk *d, const struct desk_outbox_item *it)
{
	size_t max = d->notify->max_pending;
	int64_t pending;
	char why[128];
	int r;

	r = desk_outbox_pending(d, &pending);
	if (r < 0 || (uint64_t)pending < max)
		return r < 0 ? r : outbox_insert(d, it, "pending", NULL);
	snprintf(why, sizeof(why), "dropped: the outbox held notify.max_pending (%zu) rows",
		 max);
	r = outbox_make_room(d, it, why);
	if (r < 0)
		return r;
	d->counters.dropped++;
	desk_warn_limited(d, DESK_TROUBLE_FULL,
			  "notifications: the outbox holds %zu rows (notify.max_pending); "
			  "dropping the least important (%llu so far)",
			  max, (unsigned long long)d->counters.dropped);
	if (r > 0)
		return outbox_insert(d, it, "pending", NULL);
	r = outbox_insert(d, it, "failed", why);
	return r < 0 ? r : 0;
}

int desk_outbox_unrendered(struct desk *d, const struct desk_outbox_item *it,
			   const char *why)
{
	int r = outbox_insert(d, it, "failed", why);

	d->counters.unrendered++;
	desk_warn_limited(d, DESK_TROUBLE_RENDER,
			  "ticket %lld: a %s to %s could not be built: %s (%llu so far)",
			  (long long)it->ticket_id, it->channel, it->target, why,
			  (unsigned long long)d->counters.unrendered);
	return r < 0 ? r : 0;
}

int desk_outbox_cancel(struct desk *d, const char *cancel_key)
{
	sqlite3_stmt *s = d->stmt[DESK_OUTBOX_CANCEL_PROBE];
	int rc, r;

	db_bind_text(s, 1, cancel_key);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc == SQLITE_DONE)
		return 0;
	if (rc != SQLITE_ROW)
		return sqlite_to_errno(rc);
	s = d->stmt[DESK_OUTBOX_CANCEL];
	db_bind_text(s, 1, cancel_key);
	r = db_step_done(s);
	if (r < 0)
		return r;
	return sqlite3_changes(store_db(d->st));
}

void desk_warn_limited(struct desk *d, enum desk_trouble kind, const char *fmt, ...)
{
	int64_t now = time_mono_ms();
	char msg[512];
	va_list ap;

	if (d->warned_ms[kind] != 0 && now - d->warned_ms[kind] < 60000)
		return;
	d->warned_ms[kind] = now;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	log_warnx("%s", msg);
}

void desk_metrics(void *arg, struct metrics_out *out)
{
	struct desk *d = arg;

	/* A mirror the senders refresh: no query, no store lock here. */
	metrics_gauge(out, "tocsin_notify_queued",
		      "Notifications (mail and webhooks) waiting to be sent.", NULL,
		      (double)d->counters.pending);
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
	metrics_counter(out, "tocsin_notify_total", NULL, "result=\"dropped\"",
			d->counters.dropped);
	metrics_counter(out, "tocsin_notify_total", NULL, "result=\"unrendered\"",
			d->counters.unrendered);
	metrics_counter(out, "tocsin_helpdesk_timer_jobs_total",
			"Escalation timer jobs run (only when a ticket was due).", NULL,
			d->counters.timer_jobs);
	metrics_gauge(out, "tocsin_helpdesk_contract_gone_tickets",
		      "Open tickets whose contract is no longer configured (their clocks use another calendar), as of the last start or reload.",
		      NULL, (double)d->counters.orphaned);
	metrics_counter(out, "tocsin_notify_digests_total",
			"Mails that carried several notifications to one recipient list.",
			NULL, d->counters.digests);
}
