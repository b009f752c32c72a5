/*
 * WAL checkpoints beside a writer that never pauses: the thread is woken
 * once per CHECKPOINT_PAGES of new log (not after every commit), and the
 * writer finishes the checkpoint past CHECKPOINT_RESTART_PAGES so that
 * the log starts over instead of growing to CHECKPOINT_MAX_PAGES.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../server/checkpoint.h"
#include "../../server/store.h"
#include "tmpdb.h"

/*
 * One commit of rows big enough for about 50 pages of log; every tenth
 * empties the table, so that the database file stays small while the
 * log takes every page.
 */
static void commit_rows(struct store *st, int n)
{
	store_lock(st);
	if (n % 10 == 9)
		assert_int_equal(sqlite3_exec(store_db(st),
					      "DELETE FROM filler", NULL,
					      NULL, NULL),
				 SQLITE_OK);
	assert_int_equal(sqlite3_exec(store_db(st),
				      "BEGIN;"
				      "INSERT INTO filler(data) SELECT randomblob(3500)"
				      "  FROM (WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL"
				      "        SELECT i + 1 FROM n WHERE i < 50)"
				      "        SELECT i FROM n);"
				      "COMMIT;",
				      NULL, NULL, NULL),
			 SQLITE_OK);
	store_unlock(st);
}

static void test_log_starts_over_under_a_busy_writer(void **state)
{
	struct checkpoint_stats cs;
	struct checkpointer *cp;
	struct store *st;
	int64_t longest = 0, written = 0, last = 0;
	int startovers = 0, n = 0;
	char path[256];

	(void)state;
	assert_int_equal(tmpdb_make(path, sizeof(path), "checkpoint"), 0);
	assert_int_equal(store_open(path, &st), 0);
	assert_int_equal(sqlite3_exec(store_db(st),
				      "CREATE TABLE filler(data BLOB)", NULL,
				      NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(checkpoint_start(st, path, &cp), 0);
	/* Three times the restart threshold of log, commit after commit. */
	while (written < 7 * CHECKPOINT_RESTART_PAGES / 2) {
		commit_rows(st, n++);
		checkpoint_get_stats(cp, &cs);
		if (cs.wal_pages < last)
			startovers++;
		written += cs.wal_pages > last ? cs.wal_pages - last : cs.wal_pages;
		last = cs.wal_pages;
		if (cs.wal_pages > longest)
			longest = cs.wal_pages;
	}
	checkpoint_get_stats(cp, &cs);
	checkpoint_stop(cp);
	store_close(st);
	tmpdb_remove(path);
	print_message("log: %lld pages written, longest %lld, started over %d "
		      "times; %llu wake-ups, %llu checkpoints by the writer, "
		      "%llu pages copied\n",
		      (long long)written, (long long)longest, startovers,
		      (unsigned long long)cs.wakeups,
		      (unsigned long long)cs.restarts,
		      (unsigned long long)cs.pages);
	assert_true(cs.restarts >= 1);
	assert_true(startovers >= 2);
	assert_true(longest < 2 * CHECKPOINT_RESTART_PAGES);
	/*
	 * Once per CHECKPOINT_PAGES of new log and a few more before each
	 * start-over, not after every commit.
	 */
	assert_true(cs.wakeups <= (uint64_t)(written / CHECKPOINT_PAGES +
					     3 * cs.restarts + 1));
	assert_int_equal(cs.failed, 0);
	/*
	 * tocsin_wal_checkpointed_pages_total: each page of log copied
	 * once, so no more than were written, and every log but the
	 * current one was copied whole before it started over.
	 */
	assert_true(cs.pages <= (uint64_t)written);
	assert_true(cs.pages >= (uint64_t)(written - last));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_log_starts_over_under_a_busy_writer),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
