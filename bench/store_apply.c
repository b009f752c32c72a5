/*
 * store_apply: the collector's ingest path without HTTP, to see which part
 * limits it.
 *
 *   store_apply [EVENTS] [GROUP] [steady]
 *
 * Builds EVENTS events (default 500,000) in batches of 100 over 10,000
 * problem keys with random ids, the same mixes as ingest_load, then times
 * (1) ingest_parse() of every batch, the work of the HTTP threads, and
 * (2) the single writer applying them through dedup with group commits of
 * GROUP jobs (default 256) and synchronous=FULL on a real file under /tmp.
 * Prints microseconds per event for both, and the writer's events/s.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/util.h"
#include "../server/dedup.h"
#include "../server/ingest.h"
#include "../server/store.h"
#include "../server/writer.h"

#define BATCH 100
#define KEYS 10000
#define HOSTS 100

static const char *const churn[] = { "critical", "critical", "warning",
				     "critical", "ok" };
static int steady;

static const char *state_of(uint64_t step)
{
	if (steady)
		return step % 20 == 19 ? "ok" : "critical";
	return churn[step % 5];
}

struct job {
	struct ingest_batch *batch;
	struct dedup_stats stats;
	atomic_size_t *left;
};

static double cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static double wall_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static char *make_body(uint64_t n)
{
	size_t size = 64 * 1024, len;
	char *body = xcalloc(size, 1);
	int host = (int)(n % HOSTS);

	len = (size_t)snprintf(body, size, "{\"host\":\"bench%04d\",\"events\":[", host);
	for (int i = 0; i < BATCH; i++) {
		int item = (int)((n / HOSTS * BATCH + (uint64_t)i) % (KEYS / HOSTS));
		const char *state = state_of(n / HOSTS + (uint64_t)i);
		char id[UUID_STR_LEN];

		uuid_generate(id);
		len += (size_t)snprintf(
			body + len, size - len,
			"%s{\"id\":\"%s\",\"check\":\"disk\",\"item\":\"/srv/vol%04d\","
			"\"state\":\"%s\",\"summary\":\"/srv/vol%04d: 93.1%% used, 6.2 GiB free of 90.0 GiB (warning at 90%%)\","
			"\"metrics\":{\"used_percent\":93.1,\"free_bytes\":6657199308},"
			"\"observed_at\":\"2026-11-22T10:00:00Z\"}",
			i ? "," : "", id, item, state, item);
	}
	snprintf(body + len, size - len, "]}");
	return body;
}

static int apply(struct store *st, void *arg)
{
	struct job *j = arg;

	return dedup_apply(st, j->batch, time_now_ms(), &j->stats);
}

static void done(void *arg, int result)
{
	struct job *j = arg;

	if (result < 0)
		fprintf(stderr, "job failed: %s\n", strerror(-result));
	atomic_fetch_sub(j->left, 1);
}

int main(int argc, char **argv)
{
	int64_t events = 500000, group = 256;
	char path[] = "/tmp/tocsin-store-apply-XXXXXX", err[256];
	size_t nbatches;
	struct job *jobs;
	struct store *st;
	struct writer *w;
	atomic_size_t left;
	char **bodies;
	double c0, t0, parse_cpu, apply_wall, apply_cpu;
	int fd;

	if ((argc > 1 && parse_int64(argv[1], &events) < 0) ||
	    (argc > 2 && parse_int64(argv[2], &group) < 0) || events < BATCH ||
	    group < 1 || (argc > 3 && strcmp(argv[3], "steady") != 0)) {
		fprintf(stderr, "usage: store_apply [EVENTS] [GROUP] [steady]\n");
		return 2;
	}
	steady = argc > 3;
	nbatches = (size_t)(events / BATCH);
	bodies = xcalloc(nbatches, sizeof(*bodies));
	jobs = xcalloc(nbatches, sizeof(*jobs));
	for (size_t i = 0; i < nbatches; i++)
		bodies[i] = make_body(i);

	c0 = cpu_s();
	for (size_t i = 0; i < nbatches; i++)
		if (ingest_parse(bodies[i], strlen(bodies[i]), 1000,
				 &jobs[i].batch, err, sizeof(err)) < 0) {
			fprintf(stderr, "batch %zu: %s\n", i, err);
			return 1;
		}
	parse_cpu = cpu_s() - c0;

	fd = mkstemp(path);
	if (fd < 0)
		return 1;
	close(fd);
	unlink(path);
	if (store_open(path, &st) < 0 ||
	    writer_start(st, nbatches + 1, (size_t)group, &w) < 0)
		return 1;
	atomic_init(&left, nbatches);
	c0 = cpu_s();
	t0 = wall_s();
	for (size_t i = 0; i < nbatches; i++) {
		jobs[i].left = &left;
		writer_post(w, apply, &jobs[i], done);
	}
	while (atomic_load(&left) > 0)
		usleep(1000);
	apply_wall = wall_s() - t0;
	apply_cpu = cpu_s() - c0;
	writer_stop(w);
	store_close(st);

	printf("store_apply (%s): %lld events: parse %.2f us/event (HTTP threads, parallel); "
	       "writer %.0f events/s, %.2f us/event of CPU, group of %lld batches\n",
	       steady ? "steady" : "churn", (long long)events,
	       parse_cpu * 1e6 / (double)events,
	       (double)events / apply_wall, apply_cpu * 1e6 / (double)events,
	       (long long)group);
	for (size_t i = 0; i < nbatches; i++) {
		ingest_batch_free(jobs[i].batch);
		free(bodies[i]);
	}
	free(jobs);
	free(bodies);
	for (const char *suffix = ""; suffix; suffix = *suffix ? NULL : "-wal") {
		char *p = xasprintf("%s%s", path, suffix);

		unlink(p);
		free(p);
	}
	return 0;
}
