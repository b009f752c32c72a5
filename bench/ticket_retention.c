/*
 * ticket_retention: what deleting old closed tickets costs the writer.
 *
 *   ticket_retention [TICKETS] [EVENTS] [CHUNK] [DIR] [events]
 *
 * Fills a real SQLite file under DIR (default TMPDIR or /tmp) with
 * TICKETS closed tickets (default 20,000) a year and a half old, each
 * with EVENTS events (default 20), an opening, a resolution, a comment
 * and a closing in its journal, the helpdesk's row, two sent mails and
 * an external id, and its problem key; then times the prune jobs of
 * retention.tickets (400d) with chunk CHUNK (default 2000), each in its
 * own transaction as the writer runs it, until all are gone.  Two closed
 * tickets must stay: the one in the middle, opened as long ago as the
 * rest but changed yesterday, and the newest, closed yesterday; the bench
 * fails if another number is left.  Prints the jobs' longest and mean
 * wall time (how long ingest may wait behind one) and tickets deleted per
 * second.  With "events", the event retention's jobs on the same file
 * instead (retention.events 30d, tickets kept), for a baseline: what a
 * job of chunk rows costs anyway.  The file and its -wal and -shm go in
 * any case.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/util.h"
#include "../server/retention.h"
#include "../server/store.h"
#include "clock.h"

#define DAY_MS (86400000LL)
#define NOW_MS (1795341600000LL)
#define OLD_MS (NOW_MS - 540 * DAY_MS)
#define RECENT_MS (NOW_MS - DAY_MS)

static const char *const fill_sql[] = {
	"INSERT INTO hosts(id, name, first_seen, last_seen) VALUES (1, 'web01', ?2, ?2)",
	"INSERT INTO tickets(id, host_id, check_name, item, status, title, state,"
	" worst_state, summary, occurrences, first_seen, last_seen, opened_at,"
	" resolved_at) VALUES (?1, 1, 'disk', '/v' || ?1, 'closed', 't', 'ok',"
	" 'critical', 's', 20, ?2, ?2, ?2, ?2 + 60000)",
	"INSERT INTO journal(ticket_id, at, actor, action, old_value, new_value, text)"
	" SELECT ?1, ?2 + value * 1000, 'alice', 'status', 'x', 'y', 'a line of text'"
	" FROM (SELECT 0 AS value UNION ALL SELECT 1 UNION ALL SELECT 2 UNION ALL SELECT 3)",
	"INSERT INTO hd_tickets(ticket_id, category, queue, level, impact, urgency,"
	" priority) VALUES (?1, 'managed-it', 'support', 1, 'high', 'high', 'P1')",
	"INSERT INTO hd_outbox(ticket_id, channel, target, body, idem_key, created,"
	" next_attempt, state) SELECT ?1, 'mail', 'it@acme.example', 'a mail body',"
	" ?1 || '-' || value, ?2, ?2, 'sent' FROM (SELECT 0 AS value UNION ALL SELECT 1)",
	"INSERT INTO hd_external(webhook, ticket_id, external_id) VALUES ('z', ?1, ?1)",
	"INSERT INTO problems(host_id, check_name, item, phase, state, last_at, since,"
	" streak, flapping, ticket_id) VALUES (1, 'disk', '/v' || ?1, 'ok', 'ok', ?2,"
	" ?2, 0, 0, ?1)",
};

static int exec1(sqlite3_stmt *s, int64_t a, int64_t b)
{
	int rc;

	sqlite3_bind_int64(s, 1, a);
	if (sqlite3_bind_parameter_count(s) >= 2)
		sqlite3_bind_int64(s, 2, b);
	rc = sqlite3_step(s);
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : -1;
}

/* The old ticket that changed yesterday (a comment in its journal). */
static int64_t touched_ticket(int64_t tickets)
{
	return (tickets + 1) / 2;
}

/*
 * TICKETS old closed tickets and their rows, one of them (touched_ticket())
 * commented on yesterday, and a newest one opened and closed yesterday:
 * those two stay.
 */
