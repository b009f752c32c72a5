/*
 * store_apply: the collector's ingest path without HTTP, to see which part
 * limits it.
 *
 *   store_apply [EVENTS] [GROUP] [realistic|churn] [v7|v4] [none|nobody|mail]
 *
 * Builds EVENTS events (default 500,000) as ingest_load's simulated agents
 * send them (bench/workload.h: 100 agents x 100 items, batches of 100,
 * the same mixes and ids), then times (1) ingest_parse() of every batch
 * and freeing it, the work of the HTTP threads, and (2) the single
 * writer applying them through the collector's real writer job
 * (liveness_ingest(), so dedup, the lifecycle and the ticket listeners
 * of a default server are in place) with group commits of GROUP jobs
 * (default 64), synchronous=FULL and the server's checkpointer thread on
 * a real file under TMPDIR.  Writer CPU counts the whole process (the
 * checkpointer too) while the writer runs.  The
 * churn mix runs with flap detection off, as bench/ingest.sh does.
 * The last argument sets up notifications: none (the default server: no
 * SMTP server, no webhook), nobody (an SMTP server but no technician,
 * queue address or customer to mail) or mail (a technician in the
 * support queue, so every opening and reopening mails her).
 * Prints microseconds per event for both, and the writer's events/s.
 * MAX_KEYS_PER_HOST=N in the environment sets ingest.max_keys_per_host
 * (150: every batch of a host with its 100 keys is checked event by
 * event, the cap's dearest case; the default 10000 checks none).
 *
 * For instruction counts, which do not depend on the machine's load:
 *   valgrind --tool=callgrind --callgrind-out-file=/dev/null \
 *       build/rel/bench/store_apply 100000 64 realistic
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/config.h"
#include "../common/util.h"
#include "../server/checkpoint.h"
#include "../server/dedup.h"
#include "../server/desk.h"
#include "../server/ingest.h"
#include "../server/lifecycle.h"
#include "../server/liveness.h"
#include "../server/server.h"
#include "../server/store.h"
#include "../server/writer.h"
#include "clock.h"
#include "workload.h"

#define HOSTS 100
#define ITEMS 100

struct job {
	struct liveness *lv;
	struct ingest_batch *batch;
	struct dedup_stats stats;
	atomic_size_t *left;
};

static int apply(struct store *st, void *arg)
{
	struct job *j = arg;

	return liveness_ingest(j->lv, st, j->batch, time_now_ms(), &j->stats);
}

static void done(void *arg, int result)
{
	struct job *j = arg;

	if (result < 0)
		fprintf(stderr, "job failed: %s\n", strerror(-result));
	atomic_fetch_sub(j->left, 1);
}

enum notify_mode { NOTIFY_NONE, NOTIFY_NOBODY, NOTIFY_MAIL };

/* A server configuration as tocsin-server would load it (the defaults). */
static struct server_config *load_config(const char *dir, bool churn,
					 enum notify_mode notify)
{
	char *path = xasprintf("%s/server.yaml", dir);
	const char *max_keys = getenv("MAX_KEYS_PER_HOST");
	struct server_config *conf;
	struct cfg *cfg;
	FILE *fp = fopen(path, "we");

	if (fp == NULL)
		return NULL;
	fprintf(fp, "listen: 127.0.0.1:0\nallow_plain_http: true\n"
		    "auth: {tokens: [{name: b, token: bench-token-0123456789, role: agent}]}\n%s%s%s%s%s%s",
		max_keys ? "ingest: {max_keys_per_host: " : "",
		max_keys ? max_keys : "", max_keys ? "}\n" : "",
		churn ? "lifecycle: {defaults: {flap_threshold: 0}}\n" : "",
		notify != NOTIFY_NONE ? "notify: {smtp: {url: 'smtp://127.0.0.1:1'}}\n" : "",
		notify == NOTIFY_MAIL
			? "people: {alice: {email: alice@example.com, level: 1, queues: [support]}}\n"
			: "");
	fclose(fp);
	if (server_config_load(path, "/nonexistent", &conf, &cfg) < 0 ||
	    cfg_print_errors(cfg) > 0)
		return NULL;
	cfg_free(cfg);
	unlink(path);
	free(path);
	return conf;
}

