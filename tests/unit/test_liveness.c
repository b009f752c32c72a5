/*
 * Silence detection on a real SQLite file, with the clock in the test's
 * hand: when a host counts as silent, that it gets one ticket and not one
 * per round, that its next heartbeat resolves it with the gap, and the
 * grace after a start.  The timer thread is left idle (check_every is
 * long); rounds run through liveness_check_now() at chosen times.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/config.h"
#include "../../common/util.h"
#include "../../server/liveness.h"
#include "../../server/store.h"
#include "../../server/writer.h"
#include "tmpdb.h"

#define T0 1795341600000LL /* 2026-11-22 10:00 UTC */
#define MIN (60 * 1000LL)

struct fixture {
	char path[64];
	struct store *st;
	struct writer *w;
	struct liveness *lv;
	struct liveness_config conf;
};

static void start(struct fixture *f, int64_t start_ms)
{
	assert_int_equal(store_open(f->path, &f->st), 0);
	assert_int_equal(writer_start(f->st, 64, 16, &f->w), 0);
	assert_int_equal(liveness_start(f->st, f->w, &f->conf, start_ms, &f->lv), 0);
}

static void stop(struct fixture *f)
{
	liveness_stop(f->lv);
	writer_stop(f->w);
	store_close(f->st);
	f->lv = NULL;
	f->w = NULL;
	f->st = NULL;
}

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));

	if (tmpdb_make(f->path, sizeof(f->path), "live") < 0)
		return -1;
	liveness_config_defaults(&f->conf);
	f->conf.check_every_ms = 600 * 1000;
	start(f, T0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	stop(f);
	tmpdb_remove(f->path);
	free(f);
	return 0;
}

struct beat {
	struct liveness *lv;
	char body[1024];
	struct dedup_stats stats;
};

static int beat_apply(struct store *st, void *arg)
{
	struct beat *b = arg;
	struct ingest_batch *batch;
	char err[256];
	int64_t now;
	int r;

	assert_int_equal(ingest_parse(b->body, strlen(b->body), 10, &batch, err,
				      sizeof(err)),
			 0);
	now = batch->events[0].observed_ms;
	r = liveness_ingest(b->lv, st, batch, now, &b->stats);
	ingest_batch_free(batch);
	return r;
}

/* A heartbeat of host sent (and received) at ms; interval_s 0: none said. */
static struct dedup_stats heartbeat(struct fixture *f, const char *host,
				    int64_t ms, int interval_s)
{
	struct beat b = { .lv = f->lv };
	char at[TIME_RFC3339_LEN], id[UUID_STR_LEN], metrics[64] = "{}";

	time_format_rfc3339(ms, at);
	assert_int_equal(uuid_generate(id), 0);
	if (interval_s > 0)
		snprintf(metrics, sizeof(metrics), "{\"interval_s\":%d}", interval_s);
	snprintf(b.body, sizeof(b.body),
		 "{\"host\":\"%s\",\"events\":[{\"id\":\"%s\",\"check\":\"heartbeat\","
		 "\"item\":\"alive\",\"state\":\"ok\",\"summary\":\"tocsin-agent alive\","
		 "\"metrics\":%s,\"observed_at\":\"%s\"}]}",
		 host, id, metrics, at);
	assert_int_equal(writer_run(f->w, beat_apply, &b), 0);
	return b.stats;
}

static json_t *tickets(struct fixture *f)
{
	json_t *list;

	store_lock(f->st);
	assert_int_equal(store_tickets_list(f->st, STORE_TICKETS_ALL, 100, 0, &list), 0);
	store_unlock(f->st);
	return list;
}

static void test_silent_after_missed_intervals_once(void **state)
{
	struct fixture *f = *state;
	json_t *list, *t;

	heartbeat(f, "web01", T0, 60);
	heartbeat(f, "db01", T0, 60);
	heartbeat(f, "db01", T0 + 2 * MIN, 60);
	assert_int_equal(liveness_check_now(f->lv, T0 + 3 * MIN - 1), 0);
	assert_int_equal(liveness_check_now(f->lv, T0 + 3 * MIN), 1);
	/* the next rounds add nothing: one ticket, one occurrence */
	assert_int_equal(liveness_check_now(f->lv, T0 + 4 * MIN), 0);
	assert_int_equal(liveness_check_now(f->lv, T0 + 4 * MIN + 30000), 0);
	list = tickets(f);
	assert_int_equal(json_array_size(list), 1);
	t = json_array_get(list, 0);
	assert_string_equal(json_string_value(json_object_get(t, "host")), "web01");
	assert_string_equal(json_string_value(json_object_get(t, "check")), "heartbeat");
	assert_string_equal(json_string_value(json_object_get(t, "item")), "alive");
	assert_string_equal(json_string_value(json_object_get(t, "state")), "critical");
	assert_string_equal(json_string_value(json_object_get(t, "summary")),
			    "web01 silent for 3 min (last heartbeat 2026-11-22 10:00 UTC, expected every 60 s)");
	assert_int_equal(json_integer_value(json_object_get(t, "occurrence_count")), 1);
	json_decref(list);
}

