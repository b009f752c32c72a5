#include "ticket_cache.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../common/db.h"
#include "../common/util.h"
#include "keymap.h"

/* Changes remembered per job; beyond that a rollback reloads everything. */
#define TOUCHED_MAX 65536

enum {
	TC_LOAD,
	TC_BY_ID,
	TC_COUNT,
};

static const char *const tc_sql[TC_COUNT] = {
	[TC_LOAD] = "SELECT host_id, check_name, item, " STORE_TICKET_COLUMNS
		    " FROM tickets WHERE status NOT IN ('resolved', 'closed')",
	[TC_BY_ID] = "SELECT host_id, check_name, item, " STORE_TICKET_COLUMNS
		     " FROM tickets WHERE id = ?1",
};

struct id_list {
	int64_t *v;
	size_t n, cap;
};

struct ticket_cache {
	sqlite3_stmt *stmt[TC_COUNT];
	struct keymap *map;	/* problem key -> struct store_ticket */
	struct id_list stale;	/* changed behind the cache: read again */
	struct id_list touched; /* entries changed in the current job */
	bool touched_overflow;
	int64_t mirroring;	/* the row ticket_cache_mirror_begin() names */
	bool enabled;		/* false: more open tickets than fit */
	bool need_reload;
	struct ticket_cache_stats stats;
};

static void id_push(struct id_list *l, int64_t id)
{
	/* Changes of one ticket come in runs: keep one of each run. */
	if (l->n > 0 && l->v[l->n - 1] == id)
		return;
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 64;
		l->v = xreallocarray(l->v, l->cap, sizeof(*l->v));
	}
	l->v[l->n++] = id;
}

/* The entry of ticket id changed during this job. */
static void touch(struct ticket_cache *tc, int64_t id)
{
	if (tc->touched.n >= TOUCHED_MAX)
		tc->touched_overflow = true;
	else
		id_push(&tc->touched, id);
}

static bool status_open(const struct store_ticket *t)
{
	return strcmp(t->status, "resolved") != 0 &&
	       strcmp(t->status, "closed") != 0;
}

static const char *column_text(sqlite3_stmt *s, int col)
{
	const char *text = (const char *)sqlite3_column_text(s, col);

	return text ? text : "";
}

/* Every open ticket, from scratch; off when there are too many. */
static int reload(struct ticket_cache *tc)
{
	sqlite3_stmt *s = tc->stmt[TC_LOAD];
	int rc;

	keymap_clear(tc->map);
	tc->stale.n = tc->touched.n = 0;
	tc->touched_overflow = false;
	tc->enabled = true;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct store_ticket *e;

		if (keymap_count(tc->map) >= TICKET_CACHE_MAX) {
			tc->enabled = false;
			keymap_clear(tc->map);
			rc = SQLITE_DONE;
			break;
		}
		e = keymap_put(tc->map, sqlite3_column_int64(s, 0),
			       column_text(s, 1), column_text(s, 2), NULL);
		store_ticket_row(s, 3, e);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE) {
		keymap_clear(tc->map);
		return sqlite_to_errno(rc);
	}
	tc->need_reload = false;
	tc->stats.reloads++;
	return 0;
}

struct find_id {
	int64_t id;
	int64_t host_id;
	char *check, *item;
};

static void match_id(void *arg, int64_t host_id, const char *check,
		     const char *item, void *value)
{
	struct find_id *f = arg;
	const struct store_ticket *e = value;

	if (e->id == f->id && f->check == NULL) {
		f->host_id = host_id;
		f->check = xstrdup(check);
		f->item = xstrdup(item);
	}
}

/*
 * A ticket whose row is gone (its INSERT was rolled back): drop its
 * entry, found by a scan; this happens only after a failed job.
 */
static void forget_id(struct ticket_cache *tc, int64_t id)
{
	struct find_id f = { .id = id };

	keymap_foreach(tc->map, match_id, &f);
	if (f.check != NULL)
		keymap_remove(tc->map, f.host_id, f.check, f.item);
	free(f.check);
	free(f.item);
}

/* Read ticket id again and put its key's entry right. */
static int refresh(struct ticket_cache *tc, int64_t id)
{
	sqlite3_stmt *s = tc->stmt[TC_BY_ID];
	int rc;

	sqlite3_bind_int64(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		int64_t host_id = sqlite3_column_int64(s, 0);
		const char *check = column_text(s, 1), *item = column_text(s, 2);
		struct store_ticket row, *e;

		store_ticket_row(s, 3, &row);
		e = keymap_get(tc->map, host_id, check, item);
		if (status_open(&row)) {
			if (e == NULL && keymap_count(tc->map) >= TICKET_CACHE_MAX)
				tc->enabled = false;
			else if (e == NULL)
				e = keymap_put(tc->map, host_id, check, item, NULL);
			if (e != NULL)
				*e = row;
		} else if (e != NULL && e->id == id) {
			keymap_remove(tc->map, host_id, check, item);
		}
		rc = SQLITE_DONE;
	} else if (rc == SQLITE_DONE) {
		forget_id(tc, id);
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc != SQLITE_DONE)
		return sqlite_to_errno(rc);
	touch(tc, id);
	tc->stats.refreshes++;
	return 0;
}

