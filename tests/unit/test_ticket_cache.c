/*
 * The writer's in-memory copies of the store (the open-ticket cache, the
 * lifecycle's quiet keys) against the database itself, on a real SQLite
 * file through the real writer: after jobs that fail and are rolled back
 * to their savepoint, after a commit that fails (a deferred foreign-key
 * violation makes SQLite refuse the COMMIT itself), and after writers
 * that change tickets with their own SQL.  Also the exact key map they
 * rest on, and batches with resent and repeated event ids.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>

#include "../../server/keymap.h"
#include "../../server/ticket_cache.h"
#include "../../server/writer.h"
#include "lifecycle_fixture.h"

#define HOSTS 3
#define ITEMS 8

static const char *const hosts[HOSTS] = { "web01", "web02", "db01" };

static char *item_name(int i)
{
	return xasprintf("/vol%d", i);
}

/* The key's open ticket as the database says, without the cache. */
static int sql_find_open(struct store *st, const char *host, const char *item,
			 struct store_ticket *ret)
{
	sqlite3_stmt *s;
	int rc, found = 0;

	assert_int_equal(sqlite3_prepare_v2(store_db(st),
		"SELECT " STORE_TICKET_COLUMNS " FROM tickets WHERE host_id ="
		" (SELECT id FROM hosts WHERE name = ?1) AND check_name = 'disk'"
		" AND item = ?2 AND status NOT IN ('resolved', 'closed')",
		-1, &s, NULL), SQLITE_OK);
	sqlite3_bind_text(s, 1, host, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, item, -1, SQLITE_STATIC);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		store_ticket_row(s, 0, ret);
		found = 1;
	}
	sqlite3_finalize(s);
	return found;
}

static int64_t host_id(struct store *st, const char *host)
{
	sqlite3_stmt *s;
	int64_t id = 0;

	assert_int_equal(sqlite3_prepare_v2(store_db(st),
		"SELECT id FROM hosts WHERE name = ?1", -1, &s, NULL), SQLITE_OK);
	sqlite3_bind_text(s, 1, host, -1, SQLITE_STATIC);
	if (sqlite3_step(s) == SQLITE_ROW)
		id = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return id;
}

/* Every key: the cache and the database agree, field by field. */
static void assert_cache_is_database(struct store *st)
{
	store_lock(st);
	for (int h = 0; h < HOSTS; h++) {
		int64_t hid = host_id(st, hosts[h]);

		for (int i = 0; i < ITEMS; i++) {
			char *item = item_name(i);
			struct store_ticket want = { 0 }, got = { 0 };
			int in_db = sql_find_open(st, hosts[h], item, &want);
			int in_cache = hid ? store_ticket_find_open(st, hid, "disk", item, &got) : 0;

			if (in_db != in_cache)
				fail_msg("%s %s: the database says %s, the cache %s",
					 hosts[h], item, in_db ? "open" : "none",
					 in_cache ? "open" : "none");
			if (in_db) {
				assert_int_equal(got.id, want.id);
				assert_int_equal(got.state, want.state);
				assert_int_equal(got.worst_state, want.worst_state);
				assert_int_equal(got.occurrences, want.occurrences);
				assert_int_equal(got.first_seen_ms, want.first_seen_ms);
				assert_int_equal(got.last_seen_ms, want.last_seen_ms);
				assert_string_equal(got.status, want.status);
				assert_int_equal(got.parent_id, want.parent_id);
				assert_int_equal(got.flapping, want.flapping);
			}
			free(item);
		}
	}
	store_unlock(st);
}

/* A writer job: one batch for a host, then maybe a failure of its own. */
struct batch_job {
	const char *host;
	enum check_state state[ITEMS]; /* CHECK_UNKNOWN + 1: no event */
	int minute;
	int fail;		  /* < 0: return it after the batch */
	bool break_commit;	  /* leave a deferred foreign-key violation */
	int result;
	struct dedup_stats stats;
	struct fx *f;
};

#define NONE (CHECK_UNKNOWN + 1)

