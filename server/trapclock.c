#include "trapclock.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "store.h"

struct trapclock {
	struct store *st;
	sqlite3_stmt *save;
	sqlite3_stmt *list;
	sqlite3_stmt *trim;
};

int trapclock_open(struct store *st, struct trapclock **ret)
{
	struct trapclock *c = xcalloc(1, sizeof(*c));
	int r;

	c->st = st;
	/*
	 * SET sees the row as it was: the clock moves only forward, the
	 * time of the save always (it orders what trimming keeps).
	 */
	r = store_prepare(st,
			  "INSERT INTO trap_engine_clocks(engine_id, boots, time, saved_at)"
			  " VALUES (?1, ?2, ?3, ?4) ON CONFLICT(engine_id) DO UPDATE SET"
			  " time = CASE WHEN excluded.boots > boots OR"
			  "  (excluded.boots = boots AND excluded.time > time)"
			  "  THEN excluded.time ELSE time END,"
			  " boots = max(boots, excluded.boots),"
			  " saved_at = excluded.saved_at",
			  &c->save);
	if (r == 0)
		r = store_prepare(st,
				  "SELECT engine_id, boots, time FROM trap_engine_clocks"
				  " ORDER BY saved_at DESC LIMIT ?1",
				  &c->list);
	if (r == 0)
		r = store_prepare(st,
				  "DELETE FROM trap_engine_clocks WHERE engine_id IN"
				  " (SELECT engine_id FROM trap_engine_clocks"
				  "  ORDER BY saved_at DESC LIMIT -1 OFFSET ?1)",
				  &c->trim);
	if (r < 0) {
		trapclock_close(c);
		return r;
	}
	*ret = c;
	return 0;
}

void trapclock_close(struct trapclock *c)
{
	if (c == NULL)
		return;
	sqlite3_finalize(c->save);
	sqlite3_finalize(c->list);
	sqlite3_finalize(c->trim);
	free(c);
}

int trapclock_save(struct trapclock *c, const struct trapclock_entry *e,
		   int64_t now_ms)
{
	sqlite3_bind_blob(c->save, 1, e->engine, (int)e->len, SQLITE_STATIC);
	sqlite3_bind_int64(c->save, 2, e->boots);
	sqlite3_bind_int64(c->save, 3, e->time);
	sqlite3_bind_int64(c->save, 4, now_ms);
	return db_step_done(c->save);
}

int trapclock_trim(struct store *st, void *arg)
{
	struct trapclock *c = arg;

	(void)st;
	sqlite3_bind_int64(c->trim, 1, TRAPCLOCK_KEEP);
	return db_step_done(c->trim);
}

int trapclock_each(struct trapclock *c,
		   int (*fn)(void *arg, const struct trapclock_entry *e),
		   void *arg)
{
	sqlite3_stmt *s = c->list;
	int rc = SQLITE_DONE, r = 0;

	sqlite3_bind_int64(s, 1, TRAPCLOCK_KEEP);
	while (r == 0 && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct trapclock_entry e = { .len = 0 };
		int n = sqlite3_column_bytes(s, 0);
		int64_t boots = sqlite3_column_int64(s, 1);
		int64_t time = sqlite3_column_int64(s, 2);

		/* Only what we wrote is there; anything else is skipped. */
		if (n <= 0 || (size_t)n > sizeof(e.engine) || boots < 0 ||
		    boots > UINT32_MAX || time < 0 || time > UINT32_MAX)
			continue;
		memcpy(e.engine, sqlite3_column_blob(s, 0), (size_t)n);
		e.len = (size_t)n;
		e.boots = (uint32_t)boots;
		e.time = (uint32_t)time;
		r = fn(arg, &e);
	}
	if (r == 0 && rc != SQLITE_DONE)
		r = sqlite_to_errno(rc);
	sqlite3_reset(s);
	return r;
}
