/* Trap rate limits: token buckets per source and per device, on a clock we set. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>

#include "../../server/trapconf.h"
#include "../../server/traprate.h"

static struct sockaddr_in addr(const char *text)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };

	inet_pton(AF_INET, text, &sin.sin_addr);
	return sin;
}

static enum traprate_verdict take(struct traprate *r, const char *source,
				  size_t device, int64_t now)
{
	struct sockaddr_in sin = addr(source);

	return traprate_take(r, (struct sockaddr *)&sin, device, now);
}

static size_t passes(struct traprate *r, const char *source, size_t device,
		     int64_t now, size_t tries)
{
	size_t n = 0;

	for (size_t i = 0; i < tries; i++)
		n += take(r, source, device, now) == TRAPRATE_PASS;
	return n;
}

static void test_a_source_gets_its_burst_then_its_rate(void **state)
{
	struct trap_config conf = { .source_rate = 10, .source_burst = 20 };
	struct traprate *r = traprate_new(&conf);

	(void)state;
	assert_int_equal(passes(r, "192.0.2.1", SIZE_MAX, 1000, 100), 20);
	assert_int_equal(take(r, "192.0.2.1", SIZE_MAX, 1000), TRAPRATE_SOURCE);
	/* 10 per second: one every 100 ms. */
	assert_int_equal(passes(r, "192.0.2.1", SIZE_MAX, 1099, 5), 0);
	assert_int_equal(passes(r, "192.0.2.1", SIZE_MAX, 1100, 5), 1);
	assert_int_equal(passes(r, "192.0.2.1", SIZE_MAX, 1600, 10), 5);
	/* Idle for an hour: full again, never more than the burst. */
	assert_int_equal(passes(r, "192.0.2.1", SIZE_MAX, 3601600, 100), 20);
	/* Another source has a bucket of its own. */
	assert_int_equal(passes(r, "192.0.2.2", SIZE_MAX, 3601600, 100), 20);
	traprate_free(r);
}

static void test_a_device_shares_one_bucket_across_its_sources(void **state)
{
	struct trap_config conf = { .device_rate = 1, .device_burst = 4,
				    .ndevices = 2 };
	struct traprate *r = traprate_new(&conf);

	(void)state;
	/* No source limit: only the device's. */
	assert_int_equal(passes(r, "192.0.2.1", 0, 0, 3), 3);
	assert_int_equal(passes(r, "192.0.2.9", 0, 0, 3), 1);
	assert_int_equal(take(r, "192.0.2.9", 0, 0), TRAPRATE_DEVICE);
	assert_int_equal(passes(r, "192.0.2.9", 1, 0, 10), 4);
	/* Unknown devices have no device bucket. */
	assert_int_equal(passes(r, "192.0.2.9", SIZE_MAX, 0, 50), 50);
	traprate_free(r);
}

static void test_a_refused_trap_takes_nothing(void **state)
{
	struct trap_config conf = { .source_rate = 1, .source_burst = 5,
				    .device_rate = 1, .device_burst = 2,
				    .ndevices = 1 };
	struct traprate *r = traprate_new(&conf);

	(void)state;
	assert_int_equal(passes(r, "192.0.2.1", 0, 0, 10), 2);
	/* Refused by the device: the source kept its tokens for others. */
	assert_int_equal(passes(r, "192.0.2.1", SIZE_MAX, 0, 10), 3);
	traprate_free(r);
}

static void test_no_limit_when_the_rate_is_zero(void **state)
{
	struct trap_config conf = { .source_rate = 0, .source_burst = 1,
				    .device_rate = 0, .device_burst = 1,
				    .ndevices = 1 };
	struct traprate *r = traprate_new(&conf);

	(void)state;
	assert_int_equal(passes(r, "192.0.2.1", 0, 0, 10000), 10000);
	traprate_free(r);
}

/*
 * Spoofed sources cost no memory: the table is fixed, the stalest is
 * taken over, and a busy source that keeps sending keeps its bucket.
 */
static void test_a_flood_of_sources_stays_in_the_fixed_table(void **state)
{
	struct trap_config conf = { .source_rate = 1, .source_burst = 3 };
	struct traprate *r = traprate_new(&conf);
	char text[INET_ADDRSTRLEN];
	size_t fresh = 0;

	(void)state;
	int64_t now = 0;

	assert_int_equal(passes(r, "198.51.100.1", SIZE_MAX, 0, 10), 3);
	for (uint32_t i = 0; i < 5 * TRAPRATE_SOURCES; i++) {
		struct in_addr a = { .s_addr = htonl(0x0a000000u + i) };

		now = i;
		inet_ntop(AF_INET, &a, text, sizeof(text));
		fresh += take(r, text, SIZE_MAX, now) == TRAPRATE_PASS;
		/* The busy source, seen every 64 ms, is never the stalest. */
		if (i % 64 == 0)
			take(r, "198.51.100.1", SIZE_MAX, now);
	}
	assert_int_equal(fresh, 5 * TRAPRATE_SOURCES);
	/* Its bucket was kept (taken over, it would be full: 3 would pass). */
	assert_true(passes(r, "198.51.100.1", SIZE_MAX, now, 3) <= 1);
	traprate_free(r);
}

/*
 * A reload: a device keeps its spent bucket under its new index, a new
 * device starts full, a source keeps its own, and the new limits apply
 * (a lower burst at once).  sw3 takes the index of sw1, whose bucket is
 * spent too: a bucket kept by index instead of by host name would leave
 * sw3 empty.
 */
