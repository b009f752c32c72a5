/*
 * A real store on a temporary SQLite file with the lifecycle configured
 * from YAML text, for the lifecycle, silence and topology tests: events
 * go through dedup_apply_events() in real transactions, timers through
 * dedup_tick(), and every ticket change announced is recorded.
 */
#ifndef TOCSIN_LIFECYCLE_FIXTURE_H
#define TOCSIN_LIFECYCLE_FIXTURE_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/config.h"
#include "../../common/util.h"
#include "../../server/dedup.h"
#include "../../server/dedup_metrics.h"
#include "../../server/inventory.h"
#include "../../server/lifecycle.h"
#include "../../server/silence.h"
#include "../../server/store.h"
#include "tmpdb.h"

#define UNUSED __attribute__((unused))

/* 2026-11-22T10:00:00Z and minutes after it. */
#define T0 1795341600000LL
#define MIN(m) (T0 + (int64_t)(m) * 60000LL)

#define CHANGES_MAX 256

struct change_seen {
	enum ticket_change_kind kind;
	int64_t ticket_id;
	int64_t parent_id;
	bool flapping;
	char host[64];
	char field[16];
};

struct fx {
	char path[64];
	struct store *st;
	struct cfg *cfg;
	struct inventory *inv;
	struct lifecycle_config *lc;
	int seq;
	struct change_seen changes[CHANGES_MAX];
	size_t nchanges;
};

static UNUSED int fx_record(void *arg, struct store *st,
			    const struct ticket_change *c)
{
	struct fx *f = arg;
	struct change_seen *s;

	(void)st;
	if (f->nchanges == CHANGES_MAX)
		return 0;
	s = &f->changes[f->nchanges++];
	*s = (struct change_seen){ .kind = c->kind,
				   .ticket_id = c->ticket_id,
				   .parent_id = c->parent_id,
				   .flapping = c->flapping };
	strlcpy_safe(s->host, c->host ? c->host : "", sizeof(s->host));
	strlcpy_safe(s->field, c->field ? c->field : "", sizeof(s->field));
	return 0;
}

/* Open a store configured by yaml (server configuration keys). */
static UNUSED struct fx *fx_open(const char *yaml)
{
	struct fx *f = xcalloc(1, sizeof(*f));

	assert_int_equal(tmpdb_make(f->path, sizeof(f->path), "lifecycle"), 0);
	assert_int_equal(cfg_load_string("test.yaml", yaml, &f->cfg), 0);
	inventory_parse(f->cfg, f->cfg->root, &f->inv);
	lifecycle_config_parse(f->cfg, f->cfg->root, f->inv, &f->lc);
	if (cfg_finish(f->cfg) > 0)
		cfg_print_errors(f->cfg);
	assert_int_equal(f->cfg->nerrors, 0);
	assert_int_equal(store_open(f->path, &f->st), 0);
	assert_int_equal(dedup_configure(f->st, f->lc, f->inv), 0);
	assert_int_equal(store_listen(f->st, fx_record, f), 0);
	return f;
}

/* Close and open the store again, as a restart does. */
static UNUSED void fx_restart(struct fx *f)
{
	store_close(f->st);
	assert_int_equal(store_open(f->path, &f->st), 0);
	assert_int_equal(dedup_configure(f->st, f->lc, f->inv), 0);
	assert_int_equal(store_listen(f->st, fx_record, f), 0);
}

static UNUSED void fx_close(struct fx *f)
{
	store_close(f->st);
	lifecycle_config_free(f->lc);
	inventory_free(f->inv);
	cfg_free(f->cfg);
	tmpdb_remove(f->path);
	free(f);
}

/* One event observed at observed_ms and received at now_ms, committed. */
static UNUSED struct dedup_stats fx_event(struct fx *f, const char *host,
					  const char *check, const char *item,
					  enum check_state state,
					  int64_t observed_ms, int64_t now_ms)
{
	char summary[256];
	struct ingest_event ev = {
		.check = check,
		.item = item,
		.summary = summary,
		.state = state,
		.observed_ms = observed_ms,
		.metrics = xstrdup("{}"),
	};
	struct dedup_stats stats;

	f->seq++;
	memcpy(ev.id, &f->seq, sizeof(f->seq));
	ev.id[15] = 0x5a;
	snprintf(summary, sizeof(summary), "%s %s on %s is %s", check, item,
		 host, check_state_name(state));
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(dedup_apply_events(f->st, host, &ev, 1, now_ms, &stats), 0);
	assert_int_equal(store_commit(f->st), 0);
	free(ev.metrics);
	return stats;
}

