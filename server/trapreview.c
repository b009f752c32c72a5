#include "trapreview.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "../common/util.h"
#include "api.h"
#include "store.h"

#define LIST_DEFAULT 100
#define LIST_MAX 1000

static const char *const trapreview_steps[] = {
	/* 1: traps from devices nobody configured */
	"CREATE TABLE trap_unknown ("
	"  id INTEGER PRIMARY KEY,"
	"  received_at INTEGER NOT NULL,"
	"  source TEXT NOT NULL,"
	"  version TEXT NOT NULL,"
	"  agent_addr TEXT,"
	"  engine_id TEXT,"
	"  user TEXT,"
	"  sys_name TEXT,"
	"  trap TEXT NOT NULL,"
	"  trap_oid TEXT NOT NULL,"
	"  varbinds TEXT NOT NULL);", /* JSON: {"ifIndex.7": "7", ...} */
	/* 2: the clocks of v3 sender engines, against replays (trapclock.h) */
	"CREATE TABLE trap_engine_clocks ("
	"  engine_id BLOB PRIMARY KEY,"
	"  boots INTEGER NOT NULL,"
	"  time INTEGER NOT NULL,"
	"  saved_at INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE INDEX trap_engine_clocks_saved ON trap_engine_clocks(saved_at);",
};

const struct db_schema trapreview_schema = {
	.module = "traps",
	.steps = trapreview_steps,
	.nsteps = ARRAY_SIZE(trapreview_steps),
};

struct trapreview {
	struct store *st;
	sqlite3_stmt *insert;
	sqlite3_stmt *trim;
};

void trapreview_row_clear(struct trapreview_row *row)
{
	free(row->source);
	free(row->version);
	free(row->agent_addr);
	free(row->engine_id);
	free(row->user);
	free(row->sys_name);
	free(row->trap);
	free(row->trap_oid);
	free(row->varbinds);
	memset(row, 0, sizeof(*row));
}

int trapreview_open(struct store *st, struct trapreview **ret)
{
	struct trapreview *r = xcalloc(1, sizeof(*r));
	int rc;

	r->st = st;
	rc = store_prepare(st,
			   "INSERT INTO trap_unknown(received_at, source, version,"
			   " agent_addr, engine_id, user, sys_name, trap, trap_oid,"
			   " varbinds) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
			   &r->insert);
	if (rc == 0)
		rc = store_prepare(st,
				   "DELETE FROM trap_unknown WHERE id <="
				   " (SELECT max(id) FROM trap_unknown) - ?1",
				   &r->trim);
	if (rc < 0) {
		trapreview_close(r);
		return rc;
	}
	*ret = r;
	return 0;
}

void trapreview_close(struct trapreview *r)
{
	if (r == NULL)
		return;
	sqlite3_finalize(r->insert);
	sqlite3_finalize(r->trim);
	free(r);
}

int trapreview_add(struct trapreview *r, const struct trapreview_row *row)
{
	sqlite3_stmt *s = r->insert;

	sqlite3_bind_int64(s, 1, row->received_ms);
	db_bind_text(s, 2, row->source);
	db_bind_text(s, 3, row->version);
	db_bind_text(s, 4, row->agent_addr);
	db_bind_text(s, 5, row->engine_id);
	db_bind_text(s, 6, row->user);
	db_bind_text(s, 7, row->sys_name);
	db_bind_text(s, 8, row->trap);
	db_bind_text(s, 9, row->trap_oid);
	db_bind_text(s, 10, row->varbinds);
	return db_step_done(s);
}

int trapreview_trim(struct trapreview *r, size_t keep, size_t *ret_dropped)
{
	int rc;

	sqlite3_bind_int64(r->trim, 1, (sqlite3_int64)keep);
	rc = db_step_done(r->trim);
	if (rc < 0)
		return rc;
	*ret_dropped = (size_t)sqlite3_changes(store_db(r->st));
	return 0;
}

static json_t *column_text(sqlite3_stmt *s, int col)
{
	const char *text = (const char *)sqlite3_column_text(s, col);

	return text ? json_string(text) : json_null();
}

static json_t *row_json(sqlite3_stmt *s)
{
	char at[TIME_RFC3339_LEN];
	const char *vb = (const char *)sqlite3_column_text(s, 10);
	json_t *varbinds = vb ? json_loads(vb, 0, NULL) : NULL;

	time_format_rfc3339(sqlite3_column_int64(s, 1), at);
	return json_pack("{s:I, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
			 "id", (json_int_t)sqlite3_column_int64(s, 0),
			 "received_at", at, "source", column_text(s, 2),
			 "version", column_text(s, 3), "agent_addr",
			 column_text(s, 4), "engine_id", column_text(s, 5),
			 "user", column_text(s, 6), "sys_name",
			 column_text(s, 7), "trap", column_text(s, 8),
			 "trap_oid", column_text(s, 9), "varbinds",
			 varbinds ? varbinds : json_object());
}

/* Newest first, at most limit rows, and how many are kept in all. */
static int list_unknown(struct store *st, int64_t limit, json_t **ret)
{
	sqlite3_stmt *s = NULL, *c = NULL;
	json_t *list = json_array();
	int64_t total = 0;
	int rc;

	rc = sqlite3_prepare_v2(store_db(st),
				"SELECT id, received_at, source, version, agent_addr,"
				" engine_id, user, sys_name, trap, trap_oid, varbinds"
				" FROM trap_unknown ORDER BY id DESC LIMIT ?1",
				-1, &s, NULL);
	if (rc == SQLITE_OK)
		rc = sqlite3_prepare_v2(store_db(st),
					"SELECT count(*) FROM trap_unknown", -1,
					&c, NULL);
	if (rc != SQLITE_OK)
		goto done;
	sqlite3_bind_int64(s, 1, limit);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		json_array_append_new(list, row_json(s));
	if (rc != SQLITE_DONE)
		goto done;
	rc = sqlite3_step(c);
	if (rc != SQLITE_ROW)
		goto done;
	total = sqlite3_column_int64(c, 0);
	rc = SQLITE_OK;
done:
	sqlite3_finalize(s);
	sqlite3_finalize(c);
	if (rc != SQLITE_OK) {
		json_decref(list);
		return sqlite_to_errno(rc);
	}
	*ret = json_pack("{s:o, s:I}", "traps", list, "kept", (json_int_t)total);
	return 0;
}

void trapreview_get_unknown(void *app, const struct http_request *req,
			    struct http_response *resp)
{
	struct api *api = app;
	const char *v = http_query(req, "limit");
	int64_t limit = LIST_DEFAULT;
	json_t *doc = NULL;
	int r;

	if (v != NULL && (parse_int64(v, &limit) < 0 || limit < 1 ||
			  limit > LIST_MAX)) {
		http_error(resp, MHD_HTTP_BAD_REQUEST,
			   "query parameter limit: '%s' is not an integer from 1 to %d",
			   v, LIST_MAX);
		return;
	}
	store_lock(api->store);
	r = list_unknown(api->store, limit, &doc);
	store_unlock(api->store);
	if (r < 0) {
		log_warnx("listing traps from unknown devices failed: %s (%s)",
			  strerror(-r), store_errmsg(api->store));
		http_error(resp, MHD_HTTP_SERVICE_UNAVAILABLE,
			   "listing traps failed: the store is unavailable, retry later");
		resp->retry_after_s = 5;
		return;
	}
	resp->json = doc;
}
