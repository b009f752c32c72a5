/*
 * Topology on a real SQLite file: tickets of hosts behind a down device
 * become children of its ticket, are released when it recovers (resolved
 * with it, or detached as tickets of their own), are adopted
 * retroactively within the attach window, and all of it over two levels
 * (site router -> core switch -> hosts).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lifecycle_fixture.h"

#define W(c) CHECK_##c

static const char *site =
	"hosts:\n"
	"  site-router: {role: central, tags: [network]}\n"
	"  core-switch: {role: central, parent: site-router}\n"
	"  web01: {parent: core-switch}\n"
	"  web02: {parent: core-switch}\n"
	"  db01: {parent: site-router}\n"
	"  lonely: {}\n"
	"lifecycle:\n"
	"  rules:\n"
	"    - match: {host: web02}\n"
	"      on_recovery: review\n";

static int64_t parent_of(struct fx *f, int64_t id)
{
	json_t *t = fx_ticket(f, id);
	int64_t p = json_is_integer(json_object_get(t, "parent_id"))
			    ? fx_int(t, "parent_id")
			    : 0;

	json_decref(t);
	return p;
}

/* The parent_id announced with the latest change of kind for id, or -1. */
static int64_t announced_parent(struct fx *f, enum ticket_change_kind kind,
				int64_t id)
{
	int64_t p = -1;

	for (size_t i = 0; i < f->nchanges; i++)
		if (f->changes[i].kind == kind && f->changes[i].ticket_id == id)
			p = f->changes[i].parent_id;
	return p;
}

static void test_hosts_behind_a_down_router_are_children(void **state)
{
	struct fx *f = fx_open(site);
	int64_t router, web01, db01, lonely;
	json_t *list, *t;

	(void)state;
	fx_at(f, "site-router", "link", "eth0", W(CRITICAL), MIN(0));
	router = fx_ticket_id(f, "site-router", "link", "eth0");
	fx_at(f, "web01", "heartbeat", "alive", W(CRITICAL), MIN(1));
	fx_at(f, "db01", "heartbeat", "alive", W(CRITICAL), MIN(1));
	fx_at(f, "lonely", "heartbeat", "alive", W(CRITICAL), MIN(1));
	web01 = fx_ticket_id(f, "web01", "heartbeat", "alive");
	db01 = fx_ticket_id(f, "db01", "heartbeat", "alive");
	lonely = fx_ticket_id(f, "lonely", "heartbeat", "alive");

	/* web01's switch is not down: the nearest down ancestor is the router */
	assert_int_equal(parent_of(f, web01), router);
	assert_int_equal(parent_of(f, db01), router);
	assert_int_equal(parent_of(f, lonely), 0);
	/* announced with the parent, so that notifiers stay quiet */
	assert_int_equal(announced_parent(f, TICKET_OPENED, web01), router);
	assert_int_equal(announced_parent(f, TICKET_OPENED, lonely), 0);
	assert_int_equal(fx_journal_count(f, web01, "attached"), 1);

	/* the open list shows the parent, with a count, not the children */
	list = fx_list(f, STORE_TICKETS_OPEN, false);
	assert_int_equal(json_array_size(list), 2);
	t = json_array_get(list, 1); /* newest first: lonely, router */
	assert_int_equal(fx_int(t, "id"), router);
	assert_int_equal(fx_int(t, "children_count"), 2);
	json_decref(list);
	assert_int_equal(fx_count(f, STORE_TICKETS_OPEN, true), 4);
	t = fx_ticket(f, router);
	assert_int_equal(json_array_size(json_object_get(t, "children")), 2);
	assert_string_equal(fx_str(json_array_get(json_object_get(t, "children"), 0), "host"), "web01");
	json_decref(t);
	assert_int_equal(fx_counter(f, DEDUP_ATTACHED), 2);
	/* a child's further occurrences do not detach it */
	fx_at(f, "web01", "heartbeat", "alive", W(CRITICAL), MIN(2));
	assert_int_equal(parent_of(f, web01), router);
	fx_close(f);
}

