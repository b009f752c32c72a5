/*
 * The single writer: group commit, per-job savepoints, and the ticket
 * listeners that run inside the same transaction.  On a real SQLite file.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/util.h"
#include "../../server/dedup.h"
#include "../../server/store.h"
#include "../../server/writer.h"
#include "tmpdb.h"

struct fixture {
	char path[64];
	struct store *st;
	struct writer *w;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));

	if (tmpdb_make(f->path, sizeof(f->path), "writer") < 0)
		return -1;
	if (store_open(f->path, &f->st) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	writer_stop(f->w);
	store_close(f->st);
	tmpdb_remove(f->path);
	free(f);
	return 0;
}

static int64_t count_hosts(struct store *st, const char *name)
{
	sqlite3_stmt *s;
	int64_t n;

	store_lock(st);
	assert_int_equal(sqlite3_prepare_v2(store_db(st),
		"SELECT count(*) FROM hosts WHERE name = ?1 OR ?1 IS NULL", -1, &s, NULL),
		SQLITE_OK);
	db_bind_text(s, 1, name);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	store_unlock(st);
	return n;
}

struct host_job {
	char name[32];
	int fail; /* return this after the insert, when < 0 */
	int result;
	int done;
};

static int host_job_apply(struct store *st, void *arg)
{
	struct host_job *j = arg;
	int64_t id;
	int r = store_host_touch(st, j->name, 1000, &id);

	if (r < 0)
		return r;
	return j->fail < 0 ? j->fail : 0;
}

static void host_job_done(void *arg, int result)
{
	struct host_job *j = arg;

	j->result = result;
	j->done = 1;
}

static void test_failed_job_is_rolled_back_alone(void **state)
{
	struct fixture *f = *state;
	struct host_job jobs[3] = {
		{ .name = "before" }, { .name = "broken", .fail = -EINVAL }, { .name = "after" },
	};

	assert_int_equal(writer_start(f->st, 16, 16, &f->w), 0);
	/* Hold the store so all three queue up and share one transaction. */
	store_lock(f->st);
	for (int i = 0; i < 3; i++)
		assert_int_equal(writer_post(f->w, host_job_apply, &jobs[i], host_job_done), 0);
	store_unlock(f->st);
	writer_stop(f->w);
	f->w = NULL;

	assert_int_equal(jobs[0].result, 0);
	assert_int_equal(jobs[1].result, -EINVAL);
	assert_int_equal(jobs[2].result, 0);
	for (int i = 0; i < 3; i++)
		assert_true(jobs[i].done);
	assert_int_equal(count_hosts(f->st, "before"), 1);
	assert_int_equal(count_hosts(f->st, "broken"), 0);
	assert_int_equal(count_hosts(f->st, "after"), 1);
}

static void test_jobs_queued_together_share_a_commit(void **state)
{
	struct fixture *f = *state;
	struct host_job jobs[200];
	struct writer_stats stats;

	assert_int_equal(writer_start(f->st, 1000, 256, &f->w), 0);
	store_lock(f->st);
	for (int i = 0; i < 200; i++) {
		jobs[i] = (struct host_job){ 0 };
		snprintf(jobs[i].name, sizeof(jobs[i].name), "h%d", i);
		assert_int_equal(writer_post(f->w, host_job_apply, &jobs[i], host_job_done), 0);
	}
	store_unlock(f->st);
	/* writer_run() returns only after its own job is durable. */
	struct host_job last = { .name = "last" };
	assert_int_equal(writer_run(f->w, host_job_apply, &last), 0);
	assert_int_equal(count_hosts(f->st, "last"), 1);
	writer_get_stats(f->w, &stats);
	assert_int_equal(stats.jobs, 201);
	assert_int_equal(stats.failed, 0);
	/* The writer may have taken the first job before it blocked. */
	assert_true(stats.commits <= 3);
	assert_int_equal(count_hosts(f->st, NULL), 201);
}

/* Post one job and wait until the writer holds it (blocked on the store). */
static void writer_takes_one(struct fixture *f, struct host_job *j)
{
	struct writer_stats ws;

	assert_int_equal(writer_post(f->w, host_job_apply, j, host_job_done), 0);
	do {
		writer_get_stats(f->w, &ws);
	} while (ws.queued != 0);
}

static void test_full_queue_refuses_posts(void **state)
{
	struct fixture *f = *state;
	struct host_job jobs[8];
	int refused = 0;

	assert_int_equal(writer_start(f->st, 4, 4, &f->w), 0);
	store_lock(f->st);
	/*
	 * The writer takes the first job and blocks on the store: then
	 * exactly max_queue (4) more fit, and the other 3 are refused.
	 */
	jobs[0] = (struct host_job){ .name = "q0" };
	writer_takes_one(f, &jobs[0]);
	for (int i = 1; i < 8; i++) {
		jobs[i] = (struct host_job){ 0 };
		snprintf(jobs[i].name, sizeof(jobs[i].name), "q%d", i);
		if (writer_post(f->w, host_job_apply, &jobs[i], host_job_done) == -EAGAIN)
			refused++;
	}
	store_unlock(f->st);
	writer_stop(f->w);
	f->w = NULL;
	assert_int_equal(refused, 3);
	assert_int_equal(count_hosts(f->st, NULL), 5);
	for (int i = 0; i < 5; i++)
		assert_true(jobs[i].done);
	for (int i = 5; i < 8; i++)
		assert_false(jobs[i].done);
}

