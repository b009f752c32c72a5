/* Nagios plugin output: summary, long output, perfdata, hostile bytes. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../checks/nagios.h"
#include "../../common/utf8.h"

static void parse(const char *text, struct nagios_output *o)
{
	nagios_output_parse(text, strlen(text), o);
}

static void test_summary_and_perfdata(void **state)
{
	struct nagios_output o;

	(void)state;
	parse("DISK OK - free space: / 3326 MB (56%) | /=2643MB;5948;5958;0;5968 "
	      "'inodes used'=12%;80;90 time=0.004s;;;0\n", &o);
	assert_string_equal(o.summary, "DISK OK - free space: / 3326 MB (56%)");
	assert_null(o.long_output);
	assert_int_equal(o.nperf, 3);
	assert_int_equal(o.perf_skipped, 0);

	assert_string_equal(o.perf[0].label, "/");
	assert_true(o.perf[0].value == 2643);
	assert_string_equal(o.perf[0].uom, "MB");
	assert_string_equal(o.perf[0].warn, "5948");
	assert_string_equal(o.perf[0].crit, "5958");
	assert_true(o.perf[0].has_min && o.perf[0].min == 0);
	assert_true(o.perf[0].has_max && o.perf[0].max == 5968);

	assert_string_equal(o.perf[1].label, "inodes used");
	assert_true(o.perf[1].value == 12);
	assert_string_equal(o.perf[1].uom, "%");
	assert_false(o.perf[1].has_min);

	assert_string_equal(o.perf[2].label, "time");
	assert_true(o.perf[2].value == 0.004);
	assert_string_equal(o.perf[2].uom, "s");
	assert_string_equal(o.perf[2].warn, "");
	assert_true(o.perf[2].has_min);
	assert_false(o.perf[2].has_max);
	nagios_output_free(&o);
}

static void test_long_output_and_continued_perfdata(void **state)
{
	struct nagios_output o;

	(void)state;
	/* the guidelines' own example shape */
	parse("DISK OK - free space: / 3326 MB (56%); | /=2643MB;5948;5958;0;5968\n"
	      "/ 15272 MB (77%);\n"
	      "/boot 68 MB (69%);\n"
	      "/home 69357 MB (27%);\n"
	      "/var/log 819 MB (84%); | /boot=68MB;88;93;0;98\n"
	      "/home=69357MB;253404;253409;0;253414 \n"
	      "/var/log=818MB;970;975;0;980\n", &o);
	assert_string_equal(o.summary, "DISK OK - free space: / 3326 MB (56%);");
	assert_non_null(o.long_output);
	assert_string_equal(o.long_output,
			    "/ 15272 MB (77%);\n/boot 68 MB (69%);\n"
			    "/home 69357 MB (27%);\n/var/log 819 MB (84%);");
	assert_int_equal(o.nperf, 4);
	assert_string_equal(o.perf[1].label, "/boot");
	assert_string_equal(o.perf[3].label, "/var/log");
	assert_true(o.perf[3].value == 818);
	nagios_output_free(&o);
}

static void test_quoted_labels_and_ranges(void **state)
{
	struct nagios_output o;

	(void)state;
	parse("OK | 'it''s = odd'=1c;@10:20;~:5 'a b'=-3.5e2 x=U;1;2 neg=-1\n", &o);
	assert_int_equal(o.perf_skipped, 0); /* U is undetermined, not bad */
	assert_int_equal(o.nperf, 3);
	assert_string_equal(o.perf[0].label, "it's = odd");
	assert_string_equal(o.perf[0].uom, "c");
	assert_string_equal(o.perf[0].warn, "@10:20");
	assert_string_equal(o.perf[0].crit, "~:5");
	assert_string_equal(o.perf[1].label, "a b");
	assert_true(o.perf[1].value == -350);
	assert_string_equal(o.perf[2].label, "neg");
	nagios_output_free(&o);
}

