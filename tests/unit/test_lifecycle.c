/*
 * Lifecycle rules on a real SQLite file: confirm after N results or a
 * duration, flap detection and calm-down, reopening within and after the
 * window, resolve versus recovered; and the rule configuration itself.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lifecycle_fixture.h"
#include "../../server/flap.h"

#define W(c) CHECK_##c

/* ---- configuration ------------------------------------------------------- */

static struct cfg *parse(const char *yaml, struct lifecycle_config **lc)
{
	struct cfg *cfg;
	struct inventory *inv;

	assert_int_equal(cfg_load_string("rules.yaml", yaml, &cfg), 0);
	inventory_parse(cfg, cfg->root, &inv);
	lifecycle_config_parse(cfg, cfg->root, inv, lc);
	cfg_finish(cfg);
	inventory_free(inv);
	return cfg;
}

static bool has_error(const struct cfg *cfg, const char *text)
{
	for (size_t i = 0; i < cfg->nerrors; i++)
		if (strstr(cfg->errors[i], text))
			return true;
	return false;
}

static void test_defaults_keep_todays_behaviour(void **state)
{
	struct lifecycle_config *lc = lifecycle_config_default();

	(void)state;
	assert_int_equal(lc->defaults.confirm_after, 1);
	assert_int_equal(lc->defaults.confirm_for_ms, 0);
	assert_int_equal(lc->defaults.reopen_within_ms, 3600000);
	assert_int_equal(lc->defaults.on_recovery, RECOVERY_RESOLVE);
	assert_int_equal(lc->topology.attach_window_ms, 300000);
	assert_true(lifecycle_is_down_check(lc, "r1", "heartbeat", "alive"));
	assert_true(lifecycle_is_down_check(lc, "r1", "link", "eth0"));
	assert_false(lifecycle_is_down_check(lc, "r1", "disk", "/"));
	lifecycle_config_free(lc);
}

static void test_first_matching_rule_wins(void **state)
{
	struct lifecycle_config *lc;
	struct inventory *inv;
	struct cfg *cfg;

	(void)state;
	assert_int_equal(cfg_load_string("rules.yaml",
		"customers: {acme: {}}\n"
		"hosts:\n"
		"  web01: {customer: acme, tags: [prod, web]}\n"
		"  web02: {tags: [web]}\n"
		"lifecycle:\n"
		"  defaults: {reopen_within: 2h}\n"
		"  rules:\n"
		"    - match: {check: disk, host: \"web*\", tags: [prod]}\n"
		"      confirm_after: 3\n"
		"    - match: {check: disk}\n"
		"      confirm_for: 5m\n"
		"      on_recovery: review\n"
		"    - match: {customer: acme, item: \"/srv*\"}\n"
		"      flap_threshold: 0\n", &cfg), 0);
	inventory_parse(cfg, cfg->root, &inv);
	lifecycle_config_parse(cfg, cfg->root, inv, &lc);
	assert_int_equal(cfg_finish(cfg), 0);

	const struct host *web01 = inventory_host(inv, "web01");
	const struct host *web02 = inventory_host(inv, "web02");
	const struct lifecycle_params *p;

	p = lifecycle_params_for(lc, web01, "web01", "disk", "/");
	assert_int_equal(p->confirm_after, 3);
	assert_int_equal(p->reopen_within_ms, 7200000); /* inherited */
	assert_int_equal(p->on_recovery, RECOVERY_RESOLVE);
	/* web02 lacks the prod tag: the second rule */
	p = lifecycle_params_for(lc, web02, "web02", "disk", "/");
	assert_int_equal(p->confirm_after, 1);
	assert_int_equal(p->confirm_for_ms, 300000);
	assert_int_equal(p->on_recovery, RECOVERY_REVIEW);
	/* a host the inventory does not know never fits a tag or customer rule */
	p = lifecycle_params_for(lc, NULL, "web09", "heartbeat", "alive");
	assert_ptr_equal(p, &lc->defaults);
	p = lifecycle_params_for(lc, web01, "web01", "backup", "/srv/backup");
	assert_int_equal(p->flap_threshold, 0);
	lifecycle_config_free(lc);
	inventory_free(inv);
	cfg_free(cfg);
}

