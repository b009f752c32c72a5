/*
 * CPU time of one round of every check, as the agent runs them.
 *
 *   build/rel/bench/checks_round CONFIG [ROUNDS]
 *
 * Loads CONFIG with the agent's own configuration code, opens the state
 * database in its state_dir, and runs ROUNDS (default 1000) one-shot
 * rounds of every enabled check, each round one minute later on the
 * agent's clock (so the disk and backup checks store a sample every
 * fifth round, as they would).  Prints the mean CPU time per round of the
 * agent process itself (getrusage, user + system), the same per check,
 * and the CPU of the child processes (plugins) separately.  Prints
 * figures only; it asserts nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "../agent/agent.h"
#include "../agent/oneshot.h"
#include "../agent/statedb.h"
#include "../common/config.h"
#include "../common/util.h"

static double cpu_us(int who)
{
	struct rusage ru;

	getrusage(who, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e6 +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
}

int main(int argc, char **argv)
{
	struct agent_config *conf;
	struct cfg *cfg;
	sqlite3 *db = NULL;
	long rounds = argc > 2 ? strtol(argv[2], NULL, 10) : 1000;
	int64_t now = time_now_ms();
	double *per_check, self0, child0, results = 0;
	char *dropin, **names;

	if (argc < 2 || rounds <= 0) {
		fprintf(stderr, "usage: checks_round CONFIG [ROUNDS]\n");
		return 2;
	}
	dropin = cfg_dropin_dir_for(argv[1]);
	if (agent_config_load(argv[1], dropin, &conf, &cfg) < 0 ||
	    cfg_print_errors(cfg) > 0)
		return 2;
	cfg_free(cfg);
	free(dropin);
	if (statedb_open(conf->state_dir, &db) < 0)
		fprintf(stderr, "checks_round: no state database: no prediction\n");
	conf->env.db = db;
	per_check = xcalloc(conf->nchecks, sizeof(*per_check));
	names = xcalloc(conf->nchecks, sizeof(*names));
	for (size_t c = 0; c < conf->nchecks; c++)
		names[c] = xstrdup(conf->checks[c].check->name);

	/* one warm-up round: first-use costs (schema, loading history) */
	{
		struct check_results r = { 0 };

		oneshot_run(conf, NULL, 0, now, &r);
		check_results_clear(&r);
	}
	self0 = cpu_us(RUSAGE_SELF);
	child0 = cpu_us(RUSAGE_CHILDREN);
	for (long i = 1; i <= rounds; i++) {
		for (size_t c = 0; c < conf->nchecks; c++) {
			char *name = names[c];
			struct check_results r = { 0 };
			double t0 = cpu_us(RUSAGE_SELF);

			oneshot_run(conf, &name, 1, now + i * 60000, &r);
			per_check[c] += cpu_us(RUSAGE_SELF) - t0;
			results += (double)r.n;
			check_results_clear(&r);
		}
	}
	printf("checks_round: %ld rounds of %zu checks, %.1f results per round\n",
	       rounds, conf->nchecks, results / (double)rounds);
	printf("checks_round: agent CPU per round: %.0f us (user+system)\n",
	       (cpu_us(RUSAGE_SELF) - self0) / (double)rounds);
	for (size_t c = 0; c < conf->nchecks; c++)
		printf("checks_round:   %-10s %8.0f us\n",
		       conf->checks[c].check->name, per_check[c] / (double)rounds);
	printf("checks_round: plugin child processes per round: %.0f us\n",
	       (cpu_us(RUSAGE_CHILDREN) - child0) / (double)rounds);
	for (size_t c = 0; c < conf->nchecks; c++)
		free(names[c]);
	free(names);
	free(per_check);
	agent_config_free(conf);
	statedb_close(db);
	return 0;
}