/* The same, observed when received. */
static UNUSED struct dedup_stats fx_at(struct fx *f, const char *host,
				       const char *check, const char *item,
				       enum check_state state, int64_t at_ms)
{
	return fx_event(f, host, check, item, state, at_ms, at_ms);
}

static UNUSED int fx_tick(struct fx *f, int64_t now_ms)
{
	int n;

	assert_int_equal(store_begin(f->st), 0);
	n = dedup_tick(f->st, now_ms);
	assert_true(n >= 0);
	assert_int_equal(store_commit(f->st), 0);
	return n;
}

/* Tickets of a list (children too), the caller decrefs. */
static UNUSED json_t *fx_list(struct fx *f, enum store_ticket_filter filter,
			      bool with_children)
{
	json_t *list;

	if (with_children)
		assert_int_equal(store_tickets_list_with_children(f->st, filter, 1000, 0, &list), 0);
	else
		assert_int_equal(store_tickets_list(f->st, filter, 1000, 0, &list), 0);
	return list;
}

static UNUSED size_t fx_count(struct fx *f, enum store_ticket_filter filter,
			      bool with_children)
{
	json_t *list = fx_list(f, filter, with_children);
	size_t n = json_array_size(list);

	json_decref(list);
	return n;
}

/* The newest ticket for (host, check, item), 0 when none. */
static UNUSED int64_t fx_ticket_id(struct fx *f, const char *host,
				   const char *check, const char *item)
{
	json_t *list = fx_list(f, STORE_TICKETS_ALL, true), *t;
	int64_t id = 0;
	size_t i;

	json_array_foreach(list, i, t) {
		if (strcmp(json_string_value(json_object_get(t, "host")), host) == 0 &&
		    strcmp(json_string_value(json_object_get(t, "check")), check) == 0 &&
		    strcmp(json_string_value(json_object_get(t, "item")), item) == 0) {
			id = json_integer_value(json_object_get(t, "id"));
			break;
		}
	}
	json_decref(list);
	return id;
}

/* A ticket with its journal and children; the caller decrefs. */
static UNUSED json_t *fx_ticket(struct fx *f, int64_t id)
{
	json_t *t, *children;

	assert_int_equal(store_ticket_get(f->st, id, 100, &t), 0);
	assert_int_equal(dedup_children_json(f->st, id, &children), 0);
	json_object_set_new(t, "children", children);
	return t;
}

static UNUSED const char *fx_str(json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s ? s : "(null)";
}

static UNUSED int64_t fx_int(json_t *obj, const char *key)
{
	return json_integer_value(json_object_get(obj, key));
}

/* The status of ticket id. */
static UNUSED char *fx_status(struct fx *f, int64_t id)
{
	static char buf[32];
	json_t *t = fx_ticket(f, id);

	strlcpy_safe(buf, fx_str(t, "status"), sizeof(buf));
	json_decref(t);
	return buf;
}

/* Whether the ticket's journal has an entry with action. */
static UNUSED int fx_journal_count(struct fx *f, int64_t id, const char *action)
{
	json_t *t = fx_ticket(f, id), *e;
	int n = 0;
	size_t i;

	json_array_foreach(json_object_get(t, "journal"), i, e)
		if (strcmp(fx_str(e, "action"), action) == 0)
			n++;
	json_decref(t);
	return n;
}

static UNUSED int64_t fx_counter(struct fx *f, enum dedup_counter c)
{
	int64_t v;

	assert_int_equal(dedup_metrics_get(dedup_get(f->st)->metrics, c, &v), 0);
	return v;
}

/* Changes of kind announced for ticket id. */
static UNUSED int fx_changes(struct fx *f, enum ticket_change_kind kind,
			     int64_t id)
{
	int n = 0;

	for (size_t i = 0; i < f->nchanges; i++)
		if (f->changes[i].kind == kind && f->changes[i].ticket_id == id)
			n++;
	return n;
}

#endif
