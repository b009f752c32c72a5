#include "outbox.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/db.h"
#include "../common/util.h"
#include "event.h"

#define JSON_FLAGS (JSON_COMPACT | JSON_REAL_PRECISION(15))
/* Room for {"host": ..., "events": [...], "agent": {...}} around events. */
#define BATCH_ENVELOPE 512
/* How often the age bound is looked at: a scan, so not on every enqueue. */
#define AGE_SCAN_EVERY_MS (60 * 1000)
/* Last states of keys not seen for this long are forgotten. */
#define LAST_STATE_KEEP_MS (30LL * 86400 * 1000)

static const char *const outbox_steps[] = {
	/* 1: queued events, the last state per key, drop accounting */
	"CREATE TABLE outbox_events ("
	"  seq INTEGER PRIMARY KEY AUTOINCREMENT," /* never reused: acks go by range */
	"  id TEXT NOT NULL,"
	"  check_name TEXT NOT NULL,"
	"  item TEXT NOT NULL,"
	"  repeat INTEGER NOT NULL," /* same state as the key's previous event */
	"  observed_at INTEGER NOT NULL,"
	"  size INTEGER NOT NULL,"
	"  body TEXT NOT NULL);"
	"CREATE INDEX outbox_events_key ON outbox_events(check_name, item, seq);"
	"CREATE INDEX outbox_events_repeats ON outbox_events(seq) WHERE repeat = 1;"
	"CREATE TABLE outbox_last_state ("
	"  check_name TEXT NOT NULL,"
	"  item TEXT NOT NULL,"
	"  state TEXT NOT NULL,"
	"  seen_at INTEGER NOT NULL,"
	"  PRIMARY KEY (check_name, item)) WITHOUT ROWID;"
	/* One row: counters kept with the events they describe. */
	"CREATE TABLE outbox_meta ("
	"  id INTEGER PRIMARY KEY CHECK (id = 1),"
	"  queued INTEGER NOT NULL DEFAULT 0,"
	"  bytes INTEGER NOT NULL DEFAULT 0,"
	"  dropped_repeats INTEGER NOT NULL DEFAULT 0,"
	"  dropped_changes INTEGER NOT NULL DEFAULT 0,"
	"  rejected INTEGER NOT NULL DEFAULT 0,"
	"  dropped_since INTEGER NOT NULL DEFAULT 0,"
	"  report_id TEXT,"	  /* the pending report event, sent first */
	"  report_body TEXT,"
	"  report_repeats INTEGER NOT NULL DEFAULT 0," /* counts it carries */
	"  report_changes INTEGER NOT NULL DEFAULT 0,"
	"  report_rejected INTEGER NOT NULL DEFAULT 0,"
	"  report_ok INTEGER NOT NULL DEFAULT 0,"	/* it is the all-clear */
	"  owe_ok INTEGER NOT NULL DEFAULT 0);"	/* a warning went out */
	"INSERT INTO outbox_meta(id) VALUES (1);",
};

static const struct db_schema outbox_schema = {
	.module = "outbox",
	.steps = outbox_steps,
	.nsteps = ARRAY_SIZE(outbox_steps),
};

enum stmt {
	ST_INSERT,
	ST_LAST_GET,
	ST_LAST_PUT,
	ST_LAST_PRUNE,
	ST_META_GET,
	ST_META_PUT,
	ST_HEAD,
	ST_RANGE_SIZE,
	ST_RANGE_DELETE,
	ST_DELETE_ONE,
	ST_OLDEST,
	ST_DROP_REPEATS,
	ST_DROP_SUPERSEDED,
	ST_DROP_ANY,
	ST_AGE_CANDIDATES,
	ST_COUNT
};

