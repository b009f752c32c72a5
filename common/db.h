/*
 * SQLite plumbing both daemons share: versioned schema migrations per
 * module, statement stepping and error mapping.
 *
 * A module (the collector's core tables, the agent's outbox, a check's
 * samples) owns an ordered list of SQL steps; db_migrate() applies the ones
 * a database has not seen yet, one transaction per step, and records the
 * count in schema_versions.  Never edit a released step: append a new one.
 */
#ifndef TOCSIN_DB_H
#define TOCSIN_DB_H

#include <sqlite3.h>
#include <stddef.h>

struct db_schema {
	const char *module;
	const char *const *steps;
	size_t nsteps;
};

/*
 * Bring module schema up to date.  0, -EPROTO when the database was
 * written by a newer program (more steps than we know), or -errno.
 */
int db_migrate(sqlite3 *db, const struct db_schema *schema);

/* Prepare a statement that is kept for the connection's lifetime. */
int db_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **ret);
/* Step a statement that returns no rows (or ignores them), then reset it. */
int db_step_done(sqlite3_stmt *s);
/* Bind text that outlives the statement's next step (NULL binds NULL). */
void db_bind_text(sqlite3_stmt *s, int i, const char *text);
/* SQLITE_BUSY -> -EBUSY, SQLITE_FULL -> -ENOSPC, ... */
int sqlite_to_errno(int rc);

#endif
