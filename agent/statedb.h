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

#define STATEDB_FILE "agent.db"

/*
 * Create state_dir (mode 0700) when missing and open its agent.db in WAL
 * mode with synchronous=FULL: a row written there is on disk when the call
 * returns, which the outbox's promise rests on.  0 or -errno.
 */
int statedb_open(const char *state_dir, sqlite3 **ret_db);
void statedb_close(sqlite3 *db);

#endif