static const char *const stmt_sql[ST_COUNT] = {
	[ST_INSERT] = "INSERT INTO outbox_events(id, check_name, item, repeat,"
		      " observed_at, size, body) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[ST_LAST_GET] = "SELECT state FROM outbox_last_state"
			" WHERE check_name = ?1 AND item = ?2",
	[ST_LAST_PUT] = "INSERT INTO outbox_last_state(check_name, item, state, seen_at)"
			" VALUES (?1, ?2, ?3, ?4) ON CONFLICT(check_name, item)"
			" DO UPDATE SET state = excluded.state, seen_at = excluded.seen_at",
	[ST_LAST_PRUNE] = "DELETE FROM outbox_last_state WHERE seen_at < ?1",
	[ST_META_GET] = "SELECT queued, bytes, dropped_repeats, dropped_changes,"
			" rejected, dropped_since, report_id, report_body,"
			" report_repeats, report_changes, report_rejected,"
			" report_ok, owe_ok FROM outbox_meta WHERE id = 1",
	[ST_META_PUT] = "UPDATE outbox_meta SET queued = ?1, bytes = ?2,"
			" dropped_repeats = ?3, dropped_changes = ?4, rejected = ?5,"
			" dropped_since = ?6, report_id = ?7, report_body = ?8,"
			" report_repeats = ?9, report_changes = ?10,"
			" report_rejected = ?11, report_ok = ?12, owe_ok = ?13"
			" WHERE id = 1",
	[ST_HEAD] = "SELECT seq, size, body FROM outbox_events ORDER BY seq LIMIT ?1",
	[ST_RANGE_SIZE] = "SELECT count(*), coalesce(sum(size), 0) FROM outbox_events"
			  " WHERE seq BETWEEN ?1 AND ?2",
	[ST_RANGE_DELETE] = "DELETE FROM outbox_events WHERE seq BETWEEN ?1 AND ?2",
	[ST_DELETE_ONE] = "DELETE FROM outbox_events WHERE seq = ?1",
	[ST_OLDEST] = "SELECT observed_at FROM outbox_events ORDER BY seq LIMIT 1",
	[ST_DROP_REPEATS] = "SELECT seq, size, 1 FROM outbox_events"
			    " WHERE repeat = 1 ORDER BY seq",
	[ST_DROP_SUPERSEDED] =
		"SELECT e.seq, e.size, 0 FROM outbox_events e WHERE e.repeat = 0"
		" AND EXISTS (SELECT 1 FROM outbox_events n WHERE"
		" n.check_name = e.check_name AND n.item = e.item AND n.seq > e.seq)"
		" ORDER BY e.seq",
	[ST_DROP_ANY] = "SELECT seq, size, repeat FROM outbox_events ORDER BY seq",
	[ST_AGE_CANDIDATES] =
		"SELECT e.seq, e.size, e.repeat FROM outbox_events e"
		" WHERE e.observed_at < ?1 AND (e.repeat = 1 OR EXISTS"
		" (SELECT 1 FROM outbox_events n WHERE n.check_name = e.check_name"
		" AND n.item = e.item AND n.seq > e.seq)) ORDER BY e.seq",
};

struct outbox {
	sqlite3 *db;
	struct outbox_limits lim;
	sqlite3_stmt *st[ST_COUNT];
	int64_t next_age_scan_ms;
};

/* The outbox_meta row, read at the start of every write transaction. */
struct meta {
	int64_t queued, bytes;
	int64_t dropped_repeats, dropped_changes, rejected, dropped_since;
	char *report_id, *report_body;
	int64_t report_repeats, report_changes, report_rejected;
	bool report_ok, owe_ok;
};

void outbox_limits_default(struct outbox_limits *lim)
{
	*lim = (struct outbox_limits){
		.max_events = OUTBOX_DEFAULT_MAX_EVENTS,
		.max_bytes = OUTBOX_DEFAULT_MAX_BYTES,
		.max_age_ms = OUTBOX_DEFAULT_MAX_AGE_MS,
		.batch_events = OUTBOX_DEFAULT_BATCH_EVENTS,
		.batch_bytes = OUTBOX_DEFAULT_BATCH_BYTES,
	};
}

int outbox_open(sqlite3 *db, const struct outbox_limits *lim,
		struct outbox **ret_ob)
{
	struct outbox *ob;
	int r;

	r = db_migrate(db, &outbox_schema);
	if (r < 0)
		return r;
	ob = xcalloc(1, sizeof(*ob));
	ob->db = db;
	ob->lim = *lim;
	for (int i = 0; i < ST_COUNT; i++) {
		r = db_prepare(db, stmt_sql[i], &ob->st[i]);
		if (r < 0) {
			outbox_close(ob);
			return r;
		}
	}
	*ret_ob = ob;
	return 0;
}

