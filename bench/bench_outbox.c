/*
 * What notifications cost the single writer: tickets opened through
 * deduplication with the helpdesk's listeners (routing, and the outbox:
 * one technician mail and one webhook row per ticket, the triggers that
 * keep the pending count, the bound), in a real SQLite file, batches of
 * 100 events per transaction as the writer groups them.  Three runs: no
 * notifications configured, notifications with room in the outbox, and
 * a full outbox where every row drops another.  Prints the figures;
 * asserts nothing about time.
 *
 *   build/rel/bench/bench_outbox [TICKETS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/config.h"
#include "../common/util.h"
#include "../server/dedup.h"
#include "../server/desk.h"
#include "../server/helpdesk.h"
#include "../server/inventory.h"
#include "../server/store.h"

#define BATCH 100

static const char base[] =
	"customers:\n"
	"  acme: {contract: fast, contacts: [it@acme.example]}\n"
	"hosts:\n"
	"  web01: {customer: acme, role: central}\n"
	"contracts:\n"
	"  fast:\n"
	"    calendar: {timezone: Europe/Berlin, hours: {mon-fri: 08:00-17:00}}\n"
	"    targets: {P1: {response: 4h, resolution: 2bd}}\n"
	"people:\n"
	"  alice: {email: alice@shop.example, level: 1, queues: [support]}\n";

/* Mail and a webhook (never contacted: nothing sends in this benchmark). */
#define NOTIFY(max_pending)                                        \
	"notify:\n  smtp: {url: 'smtp://127.0.0.1:1'}\n"           \
	"  webhooks: [{name: hook, url: 'http://127.0.0.1:1/'}]\n"  \
	"  max_pending: " max_pending "\n"

static void must(int r, const char *what)
{
	if (r < 0) {
		fprintf(stderr, "bench_outbox: %s failed: %d\n", what, r);
		exit(1);
	}
}

static void remove_db(const char *path)
{
	for (size_t i = 0; i < 3; i++) {
		static const char *const suffixes[] = { "", "-wal", "-shm" };
		char *p = xasprintf("%s%s", path, suffixes[i]);

		unlink(p);
		free(p);
	}
}

/* Open n tickets (one per item) on a fresh store; seconds taken. */
static double run(const char *yaml, int64_t n, size_t *ret_rows)
{
	char path[] = "/tmp/tocsin-bench-outbox-XXXXXX";
	struct ingest_event *ev = xcalloc(BATCH, sizeof(*ev));
	char (*items)[32] = xcalloc(BATCH, sizeof(*items));
	struct helpdesk_config *hc;
	struct dedup_stats stats;
	struct inventory *inv;
	struct store *st;
	struct desk *d;
	struct cfg *cfg;
	int64_t t0, t1, now = time_now_ms();
	sqlite3_stmt *s;
	int fd = mkstemp(path);

	if (fd < 0)
		exit(1);
	close(fd);
	unlink(path);
	must(cfg_load_string("bench.yaml", yaml, &cfg), "config");
	inventory_parse(cfg, cfg->root, &inv);
	helpdesk_config_parse(cfg, cfg->root, inv, &hc);
	if (cfg_finish(cfg) > 0) {
		cfg_print_errors(cfg);
		exit(1);
	}
	must(store_open(path, &st), "store_open");
	must(dedup_configure(st, NULL, inv), "dedup");
	must(desk_open(hc, inv, st, &d), "desk_open");
	t0 = time_mono_ms();
	for (int64_t done = 0; done < n; done += BATCH) {
		must(store_begin(st), "begin");
		for (int i = 0; i < BATCH; i++) {
			snprintf(items[i], sizeof(items[i]), "/srv/%lld", (long long)(done + i));
			ev[i] = (struct ingest_event){ .check = "disk", .item = items[i],
						       .state = CHECK_CRITICAL,
						       .summary = "/srv: 97% used, 1.2 GiB free",
						       .observed_ms = now, .metrics = "{}" };
			memcpy(ev[i].id, &done, sizeof(done));
			ev[i].id[8] = (uint8_t)i;
			ev[i].id[15] = 0x42;
		}
		must(dedup_apply_events(st, "web01", ev, BATCH, now, &stats), "apply");
		must(store_commit(st), "commit");
	}
	t1 = time_mono_ms();
	must(store_prepare(st, "SELECT count(*) FROM hd_outbox", &s), "count");
	*ret_rows = sqlite3_step(s) == SQLITE_ROW ? (size_t)sqlite3_column_int64(s, 0) : 0;
	sqlite3_finalize(s);
	desk_free(d);
	store_close(st);
	helpdesk_config_free(hc);
	inventory_free(inv);
	cfg_free(cfg);
	remove_db(path);
	free(ev);
	free(items);
	return (double)(t1 - t0) / 1000;
}

int main(int argc, char **argv)
{
	int64_t n = 20000;
	char *roomy, *full;
	size_t rows;
	double s;

	if (argc > 1 && (parse_int64(argv[1], &n) < 0 || n < BATCH || n > 10000000)) {
		fprintf(stderr, "usage: bench_outbox [TICKETS (100 to 10000000)]\n");
		return 2;
	}
	n -= n % BATCH;
	roomy = xasprintf("%s%s", base, NOTIFY("10000000"));
	full = xasprintf("%s%s", base, NOTIFY("1000"));
	printf("outbox: %lld tickets opened through dedup, %d per transaction, real SQLite file:\n",
	       (long long)n, BATCH);
	s = run(base, n, &rows);
	printf("  no notifications:              %.2f s, %.0f tickets/s\n", s, (double)n / s);
	s = run(roomy, n, &rows);
	printf("  mail + webhook per ticket:     %.2f s, %.0f tickets/s (%zu outbox rows)\n", s,
	       (double)n / s, rows);
	s = run(full, n, &rows);
	printf("  the same, outbox full at 1000: %.2f s, %.0f tickets/s (each row drops one)\n", s,
	       (double)n / s);
	free(roomy);
	free(full);
	return 0;
}