static void test_parent_recovery_releases_its_children(void **state)
{
	struct fx *f = fx_open(site);
	int64_t router, web01, web02, db01;
	size_t before;

	(void)state;
	fx_at(f, "site-router", "heartbeat", "alive", W(CRITICAL), MIN(0));
	router = fx_ticket_id(f, "site-router", "heartbeat", "alive");
	fx_at(f, "web01", "heartbeat", "alive", W(CRITICAL), MIN(1));
	fx_at(f, "web02", "heartbeat", "alive", W(CRITICAL), MIN(1));
	fx_at(f, "db01", "disk", "/", W(CRITICAL), MIN(1));
	web01 = fx_ticket_id(f, "web01", "heartbeat", "alive");
	web02 = fx_ticket_id(f, "web02", "heartbeat", "alive");
	db01 = fx_ticket_id(f, "db01", "disk", "/");
	/* db01's disk recovers on its own: resolved, still under the router */
	fx_at(f, "db01", "disk", "/", W(OK), MIN(2));
	assert_string_equal(fx_status(f, db01), "resolved");
	assert_int_equal(parent_of(f, db01), router);
	/* web02 came back (awaiting review under its rule) */
	fx_at(f, "web02", "heartbeat", "alive", W(OK), MIN(3));
	assert_string_equal(fx_status(f, web02), "recovered");

	before = f->nchanges;
	fx_at(f, "site-router", "heartbeat", "alive", W(OK), MIN(4));
	assert_string_equal(fx_status(f, router), "resolved");
	/* web02 recovered with its parent: resolved with it */
	assert_string_equal(fx_status(f, web02), "resolved");
	assert_int_equal(parent_of(f, web02), router);
	/* web01 is still down: a ticket of its own, announced as opened now */
	assert_string_equal(fx_status(f, web01), "new");
	assert_int_equal(parent_of(f, web01), 0);
	assert_int_equal(fx_journal_count(f, web01, "detached"), 1);
	bool opened_now = false;
	for (size_t i = before; i < f->nchanges; i++)
		if (f->changes[i].kind == TICKET_OPENED &&
		    f->changes[i].ticket_id == web01 && f->changes[i].parent_id == 0)
			opened_now = true;
	assert_true(opened_now);
	assert_int_equal(fx_counter(f, DEDUP_DETACHED), 1);
	/* the open list has it among the top-level tickets now */
	assert_int_equal(fx_count(f, STORE_TICKETS_OPEN, false), 1);
	fx_close(f);
}

static void test_children_opened_shortly_before_are_adopted(void **state)
{
	struct fx *f = fx_open(site);
	int64_t router, web01, db01;

	(void)state;
	fx_at(f, "db01", "heartbeat", "alive", W(CRITICAL), MIN(0));
	fx_at(f, "web01", "heartbeat", "alive", W(CRITICAL), MIN(8));
	db01 = fx_ticket_id(f, "db01", "heartbeat", "alive");
	web01 = fx_ticket_id(f, "web01", "heartbeat", "alive");
	assert_int_equal(parent_of(f, web01), 0);
	/* the router's trap arrives late: web01 went silent 2 min before */
	fx_at(f, "site-router", "link", "eth0", W(CRITICAL), MIN(10));
	router = fx_ticket_id(f, "site-router", "link", "eth0");
	assert_int_equal(parent_of(f, web01), router);
	assert_int_equal(announced_parent(f, TICKET_UPDATED, web01), router);
	/* db01's ticket is 10 min old, beyond the 5 min window: its own */
	assert_int_equal(parent_of(f, db01), 0);
	assert_int_equal(fx_count(f, STORE_TICKETS_OPEN, false), 2);
	fx_close(f);
}

static void test_two_levels(void **state)
{
	struct fx *f = fx_open(site);
	int64_t router, sw, web01, db01;

	(void)state;
	fx_at(f, "site-router", "heartbeat", "alive", W(CRITICAL), MIN(0));
	fx_at(f, "core-switch", "heartbeat", "alive", W(CRITICAL), MIN(1));
	fx_at(f, "web01", "heartbeat", "alive", W(CRITICAL), MIN(1));
	fx_at(f, "db01", "heartbeat", "alive", W(CRITICAL), MIN(1));
	router = fx_ticket_id(f, "site-router", "heartbeat", "alive");
	sw = fx_ticket_id(f, "core-switch", "heartbeat", "alive");
	web01 = fx_ticket_id(f, "web01", "heartbeat", "alive");
	db01 = fx_ticket_id(f, "db01", "heartbeat", "alive");
	/* a tree: the switch under the router, web01 under the switch */
	assert_int_equal(parent_of(f, sw), router);
	assert_int_equal(parent_of(f, web01), sw);
	assert_int_equal(parent_of(f, db01), router);
	assert_int_equal(fx_count(f, STORE_TICKETS_OPEN, false), 1);

	/* the router recovers; the switch (and so web01) and db01 are still down */
	fx_at(f, "site-router", "heartbeat", "alive", W(OK), MIN(5));
	assert_int_equal(parent_of(f, sw), 0);
	assert_int_equal(parent_of(f, db01), 0);
	assert_int_equal(parent_of(f, web01), sw);
	assert_int_equal(announced_parent(f, TICKET_OPENED, sw), 0);
	assert_int_equal(fx_count(f, STORE_TICKETS_OPEN, false), 2);

	/* then the switch: web01 is still down, and on its own */
	fx_at(f, "core-switch", "heartbeat", "alive", W(OK), MIN(6));
	assert_int_equal(parent_of(f, web01), 0);
	assert_string_equal(fx_status(f, web01), "new");
	assert_int_equal(fx_count(f, STORE_TICKETS_OPEN, false), 2);
	fx_close(f);
}

