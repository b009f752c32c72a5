/*
 * The open ticket of every problem key, in memory, so that an event's
 * lookup costs no SQL (store_ticket_find_open()).  Owned by the store and
 * used under store_lock() (the writer thread, or a reader holding it).
 *
 * The cache never disagrees with the database, whoever writes the
 * tickets table:
 *
 *  - it is loaded whole when the store opens (every ticket that is not
 *    resolved or closed), so a key it does not hold has no open ticket;
 *  - every change of a tickets row on the store's connection is seen by
 *    SQLite's update hook (store.c) and marks that ticket stale; stale
 *    tickets are read again by id before the next lookup;
 *  - the one change made on the hot path, an occurrence, is mirrored in
 *    place instead (ticket_cache_mirror_begin()/_end());
 *  - every ticket whose entry changed during a writer job is remembered,
 *    and read again after the job's savepoint is rolled back; a rolled
 *    back transaction (a failed commit) reloads everything.
 *
 * With more open tickets than TICKET_CACHE_MAX the cache turns itself
 * off and every lookup asks the database again (correct, slower).  It
 * assumes the collector is the only writer of its database file, as it
 * is (another process writing tickets behind its back would not be seen
 * until a restart).  SQLite does not call the update hook for a DELETE
 * without WHERE (the truncate optimisation); only ticket retention
 * deletes tickets, closed ones, one by id (retention.h).
 */
#ifndef TOCSIN_TICKET_CACHE_H
#define TOCSIN_TICKET_CACHE_H

#include <stdbool.h>
#include <stdint.h>

#include "store.h"

#define TICKET_CACHE_MAX 262144

struct ticket_cache;

/* Load every open ticket of st and follow its transactions. */
int ticket_cache_open(struct store *st, struct ticket_cache **ret);
void ticket_cache_close(struct ticket_cache *tc);

/*
 * 1 and *ret when the key has an open ticket, 0 when it has none,
 * -ENOENT when the cache cannot say (switched off: ask the database), or
 * another -errno when reading stale tickets failed.
 */
int ticket_cache_find(struct ticket_cache *tc, int64_t host_id,
		      const char *check, const char *item,
		      struct store_ticket *ret);

/* From the store's update hook: the tickets row ticket_id changed. */
void ticket_cache_row_changed(struct ticket_cache *tc, int64_t ticket_id);

/*
 * Around store_ticket_occurrence()'s UPDATE of t: the hook ignores that
 * row meanwhile, and _end() applies the same change to the cached entry
 * (ok: the UPDATE succeeded) or marks it stale.
 */
void ticket_cache_mirror_begin(struct ticket_cache *tc, int64_t ticket_id);
void ticket_cache_mirror_end(struct ticket_cache *tc,
			     const struct store_ticket *t,
			     const struct store_event *ev, bool ok);

/* For tests and metrics: entries held, reloads done, and whether it is on. */
struct ticket_cache_stats {
	uint64_t entries;
	uint64_t reloads;  /* full loads, the first included */
	uint64_t refreshes; /* tickets read again by id */
	bool enabled;
};
void ticket_cache_get_stats(const struct ticket_cache *tc,
			    struct ticket_cache_stats *ret);

#endif
