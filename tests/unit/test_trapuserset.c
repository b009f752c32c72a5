/* The set of (engine id, user) pairs the trap engine localised. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "../../server/trapmsg.h"
#include "../../server/trapuserset.h"

static void engine_of(int i, uint8_t engine[11])
{
	static const uint8_t prefix[] = { 0x80, 0x00, 0x00, 0x09, 0x03, 0x00, 0x00 };

	memcpy(engine, prefix, sizeof(prefix));
	engine[7] = (uint8_t)(i >> 24);
	engine[8] = (uint8_t)(i >> 16);
	engine[9] = (uint8_t)(i >> 8);
	engine[10] = (uint8_t)i;
}

static void test_pairs_are_added_found_and_removed(void **state)
{
	struct trapuserset *s = trapuserset_new();
	uint8_t engine[11];

	(void)state;
	engine_of(1, engine);
	assert_false(trapuserset_has(s, engine, sizeof(engine), "netops"));
	trapuserset_add(s, engine, sizeof(engine), "netops");
	trapuserset_add(s, engine, sizeof(engine), "netops"); /* once */
	assert_int_equal(trapuserset_count(s), 1);
	assert_true(trapuserset_has(s, engine, sizeof(engine), "netops"));
	/* Another user, a shorter engine id, another engine: other pairs. */
	assert_false(trapuserset_has(s, engine, sizeof(engine), "netop"));
	assert_false(trapuserset_has(s, engine, sizeof(engine) - 1, "netops"));
	engine_of(2, engine);
	assert_false(trapuserset_has(s, engine, sizeof(engine), "netops"));
	engine_of(1, engine);
	trapuserset_remove(s, engine, sizeof(engine), "other"); /* not held */
	assert_int_equal(trapuserset_count(s), 1);
	trapuserset_remove(s, engine, sizeof(engine), "netops");
	assert_false(trapuserset_has(s, engine, sizeof(engine), "netops"));
	assert_int_equal(trapuserset_count(s), 0);
	trapuserset_free(s);
	trapuserset_free(NULL);
}

/* Thousands of devices, two users each: every pair is found as it grows. */
static void test_many_pairs(void **state)
{
	enum { N = 20000 };
	struct trapuserset *s = trapuserset_new();
	uint8_t engine[11];

	(void)state;
	for (int i = 0; i < N; i++) {
		engine_of(i, engine);
		trapuserset_add(s, engine, sizeof(engine), "netops");
		trapuserset_add(s, engine, sizeof(engine), "noc");
	}
	assert_int_equal(trapuserset_count(s), 2 * N);
	for (int i = 0; i < N; i++) {
		engine_of(i, engine);
		assert_true(trapuserset_has(s, engine, sizeof(engine), "netops"));
		assert_true(trapuserset_has(s, engine, sizeof(engine), "noc"));
		assert_false(trapuserset_has(s, engine, sizeof(engine), "roaming"));
	}
	/* Half removed: the rest stay. */
	for (int i = 0; i < N; i += 2) {
		engine_of(i, engine);
		trapuserset_remove(s, engine, sizeof(engine), "netops");
	}
	for (int i = 0; i < N; i++) {
		engine_of(i, engine);
		assert_int_equal(trapuserset_has(s, engine, sizeof(engine), "netops"),
				 i % 2 == 1);
	}
	assert_int_equal(trapuserset_count(s), 2 * N - N / 2);
	trapuserset_free(s);
}

static void test_what_cannot_be_a_pair_is_never_held(void **state)
{
	struct trapuserset *s = trapuserset_new();
	uint8_t engine[TRAP_ENGINE_ID_MAX + 1] = { 0x80 };
	char name[TRAP_USER_MAX + 2];

	(void)state;
	memset(name, 'u', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	trapuserset_add(s, engine, sizeof(engine), "netops");
	trapuserset_add(s, engine, 5, name);
	assert_int_equal(trapuserset_count(s), 0);
	assert_false(trapuserset_has(s, engine, sizeof(engine), "netops"));
	name[TRAP_USER_MAX] = '\0'; /* the longest there is */
	trapuserset_add(s, engine, TRAP_ENGINE_ID_MAX, name);
	assert_true(trapuserset_has(s, engine, TRAP_ENGINE_ID_MAX, name));
	trapuserset_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_pairs_are_added_found_and_removed),
		cmocka_unit_test(test_many_pairs),
		cmocka_unit_test(test_what_cannot_be_a_pair_is_never_held),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