/* What the callbacks saw, in the order they ran. */
struct order {
	pthread_mutex_t lock;
	char seen[8][32];
	int n;
	struct fixture *f;
	struct writer_stats at_probe; /* stats when the probe's callback ran */
};

struct then_job {
	struct host_job host;
	struct order *order;
};

static void then_job_done(void *arg, int result)
{
	struct then_job *j = arg;

	(void)result;
	pthread_mutex_lock(&j->order->lock);
	strlcpy_safe(j->order->seen[j->order->n++], j->host.name,
		     sizeof(j->order->seen[0]));
	pthread_mutex_unlock(&j->order->lock);
}

static int then_job_apply(struct store *st, void *arg)
{
	struct then_job *j = arg;

	return host_job_apply(st, &j->host);
}

static void *run_then(void *arg)
{
	struct then_job *j = arg;

	j->host.result = writer_run_then(j->order->f->w, then_job_apply,
					 then_job_done, j, -1);
	/* Its callback ran before writer_run_then() returned. */
	pthread_mutex_lock(&j->order->lock);
	for (int i = 0; i < j->order->n; i++)
		if (strcmp(j->order->seen[i], j->host.name) == 0)
			j->host.done = 1;
	pthread_mutex_unlock(&j->order->lock);
	return NULL;
}

static void queue_waits(struct fixture *f, size_t n)
{
	struct writer_stats ws;

	do {
		writer_get_stats(f->w, &ws);
	} while (ws.queued != n);
}

static void test_run_then_callbacks_follow_the_commit_order(void **state)
{
	struct fixture *f = *state;
	struct order order = { .f = f };
	struct then_job first = { .host = { .name = "first" }, .order = &order };
	struct then_job second = { .host = { .name = "second", .fail = -EINVAL },
				   .order = &order };
	struct then_job posted = { .host = { .name = "posted" }, .order = &order };
	struct host_job blocker = { .name = "blocker" };
	pthread_t a, b;

	pthread_mutex_init(&order.lock, NULL);
	assert_int_equal(writer_start(f->st, 16, 16, &f->w), 0);
	store_lock(f->st);
	writer_takes_one(f, &blocker);
	/* first, then second, then a posted job: one group, in this order */
	assert_int_equal(pthread_create(&a, NULL, run_then, &first), 0);
	queue_waits(f, 1);
	assert_int_equal(pthread_create(&b, NULL, run_then, &second), 0);
	queue_waits(f, 2);
	assert_int_equal(writer_post(f->w, then_job_apply, &posted, then_job_done), 0);
	store_unlock(f->st);
	pthread_join(a, NULL);
	pthread_join(b, NULL);
	writer_stop(f->w);
	f->w = NULL;
	assert_int_equal(order.n, 3);
	assert_string_equal(order.seen[0], "first");
	assert_string_equal(order.seen[1], "second");
	assert_string_equal(order.seen[2], "posted");
	assert_int_equal(first.host.result, 0);
	assert_int_equal(second.host.result, -EINVAL);
	assert_true(first.host.done && second.host.done);
	pthread_mutex_destroy(&order.lock);
}

static int refusing_apply(struct store *st, void *arg)
{
	int64_t id;

	(void)arg;
	/* It wrote something, and then refused: undone, counted as declined. */
	assert_int_equal(store_host_touch(st, "refusing", 1000, &id), 0);
	return writer_refuse(-EALREADY);
}

static void test_refusals_are_counted_apart_from_failures(void **state)
{
	struct fixture *f = *state;
	struct host_job broken = { .name = "broken", .fail = -EIO };
	struct host_job fine = { .name = "fine" };
	struct writer_stats ws;

	assert_int_equal(writer_start(f->st, 16, 16, &f->w), 0);
	assert_int_equal(writer_run(f->w, refusing_apply, NULL), -EALREADY);
	assert_int_equal(writer_run(f->w, host_job_apply, &broken), -EIO);
	assert_int_equal(writer_run(f->w, host_job_apply, &fine), 0);
	writer_get_stats(f->w, &ws);
	assert_int_equal(ws.jobs, 3);
	assert_int_equal(ws.declined, 1);
	assert_int_equal(ws.failed, 1);
	assert_int_equal(count_hosts(f->st, "refusing"), 0);
	assert_int_equal(count_hosts(f->st, "fine"), 1);
}