static void test_config_errors_name_the_place(void **state)
{
	struct lifecycle_config *lc;
	struct cfg *cfg;

	(void)state;
	cfg = parse("lifecycle:\n"
		    "  defaults:\n"
		    "    on_recovery: ignore\n"
		    "  rules:\n"
		    "    - match: {check: disk, customer: nobody}\n"
		    "      confirm_after: 0\n"
		    "    - match: {host: x}\n"
		    "      flap_threshold: 1\n"
		    "      reopen_within: forever\n"
		    "      colour: red\n"
		    "topology:\n"
		    "  down_checks: [{item: eth0}]\n"
		    "  attach_window: 2d\n"
		    "silences: {max_duration: 10s}\n", &lc);
	assert_true(has_error(cfg, "rules.yaml:3:18: lifecycle.defaults.on_recovery: 'ignore' is not one of: resolve, review"));
	assert_true(has_error(cfg, "rules.yaml:5:38: lifecycle.rules[0].match.customer: no customer 'nobody'"));
	assert_true(has_error(cfg, "rules.yaml:5:7: lifecycle.rules[0]: confirm_after and confirm_for are both 0"));
	assert_true(has_error(cfg, "rules.yaml:8:23: lifecycle.rules[1].flap_threshold: flap_threshold 1 would call every change flapping"));
	assert_true(has_error(cfg, "rules.yaml:9:22: lifecycle.rules[1].reopen_within: expected a duration"));
	assert_true(has_error(cfg, "rules.yaml:10:7: lifecycle.rules[1].colour: unknown key 'colour'"));
	assert_true(has_error(cfg, "topology.down_checks[0]: a down check needs check:"));
	assert_true(has_error(cfg, "topology.attach_window: attach_window must be at most 1d"));
	assert_true(has_error(cfg, "silences.max_duration: max_duration must be between 1m and 365d"));
	lifecycle_config_free(lc);
	cfg_free(cfg);
	cfg = parse("lifecycle: {max_clock_ahead: 2h}\n", &lc);
	assert_true(has_error(cfg, "rules.yaml:1:30: lifecycle.max_clock_ahead: max_clock_ahead must be at most 1h"));
	lifecycle_config_free(lc);
	cfg_free(cfg);

	/* not errors, but --check-config warns of them */
	cfg = parse("lifecycle:\n"
		    "  defaults: {confirm_after: 3}\n"
		    "  rules:\n"
		    "    - match: {check: disk}\n"
		    "      confirm_after: 5\n"
		    "    - match: {check: heart*}\n"
		    "      confirm_after: 2\n"
		    "    - match: {item: alive}\n"
		    "      confirm_after: 4\n"
		    "      confirm_for: 10m\n", &lc);
	assert_int_equal(cfg->nerrors, 0);
	{
		char **w = lifecycle_warnings(lc);

		assert_non_null(w[0]);
		assert_true(strstr(w[0], "lifecycle.rules[1]: confirm_after: 2 does not apply to host silence") == w[0]);
		assert_non_null(w[1]);
		assert_true(strstr(w[1], "lifecycle.defaults: confirm_after: 3") == w[1]);
		assert_null(w[2]);
		cfg_string_list_free(w);
	}
	lifecycle_config_free(lc);
	cfg_free(cfg);
}

static void test_flap_history_math(void **state)
{
	struct flap_history h = { 0 }, back;
	uint8_t buf[FLAP_HISTORY_MAX * 8];
	size_t len;

	(void)state;
	for (int i = 0; i < 6; i++)
		flap_record(&h, MIN(i * 5));
	/* six changes within an hour: flapping at 25 min */
	assert_int_equal(flap_count(&h, MIN(25), 3600000), 6);
	assert_true(flap_starts(&h, MIN(25), 3600000, 6));
	assert_false(flap_starts(&h, MIN(25), 3600000, 7));
	assert_false(flap_calmed(&h, MIN(25), 3600000, 6));
	/* calm below 3 in the window: when the change at 15 min leaves it */
	assert_int_equal(flap_calm_at(&h, 3600000, 6), MIN(75));
	assert_false(flap_calmed(&h, MIN(75) - 1, 3600000, 6));
	assert_true(flap_calmed(&h, MIN(75), 3600000, 6));
	/* the history stays bounded and survives its encoding */
	for (int i = 0; i < 100; i++)
		flap_record(&h, MIN(100 + i));
	assert_int_equal(h.n, FLAP_HISTORY_MAX);
	assert_int_equal(h.at[h.n - 1], MIN(199));
	len = flap_encode(&h, buf, sizeof(buf));
	assert_int_equal(flap_decode(buf, len, &back), 0);
	assert_memory_equal(h.at, back.at, h.n * sizeof(h.at[0]));
	assert_int_equal(flap_decode(buf, 7, &back), -EINVAL);
}

