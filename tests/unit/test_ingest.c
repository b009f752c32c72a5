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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_batch),
		cmocka_unit_test(test_malformed_json_reports_position),
		cmocka_unit_test(test_missing_and_wrong_fields_are_named),
		cmocka_unit_test(test_batch_size_limit),
		cmocka_unit_test(test_uuid_round_trip),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
