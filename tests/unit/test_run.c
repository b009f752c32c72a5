/*
 * Child processes of checks, with real programs: output capture, exit
 * status, the output limit, the deadline killing the whole process group
 * (including a grandchild that keeps the pipe open), a missing program,
 * the non-blocking pump a check uses from the agent's poll loop, no
 * descriptor of ours in the child, stderr apart, what a child leaves
 * behind killed at its exit, and a flood cut off.  Like the agent, the
 * test is a child subreaper, so that what left the group is killed too,
 * but neither another child's leftovers nor a child run.c does not own.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../../checks/run.h"
#include "../../common/children.h"
#include "../../common/util.h"

static const char *const env[] = { "PATH=/usr/bin:/bin", "LC_ALL=C", NULL };

/* A deadline and an output limit, stderr with stdout. */
#define OPTS(t, m) (&(struct run_options){ .timeout_ms = (t), .max_output = (m) })

static void test_output_and_status(void **state)
{
	const char *argv[] = { "/bin/sh", "-c",
			       "echo out; echo err >&2; echo \"$LC_ALL $HOME\"; exit 3",
			       NULL };
	struct run_result res = { 0 };
	char how[64];

	(void)state;
	assert_int_equal(run_capture(argv, env, OPTS(5000, 4096), &res), 0);
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
	assert_int_equal(run_capture(argv, env, OPTS(10000, 1000), &res), 0);
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
	assert_int_equal(run_capture(argv, env, OPTS(300, 4096), &res), 0);
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
	assert_int_equal(run_capture(argv, env, OPTS(1000, 4096), &res), -ENOENT);
	assert_int_equal(run_capture(relative, env, OPTS(1000, 4096), &res), -EINVAL);
}

static void test_pump_from_a_poll_loop(void **state)
{
	const char *argv[] = { "/bin/sh", "-c", "echo a; sleep 0.2; echo b", NULL };
	struct run_result res = { 0 };
	struct run_child *c;
	int r = 0, wakeups = 0;

	(void)state;
	assert_int_equal(run_start(argv, env, OPTS(5000, 4096), &c), 0);
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
	assert_int_equal(run_start(argv, env, OPTS(60000, 4096), &c), 0);
	run_free(c);
	assert_true(time_mono_ms() - t0 < 5000);
}

/*
 * A child that moves into our process group (setpgid) escapes the kill
 * of its own group: it is killed by its pidfd, at the deadline and by
 * run_free(), and does not sleep on to its natural end.  It says where
 * it is in the file argv[1] names: "left" once it left, "slept" at the
 * end it must not reach.
 */
#define LEAVE_GROUP \
	"import os, sys, time\n" \
	"os.setpgid(0, os.getpgid(os.getppid()))\n" \
	"print('left', flush=True)\n" \
	"open(sys.argv[1], 'a').write('left\\n')\n" \
	"time.sleep(8)\n" \
	"open(sys.argv[1], 'a').write('slept\\n')\n"

static char *leave_group_file(void)
{
	char *path = xasprintf("/tmp/tocsin-run-left-%ld", (long)getpid());

	unlink(path);
	return path;
}

static char *read_small_file(const char *path)
{
	char buf[64] = "";
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	ssize_t n = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;

	if (fd >= 0)
		close(fd);
	buf[n > 0 ? n : 0] = '\0';
	return xstrdup(buf);
}

static void test_deadline_kills_a_child_that_left_its_group(void **state)
{
	char *path = leave_group_file(), *said;
	const char *argv[] = { "/usr/bin/python3", "-c", LEAVE_GROUP, path, NULL };
	struct run_result res = { 0 };

	(void)state;
	assert_int_equal(run_capture(argv, env, OPTS(1000, 4096), &res), 0);
	assert_string_equal(res.output, "left\n");
	assert_true(res.timed_out);
	assert_true(WIFSIGNALED(res.status));
	assert_int_equal(WTERMSIG(res.status), SIGKILL);
	said = read_small_file(path);
	assert_string_equal(said, "left\n");
	unlink(path);
	free(said);
	free(path);
	run_result_clear(&res);
}

static void test_free_kills_a_child_that_left_its_group(void **state)
{
	char *path = leave_group_file(), *said = NULL;
	const char *argv[] = { "/usr/bin/python3", "-c", LEAVE_GROUP, path, NULL };
	struct run_child *c;

	(void)state;
	assert_int_equal(run_start(argv, env, OPTS(60000, 4096), &c), 0);
	for (int i = 0; i < 1000; i++) {
		free(said);
		said = read_small_file(path);
		if (said[0] != '\0')
			break;
		usleep(10000);
	}
	assert_string_equal(said, "left\n");
	run_free(c);
	free(said);
	said = read_small_file(path);
	assert_string_equal(said, "left\n");
	unlink(path);
	free(said);
	free(path);
}

