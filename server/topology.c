#include "topology.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "dedup_metrics.h"
#include "inventory.h"
#include "lifecycle.h"
#include "store.h"

#define SYSTEM_ACTOR "tocsin"
/* Children handled per parent change; more are left attached, and said so. */
#define CHILDREN_MAX 10000
#define CHILDREN_JSON_MAX 1000

static const char *const topology_steps[] = {
	/* 1: finding a ticket's children */
	"CREATE INDEX tickets_parent ON tickets(parent_id)"
	"  WHERE parent_id IS NOT NULL;",
};

const struct db_schema topology_schema = {
	.module = "topology",
	.steps = topology_steps,
	.nsteps = ARRAY_SIZE(topology_steps),
};

enum {
	TS_HOST_ID,
	TS_DOWN_TICKETS,
	TS_RECENT,
	TS_OPEN_CHILDREN,
	TS_CHILDREN,
	TS_SILENCED,
	TS_COUNT,
};

static const char *const topology_sql[TS_COUNT] = {
	[TS_HOST_ID] = "SELECT id FROM hosts WHERE name = ?1",
	[TS_DOWN_TICKETS] =
		"SELECT check_name, item, id, 0 FROM tickets"
		" WHERE host_id = ?1 AND status NOT IN ('resolved', 'closed')"
		" AND status <> 'recovered' AND (state <> 'ok' OR flapping)"
		" ORDER BY id",
	[TS_RECENT] =
		"SELECT id, check_name, item, state, summary FROM tickets"
		" WHERE host_id = ?1 AND status NOT IN ('resolved', 'closed')"
		" AND parent_id IS NULL AND opened_at >= ?2 AND id <> ?3"
		" ORDER BY id",
	[TS_OPEN_CHILDREN] =
		"SELECT t.id, h.name, t.check_name, t.item, t.state, t.summary"
		" FROM tickets t JOIN hosts h ON h.id = t.host_id"
		" WHERE t.parent_id = ?1 AND t.status NOT IN ('resolved', 'closed')"
		" ORDER BY t.id LIMIT ?2",
	[TS_CHILDREN] =
		"SELECT t.id, h.name, t.check_name, t.item, t.status, t.state,"
		" t.summary, t.opened_at, t.last_seen"
		" FROM tickets t JOIN hosts h ON h.id = t.host_id"
		" WHERE t.parent_id = ?1 ORDER BY t.id LIMIT ?2",
	[TS_SILENCED] = "SELECT check_name, item, silence_id, due_at FROM problems"
			" WHERE host_id = ?1 AND phase = 'silenced' AND due_at > ?2",
};

struct topology {
	struct store *st;
	const struct lifecycle_config *lc;
	const struct inventory *inv;
	struct dedup_metrics *metrics;
	size_t nhosts;
	bool *is_parent; /* by position in inv->hosts: some host depends on it */
	sqlite3_stmt *stmt[TS_COUNT];
};

/* A ticket row copied out, so that the statement is free for recursion. */
struct ticket_ref {
	int64_t id;
	char *host;
	char *check;
	char *item;
	enum check_state state;
	char *summary;
};

static void refs_free(struct ticket_ref *refs, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(refs[i].host);
		free(refs[i].check);
		free(refs[i].item);
		free(refs[i].summary);
	}
	free(refs);
}

static char *column_dup(sqlite3_stmt *s, int col)
{
	const char *text = (const char *)sqlite3_column_text(s, col);

	return xstrdup(text ? text : "");
}

static enum check_state column_state(sqlite3_stmt *s, int col)
{
	const char *text = (const char *)sqlite3_column_text(s, col);
	enum check_state state = CHECK_UNKNOWN;

	if (text)
		check_state_parse(text, &state);
	return state;
}

void topology_close(struct topology *t)
{
	if (t == NULL)
		return;
	for (int i = 0; i < TS_COUNT; i++)
		sqlite3_finalize(t->stmt[i]);
	free(t->is_parent);
	free(t);
}

int topology_open(struct store *st, const struct lifecycle_config *lc,
		  const struct inventory *inv, struct dedup_metrics *m,
		  struct topology **ret)
{
	struct topology *t = xcalloc(1, sizeof(*t));

	t->st = st;
	t->lc = lc;
	t->inv = inv;
	t->metrics = m;
	if (inv != NULL && inv->nhosts > 0) {
		t->nhosts = inv->nhosts;
		t->is_parent = xcalloc(inv->nhosts, sizeof(*t->is_parent));
		for (size_t i = 0; i < inv->nhosts; i++)
			if (inv->hosts[i].parent)
				t->is_parent[inv->hosts[i].parent - inv->hosts] = true;
	}
	for (int i = 0; i < TS_COUNT; i++) {
		int r = store_prepare(st, topology_sql[i], &t->stmt[i]);

		if (r < 0) {
			topology_close(t);
			return r;
		}
	}
	*ret = t;
	return 0;
}

