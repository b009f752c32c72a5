/* Trap mappings: built-ins, YAML files, conditions, templates, errors. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/config.h"
#include "../../common/util.h"
#include "../../server/trapmap.h"
#include "../../server/trapmsg.h"
#include "../../server/trapnames.h"

struct fixture {
	struct trap_msg m;
	struct cfg *errors;
	struct trapmap *map;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));

	trapmsg_init(&f->m);
	cfg_load_string("errors", "", &f->errors);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	trapmsg_free(&f->m);
	cfg_free(f->errors);
	trapmap_free(f->map);
	free(f);
	return 0;
}

/* A table from YAML text (NULL: built-ins only); errors stay in f. */
static size_t load(struct fixture *f, const char *yaml)
{
	f->map = trapmap_new();
	if (yaml != NULL) {
		struct cfg *fc;

		assert_int_equal(cfg_load_string("vendor.yaml", yaml, &fc), 0);
		if (fc->nerrors == 0)
			trapmap_add_file(f->map, fc, NULL, NULL);
		cfg_finish(fc);
		for (size_t i = 0; i < fc->nerrors; i++)
			cfg_error_text(f->errors, "%s", fc->errors[i]);
		cfg_free(fc);
	}
	trapmap_finish(f->map, f->errors);
	return f->errors->nerrors;
}

static bool has_error(struct fixture *f, const char *text)
{
	for (size_t i = 0; i < f->errors->nerrors; i++)
		if (strstr(f->errors->errors[i], text))
			return true;
	for (size_t i = 0; i < f->errors->nerrors; i++)
		fprintf(stderr, "error: %s\n", f->errors->errors[i]);
	return false;
}

static void set_trap(struct trap_msg *m, const char *oid)
{
	assert_int_equal(trap_oid_parse(oid, &m->trap_oid), 0);
	m->trap_name = oid;
	m->version = TRAP_V2C;
	strlcpy_safe(m->source_text, "192.0.2.1", sizeof(m->source_text));
}

static void add_vb(struct trap_msg *m, const char *oid, const char *text,
		   const char *label)
{
	struct trap_varbind *v = trapmsg_add_varbind(m, 64);
	const struct trapname *n;

	assert_non_null(v);
	assert_int_equal(trap_oid_parse(oid, &v->oid), 0);
	v->type = TRAP_VALUE_STRING;
	v->text = trapmsg_store(m, text, strlen(text));
	v->label = label;
	n = trapnames_by_oid(v->oid.sub, v->oid.len);
	if (n != NULL) {
		char idx[64];

		trap_oid_format(v->oid.sub + n->len, v->oid.len - n->len, idx,
				sizeof(idx));
		v->name = n->name;
		v->index = trapmsg_store(m, idx, strlen(idx));
	}
}

static void link_trap(struct trap_msg *m, const char *trap, const char *name)
{
	set_trap(m, trap);
	m->trap_name = strcmp(trap, "1.3.6.1.6.3.1.1.5.3") == 0 ? "linkDown"
								 : "linkUp";
	add_vb(m, "1.3.6.1.2.1.2.2.1.1.7", "7", NULL);
	add_vb(m, "1.3.6.1.2.1.2.2.1.7.7", "1", "up");
	add_vb(m, "1.3.6.1.2.1.2.2.1.8.7", "2", "down");
	if (name)
		add_vb(m, "1.3.6.1.2.1.31.1.1.1.1.7", name, NULL);
}

