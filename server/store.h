/*
 * The collector's SQLite store: schema migrations, prepared statements,
 * transactions.
 *
 * Every statement is prepared once at store_open() and reused; nothing
 * ever builds SQL from input.  The store is not thread-safe by itself: the
 * HTTP layer serialises access with store_lock()/store_unlock().
 */
#ifndef TOCSIN_STORE_H
#define TOCSIN_STORE_H

#include <jansson.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../checks/check.h"
#include "../common/db.h"

struct store;

/*
 * Modules with tables of their own list their struct db_schema in store.c
 * (schemas[]) and keep their prepared statements, made with
 * store_prepare(), in their own context.
 */

int store_open(const char *path, struct store **ret_store);
void store_close(struct store *st);

/*
 * A second connection to the same database, for the read side of the
 * API and /metrics: with WAL, its reads run beside the writer's
 * transactions instead of waiting for store_lock() of the writer's store
 * (which the writer holds for a whole group commit, fsync included).  It
 * is a struct store like the other, so every module's read functions and
 * contexts (dedup_configure(), desk_open(), hostclaim_open(), ...) work
 * on it unchanged; but it refuses writes (query_only), its migrations are
 * the writer's store's (open that first), and store_lock() on it also
 * opens one read transaction, so that all read under one lock is one
 * snapshot of committed data.  API threads share it under its own lock.
 */
int store_open_reader(const char *path, struct store **ret_store);
/*
 * The journal mode ("wal") and synchronous level ("full") the writer's
 * connection really has, read back at store_open(); strings owned by st.
 */
void store_durability(const struct store *st, const char **ret_journal_mode,
		      const char **ret_synchronous);
bool store_is_reader(const struct store *st);

void store_lock(struct store *st);
void store_unlock(struct store *st);

/*
 * Transactions.  Only the writer (writer.c) begins and commits; the jobs
 * it runs may nest under savepoints.
 */
int store_begin(struct store *st);
int store_commit(struct store *st);
void store_rollback(struct store *st);
int store_savepoint(struct store *st);
int store_release_savepoint(struct store *st);
void store_rollback_to_savepoint(struct store *st);
/* SQLite's message for the last failure, for the log. */
const char *store_errmsg(struct store *st);

/*
 * Transaction hooks, for modules that keep in-memory copies of what is
 * in the database (the open-ticket cache, the lifecycle's key set): told
 * when a writer job's savepoint is released or rolled back, and when the
 * transaction commits or rolls back, so that a copy never disagrees with
 * the rows after a failure.  A hook must not fail; it may not begin or
 * end transactions.  Register before the writer starts, or in a writer
 * job (as a reload does); up to 8 at once.
 */
enum store_txn_event {
	STORE_JOB_DONE,	       /* a job's savepoint was released */
	STORE_JOB_UNDONE,      /* ... rolled back: that job's changes are gone */
	STORE_TXN_COMMITTED,
	STORE_TXN_ROLLED_BACK, /* everything since store_begin() is gone */
};
typedef void (*store_txn_hook)(void *arg, enum store_txn_event event);
int store_txn_hook_add(struct store *st, store_txn_hook fn, void *arg);
/* Take a hook back (a module replaced by a reload); unknown ones are fine. */
void store_txn_hook_remove(struct store *st, store_txn_hook fn, void *arg);

/* For modules with their own statements. */
sqlite3 *store_db(struct store *st);
int store_prepare(struct store *st, const char *sql, sqlite3_stmt **ret);

/*
 * A module's context for this store (its prepared statements, its view of
 * the configuration), so that writer jobs, which only get the store, find
 * it again: store_attach() hands ctx over, and free_fn(ctx) runs at
 * store_close() before the database closes (or at once when the store
 * already holds STORE_ATTACH_MAX contexts: then -ENOSPC).  module is a
 * static name ("dedup"); attaching under a name already in use replaces
 * (and frees) the old context.  Only the writer thread, or code holding
 * store_lock(), may use what is attached.
 */
#define STORE_ATTACH_MAX 16
int store_attach(struct store *st, const char *module, void *ctx,
		 void (*free_fn)(void *ctx));
/* The context attached under module, or NULL. */
void *store_attached(struct store *st, const char *module);

/*
 * Ticket changes, for the modules that act on them (routing, SLA clocks,
 * notifications, webhooks, metrics).  Whoever changes a ticket (dedup, a
 * technician's action, a timer) calls store_ticket_changed() inside the
 * same transaction, and every listener runs there too: what a listener
 * writes (a queued mail, a due date) commits or rolls back with the change
 * itself, so nothing is announced that did not happen, and nothing that
 * happened goes unannounced.  Kinds may be appended, never renumbered.
 */
enum ticket_change_kind {
	TICKET_OPENED,	  /* a new ticket for a problem key */
	TICKET_UPDATED,	  /* the check state of an open ticket changed */
	TICKET_RECOVERED, /* the problem went away; awaits a technician's review */
	TICKET_RESOLVED,
	TICKET_REOPENED,  /* a recovered or resolved ticket came back */
	TICKET_CLOSED,
	TICKET_ACTION,	  /* a technician's action: status, assignee, comment, ... */
};

struct ticket_change {
	enum ticket_change_kind kind;
	int64_t ticket_id;
	int64_t at_ms;
	const char *actor;	/* "tocsin" for the system itself */
	const char *host;	/* the problem key; NULL where not known */
	const char *check;
	const char *item;
	enum check_state state; /* the check state after the change */
	const char *summary;	/* the latest summary, or the action's text */
	const char *field;	/* TICKET_ACTION: what changed ("status", ...) */
	const char *old_value;
	const char *new_value;
	int64_t parent_id;	/* > 0: a child attached to a parent's ticket
				 * (a host behind a dead router); listeners
				 * that notify people stay quiet for children */
	bool flapping;		/* the problem is flapping: notify once, not per change */
};

