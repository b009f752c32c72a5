/* Configuration loading, merging and validation. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/config.h"
#include "../../common/util.h"

static char tmpdir[] = "/tmp/tocsin-test-config-XXXXXX";

/* tmpdir/name in a static buffer: good until the next call. */
static const char *tpath(const char *name)
{
	static char buf[512];

	snprintf(buf, sizeof(buf), "%s/%s", tmpdir, name);
	return buf;
}

static void write_text(const char *name, const char *text)
{
	FILE *fp = fopen(tpath(name), "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static bool has_error(const struct cfg *cfg, const char *needle)
{
	for (size_t i = 0; i < cfg->nerrors; i++)
		if (strstr(cfg->errors[i], needle) != NULL)
			return true;
	return false;
}

static void print_errors(const struct cfg *cfg)
{
	for (size_t i = 0; i < cfg->nerrors; i++)
		print_message("  error: %s\n", cfg->errors[i]);
}

static struct cfg *load_main_and_dropins(void)
{
	char *main_path = xstrdup(tpath("agent.yaml"));
	char *dir = cfg_dropin_dir_for(main_path);
	struct cfg *cfg;

	assert_int_equal(cfg_load(main_path, dir, &cfg), 0);
	free(main_path);
	free(dir);
	return cfg;
}

static void test_dropins_merge_in_name_order(void **state)
{
	struct cfg *cfg;
	char *host = NULL, *url = NULL;
	char **mounts = NULL;
	int64_t interval = 0;

	(void)state;
	write_text("agent.yaml", "host: web01\n"
				 "server:\n  url: http://a:1\n"
				 "checks:\n  disk:\n    mounts: [/srv]\n");
	mkdir(tpath("agent.d"), 0755);
	/* 20- must win over 10-, whatever order readdir returns. */
	write_text("agent.d/20-late.yaml", "server:\n  url: http://late:3\n");
	write_text("agent.d/10-early.yaml",
		   "server:\n  url: http://early:2\n"
		   "checks:\n  disk:\n    interval: 5m\n    mounts: [/var]\n");
	write_text("agent.d/ignored.txt", "this: is not yaml: [\n");

	cfg = load_main_and_dropins();
	print_errors(cfg);
	assert_int_equal(cfg->nerrors, 0);

	const struct cfg_node *server = cfg_get(cfg, cfg->root, "server");
	const struct cfg_node *checks = cfg_get(cfg, cfg->root, "checks");
	const struct cfg_node *disk = cfg_get(cfg, checks, "disk");

	assert_int_equal(cfg_get_string(cfg, cfg->root, "host", &host), 1);
	assert_string_equal(host, "web01");
	assert_int_equal(cfg_get_string(cfg, server, "url", &url), 1);
	assert_string_equal(url, "http://late:3");
	/* mappings merged: interval from a drop-in, mounts from both */
	assert_int_equal(cfg_get_duration(cfg, disk, "interval", &interval), 1);
	assert_int_equal(interval, 300000);
	assert_int_equal(cfg_get_string_list(cfg, disk, "mounts", &mounts), 1);
	assert_string_equal(mounts[0], "/srv");
	assert_string_equal(mounts[1], "/var");
	assert_null(mounts[2]);
	assert_int_equal(cfg_finish(cfg), 0);

	free(host);
	free(url);
	cfg_string_list_free(mounts);
	cfg_free(cfg);
	unlink(tpath("agent.d/20-late.yaml"));
	unlink(tpath("agent.d/10-early.yaml"));
	unlink(tpath("agent.d/ignored.txt"));
}

static void test_unknown_key_names_file_line_column_and_path(void **state)
{
	struct cfg *cfg;
	char *url = NULL;

	(void)state;
	write_text("agent.yaml", "server:\n"
				 "  url: http://a:1\n"
				 "  tiemout: 10s\n");
	cfg = load_main_and_dropins();
	cfg_get_string(cfg, cfg_get(cfg, cfg->root, "server"), "url", &url);
	assert_int_equal(cfg_finish(cfg), 1);
	print_errors(cfg);
	assert_true(has_error(cfg, "agent.yaml:3:3: server.tiemout: unknown key 'tiemout'"));
	free(url);
	cfg_free(cfg);
}

static void test_unknown_key_in_dropin_points_at_dropin(void **state)
{
	struct cfg *cfg;

	(void)state;
	write_text("agent.yaml", "host: a\n");
	mkdir(tpath("agent.d"), 0755);
	write_text("agent.d/50-extra.yaml", "\n\nbogus: 1\n");
	cfg = load_main_and_dropins();
	cfg_get(cfg, cfg->root, "host");
	assert_int_equal(cfg_finish(cfg), 1);
	print_errors(cfg);
	assert_true(has_error(cfg, "agent.d/50-extra.yaml:3:1: bogus: unknown key 'bogus'"));
	cfg_free(cfg);
	unlink(tpath("agent.d/50-extra.yaml"));
}

static void test_wrong_types_are_errors(void **state)
{
	struct cfg *cfg;
	int64_t ms = 0, n = 0;
	uint64_t size = 0;
	double pct = 0;
	bool b = false;
	char *s = NULL;

	(void)state;
	assert_int_equal(cfg_load_string("t.yaml",
					 "interval: soon\n"
					 "count: 12x\n"
					 "size: 3 parsecs\n"
					 "pct: 120%\n"
					 "flag: maybe\n"
					 "name: [a, b]\n"
					 "range: 70000\n",
					 &cfg),
			 0);
	assert_true(cfg_get_duration(cfg, cfg->root, "interval", &ms) < 0);
	assert_true(cfg_get_int(cfg, cfg->root, "count", 0, 100, &n) < 0);
	assert_true(cfg_get_size(cfg, cfg->root, "size", &size) < 0);
	assert_true(cfg_get_percent(cfg, cfg->root, "pct", &pct) < 0);
	assert_true(cfg_get_bool(cfg, cfg->root, "flag", &b) < 0);
	assert_true(cfg_get_string(cfg, cfg->root, "name", &s) < 0);
	assert_true(cfg_get_int(cfg, cfg->root, "range", 0, 65535, &n) < 0);
	print_errors(cfg);
	assert_int_equal(cfg->nerrors, 7);
	assert_true(has_error(cfg, "t.yaml:1:11: interval: expected a duration"));
	assert_true(has_error(cfg, "t.yaml:6:7: name: expected a single value, not a list"));
	assert_true(has_error(cfg, "t.yaml:7:8: range: 70000 is out of range 0..65535"));
	/* untouched on error */
	assert_int_equal(ms, 0);
	assert_null(s);
	cfg_free(cfg);
}

static void test_syntax_error_has_position(void **state)
{
	struct cfg *cfg;

	(void)state;
	assert_int_equal(cfg_load_string("bad.yaml", "a: 1\nb: [1, 2\nc: 3\n",
					 &cfg),
			 0);
	print_errors(cfg);
	assert_int_equal(cfg->nerrors, 1);
	assert_true(has_error(cfg, "bad.yaml:"));
	assert_true(has_error(cfg, "YAML syntax error"));
	cfg_free(cfg);
}

/* Bytes that are not UTF-8: libyaml gives an offset only; the position
 * is counted from it, the column in characters. */
static void test_invalid_utf8_has_position(void **state)
{
	struct cfg *cfg;

	(void)state;
	assert_int_equal(cfg_load_string("utf8.yaml",
					 "a: 1\nb: \"\xc3\xa9\xc3\xa9x\xff\"\n",
					 &cfg),
			 0);
	print_errors(cfg);
	assert_int_equal(cfg->nerrors, 1);
	assert_true(has_error(cfg, "utf8.yaml:2:8: YAML syntax error: invalid leading UTF-8 octet"));
	cfg_free(cfg);
}

/* A mapping of thousands of keys (an inventory's hosts): every duplicate found. */
static void test_duplicate_keys_in_a_large_mapping(void **state)
{
	enum { KEYS = 20000 };
	size_t size = 32 * KEYS, n = 0;
	char *text = calloc(1, size);
	struct cfg *cfg;

	(void)state;
	assert_non_null(text);
	n += (size_t)snprintf(text + n, size - n, "hosts:\n");
	for (int i = 0; i < KEYS; i++)
		n += (size_t)snprintf(text + n, size - n, "  h%d: %d\n", i, i);
	/* The first and the last again, and one in the middle. */
	n += (size_t)snprintf(text + n, size - n, "  h0: x\n  h%d: x\n  h%d: x\n",
			      KEYS - 1, KEYS / 2);
	assert_int_equal(cfg_load_string("big.yaml", text, &cfg), 0);
	assert_int_equal(cfg->nerrors, 3);
	assert_true(has_error(cfg, "big.yaml:20002:3: hosts: duplicate key 'h0'"));
	assert_true(has_error(cfg, "big.yaml:20003:3: hosts: duplicate key 'h19999'"));
	assert_true(has_error(cfg, "big.yaml:20004:3: hosts: duplicate key 'h10000'"));
	cfg_free(cfg);
	free(text);
}

static void test_duplicate_keys_and_aliases_rejected(void **state)
{
	struct cfg *cfg;

	(void)state;
	assert_int_equal(cfg_load_string("d.yaml", "a: 1\na: 2\n", &cfg), 0);
	assert_true(has_error(cfg, "d.yaml:2:1: duplicate key 'a'"));
	cfg_free(cfg);
	assert_int_equal(cfg_load_string("al.yaml", "a: &x 1\nb: *x\n", &cfg),
			 0);
	assert_true(has_error(cfg, "aliases are not supported"));
	cfg_free(cfg);
}

static void test_top_level_must_be_mapping(void **state)
{
	struct cfg *cfg;

	(void)state;
	assert_int_equal(cfg_load_string("l.yaml", "- a\n- b\n", &cfg), 0);
	assert_true(has_error(cfg, "l.yaml:1:1: the top level must be a mapping"));
	cfg_free(cfg);
	/* an empty file is an empty configuration, not an error */
	assert_int_equal(cfg_load_string("e.yaml", "# nothing\n", &cfg), 0);
	assert_int_equal(cfg_finish(cfg), 0);
	cfg_free(cfg);
}

static void test_deep_nesting_is_bounded(void **state)
{
	char text[1200];
	struct cfg *cfg;
	size_t n = 0;

	(void)state;
	n += (size_t)snprintf(text, sizeof(text), "a: ");
	for (int i = 0; i < 200; i++)
		text[n++] = '[';
	text[n] = '\0';
	assert_int_equal(cfg_load_string("deep.yaml", text, &cfg), 0);
	assert_true(cfg->nerrors >= 1);
	cfg_free(cfg);
}

static void test_missing_main_file(void **state)
{
	struct cfg *cfg;

	(void)state;
	assert_int_equal(cfg_load("/nonexistent/agent.yaml", NULL, &cfg), 0);
	assert_true(has_error(cfg, "/nonexistent/agent.yaml: cannot read"));
	cfg_free(cfg);
}

static void test_unit_parsers(void **state)
{
	int64_t ms;
	uint64_t bytes;
	double pct;

	(void)state;
	assert_int_equal(parse_duration_ms("90", &ms), 0);
	assert_int_equal(ms, 90000);
	assert_int_equal(parse_duration_ms("250ms", &ms), 0);
	assert_int_equal(ms, 250);
	assert_int_equal(parse_duration_ms("1.5h", &ms), 0);
	assert_int_equal(ms, 5400000);
	assert_int_equal(parse_duration_ms("7d", &ms), 0);
	assert_int_equal(ms, 604800000);
	assert_true(parse_duration_ms("-1s", &ms) < 0);
	assert_true(parse_duration_ms("3 fortnights", &ms) < 0);

	assert_int_equal(parse_size("10GiB", &bytes), 0);
	assert_int_equal(bytes, 10ULL << 30);
	assert_int_equal(parse_size("1.5 MB", &bytes), 0);
	assert_int_equal(bytes, 1500000);
	assert_int_equal(parse_size("4096", &bytes), 0);
	assert_int_equal(bytes, 4096);
	assert_true(parse_size("lots", &bytes) < 0);

	assert_int_equal(parse_percent("93.5%", &pct), 0);
	assert_true(pct > 93.4 && pct < 93.6);
	assert_true(parse_percent("101", &pct) < 0);
}

static void test_dropin_dir_naming(void **state)
{
	char *d;

	(void)state;
	d = cfg_dropin_dir_for("/etc/tocsin/agent.yaml");
	assert_string_equal(d, "/etc/tocsin/agent.d");
	free(d);
	d = cfg_dropin_dir_for("/etc/tocsin.d/server");
	assert_string_equal(d, "/etc/tocsin.d/server.d");
	free(d);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dropins_merge_in_name_order),
		cmocka_unit_test(test_unknown_key_names_file_line_column_and_path),
		cmocka_unit_test(test_unknown_key_in_dropin_points_at_dropin),
		cmocka_unit_test(test_wrong_types_are_errors),
		cmocka_unit_test(test_syntax_error_has_position),
		cmocka_unit_test(test_invalid_utf8_has_position),
		cmocka_unit_test(test_duplicate_keys_and_aliases_rejected),
		cmocka_unit_test(test_duplicate_keys_in_a_large_mapping),
		cmocka_unit_test(test_top_level_must_be_mapping),
		cmocka_unit_test(test_deep_nesting_is_bounded),
		cmocka_unit_test(test_missing_main_file),
		cmocka_unit_test(test_unit_parsers),
		cmocka_unit_test(test_dropin_dir_naming),
	};
	int r;

	if (mkdtemp(tmpdir) == NULL)
		return 1;
	r = cmocka_run_group_tests(tests, NULL, NULL);
	/* best effort clean-up of the temporary tree */
	{
		char *cmd = xasprintf("rm -rf '%s'", tmpdir);
		(void)!system(cmd);
		free(cmd);
	}
	return r;
}
