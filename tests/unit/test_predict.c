/*
 * Fill-rate prediction on synthetic series: steady growth must alert at
 * the right time, and flat volumes, bursts, log rotations and nightly
 * backup spikes must not alert at all.
 *
 * Each series is sampled every 5 minutes (what the agent keeps with the
 * default 6 h short window) with a little deterministic noise, and the
 * prediction is evaluated as the agent would, at many points in time,
 * with only the samples seen so far.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../checks/predict.h"
#include "../../common/config.h"
#include "../../common/util.h"

#define MiB (1024.0 * 1024.0)
#define GiB (1024.0 * MiB)
#define TiB (1024.0 * GiB)
#define MIN_MS (60 * 1000LL)
#define HOUR_MS (60 * MIN_MS)
#define DAY_MS (24 * HOUR_MS)
#define STEP_MS (5 * MIN_MS)
/* An arbitrary midnight, so that "01:00" means something in the series. */
#define T0 (1767225600000LL)

struct series {
	struct predict_sample *v;
	size_t n;
	double size; /* bytes in the file system (used + free) */
};

/* Deterministic noise in [-amp, amp]. */
static double noise(uint32_t *seed, double amp)
{
	*seed = *seed * 1664525u + 1013904223u;
	return amp * ((double)(*seed >> 8) / (double)(1u << 24) * 2.0 - 1.0);
}

/* Sample used(t) every 5 minutes over days, plus noise. */
static void generate(struct series *s, double size, double days, double amp,
		     double (*used)(int64_t t_ms, void *arg), void *arg)
{
	uint32_t seed = 42;

	s->n = (size_t)(days * DAY_MS / STEP_MS);
	s->v = xcalloc(s->n, sizeof(*s->v));
	s->size = size;
	for (size_t i = 0; i < s->n; i++) {
		int64_t t = (int64_t)i * STEP_MS;

		s->v[i].t_ms = T0 + t;
		s->v[i].used = used(t, arg) + noise(&seed, amp);
	}
}

/* Evaluate with the samples up to and including index i, as at that time. */
static void evaluate_at(const struct series *s, size_t i,
			const struct predict_config *pc, struct prediction *p)
{
	double avail = s->size - s->v[i].used;

	predict_evaluate(pc, s->v, i + 1, s->v[i].t_ms,
			 (uint64_t)(avail > 0 ? avail : 0), p);
}

/* The first time (ms after T0) the state reaches at least `state`; -1 none. */
static int64_t first_alert(const struct series *s,
			   const struct predict_config *pc,
			   enum check_state state)
{
	for (size_t i = 0; i < s->n; i++) {
		struct prediction p;

		evaluate_at(s, i, pc, &p);
		if (check_state_severity(p.state) >= check_state_severity(state))
			return s->v[i].t_ms - T0;
	}
	return -1;
}

static double steady(int64_t t, void *arg)
{
	(void)arg;
	/* 50 GiB used, growing 2 GiB a day */
	return 50 * GiB + 2 * GiB * (double)t / DAY_MS;
}

static void test_steady_growth_alerts_at_the_right_time(void **state)
{
	struct predict_config pc;
	struct series s;
	struct prediction p;
	char text[64];
	int64_t warn, crit;

	(void)state;
	predict_config_defaults(&pc);
	/* 100 GiB full after 25 days: warning from day 18, critical from 24 */
	generate(&s, 100 * GiB, 25.5, 20 * MiB, steady, NULL);
	warn = first_alert(&s, &pc, CHECK_WARNING);
	crit = first_alert(&s, &pc, CHECK_CRITICAL);
	print_message("  warning after %.2f d, critical after %.2f d\n",
		      (double)warn / DAY_MS, (double)crit / DAY_MS);
	assert_true(warn > 18 * DAY_MS - 2 * HOUR_MS);
	assert_true(warn < 18 * DAY_MS + 2 * HOUR_MS);
	assert_true(crit > 24 * DAY_MS - 1 * HOUR_MS);
	assert_true(crit < 24 * DAY_MS + 1 * HOUR_MS);

	/* on day 20 the summary reads like the brief's example */
	evaluate_at(&s, (size_t)(20 * DAY_MS / STEP_MS), &pc, &p);
	assert_true(p.usable);
	assert_int_equal(p.state, CHECK_WARNING);
	assert_true(fabs(p.rate * 86400 - 2 * GiB) < 0.05 * GiB);
	predict_format(&p, text, sizeof(text));
	assert_string_equal(text, "full in ~5 d at 2.0 GiB/day");
	free(s.v);
}

static double flat(int64_t t, void *arg)
{
	(void)t;
	(void)arg;
	return 97 * GiB;
}

static void test_flat_volume_never_alerts(void **state)
{
	struct predict_config pc;
	struct series s;

	(void)state;
	predict_config_defaults(&pc);
	/* 97% used, 3 GiB free, only noise of +-200 MiB: thresholds' business */
	generate(&s, 100 * GiB, 6, 200 * MiB, flat, NULL);
	assert_int_equal(first_alert(&s, &pc, CHECK_WARNING), -1);
	free(s.v);
}

