/*
 * Child processes for checks, see run.h.
 *
 * One epoll descriptor per child watches three things: the output pipe,
 * a pidfd (readable once the child has exited) and a timerfd for the
 * deadline.  The child is finished when it has been reaped and its pipe
 * is at end of file, or when the deadline passed (then the group is
 * killed and a grandchild still holding the pipe is not waited for).
 */
#include "run.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/pidfd.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common/util.h"

struct run_child {
	pid_t pid;
	int out_fd;  /* read end of the output pipe, -1 after EOF */
	int pid_fd;  /* -1 after the child was reaped */
	int timer_fd;
	int epoll_fd;
	int64_t timeout_ms;
	int64_t started_ms;
	size_t max_output;
	struct run_result result;
	size_t cap;
	bool reaped;
};

static void close_fd(int *fd)
{
	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

static int watch(int epfd, int fd)
{
	struct epoll_event ev = { .events = EPOLLIN, .data.fd = fd };

	return epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

/* The deadline as a one-shot timer, part of the child's epoll set. */
static int arm_deadline(struct run_child *c)
{
	struct itimerspec its = {
		.it_value.tv_sec = c->timeout_ms / 1000,
		.it_value.tv_nsec = (c->timeout_ms % 1000) * 1000000 + 1,
	};

	c->timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (c->timer_fd < 0)
		return -errno;
	if (timerfd_settime(c->timer_fd, 0, &its, NULL) < 0)
		return -errno;
	return watch(c->epoll_fd, c->timer_fd);
}

/*
 * posix_spawn with the child in its own process group, default signal
 * dispositions and an empty signal mask (the agent blocks the signals it
 * reads through a signalfd, and a child must not inherit that).  Every
 * descriptor of the agent is close-on-exec already; closefrom is the belt
 * to those braces, for a library that forgot.
 */
int run_spawn(const char *const argv[], const char *const envp[], int out_fd,
	      int err_fd, pid_t *ret_pid)
{
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	char *const *av, *const *ev;
	sigset_t none, all;
	int r;

	/* posix_spawn's prototype predates const-correct argv and envp;
	 * it does not write through them. */
	memcpy(&av, &argv, sizeof(av));
	memcpy(&ev, &envp, sizeof(ev));

	sigemptyset(&none);
	sigfillset(&all);
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null",
					 O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, out_fd, STDOUT_FILENO);
	posix_spawn_file_actions_adddup2(&fa, err_fd, STDERR_FILENO);
	posix_spawn_file_actions_addclosefrom_np(&fa, STDERR_FILENO + 1);
	posix_spawn_file_actions_addchdir_np(&fa, "/");
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP |
						POSIX_SPAWN_SETSIGMASK |
						POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setpgroup(&attr, 0);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	r = posix_spawn(ret_pid, argv[0], &fa, &attr, av, ev);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	return -r;
}

int run_start(const char *const argv[], const char *const envp[],
	      int64_t timeout_ms, size_t max_output, struct run_child **ret)
{
	struct run_child *c = xcalloc(1, sizeof(*c));
	int pipefd[2] = { -1, -1 };
	int r;

	c->out_fd = c->pid_fd = c->timer_fd = c->epoll_fd = -1;
	c->pid = -1;
	c->timeout_ms = timeout_ms > 0 ? timeout_ms : 1;
	c->max_output = max_output;
	c->started_ms = time_mono_ms();
	c->cap = 4096 < max_output + 1 ? 4096 : max_output + 1;
	c->result.output = xcalloc(1, c->cap);

	if (argv[0] == NULL || argv[0][0] != '/') {
		r = -EINVAL;
		goto fail;
	}
	if (pipe2(pipefd, O_CLOEXEC) < 0) {
		r = -errno;
		goto fail;
	}
	r = run_spawn(argv, envp, pipefd[1], pipefd[1], &c->pid);
	close_fd(&pipefd[1]);
	c->out_fd = pipefd[0];
	if (r < 0) {
		c->pid = -1;
		goto fail;
	}
	if (fcntl(c->out_fd, F_SETFL, O_NONBLOCK) < 0)
		goto fail_errno;
	c->pid_fd = pidfd_open(c->pid, 0);
	c->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (c->pid_fd < 0 || c->epoll_fd < 0)
		goto fail_errno;
	r = watch(c->epoll_fd, c->out_fd);
	if (r == 0)
		r = watch(c->epoll_fd, c->pid_fd);
	if (r == 0)
		r = arm_deadline(c);
	if (r < 0)
		goto fail;
	*ret = c;
	return 0;
fail_errno:
	r = -errno;
fail:
	run_free(c);
	return r;
}

int run_fd(const struct run_child *c)
{
	return c->epoll_fd;
}

/* Append output up to the limit; the rest is read and dropped. */
static void keep_output(struct run_child *c, const char *buf, size_t n)
{
	struct run_result *res = &c->result;
	size_t room = c->max_output - res->len;

	if (n > room) {
		res->truncated = true;
		n = room;
	}
	if (n == 0)
		return;
	if (res->len + n + 1 > c->cap) {
		while (res->len + n + 1 > c->cap)
			c->cap *= 2;
		res->output = xreallocarray(res->output, c->cap, 1);
	}
	memcpy(res->output + res->len, buf, n);
	res->len += n;
	res->output[res->len] = '\0';
}

static int drain_output(struct run_child *c)
{
	char buf[16384];

	while (c->out_fd >= 0) {
		ssize_t n = read(c->out_fd, buf, sizeof(buf));

		if (n > 0) {
			keep_output(c, buf, (size_t)n);
			continue;
		}
		if (n == 0) {
			epoll_ctl(c->epoll_fd, EPOLL_CTL_DEL, c->out_fd, NULL);
			close_fd(&c->out_fd);
			break;
		}
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN)
			break;
		return -errno;
	}
	return 0;
}

