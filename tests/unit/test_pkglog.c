/*
 * Package upgrades from apt's history.log and dpkg.log: parsing (real
 * excerpts of a Debian 12 machine's logs in tests/unit/fixtures/), merging
 * the two logs, rotations, bounds, and the window before a failure.
 * Times in the logs are local; the tests run in UTC.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>
#include <utime.h>
#include <zlib.h>

#include "../../checks/pkglog.h"
#include "../../common/util.h"

#define FIXTURES "tests/unit/fixtures/"
#define MIN (60 * 1000LL)
#define HOUR (60 * MIN)

/* 2026-12-01 21:27:08 UTC, End-Date of the first fixture transaction */
#define T_FIRST_END 1796160428000LL

/*
 * gzdopen() fails only when zlib cannot allocate its state, which no real
 * file can make happen: this is the one mock here.  The test binary is
 * linked with -Wl,--wrap=gzdopen (Makefile), so pkglog.c's calls come
 * here, and go on to zlib unless a test asks for the failure.
 */
static bool fail_gzdopen;
gzFile __real_gzdopen(int fd, const char *mode);
gzFile __wrap_gzdopen(int fd, const char *mode);

gzFile __wrap_gzdopen(int fd, const char *mode)
{
	if (fail_gzdopen)
		return NULL;
	return __real_gzdopen(fd, mode);
}

static size_t open_fds(void)
{
	char path[64];
	size_t n = 0;

	for (int fd = 0; fd < 1024; fd++) {
		snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
		n += access(path, F_OK) == 0;
	}
	return n;
}

static const struct pkglog_upgrade *find(const struct pkglog *log,
					 const char *package)
{
	for (size_t i = 0; i < log->n; i++)
		if (strcmp(log->v[i].package, package) == 0)
			return &log->v[i];
	return NULL;
}

static int setup(void **state)
{
	(void)state;
	setenv("TZ", "UTC", 1);
	tzset();
	return 0;
}

static void test_history_fixture(void **state)
{
	struct pkglog log;
	char err[256] = "";
	const struct pkglog_upgrade *u;

	(void)state;
	pkglog_init(&log, 0, 4096);
	assert_int_equal(pkglog_read_history(&log, FIXTURES "history.log", 1 << 20,
					     err, sizeof(err)), 0);
	pkglog_finish(&log);
	/* 12 upgrades in the first transaction, 6 in the second; Install:
	 * lines (new packages) are not upgrades */
	assert_int_equal(log.n, 18);
	assert_int_equal(log.skipped_lines, 0);
	u = find(&log, "libcurl4");
	assert_non_null(u);
	assert_string_equal(u->arch, "amd64");
	assert_string_equal(u->from, "7.88.1-10+deb12u14");
	assert_string_equal(u->to, "7.88.1-10+deb12u15");
	assert_int_equal(u->source, PKGLOG_APT);
	/* the packages were in place when the transaction ended */
	assert_int_equal(u->at_ms, T_FIRST_END);
	assert_non_null(find(&log, "dpkg"));
	assert_null(find(&log, "systemd-container")); /* installed, not upgraded */
	pkglog_clear(&log);
}

static void test_dpkg_fixture_uses_status_installed_time(void **state)
{
	struct pkglog log;
	char err[256] = "";
	const struct pkglog_upgrade *u;

	(void)state;
	pkglog_init(&log, 0, 4096);
	assert_int_equal(pkglog_read_dpkg(&log, FIXTURES "dpkg.log", 1 << 20, err,
					  sizeof(err)), 0);
	pkglog_finish(&log);
	assert_int_equal(log.n, 18);
	u = find(&log, "libcurl4");
	assert_non_null(u);
	assert_int_equal(u->source, PKGLOG_DPKG);
	/* "upgrade" at 21:26:59, "status installed" at 21:27:02 */
	assert_int_equal(u->at_ms, T_FIRST_END - 6000);
	u = find(&log, "apt-transport-https");
	assert_non_null(u);
	assert_string_equal(u->arch, "all");
	/* oldest first */
	for (size_t i = 1; i < log.n; i++)
		assert_true(log.v[i - 1].at_ms <= log.v[i].at_ms);
	pkglog_clear(&log);
}

