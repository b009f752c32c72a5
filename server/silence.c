#include "silence.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/config.h"
#include "../common/util.h"
#include "lifecycle.h"
#include "store.h"
#include "writer.h"

static const char *const silence_steps[] = {
	/* 1: silences; removal ends them early (ends_at = removed_at) */
	"CREATE TABLE silences ("
	"  id INTEGER PRIMARY KEY,"
	"  host TEXT NOT NULL,"
	"  check_name TEXT,"
	"  item TEXT,"
	"  starts_at INTEGER NOT NULL,"
	"  ends_at INTEGER NOT NULL,"
	"  author TEXT NOT NULL,"
	"  comment TEXT NOT NULL,"
	"  created_at INTEGER NOT NULL,"
	"  removed_at INTEGER,"
	"  removed_by TEXT);"
	"CREATE INDEX silences_ends ON silences(ends_at);",
};

const struct db_schema silence_schema = {
	.module = "silences",
	.steps = silence_steps,
	.nsteps = ARRAY_SIZE(silence_steps),
};

enum {
	SS_INSERT,
	SS_REMOVE,
	SS_EXISTS,
	SS_PURGE,
	SS_ACTIVE,
	SS_HOLDS,
	SS_LIST,
	SS_GET,
	SS_COUNT_LIVE,
	SS_COUNT,
};

#define SILENCE_COLUMNS                                                  \
	"id, host, check_name, item, starts_at, ends_at, author, comment, " \
	"created_at, removed_at, removed_by"

static const char *const silence_sql[SS_COUNT] = {
	[SS_INSERT] = "INSERT INTO silences(host, check_name, item, starts_at,"
		      " ends_at, author, comment, created_at)"
		      " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
	[SS_REMOVE] = "UPDATE silences SET removed_at = ?2, removed_by = ?3,"
		      " ends_at = ?2 WHERE id = ?1 AND removed_at IS NULL"
		      " AND ends_at > ?2",
	[SS_EXISTS] = "SELECT 1 FROM silences WHERE id = ?1",
	[SS_PURGE] = "DELETE FROM silences WHERE ends_at < ?1",
	/* Active ones: the index narrows to those not ended yet. */
	[SS_ACTIVE] = "SELECT id, host, check_name, item, ends_at FROM silences"
		      " WHERE ends_at > ?1 AND starts_at <= ?1"
		      " ORDER BY ends_at DESC",
	[SS_HOLDS] = "SELECT host, check_name, item, ends_at FROM silences"
		     " WHERE id = ?1 AND ends_at > ?2 AND starts_at <= ?2",
	[SS_LIST] = "SELECT " SILENCE_COLUMNS " FROM silences"
		    " WHERE ends_at > ?1 ORDER BY id DESC",
	[SS_GET] = "SELECT " SILENCE_COLUMNS " FROM silences WHERE id = ?1",
	[SS_COUNT_LIVE] = "SELECT count(*), coalesce(sum(starts_at > ?1), 0)"
			  " FROM silences WHERE ends_at > ?1",
};

struct silences {
	sqlite3_stmt *stmt[SS_COUNT];
};

void silence_close(struct silences *s)
{
	if (s == NULL)
		return;
	for (int i = 0; i < SS_COUNT; i++)
		sqlite3_finalize(s->stmt[i]);
	free(s);
}

int silence_open(struct store *st, struct silences **ret)
{
	struct silences *s = xcalloc(1, sizeof(*s));

	for (int i = 0; i < SS_COUNT; i++) {
		int r = store_prepare(st, silence_sql[i], &s->stmt[i]);

		if (r < 0) {
			silence_close(s);
			return r;
		}
	}
	*ret = s;
	return 0;
}

void silence_clear(struct silence *s)
{
	free(s->host);
	free(s->check);
	free(s->item);
	free(s->author);
	free(s->comment);
	*s = (struct silence){ 0 };
}

/*
 * An optional string member of at most max bytes: 0 absent, 1 and a copy
 * in *ret, -EINVAL with a message.
 */
static int get_string(json_t *body, const char *key, size_t max,
		      char **ret, char *err, size_t errlen)
{
	const json_t *v = json_object_get(body, key);
	const char *text;

	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v)) {
		snprintf(err, errlen, "%s: expected a string", key);
		return -EINVAL;
	}
	text = json_string_value(v);
	if (strlen(text) > max) {
		snprintf(err, errlen, "%s: longer than %zu characters", key, max);
		return -EINVAL;
	}
	if (text[0] == '\0') {
		snprintf(err, errlen, "%s: must not be empty",
			 key);
		return -EINVAL;
	}
	*ret = xstrdup(text);
	return 1;
}

