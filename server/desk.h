/*
 * The helpdesk at run time: its tables (a side table of ticket fields,
 * hd_tickets, and the notification outbox, hd_outbox), the statements on
 * them, and the threads of the workflow (escalate.c's timer, dispatch.c's
 * sender).
 *
 * Every ticket gets a row in hd_tickets when it opens (routing.c, in the
 * transaction that opens it), holding what the helpdesk adds to the
 * monitoring ticket: customer, contract, category, queue, level, assignee,
 * impact, urgency, priority, knowledge hint and SLA targets.  The due dates
 * and next_check stored there are caches for the timer's indexed query;
 * the API recomputes the clocks from the journal on every read.
 *
 * All writes run as writer jobs (inside the writer's transaction); reads
 * from other threads hold store_lock().
 */
#ifndef TOCSIN_DESK_H
#define TOCSIN_DESK_H

#include <jansson.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "../common/db.h"
#include "helpdesk.h"
#include "sla.h"

struct store;
struct writer;
struct inventory;
struct metrics_out;
struct escalate;
struct dispatch;

extern const struct db_schema desk_schema;

#define DESK_NAME_MAX 128
#define DESK_SYSTEM_ACTOR "tocsin"

enum desk_stmt {
	DESK_ROW_INSERT,
	DESK_ROW_GET,
	DESK_ROW_UPDATE,
	DESK_TEXTS,
	DESK_CORE_GET,
	DESK_OPEN_SCAN,
	DESK_CACHE_UPDATE,
	DESK_CHANGES,
	DESK_SET_STATUS,
	DESK_DUE,
	DESK_HISTORY,
	DESK_OUTBOX_ADD,
	DESK_OUTBOX_CANCEL,
	DESK_OUTBOX_DUE,
	DESK_OUTBOX_SENT,
	DESK_OUTBOX_RETRY,
	DESK_OUTBOX_COUNT,
	DESK_OUTBOX_NEXT,
	DESK_OUTBOX_PURGE,
	DESK_STMT_COUNT,
};

/* The helpdesk's fields of one ticket (a row of hd_tickets). */
struct desk_row {
	int64_t ticket_id;
	char customer[DESK_NAME_MAX], contract[DESK_NAME_MAX];
	char category[DESK_NAME_MAX], queue[DESK_NAME_MAX];
	char assignee[DESK_NAME_MAX];
	char impact[DESK_NAME_MAX], urgency[DESK_NAME_MAX], priority[DESK_NAME_MAX];
	int level;		 /* 1..3 */
	bool priority_manual;	 /* set by hand: impact/urgency no longer change it */
	int64_t response_target; /* business ms, -1: none */
	int64_t resolution_target;
	int64_t response_due, resolution_due; /* caches, -1: unknown */
	unsigned warned, overdue; /* bits: DESK_CLOCK_RESPONSE, _RESOLUTION */
	int64_t merged_into;	  /* 0: not merged */
	int64_t next_status_at;	  /* next customer status update, -1: none */
	int64_t next_check;	  /* when the timer looks again, -1: never */
};

#define DESK_CLOCK_RESPONSE 1u
#define DESK_CLOCK_RESOLUTION 2u

/* What the monitoring side knows of a ticket (tickets joined with hosts). */
struct desk_core {
	int64_t id, host_id, parent_id;
	char host[256], check[64], item[512];
	char title[512], summary[1024], state[16];
	enum ticket_status status;
	int64_t opened_ms, resolved_ms; /* resolved_ms -1 when not */
	bool flapping;
};

struct desk_counters {
	atomic_uint_fast64_t queued, sent, failed, retried, cancelled;
};

struct desk {
	const struct helpdesk_config *hc;
	const struct inventory *inv;
	struct store *st;
	struct writer *writer;
	sqlite3_stmt *stmt[DESK_STMT_COUNT];
	struct desk_counters counters;
	struct escalate *timer;
	struct dispatch *dispatch;
	struct desk *counts_from; /* /metrics counts the outbox here (a reader's desk) */
};

/*
 * Prepare the statements and register the listeners (routing, then
 * notifications) on st; call before the writer starts.  0 or -errno.
 */
int desk_open(const struct helpdesk_config *hc, const struct inventory *inv,
	      struct store *st, struct desk **ret);