/* ---- confirm --------------------------------------------------------------- */

static const char *confirm_rules =
	"lifecycle:\n"
	"  rules:\n"
	"    - match: {check: disk}\n"
	"      confirm_after: 3\n"
	"    - match: {check: backup}\n"
	"      confirm_after: 0\n"
	"      confirm_for: 10m\n";

static void test_confirm_after_three_results(void **state)
{
	struct fx *f = fx_open(confirm_rules);
	struct dedup_stats s;
	json_t *t;
	int64_t id;

	(void)state;
	s = fx_at(f, "web01", "disk", "/srv", W(WARNING), MIN(1));
	assert_int_equal(s.pending, 1);
	assert_int_equal(s.opened, 0);
	s = fx_at(f, "web01", "disk", "/srv", W(CRITICAL), MIN(2));
	assert_int_equal(s.pending, 1);
	assert_int_equal(fx_count(f, STORE_TICKETS_ALL, true), 0);
	/* the count survives a restart */
	fx_restart(f);
	s = fx_at(f, "web01", "disk", "/srv", W(CRITICAL), MIN(3));
	assert_int_equal(s.opened, 1);
	id = fx_ticket_id(f, "web01", "disk", "/srv");
	t = fx_ticket(f, id);
	/* the ticket tells the whole story: since the first result, all three */
	assert_int_equal(fx_int(t, "occurrence_count"), 3);
	assert_string_equal(fx_str(t, "first_seen"), "2026-11-22T10:01:00.000Z");
	assert_int_equal(json_array_size(json_object_get(t, "occurrences")), 3);
	json_decref(t);
	assert_int_equal(fx_journal_count(f, id, "confirmed"), 1);
	assert_int_equal(fx_changes(f, TICKET_OPENED, id), 1);
	fx_close(f);
}

static void test_ok_before_confirmation_resets_the_count(void **state)
{
	struct fx *f = fx_open(confirm_rules);
	struct dedup_stats s;

	(void)state;
	fx_at(f, "web01", "disk", "/srv", W(WARNING), MIN(1));
	fx_at(f, "web01", "disk", "/srv", W(WARNING), MIN(2));
	s = fx_at(f, "web01", "disk", "/srv", W(OK), MIN(3));
	assert_int_equal(s.resolved + s.opened, 0);
	fx_at(f, "web01", "disk", "/srv", W(WARNING), MIN(4));
	s = fx_at(f, "web01", "disk", "/srv", W(WARNING), MIN(5));
	assert_int_equal(s.opened, 0);
	assert_int_equal(fx_count(f, STORE_TICKETS_ALL, true), 0);
	s = fx_at(f, "web01", "disk", "/srv", W(WARNING), MIN(6));
	assert_int_equal(s.opened, 1);
	fx_close(f);
}

static void test_confirm_for_a_duration(void **state)
{
	struct fx *f = fx_open(confirm_rules);
	struct dedup_stats s;
	int64_t id;

	(void)state;
	/* by a later event after ten minutes */
	s = fx_at(f, "nas", "backup", "/srv/backup", W(CRITICAL), MIN(0));
	assert_int_equal(s.pending, 1);
	s = fx_at(f, "nas", "backup", "/srv/backup", W(CRITICAL), MIN(9));
	assert_int_equal(s.opened, 0);
	s = fx_at(f, "nas", "backup", "/srv/backup", W(CRITICAL), MIN(10));
	assert_int_equal(s.opened, 1);

	/* or by the timer, when no further event comes (a single trap) */
	fx_at(f, "nas2", "backup", "/srv/backup", W(CRITICAL), MIN(20));
	assert_int_equal(fx_tick(f, MIN(29)), 0); /* nothing due yet */
	assert_int_equal(fx_ticket_id(f, "nas2", "backup", "/srv/backup"), 0);
	fx_restart(f); /* the timer's state is in the database */
	assert_int_equal(fx_tick(f, MIN(30)), 1);
	id = fx_ticket_id(f, "nas2", "backup", "/srv/backup");
	assert_true(id > 0);
	assert_string_equal(fx_status(f, id), "new");
	assert_int_equal(fx_changes(f, TICKET_OPENED, id), 1);
	/* due no more */
	assert_int_equal(fx_tick(f, MIN(40)), 0);
	fx_close(f);
}

