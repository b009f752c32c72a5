/*
 * Event retention on a real SQLite file with an explicit clock: what is
 * deleted and what an open ticket keeps, chunks, the hourly look behind
 * the cursor, what a deleted event's id means for a resend, and the
 * configuration's rule that events outlive the agents' resend window.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "../../server/retention.h"
#include "lifecycle_fixture.h"

static int64_t count(struct fx *f, const char *sql)
{
	sqlite3_stmt *s;
	int64_t n;

	assert_int_equal(sqlite3_prepare_v2(store_db(f->st), sql, -1, &s, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return n;
}

static int prune(struct retention *rt, struct fx *f, int64_t now_ms)
{
	int n;

	assert_int_equal(store_begin(f->st), 0);
	n = retention_prune(rt, now_ms);
	assert_true(n >= 0);
	assert_int_equal(store_commit(f->st), 0);
	return n;
}

static struct retention *open_retention(struct fx *f, int64_t keep, int64_t chunk)
{
	struct retention_config conf;
	struct retention *rt;

	retention_config_defaults(&conf);
	conf.events_ms = 60 * 60000LL;
	conf.event_ids_ms = 0;
	conf.keep_per_ticket = keep;
	conf.chunk = chunk;
	assert_int_equal(retention_open(f->st, &conf, &rt), 0);
	return rt;
}

/* The minutes (since T0) of the events still stored for item, in order. */
static void stored_minutes(struct fx *f, const char *item, char *buf, size_t size)
{
	sqlite3_stmt *s;

	buf[0] = '\0';
	assert_int_equal(sqlite3_prepare_v2(store_db(f->st),
		"SELECT (received_at - ?2) / 60000 FROM events WHERE item = ?1 ORDER BY seq",
		-1, &s, NULL), SQLITE_OK);
	sqlite3_bind_text(s, 1, item, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, T0);
	while (sqlite3_step(s) == SQLITE_ROW) {
		char one[16];

		snprintf(one, sizeof(one), "%s%lld", buf[0] ? " " : "",
			 (long long)sqlite3_column_int64(s, 0));
		strlcat_safe(buf, one, size);
	}
	sqlite3_finalize(s);
}

static void test_old_events_go_an_open_tickets_latest_stay(void **state)
{
	struct fx *f = fx_open("");
	struct retention *rt = open_retention(f, 3, 1000);
	char got[256];
	json_t *t;

	(void)state;
	for (int m = 0; m < 6; m++)
		fx_at(f, "web01", "disk", "/open", CHECK_CRITICAL, MIN(m));
	for (int m = 0; m < 4; m++)
		fx_at(f, "web01", "disk", "/gone", CHECK_CRITICAL, MIN(m));
	fx_at(f, "web01", "disk", "/gone", CHECK_OK, MIN(4));
	for (int m = 0; m < 5; m++)
		fx_at(f, "web01", "disk", "/fine", CHECK_OK, MIN(m));
	fx_at(f, "web01", "disk", "/new", CHECK_CRITICAL, MIN(80));

	/* At 10:90, events before 10:30 are past the hour. */
	assert_int_equal(prune(rt, f, MIN(90)), 16);
	stored_minutes(f, "/open", got, sizeof(got));
	assert_string_equal(got, "3 4 5");
	stored_minutes(f, "/gone", got, sizeof(got));
	assert_string_equal(got, "");
	stored_minutes(f, "/fine", got, sizeof(got));
	assert_string_equal(got, "");
	stored_minutes(f, "/new", got, sizeof(got));
	assert_string_equal(got, "80");
	/* The ticket still counts all six, and shows the three it kept. */
	assert_int_equal(store_ticket_get(f->st, fx_ticket_id(f, "web01", "disk", "/open"),
					  100, &t), 0);
	assert_int_equal(json_integer_value(json_object_get(t, "occurrence_count")), 6);
	assert_int_equal(json_array_size(json_object_get(t, "occurrences")), 3);
	json_decref(t);
	/* Nothing more to do until more events age. */
	assert_int_equal(prune(rt, f, MIN(91)), 0);
	assert_int_equal(count(f, "SELECT count(*) FROM events"), 4);
	retention_close(rt);
	fx_close(f);
}

