/*
 * The durable outbox on a real SQLite file: ids that survive a reopen,
 * batches bounded by count and bytes, deletion only on acknowledgement,
 * the drop order when full (repeated samples, then superseded changes,
 * then the oldest), age limits, refusals and the drop report; and the
 * delivery wait kept beside it.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../agent/event.h"
#include "../../agent/outbox.h"
#include "../../agent/statedb.h"
#include "../../common/util.h"

struct fixture {
	char dir[64];
	sqlite3 *db;
	struct outbox *ob;
	struct outbox_limits lim;
};

static int reopen(struct fixture *f)
{
	outbox_close(f->ob);
	statedb_close(f->db);
	f->ob = NULL;
	f->db = NULL;
	if (statedb_open(f->dir, &f->db) < 0)
		return -1;
	return outbox_open(f->db, &f->lim, &f->ob);
}

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));

	strlcpy_safe(f->dir, "/tmp/tocsin-test-outbox-XXXXXX", sizeof(f->dir));
	if (mkdtemp(f->dir) == NULL)
		return -1;
	outbox_limits_default(&f->lim);
	*state = f;
	return reopen(f);
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	const char *files[] = { "agent.db", "agent.db-wal", "agent.db-shm" };

	outbox_close(f->ob);
	statedb_close(f->db);
	for (size_t i = 0; i < ARRAY_SIZE(files); i++) {
		char *p = xasprintf("%s/%s", f->dir, files[i]);
		unlink(p);
		free(p);
	}
	rmdir(f->dir);
	free(f);
	return 0;
}

/* Queue one result (check, item, state) observed at now_ms. */
static void queue(struct fixture *f, const char *check, const char *item,
		  enum check_state state, int64_t now_ms,
		  struct outbox_drops *drops)
{
	struct check_results res = { 0 };

	check_results_add(&res, item, state, NULL, "%s is %s", item,
			  check_state_name(state));
	res.v[0].check = xstrdup(check);
	assert_int_equal(outbox_enqueue(f->ob, &res, now_ms, drops), 1);
	check_results_clear(&res);
}

static const char *ev_str(const json_t *ev, const char *key)
{
	return json_string_value(json_object_get(ev, key));
}

static void stats(struct fixture *f, struct outbox_stats *st)
{
	assert_int_equal(outbox_stats(f->ob, st), 0);
}

/* Every queued event's item, oldest first, joined by spaces. */
static void queued_items(struct fixture *f, char *buf, size_t size)
{
	struct outbox_batch b;

	buf[0] = '\0';
	assert_int_equal(outbox_next_batch(f->ob, 100000, &b), 0);
	for (size_t i = 0; i < b.n; i++) {
		const json_t *ev = json_array_get(b.events, i);

		if (strcmp(ev_str(ev, "check"), "agent") == 0)
			continue;
		if (buf[0] != '\0')
			strlcat_safe(buf, " ", size);
		strlcat_safe(buf, ev_str(ev, "item"), size);
		strlcat_safe(buf, ":", size);
		strlcat_safe(buf, ev_str(ev, "state"), size);
	}
	outbox_batch_free(&b);
}

static void test_events_survive_reopen_with_their_ids(void **state)
{
	struct fixture *f = *state;
	struct outbox_batch b1, b2;
	struct outbox_stats st;

	queue(f, "disk", "/", CHECK_WARNING, 1000, NULL);
	queue(f, "disk", "/srv", CHECK_OK, 1000, NULL);
	assert_int_equal(outbox_next_batch(f->ob, 0, &b1), 0);
	assert_int_equal(b1.n, 2);
	/* a crash before the answer: the same ids go out again */
	assert_int_equal(reopen(f), 0);
	assert_int_equal(outbox_next_batch(f->ob, 0, &b2), 0);
	assert_int_equal(b2.n, 2);
	for (size_t i = 0; i < 2; i++) {
		const json_t *e1 = json_array_get(b1.events, i);
		const json_t *e2 = json_array_get(b2.events, i);

		assert_true(uuid_valid(ev_str(e1, "id")));
		assert_string_equal(ev_str(e1, "id"), ev_str(e2, "id"));
	}
	assert_string_equal(ev_str(json_array_get(b2.events, 0), "item"), "/");
	assert_string_equal(ev_str(json_array_get(b2.events, 0), "state"), "warning");
	stats(f, &st);
	assert_int_equal(st.queued, 2);

	/* only the acknowledgement deletes */
	assert_int_equal(outbox_ack(f->ob, &b2, 2000), 0);
	stats(f, &st);
	assert_int_equal(st.queued, 0);
	assert_int_equal(st.bytes, 0);
	outbox_batch_free(&b1);
	outbox_batch_free(&b2);
	assert_int_equal(reopen(f), 0);
	assert_int_equal(outbox_next_batch(f->ob, 0, &b1), 0);
	assert_int_equal(b1.n, 0);
	assert_int_equal(b1.last_seq, 0);
	outbox_batch_free(&b1);
}