static void test_bad_perfdata_is_counted_not_fatal(void **state)
{
	struct nagios_output o;
	char text[4096];
	size_t n = 0;

	(void)state;
	parse("WARNING - odd | good=1 =3 noequals 'unclosed=4 bad=abc ok=2\n", &o);
	assert_string_equal(o.summary, "WARNING - odd");
	/* 'unclosed=4 bad=abc ok=2 is one item up to the end: quotes run on */
	assert_int_equal(o.nperf, 1);
	assert_string_equal(o.perf[0].label, "good");
	assert_int_equal(o.perf_skipped, 3);
	assert_string_equal(o.first_bad, "=3");
	nagios_output_free(&o);

	parse("OK | inf=inf nan=nan huge=1e999 big=12345678901234567890123456789012345678901234567890123456789012345678901\n", &o);
	assert_int_equal(o.nperf, 0);
	assert_int_equal(o.perf_skipped, 4);
	nagios_output_free(&o);

	/* at most NAGIOS_PERF_MAX metrics are kept, the rest counted */
	n += (size_t)snprintf(text, sizeof(text), "OK |");
	for (int i = 0; i < NAGIOS_PERF_MAX + 6; i++)
		n += (size_t)snprintf(text + n, sizeof(text) - n, " m%d=%d", i, i);
	parse(text, &o);
	assert_int_equal(o.nperf, NAGIOS_PERF_MAX);
	assert_int_equal(o.perf_skipped, 6);
	nagios_output_free(&o);
}

static void test_hostile_bytes_are_sanitized(void **state)
{
	/* Latin-1 "Größe", an escape sequence, a NUL, a cut UTF-8 sequence */
	static const char raw[] = "Gr\xf6\xdf" "e \x1b[31mred\x00 ok \xe2\x82";
	struct nagios_output o;

	(void)state;
	nagios_output_parse(raw, sizeof(raw) - 1, &o);
	assert_string_equal(o.summary, "Gr??e ?[31mred? ok ??");
	nagios_output_free(&o);
}

/* Every perfdata field becomes JSON (a key or a string): all valid UTF-8. */
static void test_hostile_perfdata_fields_are_sanitized(void **state)
{
	static const char raw[] = "OK | t\xff=1\xe9s;\xfe" "5;@\x01;0;9";
	struct nagios_output o;

	(void)state;
	parse(raw, &o);
	assert_int_equal(o.nperf, 1);
	assert_string_equal(o.perf[0].label, "t?");
	assert_string_equal(o.perf[0].uom, "?s");
	assert_string_equal(o.perf[0].warn, "?5");
	assert_string_equal(o.perf[0].crit, "@?");
	assert_true(utf8_valid(o.perf[0].uom) && utf8_valid(o.perf[0].warn));
	nagios_output_free(&o);
}

static void test_empty_and_long_lines(void **state)
{
	struct nagios_output o;
	char *big = malloc(100000);

	(void)state;
	parse("", &o);
	assert_string_equal(o.summary, "");
	assert_int_equal(o.nperf, 0);
	nagios_output_free(&o);

	parse("\n\n\n", &o);
	assert_string_equal(o.summary, "");
	assert_null(o.long_output);
	nagios_output_free(&o);

	/* a first line longer than the summary limit is cut, not overflowed */
	memset(big, 'x', 99999);
	big[99999] = '\0';
	parse(big, &o);
	assert_int_equal(strlen(o.summary), NAGIOS_SUMMARY_MAX - 1);
	nagios_output_free(&o);
	free(big);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_summary_and_perfdata),
		cmocka_unit_test(test_long_output_and_continued_perfdata),
		cmocka_unit_test(test_quoted_labels_and_ranges),
		cmocka_unit_test(test_bad_perfdata_is_counted_not_fatal),
		cmocka_unit_test(test_hostile_bytes_are_sanitized),
		cmocka_unit_test(test_hostile_perfdata_fields_are_sanitized),
		cmocka_unit_test(test_empty_and_long_lines),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