static void test_kept_events_go_once_their_ticket_is_resolved(void **state)
{
	struct fx *f = fx_open("");
	struct retention *rt = open_retention(f, 2, 1000);
	char got[256];

	(void)state;
	for (int m = 0; m < 4; m++)
		fx_at(f, "web01", "disk", "/open", CHECK_CRITICAL, MIN(m));
	fx_at(f, "web01", "disk", "/other", CHECK_OK, MIN(70));
	prune(rt, f, MIN(75));
	stored_minutes(f, "/open", got, sizeof(got));
	assert_string_equal(got, "2 3");
	/* Resolved: its kept events are behind the cursor now ... */
	fx_at(f, "web01", "disk", "/open", CHECK_OK, MIN(76));
	prune(rt, f, MIN(100));
	stored_minutes(f, "/open", got, sizeof(got));
	assert_string_equal(got, "2 3 76");
	/* ... until the cursor goes back to the start, once an hour. */
	prune(rt, f, MIN(140));
	stored_minutes(f, "/open", got, sizeof(got));
	assert_string_equal(got, "");
	stored_minutes(f, "/other", got, sizeof(got));
	assert_string_equal(got, "");
	retention_close(rt);
	fx_close(f);
}

static void test_pruning_goes_in_chunks(void **state)
{
	struct fx *f = fx_open("");
	struct retention *rt = open_retention(f, 100, 10);

	(void)state;
	for (int i = 0; i < 35; i++) {
		char item[16];

		snprintf(item, sizeof(item), "/v%d", i);
		fx_at(f, "web01", "disk", item, CHECK_OK, MIN(i % 7));
	}
	assert_int_equal(prune(rt, f, MIN(100)), 10);
	assert_int_equal(count(f, "SELECT count(*) FROM events"), 25);
	assert_int_equal(prune(rt, f, MIN(100)), 10);
	assert_int_equal(prune(rt, f, MIN(100)), 10);
	assert_int_equal(prune(rt, f, MIN(100)), 5);
	assert_int_equal(count(f, "SELECT count(*) FROM events"), 0);
	assert_int_equal(prune(rt, f, MIN(100)), 0);
	retention_close(rt);
	fx_close(f);
}

/* One event with a given id byte, received at now_ms; its stats. */
static struct dedup_stats resend(struct fx *f, uint8_t tag, int64_t now_ms)
{
	struct ingest_event ev = {
		.check = "disk", .item = "/r", .summary = "s",
		.state = CHECK_OK, .observed_ms = now_ms, .metrics = "{}",
	};
	struct dedup_stats stats;

	memset(ev.id, tag, sizeof(ev.id));
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(dedup_apply_events(f->st, "web01", &ev, 1, now_ms, &stats), 0);
	assert_int_equal(store_commit(f->st), 0);
	return stats;
}

static void test_a_deleted_events_id_is_forgotten(void **state)
{
	struct fx *f = fx_open("");
	struct retention *rt = open_retention(f, 100, 1000);

	(void)state;
	assert_int_equal(resend(f, 0x11, MIN(0)).accepted, 1);
	assert_int_equal(resend(f, 0x22, MIN(50)).accepted, 1);
	prune(rt, f, MIN(70));
	/*
	 * Within retention a resend is recognised; after it, the id is gone
	 * with its event: why retention.events must cover the agents'
	 * resend window (retention.event_ids).
	 */
	assert_int_equal(resend(f, 0x22, MIN(71)).duplicates, 1);
	assert_int_equal(resend(f, 0x11, MIN(71)).accepted, 1);
	retention_close(rt);
	fx_close(f);
}

