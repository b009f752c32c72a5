/*
 * The backup check's path scan on real directories: wildcards in every
 * component, the newest kept first, hidden names, the match limit, and
 * what cannot be read counted (a symlink loop: root reads everything
 * else) without losing what can.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#include <utime.h>

#include "../../checks/pathscan.h"
#include "../../common/util.h"

static char *root;

static void file_at(const char *rel, time_t mtime, size_t size)
{
	char *p = xasprintf("%s/%s", root, rel);
	struct utimbuf ut = { .actime = mtime, .modtime = mtime };
	FILE *fp = fopen(p, "w");

	assert_non_null(fp);
	for (size_t i = 0; i < size; i++)
		fputc('x', fp);
	fclose(fp);
	assert_int_equal(utime(p, &ut), 0);
	free(p);
}

static void dir_at(const char *rel)
{
	char *p = xasprintf("%s/%s", root, rel);

	assert_int_equal(mkdir(p, 0755), 0);
	free(p);
}

static int setup(void **state)
{
	char tmpl[] = "/tmp/tocsin-pathscan-XXXXXX";

	(void)state;
	root = xstrdup(mkdtemp(tmpl));
	dir_at("a");
	dir_at("a/daily");
	dir_at("b");
	dir_at("b/daily");
	dir_at("c");
	file_at("a/daily/one.tar", 1000, 10);
	file_at("a/daily/two.tar", 3000, 20);
	file_at("b/daily/three.tar", 2000, 30);
	file_at("b/daily/.hidden.tar", 9000, 40);
	file_at("b/daily/notes.txt", 8000, 50);
	file_at("c/daily", 7000, 1); /* a file where a directory would be */
	return 0;
}

static int teardown(void **state)
{
	char *cmd = xasprintf("rm -rf '%s'", root);

	(void)state;
	assert_int_equal(system(cmd), 0);
	free(cmd);
	free(root);
	return 0;
}

static void test_wildcards_in_every_component(void **state)
{
	char *pattern = xasprintf("%s/*/daily/*.tar", root);
	struct pathscan s;

	(void)state;
	pathscan_run(pattern, 100, 10, &s);
	/* .hidden.tar only by name, notes.txt not, c/daily no directory */
	assert_int_equal(s.matches, 3);
	assert_int_equal(s.n, 3);
	assert_int_equal(s.unreadable, 0);
	assert_false(s.capped);
	assert_non_null(strstr(s.newest[0].path, "a/daily/two.tar"));
	assert_non_null(strstr(s.newest[1].path, "b/daily/three.tar"));
	assert_non_null(strstr(s.newest[2].path, "a/daily/one.tar"));
	assert_int_equal(s.newest[0].mtime_ms, 3000000);
	assert_int_equal(s.newest[0].size, 20);
	assert_true(s.newest[0].regular);
	pathscan_clear(&s);
	free(pattern);

	/* directories match too, and only the keep newest are held */
	pattern = xasprintf("%s/[ab]/daily", root);
	pathscan_run(pattern, 100, 1, &s);
	assert_int_equal(s.matches, 2);
	assert_int_equal(s.n, 1);
	assert_false(s.newest[0].regular);
	pathscan_clear(&s);
	free(pattern);
}

static void test_the_match_limit(void **state)
{
	char *pattern = xasprintf("%s/*/daily/*.tar", root);
	struct pathscan s;

	(void)state;
	pathscan_run(pattern, 2, 10, &s);
	assert_int_equal(s.matches, 2);
	assert_true(s.capped);
	pathscan_clear(&s);
	free(pattern);
}

static void test_unreadable_parts_are_counted_not_fatal(void **state)
{
	char *loop = xasprintf("%s/loop", root);
	char *pattern = xasprintf("%s/*/daily/*.tar", root);
	struct pathscan s;

	(void)state;
	/* "loop/daily" cannot be resolved: ELOOP, where root reads all else */
	assert_int_equal(symlink("loop", loop), 0);
	pathscan_run(pattern, 100, 10, &s);
	assert_int_equal(s.matches, 3);
	assert_int_equal(s.unreadable, 1);
	assert_int_equal(s.first_errno, ELOOP);
	assert_non_null(strstr(s.first_bad, "/loop/daily"));
	pathscan_clear(&s);
	unlink(loop);
	free(loop);
	free(pattern);
}

static void test_nothing_there(void **state)
{
	char *pattern = xasprintf("%s/nowhere/*.tar", root);
	struct pathscan s;

	(void)state;
	pathscan_run(pattern, 100, 10, &s);
	assert_int_equal(s.matches, 0);
	assert_int_equal(s.unreadable, 0);
	pathscan_clear(&s);
	free(pattern);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wildcards_in_every_component),
		cmocka_unit_test(test_the_match_limit),
		cmocka_unit_test(test_unreadable_parts_are_counted_not_fatal),
		cmocka_unit_test(test_nothing_there),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
