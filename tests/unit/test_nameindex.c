/* The sorted name index the helpdesk's lookups share (server/nameindex.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../server/nameindex.h"

/* A struct whose name is not its first member, as a test of the offset. */
struct item {
	int level;
	char *id;
};

static void test_names_are_found_where_they_are(void **state)
{
	struct item items[] = { { 1, "queue-b" }, { 2, "queue-a" },
				{ 3, "queue-c" }, { 4, NULL }, { 5, "queue" } };
	struct nameindex ix = { 0 };

	(void)state;
	nameindex_build(&ix, items, 5, sizeof(items[0]), offsetof(struct item, id));
	assert_int_equal(ix.n, 4); /* the NULL name left out */
	assert_int_equal(nameindex_find(&ix, "queue-a"), 1);
	assert_int_equal(nameindex_find(&ix, "queue-b"), 0);
	assert_int_equal(nameindex_find(&ix, "queue-c"), 2);
	assert_int_equal(nameindex_find(&ix, "queue"), 4);
	/* Not found: before, between and after the names, a prefix, NULL. */
	assert_int_equal(nameindex_find(&ix, ""), -1);
	assert_int_equal(nameindex_find(&ix, "queue-"), -1);
	assert_int_equal(nameindex_find(&ix, "queue-bb"), -1);
	assert_int_equal(nameindex_find(&ix, "zzz"), -1);
	assert_int_equal(nameindex_find(&ix, "Queue-a"), -1); /* case counts */
	assert_int_equal(nameindex_find(&ix, NULL), -1);
	nameindex_free(&ix);
	assert_null(ix.v);
	assert_int_equal(ix.n, 0);
}

/* A repeated name is the first item's, as a scan from the start found. */
static void test_a_repeated_name_is_the_first_items(void **state)
{
	struct item items[] = { { 0, "x" }, { 1, "dup" }, { 2, "y" },
				{ 3, "dup" }, { 4, "dup" } };
	struct nameindex ix = { 0 };

	(void)state;
	nameindex_build(&ix, items, 5, sizeof(items[0]), offsetof(struct item, id));
	assert_int_equal(nameindex_find(&ix, "dup"), 1);
	/* Rebuilt over the tail: the first of those. */
	nameindex_build(&ix, items + 2, 3, sizeof(items[0]),
			offsetof(struct item, id));
	assert_int_equal(nameindex_find(&ix, "dup"), 1);
	assert_int_equal(nameindex_find(&ix, "x"), -1);
	nameindex_free(&ix);
}

static void test_an_empty_index_finds_nothing(void **state)
{
	struct nameindex ix = { 0 };

	(void)state;
	assert_int_equal(nameindex_find(&ix, "anything"), -1);
	nameindex_build(&ix, NULL, 0, sizeof(struct item),
			offsetof(struct item, id));
	assert_int_equal(nameindex_find(&ix, "anything"), -1);
	nameindex_free(&ix);
	nameindex_free(&ix);
}

static void test_many_names_agree_with_a_scan(void **state)
{
	enum { N = 5000 };
	struct item *items = calloc(N, sizeof(*items));
	struct nameindex ix = { 0 };
	char name[32];

	(void)state;
	for (int i = 0; i < N; i++) {
		snprintf(name, sizeof(name), "tech%d", (i * 7) % (N / 2));
		items[i].id = strdup(name); /* each name twice */
	}
	nameindex_build(&ix, items, N, sizeof(*items), offsetof(struct item, id));
	for (int k = 0; k < N / 2 + 10; k++) {
		long want = -1;

		snprintf(name, sizeof(name), "tech%d", k);
		for (int i = 0; i < N && want < 0; i++)
			if (strcmp(items[i].id, name) == 0)
				want = i;
		assert_int_equal(nameindex_find(&ix, name), want);
	}
	nameindex_free(&ix);
	for (int i = 0; i < N; i++)
		free(items[i].id);
	free(items);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names_are_found_where_they_are),
		cmocka_unit_test(test_a_repeated_name_is_the_first_items),
		cmocka_unit_test(test_an_empty_index_finds_nothing),
		cmocka_unit_test(test_many_names_agree_with_a_scan),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
