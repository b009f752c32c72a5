/* Time stamps, ids and human-readable sizes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../../common/util.h"

static void test_rfc3339_round_trip(void **state)
{
	char buf[TIME_RFC3339_LEN];
	int64_t ms;

	(void)state;
	time_format_rfc3339(1795341600123LL, buf);
	assert_string_equal(buf, "2026-11-22T10:00:00.123Z");
	assert_int_equal(time_parse_rfc3339(buf, &ms), 0);
	assert_int_equal(ms, 1795341600123LL);
	assert_int_equal(time_parse_rfc3339("2026-11-22T11:00:00+01:00", &ms), 0);
	assert_int_equal(ms, 1795341600000LL);
	assert_int_equal(time_parse_rfc3339("2026-11-22T10:00:00.5Z", &ms), 0);
	assert_int_equal(ms, 1795341600500LL);
	assert_true(time_parse_rfc3339("2026-02-31T10:00:00Z", &ms) < 0);
	assert_true(time_parse_rfc3339("2026-11-22 10:00", &ms) < 0);
	assert_true(time_parse_rfc3339("2026-11-22T10:00:00", &ms) < 0);
}

static void test_uuid(void **state)
{
	char a[UUID_STR_LEN], b[UUID_STR_LEN];

	(void)state;
	assert_int_equal(uuid_generate(a), 0);
	assert_int_equal(uuid_generate(b), 0);
	assert_true(uuid_valid(a));
	assert_int_equal(a[14], '7'); /* version 7 */
	assert_true(strchr("89ab", a[19]) != NULL);
	assert_string_not_equal(a, b);
	{
		/* The first 48 bits are the time in ms: ids sort by time. */
		int64_t before = time_now_ms(), ms = 0, after;

		assert_int_equal(uuid_generate(a), 0);
		after = time_now_ms();
		for (int i = 0; i < 13; i++)
			if (a[i] != '-')
				ms = ms * 16 + (a[i] <= '9' ? a[i] - '0' : a[i] - 'a' + 10);
		assert_true(ms >= before && ms <= after);
		usleep(2000);
		assert_int_equal(uuid_generate(b), 0);
		assert_true(strcmp(a, b) < 0);
	}
	assert_false(uuid_valid("xyz"));
}

static void test_format_bytes(void **state)
{
	char buf[32];

	(void)state;
	format_bytes(900, buf, sizeof(buf));
	assert_string_equal(buf, "900 B");
	format_bytes(6657199308ULL, buf, sizeof(buf));
	assert_string_equal(buf, "6.2 GiB");
	format_bytes(200ULL << 30, buf, sizeof(buf));
	assert_string_equal(buf, "200 GiB");
}

/* Units round up where the smaller one would read as one of the next. */
static void test_format_duration(void **state)
{
	static const struct {
		int64_t seconds;
		const char *text;
	} cases[] = {
		{ 0, "0 s" },	      { 59, "59 s" },	    { 60, "60 s" },
		{ 61, "61 s" },	      { 119, "119 s" },     { 120, "2 min" },
		{ 3599, "59 min" },   { 3600, "1 h" },      { 3659, "1 h" },
		{ 3660, "61 min" },   { 5400, "90 min" },   { 7200, "2 h" },
		{ 86399, "23 h" },    { 86400, "1 d" },     { 89999, "1 d" },
		{ 90000, "25 h" },    { 172800, "2 d" },    { 604800, "7 d" },
	};
	char buf[32];

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		format_duration(cases[i].seconds, buf, sizeof(buf));
		assert_string_equal(buf, cases[i].text);
	}
}

/* A copy that does not fit stops before a character, never inside one. */
static void test_copy_cuts_on_a_character_boundary(void **state)
{
	char buf[6];

	(void)state;
	strlcpy_safe(buf, "ab\xc3\xa4\xc3\xa4", sizeof(buf)); /* "abää" */
	assert_string_equal(buf, "ab\xc3\xa4");
	strlcpy_safe(buf, "a", sizeof(buf));
	strlcat_safe(buf, "bc\xe2\x82\xac", sizeof(buf)); /* "bc€" */
	assert_string_equal(buf, "abc");
}

/* NULL is a value of its own: unset differs from set, even to "". */
static void test_str_differs(void **state)
{
	(void)state;
	assert_false(str_differs(NULL, NULL));
	assert_false(str_differs("smtp://a", "smtp://a"));
	assert_true(str_differs("smtp://a", "smtp://b"));
	assert_true(str_differs(NULL, ""));
	assert_true(str_differs("", NULL));
}

/* Deadlines carry nanoseconds into seconds and a monotonic condition
 * variable times out against them. */
static void test_monotonic_deadline(void **state)
{
	pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
	pthread_cond_t cond;
	struct timespec now, until;
	int64_t started, waited;

	(void)state;
	for (int64_t ms = 0; ms < 3000; ms += 7) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		until = time_mono_deadline(ms);
		assert_true(until.tv_nsec >= 0 && until.tv_nsec < 1000000000L);
		int64_t delta = (until.tv_sec - now.tv_sec) * 1000 +
				(until.tv_nsec - now.tv_nsec) / 1000000;
		assert_true(delta >= ms - 1 && delta <= ms + 50);
	}
	cond_init_monotonic(&cond);
	pthread_mutex_lock(&lock);
	started = time_mono_ms();
	until = time_mono_deadline(30);
	while (pthread_cond_timedwait(&cond, &lock, &until) != ETIMEDOUT)
		;
	waited = time_mono_ms() - started;
	pthread_mutex_unlock(&lock);
	pthread_cond_destroy(&cond);
	/* On a CLOCK_REALTIME condition the deadline would lie decades back. */
	assert_true(waited >= 29);
}

static void test_parse_int(void **state)
{
	int64_t v;

	(void)state;
	assert_int_equal(parse_int64("42", &v), 0);
	assert_int_equal(v, 42);
	assert_true(parse_int64("42x", &v) < 0);
	assert_true(parse_int64("", &v) < 0);
	assert_true(parse_int64("99999999999999999999", &v) < 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc3339_round_trip),
		cmocka_unit_test(test_uuid),
		cmocka_unit_test(test_format_bytes),
		cmocka_unit_test(test_parse_int),
		cmocka_unit_test(test_monotonic_deadline),
		cmocka_unit_test(test_format_duration),
		cmocka_unit_test(test_copy_cuts_on_a_character_boundary),
		cmocka_unit_test(test_str_differs),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
