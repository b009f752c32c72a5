#include "credlist.h"

#include <stdlib.h>

#include "../common/db.h"
#include "../common/util.h"
#include "audit.h"
#include "hostclaim.h"
#include "store.h"

enum stmt {
	STMT_TOKEN_LIST,
	STMT_CREDENTIAL_LIST,
	STMT_COUNT,
};

static const char *const stmt_sql[STMT_COUNT] = {
	[STMT_TOKEN_LIST] =
		"SELECT id, customer, created_at, created_by, expires_at, max_uses,"
		" uses, revoked_at, revoked_by, hosts FROM enrollment_tokens"
		" ORDER BY id",
	[STMT_CREDENTIAL_LIST] =
		"SELECT id, host, customer, created_at, created_by,"
		" enrollment_token_id, replaced_by, expires_at, revoked_at,"
		" revoked_reason FROM credentials"
		" WHERE (?1 IS NULL OR customer = ?1) AND (?2 IS NULL OR host = ?2)"
		" ORDER BY id",
};

struct credlist {
	struct store *st;
	sqlite3_stmt *stmt[STMT_COUNT];
	struct hostclaim *claims;
	struct audit *audit;
};

int credlist_open(struct store *reader, struct credlist **ret)
{
	struct credlist *l = xcalloc(1, sizeof(*l));
	int r = 0;

	l->st = reader;
	for (int i = 0; r == 0 && i < STMT_COUNT; i++)
		r = store_prepare(reader, stmt_sql[i], &l->stmt[i]);
	if (r == 0)
		r = hostclaim_open(reader, &l->claims);
	if (r == 0)
		r = audit_open(reader, &l->audit);
	if (r < 0) {
		credlist_close(l);
		return r;
	}
	*ret = l;
	return 0;
}

void credlist_close(struct credlist *l)
{
	if (l == NULL)
		return;
	for (int i = 0; i < STMT_COUNT; i++)
		sqlite3_finalize(l->stmt[i]);
	hostclaim_close(l->claims);
	audit_close(l->audit);
	free(l);
}

static const char *column_text(sqlite3_stmt *s, int col)
{
	const char *t = (const char *)sqlite3_column_text(s, col);

	return t ? t : "";
}

static json_t *json_time_or_null(sqlite3_stmt *s, int col)
{
	char at[TIME_RFC3339_LEN];

	if (sqlite3_column_type(s, col) == SQLITE_NULL)
		return json_null();
	time_format_rfc3339(sqlite3_column_int64(s, col), at);
	return json_string(at);
}

static json_t *json_int_or_null(sqlite3_stmt *s, int col)
{
	return sqlite3_column_type(s, col) == SQLITE_NULL
		       ? json_null()
		       : json_integer(sqlite3_column_int64(s, col));
}

static const char *token_state(sqlite3_stmt *s, int64_t now_ms)
{
	if (sqlite3_column_type(s, 7) != SQLITE_NULL)
		return "revoked";
	if (now_ms >= sqlite3_column_int64(s, 4))
		return "expired";
	if (sqlite3_column_type(s, 5) != SQLITE_NULL &&
	    sqlite3_column_int64(s, 6) >= sqlite3_column_int64(s, 5))
		return "used_up";
	return "active";
}

int credlist_tokens(struct credlist *l, int64_t now_ms, json_t **ret)
{
	sqlite3_stmt *s = l->stmt[STMT_TOKEN_LIST];
	json_t *list = json_array();
	int rc;

	store_lock(l->st);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		json_array_append_new(
			list,
			json_pack("{s:I, s:s, s:s, s:o, s:s, s:o, s:o, s:I, s:o, s:o, s:o}",
				  "id", (json_int_t)sqlite3_column_int64(s, 0),
				  "customer", column_text(s, 1), "state",
				  token_state(s, now_ms), "created_at",
				  json_time_or_null(s, 2), "created_by",
				  column_text(s, 3), "expires_at",
				  json_time_or_null(s, 4), "max_uses",
				  json_int_or_null(s, 5), "uses",
				  (json_int_t)sqlite3_column_int64(s, 6),
				  "revoked_at", json_time_or_null(s, 7),
				  "revoked_by",
				  sqlite3_column_type(s, 8) == SQLITE_NULL
					  ? json_null()
					  : json_string(column_text(s, 8)),
				  "hosts",
				  sqlite3_column_type(s, 9) == SQLITE_NULL
					  ? json_null()
					  : json_string(column_text(s, 9))));
	sqlite3_reset(s);
	store_unlock(l->st);
	if (rc != SQLITE_DONE) {
		json_decref(list);
		return sqlite_to_errno(rc);
	}
	*ret = list;
	return 0;
}

static const char *credential_state(sqlite3_stmt *s, int64_t now_ms)
{
	if (sqlite3_column_type(s, 8) != SQLITE_NULL)
		return "revoked";
	if (sqlite3_column_type(s, 7) != SQLITE_NULL)
		return now_ms >= sqlite3_column_int64(s, 7) ? "expired"
							    : "rotating";
	return "active";
}

int credlist_credentials(struct credlist *l, const char *customer,
			 const char *host, int64_t now_ms, json_t **ret)
{
	sqlite3_stmt *s = l->stmt[STMT_CREDENTIAL_LIST];
	json_t *list = json_array();
	int rc;

	store_lock(l->st);
	db_bind_text(s, 1, customer);
	db_bind_text(s, 2, host);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		json_array_append_new(
			list,
			json_pack("{s:I, s:s, s:s, s:s, s:o, s:s, s:o, s:o, s:o, s:o, s:o}",
				  "id", (json_int_t)sqlite3_column_int64(s, 0),
				  "host", column_text(s, 1), "customer",
				  column_text(s, 2), "state",
				  credential_state(s, now_ms), "created_at",
				  json_time_or_null(s, 3), "created_by",
				  column_text(s, 4), "enrollment_token_id",
				  json_int_or_null(s, 5), "replaced_by",
				  json_int_or_null(s, 6), "expires_at",
				  json_time_or_null(s, 7), "revoked_at",
				  json_time_or_null(s, 8), "revoked_reason",
				  sqlite3_column_type(s, 9) == SQLITE_NULL
					  ? json_null()
					  : json_string(column_text(s, 9))));
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	store_unlock(l->st);
	if (rc != SQLITE_DONE) {
		json_decref(list);
		return sqlite_to_errno(rc);
	}
	*ret = list;
	return 0;
}

int credlist_approvals(struct credlist *l, int64_t now_ms, json_t **ret)
{
	int r;

	store_lock(l->st);
	r = hostclaim_approvals_json(l->claims, now_ms, ret);
	store_unlock(l->st);
	return r;
}

int credlist_audit(struct credlist *l, int64_t limit, int64_t offset,
		   json_t **ret)
{
	int r;

	store_lock(l->st);
	r = audit_list(l->audit, limit, offset, ret);
	store_unlock(l->st);
	return r;
}