static void test_ack_deletes_only_what_was_sent(void **state)
{
	struct fixture *f = *state;
	struct outbox_batch b;
	char items[256];

	queue(f, "disk", "a", CHECK_OK, 1000, NULL);
	queue(f, "disk", "b", CHECK_OK, 1000, NULL);
	assert_int_equal(outbox_next_batch(f->ob, 0, &b), 0);
	/* queued while the batch was in flight */
	queue(f, "disk", "c", CHECK_OK, 1000, NULL);
	assert_int_equal(outbox_ack(f->ob, &b, 2000), 0);
	outbox_batch_free(&b);
	queued_items(f, items, sizeof(items));
	assert_string_equal(items, "c:ok");
}

static void test_batches_are_bounded_by_count_and_bytes(void **state)
{
	struct fixture *f = *state;
	struct outbox_batch b;
	char item[32];

	f->lim.batch_events = 7;
	f->lim.batch_bytes = 4096;
	outbox_set_limits(f->ob, &f->lim);
	for (int i = 0; i < 40; i++) {
		snprintf(item, sizeof(item), "/mnt/%02d", i);
		queue(f, "disk", item, CHECK_OK, 1000, NULL);
	}
	assert_int_equal(outbox_next_batch(f->ob, 0, &b), 0);
	assert_int_equal(b.n, 7); /* the count bound */
	outbox_batch_free(&b);
	/* a smaller limit from the caller (halving after a 400) wins */
	assert_int_equal(outbox_next_batch(f->ob, 3, &b), 0);
	assert_int_equal(b.n, 3);
	outbox_batch_free(&b);

	f->lim.batch_events = 1000;
	outbox_set_limits(f->ob, &f->lim);
	assert_int_equal(outbox_next_batch(f->ob, 0, &b), 0);
	/* the byte bound: about 160 bytes per event, 4 KiB with envelope */
	assert_true(b.n > 5 && b.n < 40);
	assert_true(b.bytes + 512 <= 4096);
	outbox_batch_free(&b);
}

static void test_full_drops_repeats_oldest_first_keeps_changes(void **state)
{
	struct fixture *f = *state;
	struct outbox_drops drops = { 0 }, all = { 0 };
	struct outbox_stats st;
	char items[512];

	f->lim.max_events = 10;
	outbox_set_limits(f->ob, &f->lim);
	/* a flapping key and a steady one */
	queue(f, "disk", "steady", CHECK_OK, 1000, NULL);
	queue(f, "disk", "flap", CHECK_OK, 1000, NULL);
	for (int i = 0; i < 30; i++) {
		queue(f, "disk", "steady", CHECK_OK, 1001 + i, &drops);
		all.repeats += drops.repeats;
		all.changes += drops.changes;
		if (i == 10 || i == 20)
			queue(f, "disk", "flap", i == 10 ? CHECK_CRITICAL : CHECK_OK,
			      1001 + i, NULL);
	}
	stats(f, &st);
	assert_int_equal(st.queued, 10);
	assert_int_equal(all.changes, 0);
	assert_int_equal(st.dropped_repeats, 24); /* 34 queued - 10 */
	assert_int_equal(st.dropped_changes, 0);
	assert_true(st.dropped_since_ms > 0);
	/* every state change is still there, with the newest repeats */
	queued_items(f, items, sizeof(items));
	assert_string_equal(items,
			    "steady:ok flap:ok flap:critical flap:ok steady:ok "
			    "steady:ok steady:ok steady:ok steady:ok steady:ok");
}