static double apt_burst(int64_t t, void *arg)
{
	double base = 95 * GiB + 100 * MiB * (double)t / DAY_MS;
	int64_t start = *(const int64_t *)arg;

	(void)arg;
	/* 3 GiB of packages in 10 minutes, cleaned up 4 h later */
	if (t >= start && t < start + 10 * MIN_MS)
		return base + 3 * GiB * (double)(t - start) / (10 * MIN_MS);
	if (t >= start + 10 * MIN_MS && t < start + 4 * HOUR_MS)
		return base + 3 * GiB;
	return base;
}

static void test_apt_burst_then_cleanup_does_not_alert(void **state)
{
	int64_t start = 3 * DAY_MS + 14 * HOUR_MS;
	struct predict_config pc;
	struct prediction p;
	struct series s;

	(void)state;
	predict_config_defaults(&pc);
	/* 5 GiB free, down to 2 GiB during the burst */
	generate(&s, 100 * GiB, 5, 10 * MiB, apt_burst, &start);
	assert_int_equal(first_alert(&s, &pc, CHECK_WARNING), -1);

	/* the short window alone would have cried wolf 3 h into the burst */
	evaluate_at(&s, (size_t)((start + 3 * HOUR_MS) / STEP_MS), &pc, &p);
	assert_true(p.usable);
	assert_true(p.short_rate * 86400 > 5 * GiB);
	assert_true(p.long_rate * 86400 < 1 * GiB);
	assert_int_equal(p.state, CHECK_OK);
	free(s.v);
}

static double log_rotation(int64_t t, void *arg)
{
	(void)arg;
	/* logs grow 3 GiB a day and are rotated away every midnight */
	return 90 * GiB + 3 * GiB * (double)(t % DAY_MS) / DAY_MS;
}

static void test_log_rotation_drop_does_not_alert(void **state)
{
	struct predict_config pc;
	struct prediction p;
	struct series s;

	(void)state;
	predict_config_defaults(&pc);
	/* 10 GiB free after rotation, 7 GiB just before it */
	generate(&s, 100 * GiB, 6, 10 * MiB, log_rotation, NULL);
	assert_int_equal(first_alert(&s, &pc, CHECK_WARNING), -1);

	/* just before midnight the short window sees 3 GiB/day and 7 GiB
	 * free, which alone would be a warning; the long window knows the
	 * saw tooth is flat */
	evaluate_at(&s, (size_t)((5 * DAY_MS - 10 * MIN_MS) / STEP_MS), &pc, &p);
	assert_true(p.short_rate * 86400 > 2.5 * GiB);
	assert_true(fabs(p.long_rate) * 86400 < 0.5 * GiB);
	assert_int_equal(p.state, CHECK_OK);

	/* right after a rotation the short window falls: no alert either */
	evaluate_at(&s, (size_t)((5 * DAY_MS + 30 * MIN_MS) / STEP_MS), &pc, &p);
	assert_int_equal(p.state, CHECK_OK);
	free(s.v);
}

static double nightly_backup(int64_t t, void *arg)
{
	int64_t tod = t % DAY_MS;

	(void)arg;
	/* a local dump grows to 8 GiB from 01:00 to 03:00, then is moved off */
	if (tod >= 1 * HOUR_MS && tod < 3 * HOUR_MS)
		return 85 * GiB +
		       8 * GiB * (double)(tod - HOUR_MS) / (2 * HOUR_MS);
	return 85 * GiB;
}

static void test_nightly_backup_spikes_do_not_alert(void **state)
{
	struct predict_config pc;
	struct series s;

	(void)state;
	predict_config_defaults(&pc);
	/* 15 GiB free, 7 GiB at the top of every spike */
	generate(&s, 100 * GiB, 6, 20 * MiB, nightly_backup, NULL);
	assert_int_equal(first_alert(&s, &pc, CHECK_WARNING), -1);
	free(s.v);
}

static double big_volume(int64_t t, void *arg)
{
	(void)arg;
	/* 1 TiB used of 10 TiB, growing 5 GiB a day, plus a 400 GiB restore
	 * that comes and goes on day 4 */
	double v = 1 * TiB + 5 * GiB * (double)t / DAY_MS;

	if (t > 4 * DAY_MS && t < 4 * DAY_MS + 5 * HOUR_MS)
		v += 400 * GiB;
	return v;
}

static void test_ample_space_never_alerts(void **state)
{
	struct predict_config pc;
	struct prediction p;
	struct series s;
	char text[64];

	(void)state;
	predict_config_defaults(&pc);
	generate(&s, 10 * TiB, 6, 100 * MiB, big_volume, NULL);
	assert_int_equal(first_alert(&s, &pc, CHECK_WARNING), -1);
	evaluate_at(&s, s.n - 1, &pc, &p);
	assert_true(p.usable);
	assert_true(fabs(p.rate * 86400 - 5 * GiB) < 0.5 * GiB);
	predict_format(&p, text, sizeof(text));
	assert_non_null(strstr(text, "full in over a year at "));
	free(s.v);
}