static int reap(struct run_child *c, int flags)
{
	struct rusage ru = { 0 };
	int status = 0;
	pid_t p;

	if (c->reaped)
		return 0;
	do
		p = wait4(c->pid, &status, flags, &ru);
	while (p < 0 && errno == EINTR);
	if (p < 0)
		return -errno;
	if (p == 0)
		return 0;
	c->reaped = true;
	c->result.status = status;
	c->result.cpu_us = (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) *
				   1000000 +
			   ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
	epoll_ctl(c->epoll_fd, EPOLL_CTL_DEL, c->pid_fd, NULL);
	close_fd(&c->pid_fd);
	return 0;
}

static bool deadline_passed(struct run_child *c)
{
	uint64_t expirations;

	return read(c->timer_fd, &expirations, sizeof(expirations)) ==
	       sizeof(expirations);
}

int run_pump(struct run_child *c, struct run_result *ret_result)
{
	int r = drain_output(c);

	if (r == 0)
		r = reap(c, WNOHANG);
	if (r < 0)
		return r;
	if (!c->result.timed_out && !(c->reaped && c->out_fd < 0) &&
	    deadline_passed(c)) {
		c->result.timed_out = true;
		kill(-c->pid, SIGKILL);
		r = reap(c, 0);
		if (r < 0)
			return r;
		drain_output(c);
	}
	if (!c->reaped || (c->out_fd >= 0 && !c->result.timed_out))
		return 0;
	c->result.wall_ms = time_mono_ms() - c->started_ms;
	*ret_result = c->result;
	c->result = (struct run_result){ 0 };
	return 1;
}

int run_wait(struct run_child *c, struct run_result *ret_result)
{
	for (;;) {
		struct pollfd pfd = { .fd = c->epoll_fd, .events = POLLIN };
		int r = run_pump(c, ret_result);

		if (r != 0)
			return r < 0 ? r : 0;
		if (poll(&pfd, 1, -1) < 0 && errno != EINTR)
			return -errno;
	}
}

void run_free(struct run_child *c)
{
	if (c == NULL)
		return;
	if (c->pid > 0 && !c->reaped) {
		kill(-c->pid, SIGKILL);
		reap(c, 0);
	}
	close_fd(&c->out_fd);
	close_fd(&c->pid_fd);
	close_fd(&c->timer_fd);
	close_fd(&c->epoll_fd);
	run_result_clear(&c->result);
	free(c);
}

void run_result_clear(struct run_result *result)
{
	free(result->output);
	*result = (struct run_result){ 0 };
}

int run_capture(const char *const argv[], const char *const envp[],
		int64_t timeout_ms, size_t max_output,
		struct run_result *ret_result)
{
	struct run_child *c;
	int r = run_start(argv, envp, timeout_ms, max_output, &c);

	if (r < 0)
		return r;
	r = run_wait(c, ret_result);
	run_free(c);
	return r;
}

void run_describe(const struct run_result *res, int64_t timeout_ms,
		  char *buf, size_t size)
{
	char d[32];

	if (res->timed_out) {
		if (timeout_ms < 1000)
			snprintf(d, sizeof(d), "%lld ms", (long long)timeout_ms);
		else
			format_duration(timeout_ms / 1000, d, sizeof(d));
		snprintf(buf, size, "timed out after %s", d);
	} else if (WIFEXITED(res->status)) {
		snprintf(buf, size, "exited with status %d",
			 WEXITSTATUS(res->status));
	} else if (WIFSIGNALED(res->status)) {
		snprintf(buf, size, "killed by signal %d (%s)",
			 WTERMSIG(res->status), strsignal(WTERMSIG(res->status)));
	} else {
		snprintf(buf, size, "ended with wait status %d", res->status);
	}
}
