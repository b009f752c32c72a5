/*
 * SLA clocks from status changes on a business calendar: weekends,
 * pauses across nights and outside hours, reopening, breaches, and the
 * property that a running clock's due date does not drift as time passes.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/config.h"
#include "../../common/util.h"
#include "../../server/calendar.h"
#include "../../server/sla.h"

#define H (3600 * 1000LL)

static int64_t at(const char *rfc3339)
{
	int64_t ms;

	assert_int_equal(time_parse_rfc3339(rfc3339, &ms), 0);
	return ms;
}

static struct calendar *maintenance(void)
{
	struct calendar *c = NULL;
	struct cfg *cfg;

	assert_int_equal(cfg_load_string("t.yaml",
					 "calendar:\n  timezone: Europe/Berlin\n"
					 "  hours:\n    mon-fri: 08:00-17:00\n",
					 &cfg),
			 0);
	assert_int_equal(calendar_parse(cfg, cfg_get(cfg, cfg->root, "calendar"), &c), 0);
	cfg_free(cfg);
	return c;
}

static void test_response_across_a_weekend(void **state)
{
	struct calendar *c = maintenance();
	int64_t opened = at("2026-11-20T16:00:00+01:00"); /* Friday */
	struct sla_change ack[] = { { at("2026-11-23T08:30:00+01:00"), STATUS_ACKNOWLEDGED } };
	struct sla_state s;

	(void)state;
	/* On Saturday: one business hour used, due Monday 09:00. */
	sla_compute(c, opened, NULL, 0, at("2026-11-21T12:00:00+01:00"), 2 * H, -1, 0.75, &s);
	assert_true(s.response.running);
	assert_int_equal(s.response.elapsed_ms, 1 * H);
	assert_int_equal(s.response.due_ms, at("2026-11-23T09:00:00+01:00"));
	/* 75% of two hours: Monday 08:30. */
	assert_int_equal(s.response.warn_ms, at("2026-11-23T08:30:00+01:00"));
	assert_int_equal(s.resolution.target_ms, -1);
	/* Acknowledged Monday 08:30: stopped at 1.5h, met. */
	sla_compute(c, opened, ack, 1, at("2026-11-25T12:00:00+01:00"), 2 * H, -1, 0.75, &s);
	assert_false(s.response.running);
	assert_int_equal(s.response.done_ms, ack[0].at_ms);
	assert_int_equal(s.response.elapsed_ms, 90 * 60 * 1000);
	assert_false(s.response.breached);
	calendar_free(c);
}

static void test_pause_across_the_night(void **state)
{
	struct calendar *c = maintenance();
	int64_t opened = at("2026-11-23T08:00:00+01:00"); /* Monday */
	struct sla_change ch[] = {
		{ at("2026-11-23T08:15:00+01:00"), STATUS_ACKNOWLEDGED },
		{ at("2026-11-23T10:00:00+01:00"), STATUS_WAITING },
		{ at("2026-11-24T10:00:00+01:00"), STATUS_IN_PROGRESS },
	};
	struct sla_state s;

	(void)state;
	sla_compute(c, opened, ch, 3, at("2026-11-24T12:00:00+01:00"), 1 * H, 9 * H, 0.75, &s);
	/* Running 08:00-10:00 Monday and 10:00-12:00 Tuesday. */
	assert_int_equal(s.resolution.elapsed_ms, 4 * H);
	/* Paused Monday 10:00-17:00 and Tuesday 08:00-10:00: the night is free. */
	assert_int_equal(s.resolution.paused_ms, 9 * H);
	assert_int_equal(s.resolution.due_ms, at("2026-11-24T17:00:00+01:00"));
	assert_true(s.resolution.running);
	assert_false(s.resolution.breached);
	/* While paused, nobody can say when it will be due. */
	sla_compute(c, opened, ch, 2, at("2026-11-23T15:00:00+01:00"), 1 * H, 9 * H, 0.75, &s);
	assert_true(s.resolution.paused);
	assert_int_equal(s.resolution.due_ms, -1);
	assert_int_equal(s.resolution.elapsed_ms, 2 * H);
	calendar_free(c);
}