void outbox_close(struct outbox *ob)
{
	if (ob == NULL)
		return;
	for (int i = 0; i < ST_COUNT; i++)
		sqlite3_finalize(ob->st[i]);
	free(ob);
}

void outbox_set_limits(struct outbox *ob, const struct outbox_limits *lim)
{
	ob->lim = *lim;
	ob->next_age_scan_ms = 0;
}

static int tx_begin(struct outbox *ob)
{
	int rc = sqlite3_exec(ob->db, "BEGIN IMMEDIATE", NULL, NULL, NULL);

	return rc == SQLITE_OK ? 0 : sqlite_to_errno(rc);
}

/* Commit when r is 0, else roll back; returns r or the commit's error. */
static int tx_end(struct outbox *ob, int r)
{
	int rc;

	if (r == 0) {
		rc = sqlite3_exec(ob->db, "COMMIT", NULL, NULL, NULL);
		if (rc == SQLITE_OK)
			return 0;
		r = sqlite_to_errno(rc);
	}
	sqlite3_exec(ob->db, "ROLLBACK", NULL, NULL, NULL);
	return r;
}

static char *column_strdup(sqlite3_stmt *s, int i)
{
	const unsigned char *t = sqlite3_column_text(s, i);

	return t ? xstrdup((const char *)t) : NULL;
}

static void meta_clear(struct meta *m)
{
	free(m->report_id);
	free(m->report_body);
	*m = (struct meta){ 0 };
}

static int meta_get(struct outbox *ob, struct meta *ret)
{
	sqlite3_stmt *s = ob->st[ST_META_GET];
	int rc = sqlite3_step(s);

	if (rc != SQLITE_ROW) {
		sqlite3_reset(s);
		return rc == SQLITE_DONE ? -EIO : sqlite_to_errno(rc);
	}
	*ret = (struct meta){
		.queued = sqlite3_column_int64(s, 0),
		.bytes = sqlite3_column_int64(s, 1),
		.dropped_repeats = sqlite3_column_int64(s, 2),
		.dropped_changes = sqlite3_column_int64(s, 3),
		.rejected = sqlite3_column_int64(s, 4),
		.dropped_since = sqlite3_column_int64(s, 5),
		.report_id = column_strdup(s, 6),
		.report_body = column_strdup(s, 7),
		.report_repeats = sqlite3_column_int64(s, 8),
		.report_changes = sqlite3_column_int64(s, 9),
		.report_rejected = sqlite3_column_int64(s, 10),
		.report_ok = sqlite3_column_int(s, 11) != 0,
		.owe_ok = sqlite3_column_int(s, 12) != 0,
	};
	sqlite3_reset(s);
	return 0;
}

static int meta_put(struct outbox *ob, const struct meta *m)
{
	sqlite3_stmt *s = ob->st[ST_META_PUT];

	sqlite3_bind_int64(s, 1, m->queued);
	sqlite3_bind_int64(s, 2, m->bytes);
	sqlite3_bind_int64(s, 3, m->dropped_repeats);
	sqlite3_bind_int64(s, 4, m->dropped_changes);
	sqlite3_bind_int64(s, 5, m->rejected);
	sqlite3_bind_int64(s, 6, m->dropped_since);
	db_bind_text(s, 7, m->report_id);
	db_bind_text(s, 8, m->report_body);
	sqlite3_bind_int64(s, 9, m->report_repeats);
	sqlite3_bind_int64(s, 10, m->report_changes);
	sqlite3_bind_int64(s, 11, m->report_rejected);
	sqlite3_bind_int(s, 12, m->report_ok);
	sqlite3_bind_int(s, 13, m->owe_ok);
	return db_step_done(s);
}

static bool over_bounds(const struct outbox *ob, const struct meta *m)
{
	return (uint64_t)m->queued > ob->lim.max_events ||
	       (uint64_t)m->bytes > ob->lim.max_bytes;
}

