/* Validation of event batches: all or nothing, errors that name the place. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/util.h"
#include "../../server/ingest.h"

#define ID1 "0b7e0f4c-3f0e-4c1a-9d7e-1f2a3b4c5d6e"
#define ID2 "1b7e0f4c-3f0e-4c1a-9d7e-1f2a3b4c5d6e"

#define EVENT(id, state) \
	"{\"id\":\"" id "\",\"check\":\"disk\",\"item\":\"/srv\",\"state\":\"" state \
	"\",\"summary\":\"s\",\"observed_at\":\"2026-11-22T10:00:00Z\",\"metrics\":{\"used_percent\":93.1}}"

static int parse(const char *body, struct ingest_batch **b, char *err)
{
	return ingest_parse(body, strlen(body), 100, b, err, 512);
}

static void expect_error(const char *body, const char *message)
{
	struct ingest_batch *b = NULL;
	char err[512] = "";

	assert_int_equal(parse(body, &b, err), -EINVAL);
	assert_null(b);
	if (strstr(err, message) == NULL)
		fail_msg("error '%s' does not contain '%s'", err, message);
}

static void test_valid_batch(void **state)
{
	struct ingest_batch *b = NULL;
	char err[512];

	(void)state;
	assert_int_equal(parse("{\"host\":\"web01\",\"events\":[" EVENT(ID1, "critical") "," EVENT(ID2, "ok") "]}",
			       &b, err),
			 0);
	assert_string_equal(b->host, "web01");
	assert_int_equal(b->nevents, 2);
	assert_int_equal(b->events[0].state, CHECK_CRITICAL);
	assert_string_equal(b->events[0].item, "/srv");
	assert_int_equal(b->events[0].observed_ms, 1795341600000LL);
	assert_string_equal(b->events[0].metrics, "{\"used_percent\":93.1}");
	assert_int_equal(b->events[0].id[0], 0x0b);
	assert_int_equal(b->events[1].state, CHECK_OK);
	ingest_batch_free(b);
}

static void test_malformed_json_reports_position(void **state)
{
	(void)state;
	expect_error("{\"host\": \"a\",\n \"events\": [}", "invalid JSON at line 2, column 13");
	expect_error("", "invalid JSON");
	expect_error("[1,2]", "the body must be a JSON object");
}

static void test_missing_and_wrong_fields_are_named(void **state)
{
	(void)state;
	expect_error("{\"events\":[]}", "host: missing");
	expect_error("{\"host\":\"a\"}", "events: missing");
	expect_error("{\"host\":\"a\",\"events\":{}}", "events: must be an array");
	expect_error("{\"host\":\"a\",\"events\":[" EVENT(ID1, "ok") "," EVENT(ID2, "bad") "]}",
		     "events[1].state: 'bad' is not one of ok, warning, critical, unknown");
	expect_error("{\"host\":\"a\",\"events\":[{\"id\":\"" ID1 "\",\"check\":\"disk\",\"item\":\"/\",\"state\":\"ok\",\"observed_at\":\"2026-11-22T10:00:00Z\"}]}",
		     "events[0].summary: missing");
	expect_error("{\"host\":\"a\",\"events\":[" EVENT("not-a-uuid", "ok") "]}",
		     "events[0].id: 'not-a-uuid' is not a UUID");
	expect_error("{\"host\":\"a\",\"events\":[{\"id\":\"" ID1 "\",\"check\":\"Disk Check\",\"item\":\"/\",\"state\":\"ok\",\"summary\":\"\",\"observed_at\":\"2026-11-22T10:00:00Z\"}]}",
		     "events[0].check: 'Disk Check' may only contain");
	expect_error("{\"host\":\"a\",\"events\":[{\"id\":\"" ID1 "\",\"check\":\"disk\",\"item\":\"/\",\"state\":\"ok\",\"summary\":\"\",\"observed_at\":\"yesterday\"}]}",
		     "events[0].observed_at: 'yesterday' is not an RFC 3339 time");
	expect_error("{\"host\":\"a\",\"events\":[{\"id\":\"" ID1 "\",\"check\":\"disk\",\"item\":\"/\",\"state\":\"ok\",\"summary\":\"\",\"observed_at\":\"2026-11-22T10:00:00Z\",\"metrics\":{\"x\":\"high\"}}]}",
		     "events[0].metrics.x: must be a number");
	expect_error("{\"host\":\"a\\u0001b\",\"events\":[]}", "host: must be a host name");
}

static void test_batch_size_limit(void **state)
{
	struct ingest_batch *b = NULL;
	char err[512];
	char body[4096] = "{\"host\":\"a\",\"events\":[";

	(void)state;
	for (int i = 0; i < 3; i++) {
		if (i)
			strcat(body, ",");
		strcat(body, EVENT(ID1, "ok"));
	}
	strcat(body, "]}");
	assert_int_equal(ingest_parse(body, strlen(body), 2, &b, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "3 events in one batch, the limit is 2"));
}

static void test_uuid_round_trip(void **state)
{
	uint8_t bytes[16];
	char text[37];

	(void)state;
	assert_int_equal(uuid_to_bytes(ID1, bytes), 0);
	uuid_from_bytes(bytes, text);
	assert_string_equal(text, ID1);
	assert_true(uuid_to_bytes("0b7e0f4c-3f0e-4c1a-9d7e-1f2a3b4c5d6", bytes) < 0);
	assert_true(uuid_to_bytes("0b7e0f4c-3f0e-4c1a-9d7e-1f2a3b4c5d6ez", bytes) < 0);
}

/*
 * Exactly the canonical form is accepted, as uuid_valid() says: every
 * hex digit in either case, and any other byte, a missing or moved dash,
 * a short or long text refused at every position.
 */