static int batch_apply(struct store *st, void *arg)
{
	struct batch_job *j = arg;
	struct ingest_event evs[ITEMS];
	char *items[ITEMS];
	size_t n = 0;
	int r;

	for (int i = 0; i < ITEMS; i++) {
		items[i] = item_name(i);
		if ((int)j->state[i] == NONE)
			continue;
		evs[n] = (struct ingest_event){
			.check = "disk", .item = items[i], .summary = "s",
			.state = j->state[i], .observed_ms = MIN(j->minute),
			.metrics = "{}",
		};
		j->f->seq++;
		memset(evs[n].id, 0, 16);
		memcpy(evs[n].id, &j->f->seq, sizeof(j->f->seq));
		evs[n].id[15] = 0x7c;
		n++;
	}
	r = dedup_apply_events(st, j->host, evs, n, MIN(j->minute), &j->stats);
	for (int i = 0; i < ITEMS; i++)
		free(items[i]);
	if (r == 0 && j->break_commit) {
		/* Checked at COMMIT: SQLite refuses it, the group rolls back. */
		sqlite3_exec(store_db(st), "PRAGMA defer_foreign_keys = ON", NULL, NULL, NULL);
		r = sqlite3_exec(store_db(st),
				 "INSERT INTO journal(ticket_id, at, actor, action)"
				 " VALUES (987654321, 0, 'test', 'orphan')",
				 NULL, NULL, NULL) == SQLITE_OK ? 0 : -EIO;
	}
	return r < 0 ? r : j->fail;
}

static void batch_done(void *arg, int result)
{
	((struct batch_job *)arg)->result = result;
}

/* Holds the writer inside a group until released, so that what is posted meanwhile shares the next one. */
struct gate {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool entered, open;
};

static int gate_apply(struct store *st, void *arg)
{
	struct gate *g = arg;

	(void)st;
	pthread_mutex_lock(&g->lock);
	g->entered = true;
	pthread_cond_broadcast(&g->cond);
	while (!g->open)
		pthread_cond_wait(&g->cond, &g->lock);
	pthread_mutex_unlock(&g->lock);
	return 0;
}

/* Run jobs as one group (after a gate job) and wait for all of them. */
static void run_group(struct fx *f, struct batch_job *jobs, size_t n)
{
	struct gate g = { .lock = PTHREAD_MUTEX_INITIALIZER,
			  .cond = PTHREAD_COND_INITIALIZER };
	struct writer *w;

	assert_int_equal(writer_start(f->st, 64, 64, &w), 0);
	assert_int_equal(writer_post(w, gate_apply, &g, NULL), 0);
	pthread_mutex_lock(&g.lock);
	while (!g.entered)
		pthread_cond_wait(&g.cond, &g.lock);
	pthread_mutex_unlock(&g.lock);
	for (size_t i = 0; i < n; i++) {
		jobs[i].f = f;
		assert_int_equal(writer_post(w, batch_apply, &jobs[i], batch_done), 0);
	}
	pthread_mutex_lock(&g.lock);
	g.open = true;
	pthread_cond_broadcast(&g.cond);
	pthread_mutex_unlock(&g.lock);
	writer_stop(w);
}

#define C CHECK_CRITICAL
#define W CHECK_WARNING
#define O CHECK_OK

static void test_failed_job_leaves_the_cache_as_the_database(void **state)
{
	struct fx *f = fx_open("");
	struct batch_job jobs[] = {
		{ .host = "web01", .state = { C, C, C, C, NONE, NONE, NONE, NONE }, .minute = 1 },
		/* occurrences, a resolve, new tickets, on web01 and web02: undone */
		{ .host = "web01", .state = { W, O, C, C, C, C, NONE, NONE }, .minute = 2,
		  .fail = -EIO },
		{ .host = "web02", .state = { C, C, NONE, NONE, NONE, NONE, NONE, NONE },
		  .minute = 2, .fail = -EINVAL },
		{ .host = "db01", .state = { C, O, NONE, NONE, NONE, NONE, NONE, NONE }, .minute = 3 },
	};
	struct dedup_stats s;

	(void)state;
	/* An earlier commit, so the failed jobs change tickets that exist. */
	fx_at(f, "web01", "disk", "/vol0", CHECK_WARNING, MIN(0));
	run_group(f, jobs, ARRAY_SIZE(jobs));
	assert_int_equal(jobs[0].result, 0);
	assert_int_equal(jobs[1].result, -EIO);
	assert_int_equal(jobs[2].result, -EINVAL);
	assert_int_equal(jobs[3].result, 0);
	assert_int_equal(jobs[0].stats.opened, 3);
	assert_cache_is_database(f->st);

	/* What the failed job opened was never there: it opens now. */
	s = fx_at(f, "web01", "disk", "/vol5", CHECK_CRITICAL, MIN(4));
	assert_int_equal(s.opened, 1);
	s = fx_at(f, "web02", "disk", "/vol0", CHECK_CRITICAL, MIN(4));
	assert_int_equal(s.opened, 1);
	/* What it resolved is still open: an occurrence, not a new ticket. */
	s = fx_at(f, "web01", "disk", "/vol1", CHECK_CRITICAL, MIN(4));
	assert_int_equal(s.opened, 0);
	assert_int_equal(s.updated, 1);
	assert_cache_is_database(f->st);
	fx_close(f);
}