static void count_drop(struct meta *m, bool repeat, int64_t size,
		       int64_t now_ms, struct outbox_drops *drops)
{
	m->queued--;
	m->bytes -= size;
	if (repeat) {
		m->dropped_repeats++;
		drops->repeats++;
	} else {
		m->dropped_changes++;
		drops->changes++;
	}
	if (m->dropped_since == 0)
		m->dropped_since = now_ms;
}

struct victim {
	int64_t seq;
	int64_t size;
	bool repeat;
};

/*
 * Step through candidates (rows of seq, size, repeat; bound from ?1 when
 * age_cutoff is not 0) oldest first and delete them while the outbox is
 * over its bounds, or every one when age_cutoff is set.  The rows are
 * collected before deleting so the scan never sees its own deletions.
 */
static int drop_candidates(struct outbox *ob, struct meta *m, enum stmt which,
			   int64_t age_cutoff, int64_t now_ms,
			   struct outbox_drops *drops)
{
	sqlite3_stmt *s = ob->st[which];
	struct victim *v = NULL;
	size_t n = 0, cap = 0;
	struct meta after = *m;
	int rc, r = 0;

	if (age_cutoff != 0)
		sqlite3_bind_int64(s, 1, age_cutoff);
	while ((age_cutoff != 0 || over_bounds(ob, &after)) &&
	       (rc = sqlite3_step(s)) == SQLITE_ROW) {
		if (n == cap) {
			cap = cap ? cap * 2 : 64;
			v = xreallocarray(v, cap, sizeof(*v));
		}
		v[n] = (struct victim){ sqlite3_column_int64(s, 0),
					sqlite3_column_int64(s, 1),
					sqlite3_column_int(s, 2) != 0 };
		after.queued--;
		after.bytes -= v[n].size;
		n++;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	for (size_t i = 0; i < n && r == 0; i++) {
		sqlite3_bind_int64(ob->st[ST_DELETE_ONE], 1, v[i].seq);
		r = db_step_done(ob->st[ST_DELETE_ONE]);
		if (r == 0)
			count_drop(m, v[i].repeat, v[i].size, now_ms, drops);
	}
	free(v);
	return r;
}

/* Make room: repeated samples first, then superseded changes, then any. */
static int enforce_size(struct outbox *ob, struct meta *m, int64_t now_ms,
			struct outbox_drops *drops)
{
	static const enum stmt order[] = { ST_DROP_REPEATS, ST_DROP_SUPERSEDED,
					   ST_DROP_ANY };
	int r = 0;

	for (size_t i = 0; i < ARRAY_SIZE(order) && r == 0; i++)
		if (over_bounds(ob, m))
			r = drop_candidates(ob, m, order[i], 0, now_ms, drops);
	return r;
}

/*
 * Drop what is older than max_age, except the latest event of each key.
 * The scan runs at most once a minute, and only when the oldest queued
 * event is old enough to matter.
 */
static int enforce_age(struct outbox *ob, struct meta *m, int64_t now_ms,
		       struct outbox_drops *drops)
{
	int64_t cutoff = now_ms - ob->lim.max_age_ms, oldest = 0;
	int64_t forget = now_ms - (ob->lim.max_age_ms > LAST_STATE_KEEP_MS
					   ? ob->lim.max_age_ms
					   : LAST_STATE_KEEP_MS);
	sqlite3_stmt *s = ob->st[ST_OLDEST];
	int r;