static void test_uuid_accepts_exactly_the_canonical_form(void **state)
{
	const char *digits = "0123456789abcdefABCDEF";
	uint8_t bytes[16];
	char text[40];

	(void)state;
	for (const char *d = digits; *d; d++) {
		unsigned v = (unsigned)strtoul((char[]){ *d, '\0' }, NULL, 16);

		memset(text, *d, 36);
		text[8] = text[13] = text[18] = text[23] = '-';
		text[36] = '\0';
		assert_true(uuid_valid(text));
		assert_int_equal(uuid_to_bytes(text, bytes), 0);
		for (int i = 0; i < 16; i++)
			assert_int_equal(bytes[i], v << 4 | v);
	}
	for (int pos = 0; pos < 37; pos++) {
		for (int c = 0; c < 256; c++) {
			snprintf(text, sizeof(text), "%s", ID1);
			text[pos] = (char)c;
			if (c == 0)
				text[pos] = '\0';
			assert_int_equal(uuid_to_bytes(text, bytes) == 0,
					 uuid_valid(text));
		}
	}
	assert_true(uuid_to_bytes("0b7e0f4c3f0e-4c1a-9d7e-1f2a3b4c5d6e-", bytes) < 0);
	assert_true(uuid_to_bytes("", bytes) < 0);
}

/*
 * Fields are matched by their whole name: "identifier" is not "id", nor
 * "observed" "observed_at"; unknown members are ignored, in any order.
 */
static void test_fields_matched_by_whole_name(void **state)
{
	struct ingest_batch *b = NULL;
	char err[512] = "";

	(void)state;
	expect_error("{\"host\":\"h\",\"events\":[{\"identifier\":\"" ID1 "\","
		     "\"check\":\"disk\",\"item\":\"/srv\",\"state\":\"ok\","
		     "\"summary\":\"s\",\"observed_at\":\"2026-11-22T10:00:00Z\"}]}",
		     "events[0].id: missing");
	expect_error("{\"host\":\"h\",\"events\":[{\"id\":\"" ID1 "\","
		     "\"check\":\"disk\",\"item\":\"/srv\",\"state\":\"ok\","
		     "\"summary\":\"s\",\"observed\":\"2026-11-22T10:00:00Z\"}]}",
		     "events[0].observed_at: missing");
	assert_int_equal(parse("{\"host\":\"h\",\"events\":[{\"context\":{\"a\":1},"
			       "\"observed_at\":\"2026-11-22T10:00:00Z\",\"summary\":\"s\","
			       "\"state\":\"critical\",\"item\":\"/srv\",\"check\":\"disk\","
			       "\"metrics\":{\"m\":2},\"extra\":[1],\"id\":\"" ID1 "\"}]}",
			       &b, err),
			 0);
	assert_string_equal(b->events[0].item, "/srv");
	assert_string_equal(b->events[0].metrics, "{\"m\":2}");
	assert_string_equal(b->events[0].context, "{\"a\":1}");
	assert_int_equal(b->events[0].state, CHECK_CRITICAL);
	ingest_batch_free(b);
	/* A field given twice is ambiguous (parsers differ on which wins). */
	expect_error("{\"host\":\"h\",\"events\":[{\"id\":\"" ID1 "\","
		     "\"check\":\"disk\",\"item\":\"/srv\",\"state\":\"ok\","
		     "\"state\":\"critical\",\"summary\":\"s\","
		     "\"observed_at\":\"2026-11-22T10:00:00Z\"}]}",
		     "duplicate object key");
}

/*
 * Control characters in free text are made harmless, not refused: an
 * escape sequence in a summary would otherwise reach a technician's
 * terminal through the CLI.  Tabs and line breaks stay.
 */
static void test_free_text_loses_its_control_characters(void **state)
{
	struct ingest_batch *b = NULL;
	char err[512] = "";

	(void)state;
	assert_int_equal(parse("{\"host\":\"h\",\"events\":[{\"id\":\"" ID1 "\","
			       "\"check\":\"disk\",\"item\":\"/srv\",\"state\":\"ok\","
			       "\"summary\":\"\\u001b[2Jred\\u0007\\tb\\nc\\u007f\\r\","
			       "\"context\":{\"lines\":[\"\\u001b]0;x\\u0001y\", \"ok\"],"
			       "\"n\":1},"
			       "\"observed_at\":\"2026-11-22T10:00:00Z\"}]}",
			       &b, err),
			 0);
	assert_string_equal(b->events[0].summary, "?[2Jred?\tb\nc? ");
	assert_string_equal(b->events[0].context,
			    "{\"lines\":[\"?]0;x?y\",\"ok\"],\"n\":1}");
	ingest_batch_free(b);
}