static void test_only_changes_left_drops_superseded_then_oldest(void **state)
{
	struct fixture *f = *state;
	struct outbox_stats st;
	char items[512], item[16];

	f->lim.max_events = 10;
	outbox_set_limits(f->ob, &f->lim);
	/* key k alternates: every event is a change */
	for (int i = 0; i < 8; i++)
		queue(f, "svc", "k", i % 2 ? CHECK_CRITICAL : CHECK_OK, 1000 + i, NULL);
	for (int i = 0; i < 4; i++) {
		snprintf(item, sizeof(item), "u%d", i);
		queue(f, "svc", item, CHECK_WARNING, 2000 + i, NULL);
	}
	/* 12 changes, room for 10: the two oldest of k go, the latest stays */
	stats(f, &st);
	assert_int_equal(st.queued, 10);
	assert_int_equal(st.dropped_changes, 2);
	queued_items(f, items, sizeof(items));
	assert_string_equal(items,
			    "k:ok k:critical k:ok k:critical k:ok k:critical "
			    "u0:warning u1:warning u2:warning u3:warning");

	/* more keys than room: k's history goes, then the oldest keys */
	for (int i = 4; i < 14; i++) {
		snprintf(item, sizeof(item), "u%d", i);
		queue(f, "svc", item, CHECK_WARNING, 3000 + i, NULL);
	}
	stats(f, &st);
	assert_int_equal(st.queued, 10);
	queued_items(f, items, sizeof(items));
	assert_string_equal(items,
			    "u4:warning u5:warning u6:warning u7:warning u8:warning "
			    "u9:warning u10:warning u11:warning u12:warning u13:warning");
	assert_int_equal(st.dropped_changes, 2 + 6 + 4);

	/* the report names only what happened */
	queued_items(f, items, sizeof(items));
	{
		struct outbox_batch b;

		assert_int_equal(outbox_next_batch(f->ob, 0, &b), 0);
		assert_int_equal(outbox_ack(f->ob, &b, 5000), 0);
		outbox_batch_free(&b);
		assert_int_equal(outbox_next_batch(f->ob, 0, &b), 0);
		assert_non_null(b.report_id);
		assert_string_equal(ev_str(json_array_get(b.events, 0), "summary"),
				    "outbox full: 12 older state changes dropped since 1970-01-01 00:00 UTC");
		outbox_batch_free(&b);
	}
}

static void test_byte_bound_is_enforced(void **state)
{
	struct fixture *f = *state;
	struct outbox_stats st;

	f->lim.max_bytes = 64 * 1024;
	outbox_set_limits(f->ob, &f->lim);
	for (int i = 0; i < 2000; i++)
		queue(f, "disk", "/", CHECK_OK, 1000 + i, NULL);
	stats(f, &st);
	assert_true(st.bytes <= 64 * 1024);
	assert_true(st.queued > 100);
	assert_int_equal(st.queued + st.dropped_repeats, 2000);
}

static void test_age_drops_old_but_keeps_latest_of_each_key(void **state)
{
	struct fixture *f = *state;
	struct outbox_stats st;
	char items[256];
	int64_t day = 86400 * 1000LL;

	f->lim.max_age_ms = day;
	outbox_set_limits(f->ob, &f->lim);
	queue(f, "disk", "a", CHECK_WARNING, 1 * day, NULL);
	queue(f, "disk", "a", CHECK_WARNING, 1 * day + 1, NULL);
	queue(f, "disk", "a", CHECK_OK, 1 * day + 2, NULL);
	queue(f, "disk", "b", CHECK_CRITICAL, 1 * day + 3, NULL);
	/* two days later: a's first two are old and superseded; b is the
	 * latest of its key and stays whatever its age */
	queue(f, "disk", "c", CHECK_OK, 3 * day, NULL);
	queued_items(f, items, sizeof(items));
	assert_string_equal(items, "a:ok b:critical c:ok");
	stats(f, &st);
	assert_int_equal(st.dropped_repeats, 1);
	assert_int_equal(st.dropped_changes, 1);
}

/* The report event at the head of the next batch, or NULL. */
static json_t *head_report(struct fixture *f, struct outbox_batch *b)
{
	json_t *ev;

	assert_int_equal(outbox_next_batch(f->ob, 0, b), 0);
	ev = json_array_get(b->events, 0);
	if (b->report_id == NULL)
		return NULL;
	assert_string_equal(ev_str(ev, "check"), "agent");
	assert_string_equal(ev_str(ev, "item"), "outbox");
	assert_string_equal(ev_str(ev, "id"), b->report_id);
	return ev;
}

