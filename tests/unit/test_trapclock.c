/* The v3 engine clocks kept across restarts, on a real SQLite file. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/util.h"
#include "../../server/store.h"
#include "../../server/trapclock.h"
#include "tmpdb.h"

struct fixture {
	char path[64];
	struct store *st;
	struct trapclock *c;
	struct trapclock_entry seen[TRAPCLOCK_KEEP + 8];
	size_t nseen;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));

	if (tmpdb_make(f->path, sizeof(f->path), "trapclock") < 0)
		return -1;
	if (store_open(f->path, &f->st) < 0 || trapclock_open(f->st, &f->c) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	trapclock_close(f->c);
	store_close(f->st);
	tmpdb_remove(f->path);
	free(f);
	return 0;
}

static struct trapclock_entry entry(uint32_t n, uint32_t boots, uint32_t time)
{
	struct trapclock_entry e = { .len = 9, .boots = boots, .time = time };

	memcpy(e.engine, "\x80\x00\x00\x00\x05", 5);
	for (int i = 0; i < 4; i++)
		e.engine[5 + i] = (uint8_t)(n >> (24 - 8 * i));
	return e;
}

static void save(struct fixture *f, uint32_t n, uint32_t boots, uint32_t time,
		 int64_t now)
{
	struct trapclock_entry e = entry(n, boots, time);

	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(trapclock_save(f->c, &e, now), 0);
	assert_int_equal(store_commit(f->st), 0);
}

static int collect(void *arg, const struct trapclock_entry *e)
{
	struct fixture *f = arg;

	f->seen[f->nseen++] = *e;
	return 0;
}

static void load(struct fixture *f)
{
	f->nseen = 0;
	assert_int_equal(trapclock_each(f->c, collect, f), 0);
}

/* USM's clock of an engine only moves forward; so does what is kept. */
static void test_a_kept_clock_never_goes_back(void **state)
{
	struct fixture *f = *state;

	save(f, 1, 3, 100, 1000);
	save(f, 1, 3, 50, 2000);  /* same boots, earlier: kept as it was */
	save(f, 1, 2, 999, 3000); /* fewer boots: kept as it was */
	load(f);
	assert_int_equal(f->nseen, 1);
	assert_int_equal(f->seen[0].boots, 3);
	assert_int_equal(f->seen[0].time, 100);
	save(f, 1, 3, 160, 4000);
	save(f, 1, 4, 1, 5000);	  /* the device restarted */
	load(f);
	assert_int_equal(f->seen[0].boots, 4);
	assert_int_equal(f->seen[0].time, 1);
	assert_memory_equal(f->seen[0].engine, entry(1, 0, 0).engine, 9);
}

/* A bounded table: the most recently saved are kept, and given first. */
static void test_the_most_recently_saved_clocks_are_kept(void **state)
{
	struct fixture *f = *state;

	assert_int_equal(store_begin(f->st), 0);
	for (uint32_t i = 0; i < TRAPCLOCK_KEEP + 3; i++) {
		struct trapclock_entry e = entry(i, 1, i);

		assert_int_equal(trapclock_save(f->c, &e, 1000 + i), 0);
	}
	assert_int_equal(trapclock_trim(f->st, f->c), 0);
	assert_int_equal(store_commit(f->st), 0);
	load(f);
	assert_int_equal(f->nseen, TRAPCLOCK_KEEP);
	assert_int_equal(f->seen[0].time, TRAPCLOCK_KEEP + 2);
	assert_int_equal(f->seen[TRAPCLOCK_KEEP - 1].time, 3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_a_kept_clock_never_goes_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_the_most_recently_saved_clocks_are_kept, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
