#include "db.h"

#include <errno.h>
#include <stdlib.h>

#include "util.h"

int sqlite_to_errno(int rc)
{
	switch (rc & 0xff) {
	case SQLITE_BUSY:
	case SQLITE_LOCKED:
		return -EBUSY;
	case SQLITE_NOMEM:
		return -ENOMEM;
	case SQLITE_FULL:
		return -ENOSPC;
	case SQLITE_READONLY:
	case SQLITE_PERM:
	case SQLITE_AUTH:
	case SQLITE_CANTOPEN:
		return -EACCES;
	case SQLITE_CONSTRAINT:
		return -EEXIST;
	default:
		return -EIO;
	}
}

/* The version of module recorded in the database, 0 when never migrated. */
static int schema_version(sqlite3 *db, const char *module, int *ret)
{
	sqlite3_stmt *s;
	int rc = sqlite3_prepare_v2(
		db, "SELECT version FROM schema_versions WHERE module = ?1", -1,
		&s, NULL);

	if (rc != SQLITE_OK)
		return sqlite_to_errno(rc);
	sqlite3_bind_text(s, 1, module, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	*ret = rc == SQLITE_ROW ? sqlite3_column_int(s, 0) : 0;
	sqlite3_finalize(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sqlite_to_errno(rc);
}

/* Run one step and record it, all in one transaction. */
static int migrate_step(sqlite3 *db, const struct db_schema *schema, int v)
{
	sqlite3_stmt *s = NULL;
	int rc;

	rc = sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		return sqlite_to_errno(rc);
	rc = sqlite3_exec(db, schema->steps[v], NULL, NULL, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(
			db,
			"INSERT INTO schema_versions(module, version) VALUES (?1, ?2)"
			" ON CONFLICT(module) DO UPDATE SET version = excluded.version",
			-1, &s, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(s, 1, schema->module, -1, SQLITE_STATIC);
		sqlite3_bind_int(s, 2, v + 1);
		rc = sqlite3_step(s) == SQLITE_DONE ? SQLITE_OK : sqlite3_errcode(db);
	}
	sqlite3_finalize(s);
	if (rc == SQLITE_OK)
		rc = sqlite3_exec(db, "COMMIT", NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
		return sqlite_to_errno(rc);
	}
	return 0;
}

int db_migrate(sqlite3 *db, const struct db_schema *schema)
{
	int version = 0, r;
	int rc = sqlite3_exec(db,
			      "CREATE TABLE IF NOT EXISTS schema_versions ("
			      " module TEXT PRIMARY KEY,"
			      " version INTEGER NOT NULL)",
			      NULL, NULL, NULL);

	if (rc != SQLITE_OK)
		return sqlite_to_errno(rc);
	r = schema_version(db, schema->module, &version);
	if (r < 0)
		return r;
	if (version > (int)schema->nsteps)
		return -EPROTO;
	for (int v = version; v < (int)schema->nsteps; v++) {
		r = migrate_step(db, schema, v);
		if (r < 0)
			return r;
	}
	return 0;
}

int db_prepare(sqlite3 *db, const char *sql, sqlite3_stmt **ret)
{
	int rc = sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, ret,
				    NULL);

	return rc == SQLITE_OK ? 0 : sqlite_to_errno(rc);
}

int db_step_done(sqlite3_stmt *s)
{
	int rc = sqlite3_step(s);

	while (rc == SQLITE_ROW)
		rc = sqlite3_step(s);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_DONE ? 0 : sqlite_to_errno(rc);
}

void db_bind_text(sqlite3_stmt *s, int i, const char *text)
{
	if (text == NULL)
		sqlite3_bind_null(s, i);
	else
		sqlite3_bind_text(s, i, text, -1, SQLITE_STATIC);
}
