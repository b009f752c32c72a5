#include "hostclaim.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "store.h"

static const char *const hostclaim_steps[] = {
	/* 1: claims of host names, and administrators' approvals */
	"CREATE TABLE host_claims ("
	"  host TEXT PRIMARY KEY,"
	"  customer TEXT NOT NULL,"
	"  claimed_at INTEGER NOT NULL,"
	"  claimed_by TEXT NOT NULL) WITHOUT ROWID;"
	/* Hosts enrolled before claims existed belong to their credential's customer. */
	"INSERT INTO host_claims(host, customer, claimed_at, claimed_by)"
	"  SELECT host, customer, min(created_at), 'migration' FROM credentials"
	"  WHERE revoked_at IS NULL GROUP BY host;"
	"CREATE TABLE enrollment_approvals ("
	"  id INTEGER PRIMARY KEY,"
	"  host TEXT NOT NULL,"
	"  customer TEXT," /* NULL: the host's own customer */
	"  created_at INTEGER NOT NULL,"
	"  created_by TEXT NOT NULL,"
	"  expires_at INTEGER NOT NULL,"
	"  used_at INTEGER,"
	"  credential_id INTEGER);"
	"CREATE INDEX enrollment_approvals_open ON enrollment_approvals(host)"
	"  WHERE used_at IS NULL;",
};

const struct db_schema hostclaim_schema = {
	.module = "hostclaim",
	.steps = hostclaim_steps,
	.nsteps = ARRAY_SIZE(hostclaim_steps),
};

enum stmt {
	STMT_OWNER,
	STMT_CLAIM,
	STMT_LAST_SEEN,
	STMT_APPROVAL_FIND,
	STMT_APPROVAL_USE,
	STMT_APPROVAL_ADD,
	STMT_APPROVAL_LIST,
	STMT_COUNT,
};

static const char *const stmt_sql[STMT_COUNT] = {
	[STMT_OWNER] = "SELECT customer, claimed_at FROM host_claims WHERE host = ?1",
	[STMT_CLAIM] =
		"INSERT INTO host_claims(host, customer, claimed_at, claimed_by)"
		" VALUES (?1, ?2, ?3, ?4) ON CONFLICT(host) DO UPDATE SET"
		" customer = ?2, claimed_at = ?3, claimed_by = ?4"
		" WHERE customer != ?2",
	[STMT_LAST_SEEN] = "SELECT last_seen FROM hosts WHERE name = ?1",
	/* One naming the customer first: it was meant for this enrollment. */
	[STMT_APPROVAL_FIND] =
		"SELECT id FROM enrollment_approvals WHERE host = ?1"
		" AND used_at IS NULL AND expires_at > ?3"
		" AND (customer = ?2 OR (customer IS NULL AND NOT ?4))"
		" ORDER BY customer IS NULL, id LIMIT 1",
	[STMT_APPROVAL_USE] =
		"UPDATE enrollment_approvals SET used_at = ?2, credential_id = ?3"
		" WHERE id = ?1 AND used_at IS NULL",
	[STMT_APPROVAL_ADD] =
		"INSERT INTO enrollment_approvals(host, customer, created_at,"
		" created_by, expires_at) VALUES (?1, ?2, ?3, ?4, ?5)",
	[STMT_APPROVAL_LIST] =
		"SELECT id, host, customer, created_at, created_by, expires_at,"
		" used_at, credential_id FROM enrollment_approvals"
		" ORDER BY id DESC LIMIT 1000",
};

struct hostclaim {
	sqlite3_stmt *stmt[STMT_COUNT];
};

int hostclaim_open(struct store *st, struct hostclaim **ret)
{
	struct hostclaim *hc = xcalloc(1, sizeof(*hc));
	int r = 0;

	for (int i = 0; r == 0 && i < STMT_COUNT; i++)
		r = store_prepare(st, stmt_sql[i], &hc->stmt[i]);
	if (r < 0) {
		hostclaim_close(hc);
		return r;
	}
	*ret = hc;
	return 0;
}

void hostclaim_close(struct hostclaim *hc)
{
	if (hc == NULL)
		return;
	for (int i = 0; i < STMT_COUNT; i++)
		sqlite3_finalize(hc->stmt[i]);
	free(hc);
}

/* Reset s after its one row (or none); 1 when there was a row, 0, -errno. */
static int finish_row(sqlite3_stmt *s, int rc)
{
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : sqlite_to_errno(rc);
}

