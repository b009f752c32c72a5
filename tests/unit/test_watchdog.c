/*
 * The watchdog pings only while the writer commits: with the writer held
 * (store lock taken, as a hung fsync or a foreign lock would) and its
 * queue full, no tick says ping; once it commits again, one does.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdbool.h>
#include <stdlib.h>

#include "../../common/util.h"
#include "../../server/store.h"
#include "../../server/watchdog.h"
#include "../../server/writer.h"
#include "tmpdb.h"

struct fixture {
	char path[64];
	struct store *st;
	struct writer *w;
	struct watchdog *wd;
	bool locked; /* the store lock is ours: released before the writer stops */
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));

	*state = f;
	if (tmpdb_make(f->path, sizeof(f->path), "watchdog") < 0 ||
	    store_open(f->path, &f->st) < 0 || writer_start(f->st, 4, 4, &f->w) < 0)
		return -1;
	f->wd = watchdog_new(f->w);
	return 0;
}

/* Also after a failed assertion: the writer must not hang on our lock. */
static int teardown(void **state)
{
	struct fixture *f = *state;

	if (f->locked)
		store_unlock(f->st);
	watchdog_free(f->wd);
	writer_stop(f->w);
	store_close(f->st);
	tmpdb_remove(f->path);
	free(f);
	return 0;
}

static int noop(struct store *st, void *arg)
{
	(void)st;
	(void)arg;
	return 0;
}

static void test_no_ping_while_the_writer_is_stuck_under_load(void **state)
{
	struct fixture *f = *state;
	struct watchdog *wd = f->wd;
	struct writer *w = f->w;
	struct writer_stats ws;
	int ticks;

	/* idle: the probe commits, so the next tick pings */
	assert_false(watchdog_tick(wd));
	for (ticks = 0; !watchdog_tick(wd); ticks++)
		assert_true(ticks < 1000000);

	/* That tick posted a probe: let it finish first, or the writer may
	 * take it and hang on the lock below with our job still queued. */
	assert_int_equal(writer_run(w, noop, NULL), 0);

	/* the writer takes a job and hangs on the store; the queue fills */
	store_lock(f->st);
	f->locked = true;
	assert_int_equal(writer_post(w, noop, NULL, NULL), 0);
	do
		writer_get_stats(w, &ws);
	while (ws.queued != 0);
	while (writer_post(w, noop, NULL, NULL) == 0)
		;
	/* (the first tick may still see the last probe's commit) */
	watchdog_tick(wd);
	for (int i = 0; i < 100; i++)
		assert_false(watchdog_tick(wd)); /* -EAGAIN is not health */
	writer_get_stats(w, &ws);
	assert_true(ws.rejected > 0);

	/* it commits again: pings resume */
	f->locked = false;
	store_unlock(f->st);
	for (ticks = 0; !watchdog_tick(wd); ticks++)
		assert_true(ticks < 1000000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_no_ping_while_the_writer_is_stuck_under_load,
						setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
