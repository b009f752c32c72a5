#include "statedb.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "../common/db.h"
#include "../common/util.h"

static const char *const wait_steps[] = {
	/* 1: at most one row: when the next delivery may be tried. */
	"CREATE TABLE delivery_wait ("
	"  id INTEGER PRIMARY KEY CHECK (id = 1),"
	"  collectors TEXT NOT NULL,"
	"  not_before_ms INTEGER NOT NULL,"
	"  delay_ms INTEGER NOT NULL,"
	"  retry_after INTEGER NOT NULL)",
};

static const struct db_schema wait_schema = {
	.module = "delivery_wait",
	.steps = wait_steps,
	.nsteps = ARRAY_SIZE(wait_steps),
};

int statedb_open(const char *state_dir, sqlite3 **ret_db)
{
	sqlite3 *db = NULL;
	char *path;
	int rc;

	if (mkdir(state_dir, 0700) < 0 && errno != EEXIST)
		return -errno;
	path = xasprintf("%s/%s", state_dir, STATEDB_FILE);
	rc = sqlite3_open_v2(path, &db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				     SQLITE_OPEN_NOMUTEX,
			     NULL);
	free(path);
	if (rc != SQLITE_OK)
		goto fail;
	sqlite3_busy_timeout(db, 5000);
	rc = sqlite3_exec(db,
			  "PRAGMA journal_mode = WAL;"
			  "PRAGMA synchronous = FULL;",
			  NULL, NULL, NULL);
	if (rc != SQLITE_OK)
		goto fail;
	*ret_db = db;
	return 0;
fail:
	sqlite3_close(db);
	return sqlite_to_errno(rc);
}

void statedb_close(sqlite3 *db)
{
	sqlite3_close(db);
}

int statedb_wait_migrate(sqlite3 *db)
{
	return db_migrate(db, &wait_schema);
}

int statedb_wait_load(sqlite3 *db, const char *collectors,
		      struct statedb_wait *ret)
{
	sqlite3_stmt *st = NULL;
	int r, rc;

	rc = sqlite3_prepare_v2(db,
				"SELECT not_before_ms, delay_ms, retry_after"
				"  FROM delivery_wait WHERE collectors = ?",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return sqlite_to_errno(rc);
	sqlite3_bind_text(st, 1, collectors, -1, SQLITE_STATIC);
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW) {
		*ret = (struct statedb_wait){
			.not_before_ms = sqlite3_column_int64(st, 0),
			.delay_ms = sqlite3_column_int64(st, 1),
			.retry_after = sqlite3_column_int(st, 2) != 0,
		};
		r = 0;
	} else {
		r = rc == SQLITE_DONE ? -ENOENT : sqlite_to_errno(rc);
	}
	sqlite3_finalize(st);
	return r;
}

int statedb_wait_save(sqlite3 *db, const char *collectors,
		      const struct statedb_wait *w)
{
	sqlite3_stmt *st = NULL;
	int rc;

	rc = sqlite3_prepare_v2(db,
				w == NULL
					? "DELETE FROM delivery_wait"
					: "INSERT OR REPLACE INTO delivery_wait"
					  "  (id, collectors, not_before_ms,"
					  "   delay_ms, retry_after)"
					  "  VALUES (1, ?, ?, ?, ?)",
				-1, &st, NULL);
	if (rc != SQLITE_OK)
		return sqlite_to_errno(rc);
	if (w != NULL) {
		sqlite3_bind_text(st, 1, collectors, -1, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, w->not_before_ms);
		sqlite3_bind_int64(st, 3, w->delay_ms);
		sqlite3_bind_int(st, 4, w->retry_after);
	}
	rc = sqlite3_step(st);
	sqlite3_finalize(st);
	return rc == SQLITE_DONE ? 0 : sqlite_to_errno(rc);
}
