/* The benchmarks' clocks: process CPU time and monotonic wall time, in s. */
#ifndef TOCSIN_BENCH_CLOCK_H
#define TOCSIN_BENCH_CLOCK_H

#include <time.h>

static inline double bench_cpu_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static inline double bench_wall_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

#endif