/*
 * Timers run on the collector's clock: an agent an hour behind (or an
 * outbox replaying an hour-old stretch) does not confirm at once.
 */
static void test_confirm_for_counts_from_when_results_arrive(void **state)
{
	struct fx *f = fx_open(confirm_rules);
	struct dedup_stats s;
	int64_t id;
	json_t *t;

	(void)state;
	s = fx_event(f, "nas", "backup", "/srv/backup", W(CRITICAL), MIN(-60), MIN(0));
	assert_int_equal(s.opened, 0);
	assert_int_equal(s.pending, 1);
	s = fx_event(f, "nas", "backup", "/srv/backup", W(CRITICAL), MIN(-59), MIN(1));
	assert_int_equal(s.opened, 0);
	assert_int_equal(fx_tick(f, MIN(2)), 0); /* due at 10 min, not at once */
	assert_int_equal(fx_ticket_id(f, "nas", "backup", "/srv/backup"), 0);
	assert_int_equal(fx_tick(f, MIN(10)), 1);
	id = fx_ticket_id(f, "nas", "backup", "/srv/backup");
	assert_true(id > 0);
	/* the ticket still says when the agent saw the problem first */
	t = fx_ticket(f, id);
	assert_string_equal(fx_str(t, "first_seen"), "2026-11-22T09:00:00.000Z");
	json_decref(t);
	fx_close(f);
}

/* Flap windows too: an agent an hour behind does not calm down at once. */
static void test_flap_window_on_the_collectors_clock(void **state)
{
	struct fx *f = fx_open("lifecycle:\n"
			       "  defaults: {flap_threshold: 4, flap_window: 30m}\n");
	int64_t id;
	json_t *t;

	(void)state;
	for (int i = 0; i < 4; i++)
		fx_event(f, "web01", "http", "/", i % 2 ? W(OK) : W(CRITICAL),
			 MIN(i - 60), MIN(i));
	id = fx_ticket_id(f, "web01", "http", "/");
	t = fx_ticket(f, id);
	assert_true(json_is_true(json_object_get(t, "flapping")));
	json_decref(t);
	fx_tick(f, MIN(5));
	t = fx_ticket(f, id);
	assert_true(json_is_true(json_object_get(t, "flapping")));
	json_decref(t);
	fx_close(f);
}

/* A clock a year ahead: its ticket still resolves with the next ok. */
static void test_a_clock_far_ahead_is_capped(void **state)
{
	struct fx *f = fx_open("");
	const int64_t year = 365LL * 24 * 60 * 60000;
	struct dedup_stats s;
	sqlite3_stmt *q;
	json_t *t;
	int64_t id;

	(void)state;
	fx_event(f, "web01", "disk", "/", W(CRITICAL), MIN(0) + year, MIN(0));
	id = fx_ticket_id(f, "web01", "disk", "/");
	assert_true(id > 0);
	t = fx_ticket(f, id);
	assert_string_equal(fx_str(t, "last_seen"), "2026-11-22T10:00:00.000Z");
	json_decref(t);
	/* the clock was put right: a correctly dated ok is not late */
	s = fx_at(f, "web01", "disk", "/", W(OK), MIN(1));
	assert_int_equal(s.resolved, 1);
	assert_string_equal(fx_status(f, id), "resolved");
	/* the stored event keeps the agent's own time, for the record */
	assert_int_equal(sqlite3_prepare_v2(store_db(f->st),
					    "SELECT max(observed_at) FROM events",
					    -1, &q, NULL), SQLITE_OK);
	assert_int_equal(sqlite3_step(q), SQLITE_ROW);
	assert_int_equal(sqlite3_column_int64(q, 0), MIN(0) + year);
	sqlite3_finalize(q);
	fx_close(f);
}