static void test_both_logs_merge_into_one_record_per_upgrade(void **state)
{
	struct pkglog log;
	char err[256] = "";
	const struct pkglog_upgrade *u;

	(void)state;
	pkglog_init(&log, 0, 4096);
	assert_int_equal(pkglog_read_history(&log, FIXTURES "history.log", 1 << 20,
					     err, sizeof(err)), 0);
	assert_int_equal(pkglog_read_dpkg(&log, FIXTURES "dpkg.log", 1 << 20, err,
					  sizeof(err)), 0);
	pkglog_finish(&log);
	/* history says apt-transport-https:amd64, dpkg :all: still twins */
	assert_int_equal(log.n, 18);
	for (size_t i = 0; i < log.n; i++)
		assert_int_equal(log.v[i].source, PKGLOG_DPKG);
	u = find(&log, "dpkg");
	assert_string_equal(u->from, "1.21.22");
	assert_string_equal(u->to, "1.21.23");
	pkglog_clear(&log);
}

static void test_dpkg_i_without_apt_is_kept(void **state)
{
	struct pkglog log;

	(void)state;
	pkglog_init(&log, 0, 16);
	pkglog_history_line(&log, "Start-Date: 2026-12-01  10:00:00");
	pkglog_history_line(&log, "Upgrade: libssl3:amd64 (3.0.11-1, 3.0.13-1)");
	pkglog_history_line(&log, "End-Date: 2026-12-01  10:00:10");
	/* the same upgrade seen by dpkg, and one apt never saw */
	pkglog_dpkg_line(&log, "2026-12-01 10:00:04 upgrade libssl3:amd64 3.0.11-1 3.0.13-1");
	pkglog_dpkg_line(&log, "2026-12-01 10:00:05 status installed libssl3:amd64 3.0.13-1");
	pkglog_dpkg_line(&log, "2026-12-01 11:00:00 upgrade local-tool:amd64 1 2");
	pkglog_finish(&log);
	assert_int_equal(log.n, 2);
	assert_string_equal(log.v[0].package, "libssl3");
	assert_string_equal(log.v[1].package, "local-tool");
	pkglog_clear(&log);
}

static void test_bad_lines_are_skipped_and_counted(void **state)
{
	struct pkglog log;

	(void)state;
	pkglog_init(&log, 0, 16);
	pkglog_history_line(&log, "Upgrade: before-any-start (1, 2)");
	pkglog_history_line(&log, "Start-Date: yesterday");
	pkglog_history_line(&log, "Start-Date: 2026-12-01  10:00:00");
	pkglog_history_line(&log, "Upgrade: good:amd64 (1, 2), broken (no-comma)");
	pkglog_history_line(&log, "Commandline: apt-get upgrade");
	pkglog_dpkg_line(&log, "not a date upgrade a 1 2");
	pkglog_dpkg_line(&log, "2026-12-01 10:00:04 upgrade missing-versions:amd64");
	pkglog_dpkg_line(&log, "2026-12-01 10:00:04 configure x:amd64 2 <none>");
	pkglog_finish(&log);
	/* the good entry before the broken one on the same line stays */
	assert_int_equal(log.n, 1);
	assert_string_equal(log.v[0].package, "good");
	assert_int_equal(log.skipped_lines, 5);
	pkglog_clear(&log);
}