static int fill(struct store *st, int64_t tickets, int64_t events)
{
	sqlite3_stmt *s[ARRAY_SIZE(fill_sql)] = { NULL }, *ev = NULL, *touch = NULL;
	int r = -1;

	for (size_t i = 0; i < ARRAY_SIZE(fill_sql); i++)
		if (store_prepare(st, fill_sql[i], &s[i]) < 0)
			goto out;
	if (store_prepare(st, "INSERT INTO events(id, host_id, check_name, item,"
			      " state, summary, metrics, observed_at, received_at, ticket_id)"
			      " VALUES (randomblob(16), 1, 'disk', '/v' || ?1, 'critical',"
			      " 'disk almost full', '{\"used\":97}', ?2, ?2, ?1)", &ev) < 0 ||
	    store_prepare(st, "INSERT INTO journal(ticket_id, at, actor, action, text)"
			      " VALUES (?1, ?2, 'alice', 'comment', 'still fine?')", &touch) < 0)
		goto out;
	store_begin(st);
	r = exec1(s[0], 0, OLD_MS);
	for (int64_t t = 1; r == 0 && t <= tickets + 1; t++) {
		int64_t at = t <= tickets ? OLD_MS + t : RECENT_MS;

		for (size_t i = 1; r == 0 && i < ARRAY_SIZE(fill_sql); i++)
			r = exec1(s[i], t, at);
		for (int64_t e = 0; r == 0 && e < events; e++)
			r = exec1(ev, t, at + e);
	}
	if (r == 0)
		r = exec1(touch, touched_ticket(tickets), RECENT_MS);
	if (r == 0)
		r = store_commit(st);
	else
		store_rollback(st);
out:
	for (size_t i = 0; i < ARRAY_SIZE(fill_sql); i++)
		sqlite3_finalize(s[i]);
	sqlite3_finalize(ev);
	sqlite3_finalize(touch);
	return r;
}

static int64_t tickets_left(struct store *st)
{
	sqlite3_stmt *s;
	int64_t n = -1;

	if (store_prepare(st, "SELECT count(*) FROM tickets", &s) < 0)
		return -1;
	if (sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return n;
}

/* The database file and SQLite's -wal and -shm beside it. */
static void remove_files(const char *path)
{
	for (int i = 0; i < 3; i++) {
		char *p = xasprintf("%s%s", path, (const char *[]){ "", "-wal", "-shm" }[i]);

		unlink(p);
		free(p);
	}
}

int main(int argc, char **argv)
{
	int64_t tickets = 20000, events = 20, chunk = 2000, left, expected;
	const char *dir = argc > 4 ? argv[4] : getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	struct retention_config conf;
	struct retention *rt = NULL;
	struct store *st = NULL;
	double w0, longest = 0, total = 0;
	int jobs = 0, r = 0, rc = 1;
	bool baseline = argc > 5 && strcmp(argv[5], "events") == 0;
	char *path;

	if ((argc > 1 && (parse_int64(argv[1], &tickets) < 0 || tickets < 1)) ||
	    (argc > 2 && (parse_int64(argv[2], &events) < 0 || events < 0)) ||
	    (argc > 3 && (parse_int64(argv[3], &chunk) < 0 || chunk < 10))) {
		fprintf(stderr, "usage: ticket_retention [TICKETS] [EVENTS] [CHUNK] [DIR] [events]\n");
		return 2;
	}
	path = xasprintf("%s/tocsin-ticket-retention-%d.db", dir, (int)getpid());
	if (store_open(path, &st) < 0 || fill(st, tickets, events) < 0) {
		fprintf(stderr, "ticket_retention: cannot fill %s\n", path);
		goto out;
	}
	retention_config_defaults(&conf);
	conf.events_ms = baseline ? 30 * DAY_MS : 0;
	conf.event_ids_ms = 0;
	conf.tickets_ms = baseline ? 0 : conf.tickets_ms;
	conf.chunk = chunk;
	if (retention_open(st, &conf, &rt) < 0) {
		fprintf(stderr, "ticket_retention: cannot prepare the retention on %s\n", path);
		goto out;
	}
	do {
		w0 = bench_wall_s();
		store_begin(st);
		r = baseline ? retention_prune(rt, NOW_MS) : retention_prune_tickets(rt, NOW_MS);
		if (r < 0 || store_commit(st) < 0) {
			fprintf(stderr, "ticket_retention: prune job %d failed on %s\n",
				jobs + 1, path);
			goto out;
		}
		w0 = bench_wall_s() - w0;
		longest = w0 > longest ? w0 : longest;
		total += w0;
		jobs++;
	} while (baseline ? r >= chunk : r > 0);
	/* The baseline keeps every ticket; the ticket retention two of them. */
	left = tickets_left(st);
	expected = baseline ? tickets + 1 : 2;
	if (left != expected) {
		fprintf(stderr, "ticket_retention: %lld tickets left in %s, not %lld\n",
			(long long)left, path, (long long)expected);
		goto out;
	}
	printf("ticket_retention%s: %lld closed tickets with %lld events each, chunk %lld:"
	       " %d jobs, longest %.1f ms, mean %.1f ms, %.0f tickets/s, %lld left\n",
	       baseline ? " (events only)" : "", (long long)tickets, (long long)events,
	       (long long)chunk, jobs, longest * 1e3, total * 1e3 / jobs,
	       (double)(tickets + 1 - left) / total, (long long)left);
	rc = 0;
out:
	retention_close(rt);
	store_close(st);
	remove_files(path);
	free(path);
	return rc;
}