/* max_clock_ahead keeps a slightly fast agent's times, and caps the rest. */
static void test_max_clock_ahead(void **state)
{
	struct fx *f = fx_open("lifecycle: {max_clock_ahead: 5m}\n");
	const int64_t year = 365LL * 24 * 60 * 60000;
	struct dedup_stats s;
	json_t *t;
	int64_t id;

	(void)state;
	fx_event(f, "web01", "disk", "/", W(CRITICAL), MIN(2), MIN(0));
	id = fx_ticket_id(f, "web01", "disk", "/");
	t = fx_ticket(f, id);
	assert_string_equal(fx_str(t, "last_seen"), "2026-11-22T10:02:00.000Z");
	json_decref(t);
	fx_event(f, "web01", "disk", "/", W(CRITICAL), MIN(1) + year, MIN(1));
	t = fx_ticket(f, id);
	assert_string_equal(fx_str(t, "last_seen"), "2026-11-22T10:06:00.000Z");
	json_decref(t);
	/* a corrected clock is late until it passes received + 5 min */
	s = fx_at(f, "web01", "disk", "/", W(OK), MIN(5));
	assert_int_equal(s.resolved, 0);
	s = fx_at(f, "web01", "disk", "/", W(OK), MIN(6));
	assert_int_equal(s.resolved, 1);
	fx_close(f);
}

/* ---- flapping -------------------------------------------------------------- */

static const char *flap_rules =
	"lifecycle:\n"
	"  defaults: {flap_threshold: 4, flap_window: 30m}\n";

static void test_flapping_is_one_ticket_until_it_calms_down(void **state)
{
	struct fx *f = fx_open(flap_rules);
	struct dedup_stats s;
	int64_t id;
	json_t *t;

	(void)state;
	fx_at(f, "web01", "http", "/", W(CRITICAL), MIN(0)); /* change 1 */
	id = fx_ticket_id(f, "web01", "http", "/");
	fx_at(f, "web01", "http", "/", W(OK), MIN(1));	      /* 2: resolved */
	assert_string_equal(fx_status(f, id), "resolved");
	fx_at(f, "web01", "http", "/", W(CRITICAL), MIN(2)); /* 3: reopened */
	fx_at(f, "web01", "http", "/", W(OK), MIN(3));	      /* 4: flapping */
	t = fx_ticket(f, id);
	assert_true(json_is_true(json_object_get(t, "flapping")));
	/* flapping: the ok no longer resolves it */
	assert_string_equal(fx_str(t, "status"), "new");
	json_decref(t);
	assert_int_equal(fx_journal_count(f, id, "flapping"), 1);
	assert_int_equal(fx_counter(f, DEDUP_FLAP_STARTED), 1);

	/* more changes: the same ticket, no new one, no journal line each */
	for (int m = 4; m < 10; m++)
		s = fx_at(f, "web01", "http", "/", m % 2 ? W(OK) : W(CRITICAL),
			  MIN(m));
	assert_int_equal(s.opened + s.reopened, 0);
	assert_int_equal(fx_count(f, STORE_TICKETS_ALL, true), 1);
	assert_int_equal(fx_journal_count(f, id, "state"), 0);
	assert_int_equal(fx_journal_count(f, id, "flapping"), 1);

	/* quiet (ok) since 9 min: below 2 changes in 30 min at 38 min */
	assert_int_equal(fx_tick(f, MIN(37)), 0);
	assert_string_equal(fx_status(f, id), "new");
	assert_int_equal(fx_tick(f, MIN(38)), 1);
	t = fx_ticket(f, id);
	assert_false(json_is_true(json_object_get(t, "flapping")));
	assert_string_equal(fx_str(t, "status"), "resolved");
	json_decref(t);
	assert_int_equal(fx_journal_count(f, id, "flapping"), 2);
	assert_int_equal(fx_counter(f, DEDUP_FLAP_CALMED), 1);
	/* announced: flapping on and off, with the flag for the notifiers */
	bool on = false, off = false;
	for (size_t i = 0; i < f->nchanges; i++) {
		if (strcmp(f->changes[i].field, "flapping") != 0)
			continue;
		on |= f->changes[i].flapping;
		off |= !f->changes[i].flapping;
	}
	assert_true(on && off);
	fx_close(f);
}

static void test_flapping_calms_down_while_still_failing(void **state)
{
	struct fx *f = fx_open(flap_rules);
	int64_t id;

	(void)state;
	for (int m = 0; m < 4; m++)
		fx_at(f, "web01", "http", "/", m % 2 ? W(OK) : W(CRITICAL), MIN(m));
	fx_at(f, "web01", "http", "/", W(CRITICAL), MIN(4));
	id = fx_ticket_id(f, "web01", "http", "/");
	assert_int_equal(fx_journal_count(f, id, "flapping"), 1);
	/* a later problem report after the calm time clears the flag */
	fx_at(f, "web01", "http", "/", W(CRITICAL), MIN(40));
	json_t *t = fx_ticket(f, id);
	assert_false(json_is_true(json_object_get(t, "flapping")));
	assert_string_equal(fx_str(t, "status"), "new"); /* still a problem */
	json_decref(t);
	fx_close(f);
}