int ticket_cache_find(struct ticket_cache *tc, int64_t host_id,
		      const char *check, const char *item,
		      struct store_ticket *ret)
{
	const struct store_ticket *e;
	int r;

	if (tc->need_reload) {
		r = reload(tc);
		if (r < 0)
			return r;
	}
	while (tc->enabled && tc->stale.n > 0) {
		r = refresh(tc, tc->stale.v[tc->stale.n - 1]);
		if (r < 0)
			return r;
		tc->stale.n--;
	}
	if (!tc->enabled) {
		/* Nothing is tracked any more; forget what was. */
		keymap_clear(tc->map);
		tc->stale.n = 0;
		return -ENOENT;
	}
	e = keymap_get(tc->map, host_id, check, item);
	if (e == NULL)
		return 0;
	*ret = *e;
	return 1;
}

void ticket_cache_row_changed(struct ticket_cache *tc, int64_t ticket_id)
{
	if (ticket_id != tc->mirroring && tc->enabled)
		id_push(&tc->stale, ticket_id);
}

void ticket_cache_mirror_begin(struct ticket_cache *tc, int64_t ticket_id)
{
	tc->mirroring = ticket_id;
}

void ticket_cache_mirror_end(struct ticket_cache *tc,
			     const struct store_ticket *t,
			     const struct store_event *ev, bool ok)
{
	struct store_ticket *e;

	tc->mirroring = 0;
	if (!tc->enabled)
		return;
	e = keymap_get(tc->map, ev->host_id, ev->check, ev->item);
	if (!ok || e == NULL || e->id != t->id) {
		id_push(&tc->stale, t->id);
		return;
	}
	/* What STMT_TICKET_OCCURRENCE does to the row, column by column. */
	if (ev->observed_ms >= e->last_seen_ms)
		e->state = ev->state;
	e->worst_state = check_state_worst(t->worst_state, ev->state);
	e->occurrences++;
	if (ev->observed_ms < e->first_seen_ms)
		e->first_seen_ms = ev->observed_ms;
	if (ev->observed_ms > e->last_seen_ms)
		e->last_seen_ms = ev->observed_ms;
	touch(tc, t->id);
}

/* The writer's savepoints and transactions (see store_txn_hook_add()). */
static void on_txn(void *arg, enum store_txn_event event)
{
	struct ticket_cache *tc = arg;

	switch (event) {
	case STORE_JOB_DONE:
	case STORE_TXN_COMMITTED:
		tc->touched.n = 0;
		tc->touched_overflow = false;
		break;
	case STORE_JOB_UNDONE:
		/* The rows are as before the job: read its tickets again. */
		if (tc->touched_overflow)
			tc->need_reload = true;
		for (size_t i = 0; !tc->need_reload && i < tc->touched.n; i++)
			id_push(&tc->stale, tc->touched.v[i]);
		tc->touched.n = 0;
		tc->touched_overflow = false;
		break;
	case STORE_TXN_ROLLED_BACK:
		tc->need_reload = true;
		break;
	}
}

void ticket_cache_get_stats(const struct ticket_cache *tc,
			    struct ticket_cache_stats *ret)
{
	*ret = tc->stats;
	ret->entries = keymap_count(tc->map);
	ret->enabled = tc->enabled;
}

void ticket_cache_close(struct ticket_cache *tc)
{
	if (tc == NULL)
		return;
	for (int i = 0; i < TC_COUNT; i++)
		sqlite3_finalize(tc->stmt[i]);
	keymap_free(tc->map);
	free(tc->stale.v);
	free(tc->touched.v);
	free(tc);
}

int ticket_cache_open(struct store *st, struct ticket_cache **ret)
{
	struct ticket_cache *tc = xcalloc(1, sizeof(*tc));
	int r = 0;

	tc->map = keymap_new(sizeof(struct store_ticket));
	for (int i = 0; r == 0 && i < TC_COUNT; i++)
		r = store_prepare(st, tc_sql[i], &tc->stmt[i]);
	if (r == 0)
		r = reload(tc);
	if (r == 0)
		r = store_txn_hook_add(st, on_txn, tc);
	if (r < 0) {
		ticket_cache_close(tc);
		return r;
	}
	*ret = tc;
	return 0;
}