static void test_builtin_link_down_and_its_clear(void **state)
{
	struct fixture *f = *state;
	struct trapmap_result r, up;

	assert_int_equal(load(f, NULL), 0);
	link_trap(&f->m, "1.3.6.1.6.3.1.1.5.3", "Gi0/7");
	assert_int_equal(trapmap_apply(f->map, &f->m, "sw1", &r), 1);
	assert_string_equal(r.mapping, "link-down");
	assert_string_equal(r.check, "link");
	assert_string_equal(r.item, "Gi0/7");
	assert_int_equal(r.state, CHECK_CRITICAL);
	assert_string_equal(r.summary,
			    "Gi0/7 on sw1 is down (ifIndex 7, adminStatus up, operStatus down)");

	trapmsg_reset(&f->m);
	link_trap(&f->m, "1.3.6.1.6.3.1.1.5.4", "Gi0/7");
	assert_int_equal(trapmap_apply(f->map, &f->m, "sw1", &up), 1);
	assert_string_equal(up.mapping, "link-up");
	/* The same problem key, state ok: dedup resolves the ticket. */
	assert_string_equal(up.check, r.check);
	assert_string_equal(up.item, r.item);
	assert_int_equal(up.state, CHECK_OK);
}

static void test_item_falls_back_to_ifdescr_then_ifindex_then_instance(void **state)
{
	struct fixture *f = *state;
	struct trapmap_result r;

	assert_int_equal(load(f, NULL), 0);
	link_trap(&f->m, "1.3.6.1.6.3.1.1.5.3", NULL);
	assert_int_equal(trapmap_apply(f->map, &f->m, "sw1", &r), 1);
	assert_string_equal(r.item, "7");
	trapmsg_reset(&f->m);
	set_trap(&f->m, "1.3.6.1.6.3.1.1.5.3");
	add_vb(&f->m, "1.3.6.1.2.1.2.2.1.8.12", "2", "down");
	assert_int_equal(trapmap_apply(f->map, &f->m, "sw1", &r), 1);
	assert_string_equal(r.item, "12"); /* ifOperStatus.index */
}

static void test_fallback_one_problem_per_trap_oid(void **state)
{
	struct fixture *f = *state;
	struct trapmap_result r;

	assert_int_equal(load(f, NULL), 0);
	set_trap(&f->m, "1.3.6.1.4.1.9.9.43.2.0.1");
	add_vb(&f->m, "1.3.6.1.4.1.9.9.43.1.1.6.1.5.3", "running", NULL);
	assert_int_equal(trapmap_apply(f->map, &f->m, "rtr", &r), 0);
	assert_true(r.fallback);
	assert_string_equal(r.check, "trap");
	assert_string_equal(r.item, "1.3.6.1.4.1.9.9.43.2.0.1");
	assert_int_equal(r.state, CHECK_WARNING);
	assert_non_null(strstr(r.summary, "1.3.6.1.4.1.9.9.43.1.1.6.1.5.3=running"));
}

static const char vendor[] =
	"names:\n"
	"  fanState: 1.3.6.1.4.1.9.9.13.1.4.1.3\n"
	"  fanDescr: 1.3.6.1.4.1.9.9.13.1.4.1.2\n"
	"mappings:\n"
	"  - name: fan-critical\n"
	"    trap: 1.3.6.1.4.1.9.9.13.3.0.*\n"
	"    match:\n"
	"      fanState: {equals: '3'}\n"
	"      fanDescr: {regex: '^Fan [0-9]+$'}\n"
	"      source: {prefix: '192.0.2.'}\n"
	"    check: fan\n"
	"    item: 'fan {fanState.index}'\n"
	"    state: critical\n"
	"    summary: '{fanDescr} on {device}: state {fanState} ({{raw}}) v{version}'\n"
	"  - name: fan-ok\n"
	"    trap: 1.3.6.1.4.1.9.9.13.3.0.4\n"
	"    match:\n"
	"      fanState: '1'\n"
	"    clears: fan-critical\n";

