/*
 * login_limit: what the console's failed-login counters cost a login
 * when every table is full: ACCOUNTS_MAX accounts with failures, and as
 * many made-up names and IPv6 networks as their tables hold.
 *
 *   login_limit [CALLS]
 *
 * Fills the tables through the real module, then prints nanoseconds per
 * session_login_blocked() (every login pays it, before Argon2id) and per
 * session_login_failed() of a new made-up name from a new network (the
 * path that recycles a counter in two full tables).
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>

#include "../common/util.h"
#include "../server/account.h"
#include "../server/server.h"
#include "../server/session.h"
#include "clock.h"

/* More than the module keeps of made-up names and of networks. */
#define FLOOD 8192

static void network_of(long i, char *buf, size_t size)
{
	snprintf(buf, size, "2001:db8:%lx:%lx::1", (i >> 16) & 0xffff,
		 i & 0xffff);
}

int main(int argc, char **argv)
{
	struct console_config conf;
	struct sessions *s;
	char name[32], address[64];
	int64_t calls = 200000, now = 0;
	double t0, blocked_ns, failed_ns;
	long blocked = 0;

	if ((argc > 1 && parse_int64(argv[1], &calls) < 0) || calls < 1) {
		fprintf(stderr, "usage: login_limit [CALLS]\n");
		return 2;
	}
	if (sodium_init() < 0 || sessions_new(&s) < 0)
		return 1;
	console_config_defaults(&conf);
	for (long i = 0; i < ACCOUNTS_MAX; i++) {
		snprintf(name, sizeof(name), "account%ld", i);
		network_of(i, address, sizeof(address));
		session_login_failed(s, &conf, name, true, address, now++);
	}
	for (long i = 0; i < FLOOD; i++) {
		snprintf(name, sizeof(name), "made-up%ld", i);
		network_of(ACCOUNTS_MAX + i, address, sizeof(address));
		session_login_failed(s, &conf, name, false, address, now++);
	}

	t0 = bench_wall_s();
	for (int64_t i = 0; i < calls; i++) {
		snprintf(name, sizeof(name), "account%ld",
			 (long)(i % ACCOUNTS_MAX));
		network_of((long)(i % FLOOD), address, sizeof(address));
		blocked += session_login_blocked(s, &conf, name, address, now) > 0;
	}
	blocked_ns = (bench_wall_s() - t0) * 1e9 / (double)calls;

	t0 = bench_wall_s();
	for (int64_t i = 0; i < calls; i++) {
		snprintf(name, sizeof(name), "fresh%ld", (long)i);
		network_of(ACCOUNTS_MAX + FLOOD + (long)i, address,
			   sizeof(address));
		session_login_failed(s, &conf, name, false, address, now++);
	}
	failed_ns = (bench_wall_s() - t0) * 1e9 / (double)calls;

	printf("login_limit: %d account counters, tables of made-up names and networks full: "
	       "blocked? %.0f ns/login, a failure that recycles %.0f ns (%ld of %lld asked were blocked)\n",
	       ACCOUNTS_MAX, blocked_ns, failed_ns, blocked, (long long)calls);
	sessions_free(s);
	return 0;
}
