#include "statedb.h"

#include <errno.h>
#include <stdlib.h>
#include <sys/stat.h>

#include "../common/db.h"
#include "../common/util.h"

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