/* Start the timer and the sender over w (after the writer started). */
int desk_start(struct desk *d, struct writer *w);
/* Stop the threads (before the writer stops); NULL is fine. */
void desk_stop(struct desk *d);
void desk_free(struct desk *d);

/* Rows.  get: 1 found, 0 none, -errno.  hint and description are
 * written once, when the ticket opens. */
int desk_row_insert(struct desk *d, const struct desk_row *row,
		    const char *hint, const char *description);
int desk_row_get(struct desk *d, int64_t ticket_id, struct desk_row *ret);
int desk_row_update(struct desk *d, const struct desk_row *row);
/* 1 and *ret, 0 when there is no such ticket, -errno. */
int desk_core_get(struct desk *d, int64_t ticket_id, struct desk_core *ret);
/* Set tickets.status (and resolved_at).  -EEXIST: another ticket is open
 * for the same problem. */
int desk_set_status(struct desk *d, int64_t ticket_id,
		    enum ticket_status status, int64_t now_ms);

/* The contract of a row, or NULL. */
const struct contract *desk_contract(struct desk *d, const struct desk_row *row);
/* The priority index of row's priority name, or the lowest. */
int desk_priority_index(struct desk *d, const struct desk_row *row);
/* The targets for row's priority on its contract, from opened_ms. */
void desk_targets(struct desk *d, struct desk_row *row, int64_t opened_ms);

/* Both clocks of a ticket at now_ms, from its journal. */
int desk_sla(struct desk *d, const struct desk_core *core,
	     const struct desk_row *row, int64_t now_ms, struct sla_state *ret);
/*
 * Recompute row's due caches and next_check at now_ms and write the row.
 * Called after every change to the ticket, inside the writer's job.
 */
int desk_refresh(struct desk *d, const struct desk_core *core,
		 struct desk_row *row, int64_t now_ms);

/*
 * Recompute the clocks of every ticket not closed, in one scan of the
 * tickets and their journals, and (with write) store the due caches and
 * next_check.  Run as a writer job at start, so that a changed calendar
 * or a clock that moved while the server was down is taken into account;
 * *ret_n is how many tickets it looked at.
 */
int desk_recompute_all(struct desk *d, int64_t now_ms, bool write, size_t *ret_n);

/*
 * Announce a change of the ticket in core to the store's listeners
 * (store_ticket_changed()), from actor at at_ms.
 */
int desk_announce(struct desk *d, const struct desk_core *core, int kind,
		  int64_t at_ms, const char *actor, const char *field,
		  const char *old_value, const char *new_value, const char *text);

/* Add the helpdesk fields (and, with full, clocks and history) to t. */
int desk_ticket_json(struct desk *d, int64_t ticket_id, json_t *t, bool full,
		     int64_t now_ms);
/* The same for every ticket of a list from store_tickets_list(). */
int desk_tickets_json(struct desk *d, json_t *list, int64_t now_ms);

/* Previous tickets for the same host and check (JSON array). */
int desk_history(struct desk *d, const struct desk_core *core, json_t **ret);
/* The hint and description stored at the opening (malloc'ed or NULL). */
int desk_texts(struct desk *d, int64_t ticket_id, char **ret_hint,
	       char **ret_description);

/* The outbox.  add: 1 queued, 0 when idem_key was queued before. */
struct desk_outbox_item {
	int64_t ticket_id;
	const char *channel; /* "mail" or "webhook" */
	const char *target;  /* recipients (comma-separated) or webhook name */
	const char *subject; /* NULL for webhooks */
	const char *body;
	const char *idem_key;
	const char *cancel_key; /* NULL, or the problem key a reopen cancels */
	int64_t created_ms, not_before_ms;
};
int desk_outbox_add(struct desk *d, const struct desk_outbox_item *item);
/* Cancel what is pending under cancel_key; the count cancelled. */
int desk_outbox_cancel(struct desk *d, const char *cancel_key);

/* The metrics source: outbox queued, sent, failed, retried. */
void desk_metrics(void *arg, struct metrics_out *out);
/*
 * From now on desk_metrics() counts d's outbox with reader, a desk opened
 * over a store_open_reader() store, so that a scrape does not wait for
 * the writer.
 */
void desk_count_on(struct desk *d, struct desk *reader);

#endif
