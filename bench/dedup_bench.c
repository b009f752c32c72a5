/*
 * dedup_bench: events per second through deduplication on a real SQLite
 * file (WAL, synchronous=FULL, as the collector runs it), with and
 * without the alert lifecycle's rules, inventory and silences, and
 * against the walking skeleton's algorithm (event insert, open-ticket
 * lookup, occurrence/resolve/open) as the baseline the lifecycle adds to.
 *
 * Workload: 1,000 hosts x 10 items = 10,000 problem keys, batches of 100
 * events per host call, 100 batches per commit (as the writer groups
 * them); 95% of the keys stay ok, 4% stay critical (occurrences of an
 * open ticket), 1% change state every round (opening and resolving or
 * reopening tickets, and flapping).  Prints figures; asserts nothing.
 *
 *   build/rel/bench/dedup_bench [ROUNDS] [DIR] [MODE]
 *
 * MODE (baseline, defaults or rules) runs that mode once, for counting
 * instructions where timings are too noisy:
 *
 *   valgrind --tool=callgrind --callgrind-out-file=/dev/null \
 *       build/rel/bench/dedup_bench 1 build rules
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/config.h"
#include "../common/util.h"
#include "../server/dedup.h"
#include "../server/inventory.h"
#include "../server/lifecycle.h"
#include "../server/silence.h"
#include "../server/store.h"

#define HOSTS 1000
#define ITEMS 10
#define BATCH 100
#define GROUP 100

enum mode { BASELINE, DEFAULTS, RULES };

static const char *const mode_names[] = {
	[BASELINE] = "skeleton baseline (no lifecycle)",
	[DEFAULTS] = "lifecycle, built-in defaults",
	[RULES] = "lifecycle, 10 rules + inventory + topology + 5 silences",
};

/* The skeleton's per-event algorithm, kept here for comparison only. */
static int baseline_event(struct store *st, const struct store_event *ev,
			  const char *host)
{
	struct store_ticket t;
	int r, found;

	r = store_event_insert(st, ev);
	if (r <= 0)
		return r;
	found = store_ticket_find_open(st, ev->host_id, ev->check, ev->item, &t);
	if (found < 0)
		return found;
	if (ev->state == CHECK_OK) {
		if (!found || ev->observed_ms < t.last_seen_ms)
			return 0;
		r = store_ticket_resolve(st, t.id, ev->received_ms);
		if (r == 0)
			r = store_journal_add(st, t.id, ev->received_ms, "tocsin",
					      "resolved", NULL, "ok", ev->summary);
		return r == 0 ? store_event_link(st, ev->id, t.id) : r;
	}
	if (found) {
		r = store_ticket_occurrence(st, &t, ev);
		return r == 0 ? store_event_link(st, ev->id, t.id) : r;
	}
	char *title = xasprintf("%s %s on %s", ev->check, ev->item, host);
	int64_t id;

	r = store_ticket_open(st, ev->host_id, ev->check, ev->item, title, ev, &id);
	free(title);
	if (r == 0)
		r = store_journal_add(st, id, ev->received_ms, "tocsin", "opened",
				      NULL, "critical", ev->summary);
	return r == 0 ? store_event_link(st, ev->id, id) : r;
}

static int parse_int64_arg(const char *text, int *ret)
{
	int64_t v;

	if (parse_int64(text, &v) < 0 || v > 1000000)
		return -EINVAL;
	*ret = (int)v;
	return 0;
}