static void test_timed_run_gives_up_on_a_full_queue(void **state)
{
	struct fixture *f = *state;
	struct host_job jobs[4], late = { .name = "late" }, refused = { .name = "refused" };
	struct writer_stats ws;
	int64_t started;
	int n;

	assert_int_equal(writer_start(f->st, 2, 1, &f->w), 0);
	/* The writer blocks on the store with the first job in hand ... */
	store_lock(f->st);
	jobs[0] = (struct host_job){ .name = "t0" };
	assert_int_equal(writer_post(f->w, host_job_apply, &jobs[0], host_job_done), 0);
	do {
		writer_get_stats(f->w, &ws);
	} while (ws.queued != 0);
	/* ... so two more fill the queue, and nothing drains it. */
	for (n = 1; n < 4; n++) {
		jobs[n] = (struct host_job){ 0 };
		snprintf(jobs[n].name, sizeof(jobs[n].name), "t%d", n);
		if (writer_post(f->w, host_job_apply, &jobs[n], host_job_done) == -EAGAIN)
			break;
	}
	assert_int_equal(n, 3);
	started = time_mono_ms();
	assert_int_equal(writer_run_timed(f->w, host_job_apply, &refused, 100), -EAGAIN);
	assert_true(time_mono_ms() - started >= 100);
	store_unlock(f->st);
	/* with room again, the timed run waits for its commit like writer_run() */
	assert_int_equal(writer_run_timed(f->w, host_job_apply, &late, 5000), 0);
	assert_int_equal(count_hosts(f->st, "late"), 1);
	assert_int_equal(count_hosts(f->st, "refused"), 0);
}

struct seen {
	int opened, resolved, fail_open;
	char check[32];
};

static int listener(void *arg, struct store *st, const struct ticket_change *c)
{
	struct seen *s = arg;

	(void)st;
	if (c->kind == TICKET_OPENED) {
		if (s->fail_open)
			return -EIO;
		s->opened++;
		strlcpy_safe(s->check, c->check, sizeof(s->check));
		assert_non_null(c->host);
		assert_string_equal(c->host, "web01");
	}
	if (c->kind == TICKET_RESOLVED)
		s->resolved++;
	return 0;
}

struct batch_job {
	const char *body;
	struct dedup_stats stats;
};

static int batch_job_apply(struct store *st, void *arg)
{
	struct batch_job *j = arg;
	struct ingest_batch *b;
	char err[256];
	int r;

	assert_int_equal(ingest_parse(j->body, strlen(j->body), 10, &b, err, sizeof(err)), 0);
	r = dedup_apply(st, b, 1795341600000LL, &j->stats);
	ingest_batch_free(b);
	return r;
}

#define BATCH(id, state, minute)                                                   \
	"{\"host\":\"web01\",\"events\":[{\"id\":\"00000000-0000-4000-8000-00000000000" id \
	"\",\"check\":\"disk\",\"item\":\"/srv\",\"state\":\"" state                   \
	"\",\"summary\":\"s\",\"observed_at\":\"2026-11-22T10:0" minute ":00Z\"}]}"

static void test_listeners_hear_changes_and_can_veto(void **state)
{
	struct fixture *f = *state;
	struct seen seen = { .fail_open = 1 };
	struct batch_job j1 = { .body = BATCH("1", "critical", "1") };
	struct batch_job j2 = { .body = BATCH("2", "critical", "2") };
	struct batch_job j3 = { .body = BATCH("3", "ok", "3") };
	json_t *list;

	assert_int_equal(store_listen(f->st, listener, &seen), 0);
	assert_int_equal(writer_start(f->st, 16, 16, &f->w), 0);
	/* A listener that fails takes the whole batch with it. */
	assert_int_equal(writer_run(f->w, batch_job_apply, &j1), -EIO);
	assert_int_equal(store_tickets_list(f->st, STORE_TICKETS_ALL, 10, 0, &list), 0);
	assert_int_equal(json_array_size(list), 0);
	json_decref(list);

	seen.fail_open = 0;
	assert_int_equal(writer_run(f->w, batch_job_apply, &j2), 0);
	assert_int_equal(seen.opened, 1);
	assert_string_equal(seen.check, "disk");
	assert_int_equal(writer_run(f->w, batch_job_apply, &j3), 0);
	assert_int_equal(seen.resolved, 1);
	assert_int_equal(j3.stats.resolved, 1);
}

static void test_the_store_commits_durably(void **state)
{
	struct fixture *f = *state;
	const char *journal, *sync;
	sqlite3_stmt *s;

	store_durability(f->st, &journal, &sync);
	assert_string_equal(journal, "wal");
	assert_string_equal(sync, "full");
	/* and the connection says so itself */
	assert_int_equal(sqlite3_prepare_v2(store_db(f->st), "PRAGMA synchronous", -1, &s,
					    NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int(s, 0), 2);
	sqlite3_finalize(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_the_store_commits_durably, setup, teardown),
		cmocka_unit_test_setup_teardown(test_failed_job_is_rolled_back_alone, setup, teardown),
		cmocka_unit_test_setup_teardown(test_jobs_queued_together_share_a_commit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_full_queue_refuses_posts, setup, teardown),
		cmocka_unit_test_setup_teardown(test_run_then_callbacks_follow_the_commit_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals_are_counted_apart_from_failures, setup, teardown),
		cmocka_unit_test_setup_teardown(test_timed_run_gives_up_on_a_full_queue, setup, teardown),
		cmocka_unit_test_setup_teardown(test_listeners_hear_changes_and_can_veto, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