static void test_a_reload_keeps_the_buckets_by_host_name(void **state)
{
	struct trap_device before[] = { { .host = (char *)"sw1" },
					{ .host = (char *)"sw2" } };
	struct trap_device after[] = { { .host = (char *)"sw3" },
				       { .host = (char *)"sw2" } };
	struct trap_config old = { .source_rate = 10, .source_burst = 20,
				   .device_rate = 10, .device_burst = 5,
				   .devices = before, .ndevices = 2 };
	struct trap_config conf = { .source_rate = 10, .source_burst = 3,
				    .device_rate = 10, .device_burst = 5,
				    .devices = after, .ndevices = 2 };
	struct traprate *r = traprate_new(&old);

	(void)state;
	/* sw1 (index 0) spends its 5 from one source, sw2 (index 1) its 5
	 * from another, 5 of that source's 20. */
	assert_int_equal(passes(r, "192.0.2.5", 0, 1000, 10), 5);
	assert_int_equal(passes(r, "192.0.2.1", 1, 1000, 10), 5);
	traprate_reconfigure(r, &old, &conf);
	/* sw2 is still empty: its new index is 1 again, from another source. */
	assert_int_equal(take(r, "192.0.2.9", 1, 1000), TRAPRATE_DEVICE);
	/* sw3 is new, full: its 5, from two fresh sources (3 each now). */
	assert_int_equal(passes(r, "192.0.2.7", 0, 1000, 10), 3);
	assert_int_equal(passes(r, "192.0.2.8", 0, 1000, 10), 2);
	assert_int_equal(take(r, "192.0.2.8", 0, 1000), TRAPRATE_DEVICE);
	/* The first source's 15 are cut to the new burst (no device limit). */
	assert_int_equal(passes(r, "192.0.2.1", SIZE_MAX, 1000, 10), 3);
	assert_int_equal(take(r, "192.0.2.1", SIZE_MAX, 1000), TRAPRATE_SOURCE);
	traprate_free(r);
}

static void test_a_reload_moves_a_device_bucket_to_its_new_index(void **state)
{
	struct trap_device before[] = { { .host = (char *)"sw1" },
					{ .host = (char *)"sw2" } };
	struct trap_device after[] = { { .host = (char *)"sw2" } };
	struct trap_config old = { .device_rate = 10, .device_burst = 5,
				   .devices = before, .ndevices = 2 };
	struct trap_config conf = { .device_rate = 10, .device_burst = 5,
				    .devices = after, .ndevices = 1 };
	struct traprate *r = traprate_new(&old);

	(void)state;
	assert_int_equal(passes(r, "192.0.2.1", 1, 1000, 10), 5);
	traprate_reconfigure(r, &old, &conf);
	assert_int_equal(take(r, "192.0.2.1", 0, 1000), TRAPRATE_DEVICE);
	/* Index 1 is no device any more: no device limit. */
	assert_int_equal(take(r, "192.0.2.1", 1, 1000), TRAPRATE_PASS);
	traprate_free(r);
}

/*
 * Many devices, reordered and interleaved with new ones: every kept
 * device's bucket follows its name, whatever its old and new index.
 */
static void test_a_reload_of_many_devices_keeps_each_bucket(void **state)
{
	enum { OLD = 1000, NEW = 1500 };
	static char names[NEW][16];
	static struct trap_device before[OLD], after[NEW];
	struct trap_config old = { .device_rate = 1, .device_burst = 1,
				   .devices = before, .ndevices = OLD };
	struct trap_config conf = { .device_rate = 1, .device_burst = 1,
				    .devices = after, .ndevices = NEW };
	struct traprate *r;

	(void)state;
	for (size_t i = 0; i < NEW; i++)
		snprintf(names[i], sizeof(names[i]), "dev%04zu", i);
	/* Old order: not sorted by name (7 and 1000 are coprime). */
	for (size_t i = 0; i < OLD; i++)
		before[i].host = names[i * 7 % OLD];
	/* New order: the new devices first, then the old ones reversed. */
	for (size_t i = 0; i < NEW - OLD; i++)
		after[i].host = names[OLD + i];
	for (size_t i = 0; i < OLD; i++)
		after[NEW - OLD + i].host = names[OLD - 1 - i];
	r = traprate_new(&old);
	/* Every third device spends its one trap. */
	for (size_t i = 0; i < OLD; i += 3)
		assert_int_equal(take(r, "192.0.2.1", i, 1000), TRAPRATE_PASS);
	traprate_reconfigure(r, &old, &conf);
	for (size_t i = 0; i < NEW - OLD; i++)
		assert_int_equal(take(r, "192.0.2.1", i, 1000), TRAPRATE_PASS);
	for (size_t i = 0; i < OLD; i++) {
		size_t was = 0; /* its old index */

		while (before[was].host != after[NEW - OLD + i].host)
			was++;
		assert_int_equal(take(r, "192.0.2.1", NEW - OLD + i, 1000),
				 was % 3 == 0 ? TRAPRATE_DEVICE : TRAPRATE_PASS);
	}
	traprate_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_a_source_gets_its_burst_then_its_rate),
		cmocka_unit_test(test_a_device_shares_one_bucket_across_its_sources),
		cmocka_unit_test(test_a_refused_trap_takes_nothing),
		cmocka_unit_test(test_no_limit_when_the_rate_is_zero),
		cmocka_unit_test(test_a_flood_of_sources_stays_in_the_fixed_table),
		cmocka_unit_test(test_a_reload_keeps_the_buckets_by_host_name),
		cmocka_unit_test(test_a_reload_moves_a_device_bucket_to_its_new_index),
		cmocka_unit_test(test_a_reload_of_many_devices_keeps_each_bucket),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
