/*
 * Recomputing the SLA state of 100,000 open tickets from their journals,
 * in a real SQLite file: what tocsin-server does at every start.  Prints
 * the figures; asserts nothing about time.
 *
 *   build/rel/bench/bench_sla [TICKETS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/config.h"
#include "../common/util.h"
#include "../server/desk.h"
#include "../server/helpdesk.h"
#include "../server/inventory.h"
#include "../server/store.h"

static const char config[] =
	"contracts:\n"
	"  maintenance:\n"
	"    calendar:\n"
	"      timezone: Europe/Berlin\n"
	"      hours: {mon-fri: 08:00-17:00}\n"
	"      holidays: [2026-12-24, 2026-12-25, 2026-12-26, 2026-12-31, 2027-01-01]\n"
	"    targets:\n"
	"      P2: {response: 1bd, resolution: 5bd}\n";

static void must(int r, const char *what)
{
	if (r < 0) {
		fprintf(stderr, "bench_sla: %s failed: %d\n", what, r);
		exit(1);
	}
}

static sqlite3_stmt *prep(struct store *st, const char *sql)
{
	sqlite3_stmt *s;

	must(store_prepare(st, sql, &s), sql);
	return s;
}

/* n tickets on 1000 hosts: new, acknowledged, in progress or waiting. */
static size_t populate(struct store *st, int n, int64_t now)
{
	sqlite3_stmt *host = prep(st, "INSERT INTO hosts(id, name, first_seen, last_seen) VALUES (?1, ?2, 0, 0)");
	sqlite3_stmt *t = prep(st, "INSERT INTO tickets(id, host_id, check_name, item, status, title,"
				   " state, worst_state, summary, occurrences, first_seen, last_seen,"
				   " opened_at) VALUES (?1, ?2, 'disk', ?3, ?4, 'disk', 'warning',"
				   " 'warning', 'disk filling', 1, ?5, ?5, ?5)");
	sqlite3_stmt *j = prep(st, "INSERT INTO journal(ticket_id, at, actor, action, old_value,"
				   " new_value) VALUES (?1, ?2, 'bench', ?3, ?4, ?5)");
	sqlite3_stmt *h = prep(st, "INSERT INTO hd_tickets(ticket_id, customer, contract, category,"
				   " queue, level, impact, urgency, priority, response_target,"
				   " resolution_target) VALUES (?1, 'acme', 'maintenance', 'managed-it',"
				   " 'managed-it', 1, 'high', 'medium', 'P2', ?2, ?3)");
	static const char *const steps[] = { "acknowledged", "in_progress", "waiting" };
	unsigned seed = 42;
	size_t rows = 0;
	char buf[64];

	must(store_begin(st), "begin");
	for (int i = 1; i <= 1000; i++) {
		snprintf(buf, sizeof(buf), "host%04d", i);
		sqlite3_bind_int(host, 1, i);
		sqlite3_bind_text(host, 2, buf, -1, SQLITE_TRANSIENT);
		must(db_step_done(host), "host");
	}
	for (int i = 1; i <= n; i++) {
		int64_t opened = now - (int64_t)(rand_r(&seed) % (14 * 86400)) * 1000;
		int k = i % 4; /* 0 new, 1 acknowledged, 2 in progress, 3 waiting */
		const char *prev = "new";

		snprintf(buf, sizeof(buf), "/srv/%d", i);
		sqlite3_bind_int(t, 1, i);
		sqlite3_bind_int(t, 2, 1 + i % 1000);
		sqlite3_bind_text(t, 3, buf, -1, SQLITE_TRANSIENT);
		db_bind_text(t, 4, k == 0 ? "new" : steps[k - 1]);
		sqlite3_bind_int64(t, 5, opened);
		must(db_step_done(t), "ticket");
		sqlite3_bind_int(j, 1, i);
		sqlite3_bind_int64(j, 2, opened);
		db_bind_text(j, 3, "opened");
		db_bind_text(j, 5, "warning");
		must(db_step_done(j), "journal");
		rows++;
		for (int s = 0; s < k; s++) {
			int64_t at = opened + (int64_t)(s + 1) * (now - opened) / (k + 1);

			sqlite3_bind_int(j, 1, i);
			sqlite3_bind_int64(j, 2, at);
			db_bind_text(j, 3, "status");
			db_bind_text(j, 4, prev);
			db_bind_text(j, 5, steps[s]);
			must(db_step_done(j), "journal");
			prev = steps[s];
			rows++;
		}
		sqlite3_bind_int(h, 1, i);
		sqlite3_bind_int64(h, 2, 9 * 3600 * 1000LL);
		sqlite3_bind_int64(h, 3, 45 * 3600 * 1000LL);
		must(db_step_done(h), "hd_tickets");
	}
	must(store_commit(st), "commit");
	sqlite3_finalize(host);
	sqlite3_finalize(t);
	sqlite3_finalize(j);
	sqlite3_finalize(h);
	return rows;
}

int main(int argc, char **argv)
{
	char path[] = "/tmp/tocsin-bench-sla-XXXXXX";
	int64_t n = 100000;
	struct helpdesk_config *hc;
	struct inventory *inv;
	struct desk *d;
	struct store *st;
	struct cfg *cfg;
	int64_t now = time_now_ms(), t0, t1, t2;
	size_t rows, seen = 0;
	int fd = mkstemp(path);

	if (argc > 1 && (parse_int64(argv[1], &n) < 0 || n < 1 || n > 10000000)) {
		fprintf(stderr, "usage: bench_sla [TICKETS (1 to 10000000)]\n");
		return 2;
	}
	if (fd < 0)
		return 1;
	close(fd);
	unlink(path);
	must(cfg_load_string("bench.yaml", config, &cfg), "config");
	inventory_parse(cfg, cfg->root, &inv);
	helpdesk_config_parse(cfg, cfg->root, inv, &hc);
	if (cfg_finish(cfg) > 0) {
		cfg_print_errors(cfg);
		return 1;
	}
	must(store_open(path, &st), "store_open");
	must(desk_open(hc, inv, st, &d), "desk_open");
	rows = populate(st, (int)n, now);

	t0 = time_mono_ms();
	must(desk_recompute_all(d, now, false, &seen, NULL), "recompute");
	t1 = time_mono_ms();
	must(store_begin(st), "begin");
	must(desk_recompute_all(d, now, true, &seen, NULL), "recompute and write");
	must(store_commit(st), "commit");
	t2 = time_mono_ms();
	printf("sla_recompute: %zu open tickets, %zu journal rows, real SQLite file:\n"
	       "  compute from the journal: %.3f s (%.1f us per ticket)\n"
	       "  compute and store caches (one transaction, fsync): %.3f s\n",
	       seen, rows, (double)(t1 - t0) / 1000, (double)(t1 - t0) * 1000 / (double)seen,
	       (double)(t2 - t1) / 1000);
	desk_free(d);
	store_close(st);
	helpdesk_config_free(hc);
	inventory_free(inv);
	cfg_free(cfg);
	for (size_t i = 0; i < 3; i++) {
		static const char *const suffixes[] = { "", "-wal", "-shm" };
		char *p = xasprintf("%s%s", path, suffixes[i]);

		unlink(p);
		free(p);
	}
	return 0;
}