static void test_vendor_mapping_conditions_and_templates(void **state)
{
	struct fixture *f = *state;
	struct trapmap_result r;

	assert_int_equal(load(f, vendor), 0);
	set_trap(&f->m, "1.3.6.1.4.1.9.9.13.3.0.4");
	add_vb(&f->m, "1.3.6.1.4.1.9.9.13.1.4.1.2.2", "Fan 2", NULL);
	add_vb(&f->m, "1.3.6.1.4.1.9.9.13.1.4.1.3.2", "3", NULL);
	assert_int_equal(trapmap_apply(f->map, &f->m, "c6500", &r), 1);
	assert_string_equal(r.mapping, "fan-critical");
	assert_string_equal(r.item, "fan 2");
	assert_string_equal(r.summary, "Fan 2 on c6500: state 3 ({raw}) v2c");

	/* State 1 is the clear: the same key, ok. */
	f->m.vb[1].text = "1";
	assert_int_equal(trapmap_apply(f->map, &f->m, "c6500", &r), 1);
	assert_string_equal(r.mapping, "fan-ok");
	assert_string_equal(r.item, "fan 2");
	assert_int_equal(r.state, CHECK_OK);

	/* A condition that fails (regex) sends it to the fallback. */
	f->m.vb[0].text = "PSU 1";
	f->m.vb[1].text = "3";
	assert_int_equal(trapmap_apply(f->map, &f->m, "c6500", &r), 0);
	/* And so does a source outside the prefix. */
	f->m.vb[0].text = "Fan 2";
	strlcpy_safe(f->m.source_text, "198.51.100.1", sizeof(f->m.source_text));
	assert_int_equal(trapmap_apply(f->map, &f->m, "c6500", &r), 0);
}

static void test_a_file_replaces_a_builtin_and_switches_others_off(void **state)
{
	struct fixture *f = *state;
	struct trapmap_result r;

	assert_int_equal(load(f,
			      "mappings:\n"
			      "  - name: link-down\n"
			      "    trap: linkDown\n"
			      "    check: port\n"
			      "    item: '{ifIndex}'\n"
			      "    state: warning\n"
			      "    summary: port {ifIndex} down\n"
			      "  - name: fallback\n"
			      "    enabled: false\n"),
			 0);
	link_trap(&f->m, "1.3.6.1.6.3.1.1.5.3", "Gi0/7");
	assert_int_equal(trapmap_apply(f->map, &f->m, "sw1", &r), 1);
	assert_string_equal(r.check, "port");
	assert_string_equal(r.summary, "port 7 down");
	/* link-up clears the replacement: check port, item {ifIndex}. */
	trapmsg_reset(&f->m);
	link_trap(&f->m, "1.3.6.1.6.3.1.1.5.4", "Gi0/7");
	assert_int_equal(trapmap_apply(f->map, &f->m, "sw1", &r), 1);
	assert_string_equal(r.check, "port");
	assert_string_equal(r.item, "7");
	trapmsg_reset(&f->m);
	set_trap(&f->m, "1.3.6.1.4.1.99.1");
	assert_int_equal(trapmap_apply(f->map, &f->m, "sw1", &r), -ENOENT);
}

/*
 * Switching off link-down alone used to make the configuration invalid
 * (the built-in link-up had nothing to clear): its clears go with it, and
 * both traps are unmatched, as any trap of a switched-off mapping.
 */
static void test_switching_off_a_mapping_switches_off_its_clears(void **state)
{
	struct fixture *f = *state;
	struct trapmap_result r;

	assert_int_equal(load(f, "mappings:\n  - name: link-down\n    enabled: false\n"), 0);
	link_trap(&f->m, "1.3.6.1.6.3.1.1.5.3", "Gi0/7");
	assert_int_equal(trapmap_apply(f->map, &f->m, "sw1", &r), 0);
	assert_true(r.fallback);
	trapmsg_reset(&f->m);
	link_trap(&f->m, "1.3.6.1.6.3.1.1.5.4", "Gi0/7");
	assert_int_equal(trapmap_apply(f->map, &f->m, "sw1", &r), 0);
	assert_true(r.fallback);
}

/*
 * A file's clear of a narrow mapping comes first for every linkUp; the
 * built-in link-up must still resolve the other ports' link tickets.
 */