static void test_configuration(void **state)
{
	struct cfg *cfg;
	struct retention_config conf;

	(void)state;
	retention_config_defaults(&conf);
	assert_int_equal(conf.events_ms, 30 * 86400000LL);
	assert_int_equal(conf.event_ids_ms, 7 * 86400000LL);
	assert_int_equal(conf.keep_per_ticket, 100);

	assert_int_equal(cfg_load_string("server.yaml",
		"retention:\n  events: 2d\n", &cfg), 0);
	retention_parse(cfg, cfg_get(cfg, cfg->root, "retention"), &conf);
	assert_int_equal(cfg->nerrors, 1);
	assert_non_null(strstr(cfg->errors[0], "server.yaml:2:"));
	assert_non_null(strstr(cfg->errors[0],
		"retention.events: 2 d is shorter than retention.event_ids (7 d)"));
	cfg_free(cfg);

	retention_config_defaults(&conf);
	assert_int_equal(cfg_load_string("server.yaml",
		"retention:\n  events: 0\n  chunk: 5\n  prune_every: 2h\n", &cfg), 0);
	retention_parse(cfg, cfg_get(cfg, cfg->root, "retention"), &conf);
	assert_int_equal(conf.events_ms, 0);
	assert_int_equal(cfg->nerrors, 2);
	assert_non_null(strstr(cfg->errors[0],
		"server.yaml:4:16: retention.prune_every: must be between 100ms and 1h"));
	assert_non_null(strstr(cfg->errors[1], "server.yaml:3:10: retention.chunk"));
	cfg_free(cfg);

	retention_config_defaults(&conf);
	assert_int_equal(cfg_load_string("server.yaml",
		"retention:\n  events: 10s\n  event_ids: 5s\n  keep_per_ticket: 0\n", &cfg), 0);
	retention_parse(cfg, cfg_get(cfg, cfg->root, "retention"), &conf);
	assert_int_equal(cfg->nerrors, 0);
	assert_int_equal(conf.events_ms, 10000);
	assert_int_equal(conf.keep_per_ticket, 0);
	cfg_free(cfg);
}

/* ---- closed tickets ---------------------------------------------------- */

#define DAY(d) (T0 + (int64_t)(d) * 86400000LL)

/* Run sql with the integers given bound as ?1, ?2, ... (-1 binds NULL). */
static void sql(struct fx *f, const char *text, int n, ...)
{
	sqlite3_stmt *s;
	va_list ap;

	assert_int_equal(sqlite3_prepare_v2(store_db(f->st), text, -1, &s, NULL), SQLITE_OK);
	va_start(ap, n);
	for (int i = 1; i <= n; i++) {
		int64_t v = va_arg(ap, int64_t);

		if (v == -1)
			sqlite3_bind_null(s, i);
		else
			sqlite3_bind_int64(s, i, v);
	}
	va_end(ap);
	assert_int_equal(sqlite3_step(s), SQLITE_DONE);
	sqlite3_finalize(s);
}

/* count() with one integer bound as ?1. */
static int64_t count_of(struct fx *f, const char *text, int64_t id)
{
	sqlite3_stmt *s;
	int64_t n;

	assert_int_equal(sqlite3_prepare_v2(store_db(f->st), text, -1, &s, NULL), SQLITE_OK);
	sqlite3_bind_int64(s, 1, id);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return n;
}

static struct retention *open_ticket_retention(struct fx *f, int64_t chunk)
{
	struct retention_config conf;
	struct retention *rt;

	retention_config_defaults(&conf);
	conf.events_ms = 0;
	conf.tickets_ms = 10 * 86400000LL;
	conf.chunk = chunk;
	assert_int_equal(retention_open(f->st, &conf, &rt), 0);
	return rt;
}

static int prune_tickets(struct retention *rt, struct fx *f, int64_t now_ms)
{
	int n;

	assert_int_equal(store_begin(f->st), 0);
	n = retention_prune_tickets(rt, now_ms);
	assert_true(n >= 0);
	assert_int_equal(store_commit(f->st), 0);
	return n;
}

/* A ticket for item, opened at day, resolved at once; its id. */
static int64_t resolved_ticket(struct fx *f, const char *item, int day)
{
	fx_at(f, "web01", "disk", item, CHECK_CRITICAL, DAY(day));
	fx_at(f, "web01", "disk", item, CHECK_OK, DAY(day) + 60000);
	return fx_ticket_id(f, "web01", "disk", item);
}

/* A technician closes ticket id at day, as the close action journals it. */
static void close_at(struct fx *f, int64_t id, int day)
{
	assert_int_equal(store_begin(f->st), 0);
	sql(f, "UPDATE tickets SET status = 'closed', resolved_at = coalesce(resolved_at, ?2)"
	       " WHERE id = ?1", 2, id, DAY(day));
	assert_int_equal(store_journal_add(f->st, id, DAY(day), "alice", "status",
					   "resolved", "closed", NULL), 0);
	assert_int_equal(store_commit(f->st), 0);
}

