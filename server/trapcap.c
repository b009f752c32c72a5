#include "trapcap.h"

#include <errno.h>
#include <stdlib.h>

#include "../common/util.h"
#include "store.h"

struct trapcap {
	sqlite3_stmt *is_open;
	sqlite3_stmt *count;
};

/* "Open": a ticket not resolved or closed, or a problem without one yet. */
int trapcap_open(struct store *st, struct trapcap **ret)
{
	struct trapcap *c = xcalloc(1, sizeof(*c));
	int r;

	r = store_prepare(st,
			  "SELECT EXISTS (SELECT 1 FROM tickets t WHERE t.host_id = h.id"
			  "   AND t.check_name = ?2 AND t.item = ?3"
			  "   AND t.status NOT IN ('resolved', 'closed'))"
			  " OR EXISTS (SELECT 1 FROM problems p WHERE p.host_id = h.id"
			  "   AND p.check_name = ?2 AND p.item = ?3"
			  "   AND p.phase IN ('pending', 'silenced'))"
			  " FROM hosts h WHERE h.name = ?1",
			  &c->is_open);
	if (r == 0)
		r = store_prepare(st,
				  "SELECT (SELECT count(*) FROM tickets t WHERE t.host_id = h.id"
				  "   AND t.check_name = ?2 AND t.item <> ?3"
				  "   AND t.status NOT IN ('resolved', 'closed'))"
				  " + (SELECT count(*) FROM problems p WHERE p.host_id = h.id"
				  "   AND p.check_name = ?2 AND p.item <> ?3"
				  "   AND p.phase IN ('pending', 'silenced'))"
				  " FROM hosts h WHERE h.name = ?1",
				  &c->count);
	if (r < 0) {
		trapcap_close(c);
		return r;
	}
	*ret = c;
	return 0;
}

void trapcap_close(struct trapcap *c)
{
	if (c == NULL)
		return;
	sqlite3_finalize(c->is_open);
	sqlite3_finalize(c->count);
	free(c);
}

/* The one number s yields for (host, check, item); 0 for a host not stored yet. */
static int query(sqlite3_stmt *s, const char *host, const char *check,
		 const char *item, int64_t *ret)
{
	int rc;

	db_bind_text(s, 1, host);
	db_bind_text(s, 2, check);
	db_bind_text(s, 3, item);
	rc = sqlite3_step(s);
	*ret = rc == SQLITE_ROW ? sqlite3_column_int64(s, 0) : 0;
	sqlite3_reset(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sqlite_to_errno(rc);
}

int trapcap_over(struct trapcap *c, const char *host, const char *check,
		 const char *item, size_t max)
{
	int64_t v;
	int r;

	r = query(c->is_open, host, check, item, &v);
	if (r < 0 || v != 0)
		return r;
	r = query(c->count, host, check, TRAPCAP_ITEM, &v);
	if (r < 0)
		return r;
	return v >= (int64_t)max ? 1 : 0;
}