/*
 * A listener returns 0, or -errno to fail (and roll back) the change.
 * Register them all before the writer starts; the store keeps up to 16.
 */
typedef int (*ticket_listener)(void *arg, struct store *st,
			       const struct ticket_change *change);
int store_listen(struct store *st, ticket_listener fn, void *arg);
int store_ticket_changed(struct store *st, const struct ticket_change *c);
const char *ticket_change_name(enum ticket_change_kind kind);

/* Host row by name, created on first sight; last_seen is bumped. */
int store_host_touch(struct store *st, const char *name, int64_t now_ms,
		     int64_t *ret_host_id);

struct store_event {
	const uint8_t *id; /* 16 bytes */
	int64_t host_id;
	const char *check;
	const char *item;
	enum check_state state;
	const char *summary;
	const char *metrics;
	const char *context;
	int64_t observed_ms;
	int64_t received_ms;
	int64_t ticket_id; /* stored with the event; 0: none (yet) */
};

/* 1 when stored, 0 when an event with this id was stored before. */
int store_event_insert(struct store *st, const struct store_event *ev);
/*
 * Store evs[0..n) at once (a batch: many rows per statement); the count
 * stored, and ret_stored[i] false for an event whose id was stored before
 * or appears earlier in evs.  -errno: roll back.
 */
int store_events_insert(struct store *st, const struct store_event *evs,
			size_t n, bool *ret_stored);
int store_event_link(struct store *st, const uint8_t *id, int64_t ticket_id);

struct store_ticket {
	int64_t id;
	enum check_state state;
	enum check_state worst_state;
	int64_t occurrences;
	int64_t first_seen_ms;
	int64_t last_seen_ms;
	char status[16];     /* new, acknowledged, ..., recovered, resolved, closed */
	int64_t parent_id;   /* 0: a top-level ticket */
	bool flapping;
	int64_t resolved_ms; /* 0 while open */
};

/* What struct store_ticket holds, in the order store_ticket_row() reads it. */
#define STORE_TICKET_COLUMNS                                              \
	"id, state, worst_state, occurrences, first_seen, last_seen, "     \
	"status, coalesce(parent_id, 0), flapping, coalesce(resolved_at, 0)"
/* Read STORE_TICKET_COLUMNS from column col of s on. */
void store_ticket_row(sqlite3_stmt *s, int col, struct store_ticket *ret);

/*
 * 1 and *ret when the key has an open ticket, 0 when not.  Answered from
 * memory (ticket_cache.h), so the writer may ask for every event.
 */
int store_ticket_find_open(struct store *st, int64_t host_id,
			   const char *check, const char *item,
			   struct store_ticket *ret);
int store_ticket_open(struct store *st, int64_t host_id, const char *check,
		      const char *item, const char *title,
		      const struct store_event *ev, int64_t *ret_ticket_id);
int store_ticket_occurrence(struct store *st, const struct store_ticket *t,
			    const struct store_event *ev);
int store_ticket_resolve(struct store *st, int64_t ticket_id,
			 int64_t resolved_ms);

/*
 * For the alert lifecycle (dedup.c, topology.c).  store_ticket_lookup()
 * reads any ticket by id (-ENOENT); the others change one ticket row and
 * leave the journal and the announcement to the caller.
 */
int store_ticket_lookup(struct store *st, int64_t ticket_id,
			struct store_ticket *ret);
/* Status recovered, state ok: the problem went away, awaiting review. */
int store_ticket_recover(struct store *st, int64_t ticket_id);
/* A recovered or resolved ticket is open again with status. */
int store_ticket_reopen(struct store *st, int64_t ticket_id,
			const char *status);
/* Attach to parent_id's ticket, or detach with 0. */
int store_ticket_set_parent(struct store *st, int64_t ticket_id,
			    int64_t parent_id);
int store_ticket_set_flapping(struct store *st, int64_t ticket_id,
			      bool flapping);
/* A ticket opened for a confirmed problem counts what led to it. */
int store_ticket_set_history(struct store *st, int64_t ticket_id,
			     int64_t occurrences, int64_t first_seen_ms);

int store_journal_add(struct store *st, int64_t ticket_id, int64_t at_ms,
		      const char *actor, const char *action,
		      const char *old_value, const char *new_value,
		      const char *text);

enum store_ticket_filter {
	STORE_TICKETS_OPEN,
	STORE_TICKETS_RESOLVED,
	STORE_TICKETS_ALL,
};

/*
 * A JSON array of ticket summaries, newest first, each with the number of
 * its children (children_count).  Children attached to a parent's ticket
 * (parent_id set: a host behind a dead router) are left out; the second
 * form lists them too.
 */
int store_tickets_list(struct store *st, enum store_ticket_filter filter,
		       int64_t limit, int64_t offset, json_t **ret);
int store_tickets_list_with_children(struct store *st,
				     enum store_ticket_filter filter,
				     int64_t limit, int64_t offset,
				     json_t **ret);
/* A time as the API shows it: "2026-11-22T10:00:00.000Z". */
json_t *store_json_time(int64_t ms);

/* The ticket with its latest occurrences and its journal; -ENOENT. */
int store_ticket_get(struct store *st, int64_t id, int64_t max_occurrences,
		     json_t **ret);

#endif