static void test_failed_commit_takes_everything_back(void **state)
{
	struct fx *f = fx_open("");
	struct batch_job jobs[] = {
		{ .host = "web01", .state = { C, C, W, NONE, NONE, NONE, NONE, NONE }, .minute = 2 },
		{ .host = "web02", .state = { C, NONE, NONE, NONE, NONE, NONE, NONE, NONE },
		  .minute = 2, .break_commit = true },
	};
	struct dedup_stats s;

	(void)state;
	fx_at(f, "web01", "disk", "/vol0", CHECK_WARNING, MIN(1));
	fx_at(f, "db01", "disk", "/vol3", CHECK_CRITICAL, MIN(1));
	run_group(f, jobs, ARRAY_SIZE(jobs));
	/* The commit failed: both jobs fail with it, nothing of them is kept. */
	assert_true(jobs[0].result < 0);
	assert_true(jobs[1].result < 0);
	assert_int_equal(fx_count(f, STORE_TICKETS_OPEN, true), 2);
	assert_cache_is_database(f->st);

	s = fx_at(f, "web01", "disk", "/vol1", CHECK_CRITICAL, MIN(3));
	assert_int_equal(s.opened, 1);
	s = fx_at(f, "web01", "disk", "/vol0", CHECK_CRITICAL, MIN(3));
	assert_int_equal(s.updated, 1);
	assert_cache_is_database(f->st);
	fx_close(f);
}

static void test_cache_follows_tickets_changed_by_other_sql(void **state)
{
	struct fx *f = fx_open("");
	struct dedup_stats s;
	int64_t first;

	(void)state;
	fx_at(f, "web01", "disk", "/vol2", CHECK_CRITICAL, MIN(1));
	first = fx_ticket_id(f, "web01", "disk", "/vol2");
	/* A technician's resolve, as the helpdesk writes it. */
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(sqlite3_exec(store_db(f->st),
		"UPDATE tickets SET status = 'resolved', resolved_at = 1", NULL, NULL, NULL),
		SQLITE_OK);
	assert_int_equal(store_commit(f->st), 0);
	assert_cache_is_database(f->st);
	s = fx_at(f, "web01", "disk", "/vol2", CHECK_CRITICAL, MIN(2));
	assert_true(s.opened == 1 || s.reopened == 1);
	/* ... and one undone by a rollback is open again. */
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(sqlite3_exec(store_db(f->st),
		"UPDATE tickets SET status = 'closed'", NULL, NULL, NULL), SQLITE_OK);
	assert_cache_is_database(f->st);
	store_rollback(f->st);
	assert_cache_is_database(f->st);
	assert_true(fx_ticket_id(f, "web01", "disk", "/vol2") >= first);
	fx_close(f);
}

static void test_quiet_mark_of_a_failed_job_is_taken_back(void **state)
{
	struct fx *f = fx_open("lifecycle:\n  defaults:\n    confirm_after: 2\n");
	struct batch_job failed[] = {
		{ .host = "web01", .state = { O, NONE, NONE, NONE, NONE, NONE, NONE, NONE },
		  .minute = 2, .fail = -EIO },
	};
	struct dedup_stats s;

	(void)state;
	/* Pending: one non-ok result of the two that confirm it. */
	s = fx_at(f, "web01", "disk", "/vol0", CHECK_CRITICAL, MIN(1));
	assert_int_equal(s.pending, 1);
	/* An ok that made the key quiet, rolled back: still pending. */
	run_group(f, failed, ARRAY_SIZE(failed));
	assert_int_equal(failed[0].result, -EIO);
	/* This ok must be read as the end of the pending problem ... */
	fx_at(f, "web01", "disk", "/vol0", CHECK_OK, MIN(3));
	/* ... so one more non-ok is the first of a new stretch: no ticket. */
	s = fx_at(f, "web01", "disk", "/vol0", CHECK_CRITICAL, MIN(4));
	assert_int_equal(s.opened, 0);
	assert_int_equal(s.pending, 1);
	s = fx_at(f, "web01", "disk", "/vol0", CHECK_CRITICAL, MIN(5));
	assert_int_equal(s.opened, 1);
	fx_close(f);
}

