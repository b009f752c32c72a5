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

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/util.h"
#include "../../server/store.h"
#include "../../server/watchdog.h"
#include "../../server/writer.h"

static int noop(struct store *st, void *arg)
{
	(void)st;
	(void)arg;
	return 0;
}

static void test_no_ping_while_the_writer_is_stuck_under_load(void **state)
{
	char path[] = "/tmp/tocsin-test-watchdog-XXXXXX";
	struct writer_stats ws;
	struct watchdog *wd;
	struct writer *w;
	struct store *st;
	int fd, ticks;

	(void)state;
	fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	assert_int_equal(store_open(path, &st), 0);
	assert_int_equal(writer_start(st, 4, 4, &w), 0);
	wd = watchdog_new(w);
	/* idle: the probe commits, so the next tick pings */
	assert_false(watchdog_tick(wd));
	for (ticks = 0; !watchdog_tick(wd); ticks++)
		assert_true(ticks < 1000000);

	/* That tick posted a probe: let it finish first, or the writer may
	 * take it and hang on the lock below with our job still queued. */
	assert_int_equal(writer_run(w, noop, NULL), 0);

	/* the writer takes a job and hangs on the store; the queue fills */
	store_lock(st);
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
	store_unlock(st);
	for (ticks = 0; !watchdog_tick(wd); ticks++)
		assert_true(ticks < 1000000);
	watchdog_free(wd);
	writer_stop(w);
	store_close(st);
	unlink(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_ping_while_the_writer_is_stuck_under_load),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