static void test_limit_keeps_the_newest(void **state)
{
	struct pkglog log;
	char line[128];

	(void)state;
	pkglog_init(&log, 0, 10);
	for (int i = 0; i < 50; i++) {
		snprintf(line, sizeof(line),
			 "2026-12-01 10:%02d:00 upgrade pkg%d:amd64 1 2", i, i);
		pkglog_dpkg_line(&log, line);
	}
	pkglog_finish(&log);
	assert_int_equal(log.n, 10);
	assert_int_equal(log.dropped, 40);
	assert_string_equal(log.v[0].package, "pkg40");
	assert_string_equal(log.v[9].package, "pkg49");
	pkglog_clear(&log);
}

static void test_since_drops_older_records(void **state)
{
	struct pkglog log;

	(void)state;
	pkglog_init(&log, T_FIRST_END, 4096);
	pkglog_dpkg_line(&log, "2026-12-01 21:27:07 upgrade old:amd64 1 2");
	pkglog_dpkg_line(&log, "2026-12-01 21:27:08 upgrade new:amd64 1 2");
	pkglog_finish(&log);
	assert_int_equal(log.n, 1);
	assert_string_equal(log.v[0].package, "new");
	pkglog_clear(&log);
}

static char *tmpdir(void)
{
	char tmpl[] = "/tmp/tocsin-pkglog-XXXXXX";
	char *d = mkdtemp(tmpl);

	assert_non_null(d);
	return xstrdup(d);
}