/* The helpdesk's rows a ticket may have: its fields, a mail, an external id. */
static void desk_rows(struct fx *f, int64_t id, const char *outbox_state)
{
	sql(f, "INSERT INTO hd_tickets(ticket_id, category, queue, level, impact,"
	       " urgency, priority) VALUES (?1, 'managed-it', 'support', 1, 'high',"
	       " 'high', 'P1')", 1, id);
	sqlite3_stmt *s;

	assert_int_equal(sqlite3_prepare_v2(store_db(f->st),
		"INSERT INTO hd_outbox(ticket_id, channel, target, body, idem_key,"
		" created, next_attempt, state) VALUES (?1, 'mail', 'it@acme.example',"
		" 'b', 'k' || ?1, ?2, ?2, ?3)", -1, &s, NULL), SQLITE_OK);
	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, DAY(1));
	sqlite3_bind_text(s, 3, outbox_state, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(s), SQLITE_DONE);
	sqlite3_finalize(s);
	sql(f, "INSERT INTO hd_external(webhook, ticket_id, external_id)"
	       " VALUES ('zammad', ?1, 'Z' || ?1)", 1, id);
}

static bool ticket_exists(struct fx *f, int64_t id)
{
	json_t *t;
	int r = store_ticket_get(f->st, id, 1, &t);

	if (r == 0)
		json_decref(t);
	assert_true(r == 0 || r == -ENOENT);
	return r == 0;
}

/* Rows of every table that names a ticket that is not there (0: none). */
static int64_t orphans(struct fx *f)
{
	static const char *const q[] = {
		"SELECT count(*) FROM events WHERE ticket_id NOT IN (SELECT id FROM tickets)",
		"SELECT count(*) FROM journal WHERE ticket_id NOT IN (SELECT id FROM tickets)",
		"SELECT count(*) FROM hd_tickets WHERE ticket_id NOT IN (SELECT id FROM tickets)"
		" OR merged_into NOT IN (SELECT id FROM tickets)",
		"SELECT count(*) FROM hd_outbox WHERE ticket_id NOT IN (SELECT id FROM tickets)",
		"SELECT count(*) FROM hd_external WHERE ticket_id NOT IN (SELECT id FROM tickets)",
		"SELECT count(*) FROM problems WHERE ticket_id NOT IN (SELECT id FROM tickets)",
		"SELECT count(*) FROM tickets WHERE parent_id NOT IN (SELECT id FROM tickets)",
	};
	int64_t n = 0;

	for (size_t i = 0; i < ARRAY_SIZE(q); i++)
		n += count(f, q[i]);
	return n;
}