static int get_time(json_t *body, const char *key, int64_t *ret,
		    char *err, size_t errlen)
{
	char *text = NULL;
	int r = get_string(body, key, 64, &text, err, errlen);

	if (r <= 0)
		return r;
	if (time_parse_rfc3339(text, ret) < 0) {
		snprintf(err, errlen,
			 "%s: '%s' is not an RFC 3339 time such as 2026-11-22T10:00:00Z",
			 key, text);
		r = -EINVAL;
	}
	free(text);
	return r;
}

static int check_keys(json_t *body, char *err, size_t errlen)
{
	static const char *const known[] = { "host",	 "check", "item",
					     "start",	 "end",	  "duration",
					     "comment", NULL };
	const char *key;
	json_t *v;

	json_object_foreach(body, key, v) {
		size_t i;

		for (i = 0; known[i] && strcmp(known[i], key) != 0; i++)
			;
		if (known[i] == NULL) {
			snprintf(err, errlen,
				 "unknown key '%.64s' (expected host, check, item, start, end or duration, comment)",
				 key);
			return -EINVAL;
		}
	}
	return 0;
}

/* start, end and duration into a time span; the rules of the brief. */
static int parse_span(json_t *body, int64_t now_ms,
		      const struct silence_config *conf, struct silence *out,
		      char *err, size_t errlen)
{
	char *duration = NULL, a[TIME_RFC3339_LEN], b[TIME_RFC3339_LEN];
	char max[32];
	int64_t start = now_ms, end = 0, len = 0;
	int has_end, r;

	if (get_time(body, "start", &start, err, errlen) < 0)
		return -EINVAL;
	has_end = get_time(body, "end", &end, err, errlen);
	if (has_end < 0 ||
	    get_string(body, "duration", 32, &duration, err, errlen) < 0)
		return -EINVAL;
	r = 0;
	if (has_end && duration) {
		snprintf(err, errlen, "give end or duration, not both");
		r = -EINVAL;
	} else if (!has_end && duration == NULL) {
		snprintf(err, errlen,
			 "end or duration: required (for example \"duration\": \"2h\")");
		r = -EINVAL;
	} else if (duration && (parse_duration_ms(duration, &len) < 0 || len <= 0)) {
		snprintf(err, errlen,
			 "duration: '%s' is not a duration such as 30m, 2h or 7d",
			 duration);
		r = -EINVAL;
	}
	free(duration);
	if (r < 0)
		return r;
	if (!has_end)
		end = start + len;
	time_format_rfc3339(start, a);
	time_format_rfc3339(end, b);
	format_duration(conf->max_duration_ms / 1000, max, sizeof(max));
	if (end <= start) {
		snprintf(err, errlen, "end %s is not after start %s", b, a);
		return -EINVAL;
	}
	if (end <= now_ms) {
		snprintf(err, errlen,
			 "end %s is in the past: the silence would never apply", b);
		return -EINVAL;
	}
	if (start > now_ms + SILENCE_START_AHEAD_MAX_MS) {
		snprintf(err, errlen, "start %s is more than 365 days ahead", a);
		return -EINVAL;
	}
	if (end - start > conf->max_duration_ms) {
		snprintf(err, errlen,
			 "from %s to %s is longer than the longest silence allowed (%s, silences.max_duration)",
			 a, b, max);
		return -EINVAL;
	}
	out->starts_ms = start;
	out->ends_ms = end;
	return 0;
}

int silence_parse_request(json_t *body, int64_t now_ms,
			  const struct silence_config *conf,
			  struct silence *ret, char *err, size_t errlen)
{
	struct silence s = { 0 };

	if (!json_is_object(body)) {
		snprintf(err, errlen, "expected a JSON object with host, end or duration, and comment");
		return -EINVAL;
	}
	if (check_keys(body, err, errlen) < 0 ||
	    get_string(body, "host", SILENCE_HOST_MAX, &s.host, err, errlen) < 0 ||
	    get_string(body, "check", SILENCE_CHECK_MAX, &s.check, err, errlen) < 0 ||
	    get_string(body, "item", SILENCE_ITEM_MAX, &s.item, err, errlen) < 0 ||
	    get_string(body, "comment", SILENCE_COMMENT_MAX, &s.comment, err,
		       errlen) < 0)
		goto fail;
	if (s.host == NULL) {
		snprintf(err, errlen,
			 "host: required (a host name or a shell pattern such as web*)");
		goto fail;
	}
	if (s.comment == NULL) {
		snprintf(err, errlen,
			 "comment: required (say why: a change number, the maintenance planned, ...)");
		goto fail;
	}
	if (parse_span(body, now_ms, conf, &s, err, errlen) < 0)
		goto fail;
	*ret = s;
	return 0;
fail:
	silence_clear(&s);
	return -EINVAL;
}