static void test_drops_are_reported_once_the_collector_answers(void **state)
{
	struct fixture *f = *state;
	struct outbox_batch b, again;
	struct outbox_stats st;
	json_t *rep;

	f->lim.max_events = 10;
	outbox_set_limits(f->ob, &f->lim);
	/* 2026-11-30 10:00:00 UTC */
	for (int i = 0; i < 1244; i++)
		queue(f, "heartbeat", "alive", CHECK_OK, 1796032800000LL + i, NULL);
	stats(f, &st);
	assert_int_equal(st.dropped_repeats, 1234);
	/* no report while the collector has not answered */
	assert_null(head_report(f, &b));
	assert_int_equal(b.n, 10);
	assert_int_equal(outbox_ack(f->ob, &b, 1796040000000LL), 0);
	outbox_batch_free(&b);

	/* the first answer: the report leads the next batch, warning */
	queue(f, "disk", "/", CHECK_OK, 1796040000001LL, NULL);
	rep = head_report(f, &b);
	assert_non_null(rep);
	assert_string_equal(ev_str(rep, "state"), "warning");
	assert_string_equal(ev_str(rep, "summary"),
			    "outbox full: 1,234 repeated samples dropped since 2026-11-30 10:00 UTC");
	assert_int_equal(json_integer_value(json_object_get(
				 json_object_get(rep, "metrics"), "dropped_repeats")),
			 1234);
	assert_int_equal(b.n, 2);
	/* not acknowledged: the same report, same id, goes again */
	assert_non_null(head_report(f, &again));
	assert_string_equal(again.report_id, b.report_id);
	outbox_batch_free(&again);
	assert_int_equal(outbox_ack(f->ob, &b, 1796040000002LL), 0);
	outbox_batch_free(&b);
	stats(f, &st);
	assert_int_equal(st.dropped_repeats, 0);
	assert_int_equal(st.dropped_since_ms, 0);
	assert_int_equal(st.queued, 0);

	/* drained: the all-clear of the same key closes the episode */
	rep = head_report(f, &b);
	assert_non_null(rep);
	assert_string_equal(ev_str(rep, "state"), "ok");
	assert_int_equal(b.n, 1);
	assert_int_equal(outbox_ack(f->ob, &b, 1796040000003LL), 0);
	outbox_batch_free(&b);
	assert_null(head_report(f, &b));
	assert_int_equal(b.n, 0);
	outbox_batch_free(&b);
}

/*
 * Events held in memory while the outbox could not be written go in with
 * the ids and times they were made with, and what was dropped while they
 * were held is counted as the outbox's own drops.
 */
static void test_held_events_keep_their_ids_and_their_drops_count(void **state)
{
	struct fixture *f = *state;
	struct check_results res = { 0 };
	struct outbox_drops before = { .repeats = 7, .changes = 2 }, drops;
	struct outbox_batch b;
	struct outbox_stats st;
	json_t *events = json_array(), *rep;
	char id[64], at[64];

	check_results_add(&res, "/", CHECK_CRITICAL, NULL, "full");
	res.v[0].check = xstrdup("disk");
	json_array_append_new(events, event_from_result(&res.v[0], 1796032800000LL));
	strlcpy_safe(id, ev_str(json_array_get(events, 0), "id"), sizeof(id));
	strlcpy_safe(at, ev_str(json_array_get(events, 0), "observed_at"), sizeof(at));
	assert_int_equal(outbox_enqueue_events(f->ob, events, &before,
					       1796040000000LL, &drops), 1);
	assert_int_equal(drops.queued_changes, 1);
	stats(f, &st);
	assert_int_equal(st.queued, 1);
	assert_int_equal(st.dropped_repeats, 7);
	assert_int_equal(st.dropped_changes, 2);
	assert_int_equal(st.dropped_since_ms, 1796040000000LL);
	assert_int_equal(outbox_next_batch(f->ob, 0, &b), 0);
	assert_int_equal(b.n, 1);
	assert_string_equal(ev_str(json_array_get(b.events, 0), "id"), id);
	assert_string_equal(ev_str(json_array_get(b.events, 0), "observed_at"), at);
	assert_int_equal(outbox_ack(f->ob, &b, 1796040000001LL), 0);
	outbox_batch_free(&b);
	/* the drops are reported as the outbox's own */
	rep = head_report(f, &b);
	assert_non_null(rep);
	assert_int_equal(json_integer_value(json_object_get(
				 json_object_get(rep, "metrics"), "dropped_repeats")),
			 7);
	outbox_batch_free(&b);
	/* only drops to count, nothing held any more: counted all the same */
	assert_int_equal(json_array_clear(events), 0);
	assert_int_equal(outbox_enqueue_events(f->ob, events, &before,
					       1796040000002LL, NULL), 0);
	stats(f, &st);
	assert_int_equal(st.dropped_repeats, 14);
	json_decref(events);
	check_results_clear(&res);
}

