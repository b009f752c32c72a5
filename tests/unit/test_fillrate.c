/*
 * The fill-rate sample store on a real SQLite file: samples survive a
 * reopen, are spaced and bounded, samples from the future are dropped,
 * checks do not share series, and no database means no prediction.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../agent/statedb.h"
#include "../../checks/fillrate.h"
#include "../../common/util.h"

#define MiB (1024ULL * 1024)
#define MIN_MS (60 * 1000LL)
#define HOUR_MS (60 * MIN_MS)
#define T0 1767225600000LL

struct fixture {
	char dir[64];
	sqlite3 *db;
	struct check_env env;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));

	strlcpy_safe(f->dir, "/tmp/tocsin-fillrate-XXXXXX", sizeof(f->dir));
	assert_non_null(mkdtemp(f->dir));
	assert_int_equal(statedb_open(f->dir, &f->db), 0);
	f->env = (struct check_env){ .state_dir = f->dir, .db = f->db };
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char *cmd = xasprintf("rm -rf %s", f->dir);

	statedb_close(f->db);
	(void)!system(cmd);
	free(cmd);
	free(f);
	return 0;
}

static int count_rows(sqlite3 *db, const char *source)
{
	sqlite3_stmt *s;
	int n;

	assert_int_equal(sqlite3_prepare_v2(db,
		"SELECT count(*) FROM fill_samples WHERE source = ?1", -1, &s, NULL),
		SQLITE_OK);
	sqlite3_bind_text(s, 1, source, -1, SQLITE_STATIC);
	assert_int_equal(sqlite3_step(s), SQLITE_ROW);
	n = sqlite3_column_int(s, 0);
	sqlite3_finalize(s);
	return n;
}

/* Short windows so that a few dozen samples make a usable series. */
static void small_windows(struct predict_config *pc)
{
	predict_config_defaults(pc);
	pc->short_window_ms = 1 * HOUR_MS;  /* spacing 50 s */
	pc->long_window_ms = 4 * HOUR_MS;
	pc->warning_ms = 24 * HOUR_MS;
	pc->critical_ms = 1 * HOUR_MS;
}

/* Observe a volume growing 1 MiB every 5 minutes from step `from`. */
static void feed(struct fillrate *fr, const struct predict_config *pc,
		 int from, int to, struct prediction *p)
{
	for (int i = from; i < to; i++)
		assert_int_equal(fillrate_observe(fr, "/srv", pc, T0 + i * 5 * MIN_MS,
						  (uint64_t)i * MiB, 100 * MiB, p),
				 0);
}

static void test_history_survives_a_restart(void **state)
{
	struct fixture *f = *state;
	struct predict_config pc;
	struct prediction p;
	struct fillrate *fr;

	small_windows(&pc);
	fr = fillrate_new("disk", &f->env);
	feed(fr, &pc, 0, 20, &p); /* 95 minutes: not enough for 4 h */
	assert_false(p.usable);
	fillrate_free(fr);

	/* a new agent process: the history comes from the database */
	statedb_close(f->db);
	assert_int_equal(statedb_open(f->dir, &f->db), 0);
	f->env.db = f->db;
	fr = fillrate_new("disk", &f->env);
	feed(fr, &pc, 20, 40, &p); /* 195 minutes in all */
	assert_true(p.usable);
	/* 1 MiB per 5 minutes is 288 MiB a day; 100 MiB free: ~8 h */
	assert_true(fabs(p.rate * 86400 - 288.0 * MiB) < 1.0 * MiB);
	assert_int_equal(p.state, CHECK_WARNING);
	assert_true(p.full_in_s > 8 * 3600 && p.full_in_s < 8.5 * 3600);
	fillrate_free(fr);
}

static void test_spacing_bounds_and_sources(void **state)
{
	struct fixture *f = *state;
	struct predict_config pc;
	struct prediction p;
	struct fillrate *disk, *backup;

	small_windows(&pc);
	disk = fillrate_new("disk", &f->env);
	backup = fillrate_new("backup", &f->env);
	/* every 10 s for 5 h: only one sample per 50 s is stored, and only
	 * the last 4 h are kept */
	for (int i = 0; i < 5 * 360; i++)
		assert_int_equal(fillrate_observe(disk, "/srv", &pc, T0 + i * 10000LL,
						  MiB, MiB, &p),
				 0);
	assert_int_equal(count_rows(f->db, "disk"), 4 * 72 + 1);
	/* another check's series of the same path is its own */
	assert_int_equal(fillrate_observe(backup, "/srv", &pc, T0, MiB, MiB, &p), 0);
	assert_int_equal(count_rows(f->db, "backup"), 1);
	assert_false(p.usable);
	fillrate_free(disk);
	fillrate_free(backup);
}

static void test_clock_set_back_drops_future_samples(void **state)
{
	struct fixture *f = *state;
	struct predict_config pc;
	struct prediction p;
	struct fillrate *fr;

	small_windows(&pc);
	fr = fillrate_new("disk", &f->env);
	feed(fr, &pc, 0, 40, &p);
	assert_true(p.usable);
	assert_int_equal(count_rows(f->db, "disk"), 40);
	/* the clock goes back an hour: the last hour's samples are gone */
	assert_int_equal(fillrate_observe(fr, "/srv", &pc, T0 + 39 * 5 * MIN_MS - HOUR_MS,
					  30 * MiB, 100 * MiB, &p),
			 0);
	assert_int_equal(count_rows(f->db, "disk"), 28);
	fillrate_free(fr);
}

static void test_no_database_no_prediction(void **state)
{
	struct check_env env = { .state_dir = "/nonexistent" };
	struct predict_config pc;
	struct prediction p = { .usable = true };
	struct fillrate *fr = fillrate_new("disk", &env);
	int r;

	(void)state;
	predict_config_defaults(&pc);
	r = fillrate_observe(fr, "/", &pc, T0, MiB, MiB, &p);
	assert_int_equal(r, -ENODEV);
	assert_string_equal(fillrate_strerror(r), "no state database");
	assert_true(p.usable); /* untouched on failure */
	fillrate_free(fr);
}

static void test_volume_limit(void **state)
{
	struct fixture *f = *state;
	struct predict_config pc;
	struct prediction p;
	struct fillrate *fr = fillrate_new("disk", &f->env);
	char name[32];

	predict_config_defaults(&pc);
	for (int i = 0; i < FILLRATE_VOLUMES_MAX; i++) {
		snprintf(name, sizeof(name), "/mnt/%d", i);
		assert_int_equal(fillrate_observe(fr, name, &pc, T0, MiB, MiB, &p), 0);
	}
	assert_int_equal(fillrate_observe(fr, "/one/too/many", &pc, T0, MiB, MiB, &p),
			 -E2BIG);
	fillrate_free(fr);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_history_survives_a_restart, setup, teardown),
		cmocka_unit_test_setup_teardown(test_spacing_bounds_and_sources, setup, teardown),
		cmocka_unit_test_setup_teardown(test_clock_set_back_drops_future_samples, setup, teardown),
		cmocka_unit_test(test_no_database_no_prediction),
		cmocka_unit_test_setup_teardown(test_volume_limit, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