int main(int argc, char **argv)
{
	int64_t events = 500000, group = 64;
	const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	char *dir = xasprintf("%s/tocsin-store-apply-XXXXXX", tmp), *db, err[256];
	struct workload w = { .items_per_host = ITEMS, .batch = 100 };
	struct workload_agent agents[HOSTS] = { 0 };
	enum notify_mode notify;
	unsigned long long queued;
	struct server_config *conf;
	struct checkpointer *cp;
	struct liveness *lv;
	struct desk *desk;
	size_t nbatches;
	struct job *jobs;
	struct store *st;
	struct writer *wr;
	atomic_size_t left;
	char **bodies;
	double c0, t0, parse_cpu, apply_wall, apply_cpu;

	if ((argc > 1 && parse_int64(argv[1], &events) < 0) ||
	    (argc > 2 && parse_int64(argv[2], &group) < 0) || events < 100 ||
	    group < 1 ||
	    (argc > 3 && strcmp(argv[3], "realistic") != 0 &&
	     strcmp(argv[3], "churn") != 0) ||
	    (argc > 4 && strcmp(argv[4], "v7") != 0 && strcmp(argv[4], "v4") != 0) ||
	    (argc > 5 && strcmp(argv[5], "none") != 0 && strcmp(argv[5], "nobody") != 0 &&
	     strcmp(argv[5], "mail") != 0)) {
		fprintf(stderr, "usage: store_apply [EVENTS] [GROUP] [realistic|churn] [v7|v4] "
				"[none|nobody|mail]\n");
		return 2;
	}
	notify = argc <= 5		       ? NOTIFY_NONE
		 : strcmp(argv[5], "nobody") == 0 ? NOTIFY_NOBODY
		 : strcmp(argv[5], "mail") == 0	  ? NOTIFY_MAIL
						  : NOTIFY_NONE;
	w.mix = argc > 3 && strcmp(argv[3], "churn") == 0 ? MIX_CHURN : MIX_REALISTIC;
	w.v4 = argc > 4 && strcmp(argv[4], "v4") == 0;
	w.base_ms = (time_now_ms() / 60000 - 30 * 24 * 60) * 60000;
	nbatches = (size_t)(events / w.batch);
	bodies = xcalloc(nbatches, sizeof(*bodies));
	jobs = xcalloc(nbatches, sizeof(*jobs));
	for (int h = 0; h < HOSTS; h++)
		agents[h] = (struct workload_agent){ .index = h,
						     .rng = 0x9e3779b97f4a7c15ULL * (uint64_t)(h + 1) };
	for (size_t i = 0; i < nbatches; i++) {
		char *end;

		bodies[i] = xcalloc((size_t)w.batch * WORKLOAD_EVENT_MAX + 64, 1);
		end = workload_batch(&w, &agents[i % HOSTS], time_now_ms(), bodies[i]);
		*end = '\0';
	}

	/* Parse and free, as the HTTP threads do (freeing included). */
	c0 = bench_cpu_s();
	for (size_t i = 0; i < nbatches; i++) {
		struct ingest_batch *b;

		if (ingest_parse(bodies[i], strlen(bodies[i]), 1000, &b, err,
				 sizeof(err)) < 0) {
			fprintf(stderr, "batch %zu: %s\n", i, err);
			return 1;
		}
		ingest_batch_free(b);
	}
	parse_cpu = bench_cpu_s() - c0;
	for (size_t i = 0; i < nbatches; i++)
		ingest_parse(bodies[i], strlen(bodies[i]), 1000, &jobs[i].batch,
			     err, sizeof(err));

	if (mkdtemp(dir) == NULL)
		return 1;
	db = xasprintf("%s/tocsin.db", dir);
	conf = load_config(dir, w.mix == MIX_CHURN, notify);
	if (conf == NULL || store_open(db, &st) < 0 ||
	    dedup_configure(st, conf->lifecycle, conf->inventory) < 0 ||
	    desk_open(conf->helpdesk, conf->inventory, st, &desk) < 0 ||
	    checkpoint_start(st, db, &cp) < 0 ||
	    writer_start(st, nbatches + 1, (size_t)group, &wr) < 0 ||
	    liveness_start(st, wr, &conf->liveness, time_now_ms(), &lv) < 0) {
		fprintf(stderr, "store_apply: cannot set up the store in %s\n", dir);
		return 1;
	}
	atomic_init(&left, nbatches);
	c0 = bench_cpu_s();
	t0 = bench_wall_s();
	for (size_t i = 0; i < nbatches; i++) {
		jobs[i].lv = lv;
		jobs[i].left = &left;
		writer_post(wr, apply, &jobs[i], done);
	}
	while (atomic_load(&left) > 0)
		usleep(1000);
	apply_wall = bench_wall_s() - t0;
	apply_cpu = bench_cpu_s() - c0;
	liveness_stop(lv);
	writer_stop(wr);
	checkpoint_stop(cp);
	queued = (unsigned long long)atomic_load(&desk->counters.queued);
	desk_free(desk);
	store_close(st);

	printf("store_apply (%s, %s ids, notify %s): %lld events: parse and free %.2f us/event (HTTP threads, parallel); "
	       "writer %.0f events/s, %.2f us/event of CPU, groups of up to %lld batches; %llu notifications queued\n",
	       w.mix == MIX_CHURN ? "churn" : "realistic", w.v4 ? "v4" : "v7",
	       (const char *[]){ "none", "nobody", "mail" }[notify],
	       (long long)events, parse_cpu * 1e6 / (double)events,
	       (double)events / apply_wall, apply_cpu * 1e6 / (double)events,
	       (long long)group, queued);
	for (size_t i = 0; i < nbatches; i++) {
		ingest_batch_free(jobs[i].batch);
		free(bodies[i]);
	}
	free(jobs);
	free(bodies);
	server_config_free(conf);
	for (size_t i = 0; i < 3; i++) {
		char *p = xasprintf("%s%s", db, (const char *[]){ "", "-wal", "-shm" }[i]);

		unlink(p);
		free(p);
	}
	rmdir(dir);
	free(db);
	free(dir);
	return 0;
}