static void test_too_few_samples_predicts_nothing(void **state)
{
	struct predict_config pc;
	struct prediction p;
	struct series s;
	char text[64] = "x";

	(void)state;
	predict_config_defaults(&pc);
	/* nearly full and filling fast, but with little history */
	generate(&s, 56 * GiB, 2.5, 0, steady, NULL);

	predict_evaluate(&pc, s.v, 0, T0, 1 * GiB, &p);
	assert_false(p.usable);
	assert_int_equal(p.state, CHECK_OK);
	predict_evaluate(&pc, s.v, 5, s.v[4].t_ms, 1 * GiB, &p);
	assert_false(p.usable);
	assert_int_equal(p.state, CHECK_OK);
	predict_format(&p, text, sizeof(text));
	assert_string_equal(text, "");

	/* 1.9 days: the long window (3 d) needs two thirds of itself */
	evaluate_at(&s, (size_t)(1.9 * DAY_MS / STEP_MS), &pc, &p);
	assert_false(p.usable);
	assert_int_equal(p.state, CHECK_OK);
	assert_true(p.history_ms > DAY_MS);
	/* 2.2 days: enough, and 1.6 GiB free at 2 GiB/day is critical */
	evaluate_at(&s, (size_t)(2.2 * DAY_MS / STEP_MS), &pc, &p);
	assert_true(p.usable);
	assert_int_equal(p.state, CHECK_CRITICAL);

	/* a gap: the agent was off for the last 5 hours of the short window */
	predict_evaluate(&pc, s.v, (size_t)(2.2 * DAY_MS / STEP_MS) + 1,
			 s.v[(size_t)(2.2 * DAY_MS / STEP_MS)].t_ms + 5 * HOUR_MS,
			 1 * GiB, &p);
	assert_false(p.usable);
	free(s.v);
}

static void test_clock_set_back_ignores_future_samples(void **state)
{
	struct predict_config pc;
	struct prediction p;
	struct series s;

	(void)state;
	predict_config_defaults(&pc);
	generate(&s, 100 * GiB, 4, 0, steady, NULL);
	/* evaluated "three days in" with four days of samples at hand */
	predict_evaluate(&pc, s.v, s.n, T0 + 3 * DAY_MS, 44 * GiB, &p);
	assert_true(p.usable);
	assert_true(fabs(p.rate * 86400 - 2 * GiB) < 0.01 * GiB);
	free(s.v);
}

static struct cfg *parse(const char *yaml, struct predict_config *pc)
{
	struct cfg *cfg;

	assert_int_equal(cfg_load_string("disk.yaml", yaml, &cfg), 0);
	predict_config_defaults(pc);
	predict_config_parse(cfg, cfg->root, pc);
	for (size_t i = 0; i < cfg->nerrors; i++)
		print_message("  error: %s\n", cfg->errors[i]);
	return cfg;
}

static void test_config_keys_and_errors(void **state)
{
	struct predict_config pc;
	struct cfg *cfg;

	(void)state;
	cfg = parse("predict: false\npredict_warning: 3d\npredict_critical: 12h\n"
		    "predict_short_window: 2h\npredict_long_window: 1d\n", &pc);
	assert_int_equal(cfg->nerrors, 0);
	assert_false(pc.enabled);
	assert_int_equal(pc.warning_ms, 3 * DAY_MS);
	assert_int_equal(pc.critical_ms, 12 * HOUR_MS);
	assert_int_equal(pc.short_window_ms, 2 * HOUR_MS);
	assert_int_equal(pc.long_window_ms, DAY_MS);
	cfg_free(cfg);

	cfg = parse("predict_warning: 1d\npredict_critical: 2d\n"
		    "predict_short_window: 1m\npredict_long_window: soon\n", &pc);
	assert_int_equal(cfg->nerrors, 3);
	assert_non_null(strstr(cfg->errors[0],
			       "disk.yaml:3:23: predict_short_window: predict_short_window must be between 10m and 30d"));
	assert_non_null(strstr(cfg->errors[1],
			       "disk.yaml:4:22: predict_long_window: expected a duration"));
	assert_non_null(strstr(cfg->errors[2],
			       "predict_critical must not be longer than predict_warning"));
	cfg_free(cfg);

	cfg = parse("predict_short_window: 3d\n", &pc);
	assert_int_equal(cfg->nerrors, 1);
	assert_non_null(strstr(cfg->errors[0], "must be shorter than predict_long_window"));
	cfg_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_steady_growth_alerts_at_the_right_time),
		cmocka_unit_test(test_flat_volume_never_alerts),
		cmocka_unit_test(test_apt_burst_then_cleanup_does_not_alert),
		cmocka_unit_test(test_log_rotation_drop_does_not_alert),
		cmocka_unit_test(test_nightly_backup_spikes_do_not_alert),
		cmocka_unit_test(test_ample_space_never_alerts),
		cmocka_unit_test(test_too_few_samples_predicts_nothing),
		cmocka_unit_test(test_clock_set_back_ignores_future_samples),
		cmocka_unit_test(test_config_keys_and_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
