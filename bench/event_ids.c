/*
 * event_ids: what the kind of event id costs the collector's events table
 * once it is big.
 *
 *   event_ids [ROWS] [DIR]
 *
 * For random version-4 ids and for time-ordered UUIDv7 ids in turn: a
 * fresh store (the collector's schema and settings, synchronous=FULL) in
 * DIR (default TMPDIR or /tmp) is filled with ROWS events (default
 * 1,000,000) through store_events_insert() in batches of 100, 10,000 per
 * commit, then 200,000 more are timed the same way.  Prints CPU per event
 * and events/s for both.  The id index of a big table does not fit in
 * SQLite's page cache: a random id lands on a random page of it, a v7 id
 * next to the last one.  Use tens of millions of rows to see the gap an
 * established collector sees (the prefill of v4 ids alone then takes
 * many minutes).
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/util.h"
#include "../server/store.h"
#include "clock.h"
#include "workload.h"

#define BATCH 100
#define PER_COMMIT 100 /* batches */
#define MEASURED 200000

/* 16 id bytes: v7 (ms first) or v4 (all random but the version). */
static void make_id(uint8_t id[16], bool v7, uint64_t *rng)
{
	uint64_t a = workload_random(rng), b = workload_random(rng);

	memcpy(id, &a, 8);
	memcpy(id + 8, &b, 8);
	if (v7) {
		uint64_t ms = (uint64_t)time_now_ms();

		for (int i = 0; i < 6; i++)
			id[i] = (uint8_t)(ms >> (40 - 8 * i));
	}
	id[6] = (uint8_t)((id[6] & 0x0f) | (v7 ? 0x70 : 0x40));
	id[8] = (uint8_t)((id[8] & 0x3f) | 0x80);
}

/* n events in commits of PER_COMMIT batches; false on a store error. */
static bool insert(struct store *st, int64_t n, bool v7, uint64_t *rng)
{
	static uint8_t ids[BATCH][16];
	static char items[BATCH][24];
	struct store_event evs[BATCH];
	bool stored[BATCH];
	int64_t batches = n / BATCH;

	for (int64_t b = 0; b < batches; b++) {
		if (b % PER_COMMIT == 0 && store_begin(st) < 0)
			return false;
		for (int i = 0; i < BATCH; i++) {
			make_id(ids[i], v7, rng);
			snprintf(items[i], sizeof(items[i]), "/srv/vol%04d", i);
			evs[i] = (struct store_event){
				.id = ids[i], .host_id = b % 100 + 1, .check = "disk",
				.item = items[i], .state = CHECK_OK,
				.summary = "/srv/vol0001: 93.1% used, 6.2 GiB free of 90.0 GiB (warning at 90%)",
				.metrics = "{\"used_percent\":93.1,\"free_bytes\":6657199308}",
				.observed_ms = time_now_ms(), .received_ms = time_now_ms(),
			};
		}
		if (store_events_insert(st, evs, BATCH, stored) != BATCH)
			return false;
		if ((b % PER_COMMIT == PER_COMMIT - 1 || b == batches - 1) &&
		    store_commit(st) < 0)
			return false;
	}
	return true;
}

static int run(const char *dir, int64_t rows, bool v7)
{
	char *path = xasprintf("%s/tocsin-event-ids-%d.db", dir, (int)getpid());
	uint64_t rng = 0x9e3779b97f4a7c15ULL;
	struct store *st;
	double c0, w0, cpu, wall;
	bool ok;

	if (store_open(path, &st) < 0) {
		fprintf(stderr, "event_ids: cannot open %s\n", path);
		return 1;
	}
	ok = insert(st, rows, v7, &rng);
	c0 = bench_cpu_s();
	w0 = bench_wall_s();
	ok = ok && insert(st, MEASURED, v7, &rng);
	cpu = bench_cpu_s() - c0;
	wall = bench_wall_s() - w0;
	store_close(st);
	for (int i = 0; i < 3; i++) {
		char *p = xasprintf("%s%s", path, (const char *[]){ "", "-wal", "-shm" }[i]);

		unlink(p);
		free(p);
	}
	free(path);
	if (!ok) {
		fprintf(stderr, "event_ids: a store operation failed\n");
		return 1;
	}
	printf("event_ids (%s ids): %d events more into a table of %lld: %.2f us CPU/event, %.0f events/s\n",
	       v7 ? "v7" : "v4", MEASURED, (long long)rows, cpu * 1e6 / MEASURED,
	       MEASURED / wall);
	return 0;
}

int main(int argc, char **argv)
{
	int64_t rows = 1000000;
	const char *dir = argc > 2 ? argv[2] : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";

	if (argc > 1 && (parse_int64(argv[1], &rows) < 0 || rows < 0)) {
		fprintf(stderr, "usage: event_ids [ROWS] [DIR]\n");
		return 2;
	}
	return run(dir, rows, true) || run(dir, rows, false);
}
