/* What a trap becomes in the store: inform ids, contexts, review rows. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/util.h"
#include "../../server/trapevent.h"
#include "../../server/trapmsg.h"

/* A v2c inform of linkDown with one named, labelled varbind. */
static void inform(struct trap_msg *m, int64_t reqid, uint32_t uptime)
{
	struct trap_varbind *v;

	trapmsg_reset(m);
	m->version = TRAP_V2C;
	m->inform = true;
	m->request_id = reqid;
	m->has_uptime = true;
	m->uptime = uptime;
	strlcpy_safe(m->source_text, "192.0.2.1", sizeof(m->source_text));
	trap_oid_parse("1.3.6.1.6.3.1.1.5.3", &m->trap_oid);
	m->trap_name = "linkDown";
	v = trapmsg_add_varbind(m, 8);
	trap_oid_parse("1.3.6.1.2.1.2.2.1.8.3", &v->oid);
	v->type = TRAP_VALUE_INTEGER;
	v->num = 2;
	v->text = "2";
	v->label = "down";
	v->name = "ifOperStatus";
	v->index = "3";
}

static void test_an_informs_id_is_its_retransmissions_and_no_other_informs(void **state)
{
	struct trap_msg m;
	uint8_t a[16], b[16];

	(void)state;
	trapmsg_init(&m);
	inform(&m, 77, 100);
	trapevent_inform_id(&m, "sw1", "link-down", a);
	inform(&m, 77, 100);
	trapevent_inform_id(&m, "sw1", "link-down", b);
	assert_memory_equal(a, b, 16);
	/* The device restarted: request id 77 again, its sysUpTime is new. */
	inform(&m, 77, 50);
	trapevent_inform_id(&m, "sw1", "link-down", b);
	assert_memory_not_equal(a, b, 16);
	inform(&m, 78, 100);
	trapevent_inform_id(&m, "sw1", "link-down", b);
	assert_memory_not_equal(a, b, 16);
	inform(&m, 77, 100);
	m.has_uptime = false;
	m.uptime = 0;
	trapevent_inform_id(&m, "sw1", "link-down", b);
	assert_memory_not_equal(a, b, 16);
	/* Each clear one inform resolves is an event of its own. */
	inform(&m, 77, 100);
	trapevent_inform_id(&m, "sw1", "uplink-up", b);
	assert_memory_not_equal(a, b, 16);
	trapevent_inform_id(&m, "sw2", "link-down", b);
	assert_memory_not_equal(a, b, 16);
	/* A version-8 UUID. */
	assert_int_equal(a[6] >> 4, 8);
	assert_int_equal(a[8] >> 6, 2);
	trapmsg_free(&m);
}

static void test_the_context_says_what_the_trap_said(void **state)
{
	struct trap_msg m;
	json_t *ctx;
	char *text;

	(void)state;
	trapmsg_init(&m);
	inform(&m, 77, 4242);
	text = trapevent_context(&m, "link-down");
	ctx = json_loads(text, 0, NULL);
	assert_non_null(ctx);
	assert_string_equal(json_string_value(json_object_get(ctx, "trap")), "linkDown");
	assert_string_equal(json_string_value(json_object_get(ctx, "mapping")), "link-down");
	assert_int_equal(json_integer_value(json_object_get(ctx, "uptime")), 4242);
	assert_int_equal(json_integer_value(json_object_get(ctx, "request_id")), 77);
	assert_true(json_is_true(json_object_get(ctx, "inform")));
	assert_string_equal(json_string_value(json_object_get(
				    json_object_get(ctx, "varbinds"), "ifOperStatus.3")),
			    "down(2)");
	json_decref(ctx);
	free(text);
	trapmsg_free(&m);
}

static void test_a_review_row_owns_what_could_identify_the_sender(void **state)
{
	struct trapreview_row row;
	struct trap_msg m;
	struct trap_varbind *v;

	(void)state;
	trapmsg_init(&m);
	inform(&m, 1, 1);
	m.version = TRAP_V3;
	strlcpy_safe(m.user, "ops", sizeof(m.user));
	memcpy(m.engine_id, "\x80\x00\x1f\x88\x04", 5);
	m.engine_id_len = 5;
	v = trapmsg_add_varbind(&m, 8);
	trap_oid_parse("1.3.6.1.2.1.1.5.0", &v->oid);
	v->type = TRAP_VALUE_STRING;
	v->text = "edge.example";
	trapevent_review_row(&m, 1234, &row);
	trapmsg_free(&m);
	assert_int_equal(row.received_ms, 1234);
	assert_string_equal(row.source, "192.0.2.1");
	assert_string_equal(row.version, "3");
	assert_null(row.agent_addr);
	assert_string_equal(row.engine_id, "80001f8804");
	assert_string_equal(row.user, "ops");
	assert_string_equal(row.sys_name, "edge.example");
	assert_string_equal(row.trap, "linkDown");
	assert_string_equal(row.trap_oid, "1.3.6.1.6.3.1.1.5.3");
	assert_non_null(strstr(row.varbinds, "\"ifOperStatus.3\":\"down(2)\""));
	trapreview_row_clear(&row);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_an_informs_id_is_its_retransmissions_and_no_other_informs),
		cmocka_unit_test(test_the_context_says_what_the_trap_said),
		cmocka_unit_test(test_a_review_row_owns_what_could_identify_the_sender),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