static void test_pause_outside_hours_costs_nothing(void **state)
{
	struct calendar *c = maintenance();
	int64_t opened = at("2026-11-23T16:00:00+01:00");
	struct sla_change ch[] = {
		{ at("2026-11-23T18:00:00+01:00"), STATUS_WAITING },
		{ at("2026-11-24T07:00:00+01:00"), STATUS_IN_PROGRESS },
	};
	struct sla_state s;

	(void)state;
	sla_compute(c, opened, ch, 2, at("2026-11-24T09:00:00+01:00"), -1, 4 * H, 0.75, &s);
	assert_int_equal(s.resolution.paused_ms, 0);
	assert_int_equal(s.resolution.elapsed_ms, 2 * H);
	assert_int_equal(s.resolution.due_ms, at("2026-11-24T11:00:00+01:00"));
	calendar_free(c);
}

static void test_reopen_counts_the_resolved_time_as_a_pause(void **state)
{
	struct calendar *c = maintenance();
	int64_t opened = at("2026-11-23T08:00:00+01:00");
	struct sla_change ch[] = {
		{ at("2026-11-23T12:00:00+01:00"), STATUS_RESOLVED },
		{ at("2026-11-23T14:00:00+01:00"), STATUS_IN_PROGRESS },
	};
	struct sla_state s;

	(void)state;
	/* Resolved and still so: stopped, met. */
	sla_compute(c, opened, ch, 1, at("2026-11-23T16:00:00+01:00"), -1, 8 * H, 0.75, &s);
	assert_int_equal(s.resolution.done_ms, ch[0].at_ms);
	assert_int_equal(s.resolution.elapsed_ms, 4 * H);
	/* Reopened: 4h + 2h running, 2h paused; due 16:00 on the same day. */
	sla_compute(c, opened, ch, 2, at("2026-11-23T16:00:00+01:00"), -1, 8 * H, 0.75, &s);
	assert_int_equal(s.resolution.done_ms, -1);
	assert_int_equal(s.resolution.elapsed_ms, 6 * H);
	assert_int_equal(s.resolution.paused_ms, 2 * H);
	assert_int_equal(s.resolution.due_ms, at("2026-11-24T09:00:00+01:00"));
	calendar_free(c);
}

/*
 * The problem went away by itself and came back: recovered pauses both
 * clocks, and the response clock runs on after the reopen into new, as
 * nobody has responded yet; a person's acknowledgement ends it for good,
 * whatever follows.
 */
static void test_recovered_then_reopened_pauses_the_response_clock(void **state)
{
	struct calendar *c = maintenance();
	int64_t opened = at("2026-11-23T08:00:00+01:00");
	struct sla_change ch[] = {
		{ at("2026-11-23T09:00:00+01:00"), STATUS_RECOVERED },
		{ at("2026-11-23T11:00:00+01:00"), STATUS_NEW },
		{ at("2026-11-23T12:00:00+01:00"), STATUS_ACKNOWLEDGED },
		{ at("2026-11-23T13:00:00+01:00"), STATUS_RECOVERED },
		{ at("2026-11-23T14:00:00+01:00"), STATUS_NEW },
	};
	struct sla_state s;

	(void)state;
	/* While recovered: paused, not met. */
	sla_compute(c, opened, ch, 1, at("2026-11-23T10:00:00+01:00"), 4 * H, 8 * H, 0.75, &s);
	assert_true(s.response.paused && !s.response.running);
	assert_int_equal(s.response.done_ms, -1);
	assert_int_equal(s.response.elapsed_ms, 1 * H);
	assert_int_equal(s.resolution.elapsed_ms, 1 * H);
	/* Back to new: 1h + 30 min used, the 2h recovered a pause; due 14:00. */
	sla_compute(c, opened, ch, 2, at("2026-11-23T11:30:00+01:00"), 4 * H, 8 * H, 0.75, &s);
	assert_true(s.response.running);
	assert_int_equal(s.response.elapsed_ms, 90 * 60 * 1000LL);
	assert_int_equal(s.response.paused_ms, 2 * H);
	assert_int_equal(s.response.due_ms, at("2026-11-23T14:00:00+01:00"));
	/* Acknowledged at 12:00: met for good, though it recovers and comes back. */
	sla_compute(c, opened, ch, 5, at("2026-11-23T15:00:00+01:00"), 4 * H, 8 * H, 0.75, &s);
	assert_int_equal(s.response.done_ms, ch[2].at_ms);
	assert_int_equal(s.response.elapsed_ms, 2 * H);
	assert_false(s.response.breached);
	/* The resolution clock: 8-9, 11-13, 14-15 ran; 9-11 and 13-14 paused. */
	assert_int_equal(s.resolution.elapsed_ms, 4 * H);
	assert_int_equal(s.resolution.paused_ms, 3 * H);
	calendar_free(c);
}