int hostclaim_owner(struct hostclaim *hc, const char *host, char *customer,
		    size_t size, int64_t *ret_since_ms)
{
	sqlite3_stmt *s = hc->stmt[STMT_OWNER];
	int rc;

	db_bind_text(s, 1, host);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		const char *c = (const char *)sqlite3_column_text(s, 0);

		strlcpy_safe(customer, c ? c : "", size);
		*ret_since_ms = sqlite3_column_int64(s, 1);
	}
	return finish_row(s, rc);
}

int hostclaim_claim(struct hostclaim *hc, const char *host,
		    const char *customer, int64_t now_ms, const char *actor)
{
	sqlite3_stmt *s = hc->stmt[STMT_CLAIM];

	db_bind_text(s, 1, host);
	db_bind_text(s, 2, customer);
	sqlite3_bind_int64(s, 3, now_ms);
	db_bind_text(s, 4, actor);
	return db_step_done(s);
}

int hostclaim_last_seen(struct hostclaim *hc, const char *host,
			int64_t *ret_ms)
{
	sqlite3_stmt *s = hc->stmt[STMT_LAST_SEEN];
	int rc;

	db_bind_text(s, 1, host);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*ret_ms = sqlite3_column_int64(s, 0);
	return finish_row(s, rc);
}

int hostclaim_find_approval(struct hostclaim *hc, const char *host,
			    const char *customer, bool for_customer,
			    int64_t now_ms, int64_t *ret_id)
{
	sqlite3_stmt *s = hc->stmt[STMT_APPROVAL_FIND];
	int rc;

	db_bind_text(s, 1, host);
	db_bind_text(s, 2, customer);
	sqlite3_bind_int64(s, 3, now_ms);
	sqlite3_bind_int(s, 4, for_customer);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*ret_id = sqlite3_column_int64(s, 0);
	return finish_row(s, rc);
}

int hostclaim_use_approval(struct hostclaim *hc, int64_t id, int64_t now_ms,
			   int64_t credential_id)
{
	sqlite3_stmt *s = hc->stmt[STMT_APPROVAL_USE];

	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, now_ms);
	sqlite3_bind_int64(s, 3, credential_id);
	return db_step_done(s);
}

int hostclaim_approve(struct hostclaim *hc, const char *host,
		      const char *customer, int64_t now_ms, int64_t expires_ms,
		      const char *actor, int64_t *ret_id)
{
	sqlite3_stmt *s = hc->stmt[STMT_APPROVAL_ADD];
	int r;

	db_bind_text(s, 1, host);
	db_bind_text(s, 2, customer);
	sqlite3_bind_int64(s, 3, now_ms);
	db_bind_text(s, 4, actor);
	sqlite3_bind_int64(s, 5, expires_ms);
	r = db_step_done(s);
	if (r == 0)
		*ret_id = sqlite3_last_insert_rowid(sqlite3_db_handle(s));
	return r;
}

static json_t *time_or_null(sqlite3_stmt *s, int col)
{
	return sqlite3_column_type(s, col) == SQLITE_NULL
		       ? json_null()
		       : store_json_time(sqlite3_column_int64(s, col));
}

static json_t *text_or_null(sqlite3_stmt *s, int col)
{
	const char *t = (const char *)sqlite3_column_text(s, col);

	return t ? json_string(t) : json_null();
}

static const char *approval_state(sqlite3_stmt *s, int64_t now_ms)
{
	if (sqlite3_column_type(s, 6) != SQLITE_NULL)
		return "used";
	return now_ms >= sqlite3_column_int64(s, 5) ? "expired" : "pending";
}

int hostclaim_approvals_json(struct hostclaim *hc, int64_t now_ms,
			     json_t **ret)
{
	sqlite3_stmt *s = hc->stmt[STMT_APPROVAL_LIST];
	json_t *list = json_array();
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		json_array_append_new(
			list,
			json_pack("{s:I, s:o, s:o, s:s, s:o, s:o, s:o, s:o, s:o}",
				  "id", (json_int_t)sqlite3_column_int64(s, 0),
				  "host", text_or_null(s, 1),
				  "customer", text_or_null(s, 2),
				  "state", approval_state(s, now_ms),
				  "created_at", time_or_null(s, 3),
				  "created_by", text_or_null(s, 4),
				  "expires_at", time_or_null(s, 5),
				  "used_at", time_or_null(s, 6),
				  "credential_id",
				  sqlite3_column_type(s, 7) == SQLITE_NULL
					  ? json_null()
					  : json_integer(sqlite3_column_int64(s, 7))));
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		json_decref(list);
		return sqlite_to_errno(rc);
	}
	*ret = list;
	return 0;
}
