/*
 * check_cost: the CPU one round of a check costs.
 *
 *   check_cost CONFIG CHECK [ROUNDS]
 *
 * Configures CHECK from the checks.CHECK section of the YAML file CONFIG
 * (role: from its top level), runs collect() once and then ROUNDS more
 * times (default 100), and prints the CPU time of this process per round
 * and, separately, that of child processes (the updates check's apt-get
 * and apt-config, which run in the first round and then every
 * apt_interval).  Prints figures; asserts nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "../checks/check.h"
#include "../common/config.h"
#include "../common/util.h"

static double cpu_ms(int who)
{
	struct rusage ru;

	getrusage(who, &ru);
	return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e3 +
	       (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1e3;
}

static void one_round(const struct check *ck, void *ctx, double *ret_self,
		      double *ret_children, size_t *ret_results)
{
	struct check_results out = { 0 };
	double s0 = cpu_ms(RUSAGE_SELF), c0 = cpu_ms(RUSAGE_CHILDREN);

	ck->collect(ctx, time_now_ms(), &out);
	*ret_self = cpu_ms(RUSAGE_SELF) - s0;
	*ret_children = cpu_ms(RUSAGE_CHILDREN) - c0;
	*ret_results = out.n;
	check_results_clear(&out);
}

int main(int argc, char **argv)
{
	static const char *const roles[] = { "decentral", "central", NULL };
	/* one-shot, so that the updates check's first round runs apt and
	 * waits for it (the daemon runs it in the background): its cost is
	 * what the first round measures */
	struct check_env env = { .host = "bench", .state_dir = "/tmp",
				 .one_shot = true };
	double self, children, total = 0, worst = 0, best = 1e9;
	const struct check *ck;
	struct cfg *cfg;
	void *ctx = NULL;
	int64_t rounds = 100;
	size_t results;
	int role = 0;

	if (argc < 3 || (argc > 3 && parse_int64(argv[3], &rounds) < 0) || rounds < 1) {
		fprintf(stderr, "usage: check_cost CONFIG CHECK [ROUNDS]\n");
		return 2;
	}
	ck = checks_find(argv[2]);
	if (ck == NULL) {
		fprintf(stderr, "check_cost: no check '%s'\n", argv[2]);
		return 2;
	}
	if (cfg_load(argv[1], NULL, &cfg) < 0 || cfg_print_errors(cfg) > 0)
		return 2;
	cfg_get_enum(cfg, cfg->root, "role", roles, &role);
	env.role = (enum check_role)role;
	ck->configure(cfg, cfg_get(cfg, cfg_get(cfg, cfg->root, "checks"), ck->name),
		      &env, &ctx);
	if (cfg_print_errors(cfg) > 0)
		return 2;

	one_round(ck, ctx, &self, &children, &results);
	printf("%s: first round %.2f ms CPU in the agent, %.1f ms in child processes, %zu results\n",
	       ck->name, self, children, results);
	for (int64_t i = 0; i < rounds; i++) {
		double c;

		one_round(ck, ctx, &self, &c, &results);
		total += self;
		worst = self > worst ? self : worst;
		best = self < best ? self : best;
	}
	printf("%s: %lld further rounds: %.3f ms CPU per round in the agent "
	       "(min %.3f, max %.3f), %zu results each\n",
	       ck->name, (long long)rounds, total / (double)rounds, best, worst,
	       results);
	ck->free(ctx);
	cfg_free(cfg);
	return 0;
}