static int count_live(struct silences *s, int64_t now_ms, int64_t *ret_live,
		      int64_t *ret_pending)
{
	sqlite3_stmt *q = s->stmt[SS_COUNT_LIVE];
	int rc;

	sqlite3_bind_int64(q, 1, now_ms);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		*ret_live = sqlite3_column_int64(q, 0);
		*ret_pending = sqlite3_column_int64(q, 1);
	}
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	return rc == SQLITE_ROW ? 0 : sqlite_to_errno(rc);
}

int silence_counts(struct silences *s, int64_t now_ms, int64_t *ret_active,
		   int64_t *ret_pending)
{
	int64_t live = 0, pending = 0;
	int r = count_live(s, now_ms, &live, &pending);

	if (r < 0)
		return r;
	*ret_active = live - pending;
	*ret_pending = pending;
	return 0;
}

int silence_create(struct silences *s, const struct silence *in,
		   int64_t now_ms, const struct silence_config *conf,
		   int64_t *ret_id)
{
	sqlite3_stmt *q = s->stmt[SS_INSERT];
	int64_t live = 0, pending = 0;
	int r;

	r = count_live(s, now_ms, &live, &pending);
	if (r < 0)
		return r;
	if (live >= conf->max_silences)
		return writer_refuse(-EDQUOT);
	db_bind_text(q, 1, in->host);
	db_bind_text(q, 2, in->check);
	db_bind_text(q, 3, in->item);
	sqlite3_bind_int64(q, 4, in->starts_ms);
	sqlite3_bind_int64(q, 5, in->ends_ms);
	db_bind_text(q, 6, in->author);
	db_bind_text(q, 7, in->comment);
	sqlite3_bind_int64(q, 8, now_ms);
	r = db_step_done(q);
	if (r < 0)
		return r;
	*ret_id = sqlite3_last_insert_rowid(sqlite3_db_handle(q));
	return 0;
}

static int silence_exists(struct silences *s, int64_t id)
{
	sqlite3_stmt *q = s->stmt[SS_EXISTS];
	int rc;

	sqlite3_bind_int64(q, 1, id);
	rc = sqlite3_step(q);
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	if (rc == SQLITE_ROW)
		return 1;
	return rc == SQLITE_DONE ? 0 : sqlite_to_errno(rc);
}

int silence_remove(struct silences *s, int64_t id, const char *actor,
		   int64_t now_ms)
{
	sqlite3_stmt *q = s->stmt[SS_REMOVE];
	int r;

	sqlite3_bind_int64(q, 1, id);
	sqlite3_bind_int64(q, 2, now_ms);
	db_bind_text(q, 3, actor);
	r = db_step_done(q);
	if (r < 0)
		return r;
	if (sqlite3_changes(sqlite3_db_handle(q)) > 0)
		return 0;
	r = silence_exists(s, id);
	if (r < 0)
		return r;
	return writer_refuse(r ? -EALREADY : -ENOENT);
}

int silence_purge(struct silences *s, int64_t before_ms)
{
	sqlite3_stmt *q = s->stmt[SS_PURGE];

	sqlite3_bind_int64(q, 1, before_ms);
	return db_step_done(q);
}

static bool glob_fits(const char *pattern, const char *text)
{
	return pattern == NULL || fnmatch(pattern, text, 0) == 0;
}

bool silence_matches(const struct silence_scope *scope, const char *host,
		     const char *check, const char *item)
{
	return scope->host != NULL && glob_fits(scope->host, host) &&
	       glob_fits(scope->check, check) && glob_fits(scope->item, item);
}

int silence_find(struct silences *s, const char *host, const char *check,
		 const char *item, int64_t now_ms, int64_t *ret_id,
		 int64_t *ret_ends_ms)
{
	sqlite3_stmt *q = s->stmt[SS_ACTIVE];
	int rc, found = 0;

	sqlite3_bind_int64(q, 1, now_ms);
	/* Longest-lasting first: the first that fits holds the problem longest. */
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		const struct silence_scope scope = {
			.host = (const char *)sqlite3_column_text(q, 1),
			.check = (const char *)sqlite3_column_text(q, 2),
			.item = (const char *)sqlite3_column_text(q, 3),
		};

		if (silence_matches(&scope, host, check, item)) {
			*ret_id = sqlite3_column_int64(q, 0);
			*ret_ends_ms = sqlite3_column_int64(q, 4);
			found = 1;
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	return rc == SQLITE_DONE ? found : sqlite_to_errno(rc);
}

int silence_holds(struct silences *s, int64_t id, const char *host,
		  const char *check, const char *item, int64_t now_ms,
		  int64_t *ret_ends_ms)
{
	sqlite3_stmt *q = s->stmt[SS_HOLDS];
	int rc, found = 0;

	sqlite3_bind_int64(q, 1, id);
	sqlite3_bind_int64(q, 2, now_ms);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW) {
		const struct silence_scope scope = {
			.host = (const char *)sqlite3_column_text(q, 0),
			.check = (const char *)sqlite3_column_text(q, 1),
			.item = (const char *)sqlite3_column_text(q, 2),
		};

		if (silence_matches(&scope, host, check, item)) {
			*ret_ends_ms = sqlite3_column_int64(q, 3);
			found = 1;
		}
		rc = SQLITE_DONE;
	}
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	return rc == SQLITE_DONE ? found : sqlite_to_errno(rc);
}