	if (ob->lim.max_age_ms <= 0 || now_ms < ob->next_age_scan_ms)
		return 0;
	ob->next_age_scan_ms = now_ms + AGE_SCAN_EVERY_MS;
	sqlite3_bind_int64(ob->st[ST_LAST_PRUNE], 1, forget);
	r = db_step_done(ob->st[ST_LAST_PRUNE]);
	if (r < 0)
		return r;
	if (sqlite3_step(s) == SQLITE_ROW)
		oldest = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	if (oldest == 0 || oldest >= cutoff)
		return 0;
	return drop_candidates(ob, m, ST_AGE_CANDIDATES, cutoff, now_ms, drops);
}

/* Was the previous event of this key in the same state?  Then remember. */
static int note_state(struct outbox *ob, const char *check, const char *item,
		      const char *state, int64_t now_ms, bool *ret_repeat)
{
	sqlite3_stmt *get = ob->st[ST_LAST_GET], *put = ob->st[ST_LAST_PUT];
	bool repeat = false;
	int rc;

	db_bind_text(get, 1, check);
	db_bind_text(get, 2, item);
	rc = sqlite3_step(get);
	if (rc == SQLITE_ROW)
		repeat = strcmp((const char *)sqlite3_column_text(get, 0),
				state) == 0;
	sqlite3_reset(get);
	sqlite3_clear_bindings(get);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sqlite_to_errno(rc);
	/* Refreshed on repeats too: seen_at decides when a key is forgotten. */
	db_bind_text(put, 1, check);
	db_bind_text(put, 2, item);
	db_bind_text(put, 3, state);
	sqlite3_bind_int64(put, 4, now_ms);
	rc = db_step_done(put);
	if (rc < 0)
		return rc;
	*ret_repeat = repeat;
	return 0;
}

/* Queue one event (made by event_from_result(): id, check, item, state). */
static int insert_event(struct outbox *ob, struct meta *m, const json_t *ev,
			int64_t now_ms, struct outbox_drops *drops)
{
	sqlite3_stmt *s = ob->st[ST_INSERT];
	const char *check = json_string_value(json_object_get(ev, "check"));
	const char *item = json_string_value(json_object_get(ev, "item"));
	const char *state = json_string_value(json_object_get(ev, "state"));
	char *body = json_dumps(ev, JSON_FLAGS);
	bool repeat = false;
	size_t size;
	int r = -EINVAL;

	if (body == NULL)
		return -ENOMEM;
	if (check == NULL || item == NULL || state == NULL)
		goto out;
	r = note_state(ob, check, item, state, now_ms, &repeat);
	if (r < 0)
		goto out;
	size = strlen(body);
	db_bind_text(s, 1, json_string_value(json_object_get(ev, "id")));
	db_bind_text(s, 2, check);
	db_bind_text(s, 3, item);
	sqlite3_bind_int(s, 4, repeat);
	sqlite3_bind_int64(s, 5, now_ms);
	sqlite3_bind_int64(s, 6, (int64_t)size);
	sqlite3_bind_text(s, 7, body, (int)size, SQLITE_STATIC);
	r = db_step_done(s);
	if (r == 0) {
		drops->queued_changes += !repeat;
		m->queued++;
		m->bytes += (int64_t)size;
	}
out:
	free(body);
	return r;
}

static int insert_result(struct outbox *ob, struct meta *m,
			 const struct check_result *res, int64_t now_ms,
			 struct outbox_drops *drops)
{
	json_t *ev = event_from_result(res, now_ms);
	int r = ev ? insert_event(ob, m, ev, now_ms, drops) : -ENOMEM;

	json_decref(ev);
	return r;
}

/*
 * One transaction: insert what insert_one() makes of items 0..n-1 of
 * what, then enforce the bounds.  0 or -errno with nothing queued.
 */
static int enqueue_tx(struct outbox *ob, size_t n,
		      int (*insert_one)(struct outbox *, struct meta *,
					const void *, size_t, int64_t,
					struct outbox_drops *),
		      const void *what, const struct outbox_drops *before,
		      int64_t now_ms, struct outbox_drops *drops)
{
	struct meta m = { 0 };
	int r = tx_begin(ob);

	if (r < 0)
		return r;
	r = meta_get(ob, &m);
	if (r == 0 && before != NULL && before->repeats + before->changes > 0) {
		m.dropped_repeats += (int64_t)before->repeats;
		m.dropped_changes += (int64_t)before->changes;
		if (m.dropped_since == 0)
			m.dropped_since = now_ms;
	}
	for (size_t i = 0; i < n && r == 0; i++)
		r = insert_one(ob, &m, what, i, now_ms, drops);
	if (r == 0)
		r = enforce_size(ob, &m, now_ms, drops);
	if (r == 0)
		r = enforce_age(ob, &m, now_ms, drops);
	if (r == 0)
		r = meta_put(ob, &m);
	r = tx_end(ob, r);
	meta_clear(&m);
	return r;
}

static int insert_nth_result(struct outbox *ob, struct meta *m,
			     const void *what, size_t i, int64_t now_ms,
			     struct outbox_drops *drops)
{
	const struct check_results *results = what;

