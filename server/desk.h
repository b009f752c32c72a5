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
	DESK_OUTBOX_SENT,
	DESK_OUTBOX_RETRY,
	DESK_OUTBOX_PURGE,
	DESK_OUTBOX_PENDING,
	DESK_OUTBOX_LEAST,
	DESK_OUTBOX_DROP,
	DESK_OUTBOX_DUE_MAIL,
	DESK_OUTBOX_DUE_HOOK,
	DESK_OUTBOX_NEXT_MAIL,
	DESK_OUTBOX_NEXT_HOOK,
	DESK_OUTBOX_TARGET_DUE,
	DESK_OUTBOX_DEFER,
	DESK_OUTBOX_LANES,
	DESK_OUTBOX_FAIL_UNSENDABLE,
	DESK_OUTBOX_CREATE_STATE,
	DESK_EXTERNAL_GET,
	DESK_EXTERNAL_SET,
	DESK_LAST_RESOLUTION,
	DESK_NEXT_DUE,
	DESK_CHECK_FAILED,
	DESK_CHECK_OK,
	DESK_OUTBOX_CANCEL_PROBE,
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
	bool urgency_manual;	 /* set by hand: a worse check state no longer raises it */
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

/*
 * What the monitoring side knows of a ticket (tickets joined with hosts).
 * The texts are owned copies of whatever length the store holds (never
 * cut: a cut check name or item would no longer match its problem, a cut
 * summary could end inside a UTF-8 character); desk_core_clear() frees
 * them.  A zeroed struct is empty and may be cleared.
 */
struct desk_core {
	int64_t id, host_id, parent_id;
	char *host, *check, *item, *title, *summary;
	char state[16];
	enum ticket_status status;
	int64_t opened_ms, resolved_ms; /* resolved_ms -1 when not */
	bool flapping;
};

/* Since start; pending mirrors the outbox's pending count (see desk.c). */
struct desk_counters {
	atomic_uint_fast64_t queued, sent, failed, retried, cancelled;
	atomic_uint_fast64_t dropped;	  /* the outbox was full (notify.max_pending) */
	atomic_uint_fast64_t unrendered;  /* a notification that could not be built */
	atomic_uint_fast64_t rendered;	  /* mails and payloads built (to be queued) */
	atomic_uint_fast64_t digests;	  /* mails sent as one digest of several */
	atomic_uint_fast64_t timer_jobs;  /* escalation jobs run (only when due) */
	atomic_uint_fast64_t orphaned;	  /* open tickets of a contract no longer
					   * configured, at the last recompute */
	atomic_int_fast64_t pending;
};

/* Kinds of trouble desk_warn_limited() reports. */
enum desk_trouble { DESK_TROUBLE_RENDER, DESK_TROUBLE_FULL, DESK_TROUBLE_TIMER,
		    DESK_TROUBLE_COUNT };

struct desk {
	/*
	 * The helpdesk's configuration and the inventory whose customers
	 * point into its contracts, swapped by desk_reconfigure() at a
	 * SIGHUP.  Writer jobs and store_lock() holders see one pair
	 * throughout; the timer reads hc (atomically) at its loop's top.
	 */
	_Atomic(const struct helpdesk_config *) hc;
	const struct inventory *inv;
	/*
	 * hc->notify, for the writer thread (the listener rendering and
	 * queueing, the outbox's bound, the timer's jobs): swapped with hc.
	 * The sender's lanes have their own (dispatch_reconfigure()).
	 */
	const struct notify_config *notify;
	bool mail_reaches; /* notify_mail_reaches() of hc and inv, swapped with them */
	struct store *st;
	struct writer *writer;
	sqlite3_stmt *stmt[DESK_STMT_COUNT];
	struct desk_counters counters;
	struct escalate *timer;
	struct dispatch *dispatch;
	int64_t warned_ms[DESK_TROUBLE_COUNT]; /* writer thread: last warnings */
};

/*
 * Prepare the statements and register the listeners (routing, then
 * notifications) on st; call before the writer starts.  0 or -errno.
 */
int desk_open(const struct helpdesk_config *hc, const struct inventory *inv,
	      struct store *st, struct desk **ret);
/*
 * SIGHUP: use hc and inv (of one loaded configuration, kept until exit)
 * from now on.  For the writer's desk, call it inside a writer job; for
 * a read desk, under store_lock() of its store.  New notifications are
 * rendered with hc->notify from then on; the sender takes it up with
 * dispatch_reconfigure().
 */
void desk_reconfigure(struct desk *d, const struct helpdesk_config *hc,
		      const struct inventory *inv);
/* Start the timer and the sender over w (after the writer started). */
int desk_start(struct desk *d, struct writer *w);
/* Stop the threads (before the writer stops); NULL is fine. */
void desk_stop(struct desk *d);
void desk_free(struct desk *d);

/* Rows.  get: 1 found, 0 none, -errno.  hint and description are
 * written once, when the ticket opens; insert leaves a row that is there
 * as it is. */
int desk_row_insert(struct desk *d, const struct desk_row *row,
		    const char *hint, const char *description);
int desk_row_get(struct desk *d, int64_t ticket_id, struct desk_row *ret);
int desk_row_update(struct desk *d, const struct desk_row *row);
/* 1 and *ret (to be cleared), 0 when there is no such ticket, -errno;
 * *ret is untouched unless 1. */
int desk_core_get(struct desk *d, int64_t ticket_id, struct desk_core *ret);
void desk_core_clear(struct desk_core *c);
/* Set tickets.status (and resolved_at).  -EEXIST: another ticket is open
 * for the same problem. */