static void test_refused_event_is_dropped_counted_and_reported(void **state)
{
	struct fixture *f = *state;
	struct outbox_batch b;
	struct outbox_stats st;
	char items[128];
	json_t *rep;

	queue(f, "plugin", "bad", CHECK_OK, 1000, NULL);
	queue(f, "plugin", "good", CHECK_OK, 1000, NULL);
	assert_int_equal(outbox_next_batch(f->ob, 1, &b), 0);
	assert_int_equal(b.n, 1);
	assert_int_equal(outbox_reject(f->ob, &b, 2000), 0);
	outbox_batch_free(&b);
	stats(f, &st);
	assert_int_equal(st.rejected, 1);
	assert_int_equal(st.queued, 1);
	queued_items(f, items, sizeof(items));
	assert_string_equal(items, "good:ok");

	assert_int_equal(outbox_next_batch(f->ob, 0, &b), 0);
	assert_int_equal(outbox_ack(f->ob, &b, 3000), 0);
	outbox_batch_free(&b);
	rep = head_report(f, &b);
	assert_non_null(rep);
	assert_non_null(strstr(ev_str(rep, "summary"),
			       "1 events refused by the collector and dropped since"));
	outbox_batch_free(&b);
}

static void test_two_connections_share_one_outbox(void **state)
{
	struct fixture *f = *state;
	struct outbox *other;
	sqlite3 *db2;
	struct outbox_batch b;
	struct outbox_stats st;

	/* the daemon and a manual --once on one state directory */
	assert_int_equal(statedb_open(f->dir, &db2), 0);
	assert_int_equal(outbox_open(db2, &f->lim, &other), 0);
	queue(f, "disk", "a", CHECK_OK, 1000, NULL);
	assert_int_equal(outbox_next_batch(other, 0, &b), 0);
	assert_int_equal(b.n, 1);
	assert_int_equal(outbox_ack(other, &b, 2000), 0);
	outbox_batch_free(&b);
	queue(f, "disk", "b", CHECK_OK, 3000, NULL);
	stats(f, &st);
	assert_int_equal(st.queued, 1);
	outbox_close(other);
	statedb_close(db2);
}

/*
 * The delivery wait's table comes with the schema (delivery_new() runs
 * statedb_wait_migrate() beside outbox_open()), not with the first
 * load: on a fresh database a save with no load before it works, and
 * what it kept is read back for the same collectors only, after a
 * reopen too, until it is forgotten.
 */
static void test_delivery_wait_saved_on_a_fresh_database(void **state)
{
	struct fixture *f = *state;
	const char *collectors = "https://a.example\nhttps://b.example";
	struct statedb_wait w = { 0 };

	assert_int_equal(statedb_wait_migrate(f->db), 0);
	assert_int_equal(statedb_wait_save(f->db, collectors,
					   &(struct statedb_wait){
						   .not_before_ms = 5000,
						   .delay_ms = 2000,
						   .retry_after = true,
					   }),
			 0);
	assert_int_equal(reopen(f), 0);
	assert_int_equal(statedb_wait_migrate(f->db), 0); /* again: a no-op */
	assert_int_equal(statedb_wait_load(f->db, collectors, &w), 0);
	assert_int_equal(w.not_before_ms, 5000);
	assert_int_equal(w.delay_ms, 2000);
	assert_true(w.retry_after);
	assert_int_equal(statedb_wait_load(f->db, "https://a.example", &w), -ENOENT);
	assert_int_equal(statedb_wait_save(f->db, collectors, NULL), 0);
	assert_int_equal(statedb_wait_load(f->db, collectors, &w), -ENOENT);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_events_survive_reopen_with_their_ids, setup, teardown),
		cmocka_unit_test_setup_teardown(test_held_events_keep_their_ids_and_their_drops_count, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ack_deletes_only_what_was_sent, setup, teardown),
		cmocka_unit_test_setup_teardown(test_batches_are_bounded_by_count_and_bytes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_drops_repeats_oldest_first_keeps_changes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_only_changes_left_drops_superseded_then_oldest, setup, teardown),
		cmocka_unit_test_setup_teardown(test_byte_bound_is_enforced, setup, teardown),
		cmocka_unit_test_setup_teardown(test_age_drops_old_but_keeps_latest_of_each_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_drops_are_reported_once_the_collector_answers, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refused_event_is_dropped_counted_and_reported, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_connections_share_one_outbox, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delivery_wait_saved_on_a_fresh_database, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