	return insert_result(ob, m, &results->v[i], now_ms, drops);
}

static int insert_nth_event(struct outbox *ob, struct meta *m,
			    const void *what, size_t i, int64_t now_ms,
			    struct outbox_drops *drops)
{
	return insert_event(ob, m, json_array_get(what, i), now_ms, drops);
}

int outbox_enqueue(struct outbox *ob, const struct check_results *results,
		   int64_t now_ms, struct outbox_drops *ret_drops)
{
	struct outbox_drops drops = { 0 };
	int r = 0;

	if (results->n > 0)
		r = enqueue_tx(ob, results->n, insert_nth_result, results,
			       NULL, now_ms, &drops);
	if (r < 0)
		return r;
	if (ret_drops)
		*ret_drops = drops;
	return (int)results->n;
}

int outbox_enqueue_events(struct outbox *ob, const json_t *events,
			  const struct outbox_drops *before, int64_t now_ms,
			  struct outbox_drops *ret_drops)
{
	struct outbox_drops drops = { 0 };
	size_t n = json_array_size(events);
	int r = 0;

	if (n > 0 || (before && before->repeats + before->changes > 0))
		r = enqueue_tx(ob, n, insert_nth_event, events, before, now_ms,
			       &drops);
	if (r < 0)
		return r;
	if (ret_drops)
		*ret_drops = drops;
	return (int)n;
}

void outbox_batch_free(struct outbox_batch *batch)
{
	if (batch == NULL)
		return;
	json_decref(batch->events);
	free(batch->report_id);
	*batch = (struct outbox_batch){ 0 };
}

/* Append stored event text; false when it no longer parses. */
static bool batch_add_text(struct outbox_batch *b, const char *text)
{
	json_error_t err;
	json_t *ev = text ? json_loads(text, 0, &err) : NULL;

	if (ev == NULL)
		return false;
	json_array_append_new(b->events, ev);
	b->n++;
	b->bytes += strlen(text) + 1;
	return true;
}

int outbox_next_batch(struct outbox *ob, size_t max_events,
		      struct outbox_batch *ret_batch)
{
	struct outbox_batch b = { .events = json_array() };
	sqlite3_stmt *s = ob->st[ST_HEAD];
	size_t limit = max_events;
	struct meta m = { 0 };
	int rc, r;