const struct host *topology_host(const struct topology *t, const char *name)
{
	return inventory_host(t->inv, name);
}

/* The store's id of a host name: 1 and *ret, 0 when it never reported. */
static int host_id(struct topology *t, const char *name, int64_t *ret)
{
	sqlite3_stmt *s = t->stmt[TS_HOST_ID];
	int rc, found = 0;

	db_bind_text(s, 1, name);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		*ret = sqlite3_column_int64(s, 0);
		found = 1;
		rc = SQLITE_DONE;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_DONE ? found : sqlite_to_errno(rc);
}

/* What the first down row of a host said: a ticket, or a silence. */
struct down_row {
	char check[INGEST_CHECK_MAX + 1];
	char item[INGEST_ITEM_MAX + 1];
	int64_t a, b; /* columns 2 and 3 */
};

/*
 * The first row of s (TS_DOWN_TICKETS or TS_SILENCED) for host name whose
 * check and item (columns 0 and 1) are a down check: 1 and *ret, or 0.
 * s gets the host's id as ?1 and, when has_arg, arg as ?2.
 */
static int first_down_row(struct topology *t, sqlite3_stmt *s,
			  const char *name, bool has_arg, int64_t arg,
			  struct down_row *ret)
{
	int64_t id;
	int rc, found;

	found = host_id(t, name, &id);
	if (found <= 0)
		return found;
	found = 0;
	sqlite3_bind_int64(s, 1, id);
	if (has_arg)
		sqlite3_bind_int64(s, 2, arg);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *check = (const char *)sqlite3_column_text(s, 0);
		const char *item = (const char *)sqlite3_column_text(s, 1);

		if (check && item &&
		    lifecycle_is_down_check(t->lc, name, check, item)) {
			strlcpy_safe(ret->check, check, sizeof(ret->check));
			strlcpy_safe(ret->item, item, sizeof(ret->item));
			ret->a = sqlite3_column_int64(s, 2);
			ret->b = sqlite3_column_int64(s, 3);
			found = 1;
			rc = SQLITE_DONE;
			break;
		}
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_DONE ? found : sqlite_to_errno(rc);
}

/* The down ticket of host name itself: 1 and *ret, or 0. */
static int down_ticket(struct topology *t, const char *name,
		       struct topology_parent *ret)
{
	struct down_row row;
	int r = first_down_row(t, t->stmt[TS_DOWN_TICKETS], name, false, 0,
			       &row);

	if (r <= 0)
		return r;
	ret->ticket_id = row.a;
	strlcpy_safe(ret->host, name, sizeof(ret->host));
	strlcpy_safe(ret->check, row.check, sizeof(ret->check));
	strlcpy_safe(ret->item, row.item, sizeof(ret->item));
	return 1;
}

/* A down problem of host name held back by a silence: 1, or 0. */
static int silenced_down(struct topology *t, const char *name,
			 int64_t now_ms, int64_t *ret_silence_id,
			 int64_t *ret_ends_ms)
{
	struct down_row row;
	int r = first_down_row(t, t->stmt[TS_SILENCED], name, true, now_ms,
			       &row);

	if (r <= 0)
		return r;
	*ret_silence_id = row.a;
	*ret_ends_ms = row.b;
	return 1;
}

int topology_held_back(struct topology *t, const char *host, int64_t now_ms,
		       int64_t *ret_silence_id, int64_t *ret_ends_ms)
{
	const struct host *h = topology_host(t, host);
	struct topology_parent p;
	size_t steps = 0;

	for (const struct host *a = h ? h->parent : NULL;
	     a != NULL && steps <= t->nhosts; a = a->parent, steps++) {
		int r = down_ticket(t, a->name, &p);

		if (r != 0) /* down with a ticket: attach, not held back */
			return r < 0 ? r : 0;
		r = silenced_down(t, a->name, now_ms, ret_silence_id,
				  ret_ends_ms);
		if (r != 0)
			return r;
	}
	return 0;
}

int topology_find_parent(struct topology *t, const char *host,
			 struct topology_parent *ret)
{
	const struct host *h = topology_host(t, host);
	size_t steps = 0;

	/* The inventory refuses cycles; the bound is for safety alone. */
	for (const struct host *a = h ? h->parent : NULL;
	     a != NULL && steps <= t->nhosts; a = a->parent, steps++) {
		int r = down_ticket(t, a->name, ret);

		if (r != 0)
			return r;
	}
	return 0;
}

