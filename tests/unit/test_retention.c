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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_old_events_go_an_open_tickets_latest_stay),
		cmocka_unit_test(test_kept_events_go_once_their_ticket_is_resolved),
		cmocka_unit_test(test_pruning_goes_in_chunks),
		cmocka_unit_test(test_a_deleted_events_id_is_forgotten),
		cmocka_unit_test(test_configuration),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
