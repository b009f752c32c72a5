/*
 * ingest.max_keys_per_host: a host's agent cannot create problem keys
 * (rows that are never deleted, and tickets) without end.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lifecycle_fixture.h"

#define NEVENTS_MAX 16

/* A batch of one event per item, all in state, committed or rolled back. */
static int batch(struct fx *f, const char *host, const char *const *items,
		 size_t n, enum check_state state, struct dedup_stats *ret)
{
	struct ingest_event evs[NEVENTS_MAX];
	int r;

	assert_true(n <= NEVENTS_MAX);
	for (size_t i = 0; i < n; i++) {
		f->seq++;
		evs[i] = (struct ingest_event){
			.check = "disk",
			.item = items[i],
			.summary = "full",
			.state = state,
			.observed_ms = MIN(f->seq),
			.metrics = "{}",
		};
		memcpy(evs[i].id, &f->seq, sizeof(f->seq));
		evs[i].id[15] = 0x6b;
	}
	assert_int_equal(store_begin(f->st), 0);
	r = dedup_apply_events(f->st, host, evs, n, MIN(f->seq), ret);
	if (r == 0)
		assert_int_equal(store_commit(f->st), 0);
	else
		store_rollback(f->st);
	return r;
}

static size_t open_tickets(struct fx *f)
{
	json_t *list;
	size_t n;

	assert_int_equal(store_tickets_list(f->st, STORE_TICKETS_OPEN, 1000, 0,
					    &list), 0);
	n = json_array_size(list);
	json_decref(list);
	return n;
}

static void test_new_keys_beyond_the_cap_refuse_the_batch(void **state)
{
	static const char *const first[] = { "/a", "/b", "/c" };
	static const char *const more[] = { "/a", "/d", "/e", "/d" };
	static const char *const known[] = { "/a", "/b", "/c", "/a" };
	struct fx *f = fx_open("");
	struct dedup_stats s;

	(void)state;
	f->lc->max_keys_per_host = 4;
	assert_int_equal(batch(f, "web01", first, 3, CHECK_CRITICAL, &s), 0);
	assert_int_equal(open_tickets(f), 3);
	/* /d and /e (once each) would make 5: all of it refused, /a too */
	assert_int_equal(batch(f, "web01", more, 4, CHECK_CRITICAL, &s),
			 -EDQUOT);
	assert_int_equal(s.keys_known, 3);
	assert_int_equal(s.keys_new, 2);
	assert_int_equal(s.keys_max, 4);
	assert_true(s.refusing_anew);
	assert_int_equal(open_tickets(f), 3);
	/* refused again: the same streak */
	assert_int_equal(batch(f, "web01", more, 4, CHECK_CRITICAL, &s),
			 -EDQUOT);
	assert_false(s.refusing_anew);
	/* known keys, and ok results of new ones (no row), still come in */
	assert_int_equal(batch(f, "web01", known, 4, CHECK_WARNING, &s), 0);
	assert_int_equal(s.accepted, 4);
	assert_int_equal(batch(f, "web01", more, 4, CHECK_OK, &s), 0);
	assert_int_equal(open_tickets(f), 2);
	/* one more key fits; the streak was ended by the batches taken */
	assert_int_equal(batch(f, "web01", more + 1, 1, CHECK_CRITICAL, &s), 0);
	assert_int_equal(batch(f, "web01", more + 2, 1, CHECK_CRITICAL, &s),
			 -EDQUOT);
	assert_true(s.refusing_anew);
	/* the cap is per host */
	assert_int_equal(batch(f, "web02", more, 4, CHECK_CRITICAL, &s), 0);
	fx_close(f);
}

/* The keys are counted from the rows again after a restart. */
static void test_the_count_survives_a_restart(void **state)
{
	static const char *const first[] = { "/a", "/b" };
	static const char *const more[] = { "/c" };
	struct fx *f = fx_open("");
	struct dedup_stats s;

	(void)state;
	f->lc->max_keys_per_host = 2;
	assert_int_equal(batch(f, "web01", first, 2, CHECK_CRITICAL, &s), 0);
	fx_restart(f);
	assert_int_equal(batch(f, "web01", more, 1, CHECK_CRITICAL, &s),
			 -EDQUOT);
	assert_int_equal(s.keys_known, 2);
	f->lc->max_keys_per_host = 0; /* no limit */
	assert_int_equal(batch(f, "web01", more, 1, CHECK_CRITICAL, &s), 0);
	fx_close(f);
}

/* The collector's own events (liveness, traps) are not capped. */
static void test_raised_events_are_not_capped(void **state)
{
	struct fx *f = fx_open("");
	struct ingest_event ev = {
		.check = "heartbeat",
		.item = "alive",
		.summary = "silent",
		.state = CHECK_CRITICAL,
		.observed_ms = MIN(1),
		.metrics = "{}",
	};
	struct dedup_stats s;

	(void)state;
	f->lc->max_keys_per_host = 1;
	fx_at(f, "web01", "disk", "/", CHECK_CRITICAL, MIN(0));
	ev.id[0] = 0x77;
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(dedup_apply_raised(f->st, "web01", &ev, 1, MIN(1), &s),
			 0);
	assert_int_equal(store_commit(f->st), 0);
	fx_close(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_keys_beyond_the_cap_refuse_the_batch),
		cmocka_unit_test(test_the_count_survives_a_restart),
		cmocka_unit_test(test_raised_events_are_not_capped),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
