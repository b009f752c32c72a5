/*
 * One round of checks for --once, --dry-run and `tocsin-agent check`:
 * every selected check runs once, checks that finish their work later
 * (plugins) are waited for until they have reported, and nothing runs
 * twice.
 *
 * Test hook: when TOCSIN_AGENT_TEST_NOW is set (an RFC 3339 time or
 * seconds since the epoch), one-shot runs hand the checks that wall clock
 * instead of the real one, so that a test can feed the disk check a week
 * of samples in a few seconds by running the real agent several times.
 * The daemon never reads it; main.c logs a warning when it is in effect.
 */
#ifndef TOCSIN_ONESHOT_H
#define TOCSIN_ONESHOT_H

#include <stddef.h>
#include <stdint.h>

#include "agent.h"

#define ONESHOT_TEST_NOW_ENV "TOCSIN_AGENT_TEST_NOW"
/* The longest a one-shot run waits for checks still at work. */
#define ONESHOT_WAIT_MAX_MS (10 * 60 * 1000)

/*
 * The wall clock for one-shot runs.  0 and *ret_now_ms (the test hook's
 * value when set, *ret_hooked true); -EINVAL when the hook is set to
 * something that is not a time.
 */
int oneshot_clock(int64_t *ret_now_ms, bool *ret_hooked);

/*
 * Check that every name in names is a check this configuration runs.
 * 0, or -ENOENT with a message naming the first one that is not.
 */
int oneshot_check_names(const struct agent_config *conf, char *const *names,
			size_t nnames, char *err, size_t errlen);

/*
 * Run the checks named in names (every check when nnames is 0) once at
 * now_ms and append their results, each tagged with its check's name.
 * Marks the configuration's env as one-shot.
 */
void oneshot_run(struct agent_config *conf, char *const *names,
		 size_t nnames, int64_t now_ms, struct check_results *results);

#endif
