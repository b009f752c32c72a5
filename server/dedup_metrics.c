#include "dedup_metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "dedup.h"
#include "metrics.h"
#include "problem.h"
#include "silence.h"
#include "store.h"

static const char *const dedup_metrics_steps[] = {
	/* 1: counters, bumped in the transaction of what they count */
	"CREATE TABLE lifecycle_counters ("
	"  name TEXT PRIMARY KEY,"
	"  value INTEGER NOT NULL) WITHOUT ROWID;",
};

const struct db_schema dedup_metrics_schema = {
	.module = "lifecycle_counters",
	.steps = dedup_metrics_steps,
	.nsteps = ARRAY_SIZE(dedup_metrics_steps),
};

static const char *const counter_names[DEDUP_COUNTER_COUNT] = {
	[DEDUP_OPENED] = "opened",
	[DEDUP_REOPENED] = "reopened",
	[DEDUP_RECOVERED] = "recovered",
	[DEDUP_RESOLVED] = "resolved",
	[DEDUP_CLOSED] = "closed",
	[DEDUP_ATTACHED] = "attached",
	[DEDUP_DETACHED] = "detached",
	[DEDUP_SUPPRESSED] = "suppressed",
	[DEDUP_FLAP_STARTED] = "flap_started",
	[DEDUP_FLAP_CALMED] = "flap_calmed",
};

#define OPEN_STATUSES \
	"'new', 'acknowledged', 'in_progress', 'waiting', 'recovered'"

enum {
	MS_ADD,
	MS_ALL,
	MS_GET,
	MS_BY_STATUS,
	MS_FLAPPING,
	MS_COUNT,
};

static const char *const metrics_sql[MS_COUNT] = {
	[MS_ADD] = "INSERT INTO lifecycle_counters(name, value) VALUES (?1, ?2)"
		   " ON CONFLICT(name) DO UPDATE SET value = value + ?2",
	[MS_ALL] = "SELECT name, value FROM lifecycle_counters",
	[MS_GET] = "SELECT value FROM lifecycle_counters WHERE name = ?1",
	/*
	 * The open statuses by name, so that the status index is searched
	 * for them rather than scanned past every resolved ticket.
	 */
	[MS_BY_STATUS] = "SELECT status, count(*) FROM tickets"
			 " WHERE status IN (" OPEN_STATUSES ") GROUP BY status",
	[MS_FLAPPING] = "SELECT count(*) FROM tickets"
			" WHERE status IN (" OPEN_STATUSES ") AND flapping",
};

struct dedup_metrics {
	sqlite3_stmt *stmt[MS_COUNT];
};

void dedup_metrics_close(struct dedup_metrics *m)
{
	if (m == NULL)
		return;
	for (int i = 0; i < MS_COUNT; i++)
		sqlite3_finalize(m->stmt[i]);
	free(m);
}

int dedup_metrics_open(struct store *st, struct dedup_metrics **ret)
{
	struct dedup_metrics *m = xcalloc(1, sizeof(*m));

	for (int i = 0; i < MS_COUNT; i++) {
		int r = store_prepare(st, metrics_sql[i], &m->stmt[i]);

		if (r < 0) {
			dedup_metrics_close(m);
			return r;
		}
	}
	*ret = m;
	return 0;
}

int dedup_metrics_add(struct dedup_metrics *m, enum dedup_counter c,
		      int64_t n)
{
	sqlite3_stmt *s = m->stmt[MS_ADD];

	if (n == 0)
		return 0;
	db_bind_text(s, 1, counter_names[c]);
	sqlite3_bind_int64(s, 2, n);
	return db_step_done(s);
}

int dedup_metrics_count_change(struct dedup_metrics *m,
			       const struct ticket_change *c)
{
	switch (c->kind) {
	case TICKET_OPENED:
		/* A detached child was counted when it opened as a child. */
		return c->field == NULL
			       ? dedup_metrics_add(m, DEDUP_OPENED, 1)
			       : 0;
	case TICKET_REOPENED:
		return dedup_metrics_add(m, DEDUP_REOPENED, 1);
	case TICKET_RECOVERED:
		return dedup_metrics_add(m, DEDUP_RECOVERED, 1);
	case TICKET_RESOLVED:
		return dedup_metrics_add(m, DEDUP_RESOLVED, 1);
	case TICKET_CLOSED:
		return dedup_metrics_add(m, DEDUP_CLOSED, 1);
	default:
		return 0;
	}
}

int dedup_metrics_get(struct dedup_metrics *m, enum dedup_counter c,
		      int64_t *ret)
{
	sqlite3_stmt *s = m->stmt[MS_GET];
	int rc;

	*ret = 0;
	db_bind_text(s, 1, counter_names[c]);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*ret = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sqlite_to_errno(rc);
}

