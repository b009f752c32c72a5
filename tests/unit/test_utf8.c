/*
 * The one policy for outside text that goes into JSON (common/utf8.h):
 * valid UTF-8 passes, invalid bytes and control characters become '?',
 * cuts fall on character boundaries, with an ellipsis when asked, and a
 * result that went through check_results_add() always encodes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "../../checks/check.h"
#include "../../common/utf8.h"

static void test_valid_text_passes(void **state)
{
	char buf[64];

	(void)state;
	assert_int_equal(utf8_sanitize(buf, sizeof(buf), "Gr\xc3\xb6\xc3\x9f" "e\t\xe2\x82\xac \xf0\x9f\x94\x94", 16, 0), 16);
	assert_string_equal(buf, "Gr\xc3\xb6\xc3\x9f" "e\t\xe2\x82\xac \xf0\x9f\x94\x94");
	assert_true(utf8_valid(buf));
}

static void test_invalid_bytes_and_controls(void **state)
{
	char buf[64];

	(void)state;
	/* Latin-1, an escape, a NUL, line breaks */
	utf8_sanitize(buf, sizeof(buf), "caf\xe9 \x1b[0m\0x\r\ny", 14, 0);
	assert_string_equal(buf, "caf? ?[0m?x  y");
	utf8_sanitize(buf, sizeof(buf), "a\nb\r", 4, UTF8_KEEP_NEWLINES);
	assert_string_equal(buf, "a\nb ");
	/* overlong forms, surrogates, beyond U+10FFFF, stray continuations */
	utf8_sanitize(buf, sizeof(buf), "\xc0\xaf\xed\xa0\x80\xf4\x90\x80\x80\x80", 10, 0);
	assert_string_equal(buf, "??????????");
	assert_false(utf8_valid("\xed\xa0\x80"));
	assert_false(utf8_valid("\xe0\x80\xaf"));
	assert_true(utf8_valid("\xf4\x8f\xbf\xbf"));
	/* a character the input ends inside is invalid, unless we cut it */
	utf8_sanitize(buf, sizeof(buf), "ok \xe2\x82", 5, 0);
	assert_string_equal(buf, "ok ??");
	utf8_sanitize(buf, sizeof(buf), "ok \xe2\x82", 5, UTF8_TRUNCATED);
	assert_string_equal(buf, "ok ");
}

/* For a terminal: C1 controls (CSI, OSC as one character) go too. */
static void test_no_c1_for_terminals(void **state)
{
	char buf[64];

	(void)state;
	utf8_sanitize(buf, sizeof(buf), "a\xc2\x9b" "2J\xc2\x9d" "0;x\xc2\xa0\xc2\xbf", 14,
		      UTF8_NO_C1);
	assert_string_equal(buf, "a?2J?0;x\xc2\xa0\xc2\xbf");
	/* without the flag they are text like any other */
	utf8_sanitize(buf, sizeof(buf), "a\xc2\x9b", 3, 0);
	assert_string_equal(buf, "a\xc2\x9b");
}

static void test_cuts_fall_on_character_boundaries(void **state)
{
	char buf[8];

	(void)state;
	/* four two-byte characters into 7 bytes of room: three fit */
	assert_int_equal(utf8_sanitize(buf, sizeof(buf), "\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4", 8, 0), 6);
	assert_string_equal(buf, "\xc3\xa4\xc3\xa4\xc3\xa4");
	/* with an ellipsis: "ä…" (2 + 3 bytes), never half a character */
	utf8_sanitize(buf, 6, "\xc3\xa4\xc3\xa4\xc3\xa4\xc3\xa4", 8, UTF8_ELLIPSIS);
	assert_string_equal(buf, "\xc3\xa4\xe2\x80\xa6");
	utf8_sanitize(buf, sizeof(buf), "abcdefghij", 10, UTF8_ELLIPSIS);
	assert_string_equal(buf, "abcd\xe2\x80\xa6");
	/* what fits gets no ellipsis */
	utf8_sanitize(buf, sizeof(buf), "abcdefg", 7, UTF8_ELLIPSIS);
	assert_string_equal(buf, "abcdefg");
}

static void test_json_string_never_fails_on_text(void **state)
{
	json_t *j = utf8_json_string("libfoo\xff 1.0");

	(void)state;
	assert_non_null(j);
	assert_string_equal(json_string_value(j), "libfoo? 1.0");
	json_decref(j);
	/* jansson alone refuses it: this is why the helper exists */
	assert_null(json_string("libfoo\xff 1.0"));
	j = utf8_json_string("plain");
	assert_string_equal(json_string_value(j), "plain");
	json_decref(j);
}

/*
 * A summary longer than CHECK_SUMMARY_MAX is cut on a character boundary
 * with an ellipsis (the old vsnprintf cut could split a character, and
 * the event was then lost to json_pack), and items and summaries made
 * from hostile bytes (a Latin-1 mount point) are valid UTF-8.
 */
static void test_results_always_encode(void **state)
{
	struct check_results out = { 0 };
	char *long_text = malloc(3000);
	size_t n;
	json_t *ev;

	(void)state;
	/* one ASCII byte, then two-byte characters: the 1024-byte cut falls
	 * inside one of them */
	long_text[0] = 'x';
	for (n = 1; n + 2 < 3000; n += 2)
		memcpy(long_text + n, "\xc3\xa4", 2);
	long_text[n] = '\0';
	check_results_add(&out, "/mnt/caf\xe9", CHECK_WARNING, NULL, "%s", long_text);
	assert_string_equal(out.v[0].item, "/mnt/caf?");
	n = strlen(out.v[0].summary);
	assert_true(n <= CHECK_SUMMARY_MAX - 1 && n >= CHECK_SUMMARY_MAX - 4);
	assert_true(utf8_valid(out.v[0].summary));
	assert_memory_equal(out.v[0].summary + n - 3, "\xe2\x80\xa6", 3);
	ev = json_pack("{s:s, s:s}", "item", out.v[0].item, "summary",
		       out.v[0].summary);
	assert_non_null(ev);
	json_decref(ev);

	/* an item longer than the collector takes is cut too */
	memset(long_text, 'a', 2000);
	long_text[2000] = '\0';
	check_results_add(&out, long_text, CHECK_OK, NULL, "fine");
	assert_true(strlen(out.v[1].item) <= CHECK_ITEM_MAX);
	free(long_text);
	check_results_clear(&out);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_text_passes),
		cmocka_unit_test(test_invalid_bytes_and_controls),
		cmocka_unit_test(test_no_c1_for_terminals),
		cmocka_unit_test(test_cuts_fall_on_character_boundaries),
		cmocka_unit_test(test_json_string_never_fails_on_text),
		cmocka_unit_test(test_results_always_encode),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
