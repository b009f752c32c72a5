/*
 * Throughput of the agent's durable outbox alone, on a real SQLite file
 * with synchronous=FULL (every enqueue and every ack is one fsync'ed
 * transaction), no network:
 *
 *   outbox_bench throughput [EVENTS] [ROUND]   enqueue EVENTS in rounds of
 *       ROUND results (one check round each), then take them out in
 *       batches of 500 and acknowledge each batch, as delivery does
 *   outbox_bench fill STATE_DIR EVENTS KEYS    queue EVENTS events over
 *       KEYS distinct items into STATE_DIR/agent.db (for outbox_e2e.sh)
 *
 * Prints figures; asserts nothing about them.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../agent/outbox.h"
#include "../agent/statedb.h"
#include "../common/util.h"

static double now_s(void)
{
	return (double)time_mono_ms() / 1000.0;
}

/* Queue n events in rounds of round results over keys items. */
static int fill(struct outbox *ob, long n, long round, long keys)
{
	struct check_results res = { 0 };
	char item[32];

	for (long i = 0; i < n;) {
		for (long j = 0; j < round && i < n; j++, i++) {
			struct check_result *r;

			snprintf(item, sizeof(item), "/bench/%06ld", i % keys);
			/* half the keys warn (a ticket each), half are ok; states stay */
			r = check_results_add(&res, item, (i % keys) % 2 ? CHECK_OK : CHECK_WARNING,
					      json_pack("{s:f}", "used_percent", 42.5),
					      "%s: 42.5%% used, 1.2 GiB free of 2.0 GiB", item);
			r->check = xstrdup("bench");
		}
		if (outbox_enqueue(ob, &res, time_now_ms(), NULL) < 0)
			return -1;
		check_results_clear(&res);
	}
	return 0;
}

static int drain(struct outbox *ob, long *ret_n)
{
	struct outbox_batch b;
	long n = 0;

	for (;;) {
		if (outbox_next_batch(ob, 500, &b) < 0)
			return -1;
		if (b.n == 0 && b.last_seq == 0)
			break;
		n += (long)b.n;
		if (outbox_ack(ob, &b, time_now_ms()) < 0)
			return -1;
		outbox_batch_free(&b);
	}
	outbox_batch_free(&b);
	*ret_n = n;
	return 0;
}

static int open_outbox(const char *dir, sqlite3 **db, struct outbox **ob)
{
	struct outbox_limits lim;

	outbox_limits_default(&lim);
	lim.max_events = 10000000;
	lim.max_bytes = 1ULL << 34;
	if (statedb_open(dir, db) < 0 || outbox_open(*db, &lim, ob) < 0) {
		fprintf(stderr, "outbox_bench: cannot open the outbox in %s\n", dir);
		return -1;
	}
	return 0;
}

static int throughput(long n, long round)
{
	char dir[] = "/tmp/tocsin-bench-outbox-XXXXXX";
	struct outbox *ob;
	sqlite3 *db;
	double t0, t1, t2;
	long drained = 0;
	char *cmd;
	int rc = 1;

	if (mkdtemp(dir) == NULL || open_outbox(dir, &db, &ob) < 0)
		return 1;
	t0 = now_s();
	if (fill(ob, n, round, n) < 0)
		goto out;
	t1 = now_s();
	if (drain(ob, &drained) < 0)
		goto out;
	t2 = now_s();
	printf("outbox enqueue, rounds of %ld (one fsync'ed transaction each): %.0f events/s (%ld events in %.2f s)\n",
	       round, (double)n / (t1 - t0), n, t1 - t0);
	printf("outbox drain, batches of 500 read, parsed and acknowledged: %.0f events/s (%ld events in %.2f s)\n",
	       (double)drained / (t2 - t1), drained, t2 - t1);
	printf("outbox enqueue + acknowledge, end to end without network: %.0f events/s\n",
	       (double)drained / (t2 - t0));
	rc = drained == n ? 0 : 1;
out:
	outbox_close(ob);
	statedb_close(db);
	cmd = xasprintf("rm -rf '%s'", dir);
	(void)!system(cmd);
	free(cmd);
	return rc;
}

int main(int argc, char **argv)
{
	int64_t n = 200000, round = 100, keys = 10000;

	if (argc >= 2 && strcmp(argv[1], "throughput") == 0) {
		if ((argc > 2 && parse_int64(argv[2], &n) < 0) ||
		    (argc > 3 && parse_int64(argv[3], &round) < 0) || n < 1 ||
		    round < 1) {
			fprintf(stderr, "outbox_bench: EVENTS and ROUND are positive integers\n");
			return 2;
		}
		return throughput((long)n, (long)round);
	}
	if (argc == 5 && strcmp(argv[1], "fill") == 0) {
		struct outbox *ob;
		sqlite3 *db;
		int r;

		if (parse_int64(argv[3], &n) < 0 || parse_int64(argv[4], &keys) < 0 ||
		    n < 1 || keys < 1) {
			fprintf(stderr, "outbox_bench: EVENTS and KEYS are positive integers\n");
			return 2;
		}
		if (open_outbox(argv[2], &db, &ob) < 0)
			return 1;
		r = fill(ob, (long)n, 1000, (long)keys);
		outbox_close(ob);
		statedb_close(db);
		return r < 0 ? 1 : 0;
	}
	fprintf(stderr, "usage: outbox_bench throughput [EVENTS] [ROUND]\n"
			"       outbox_bench fill STATE_DIR EVENTS KEYS\n");
	return 2;
}