static void test_every_matching_clear_resolves_its_own_mapping(void **state)
{
	struct fixture *f = *state;
	struct trapmap_result r;

	assert_int_equal(load(f,
			      "mappings:\n"
			      "  - name: uplink-down\n"
			      "    trap: linkDown\n"
			      "    match:\n"
			      "      ifAlias: {prefix: uplink}\n"
			      "    check: uplink\n"
			      "    item: '{ifName}'\n"
			      "    state: critical\n"
			      "  - name: uplink-up\n"
			      "    trap: linkUp\n"
			      "    clears: uplink-down\n"),
			 0);
	link_trap(&f->m, "1.3.6.1.6.3.1.1.5.3", "Gi0/7");
	assert_int_equal(trapmap_apply(f->map, &f->m, "sw1", &r), 1);
	assert_string_equal(r.mapping, "link-down"); /* no uplink: the built-in */
	assert_int_equal(trapmap_next_clear(f->map, &f->m, "sw1", &r), 0);
	trapmsg_reset(&f->m);
	link_trap(&f->m, "1.3.6.1.6.3.1.1.5.4", "Gi0/7");
	assert_int_equal(trapmap_apply(f->map, &f->m, "sw1", &r), 1);
	assert_string_equal(r.mapping, "uplink-up");
	assert_string_equal(r.check, "uplink");
	assert_int_equal(r.state, CHECK_OK);
	assert_int_equal(trapmap_next_clear(f->map, &f->m, "sw1", &r), 1);
	assert_string_equal(r.mapping, "link-up");
	assert_string_equal(r.check, "link");
	assert_string_equal(r.item, "Gi0/7");
	assert_int_equal(r.state, CHECK_OK);
	assert_int_equal(trapmap_next_clear(f->map, &f->m, "sw1", &r), 0);
}

static void test_errors_name_the_place(void **state)
{
	struct fixture *f = *state;

	assert_int_not_equal(load(f,
				  "mappings:\n"
				  "  - name: a\n"
				  "    trap: linkDown\n"
				  "    check: x\n"
				  "    item: '{}'\n"
				  "    state: ok\n"
				  "  - name: b\n"
				  "    trap: linkDown\n"
				  "    check: x\n"
				  "    item: 'a } b'\n"
				  "    state: ok\n"
				  "  - name: c\n"
				  "    trap: 1.3.6.1.4\n"
				  "    check: x\n"
				  "    item: '{device|source|trap|version|user|trap_oid|engine_id|varbinds|agent_addr}'\n"
				  "    state: ok\n"
				  "  - name: d\n"
				  "    trap: 1.3.6.1.4\n"
				  "    clears: d\n"
				  "  - name: a\n"
				  "    trap: linkUp\n"
				  "    check: x\n"
				  "    item: y\n"
				  "    state: ok\n"
				  "  - name: e\n"
				  "    trap: linkUp\n"
				  "    check: y\n"
				  "  - name: link-up\n"
				  "    trap: linkUp\n"
				  "    clears: link-down\n"
				  "    state: critical\n"
				  "  - name: good\n"
				  "    trap: linkUp\n"
				  "    check: x\n"
				  "    item: y\n"
				  "    state: ok\n"
				  "  - name: good\n"
				  "    trap: linkUp\n"
				  "    check: x\n"
				  "    item: y\n"
				  "    state: ok\n"),
			     0);
	assert_true(has_error(f, "vendor.yaml:5:11: mappings[0].item: empty or overlong name in {...} at character 2"));
	assert_true(has_error(f, "vendor.yaml:10:11: mappings[1].item: unmatched '}' at character 3"));
	assert_true(has_error(f, "vendor.yaml:15:11: mappings[2].item: more than 8 alternatives"));
	assert_true(has_error(f, "vendor.yaml:19:13: mappings[3].clears: no mapping 'd' to clear"));
	/* The first 'a' had errors, so the second one is no duplicate. */
	assert_true(has_error(f, "vendor.yaml:37:5: mappings[8]: mapping 'good' is already defined (vendor.yaml:32:5: mappings[7])"));
	assert_true(has_error(f, "vendor.yaml:25:5: mappings[5]: mapping 'e' needs check, item and state (or clears:)"));
	assert_true(has_error(f, "mappings[6]: mapping 'link-up' clears 'link-down': its state is ok"));
}

