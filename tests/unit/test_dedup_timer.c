/*
 * The lifecycle timer thread (dedup_timer_start()) against a step of the
 * wall clock: a real writer on a real SQLite file, real threads.
 *
 * The one mock: nobody may step this shared machine's clock, so this
 * file defines clock_gettime() itself (the executable's definition wins
 * over libc's and the sanitizers' for every caller in the process) and
 * makes CLOCK_REALTIME read an hour ahead of the kernel's on request.
 * For a wait on a CLOCK_REALTIME deadline that is exactly what a wall
 * clock stepped an hour backwards does: the kernel's clock is an hour
 * short of the deadline the thread computed.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "../../common/util.h"
#include "../../server/dedup.h"
#include "../../server/store.h"
#include "../../server/writer.h"
#include "tmpdb.h"

static atomic_int realtime_ahead_s;

int clock_gettime(clockid_t clock, struct timespec *ts)
{
	long r = syscall(SYS_clock_gettime, clock, ts);

	if (r == 0 && clock == CLOCK_REALTIME)
		ts->tv_sec += atomic_load(&realtime_ahead_s);
	return (int)r;
}

/* Wait up to ms (on the monotonic clock) until the timer posted n ticks. */
static uint64_t wait_posted(struct dedup_timer *t, uint64_t n, int64_t ms)
{
	int64_t until = time_mono_ms() + ms;
	struct timespec pause = { .tv_nsec = 5 * 1000000L };

	while (dedup_timer_posted(t) < n && time_mono_ms() < until)
		nanosleep(&pause, NULL);
	return dedup_timer_posted(t);
}

static void test_ticks_go_on_after_the_wall_clock_steps_back(void **state)
{
	char path[64];
	struct dedup_timer *t;
	struct writer *w;
	struct store *st;
	uint64_t before;

	(void)state;
	assert_int_equal(tmpdb_make(path, sizeof(path), "timer"), 0);
	assert_int_equal(store_open(path, &st), 0);
	assert_int_equal(writer_start(st, 64, 16, &w), 0);
	assert_int_equal(dedup_timer_start(w, 20, &t), 0);
	assert_true(wait_posted(t, 2, 5000) >= 2);

	atomic_store(&realtime_ahead_s, 3600);
	before = dedup_timer_posted(t);
	/* Every 20 ms: 5 more ticks within 5 s, unless the timer stalls. */
	assert_true(wait_posted(t, before + 5, 5000) >= before + 5);

	atomic_store(&realtime_ahead_s, 0);
	dedup_timer_stop(t);
	writer_stop(w);
	store_close(st);
	tmpdb_remove(path);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ticks_go_on_after_the_wall_clock_steps_back),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