static void test_old_closed_tickets_go_with_all_their_rows(void **state)
{
	struct fx *f = fx_open("lifecycle:\n  defaults: {reopen_within: 30d}\n");
	struct retention *rt = open_ticket_retention(f, 1000);
	int64_t gone, commented, resolved, open, pending, parent, child, orphan,
		boss, target, merged, newest, again;

	(void)state;
	gone = resolved_ticket(f, "/gone", 0);
	close_at(f, gone, 1);
	store_begin(f->st);
	desk_rows(f, gone, "sent");
	assert_int_equal(store_journal_add(f->st, gone, DAY(1), "alice", "comment",
					   NULL, "internal", "looked at it"), 0);
	store_commit(f->st);
	/* A comment on day 8 is a change: ten days from then it may go. */
	commented = resolved_ticket(f, "/commented", 0);
	close_at(f, commented, 1);
	store_begin(f->st);
	assert_int_equal(store_journal_add(f->st, commented, DAY(8), "bob", "comment",
					   NULL, "internal", "again?"), 0);
	store_commit(f->st);
	resolved = resolved_ticket(f, "/resolved", 0);
	fx_at(f, "web01", "disk", "/open", CHECK_CRITICAL, DAY(0));
	open = fx_ticket_id(f, "web01", "disk", "/open");
	pending = resolved_ticket(f, "/pending", 0);
	close_at(f, pending, 1);
	store_begin(f->st);
	desk_rows(f, pending, "pending");
	store_commit(f->st);
	/* A parent with a closed child; a closed child of an open parent. */
	parent = resolved_ticket(f, "/parent", 0);
	child = resolved_ticket(f, "/child", 0);
	fx_at(f, "web01", "disk", "/boss", CHECK_CRITICAL, DAY(0));
	boss = fx_ticket_id(f, "web01", "disk", "/boss");
	orphan = resolved_ticket(f, "/orphan", 0);
	sql(f, "UPDATE tickets SET parent_id = ?2 WHERE id = ?1", 2, child, parent);
	sql(f, "UPDATE tickets SET parent_id = ?2 WHERE id = ?1", 2, orphan, boss);
	close_at(f, parent, 1);
	close_at(f, child, 1);
	close_at(f, orphan, 1);
	/* A ticket merged into another. */
	target = resolved_ticket(f, "/target", 0);
	merged = resolved_ticket(f, "/merged", 0);
	close_at(f, target, 1);
	close_at(f, merged, 1);
	store_begin(f->st);
	desk_rows(f, target, "sent");
	desk_rows(f, merged, "sent");
	sql(f, "UPDATE hd_tickets SET merged_into = ?2 WHERE ticket_id = ?1", 2, merged, target);
	store_commit(f->st);
	newest = resolved_ticket(f, "/newest", 0);
	close_at(f, newest, 1);

	/* Day 12: what was last changed before day 2 may go. */
	assert_int_equal(prune_tickets(rt, f, DAY(12)), 3);
	assert_false(ticket_exists(f, gone));
	assert_false(ticket_exists(f, child));
	assert_false(ticket_exists(f, merged));
	for (size_t i = 0; i < 3; i++) {
		static const char *const table[] = { "events", "journal", "hd_outbox" };
		char q[128];

		snprintf(q, sizeof(q), "SELECT count(*) FROM %s WHERE ticket_id = ?1", table[i]);
		assert_int_equal(count_of(f, q, gone), 0);
	}
	assert_int_equal(count_of(f, "SELECT count(*) FROM hd_tickets WHERE ticket_id = ?1", gone), 0);
	assert_int_equal(count_of(f, "SELECT count(*) FROM hd_external WHERE ticket_id = ?1", gone), 0);
	/* The problem key stays, without its ticket. */
	assert_int_equal(count(f, "SELECT count(*) FROM problems WHERE item = '/gone'"
				  " AND ticket_id IS NULL AND prior_status IS NULL"), 1);
	assert_int_equal(orphans(f), 0);
	/* Recent, resolved, open, waiting to notify, related, newest: kept. */
	assert_true(ticket_exists(f, commented));
	assert_true(ticket_exists(f, resolved));
	assert_true(ticket_exists(f, open));
	assert_true(ticket_exists(f, pending));
	assert_int_equal(count_of(f, "SELECT count(*) FROM hd_outbox WHERE ticket_id = ?1", pending), 1);
	assert_true(ticket_exists(f, parent));
	assert_true(ticket_exists(f, orphan));
	assert_true(ticket_exists(f, target));
	assert_true(ticket_exists(f, newest));
	assert_string_equal(fx_status(f, open), "new");

	/* Their child and the ticket merged into them gone, the next pass
	 * takes the parent and the target. */
	assert_int_equal(prune_tickets(rt, f, DAY(12) + 60000), 2);
	assert_false(ticket_exists(f, parent));
	assert_false(ticket_exists(f, target));
	assert_true(ticket_exists(f, orphan));
	assert_true(ticket_exists(f, commented));
	assert_int_equal(orphans(f), 0);
	assert_int_equal(prune_tickets(rt, f, DAY(12) + 120000), 0);
	/* Ten days after the comment the commented ticket goes too. */
	assert_int_equal(prune_tickets(rt, f, DAY(18) + 1), 1);
	assert_false(ticket_exists(f, commented));

	/* The key's next problem opens a new ticket, never the deleted id. */
	fx_at(f, "web01", "disk", "/gone", CHECK_CRITICAL, DAY(13));
	again = fx_ticket_id(f, "web01", "disk", "/gone");
	assert_true(again > newest);
	assert_string_equal(fx_status(f, again), "new");
	assert_int_equal(fx_journal_count(f, again, "reopened"), 0);
	/* The same for a key whose ticket was resolved within reopen_within
	 * before it was closed and deleted: no reopen of a missing row. */
	fx_at(f, "web01", "disk", "/child", CHECK_CRITICAL, DAY(13));
	assert_true(fx_ticket_id(f, "web01", "disk", "/child") > again);
	retention_close(rt);
	fx_close(f);
}

