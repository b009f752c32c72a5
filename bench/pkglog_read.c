/*
 * Reading a long dpkg.log into the package-upgrade list the updates and
 * services checks share (checks/pkglog.c): the time to read and keep the
 * newest records of a real file of LINES upgrade lines (one a minute,
 * newest last) with the checks' limit of 4096 records, and how many the
 * list held at most while reading.  Prints figures, asserts nothing.
 *
 *   build/rel/bench/pkglog_read [LINES] [DIR]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../checks/pkglog.h"
#include "../common/util.h"

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	long lines = argc > 1 ? strtol(argv[1], NULL, 10) : 200000;
	const char *dir = argc > 2 ? argv[2] : "/tmp";
	char *path = xasprintf("%s/pkglog-bench-%ld.log", dir, (long)getpid());
	FILE *fp = fopen(path, "w");
	time_t t0 = 1767225600; /* 2026-01-01 */
	struct pkglog log;
	char err[256] = "";
	double start, took;
	int r;

	if (fp == NULL || lines <= 0) {
		fprintf(stderr, "pkglog_read: cannot write %s\n", path);
		return 1;
	}
	setenv("TZ", "UTC", 1);
	tzset();
	for (long i = 0; i < lines; i++) {
		time_t t = t0 + i * 60;
		struct tm tm;
		char when[32];

		gmtime_r(&t, &tm);
		strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
		fprintf(fp, "%s upgrade libpkg%ld:amd64 1.%ld 1.%ld\n", when, i, i, i + 1);
		fprintf(fp, "%s status installed libpkg%ld:amd64 1.%ld\n", when, i, i + 1);
	}
	fclose(fp);

	pkglog_init(&log, 0, 4096);
	start = now_s();
	r = pkglog_read_dpkg(&log, path, 256u * 1024 * 1024, err, sizeof(err));
	pkglog_finish(&log);
	took = now_s() - start;
	printf("pkglog_read: %ld upgrade records (%ld lines) read in %.1f ms, "
	       "%.2f us a record; kept %zu (dropped %zu), list capacity %zu%s%s\n",
	       lines, 2 * lines, took * 1e3, took * 1e6 / (double)lines, log.n,
	       log.dropped, log.cap, r < 0 ? "; error: " : "", r < 0 ? err : "");
	pkglog_clear(&log);
	unlink(path);
	free(path);
	return 0;
}
