/*
 * Child processes of checks, with real programs: output capture, exit
 * status, the output limit, the deadline killing the whole process group
 * (including a grandchild that keeps the pipe open), a missing program,
 * and the non-blocking pump a check uses from the agent's poll loop.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <stdbool.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../checks/run.h"
#include "../../common/util.h"

static const char *const env[] = { "PATH=/usr/bin:/bin", "LC_ALL=C", NULL };

static void test_output_and_status(void **state)
{
	const char *argv[] = { "/bin/sh", "-c",
			       "echo out; echo err >&2; echo \"$LC_ALL $HOME\"; exit 3",
			       NULL };
	struct run_result res = { 0 };
	char how[64];

	(void)state;
	assert_int_equal(run_capture(argv, env, 5000, 4096, &res), 0);
	assert_string_equal(res.output, "out\nerr\nC \n"); /* only envp, no HOME */
	assert_true(WIFEXITED(res.status));
	assert_int_equal(WEXITSTATUS(res.status), 3);
	assert_false(res.timed_out);
	assert_false(res.truncated);
	run_describe(&res, 5000, how, sizeof(how));
	assert_string_equal(how, "exited with status 3");
	run_result_clear(&res);
}

static void test_output_is_bounded(void **state)
{
	const char *argv[] = { "/bin/sh", "-c", "yes flood | head -c 1000000", NULL };
	struct run_result res = { 0 };

	(void)state;
	assert_int_equal(run_capture(argv, env, 10000, 1000, &res), 0);
	assert_int_equal(res.len, 1000);
	assert_int_equal(strlen(res.output), 1000);
	assert_true(res.truncated);
	/* the rest was read and dropped, so the child was not blocked */
	assert_true(WIFEXITED(res.status));
	run_result_clear(&res);
}

static bool dead(pid_t pid)
{
	char path[64], st[256] = "";
	bool zombie = false;
	FILE *fp;

	if (kill(pid, 0) < 0 && errno == ESRCH)
		return true;
	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fp = fopen(path, "r");
	if (fp == NULL)
		return true;
	if (fgets(st, sizeof(st), fp))
		zombie = strstr(st, ") Z ") != NULL;
	fclose(fp);
	return zombie;
}

static void test_deadline_kills_the_whole_group(void **state)
{
	/* the grandchild writes its pid and keeps stdout open */
	const char *argv[] = { "/bin/sh", "-c",
			       "sleep 30 & echo $!; exec sleep 30", NULL };
	struct run_result res = { 0 };
	int64_t t0 = time_mono_ms();
	char how[64];
	pid_t grandchild;

	(void)state;
	assert_int_equal(run_capture(argv, env, 300, 4096, &res), 0);
	assert_true(time_mono_ms() - t0 < 5000);
	assert_true(res.timed_out);
	run_describe(&res, 300, how, sizeof(how));
	assert_string_equal(how, "timed out after 300 ms");
	grandchild = (pid_t)strtol(res.output, NULL, 10);
	assert_true(grandchild > 0);
	/* killed with the group: gone, or a zombie waiting for its reaper */
	for (int i = 0; i < 100 && !dead(grandchild); i++)
		usleep(10000);
	assert_true(dead(grandchild));
	run_result_clear(&res);
}

static void test_missing_program(void **state)
{
	const char *argv[] = { "/nonexistent/apt-get", "-s", NULL };
	const char *relative[] = { "apt-get", NULL };
	struct run_result res = { 0 };

	(void)state;
	assert_int_equal(run_capture(argv, env, 1000, 4096, &res), -ENOENT);
	assert_int_equal(run_capture(relative, env, 1000, 4096, &res), -EINVAL);
}

static void test_pump_from_a_poll_loop(void **state)
{
	const char *argv[] = { "/bin/sh", "-c", "echo a; sleep 0.2; echo b", NULL };
	struct run_result res = { 0 };
	struct run_child *c;
	int r = 0, wakeups = 0;

	(void)state;
	assert_int_equal(run_start(argv, env, 5000, 4096, &c), 0);
	while (r == 0) {
		struct pollfd pfd = { .fd = run_fd(c), .events = POLLIN };

		assert_true(poll(&pfd, 1, 5000) == 1);
		wakeups++;
		r = run_pump(c, &res);
	}
	assert_int_equal(r, 1);
	assert_true(wakeups >= 2); /* output first, exit later */
	assert_string_equal(res.output, "a\nb\n");
	assert_true(res.wall_ms >= 200);
	run_result_clear(&res);
	run_free(c);
}

static void test_free_kills_a_running_child(void **state)
{
	const char *argv[] = { "/bin/sleep", "30", NULL };
	struct run_child *c;
	int64_t t0 = time_mono_ms();

	(void)state;
	assert_int_equal(run_start(argv, env, 60000, 4096, &c), 0);
	run_free(c);
	assert_true(time_mono_ms() - t0 < 5000);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_output_and_status),
		cmocka_unit_test(test_output_is_bounded),
		cmocka_unit_test(test_deadline_kills_the_whole_group),
		cmocka_unit_test(test_missing_program),
		cmocka_unit_test(test_pump_from_a_poll_loop),
		cmocka_unit_test(test_free_kills_a_running_child),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
