/*
 * heartbeat: an "alive" event every interval, so that the collector can
 * tell a quiet host from a dead one (seed 001: a burst pipe took out all
 * central components and the hosts simply went silent).
 *
 * The shape is a contract with the collector's silence detection, which
 * keys on check "heartbeat", item "alive" and reads metrics.interval_s:
 *
 *   state    ok
 *   summary  "tocsin-agent 0.1.0 alive, 6 checks"
 *   metrics  {"interval_s": 60, "uptime_s": 3600}
 *   context  {"version": "0.1.0",
 *             "checks": [{"name": "disk", "interval_s": 60}, ...]}
 *
 * uptime_s is the agent process's, so a restart loop shows as an uptime
 * that never grows.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/util.h"
#include "check.h"

#define HEARTBEAT_NAME "heartbeat"
#define HEARTBEAT_DEFAULT_MS (60 * 1000)

struct heartbeat_ctx {
	const struct check_env *env;
	int64_t started_ms; /* the process's start, on CLOCK_BOOTTIME */
};

static int64_t boottime_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_BOOTTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/*
 * When this process started, in ms since boot, from field 22 of
 * /proc/self/stat; -errno when it cannot be read.  Read once per
 * configuration, so a reload does not reset the uptime.
 */
static int process_start_ms(int64_t *ret_ms)
{
	char buf[1024], *p, *end;
	unsigned long long ticks;
	long hz = sysconf(_SC_CLK_TCK);
	FILE *fp = fopen("/proc/self/stat", "re");
	size_t n;

	if (fp == NULL)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	/* the command name may hold spaces and parentheses: skip past the
	 * last ')', after which field 3 begins */
	p = strrchr(buf, ')');
	if (p == NULL || hz <= 0)
		return -EINVAL;
	p++;
	for (int field = 3; field < 22; field++) {
		p = strchr(p + 1, ' ');
		if (p == NULL)
			return -EINVAL;
	}
	errno = 0;
	ticks = strtoull(p + 1, &end, 10);
	if (errno != 0 || end == p + 1)
		return -EINVAL;
	*ret_ms = (int64_t)(ticks * 1000ULL / (unsigned long long)hz);
	return 0;
}

static int heartbeat_configure(struct cfg *cfg, const struct cfg_node *node,
			       const struct check_env *env, void **ret_ctx)
{
	struct heartbeat_ctx *ctx = xcalloc(1, sizeof(*ctx));

	(void)cfg;
	(void)node; /* enabled and interval are the agent's keys */
	ctx->env = env;
	if (process_start_ms(&ctx->started_ms) < 0)
		ctx->started_ms = boottime_ms();
	*ret_ctx = ctx;
	return 0;
}

/* Every interval: the alive event, with the inventory from the env. */
static int heartbeat_collect(void *p, int64_t now_ms,
			     struct check_results *out)
{
	struct heartbeat_ctx *ctx = p;
	const struct check_env *env = ctx->env;
	int64_t interval = HEARTBEAT_DEFAULT_MS, uptime;
	struct check_result *r;
	json_t *checks = json_array();

	(void)now_ms;
	for (size_t i = 0; i < env->ninventory; i++) {
		const struct check_info *ci = &env->inventory[i];

		if (strcmp(ci->name, HEARTBEAT_NAME) == 0)
			interval = ci->interval_ms;
		json_array_append_new(checks,
				      json_pack("{s:s, s:I}", "name", ci->name,
						"interval_s",
						(json_int_t)(ci->interval_ms / 1000)));
	}
	/* the collector hears from us only as often as the agent delivers */
	if (interval < env->report_every_ms)
		interval = env->report_every_ms;
	uptime = boottime_ms() - ctx->started_ms;
	r = check_results_add(out, "alive", CHECK_OK,
			      json_pack("{s:I, s:I}", "interval_s",
					(json_int_t)(interval / 1000), "uptime_s",
					(json_int_t)(uptime > 0 ? uptime / 1000 : 0)),
			      "tocsin-agent %s alive, %zu check%s", TOCSIN_VERSION,
			      env->ninventory, env->ninventory == 1 ? "" : "s");
	r->context = json_pack("{s:s, s:o}", "version", TOCSIN_VERSION,
			       "checks", checks);
	return 0;
}

static void heartbeat_free(void *ctx)
{
	free(ctx);
}

const struct check check_heartbeat = {
	.name = HEARTBEAT_NAME,
	.default_interval_ms = HEARTBEAT_DEFAULT_MS,
	.enabled_by_default = true,
	.configure = heartbeat_configure,
	.collect = heartbeat_collect,
	.free = heartbeat_free,
};