static void write_text(const char *path, const char *text)
{
	FILE *fp = fopen(path, "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static void set_mtime(const char *path, time_t t)
{
	struct utimbuf ut = { .actime = t, .modtime = t };

	assert_int_equal(utime(path, &ut), 0);
}

static void test_rotations_are_read_oldest_first(void **state)
{
	char *d = tmpdir(), *base = xasprintf("%s/dpkg.log", d);
	char *r1 = xasprintf("%s.1", base), *r2 = xasprintf("%s.2.gz", base);
	char *r3 = xasprintf("%s.3.gz", base);
	struct pkglog log;
	char err[256] = "";
	gzFile gz;

	(void)state;
	gz = gzopen(r2, "wb");
	assert_non_null(gz);
	gzputs(gz, "2026-10-01 10:00:00 upgrade from-gz:amd64 1 2\n");
	gzclose(gz);
	write_text(r1, "2026-11-01 10:00:00 upgrade from-one:amd64 1 2\n");
	write_text(base, "2026-12-01 10:00:00 upgrade from-base:amd64 1 2\n");
	/* not a name logrotate gives dpkg.log: never read */
	write_text(r3, "garbage");
	set_mtime(r2, 1790000000); /* 2026-09-21 */
	set_mtime(r1, 1795000000);

	pkglog_init(&log, 0, 4096);
	assert_int_equal(pkglog_read_dpkg(&log, base, 1 << 20, err, sizeof(err)), 0);
	pkglog_finish(&log);
	assert_int_equal(log.n, 3);
	assert_string_equal(log.v[0].package, "from-gz");
	assert_string_equal(log.v[1].package, "from-one");
	assert_string_equal(log.v[2].package, "from-base");
	pkglog_clear(&log);

	/* a rotation last written before the window is not opened at all,
	 * whatever it holds */
	gz = gzopen(r2, "wb");
	gzputs(gz, "2026-12-01 09:00:00 upgrade in-stale-rotation:amd64 1 2\n");
	gzclose(gz);
	set_mtime(r2, 1790000000);
	pkglog_init(&log, 1794000000000LL, 4096);
	assert_int_equal(pkglog_read_dpkg(&log, base, 1 << 20, err, sizeof(err)), 0);
	pkglog_finish(&log);
	assert_int_equal(log.n, 1);
	assert_string_equal(log.v[0].package, "from-base");
	pkglog_clear(&log);

	/* a corrupt rotation inside the window is an error naming it */
	write_text(r2, "\x1f\x8b\x08\x00garbage that does not inflate");
	set_mtime(r2, 1796000000);
	pkglog_init(&log, 1794000000000LL, 4096);
	assert_int_equal(pkglog_read_dpkg(&log, base, 1 << 20, err, sizeof(err)),
			 -EBADMSG);
	assert_non_null(strstr(err, "dpkg.log.2.gz"));
	pkglog_clear(&log);

	unlink(r1);
	unlink(r2);
	unlink(r3);
	unlink(base);
	rmdir(d);
	free(r1);
	free(r2);
	free(r3);
	free(base);
	free(d);
}

static void test_unreadable_and_missing_logs(void **state)
{
	char *d = tmpdir(), *missing = xasprintf("%s/none.log", d);
	struct pkglog log;
	char err[256] = "";

	(void)state;
	pkglog_init(&log, 0, 4096);
	/* a directory cannot be read: the error says which file and why */
	assert_int_equal(pkglog_read_history(&log, d, 1 << 20, err, sizeof(err)),
			 -EISDIR);
	assert_non_null(strstr(err, d));
	assert_non_null(strstr(err, "Is a directory"));
	/* a system that never ran apt has no history.log: nothing to report */
	assert_int_equal(pkglog_read_history(&log, missing, 1 << 20, err,
					     sizeof(err)), 0);
	pkglog_finish(&log);
	assert_int_equal(log.n, 0);
	rmdir(d);
	free(missing);
	free(d);
}

static void test_tail_read_and_overlong_lines(void **state)
{
	char *d = tmpdir(), *path = xasprintf("%s/history.log", d);
	struct pkglog log;
	char err[256] = "";
	FILE *fp = fopen(path, "w");

	(void)state;
	assert_non_null(fp);
	/* an overlong Upgrade: line (over PKGLOG_LINE_MAX) is skipped, the
	 * transaction after it is read */
	fputs("Start-Date: 2026-12-01  09:00:00\nUpgrade: ", fp);
	for (int i = 0; i < 30000; i++)
		fprintf(fp, "p%d:amd64 (1, 2), ", i);
	fputs("last:amd64 (1, 2)\nEnd-Date: 2026-12-01  09:10:00\n\n", fp);
	fputs("Start-Date: 2026-12-01  10:00:00\n"
	      "Upgrade: kept:amd64 (1, 2)\nEnd-Date: 2026-12-01  10:00:05\n", fp);
	fclose(fp);

	pkglog_init(&log, 0, 4096);
	assert_int_equal(pkglog_read_history(&log, path, 64 << 20, err, sizeof(err)), 0);
	pkglog_finish(&log);
	assert_int_equal(log.n, 1);
	assert_string_equal(log.v[0].package, "kept");
	assert_int_equal(log.skipped_lines, 1);
	pkglog_clear(&log);

	/* only the last 4 KiB: starts mid-line, which is not misread */
	pkglog_init(&log, 0, 4096);
	assert_int_equal(pkglog_read_history(&log, path, 4096, err, sizeof(err)), 0);
	pkglog_finish(&log);
	assert_int_equal(log.n, 1);
	assert_string_equal(log.v[0].package, "kept");
	pkglog_clear(&log);
	unlink(path);
	rmdir(d);
	free(path);
	free(d);
}

static void add(struct pkglog *log, const char *pkg, const char *from,
		const char *to, int64_t at_ms)
{
	char line[256], when[32];
	time_t t = (time_t)(at_ms / 1000);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	snprintf(line, sizeof(line), "%s upgrade %s:amd64 %s %s", when, pkg, from, to);
	pkglog_dpkg_line(log, line);
}

static void test_window_before_a_failure(void **state)
{
	const int64_t fail = T_FIRST_END;
	struct pkglog log;
	size_t first, n;
	char buf[256];
	json_t *j;

	(void)state;
	pkglog_init(&log, 0, 4096);
	add(&log, "too-old", "1", "2", fail - 3 * HOUR);
	add(&log, "libpq5", "15.5", "15.6", fail - 90 * MIN);
	add(&log, "libssl3", "3.0.11", "3.0.13", fail - 4 * MIN);
	add(&log, "too-late", "1", "2", fail + 10 * MIN);
	pkglog_finish(&log);

	n = pkglog_window(&log, fail, 2 * HOUR, &first);
	assert_int_equal(n, 2);
	assert_string_equal(log.v[first].package, "libpq5");
	pkglog_describe(&log, first, n, fail, buf, sizeof(buf));
	assert_string_equal(buf, "4 min after the upgrade of libssl3 3.0.11 -> 3.0.13"
				 " and 1 other package");
	j = pkglog_json(&log, first, n, 50);
	assert_int_equal(json_array_size(j), 2);
	/* newest first */
	assert_string_equal(json_string_value(json_object_get(json_array_get(j, 0),
							      "package")), "libssl3");
	json_decref(j);

	/* the upgrade that restarted (and broke) the service is logged as
	 * installed just after the failure: "during" */
	n = pkglog_window(&log, fail - 5 * MIN, 30 * MIN, &first);
	assert_int_equal(n, 1);
	pkglog_describe(&log, first, n, fail - 5 * MIN, buf, sizeof(buf));
	assert_string_equal(buf, "during the upgrade of libssl3 3.0.11 -> 3.0.13");

	/* nothing in a quiet window */
	n = pkglog_window(&log, fail - 150 * MIN, 10 * MIN, &first);
	assert_int_equal(n, 0);
	pkglog_clear(&log);
}

static void test_cache_rereads_only_on_change(void **state)
{
	char *d = tmpdir(), *path = xasprintf("%s/dpkg.log", d);
	struct pkglog_cache c;
	FILE *fp;

	(void)state;
	write_text(path, "2026-12-01 10:00:00 upgrade a:amd64 1 2\n");
	pkglog_cache_init(&c, "", path, 1 << 20, 4096);
	assert_int_equal(pkglog_cache_refresh(&c, 0), 0);
	assert_int_equal(c.log.n, 1);
	/* unchanged file: the same records, not read again */
	c.log.skipped_lines = 77;
	assert_int_equal(pkglog_cache_refresh(&c, 1000), 0);
	assert_int_equal(c.log.skipped_lines, 77);
	fp = fopen(path, "a");
	fputs("2026-12-01 11:00:00 upgrade b:amd64 1 2\n", fp);
	fclose(fp);
	assert_int_equal(pkglog_cache_refresh(&c, 1000), 0);
	assert_int_equal(c.log.n, 2);
	assert_int_equal(c.log.skipped_lines, 0);
	/* unreadable now: the error says so */
	unlink(path);
	mkdir(path, 0700);
	assert_int_equal(pkglog_cache_refresh(&c, 1000), -EISDIR);
	assert_non_null(strstr(c.why, "Is a directory"));
	pkglog_cache_free(&c);
	rmdir(path);
	rmdir(d);
	free(path);
	free(d);
}

/* The rotated .gz whose gzdopen fails leaves no descriptor behind. */
static void test_gz_failure_closes_its_descriptor(void **state)
{
	char *d = tmpdir(), *base = xasprintf("%s/dpkg.log", d);
	char *gzpath = xasprintf("%s.1.gz", base);
	struct pkglog log;
	char err[256] = "";
	size_t before;
	gzFile gz = gzopen(gzpath, "wb");

	(void)state;
	assert_non_null(gz);
	gzputs(gz, "2026-10-01 10:00:00 upgrade from-gz:amd64 1 2\n");
	gzclose(gz);
	pkglog_init(&log, 0, 4096);
	before = open_fds();
	fail_gzdopen = true;
	for (int i = 0; i < 10; i++)
		assert_int_equal(pkglog_read_dpkg(&log, base, 1 << 20, err,
						  sizeof(err)), -ENOMEM);
	fail_gzdopen = false;
	assert_int_equal(open_fds(), before);
	assert_non_null(strstr(err, gzpath));
	pkglog_clear(&log);
	unlink(gzpath);
	rmdir(d);
	free(gzpath);
	free(base);
	free(d);
}

/*
 * Beyond max, the newest records stay, whichever log they come from:
 * history.log is read first, so the old code, which dropped the records
 * read first, lost the recent apt upgrades to a long dpkg.log.
 */
static void test_limit_keeps_the_newest_across_logs(void **state)
{
	struct pkglog log;
	char line[160];

	(void)state;
	pkglog_init(&log, 0, 10);
	pkglog_history_line(&log, "Start-Date: 2026-12-01  10:00:00");
	pkglog_history_line(&log, "Upgrade: newapt:amd64 (1, 2), newapt2:all (3, 4)");
	pkglog_history_line(&log, "End-Date: 2026-12-01  10:00:30");
	for (int i = 0; i < 500; i++) {
		snprintf(line, sizeof(line),
			 "2026-11-%02d %02d:%02d:00 upgrade old%d:amd64 1 2",
			 1 + i / 24 / 60 % 28, i / 60 % 24, i % 60, i);
		pkglog_dpkg_line(&log, line);
	}
	pkglog_finish(&log);
	assert_int_equal(log.n, 10);
	assert_int_equal(log.dropped, 492);
	assert_string_equal(log.v[9].package, "newapt2");
	assert_string_equal(log.v[8].package, "newapt");
	assert_string_equal(log.v[7].package, "old499");
	pkglog_clear(&log);
}

/*
 * Records are dropped while reading, by time and beyond max, so a long
 * log is not held whole and a record costs O(log n), not a memmove of
 * the whole array (the old add_record shifted max records per record).
 */
static void test_reading_stays_bounded(void **state)
{
	struct pkglog log;
	char line[160];
	size_t most = 0;

	(void)state;
	/* the window starts 2026-11-28: older lines are dropped as read */
	pkglog_init(&log, 1795824000000LL, 16);
	for (int i = 0; i < 200000; i++) {
		snprintf(line, sizeof(line),
			 "2026-11-%02d %02d:%02d:%02d upgrade p%d:amd64 1 2",
			 1 + i / 7200, i / 300 % 24, i / 5 % 60, i % 5 * 12, i);
		pkglog_dpkg_line(&log, line);
		most = log.n > most ? log.n : most;
	}
	/* at most twice what stays: max, and the 256 latest records, which
	 * a "status installed" line may still touch */
	assert_true(most <= 2 * (16 + 256));
	pkglog_finish(&log);
	assert_int_equal(log.n, 16);
	assert_string_equal(log.v[15].package, "p199999");
	assert_true(log.v[0].at_ms >= 1795824000000LL);
	pkglog_clear(&log);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_history_fixture),
		cmocka_unit_test(test_dpkg_fixture_uses_status_installed_time),
		cmocka_unit_test(test_both_logs_merge_into_one_record_per_upgrade),
		cmocka_unit_test(test_dpkg_i_without_apt_is_kept),
		cmocka_unit_test(test_bad_lines_are_skipped_and_counted),
		cmocka_unit_test(test_limit_keeps_the_newest),
		cmocka_unit_test(test_since_drops_older_records),
		cmocka_unit_test(test_rotations_are_read_oldest_first),
		cmocka_unit_test(test_unreadable_and_missing_logs),
		cmocka_unit_test(test_tail_read_and_overlong_lines),
		cmocka_unit_test(test_window_before_a_failure),
		cmocka_unit_test(test_cache_rereads_only_on_change),
		cmocka_unit_test(test_gz_failure_closes_its_descriptor),
		cmocka_unit_test(test_limit_keeps_the_newest_across_logs),
		cmocka_unit_test(test_reading_stays_bounded),
	};

	return cmocka_run_group_tests(tests, setup, NULL);
}
