/* Time stamps, ids and human-readable sizes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <string.h>
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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
