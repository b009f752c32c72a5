/*
 * The agent's own SQLite file, state_dir/agent.db: what must survive a
 * restart (the outbox of undelivered events, the disk check's usage
 * samples, ...).  One connection serves every module, each with its own
 * tables and migrations (common/db.h), so the agent pays for one page
 * cache, not one per check.
 */
#ifndef TOCSIN_STATEDB_H
#define TOCSIN_STATEDB_H

#include <sqlite3.h>
#include <stdbool.h>
#include <stdint.h>

#define STATEDB_FILE "agent.db"

/*
 * Create state_dir (mode 0700) when missing and open its agent.db in WAL
 * mode with synchronous=FULL: a row written there is on disk when the call
 * returns, which the outbox's promise rests on.  0 or -errno.
 */
int statedb_open(const char *state_dir, sqlite3 **ret_db);
void statedb_close(sqlite3 *db);

/*
 * When delivery may be tried again, kept across restarts so that an
 * agent restarting in a loop does not post to collectors that asked it
 * to wait (Retry-After) or were failing (the backoff).  Wall clock: the
 * monotonic one starts over with the host; the reader caps what is left.
 */
struct statedb_wait {
	int64_t not_before_ms; /* wall clock */
	int64_t delay_ms;      /* the backoff's last delay */
	bool retry_after;      /* the collector said so (else the backoff) */
};

/*
 * Create or bring up to date the wait's table; delivery_new() does, with
 * the outbox's, before the wait is read or written.  0, -EPROTO when the
 * database was written by a newer agent, or -errno.
 */
int statedb_wait_migrate(sqlite3 *db);
/*
 * The wait recorded for the collectors (their URLs as one string: a wait
 * for others does not apply).  0, -ENOENT when none is recorded for them,
 * or -errno.
 */
int statedb_wait_load(sqlite3 *db, const char *collectors,
		      struct statedb_wait *ret);
/* Record w for the collectors (NULL: forget the wait).  0 or -errno. */
int statedb_wait_save(sqlite3 *db, const char *collectors,
		      const struct statedb_wait *w);

#endif