/*
 * libcurl opens its sockets without close-on-exec, so the agent holds
 * descriptors a child would inherit: run.c closes everything above 2.
 * ls lists its own descriptors: 0-2 and the one it reads the list with.
 */
static void test_child_sees_only_0_1_2(void **state)
{
	const char *argv[] = { "/bin/ls", "/proc/self/fd", NULL };
	struct run_options o = *OPTS(5000, 4096);
	struct run_result res = { 0 };
	int sock = socket(AF_INET, SOCK_STREAM, 0); /* no SOCK_CLOEXEC */
	int copy = dup(sock);                      /* dup() clears it too */

	(void)state;
	assert_true(sock > 2 && copy > 2);
	assert_int_equal(fcntl(sock, F_GETFD) & FD_CLOEXEC, 0);
	assert_int_equal(run_capture(argv, env, &o, &res), 0);
	assert_string_equal(res.output, "0\n1\n2\n3\n");
	run_result_clear(&res);
	/* and the same with stderr on a pipe of its own */
	o.stderr_apart = true;
	o.max_stderr = 1024;
	assert_int_equal(run_capture(argv, env, &o, &res), 0);
	assert_string_equal(res.output, "0\n1\n2\n3\n");
	run_result_clear(&res);
	close(sock);
	close(copy);
}

static void test_stderr_apart(void **state)
{
	const char *argv[] = { "/bin/sh", "-c",
			       "echo out; echo err >&2; echo more-err >&2; exit 2",
			       NULL };
	struct run_options o = { .timeout_ms = 5000, .max_output = 4096,
				 .stderr_apart = true, .max_stderr = 5 };
	struct run_result res = { 0 };

	(void)state;
	assert_int_equal(run_capture(argv, env, &o, &res), 0);
	assert_string_equal(res.output, "out\n");
	assert_false(res.truncated);
	assert_string_equal(res.errout, "err\nm"); /* cut at its own limit */
	assert_int_equal(res.errlen, 5);
	assert_int_equal(WEXITSTATUS(res.status), 2);
	run_result_clear(&res);
}

/* A child that exits leaves nothing running in its group. */
static void test_what_a_child_leaves_behind_is_killed(void **state)
{
	const char *argv[] = { "/bin/sh", "-c",
			       "sleep 30 >/dev/null 2>&1 & echo $!", NULL };
	struct run_options o = *OPTS(10000, 4096);
	struct run_result res = { 0 };
	int64_t t0 = time_mono_ms();
	pid_t left;

	(void)state;
	assert_int_equal(run_capture(argv, env, &o, &res), 0);
	assert_false(res.timed_out);
	assert_true(time_mono_ms() - t0 < 5000);
	left = (pid_t)strtol(res.output, NULL, 10);
	assert_true(left > 0);
	for (int i = 0; i < 100 && !dead(left); i++)
		usleep(10000);
	assert_true(dead(left));
	run_result_clear(&res);
}

/* Start sleep in a session of its own and print its pid once it sleeps. */
#define ESCAPE \
	"setsid /bin/sleep 300 </dev/null >/dev/null 2>&1 & p=$!; " \
	"while [ \"$(cat /proc/$p/comm 2>/dev/null)\" != sleep ]; do :; done; " \
	"echo $p; "

/* Gone, and reaped: not even a zombie left. */
static bool reaped(pid_t pid)
{
	return kill(pid, 0) < 0 && errno == ESRCH;
}

/* Whether pid is still in a session of its own (setsid), and alive. */
static bool alone_in_session(pid_t pid)
{
	return getsid(pid) == pid && !dead(pid);
}

/*
 * Run ESCAPE then tail; the escaped sleep is gone once the run is over,
 * and counted as left behind (at a timeout, what was in the group died
 * with the child: the sleep 60 does not count).
 */
static void assert_escaped_is_killed(const char *tail, int64_t timeout_ms,
				     bool timed_out)
{
	char *script = xasprintf(ESCAPE "%s", tail);
	const char *argv[] = { "/bin/sh", "-c", script, NULL };
	struct run_result res = { 0 };
	pid_t left;

	assert_int_equal(run_capture(argv, env, OPTS(timeout_ms, 4096), &res), 0);
	assert_int_equal(res.timed_out, timed_out);
	left = (pid_t)strtol(res.output, NULL, 10);
	assert_true(left > 0);
	assert_true(reaped(left));
	assert_int_equal(res.left_behind, 1);
	run_result_clear(&res);
	free(script);
}

