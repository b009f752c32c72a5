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

struct store;

/*
 * A module's schema: SQL steps applied in order, once each.  Modules are
 * listed in store.c; a module keeps its own prepared statements (made
 * with store_prepare()) in its own context.
 */
struct store_schema {
	const char *module;
	const char *const *steps;
	size_t nsteps;
};

int store_open(const char *path, struct store **ret_store);
void store_close(struct store *st);

void store_lock(struct store *st);
void store_unlock(struct store *st);

int store_begin(struct store *st);
int store_commit(struct store *st);
void store_rollback(struct store *st);
/* SQLite's message for the last failure, for the log. */
const char *store_errmsg(struct store *st);

/* For modules with their own statements. */
sqlite3 *store_db(struct store *st);
int store_prepare(struct store *st, const char *sql, sqlite3_stmt **ret);
/* Step a statement that returns no rows, then reset it.  0 or -errno. */
int store_step_done(sqlite3_stmt *s);
/* Bind text that outlives the statement's next step (NULL binds NULL). */
void store_bind_text(sqlite3_stmt *s, int i, const char *text);
/* SQLITE_BUSY -> -EBUSY, SQLITE_FULL -> -ENOSPC, ... */
int sqlite_to_errno(int rc);

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
};

/* 1 when stored, 0 when an event with this id was stored before. */
int store_event_insert(struct store *st, const struct store_event *ev);
int store_event_link(struct store *st, const uint8_t *id, int64_t ticket_id);

struct store_ticket {
	int64_t id;
	enum check_state state;
	enum check_state worst_state;
	int64_t occurrences;
	int64_t first_seen_ms;
	int64_t last_seen_ms;
};

/* 1 and *ret when the key has an open ticket, 0 when not. */
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

int store_journal_add(struct store *st, int64_t ticket_id, int64_t at_ms,
		      const char *actor, const char *action,
		      const char *old_value, const char *new_value,
		      const char *text);

enum store_ticket_filter {
	STORE_TICKETS_OPEN,
	STORE_TICKETS_RESOLVED,
	STORE_TICKETS_ALL,
};

/* A JSON array of ticket summaries, newest first. */
int store_tickets_list(struct store *st, enum store_ticket_filter filter,
		       int64_t limit, int64_t offset, json_t **ret);
/* The ticket with its latest occurrences and its journal; -ENOENT. */
int store_ticket_get(struct store *st, int64_t id, int64_t max_occurrences,
		     json_t **ret);

#endif