static void test_lower_level_adopts_from_the_higher(void **state)
{
	struct fx *f = fx_open(site);
	int64_t router, sw, web01;

	(void)state;
	/* the router is down first, web01 attaches to it ... */
	fx_at(f, "site-router", "heartbeat", "alive", W(CRITICAL), MIN(0));
	fx_at(f, "web01", "heartbeat", "alive", W(CRITICAL), MIN(1));
	router = fx_ticket_id(f, "site-router", "heartbeat", "alive");
	web01 = fx_ticket_id(f, "web01", "heartbeat", "alive");
	assert_int_equal(parent_of(f, web01), router);
	/* ... then the switch's silence is noticed: it goes under the router */
	fx_at(f, "core-switch", "heartbeat", "alive", W(CRITICAL), MIN(2));
	sw = fx_ticket_id(f, "core-switch", "heartbeat", "alive");
	assert_int_equal(parent_of(f, sw), router);
	/* the router recovers: web01 moves to the switch, still a child */
	fx_at(f, "site-router", "heartbeat", "alive", W(OK), MIN(3));
	assert_int_equal(parent_of(f, web01), sw);
	assert_int_equal(parent_of(f, sw), 0);
	fx_close(f);
}

static void test_maintenance_on_the_router_holds_back_its_hosts(void **state)
{
	static const struct silence_config conf = { .max_duration_ms = 86400000LL,
						    .max_silences = 10 };
	struct fx *f = fx_open(site);
	struct silence s = { .host = xstrdup("site-router"), .starts_ms = MIN(0),
			     .ends_ms = MIN(60), .author = xstrdup("alice"),
			     .comment = xstrdup("router replacement") };
	struct dedup_stats st;
	int64_t id, router, web01;

	(void)state;
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(silence_create(dedup_get(f->st)->silences, &s, MIN(0), &conf, &id), 0);
	assert_int_equal(store_commit(f->st), 0);
	silence_clear(&s);
	/* the router goes silent during its maintenance, and so do its hosts */
	fx_at(f, "site-router", "heartbeat", "alive", W(CRITICAL), MIN(5));
	st = fx_at(f, "web01", "heartbeat", "alive", W(CRITICAL), MIN(6));
	assert_int_equal(st.suppressed, 1);
	/* every host behind it, as every host's ticket would be its child */
	fx_at(f, "db01", "heartbeat", "alive", W(CRITICAL), MIN(6));
	assert_int_equal(fx_count(f, STORE_TICKETS_ALL, true), 0);
	/* a host behind no silenced device is not held back */
	st = fx_at(f, "lonely", "heartbeat", "alive", W(CRITICAL), MIN(6));
	assert_int_equal(st.opened, 1);

	/* the maintenance ends with all of it still down: one parent ticket */
	fx_tick(f, MIN(60));
	fx_tick(f, MIN(60) + 1000);
	router = fx_ticket_id(f, "site-router", "heartbeat", "alive");
	web01 = fx_ticket_id(f, "web01", "heartbeat", "alive");
	assert_true(router > 0 && web01 > 0);
	assert_int_equal(parent_of(f, web01), router);
	assert_int_equal(parent_of(f, fx_ticket_id(f, "db01", "heartbeat", "alive")), router);
	assert_int_equal(fx_count(f, STORE_TICKETS_OPEN, false), 2); /* router, lonely */
	fx_close(f);
}

/*
 * The silence ends for the router and its hosts at the same moment, and
 * the hosts were known first (their keys come first in due order): the
 * router's ticket must still be opened first, so that with
 * attach_window: 0 (no adoption afterwards) the hosts become its
 * children rather than tickets of their own.
 */