int topology_attach(struct topology *t, int64_t ticket_id,
		    const struct topology_parent *p, int64_t at_ms,
		    const char *why)
{
	char parent[32], *text;
	int r;

	snprintf(parent, sizeof(parent), "#%lld", (long long)p->ticket_id);
	text = xasprintf("%s%s%s is down (ticket #%lld: %s %s): this ticket is one of its children",
			 why ? why : "", why ? "; " : "", p->host,
			 (long long)p->ticket_id, p->check, p->item);
	r = store_ticket_set_parent(t->st, ticket_id, p->ticket_id);
	if (r == 0)
		r = store_journal_add(t->st, ticket_id, at_ms, SYSTEM_ACTOR,
				      "attached", NULL, parent, text);
	free(text);
	if (r == 0)
		r = dedup_metrics_add(t->metrics, DEDUP_ATTACHED, 1);
	return r;
}

static int announce_ref(struct topology *t, enum ticket_change_kind kind,
			const struct ticket_ref *ref, int64_t parent_id,
			int64_t at_ms, const char *old_value,
			const char *new_value)
{
	const struct ticket_change c = {
		.kind = kind,
		.ticket_id = ref->id,
		.at_ms = at_ms,
		.actor = SYSTEM_ACTOR,
		.host = ref->host,
		.check = ref->check,
		.item = ref->item,
		.state = ref->state,
		.summary = ref->summary,
		.field = old_value || new_value ? "parent_id" : NULL,
		.old_value = old_value,
		.new_value = new_value,
		.parent_id = parent_id,
	};

	return store_ticket_changed(t->st, &c);
}

/* Attach ref to p and say so. */
static int adopt(struct topology *t, const struct ticket_ref *ref,
		 const struct topology_parent *p, int64_t at_ms,
		 const char *why, const char *old_value)
{
	char parent[32];
	int r = topology_attach(t, ref->id, p, at_ms, why);

	snprintf(parent, sizeof(parent), "#%lld", (long long)p->ticket_id);
	if (r == 0)
		r = announce_ref(t, TICKET_UPDATED, ref, p->ticket_id, at_ms,
				 old_value, parent);
	return r;
}

/* Collect the rows of s (bound already) as ticket refs; s is reset. */
static int collect_refs(sqlite3_stmt *s, bool with_host, const char *host,
			struct ticket_ref **ret, size_t *ret_n)
{
	struct ticket_ref *refs = NULL;
	size_t n = 0;
	int rc, c = with_host ? 2 : 1;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		refs = xreallocarray(refs, n + 1, sizeof(*refs));
		refs[n++] = (struct ticket_ref){
			.id = sqlite3_column_int64(s, 0),
			.host = with_host ? column_dup(s, 1) : xstrdup(host),
			.check = column_dup(s, c),
			.item = column_dup(s, c + 1),
			.state = column_state(s, c + 2),
			.summary = column_dup(s, c + 3),
		};
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc != SQLITE_DONE) {
		refs_free(refs, n);
		return sqlite_to_errno(rc);
	}
	*ret = refs;
	*ret_n = n;
	return 0;
}

/* Whether a is b or one of b's ancestors. */
static bool is_ancestor(const struct host *a, const struct host *b,
			size_t bound)
{
	for (const struct host *p = b->parent; p && bound-- > 0; p = p->parent)
		if (p == a)
			return true;
	return false;
}

/*
 * A down ticket opened on c->host: the tickets that the hosts behind it
 * opened within the attach window become children of their nearest down
 * ancestor (this one, or one nearer to them).
 */
static int adopt_recent(struct topology *t, const struct ticket_change *c)
{
	const struct host *down = topology_host(t, c->host);
	int64_t since = c->at_ms - t->lc->topology.attach_window_ms;
	int r = 0;

	if (down == NULL || !t->is_parent[down - t->inv->hosts] ||
	    t->lc->topology.attach_window_ms <= 0)
		return 0;
	for (size_t i = 0; r == 0 && i < t->inv->hosts_by_name.n; i++) {
		const struct host *h =
			&t->inv->hosts[t->inv->hosts_by_name.v[i].item];
		struct ticket_ref *refs = NULL;
		size_t n = 0;
		int64_t id;

		if (!is_ancestor(down, h, t->nhosts) ||
		    (r = host_id(t, h->name, &id)) <= 0)
			continue;
		sqlite3_bind_int64(t->stmt[TS_RECENT], 1, id);
		sqlite3_bind_int64(t->stmt[TS_RECENT], 2, since);
		sqlite3_bind_int64(t->stmt[TS_RECENT], 3, c->ticket_id);
		r = collect_refs(t->stmt[TS_RECENT], false, h->name, &refs, &n);
		for (size_t k = 0; r == 0 && k < n; k++) {
			struct topology_parent p;

			r = topology_find_parent(t, h->name, &p);
			if (r > 0)
				r = adopt(t, &refs[k], &p, c->at_ms,
					  "opened shortly before its parent went down",
					  NULL);
		}
		refs_free(refs, n);
	}
	return r < 0 ? r : 0;
}