/* A body of one ok event observed at the given time. */
static char *observed_body(const char *observed)
{
	return xasprintf("{\"host\":\"h\",\"events\":[{\"id\":\"" ID1 "\","
			 "\"check\":\"disk\",\"item\":\"/\",\"state\":\"ok\","
			 "\"summary\":\"s\",\"observed_at\":\"%s\"}]}", observed);
}

/* Times no clock gives, or RFC 3339 cannot write, are refused. */
static void test_observed_at_between_1970_and_9999(void **state)
{
	static const char *const bad[] = {
		"0000-01-01T00:00:00Z", "0000-01-01T00:00:00+23:59",
		"1969-12-31T23:59:59.999Z", "9999-12-31T23:59:59-00:01",
	};
	static const char *const good[] = { "1970-01-01T00:00:00Z",
					    "9999-12-31T23:59:59.999Z" };
	struct ingest_batch *b = NULL;
	char err[512] = "", *body, *want;

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		body = observed_body(bad[i]);
		want = xasprintf("events[0].observed_at: '%s' is not between 1970 and 9999 (UTC)",
				 bad[i]);
		expect_error(body, want);
		free(body);
		free(want);
	}
	for (size_t i = 0; i < ARRAY_SIZE(good); i++) {
		body = observed_body(good[i]);
		assert_int_equal(parse(body, &b, err), 0);
		ingest_batch_free(b);
		free(body);
	}
}

/* A batch of n events with ids made from i, in a buffer to free. */
static char *make_body(int n, int i)
{
	size_t cap = (size_t)n * 300 + 64, len;
	char *body = malloc(cap);

	assert_non_null(body);
	len = (size_t)snprintf(body, cap, "{\"host\":\"h%d\",\"events\":[", i);
	for (int e = 0; e < n; e++)
		len += (size_t)snprintf(body + len, cap - len,
			"%s{\"id\":\"%08x-3f0e-4c1a-9d7e-%012x\",\"check\":\"disk\","
			"\"item\":\"/srv/%d\",\"state\":\"ok\",\"summary\":\"s%d\","
			"\"observed_at\":\"2026-11-22T10:00:00Z\","
			"\"metrics\":{\"used_percent\":%d.5}}",
			e ? "," : "", i, e, e, i, e);
	snprintf(body + len, cap - len, "]}");
	return body;
}

/* A freed batch's memory serves the next parse, which still reads right. */
static void test_arena_chunks_are_reused(void **state)
{
	struct ingest_arena_stats before, after;
	struct ingest_batch *b = NULL;
	char err[512] = "", *body;

	(void)state;
	body = make_body(100, 1);
	assert_int_equal(parse(body, &b, err), 0);
	ingest_batch_free(b);
	free(body);
	ingest_arena_get_stats(&before);
	assert_true(before.pooled_bytes > 0);
	body = make_body(100, 2);
	assert_int_equal(parse(body, &b, err), 0);
	ingest_arena_get_stats(&after);
	assert_int_equal(after.allocated, before.allocated);
	assert_true(after.reused > before.reused);
	assert_string_equal(b->host, "h2");
	assert_int_equal(b->nevents, 100);
	assert_string_equal(b->events[99].item, "/srv/99");
	assert_string_equal(b->events[99].summary, "s2");
	assert_string_equal(b->events[99].metrics, "{\"used_percent\":99.5}");
	ingest_batch_free(b);
	free(body);
}

/* However many batches were alive at once, the pool keeps a bounded amount. */
static void test_arena_pool_is_bounded(void **state)
{
	enum { N = 120 };
	struct ingest_batch *b[N];
	struct ingest_arena_stats st;
	char err[512] = "", *body;

	(void)state;
	body = make_body(100, 3);
	for (int i = 0; i < N; i++)
		assert_int_equal(parse(body, &b[i], err), 0);
	for (int i = 0; i < N; i++)
		ingest_batch_free(b[i]);
	free(body);
	ingest_arena_get_stats(&st);
	assert_true(st.pooled_bytes > INGEST_ARENA_POOL_BYTES / 2);
	assert_true(st.pooled_bytes <= INGEST_ARENA_POOL_BYTES);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_batch),
		cmocka_unit_test(test_malformed_json_reports_position),
		cmocka_unit_test(test_missing_and_wrong_fields_are_named),
		cmocka_unit_test(test_batch_size_limit),
		cmocka_unit_test(test_uuid_round_trip),
		cmocka_unit_test(test_uuid_accepts_exactly_the_canonical_form),
		cmocka_unit_test(test_fields_matched_by_whole_name),
		cmocka_unit_test(test_free_text_loses_its_control_characters),
		cmocka_unit_test(test_observed_at_between_1970_and_9999),
		cmocka_unit_test(test_arena_chunks_are_reused),
		cmocka_unit_test(test_arena_pool_is_bounded),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