static void test_next_heartbeat_resolves_with_the_gap(void **state)
{
	struct fixture *f = *state;
	struct dedup_stats stats;
	json_t *ticket, *journal, *last;
	const char *text;

	heartbeat(f, "web01", T0, 60);
	assert_int_equal(liveness_check_now(f->lv, T0 + 3 * MIN), 1);
	stats = heartbeat(f, "web01", T0 + 7 * MIN, 60);
	assert_int_equal(stats.resolved, 1);
	store_lock(f->st);
	assert_int_equal(store_ticket_get(f->st, 1, 10, &ticket), 0);
	store_unlock(f->st);
	assert_string_equal(json_string_value(json_object_get(ticket, "status")), "resolved");
	journal = json_object_get(ticket, "journal");
	last = json_array_get(journal, json_array_size(journal) - 1);
	assert_string_equal(json_string_value(json_object_get(last, "action")), "resolved");
	text = json_string_value(json_object_get(last, "text"));
	assert_string_equal(text, "tocsin-agent alive; back after 7 min of silence");
	json_decref(ticket);
	/* alive again: silent again only after three more intervals */
	assert_int_equal(liveness_check_now(f->lv, T0 + 9 * MIN), 0);
	assert_int_equal(liveness_check_now(f->lv, T0 + 10 * MIN), 1);
}

static void test_heartbeat_without_interval_uses_the_default(void **state)
{
	struct fixture *f = *state;

	f->conf.default_interval_ms = 10 * MIN;
	liveness_configure(f->lv, &f->conf);
	heartbeat(f, "old-agent", T0, 0);
	assert_int_equal(liveness_check_now(f->lv, T0 + 29 * MIN), 0);
	assert_int_equal(liveness_check_now(f->lv, T0 + 30 * MIN), 1);
}

static void test_no_storm_after_the_collector_was_down(void **state)
{
	struct fixture *f = *state;
	char host[16];

	for (int i = 0; i < 50; i++) {
		snprintf(host, sizeof(host), "h%02d", i);
		heartbeat(f, host, T0, 60);
	}
	/* down for an hour, then started again */
	stop(f);
	start(f, T0 + 60 * MIN);
	assert_int_equal(liveness_check_now(f->lv, T0 + 61 * MIN), 0);
	for (int i = 0; i < 40; i++) {
		snprintf(host, sizeof(host), "h%02d", i);
		heartbeat(f, host, T0 + 62 * MIN, 60);
	}
	assert_int_equal(liveness_check_now(f->lv, T0 + 63 * MIN - 1), 0);
	/* the ten that never came back, and only them */
	assert_int_equal(liveness_check_now(f->lv, T0 + 63 * MIN), 10);
	assert_int_equal(liveness_check_now(f->lv, T0 + 64 * MIN), 0);
}

static void test_silence_settings_are_checked(void **state)
{
	struct liveness_config conf;
	struct cfg *cfg;

	(void)state;
	liveness_config_defaults(&conf);
	assert_int_equal(conf.missed_heartbeats, 3);
	assert_int_equal(cfg_load_string("s.yaml",
					 "liveness:\n  missed_heartbeats: 0\n"
					 "  default_interval: 500ms\n  check_every: 1h\n",
					 &cfg),
			 0);
	liveness_parse(cfg, cfg_get(cfg, cfg->root, "liveness"), &conf);
	assert_int_equal(cfg->nerrors, 3);
	assert_non_null(strstr(cfg->errors[0], "s.yaml:2:22: liveness.missed_heartbeats"));
	assert_non_null(strstr(cfg->errors[1], "default_interval must be between 1s and 1d"));
	assert_non_null(strstr(cfg->errors[2], "check_every must be between 100ms and 10m"));
	assert_int_equal(conf.missed_heartbeats, 3);
	cfg_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_silent_after_missed_intervals_once, setup, teardown),
		cmocka_unit_test_setup_teardown(test_next_heartbeat_resolves_with_the_gap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_heartbeat_without_interval_uses_the_default, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_storm_after_the_collector_was_down, setup, teardown),
		cmocka_unit_test(test_silence_settings_are_checked),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