static void test_breach_and_no_drift(void **state)
{
	struct calendar *c = maintenance();
	int64_t opened = at("2026-11-23T08:00:00+01:00");
	struct sla_change ch[] = {
		{ at("2026-11-23T09:00:00+01:00"), STATUS_WAITING },
		{ at("2026-11-23T11:00:00+01:00"), STATUS_IN_PROGRESS },
	};
	struct sla_state s;
	int64_t due;

	(void)state;
	sla_compute(c, opened, NULL, 0, at("2026-11-23T10:00:00+01:00"), 1 * H, -1, 0.75, &s);
	assert_true(s.response.breached);
	assert_int_equal(s.response.due_ms, at("2026-11-23T09:00:00+01:00"));
	assert_int_equal(s.response.warn_ms, at("2026-11-23T08:45:00+01:00"));
	/* The due date of a running clock is the same whenever it is computed. */
	sla_compute(c, opened, ch, 2, at("2026-11-23T11:30:00+01:00"), -1, 9 * H, 0.75, &s);
	due = s.resolution.due_ms;
	assert_int_equal(due, at("2026-11-24T10:00:00+01:00"));
	for (int64_t now = at("2026-11-23T12:00:00+01:00"); now < due; now += 37 * 60 * 1000) {
		sla_compute(c, opened, ch, 2, now, -1, 9 * H, 0.75, &s);
		assert_int_equal(s.resolution.due_ms, due);
	}
	sla_compute(c, opened, ch, 2, at("2026-11-24T12:00:00+01:00"), -1, 9 * H, 0.75, &s);
	assert_true(s.resolution.breached);
	assert_int_equal(s.resolution.due_ms, due);
	calendar_free(c);
}

static void test_status_from_journal_rows(void **state)
{
	(void)state;
	assert_int_equal(sla_status_after("status", "waiting"), STATUS_WAITING);
	assert_int_equal(sla_status_after("opened", "critical"), STATUS_NEW);
	assert_int_equal(sla_status_after("resolved", "ok"), STATUS_RESOLVED);
	assert_int_equal(sla_status_after("recovered", "ok"), STATUS_RECOVERED);
	assert_int_equal(sla_status_after("reopened", "critical"), STATUS_NEW);
	assert_int_equal(sla_status_after("reopened", "in_progress"), STATUS_IN_PROGRESS);
	assert_int_equal(sla_status_after("comment", "customer"), -1);
	assert_int_equal(sla_status_after("status", "bogus"), -1);
}

/*
 * A response clock across Christmas given as recurring holidays (every
 * year, so 2030 without listing it): due after the three closed days.
 */
static void test_response_across_recurring_holidays(void **state)
{
	struct calendar *c = NULL;
	struct cfg *cfg;
	struct sla_state s;
	int64_t opened = at("2030-12-23T16:00:00+01:00"); /* Monday */

	(void)state;
	assert_int_equal(cfg_load_string("t.yaml",
					 "calendar:\n  timezone: Europe/Berlin\n"
					 "  hours:\n    mon-fri: 08:00-17:00\n"
					 "  holidays:\n"
					 "    - {date: \"12-24\", every: year}\n"
					 "    - {date: \"12-25\", every: year}\n"
					 "    - {date: \"12-26\", every: year}\n",
					 &cfg),
			 0);
	assert_int_equal(calendar_parse(cfg, cfg_get(cfg, cfg->root, "calendar"), &c), 0);
	cfg_free(cfg);
	sla_compute(c, opened, NULL, 0, at("2030-12-26T12:00:00+01:00"), 2 * H, -1, 0.75, &s);
	assert_true(s.response.running);
	assert_int_equal(s.response.elapsed_ms, 1 * H);
	assert_int_equal(s.response.due_ms, at("2030-12-27T09:00:00+01:00"));
	assert_false(s.response.breached);
	calendar_free(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_response_across_a_weekend),
		cmocka_unit_test(test_response_across_recurring_holidays),
		cmocka_unit_test(test_pause_across_the_night),
		cmocka_unit_test(test_pause_outside_hours_costs_nothing),
		cmocka_unit_test(test_reopen_counts_the_resolved_time_as_a_pause),
		cmocka_unit_test(test_recovered_then_reopened_pauses_the_response_clock),
		cmocka_unit_test(test_breach_and_no_drift),
		cmocka_unit_test(test_status_from_journal_rows),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