static void test_a_descendant_that_left_its_session_is_killed_at_exit(void **state)
{
	(void)state;
	assert_escaped_is_killed("exit 0", 10000, false);
}

static void test_a_descendant_that_left_its_session_is_killed_at_timeout(void **state)
{
	(void)state;
	assert_escaped_is_killed("sleep 60", 1000, true);
}

/* Its parent, from /proc/<pid>/stat; 0 once it is gone. */
static pid_t parent_of(pid_t pid)
{
	char path[64], st[256] = "", *p;
	int ppid = 0;
	FILE *fp;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fp = fopen(path, "re");
	if (fp == NULL)
		return 0;
	if (fgets(st, sizeof(st), fp) != NULL && (p = strrchr(st, ')')) != NULL)
		sscanf(p + 1, " %*c %d", &ppid);
	fclose(fp);
	return (pid_t)ppid;
}

/*
 * A child still running whose escaped grandchild is ours already (its
 * parent, the inner shell, exited): another child's end leaves it alone,
 * its own child's end kills it.
 */
static void test_another_childs_leftovers_wait_for_its_end(void **state)
{
	char *path = leave_group_file(), *said = NULL;
	char *script = xasprintf("/bin/sh -c '" ESCAPE "' > %s; exec sleep 60", path);
	const char *argv[] = { "/bin/sh", "-c", script, NULL };
	const char *quick[] = { "/bin/true", NULL };
	struct run_result res = { 0 };
	struct run_child *c;
	pid_t left = 0;

	(void)state;
	assert_int_equal(run_start(argv, env, OPTS(60000, 4096), &c), 0);
	for (int i = 0; i < 1000 && (left <= 0 || parent_of(left) != getpid()); i++) {
		free(said);
		said = read_small_file(path);
		left = (pid_t)strtol(said, NULL, 10);
		usleep(10000);
	}
	assert_true(left > 0);
	assert_int_equal(parent_of(left), getpid());
	assert_int_equal(run_capture(quick, env, OPTS(10000, 4096), &res), 0);
	assert_int_equal(res.left_behind, 0);
	assert_true(alone_in_session(left));
	run_free(c);
	assert_true(reaped(left));
	run_result_clear(&res);
	unlink(path);
	free(said);
	free(script);
	free(path);
}

/*
 * A child someone else started and waits for (the deliverer) is owned:
 * a run's end neither kills it nor takes its exit status.
 */
static void test_an_owned_child_keeps_its_status(void **state)
{
	char *const argv[] = { "/bin/sh", "-c", "exit 7", NULL };
	const char *quick[] = { "/bin/true", NULL };
	struct run_result res = { 0 };
	int status = 0;
	pid_t pid;

	(void)state;
	assert_int_equal(posix_spawn(&pid, argv[0], NULL, NULL, argv, NULL), 0);
	children_own(pid);
	while (!dead(pid))
		usleep(10000);
	assert_int_equal(run_capture(quick, env, OPTS(10000, 4096), &res), 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	children_disown(pid);
	assert_true(WIFEXITED(status));
	assert_int_equal(WEXITSTATUS(status), 7);
	run_result_clear(&res);
}

/* An endless writer is cut off once the drain limit is passed. */
static void test_a_flood_is_cut_off(void **state)
{
	const char *argv[] = { "/usr/bin/yes", "flood", NULL };
	struct run_options o = { .timeout_ms = 20000, .max_output = 1000,
				 .drain_max = 100000 };
	struct run_result res = { 0 };
	int64_t t0 = time_mono_ms();

	(void)state;
	assert_int_equal(run_capture(argv, env, &o, &res), 0);
	assert_true(time_mono_ms() - t0 < 10000);
	assert_false(res.timed_out);
	assert_true(res.truncated);
	assert_int_equal(res.len, 1000);
	assert_true(WIFSIGNALED(res.status));
	assert_int_equal(WTERMSIG(res.status), SIGPIPE);
	run_result_clear(&res);
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
		cmocka_unit_test(test_deadline_kills_a_child_that_left_its_group),
		cmocka_unit_test(test_free_kills_a_child_that_left_its_group),
		cmocka_unit_test(test_child_sees_only_0_1_2),
		cmocka_unit_test(test_stderr_apart),
		cmocka_unit_test(test_what_a_child_leaves_behind_is_killed),
		cmocka_unit_test(test_a_flood_is_cut_off),
		cmocka_unit_test(test_a_descendant_that_left_its_session_is_killed_at_exit),
		cmocka_unit_test(test_a_descendant_that_left_its_session_is_killed_at_timeout),
		cmocka_unit_test(test_another_childs_leftovers_wait_for_its_end),
		cmocka_unit_test(test_an_owned_child_keeps_its_status),
	};

	if (children_adopt_orphans() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