static void write_counters(struct dedup_metrics *m, struct metrics_out *out)
{
	static const struct {
		enum dedup_counter c;
		const char *name, *help, *labels;
	} shown[] = {
		{ DEDUP_OPENED, "tocsin_tickets_total",
		  "Ticket changes by kind, whoever made them.", "change=\"opened\"" },
		{ DEDUP_REOPENED, "tocsin_tickets_total", NULL, "change=\"reopened\"" },
		{ DEDUP_RECOVERED, "tocsin_tickets_total", NULL, "change=\"recovered\"" },
		{ DEDUP_RESOLVED, "tocsin_tickets_total", NULL, "change=\"resolved\"" },
		{ DEDUP_CLOSED, "tocsin_tickets_total", NULL, "change=\"closed\"" },
		{ DEDUP_ATTACHED, "tocsin_topology_children_total",
		  "Tickets attached to a parent's ticket, and detached again.",
		  "change=\"attached\"" },
		{ DEDUP_DETACHED, "tocsin_topology_children_total", NULL,
		  "change=\"detached\"" },
		{ DEDUP_SUPPRESSED, "tocsin_silenced_events_total",
		  "Problem events that opened no ticket because a silence covered them.",
		  NULL },
		{ DEDUP_FLAP_STARTED, "tocsin_flapping_total",
		  "Problems that started flapping, and that calmed down.",
		  "change=\"started\"" },
		{ DEDUP_FLAP_CALMED, "tocsin_flapping_total", NULL,
		  "change=\"calmed\"" },
	};
	int64_t values[DEDUP_COUNTER_COUNT] = { 0 };
	sqlite3_stmt *s = m->stmt[MS_ALL];

	while (sqlite3_step(s) == SQLITE_ROW) {
		const char *name = (const char *)sqlite3_column_text(s, 0);

		for (int i = 0; name && i < DEDUP_COUNTER_COUNT; i++)
			if (strcmp(name, counter_names[i]) == 0)
				values[i] = sqlite3_column_int64(s, 1);
	}
	sqlite3_reset(s);
	for (size_t i = 0; i < ARRAY_SIZE(shown); i++)
		metrics_counter(out, shown[i].name, shown[i].help,
				shown[i].labels, (uint64_t)values[shown[i].c]);
}

static void write_ticket_gauges(struct dedup_metrics *m,
				struct metrics_out *out)
{
	static const char *const open_statuses[] = {
		"new", "acknowledged", "in_progress", "waiting", "recovered",
	};
	int64_t counts[ARRAY_SIZE(open_statuses)] = { 0 };
	sqlite3_stmt *s = m->stmt[MS_BY_STATUS];
	int64_t flapping = 0;

	while (sqlite3_step(s) == SQLITE_ROW) {
		const char *status = (const char *)sqlite3_column_text(s, 0);

		for (size_t i = 0; status && i < ARRAY_SIZE(open_statuses); i++)
			if (strcmp(status, open_statuses[i]) == 0)
				counts[i] = sqlite3_column_int64(s, 1);
	}
	sqlite3_reset(s);
	for (size_t i = 0; i < ARRAY_SIZE(open_statuses); i++) {
		char labels[64];

		snprintf(labels, sizeof(labels), "status=\"%s\"", open_statuses[i]);
		metrics_gauge(out, "tocsin_open_tickets",
			      i == 0 ? "Open tickets by status." : NULL, labels,
			      (double)counts[i]);
	}
	s = m->stmt[MS_FLAPPING];
	if (sqlite3_step(s) == SQLITE_ROW)
		flapping = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	metrics_gauge(out, "tocsin_flapping_tickets",
		      "Open tickets marked flapping.", NULL, (double)flapping);
}

void dedup_metrics_source(void *store, struct metrics_out *out)
{
	struct store *st = store;
	struct dedup *d;
	int64_t pending = 0, silenced = 0, active = 0, planned = 0;

	store_lock(st);
	d = store_attached(st, DEDUP_MODULE);
	if (d == NULL) {
		store_unlock(st);
		return;
	}
	write_counters(d->metrics, out);
	write_ticket_gauges(d->metrics, out);
	problem_counts(d->problems, &pending, &silenced);
	silence_counts(d->silences, time_now_ms(), &active, &planned);
	store_unlock(st);

	metrics_gauge(out, "tocsin_problems_waiting",
		      "Problems without a ticket yet: unconfirmed, or held back by a silence.",
		      "phase=\"unconfirmed\"", (double)pending);
	metrics_gauge(out, "tocsin_problems_waiting", NULL, "phase=\"silenced\"",
		      (double)silenced);
	metrics_gauge(out, "tocsin_silences", "Silences by state.",
		      "state=\"active\"", (double)active);
	metrics_gauge(out, "tocsin_silences", NULL, "state=\"pending\"",
		      (double)planned);
}