	if (limit == 0 || limit > ob->lim.batch_events)
		limit = ob->lim.batch_events;
	r = meta_get(ob, &m);
	if (r < 0) {
		outbox_batch_free(&b);
		return r;
	}
	if (m.report_body != NULL && batch_add_text(&b, m.report_body)) {
		b.report_id = m.report_id;
		m.report_id = NULL;
	}
	meta_clear(&m);
	sqlite3_bind_int64(s, 1, (int64_t)(limit - b.n));
	while (b.n < limit && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		int64_t seq = sqlite3_column_int64(s, 0);
		size_t size = (size_t)sqlite3_column_int64(s, 1);

		/* The first event goes alone if it must: a 413 settles it. */
		if (b.n > 0 &&
		    b.bytes + size + BATCH_ENVELOPE > ob->lim.batch_bytes)
			break;
		/* A row that no longer parses rides along in the range only:
		 * it is deleted with the batch and counted as refused. */
		if (!batch_add_text(&b, (const char *)sqlite3_column_text(s, 2)))
			b.unreadable++;
		if (b.first_seq == 0)
			b.first_seq = seq;
		b.last_seq = seq;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	*ret_batch = b;
	return 0;
}

/* Delete the batch's queued events; counts what went in *ret_n. */
static int delete_range(struct outbox *ob, struct meta *m,
			const struct outbox_batch *b, int64_t *ret_n)
{
	sqlite3_stmt *size = ob->st[ST_RANGE_SIZE];
	sqlite3_stmt *del = ob->st[ST_RANGE_DELETE];
	int64_t n = 0, bytes = 0;
	int rc, r;

	*ret_n = 0;
	if (b->last_seq == 0)
		return 0;
	sqlite3_bind_int64(size, 1, b->first_seq);
	sqlite3_bind_int64(size, 2, b->last_seq);
	rc = sqlite3_step(size);
	if (rc == SQLITE_ROW) {
		n = sqlite3_column_int64(size, 0);
		bytes = sqlite3_column_int64(size, 1);
	}
	sqlite3_reset(size);
	sqlite3_clear_bindings(size);
	if (rc != SQLITE_ROW)
		return sqlite_to_errno(rc);
	sqlite3_bind_int64(del, 1, b->first_seq);
	sqlite3_bind_int64(del, 2, b->last_seq);
	r = db_step_done(del);
	if (r < 0)
		return r;
	m->queued -= n;
	m->bytes -= bytes;
	*ret_n = n;
	return 0;
}

static void format_count(uint64_t n, char *buf, size_t size)
{
	char digits[32];
	size_t len, o = 0;

	snprintf(digits, sizeof(digits), "%llu", (unsigned long long)n);
	len = strlen(digits);
	for (size_t i = 0; i < len && o + 2 < size; i++) {
		if (i > 0 && (len - i) % 3 == 0)
			buf[o++] = ',';
		buf[o++] = digits[i];
	}
	buf[o] = '\0';
}

/* Append "1,234 what" to buf, joined to what is there by sep. */
static void summary_part(char *buf, size_t size, const char *sep, int64_t n,
			 const char *what)
{
	char count[32];

	format_count((uint64_t)n, count, sizeof(count));
	if (buf[0] != '\0')
		strlcat_safe(buf, sep, size);
	strlcat_safe(buf, count, size);
	strlcat_safe(buf, what, size);
}

/*
 * "outbox full: 1,234 repeated samples and 5 older state changes dropped
 * since 2026-11-30 10:00 UTC; 2 events refused by the collector"
 */
static void report_summary(const struct meta *m, char *buf, size_t size)
{
	char when[64], drops[128] = "";
	struct tm tm;
	time_t t = (time_t)(m->dropped_since / 1000);

	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M UTC", &tm);
	if (m->dropped_repeats > 0)
		summary_part(drops, sizeof(drops), " and ", m->dropped_repeats,
			     " repeated samples");
	if (m->dropped_changes > 0)
		summary_part(drops, sizeof(drops), " and ", m->dropped_changes,
			     " older state changes");
	buf[0] = '\0';
	if (drops[0] != '\0')
		snprintf(buf, size, "outbox full: %s dropped since %s", drops, when);
	if (m->rejected > 0) {
		summary_part(buf, size, "; ", m->rejected,
			     " events refused by the collector");
		if (drops[0] == '\0') {
			strlcat_safe(buf, " and dropped since ", size);
			strlcat_safe(buf, when, size);
		}
	}
}

/*
 * Build the report event for the counts in m (or the all-clear when ok)
 * and make it pending in m.  The id is made here and kept until the
 * report is acknowledged, so a resent report is a duplicate.
 */
static int report_make(struct meta *m, bool ok, int64_t now_ms)
{
	char id[UUID_STR_LEN], at[TIME_RFC3339_LEN], since[TIME_RFC3339_LEN];
	char summary[512];
	json_t *ev;
	int r = uuid_generate(id);

	if (r < 0)
		return r;
	time_format_rfc3339(now_ms, at);
	time_format_rfc3339(m->dropped_since, since);
	if (ok)
		snprintf(summary, sizeof(summary),
			 "outbox drained: every queued event was delivered");
	else
		report_summary(m, summary, sizeof(summary));
	ev = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s,"
		       " s:{s:I, s:I, s:I, s:I}}",
		       "id", id, "check", "agent", "item", "outbox", "state",
		       ok ? "ok" : "warning", "summary", summary, "observed_at",
		       at, "metrics", "dropped_repeats",
		       (json_int_t)(ok ? 0 : m->dropped_repeats),
		       "dropped_state_changes",
		       (json_int_t)(ok ? 0 : m->dropped_changes), "rejected",
		       (json_int_t)(ok ? 0 : m->rejected), "queued",
		       (json_int_t)m->queued);
	if (ev == NULL)
		return -ENOMEM;
	if (!ok)
		json_object_set_new(ev, "context",
				    json_pack("{s:s, s:s}", "dropped_since",
					      since, "policy",
					      "repeated samples first, then superseded state changes, oldest first"));
	free(m->report_body);
	free(m->report_id);
	m->report_body = json_dumps(ev, JSON_FLAGS);
	m->report_id = xstrdup(id);
	json_decref(ev);
	if (m->report_body == NULL)
		return -ENOMEM;
	m->report_ok = ok;
	m->report_repeats = ok ? 0 : m->dropped_repeats;
	m->report_changes = ok ? 0 : m->dropped_changes;
	m->report_rejected = ok ? 0 : m->rejected;
	return 0;
}

/* The pending report is settled (sent, or refused for good). */
static void report_settle(struct meta *m)
{
	m->dropped_repeats -= m->report_repeats;
	m->dropped_changes -= m->report_changes;
	m->rejected -= m->report_rejected;
	if (m->dropped_repeats <= 0 && m->dropped_changes <= 0 &&
	    m->rejected <= 0) {
		m->dropped_repeats = m->dropped_changes = m->rejected = 0;
		m->dropped_since = 0;
	}
	free(m->report_id);
	free(m->report_body);
	m->report_id = m->report_body = NULL;
	m->report_repeats = m->report_changes = m->report_rejected = 0;
	m->report_ok = false;
}

static bool batch_has_report(const struct outbox_batch *b,
			     const struct meta *m)
{
	return b->report_id != NULL && m->report_id != NULL &&
	       strcmp(b->report_id, m->report_id) == 0;
}

/*
 * The fate of a batch, in one transaction: acknowledged (acked) or refused
 * for good.  Either way its events go; refused ones (and unreadable rows)
 * are counted for the next report.  After an acknowledgement the
 * collector is known to answer, so that is when a report is made.
 */
static int batch_settle(struct outbox *ob, const struct outbox_batch *batch,
			int64_t now_ms, bool acked)
{
	struct meta m = { 0 };
	int64_t n = 0, refused;
	int r;

	r = tx_begin(ob);
	if (r < 0)
		return r;
	r = meta_get(ob, &m);
	if (r == 0)
		r = delete_range(ob, &m, batch, &n);
	if (r == 0 && batch_has_report(batch, &m)) {
		/* a refused report takes its counts with it */
		if (acked)
			m.owe_ok = !m.report_ok;
		report_settle(&m);
	}
	refused = acked ? (int64_t)batch->unreadable : n;
	if (r == 0 && refused > 0) {
		m.rejected += refused;
		if (m.dropped_since == 0)
			m.dropped_since = now_ms;
	}
	if (r == 0 && acked && m.report_id == NULL) {
		if (m.dropped_repeats > 0 || m.dropped_changes > 0 ||
		    m.rejected > 0)
			r = report_make(&m, false, now_ms);
		else if (m.owe_ok && m.queued == 0)
			r = report_make(&m, true, now_ms);
	}
	if (r == 0)
		r = meta_put(ob, &m);
	r = tx_end(ob, r);
	meta_clear(&m);
	return r;
}

int outbox_ack(struct outbox *ob, const struct outbox_batch *batch,
	       int64_t now_ms)
{
	return batch_settle(ob, batch, now_ms, true);
}

int outbox_reject(struct outbox *ob, const struct outbox_batch *batch,
		  int64_t now_ms)
{
	return batch_settle(ob, batch, now_ms, false);
}

int outbox_stats(struct outbox *ob, struct outbox_stats *ret_stats)
{
	struct meta m = { 0 };
	int r = meta_get(ob, &m);

	if (r < 0)
		return r;
	*ret_stats = (struct outbox_stats){
		.queued = (uint64_t)m.queued,
		.bytes = (uint64_t)m.bytes,
		.dropped_repeats = (uint64_t)m.dropped_repeats,
		.dropped_changes = (uint64_t)m.dropped_changes,
		.rejected = (uint64_t)m.rejected,
		.dropped_since_ms = m.dropped_since,
		.report_pending = m.report_id != NULL,
	};
	meta_clear(&m);
	return 0;
}