/* ---- reopen and recovered ----------------------------------------------- */

static void test_reopen_within_and_after_the_window(void **state)
{
	struct fx *f = fx_open("lifecycle: {defaults: {reopen_within: 30m}}\n");
	struct dedup_stats s;
	int64_t id;

	(void)state;
	fx_at(f, "web01", "disk", "/", W(CRITICAL), MIN(0));
	id = fx_ticket_id(f, "web01", "disk", "/");
	fx_at(f, "web01", "disk", "/", W(OK), MIN(5));
	s = fx_at(f, "web01", "disk", "/", W(WARNING), MIN(35)); /* 30 min later */
	assert_int_equal(s.reopened, 1);
	assert_int_equal(fx_ticket_id(f, "web01", "disk", "/"), id);
	assert_int_equal(fx_journal_count(f, id, "reopened"), 1);
	assert_int_equal(fx_changes(f, TICKET_REOPENED, id), 1);
	assert_int_equal(fx_counter(f, DEDUP_REOPENED), 1);

	fx_at(f, "web01", "disk", "/", W(OK), MIN(40));
	s = fx_at(f, "web01", "disk", "/", W(WARNING), MIN(71)); /* 31 min later */
	assert_int_equal(s.reopened, 0);
	assert_int_equal(s.opened, 1);
	assert_true(fx_ticket_id(f, "web01", "disk", "/") > id);
	assert_string_equal(fx_status(f, id), "resolved");
	fx_close(f);
}

static void test_recovered_awaits_review_and_reopens_as_it_was(void **state)
{
	struct fx *f = fx_open("lifecycle:\n"
			       "  rules:\n"
			       "    - match: {check: raid}\n"
			       "      on_recovery: review\n");
	struct dedup_stats s;
	int64_t id, disk;
	json_t *t;

	(void)state;
	fx_at(f, "db01", "raid", "md0", W(CRITICAL), MIN(0));
	fx_at(f, "db01", "disk", "/", W(CRITICAL), MIN(0));
	id = fx_ticket_id(f, "db01", "raid", "md0");
	disk = fx_ticket_id(f, "db01", "disk", "/");
	s = fx_at(f, "db01", "raid", "md0", W(OK), MIN(10));
	assert_int_equal(s.recovered, 1);
	assert_int_equal(s.resolved, 0);
	s = fx_at(f, "db01", "disk", "/", W(OK), MIN(10));
	assert_int_equal(s.resolved, 1);
	t = fx_ticket(f, id);
	assert_string_equal(fx_str(t, "status"), "recovered");
	assert_string_equal(fx_str(t, "state"), "ok");
	assert_true(json_is_null(json_object_get(t, "resolved_at")));
	json_decref(t);
	/* recovered is still open: listed, and announced as such */
	assert_int_equal(fx_count(f, STORE_TICKETS_OPEN, false), 1);
	assert_int_equal(fx_changes(f, TICKET_RECOVERED, id), 1);
	assert_string_equal(fx_status(f, disk), "resolved");
	assert_int_equal(fx_counter(f, DEDUP_RECOVERED), 1);

	/*
	 * It comes back in the status it had before it recovered (new here;
	 * tests/integration/test_lifecycle_technician.py acknowledges one
	 * through the real actions API and sees it come back acknowledged).
	 */
	s = fx_at(f, "db01", "raid", "md0", W(CRITICAL), MIN(20));
	assert_int_equal(s.reopened, 1);
	assert_string_equal(fx_status(f, id), "new");
	/* routine ok results after the recovery change nothing */
	fx_at(f, "db01", "raid", "md0", W(OK), MIN(30));
	s = fx_at(f, "db01", "raid", "md0", W(OK), MIN(31));
	assert_int_equal(s.recovered + s.resolved, 0);
	assert_int_equal(fx_changes(f, TICKET_RECOVERED, id), 2);
	fx_close(f);
}