static void test_router_first_when_a_silence_ends(void **state)
{
	static const struct silence_config conf = { .max_duration_ms = 86400000LL,
						    .max_silences = 10 };
	char *yaml = xasprintf("%stopology: {attach_window: 0}\n", site);
	struct fx *f = fx_open(yaml);
	struct silence s = { .host = xstrdup("site-router"), .starts_ms = MIN(0),
			     .ends_ms = MIN(60), .author = xstrdup("alice"),
			     .comment = xstrdup("router replacement") };
	int64_t id, router;

	(void)state;
	free(yaml);
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(silence_create(dedup_get(f->st)->silences, &s, MIN(0), &conf, &id), 0);
	assert_int_equal(store_commit(f->st), 0);
	silence_clear(&s);
	/* the hosts report first (their rows, and keys, come first) */
	fx_at(f, "web01", "heartbeat", "alive", W(OK), MIN(1));
	fx_at(f, "db01", "heartbeat", "alive", W(OK), MIN(1));
	fx_at(f, "core-switch", "heartbeat", "alive", W(OK), MIN(1));
	fx_at(f, "site-router", "heartbeat", "alive", W(CRITICAL), MIN(5));
	fx_at(f, "core-switch", "heartbeat", "alive", W(CRITICAL), MIN(6));
	fx_at(f, "db01", "heartbeat", "alive", W(CRITICAL), MIN(6));
	fx_at(f, "web01", "heartbeat", "alive", W(CRITICAL), MIN(6));
	assert_int_equal(fx_count(f, STORE_TICKETS_ALL, true), 0);

	fx_tick(f, MIN(60));
	router = fx_ticket_id(f, "site-router", "heartbeat", "alive");
	assert_true(router > 0);
	assert_int_equal(parent_of(f, fx_ticket_id(f, "core-switch", "heartbeat", "alive")), router);
	assert_int_equal(parent_of(f, fx_ticket_id(f, "db01", "heartbeat", "alive")), router);
	/* web01 is behind the switch, itself down behind the router */
	assert_true(parent_of(f, fx_ticket_id(f, "web01", "heartbeat", "alive")) > 0);
	assert_int_equal(fx_count(f, STORE_TICKETS_OPEN, false), 1);
	fx_close(f);
}

/*
 * A host held back because its router is down in maintenance is looked
 * at afresh by its next result (not only when the silence ends): the
 * router came back, the host is still down, so it is a ticket now.
 */
static void test_held_back_host_opens_when_the_router_comes_back(void **state)
{
	static const struct silence_config conf = { .max_duration_ms = 86400000LL,
						    .max_silences = 10 };
	struct fx *f = fx_open(site);
	struct silence s = { .host = xstrdup("site-router"), .starts_ms = MIN(0),
			     .ends_ms = MIN(60), .author = xstrdup("alice"),
			     .comment = xstrdup("router replacement") };
	struct dedup_stats st;
	int64_t id;

	(void)state;
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(silence_create(dedup_get(f->st)->silences, &s, MIN(0), &conf, &id), 0);
	assert_int_equal(store_commit(f->st), 0);
	silence_clear(&s);
	fx_at(f, "site-router", "heartbeat", "alive", W(CRITICAL), MIN(5));
	st = fx_at(f, "db01", "heartbeat", "alive", W(CRITICAL), MIN(6));
	assert_int_equal(st.suppressed, 1);
	st = fx_at(f, "db01", "heartbeat", "alive", W(CRITICAL), MIN(7));
	assert_int_equal(st.suppressed, 1);
	fx_at(f, "site-router", "heartbeat", "alive", W(OK), MIN(10));
	st = fx_at(f, "db01", "heartbeat", "alive", W(CRITICAL), MIN(11));
	assert_int_equal(st.opened, 1);
	assert_int_equal(parent_of(f, fx_ticket_id(f, "db01", "heartbeat", "alive")), 0);
	fx_close(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hosts_behind_a_down_router_are_children),
		cmocka_unit_test(test_parent_recovery_releases_its_children),
		cmocka_unit_test(test_children_opened_shortly_before_are_adopted),
		cmocka_unit_test(test_two_levels),
		cmocka_unit_test(test_lower_level_adopts_from_the_higher),
		cmocka_unit_test(test_maintenance_on_the_router_holds_back_its_hosts),
		cmocka_unit_test(test_router_first_when_a_silence_ends),
		cmocka_unit_test(test_held_back_host_opens_when_the_router_comes_back),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