static const char *rules_yaml(void)
{
	static char buf[1 << 20];
	size_t len = 0;

	len += (size_t)snprintf(buf + len, sizeof(buf) - len,
		"lifecycle:\n  rules:\n"
		"    - {match: {check: backup}, confirm_after: 3}\n"
		"    - {match: {check: raid}, on_recovery: review}\n"
		"    - {match: {check: ntp, host: \"dc*\"}, confirm_for: 10m}\n"
		"    - {match: {check: heartbeat}, confirm_after: 2}\n"
		"    - {match: {host: \"printer*\"}, flap_threshold: 0}\n"
		"    - {match: {tags: [lab]}, reopen_within: 0}\n"
		"    - {match: {check: smart, item: \"/dev/sd*\"}, confirm_after: 2}\n"
		"    - {match: {check: updates}, on_recovery: review}\n"
		"    - {match: {check: svc, item: \"cron*\"}, confirm_after: 5}\n"
		"    - {match: {check: disk, tags: [prod]}, confirm_after: 2}\n"
		"hosts:\n");
	for (int r = 0; r < HOSTS / 10; r++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len,
					"  router%03d: {tags: [network]}\n", r);
	for (int h = 0; h < HOSTS; h++)
		len += (size_t)snprintf(buf + len, sizeof(buf) - len,
					"  host%04d: {parent: router%03d, tags: [office]}\n",
					h, h % (HOSTS / 10));
	return buf;
}

static void add_silences(struct store *st, int64_t now)
{
	static const struct silence_config conf = {
		.max_duration_ms = 86400000LL * 30, .max_silences = 100
	};

	store_begin(st);
	for (int i = 0; i < 5; i++) {
		struct silence s = {
			.host = xasprintf("other%d*", i), .check = xstrdup("disk"),
			.starts_ms = now - 1000, .ends_ms = now + 86400000LL,
			.author = xstrdup("bench"), .comment = xstrdup("bench"),
		};
		int64_t id;

		silence_create(dedup_get(st)->silences, &s, now, &conf, &id);
		silence_clear(&s);
	}
	store_commit(st);
}

/* The state of key k in round r: 95% ok, 4% critical, 1% alternating. */
static enum check_state state_of(int k, int round)
{
	if (k % 100 < 95)
		return CHECK_OK;
	if (k % 100 < 99)
		return CHECK_CRITICAL;
	return round % 2 ? CHECK_OK : CHECK_CRITICAL;
}

