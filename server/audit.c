#include "audit.h"

#include <stdlib.h>

#include "../common/util.h"
#include "store.h"

static const char *const audit_steps[] = {
	/* 1: one row per security-relevant action */
	"CREATE TABLE audit ("
	"  id INTEGER PRIMARY KEY,"
	"  at INTEGER NOT NULL,"
	"  actor TEXT NOT NULL,"
	"  action TEXT NOT NULL,"
	"  target TEXT,"
	"  detail TEXT);",
};

const struct db_schema audit_schema = {
	.module = "audit",
	.steps = audit_steps,
	.nsteps = ARRAY_SIZE(audit_steps),
};

struct audit {
	sqlite3_stmt *add;
	sqlite3_stmt *list;
};

int audit_open(struct store *st, struct audit **ret)
{
	struct audit *a = xcalloc(1, sizeof(*a));
	int r;

	r = store_prepare(st,
			  "INSERT INTO audit(at, actor, action, target, detail)"
			  " VALUES (?1, ?2, ?3, ?4, ?5)",
			  &a->add);
	if (r == 0)
		r = store_prepare(st,
				  "SELECT id, at, actor, action, target, detail"
				  " FROM audit ORDER BY id DESC LIMIT ?1 OFFSET ?2",
				  &a->list);
	if (r < 0) {
		audit_close(a);
		return r;
	}
	*ret = a;
	return 0;
}

void audit_close(struct audit *a)
{
	if (a == NULL)
		return;
	sqlite3_finalize(a->add);
	sqlite3_finalize(a->list);
	free(a);
}

int audit_add(struct audit *a, int64_t at_ms, const char *actor,
	      const char *action, const char *target, const char *detail)
{
	sqlite3_bind_int64(a->add, 1, at_ms);
	db_bind_text(a->add, 2, actor);
	db_bind_text(a->add, 3, action);
	db_bind_text(a->add, 4, target);
	db_bind_text(a->add, 5, detail);
	return db_step_done(a->add);
}

static json_t *text_or_null(sqlite3_stmt *s, int col)
{
	const char *t = (const char *)sqlite3_column_text(s, col);

	return t ? json_string(t) : json_null();
}

int audit_list(struct audit *a, int64_t limit, int64_t offset, json_t **ret)
{
	sqlite3_stmt *s = a->list;
	json_t *list = json_array();
	char at[TIME_RFC3339_LEN];
	int rc;

	sqlite3_bind_int64(s, 1, limit);
	sqlite3_bind_int64(s, 2, offset);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		time_format_rfc3339(sqlite3_column_int64(s, 1), at);
		json_array_append_new(
			list, json_pack("{s:I, s:s, s:o, s:o, s:o, s:o}", "id",
					(json_int_t)sqlite3_column_int64(s, 0),
					"at", at, "actor", text_or_null(s, 2),
					"action", text_or_null(s, 3), "target",
					text_or_null(s, 4), "detail",
					text_or_null(s, 5)));
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc != SQLITE_DONE) {
		json_decref(list);
		return sqlite_to_errno(rc);
	}
	*ret = list;
	return 0;
}
