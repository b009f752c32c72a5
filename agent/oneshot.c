/*
 * One round of checks, waited for; see oneshot.h.
 */
#include "oneshot.h"

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"

int oneshot_clock(int64_t *ret_now_ms, bool *ret_hooked)
{
	const char *hook = getenv(ONESHOT_TEST_NOW_ENV);
	int64_t v;

	if (hook == NULL || hook[0] == '\0') {
		*ret_now_ms = time_now_ms();
		*ret_hooked = false;
		return 0;
	}
	if (time_parse_rfc3339(hook, &v) < 0) {
		if (parse_int64(hook, &v) < 0 || v < 0 || v > INT64_MAX / 1000)
			return -EINVAL;
		v *= 1000;
	}
	*ret_now_ms = v;
	*ret_hooked = true;
	return 0;
}

static bool selected(const struct agent_check *ac, char *const *names,
		     size_t nnames)
{
	if (nnames == 0)
		return true;
	for (size_t i = 0; i < nnames; i++)
		if (strcmp(names[i], ac->check->name) == 0)
			return true;
	return false;
}

int oneshot_check_names(const struct agent_config *conf, char *const *names,
			size_t nnames, char *err, size_t errlen)
{
	for (size_t i = 0; i < nnames; i++) {
		char known[256] = "";
		bool found = false;

		for (size_t j = 0; j < conf->nchecks; j++)
			found |= strcmp(conf->checks[j].check->name, names[i]) == 0;
		if (found)
			continue;
		if (checks_find(names[i]) != NULL) {
			snprintf(err, errlen,
				 "the %s check is not enabled in the configuration",
				 names[i]);
			return -ENOENT;
		}
		for (size_t j = 0; checks_table[j]; j++) {
			if (j > 0)
				strlcat_safe(known, ", ", sizeof(known));
			strlcat_safe(known, checks_table[j]->name, sizeof(known));
		}
		snprintf(err, errlen, "there is no check named '%s' (checks: %s)",
			 names[i], known);
		return -ENOENT;
	}
	return 0;
}

/* Name the results from index first on after ck. */
static void tag(struct check_results *results, size_t first,
		const struct check *ck)
{
	for (size_t j = first; j < results->n; j++)
		if (results->v[j].check == NULL)
			results->v[j].check = xstrdup(ck->name);
}

static bool still_busy(const struct agent_check *ac)
{
	return ac->check->busy && ac->check->busy(ac->ctx) &&
	       ac->check->watch_fd && ac->check->on_ready &&
	       ac->check->watch_fd(ac->ctx) >= 0;
}

/*
 * Poll the checks still at work until none is, or the time is up; a
 * check still busy then reports that it was given up on.
 */
static void wait_for_busy(struct agent_config *conf, char *const *names,
			  size_t nnames, int64_t now_ms,
			  struct check_results *results)
{
	int64_t deadline = time_mono_ms() + ONESHOT_WAIT_MAX_MS;
	struct pollfd *pfds = xcalloc(conf->nchecks, sizeof(*pfds));
	struct agent_check **owner = xcalloc(conf->nchecks, sizeof(*owner));

	for (;;) {
		int64_t left = deadline - time_mono_ms();
		size_t n = 0;

		for (size_t i = 0; i < conf->nchecks; i++) {
			struct agent_check *ac = &conf->checks[i];

			if (!selected(ac, names, nnames) || !still_busy(ac))
				continue;
			pfds[n] = (struct pollfd){ .fd = ac->check->watch_fd(ac->ctx),
						   .events = POLLIN };
			owner[n++] = ac;
		}
		if (n == 0)
			break;
		if (left <= 0) {
			for (size_t i = 0; i < n; i++) {
				size_t first = results->n;

				check_results_add(results, owner[i]->check->name,
						  CHECK_UNKNOWN, NULL,
						  "the %s check was still at work after %d minutes",
						  owner[i]->check->name,
						  ONESHOT_WAIT_MAX_MS / 60000);
				tag(results, first, owner[i]->check);
			}
			break;
		}
		if (poll(pfds, n, (int)(left > 1000 ? 1000 : left)) < 0 &&
		    errno != EINTR)
			break;
		for (size_t i = 0; i < n; i++) {
			size_t first = results->n;

			if (!(pfds[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			owner[i]->check->on_ready(owner[i]->ctx, now_ms, results);
			tag(results, first, owner[i]->check);
		}
	}
	free(pfds);
	free(owner);
}

/* Results of late checks came last: put every check's results together,
 * in the order the checks run, each check's in the order it gave them. */
static void group_by_check(const struct agent_config *conf,
			   struct check_results *results)
{
	struct check_result *v = xcalloc(results->n, sizeof(*v));
	bool *taken = xcalloc(results->n, sizeof(*taken));
	size_t n = 0;

	for (size_t i = 0; i < conf->nchecks; i++)
		for (size_t j = 0; j < results->n; j++)
			if (!taken[j] && strcmp(results->v[j].check,
						conf->checks[i].check->name) == 0) {
				v[n++] = results->v[j];
				taken[j] = true;
			}
	for (size_t j = 0; j < results->n; j++)
		if (!taken[j])
			v[n++] = results->v[j];
	free(taken);
	free(results->v);
	results->v = v;
	results->cap = results->n;
}

void oneshot_run(struct agent_config *conf, char *const *names,
		 size_t nnames, int64_t now_ms, struct check_results *results)
{
	conf->env.one_shot = true;
	for (size_t i = 0; i < conf->nchecks; i++) {
		struct agent_check *ac = &conf->checks[i];
		size_t first = results->n;

		if (!selected(ac, names, nnames))
			continue;
		if (ac->check->collect(ac->ctx, now_ms, results) < 0)
			check_results_add(results, ac->check->name,
					  CHECK_UNKNOWN, NULL,
					  "the %s check failed to run",
					  ac->check->name);
		tag(results, first, ac->check);
	}
	wait_for_busy(conf, names, nnames, now_ms, results);
	if (results->n > 0)
		group_by_check(conf, results);
}