/*
 * A back-reference makes glibc's matcher exponential: one trap with a
 * crafted value would stall the listener.  Refused where it is written.
 */
static void test_regex_back_references_are_refused(void **state)
{
	struct fixture *f = *state;

	assert_int_not_equal(load(f,
				  "mappings:\n"
				  "  - name: slow\n"
				  "    trap: linkDown\n"
				  "    match:\n"
				  "      ifAlias: {regex: '^(a*)*\\1$'}\n"
				  "    check: x\n"
				  "    item: y\n"
				  "    state: ok\n"),
			     0);
	assert_true(has_error(f, "vendor.yaml:5:24: mappings[0].match.ifAlias.regex: regular expression '^(a*)*\\1$': back-reference \\1 at character 7 is not allowed"));
}

static void test_an_escaped_backslash_before_a_digit_is_no_back_reference(void **state)
{
	struct fixture *f = *state;
	struct trapmap_result r;

	assert_int_equal(load(f,
			      "mappings:\n"
			      "  - name: path\n"
			      "    trap: linkDown\n"
			      "    match:\n"
			      "      ifAlias: {regex: '^C:\\\\1'}\n"
			      "    check: x\n"
			      "    item: y\n"
			      "    state: ok\n"),
			 0);
	link_trap(&f->m, "1.3.6.1.6.3.1.1.5.3", "Gi0/7");
	add_vb(&f->m, "1.3.6.1.2.1.31.1.1.1.18.7", "C:\\1", NULL);
	assert_int_equal(trapmap_apply(f->map, &f->m, "sw1", &r), 1);
	assert_string_equal(r.mapping, "path");
}

/* A regex looks at the first 1024 bytes of a value, never more. */
static void test_a_regex_sees_a_bounded_part_of_the_value(void **state)
{
	struct fixture *f = *state;
	struct trapmap_result r;
	char value[1600];

	assert_int_equal(load(f,
			      "mappings:\n"
			      "  - name: ends-in-b\n"
			      "    trap: linkDown\n"
			      "    match:\n"
			      "      ifAlias: {regex: 'b$'}\n"
			      "    check: x\n"
			      "    item: y\n"
			      "    state: ok\n"),
			 0);
	memset(value, 'a', sizeof(value));
	value[1023] = 'b';
	value[1024] = '\0';
	link_trap(&f->m, "1.3.6.1.6.3.1.1.5.3", "Gi0/7");
	add_vb(&f->m, "1.3.6.1.2.1.31.1.1.1.18.7", value, NULL);
	assert_int_equal(trapmap_apply(f->map, &f->m, "sw1", &r), 1);
	assert_string_equal(r.mapping, "ends-in-b");
	/* The same 'b' past the first 1024 bytes is not seen. */
	trapmsg_reset(&f->m);
	memset(value, 'a', sizeof(value));
	value[1499] = 'b';
	value[1500] = '\0';
	link_trap(&f->m, "1.3.6.1.6.3.1.1.5.3", "Gi0/7");
	add_vb(&f->m, "1.3.6.1.2.1.31.1.1.1.18.7", value, NULL);
	assert_int_equal(trapmap_apply(f->map, &f->m, "sw1", &r), 1);
	assert_string_equal(r.mapping, "link-down");
}

static size_t count_byte(const char *s, unsigned char c)
{
	size_t n = 0;

	for (; *s; s++)
		n += (unsigned char)*s == c;
	return n;
}