int desk_set_status(struct desk *d, int64_t ticket_id,
		    enum ticket_status status, int64_t now_ms);

/* The contract of a row, or NULL (none, or no longer configured). */
const struct contract *desk_contract(struct desk *d, const struct desk_row *row);
/* The calendar row's clocks run on (helpdesk_clock_for()); row has a contract. */
void desk_clock(struct desk *d, const struct desk_row *row,
		struct helpdesk_clock *ret);
/* The priority index of row's priority name, or the lowest. */
int desk_priority_index(struct desk *d, const struct desk_row *row);
/* The targets for row's priority on its contract, from opened_ms. */
void desk_targets(struct desk *d, struct desk_row *row, int64_t opened_ms);

/*
 * After new targets (a priority change): clear the warned and overdue
 * bits that the new clocks in sla no longer justify.  Bits the new
 * targets would newly justify are left to the timer, which journals and
 * mails them (desk_refresh() plans it for now).
 */
void desk_reset_flags(struct desk *d, struct desk_row *row,
		      const struct sla_state *sla);

/* Both clocks of a ticket at now_ms, from its journal. */
int desk_sla(struct desk *d, const struct desk_core *core,
	     const struct desk_row *row, int64_t now_ms, struct sla_state *ret);
/* Recompute row's due caches and next_check at now_ms (no write). */
int desk_plan(struct desk *d, const struct desk_core *core, struct desk_row *row,
	      int64_t now_ms);
/*
 * desk_plan() and write the row.  Called after every change to the
 * ticket, inside the writer's job.
 */
int desk_refresh(struct desk *d, const struct desk_core *core,
		 struct desk_row *row, int64_t now_ms);

/*
 * Open tickets whose contract is no longer configured, grouped by that
 * contract and by the contract whose calendar their clocks use instead.
 */
struct desk_orphan {
	char contract[DESK_NAME_MAX]; /* the contract gone */
	char instead[DESK_NAME_MAX];  /* whose calendar is used; "": 24x7 */
	size_t n;
};

struct desk_orphans {
	struct desk_orphan *v;
	size_t n, cap;
	size_t tickets; /* the sum of the groups' n */
};

void desk_orphans_clear(struct desk_orphans *o);
/*
 * The warning for the log about the next contract gone from *pos on
 * (start at 0): how many open tickets keep its targets, and which
 * calendar their clocks use instead.  The caller frees it; NULL after
 * the last.
 */
char *desk_orphans_next_warning(const struct desk_orphans *o, size_t *pos);

/*
 * Recompute the clocks of every ticket not closed, in one scan of the
 * tickets and their journals, and (with write) store the due caches and
 * next_check.  Run as a writer job at start, so that a changed calendar
 * or a clock that moved while the server was down is taken into account;
 * *ret_n is how many tickets it looked at.  With ret_orphans, also the
 * open tickets of contracts no longer configured (clear it with
 * desk_orphans_clear()); their count is kept for the metrics either way.
 */
int desk_recompute_all(struct desk *d, int64_t now_ms, bool write, size_t *ret_n,
		       struct desk_orphans *ret_orphans);

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

/*
 * The outbox.  Rows wait in lanes (dispatch.h): all mail in one, each
 * webhook in its own.  Importance decides what goes when the outbox is
 * full (notify.max_pending): the least important pending row, the oldest
 * among equals, is dropped for one at least as important (fresher news
 * of the same weight wins), and a row less important than everything
 * pending is not queued.  Either way the dropped row stays as 'failed'
 * with the reason, is counted and logged; the writer never waits.
 */
enum desk_importance {
	DESK_IMPORTANCE_LOW = 1,    /* status updates, minor webhook events */
	DESK_IMPORTANCE_NORMAL = 2, /* reminders, webhook updates */
	DESK_IMPORTANCE_HIGH = 3,   /* new and reopened tickets, assignments, solved */
	DESK_IMPORTANCE_URGENT = 4, /* breaches; questions and replies to customers */
};

struct desk_outbox_item {
	int64_t ticket_id;
	const char *channel; /* "mail" or "webhook" */
	const char *target;  /* recipients (comma-separated) or webhook name */
	const char *subject; /* NULL for webhooks */
	const char *body;
	const char *idem_key;
	const char *cancel_key; /* NULL, or the problem key a reopen cancels */
	const char *kind;	/* the template or event ("opened"); for
				 * Zammad "create" or "update" */
	int importance;		/* enum desk_importance */
	int64_t created_ms, not_before_ms;
};
/* 1 queued, 0 when idem_key was queued before or the row was dropped. */
int desk_outbox_add(struct desk *d, const struct desk_outbox_item *item);
/*
 * A notification that could not be built (why says what): recorded as a
 * failed row so that it is visible and counted, never failing the change.
 */
int desk_outbox_unrendered(struct desk *d, const struct desk_outbox_item *item,
			   const char *why);
/* Cancel what is pending under cancel_key; the count cancelled. */
int desk_outbox_cancel(struct desk *d, const char *cancel_key);
/* The pending count as the outbox holds it in this transaction. */
int desk_outbox_pending(struct desk *d, int64_t *ret);

/*
 * Warn at most once a minute per kind of trouble (listeners and jobs run
 * on the writer thread and must not flood the log).
 */
void desk_warn_limited(struct desk *d, enum desk_trouble kind, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The metrics source: outbox pending (no query: a mirror), and outcomes. */
void desk_metrics(void *arg, struct metrics_out *out);

#endif