static int64_t count_rows(struct store *st, const char *sql)
{
	sqlite3_stmt *s;
	int64_t n;

	assert_int_equal(sqlite3_prepare_v2(store_db(st), sql, -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return n;
}

static void test_batches_sort_out_resent_and_repeated_ids(void **state)
{
	struct fx *f = fx_open("");
	enum { N = 150 }; /* 64 + 64 + 16 + 4 + 1 + 1 rows per statement */
	struct ingest_event evs[N];
	struct dedup_stats s;
	char items[N][16];

	(void)state;
	for (int i = 0; i < N; i++) {
		snprintf(items[i], sizeof(items[i]), "/v%d", i % 50);
		evs[i] = (struct ingest_event){
			.check = "disk", .item = items[i], .summary = "s",
			.state = CHECK_CRITICAL, .observed_ms = MIN(i), .metrics = "{}",
		};
		memset(evs[i].id, 0, 16);
		evs[i].id[0] = (uint8_t)(i >> 8);
		evs[i].id[1] = (uint8_t)i;
	}
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(dedup_apply_events(f->st, "web01", evs, 40, MIN(0), &s), 0);
	assert_int_equal(store_commit(f->st), 0);
	assert_int_equal(s.accepted, 40);
	/* Resend the first 40 and add 110 more, of which event 100 twice. */
	memcpy(evs[120].id, evs[100].id, 16);
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(dedup_apply_events(f->st, "web01", evs, N, MIN(0), &s), 0);
	assert_int_equal(store_commit(f->st), 0);
	assert_int_equal(s.duplicates, 41);
	assert_int_equal(s.accepted, N - 41);
	assert_int_equal(count_rows(f->st, "SELECT count(*) FROM events"), N - 1);
	/* 50 keys, each ticket counts its events once: 149 stored in all. */
	assert_int_equal(count_rows(f->st, "SELECT sum(occurrences) FROM tickets"), N - 1);
	assert_int_equal(count_rows(f->st, "SELECT count(*) FROM events WHERE ticket_id IS NULL"), 0);
	assert_int_equal(count_rows(f->st,
		"SELECT count(*) FROM events e JOIN tickets t ON t.id = e.ticket_id"
		" WHERE t.item <> e.item"), 0);
	fx_close(f);
}

/* The key map against a plain list, through many puts and removes. */
static void test_keymap_matches_a_plain_list(void **state)
{
	enum { KEYS = 600 };
	struct keymap *m = keymap_new(sizeof(int));
	int have[KEYS] = { 0 };
	uint64_t rng = 12345;
	char check[16], item[16];

	(void)state;
	for (int op = 0; op < 40000; op++) {
		int k, *v;
		bool added;

		rng ^= rng << 13;
		rng ^= rng >> 7;
		rng ^= rng << 17;
		k = (int)(rng % KEYS);
		/* ("a", "bc") and ("ab", "c") are different keys */
		snprintf(check, sizeof(check), "c%d", k % 7);
		snprintf(item, sizeof(item), "%d", k);
		if ((rng >> 20) % 3 == 0) {
			assert_int_equal(keymap_remove(m, k % 5, check, item), have[k] != 0);
			have[k] = 0;
		} else {
			v = keymap_put(m, k % 5, check, item, &added);
			assert_int_equal(added, have[k] == 0);
			*v = k + 1;
			have[k] = k + 1;
		}
		if (op % 1000 == 0) {
			size_t n = 0;

			for (int i = 0; i < KEYS; i++) {
				snprintf(check, sizeof(check), "c%d", i % 7);
				snprintf(item, sizeof(item), "%d", i);
				v = keymap_get(m, i % 5, check, item);
				assert_int_equal(v ? *v : 0, have[i]);
				n += have[i] != 0;
			}
			assert_int_equal(keymap_count(m), n);
		}
	}
	assert_null(keymap_get(m, 1, "c1", "x"));
	assert_non_null(keymap_put(m, 9, "a", "bc", NULL));
	assert_null(keymap_get(m, 9, "ab", "c"));
	keymap_free(m);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_failed_job_leaves_the_cache_as_the_database),
		cmocka_unit_test(test_failed_commit_takes_everything_back),
		cmocka_unit_test(test_cache_follows_tickets_changed_by_other_sql),
		cmocka_unit_test(test_quiet_mark_of_a_failed_job_is_taken_back),
		cmocka_unit_test(test_batches_sort_out_resent_and_repeated_ids),
		cmocka_unit_test(test_keymap_matches_a_plain_list),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