static void test_a_tickets_many_events_go_in_chunks(void **state)
{
	struct fx *f = fx_open("");
	struct retention *rt = open_ticket_retention(f, 10);
	int64_t id;
	int journal;

	(void)state;
	for (int m = 0; m < 25; m++)
		fx_at(f, "web01", "disk", "/busy", CHECK_CRITICAL, DAY(0) + MIN(m) - T0);
	fx_at(f, "web01", "disk", "/busy", CHECK_OK, DAY(0) + MIN(30) - T0);
	id = fx_ticket_id(f, "web01", "disk", "/busy");
	close_at(f, id, 1);
	fx_at(f, "web01", "disk", "/later", CHECK_CRITICAL, DAY(2));
	journal = (int)count_of(f, "SELECT count(*) FROM journal WHERE ticket_id = ?1", id);
	assert_true(journal >= 3);

	/* Ten events a job; the ticket and its whole journal stay meanwhile. */
	assert_int_equal(prune_tickets(rt, f, DAY(12)), 10);
	assert_int_equal(count_of(f, "SELECT count(*) FROM events WHERE ticket_id = ?1", id), 16);
	assert_int_equal(count_of(f, "SELECT count(*) FROM journal WHERE ticket_id = ?1", id),
			 journal);
	assert_true(ticket_exists(f, id));
	assert_int_equal(prune_tickets(rt, f, DAY(12)), 10);
	assert_int_equal(count_of(f, "SELECT count(*) FROM events WHERE ticket_id = ?1", id), 6);
	/* The last six and the journal: the budget is spent, more may follow. */
	assert_int_equal(prune_tickets(rt, f, DAY(12)), 10);
	assert_false(ticket_exists(f, id));
	assert_int_equal(orphans(f), 0);
	assert_int_equal(prune_tickets(rt, f, DAY(12)), 0);
	assert_int_equal(count(f, "SELECT count(*) FROM events"), 1);
	retention_close(rt);
	fx_close(f);
}

static void test_ticket_retention_configuration(void **state)
{
	struct cfg *cfg;
	struct retention_config conf;

	(void)state;
	retention_config_defaults(&conf);
	assert_int_equal(conf.tickets_ms, 400 * 86400000LL);
	assert_int_equal(cfg_load_string("server.yaml",
		"retention:\n  tickets: 500ms\n", &cfg), 0);
	retention_parse(cfg, cfg_get(cfg, cfg->root, "retention"), &conf);
	assert_int_equal(cfg->nerrors, 1);
	assert_non_null(strstr(cfg->errors[0], "server.yaml:2:12: retention.tickets: must be"
					       " 0 (keep for ever) or between 1s and 3650d"));
	cfg_free(cfg);

	assert_int_equal(cfg_load_string("server.yaml",
		"retention:\n  tickets: forever\n", &cfg), 0);
	retention_parse(cfg, cfg_get(cfg, cfg->root, "retention"), &conf);
	assert_int_equal(cfg->nerrors, 1);
	assert_non_null(strstr(cfg->errors[0], "server.yaml:2:12: retention.tickets"));
	cfg_free(cfg);

	assert_int_equal(cfg_load_string("server.yaml",
		"retention:\n  tickets: 0\n", &cfg), 0);
	retention_parse(cfg, cfg_get(cfg, cfg->root, "retention"), &conf);
	assert_int_equal(cfg->nerrors, 0);
	assert_int_equal(conf.tickets_ms, 0);
	cfg_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_old_events_go_an_open_tickets_latest_stay),
		cmocka_unit_test(test_kept_events_go_once_their_ticket_is_resolved),
		cmocka_unit_test(test_pruning_goes_in_chunks),
		cmocka_unit_test(test_a_deleted_events_id_is_forgotten),
		cmocka_unit_test(test_configuration),
		cmocka_unit_test(test_old_closed_tickets_go_with_all_their_rows),
		cmocka_unit_test(test_a_tickets_many_events_go_in_chunks),
		cmocka_unit_test(test_ticket_retention_configuration),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