static void test_resolved_while_failing_is_no_recovery(void **state)
{
	struct fx *f = fx_open("");
	struct dedup_stats s;
	int64_t id;

	(void)state;
	fx_at(f, "web01", "disk", "/", W(CRITICAL), MIN(0));
	id = fx_ticket_id(f, "web01", "disk", "/");
	/* a technician resolves it, but the check still fails */
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(store_ticket_resolve(f->st, id, MIN(1)), 0);
	assert_int_equal(store_commit(f->st), 0);
	s = fx_at(f, "web01", "disk", "/", W(CRITICAL), MIN(2));
	assert_int_equal(s.opened, 1);
	assert_int_equal(s.reopened, 0);
	assert_true(fx_ticket_id(f, "web01", "disk", "/") > id);

	/* resolved by hand, then really ok, then back: that one reopens */
	id = fx_ticket_id(f, "web01", "disk", "/");
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(store_ticket_resolve(f->st, id, MIN(3)), 0);
	assert_int_equal(store_commit(f->st), 0);
	fx_at(f, "web01", "disk", "/", W(OK), MIN(4));
	s = fx_at(f, "web01", "disk", "/", W(CRITICAL), MIN(5));
	assert_int_equal(s.reopened, 1);
	assert_int_equal(fx_ticket_id(f, "web01", "disk", "/"), id);
	assert_string_equal(fx_status(f, id), "new");
	fx_close(f);
}

static void test_late_reports_change_no_state(void **state)
{
	struct fx *f = fx_open(flap_rules);
	struct dedup_stats s;
	int64_t id;

	(void)state;
	fx_at(f, "web01", "disk", "/", W(CRITICAL), MIN(10));
	id = fx_ticket_id(f, "web01", "disk", "/");
	fx_at(f, "web01", "disk", "/", W(OK), MIN(12));
	/* a report observed before the recovery arrives late (an outbox) */
	s = fx_event(f, "web01", "disk", "/", W(CRITICAL), MIN(11), MIN(13));
	assert_int_equal(s.accepted, 1);
	assert_int_equal(s.opened + s.reopened, 0);
	assert_string_equal(fx_status(f, id), "resolved");
	/* and a late ok does not resolve a newer problem */
	fx_at(f, "web01", "disk", "/", W(CRITICAL), MIN(20));
	s = fx_event(f, "web01", "disk", "/", W(OK), MIN(15), MIN(21));
	assert_int_equal(s.resolved, 0);
	assert_string_equal(fx_status(f, id), "new");
	fx_close(f);
}

static void test_flapping_calms_into_review(void **state)
{
	struct fx *f = fx_open("lifecycle:\n"
			       "  defaults: {flap_threshold: 2, flap_window: 10m, on_recovery: review}\n");
	int64_t id;

	(void)state;
	fx_at(f, "web01", "http", "/", W(CRITICAL), MIN(0));
	fx_at(f, "web01", "http", "/", W(OK), MIN(1)); /* two changes: flapping */
	id = fx_ticket_id(f, "web01", "http", "/");
	assert_string_equal(fx_status(f, id), "new");
	/* calm (no change in the window) at 11 min, while ok: recovered */
	assert_int_equal(fx_tick(f, MIN(11)), 1);
	assert_string_equal(fx_status(f, id), "recovered");
	assert_int_equal(fx_changes(f, TICKET_RECOVERED, id), 1);
	fx_close(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_defaults_keep_todays_behaviour),
		cmocka_unit_test(test_first_matching_rule_wins),
		cmocka_unit_test(test_config_errors_name_the_place),
		cmocka_unit_test(test_flap_history_math),
		cmocka_unit_test(test_confirm_after_three_results),
		cmocka_unit_test(test_ok_before_confirmation_resets_the_count),
		cmocka_unit_test(test_confirm_for_a_duration),
		cmocka_unit_test(test_confirm_for_counts_from_when_results_arrive),
		cmocka_unit_test(test_flap_window_on_the_collectors_clock),
		cmocka_unit_test(test_a_clock_far_ahead_is_capped),
		cmocka_unit_test(test_max_clock_ahead),
		cmocka_unit_test(test_flapping_is_one_ticket_until_it_calms_down),
		cmocka_unit_test(test_flapping_calms_down_while_still_failing),
		cmocka_unit_test(test_reopen_within_and_after_the_window),
		cmocka_unit_test(test_recovered_awaits_review_and_reopens_as_it_was),
		cmocka_unit_test(test_resolved_while_failing_is_no_recovery),
		cmocka_unit_test(test_late_reports_change_no_state),
		cmocka_unit_test(test_flapping_calms_into_review),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