static double run(enum mode mode, const char *dir, int rounds)
{
	char *path = xasprintf("%s/dedup-bench-%d.db", dir, (int)mode);
	static const char *const items[ITEMS] = { "/", "/srv", "/var", "/home", "/tmp",
						  "/boot", "/opt", "/data", "/backup", "/log" };
	struct lifecycle_config *lc = NULL;
	struct inventory *inv = NULL;
	struct cfg *cfg = NULL;
	struct store *st;
	struct timespec a, b;
	uint64_t seq = 0, n = 0;
	int64_t now = time_now_ms();
	char summary[64];

	unlink(path);
	if (store_open(path, &st) < 0) {
		fprintf(stderr, "cannot open %s\n", path);
		exit(1);
	}
	if (mode == RULES) {
		cfg_load_string("bench.yaml", rules_yaml(), &cfg);
		inventory_parse(cfg, cfg->root, &inv);
		lifecycle_config_parse(cfg, cfg->root, inv, &lc);
		if (cfg_finish(cfg) > 0) {
			cfg_print_errors(cfg);
			exit(1);
		}
		dedup_configure(st, lc, inv);
		add_silences(st, now);
	} else if (mode == DEFAULTS) {
		dedup_configure(st, NULL, NULL);
	}

	clock_gettime(CLOCK_MONOTONIC, &a);
	for (int round = 0; round < rounds; round++) {
		store_begin(st);
		for (int h = 0; h < HOSTS; h++) {
			struct ingest_event ev[BATCH];
			char host[32];
			int64_t host_id;
			struct dedup_stats stats;

			snprintf(host, sizeof(host), "host%04d", h);
			for (int i = 0; i < BATCH; i++) {
				int key = h * ITEMS + i % ITEMS;

				memset(&ev[i], 0, sizeof(ev[i]));
				seq++;
				memcpy(ev[i].id, &seq, sizeof(seq));
				ev[i].id[15] = 0x42;
				ev[i].check = "disk";
				ev[i].item = items[i % ITEMS];
				ev[i].state = state_of(key, round * 10 + i / ITEMS);
				ev[i].summary = summary;
				ev[i].observed_ms = now + (int64_t)(round * 10 + i / ITEMS) * 1000;
				ev[i].metrics = (char *)"{}";
			}
			snprintf(summary, sizeof(summary), "bench round %d", round);
			if (mode == BASELINE) {
				store_host_touch(st, host, now, &host_id);
				for (int i = 0; i < BATCH; i++) {
					struct store_event se = {
						.id = ev[i].id, .host_id = host_id,
						.check = ev[i].check, .item = ev[i].item,
						.state = ev[i].state, .summary = summary,
						.metrics = "{}", .observed_ms = ev[i].observed_ms,
						.received_ms = ev[i].observed_ms,
					};
					if (baseline_event(st, &se, host) < 0)
						exit(1);
				}
			} else if (dedup_apply_events(st, host, ev, BATCH,
						      ev[BATCH - 1].observed_ms,
						      &stats) < 0) {
				fprintf(stderr, "dedup failed: %s\n", store_errmsg(st));
				exit(1);
			}
			n += BATCH;
			if ((h + 1) % GROUP == 0) {
				store_commit(st);
				store_begin(st);
			}
		}
		store_commit(st);
	}
	clock_gettime(CLOCK_MONOTONIC, &b);
	store_close(st);
	lifecycle_config_free(lc);
	inventory_free(inv);
	cfg_free(cfg);
	unlink(path);
	char *wal = xasprintf("%s-wal", path), *shm = xasprintf("%s-shm", path);
	unlink(wal);
	unlink(shm);
	free(wal);
	free(shm);
	free(path);
	double s = (double)(b.tv_sec - a.tv_sec) + (double)(b.tv_nsec - a.tv_nsec) / 1e9;
	return (double)n / s;
}

#define REPEATS 3

int main(int argc, char **argv)
{
	static const char *const mode_args[] = { "baseline", "defaults", "rules" };
	double best[RULES + 1] = { 0 };
	int rounds = 3;
	const char *dir = argc > 2 ? argv[2] : "/tmp";

	if (argc > 4 || (argc > 1 && (parse_int64_arg(argv[1], &rounds) < 0 || rounds < 1))) {
		fprintf(stderr, "usage: dedup_bench [ROUNDS] [DIR] [baseline|defaults|rules]\n");
		return 2;
	}
	for (int m = BASELINE; argc == 4 && m <= RULES; m++) {
		if (strcmp(argv[3], mode_args[m]) == 0) {
			double eps = run((enum mode)m, dir, rounds);

			printf("%s: %.0f events/s\n", mode_names[m], eps);
			return 0;
		}
	}
	if (argc == 4) {
		fprintf(stderr, "dedup_bench: mode '%s' is not baseline, defaults or rules\n", argv[3]);
		return 2;
	}
	printf("dedup_bench: %d rounds x %d hosts x %d events, commit per %d batches, %s;\n"
	       "  modes interleaved %d times, best of each (the machine is shared: noisy)\n",
	       rounds, HOSTS, BATCH, GROUP, dir, REPEATS);
	/* Interleaved, so that a burst of load elsewhere hits every mode. */
	for (int k = 0; k < REPEATS; k++)
		for (int m = BASELINE; m <= RULES; m++) {
			double eps = run((enum mode)m, dir, rounds);

			if (eps > best[m])
				best[m] = eps;
		}
	for (int m = BASELINE; m <= RULES; m++)
		printf("  %-58s %10.0f events/s  (%.2f us/event, %+.1f%% vs baseline)\n",
		       mode_names[m], best[m], 1e6 / best[m],
		       100.0 * (best[m] - best[BASELINE]) / best[BASELINE]);
	return 0;
}