static const char *const filter_names[] = {
	[SILENCES_ALL] = "all",
	[SILENCES_ACTIVE] = "active",
	[SILENCES_PENDING] = "pending",
	[SILENCES_EXPIRED] = "expired",
};

int silence_filter_parse(const char *text, enum silence_filter *ret)
{
	for (size_t i = 0; i < ARRAY_SIZE(filter_names); i++) {
		if (strcmp(text, filter_names[i]) == 0) {
			*ret = (enum silence_filter)i;
			return 0;
		}
	}
	return -EINVAL;
}

static enum silence_filter state_at(int64_t starts, int64_t ends,
				    int64_t now_ms)
{
	if (ends <= now_ms)
		return SILENCES_EXPIRED;
	return starts > now_ms ? SILENCES_PENDING : SILENCES_ACTIVE;
}

static json_t *json_time_or_null(sqlite3_stmt *q, int col)
{
	if (sqlite3_column_type(q, col) == SQLITE_NULL)
		return json_null();
	return store_json_time(sqlite3_column_int64(q, col));
}

static json_t *json_text_or_null(sqlite3_stmt *q, int col)
{
	const char *text = (const char *)sqlite3_column_text(q, col);

	return text ? json_string(text) : json_null();
}

/* A row of SILENCE_COLUMNS as the API shows it. */
static json_t *silence_row_json(sqlite3_stmt *q, int64_t now_ms)
{
	int64_t starts = sqlite3_column_int64(q, 4);
	int64_t ends = sqlite3_column_int64(q, 5);

	return json_pack("{s:I, s:o, s:o, s:o, s:o, s:o, s:s, s:o, s:o, s:o, s:o, s:o}",
			 "id", (json_int_t)sqlite3_column_int64(q, 0),
			 "host", json_text_or_null(q, 1),
			 "check", json_text_or_null(q, 2),
			 "item", json_text_or_null(q, 3),
			 "starts_at", json_time_or_null(q, 4),
			 "ends_at", json_time_or_null(q, 5),
			 "state", filter_names[state_at(starts, ends, now_ms)],
			 "author", json_text_or_null(q, 6),
			 "comment", json_text_or_null(q, 7),
			 "created_at", json_time_or_null(q, 8),
			 "removed_at", json_time_or_null(q, 9),
			 "removed_by", json_text_or_null(q, 10));
}

int silence_list_json(struct silences *s, enum silence_filter filter,
		      int64_t now_ms, int64_t keep_expired_ms, int64_t limit,
		      json_t **ret)
{
	sqlite3_stmt *q = s->stmt[SS_LIST];
	json_t *list = json_array();
	int rc = SQLITE_DONE;

	sqlite3_bind_int64(q, 1, now_ms - keep_expired_ms);
	while ((int64_t)json_array_size(list) < limit &&
	       (rc = sqlite3_step(q)) == SQLITE_ROW) {
		enum silence_filter state = state_at(sqlite3_column_int64(q, 4),
						     sqlite3_column_int64(q, 5),
						     now_ms);

		if (filter == SILENCES_ALL || filter == state)
			json_array_append_new(list, silence_row_json(q, now_ms));
	}
	if ((int64_t)json_array_size(list) >= limit)
		rc = SQLITE_DONE;
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	if (rc != SQLITE_DONE) {
		json_decref(list);
		return sqlite_to_errno(rc);
	}
	*ret = list;
	return 0;
}

int silence_get_json(struct silences *s, int64_t id, int64_t now_ms,
		     json_t **ret)
{
	sqlite3_stmt *q = s->stmt[SS_GET];
	json_t *doc = NULL;
	int rc;

	sqlite3_bind_int64(q, 1, id);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW)
		doc = silence_row_json(q, now_ms);
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	if (doc == NULL)
		return rc == SQLITE_DONE ? -ENOENT : sqlite_to_errno(rc);
	*ret = doc;
	return 0;
}