static void test_rendering_is_bounded_and_keeps_characters_whole(void **state)
{
	struct fixture *f = *state;
	struct trapmap_result r;
	char *big = xcalloc(1, 5000);

	assert_int_equal(load(f, NULL), 0);
	/* 2500 two-byte characters: more than a summary holds. */
	for (int i = 0; i < 2499; i++)
		memcpy(big + 2 * i, "\xc3\xa9", 2);
	link_trap(&f->m, "1.3.6.1.6.3.1.1.5.3", big);
	assert_int_equal(trapmap_apply(f->map, &f->m, "sw1", &r), 1);
	assert_true(strlen(r.item) <= INGEST_ITEM_MAX);
	assert_true(strlen(r.summary) <= INGEST_SUMMARY_MAX);
	/* Cut between characters: every lead byte keeps its continuation. */
	assert_int_equal(count_byte(r.item, 0xc3), count_byte(r.item, 0xa9));
	assert_int_equal(count_byte(r.summary, 0xc3),
			 count_byte(r.summary, 0xa9));
	assert_true(strlen(r.summary) >= INGEST_SUMMARY_MAX - 1);
	free(big);
}

static void test_texts_from_devices_become_readable(void **state)
{
	struct fixture *f = *state;
	const uint8_t bin[] = { 0x00, 0x1a, 0xff };
	const uint8_t text[] = "line\tone\r\n";
	const uint8_t cstr[] = "eth0\0";

	(void)f;
	assert_string_equal(trapmsg_store_bytes(&f->m, bin, sizeof(bin)),
			    "00 1a ff");
	assert_string_equal(trapmsg_store_bytes(&f->m, text, sizeof(text) - 1),
			    "line one");
	assert_string_equal(trapmsg_store_bytes(&f->m, cstr, sizeof(cstr)), "eth0");
	assert_string_equal(trapmsg_store_bytes(&f->m, (const uint8_t *)"\xc3\xa9t\xc3\xa9", 5),
			    "\xc3\xa9t\xc3\xa9");
	/* An overlong encoding is not UTF-8: hex. */
	assert_string_equal(trapmsg_store_bytes(&f->m, (const uint8_t *)"\xc0\xaf", 2),
			    "c0 af");
}

static void test_oid_parsing(void **state)
{
	struct trap_oid o;
	char buf[64];

	(void)state;
	assert_int_equal(trap_oid_parse(".1.3.6.1.4.1.4294967295", &o), 0);
	assert_int_equal(o.len, 7);
	trap_oid_format(o.sub, o.len, buf, sizeof(buf));
	assert_string_equal(buf, "1.3.6.1.4.1.4294967295");
	assert_int_equal(trap_oid_parse("1.3.6.1.4.1.4294967296", &o), -EINVAL);
	assert_int_equal(trap_oid_parse("1..3", &o), -EINVAL);
	assert_int_equal(trap_oid_parse("1.3.", &o), -EINVAL);
	assert_int_equal(trap_oid_parse("ifName", &o), -EINVAL);
	assert_int_equal(trap_oid_parse("", &o), -EINVAL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_builtin_link_down_and_its_clear, setup, teardown),
		cmocka_unit_test_setup_teardown(test_item_falls_back_to_ifdescr_then_ifindex_then_instance, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fallback_one_problem_per_trap_oid, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vendor_mapping_conditions_and_templates, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_file_replaces_a_builtin_and_switches_others_off, setup, teardown),
		cmocka_unit_test_setup_teardown(test_switching_off_a_mapping_switches_off_its_clears, setup, teardown),
		cmocka_unit_test_setup_teardown(test_every_matching_clear_resolves_its_own_mapping, setup, teardown),
		cmocka_unit_test_setup_teardown(test_errors_name_the_place, setup, teardown),
		cmocka_unit_test_setup_teardown(test_regex_back_references_are_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_an_escaped_backslash_before_a_digit_is_no_back_reference, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_regex_sees_a_bounded_part_of_the_value, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rendering_is_bounded_and_keeps_characters_whole, setup, teardown),
		cmocka_unit_test_setup_teardown(test_texts_from_devices_become_readable, setup, teardown),
		cmocka_unit_test(test_oid_parsing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