/* A child that is ok again is resolved with its parent. */
static int resolve_with_parent(struct topology *t, const struct ticket_ref *ref,
			       int64_t parent_id, int64_t at_ms)
{
	char *text = xasprintf("resolved with its parent #%lld", (long long)parent_id);
	int r;

	r = store_ticket_resolve(t->st, ref->id, at_ms);
	if (r == 0)
		r = store_journal_add(t->st, ref->id, at_ms, SYSTEM_ACTOR,
				      "resolved", check_state_name(ref->state),
				      "ok", text);
	free(text);
	if (r == 0)
		r = announce_ref(t, TICKET_RESOLVED, ref, parent_id, at_ms, NULL,
				 NULL);
	return r;
}

/* A child still not ok whose parent is up again: a ticket of its own. */
static int detach(struct topology *t, const struct ticket_ref *ref,
		  int64_t parent_id, int64_t at_ms)
{
	char parent[32], *text;
	int r;

	snprintf(parent, sizeof(parent), "#%lld", (long long)parent_id);
	text = xasprintf("the parent ticket #%lld recovered but this problem remains (%s): it is a ticket of its own now",
			 (long long)parent_id, check_state_name(ref->state));
	r = store_ticket_set_parent(t->st, ref->id, 0);
	if (r == 0)
		r = store_journal_add(t->st, ref->id, at_ms, SYSTEM_ACTOR,
				      "detached", parent, NULL, text);
	free(text);
	if (r == 0)
		r = dedup_metrics_add(t->metrics, DEDUP_DETACHED, 1);
	/*
	 * Announced as opened (field parent_id, old value the parent): for
	 * the notifiers the problem starts now.
	 */
	if (r == 0)
		r = announce_ref(t, TICKET_OPENED, ref, 0, at_ms, parent, NULL);
	return r;
}

/* The parent ticket c->ticket_id stopped being down: release its children. */
static int release_children(struct topology *t, const struct ticket_change *c)
{
	sqlite3_stmt *s = t->stmt[TS_OPEN_CHILDREN];
	struct ticket_ref *refs = NULL;
	char old[32];
	size_t n = 0;
	int r;

	sqlite3_bind_int64(s, 1, c->ticket_id);
	sqlite3_bind_int64(s, 2, CHILDREN_MAX);
	r = collect_refs(s, true, NULL, &refs, &n);
	snprintf(old, sizeof(old), "#%lld", (long long)c->ticket_id);
	for (size_t i = 0; r == 0 && i < n; i++) {
		struct topology_parent p;

		if (refs[i].state == CHECK_OK) {
			r = resolve_with_parent(t, &refs[i], c->ticket_id,
						c->at_ms);
			continue;
		}
		r = topology_find_parent(t, refs[i].host, &p);
		if (r > 0 && p.ticket_id != refs[i].id) {
			char *why = xasprintf("moved from #%lld, which recovered",
					      (long long)c->ticket_id);
			r = adopt(t, &refs[i], &p, c->at_ms, why, old);
			free(why);
		} else if (r >= 0) {
			r = detach(t, &refs[i], c->ticket_id, c->at_ms);
		}
	}
	refs_free(refs, n);
	return r < 0 ? r : 0;
}

int topology_on_change(struct topology *t, const struct ticket_change *c)
{
	switch (c->kind) {
	case TICKET_OPENED:
	case TICKET_REOPENED:
		if (c->host == NULL || c->state == CHECK_OK ||
		    !lifecycle_is_down_check(t->lc, c->host, c->check, c->item))
			return 0;
		return adopt_recent(t, c);
	case TICKET_RECOVERED:
	case TICKET_RESOLVED:
	case TICKET_CLOSED:
		return release_children(t, c);
	default:
		return 0;
	}
}

int topology_children_json(struct topology *t, int64_t ticket_id,
			   json_t **ret)
{
	sqlite3_stmt *s = t->stmt[TS_CHILDREN];
	json_t *list = json_array();
	int rc;

	sqlite3_bind_int64(s, 1, ticket_id);
	sqlite3_bind_int64(s, 2, CHILDREN_JSON_MAX);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		json_t *c = json_pack(
			"{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o}", "id",
			(json_int_t)sqlite3_column_int64(s, 0), "host",
			(const char *)sqlite3_column_text(s, 1), "check",
			(const char *)sqlite3_column_text(s, 2), "item",
			(const char *)sqlite3_column_text(s, 3), "status",
			(const char *)sqlite3_column_text(s, 4), "state",
			(const char *)sqlite3_column_text(s, 5), "summary",
			(const char *)sqlite3_column_text(s, 6), "opened_at",
			store_json_time(sqlite3_column_int64(s, 7)), "last_seen",
			store_json_time(sqlite3_column_int64(s, 8)));

		if (c)
			json_array_append_new(list, c);
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
