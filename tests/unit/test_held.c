/*
 * Events held in memory while the outbox cannot be written: repeats of a
 * key's held state are not kept, at the bound superseded changes go
 * before the oldest, every event not kept is counted, and a direct send
 * takes exactly the events it sent.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <string.h>

#include "../../agent/held.h"

static json_t *ev(const char *item, const char *state, int n)
{
	return json_pack("{s:s, s:s, s:s, s:i}", "check", "disk", "item", item,
			 "state", state, "n", n);
}

/* The n fields of the held events, in order, as "1 3 4". */
static const char *held_ns(const struct held *h)
{
	static char buf[256];

	buf[0] = '\0';
	for (size_t i = 0; i < held_count(h); i++) {
		char one[16];

		snprintf(one, sizeof(one), "%s%lld", i ? " " : "",
			 (long long)json_integer_value(json_object_get(
				 json_array_get(h->events, i), "n")));
		strncat(buf, one, sizeof(buf) - strlen(buf) - 1);
	}
	return buf;
}

static void test_repeats_of_the_held_state_are_counted_not_kept(void **state)
{
	struct held h;

	(void)state;
	held_init(&h, 10);
	held_add(&h, ev("/", "ok", 1));
	held_add(&h, ev("/", "ok", 2));	      /* repeat */
	held_add(&h, ev("/", "critical", 3)); /* change */
	held_add(&h, ev("/var", "ok", 4));    /* another key */
	held_add(&h, ev("/", "critical", 5)); /* repeat */
	held_add(&h, ev("/", "ok", 6));	      /* change back */
	assert_string_equal(held_ns(&h), "1 3 4 6");
	assert_int_equal(h.dropped_repeats, 2);
	assert_int_equal(h.dropped_changes, 0);
	held_fini(&h);
}

static void test_at_the_bound_superseded_changes_go_first_then_the_oldest(void **state)
{
	struct held h;

	(void)state;
	held_init(&h, 3);
	held_add(&h, ev("/a", "ok", 1));
	held_add(&h, ev("/b", "ok", 2));
	held_add(&h, ev("/a", "critical", 3));
	held_add(&h, ev("/c", "ok", 4)); /* over: 1 is superseded by 3 */
	assert_string_equal(held_ns(&h), "2 3 4");
	held_add(&h, ev("/d", "ok", 5)); /* over, nothing superseded: the oldest */
	assert_string_equal(held_ns(&h), "3 4 5");
	assert_int_equal(h.dropped_repeats, 0);
	assert_int_equal(h.dropped_changes, 2);
	held_fini(&h);
}

static void test_remove_takes_exactly_what_was_sent(void **state)
{
	struct held h;
	json_t *sent = json_array();

	(void)state;
	held_init(&h, 10);
	held_add(&h, ev("/a", "ok", 1));
	held_add(&h, ev("/b", "ok", 2));
	json_array_append(sent, json_array_get(h.events, 0));
	json_array_append(sent, json_array_get(h.events, 1));
	/* held while the send was in flight: stays */
	held_add(&h, ev("/a", "critical", 3));
	held_remove(&h, sent);
	assert_string_equal(held_ns(&h), "3");
	/* events no longer held (the outbox took them meanwhile): nothing */
	held_clear(&h);
	held_remove(&h, sent);
	assert_int_equal(held_count(&h), 0);
	json_decref(sent);
	held_fini(&h);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_repeats_of_the_held_state_are_counted_not_kept),
		cmocka_unit_test(test_at_the_bound_superseded_changes_go_first_then_the_oldest),
		cmocka_unit_test(test_remove_takes_exactly_what_was_sent),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
