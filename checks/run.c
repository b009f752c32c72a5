/*
 * Child processes for checks, see run.h.
 *
 * One epoll descriptor per child watches its output pipes, a pidfd
 * (readable once the child has exited) and a timerfd for the deadline.
 * The child is finished once its leader has exited and been reaped: its
 * group is killed first (what it left behind), and what is in the pipes
 * then is all the leader wrote, since it could not exit while blocked on
 * a full pipe.  At the deadline the group and the leader are killed and
 * the pidfd reports the end as for any exit, so nothing here ever blocks
 * on a child (but on one the kernel cannot kill, in uninterruptible
 * sleep).
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

#include "../common/children.h"
#include "../common/util.h"

/*
 * Every child gets TOCSIN_RUN=<n> first in its environment, n unique in
 * this agent: what its descendants inherit, so that one which left the
 * child's process group is still known as the child's (run_of()).
 */
#define RUN_MARK_NAME "TOCSIN_RUN="
/* How much of a process's environment is searched for the mark. */
#define RUN_ENVIRON_MAX (64 * 1024)

/* One output pipe of a child: what is kept, and what was dropped. */
struct run_pipe {
	int fd;          /* read end, -1 once closed */
	char *data;      /* NUL-terminated */
	size_t len;
	size_t cap;
	size_t limit;    /* bytes kept */
	size_t dropped;  /* bytes past the limit, read and dropped */
	size_t drain_max;
	bool truncated;
	bool cut;        /* closed by us past drain_max */
};

struct run_child {
	pid_t pid;
	int pid_fd;  /* -1 after the child was reaped */
	int timer_fd;
	int epoll_fd;
	struct run_pipe out;
	struct run_pipe err; /* fd -1 throughout when stderr goes to out */
	int64_t started_ms;
	bool timed_out;
	bool reaped;
	int status;
	int64_t cpu_us;
	uint64_t mark;       /* its TOCSIN_RUN */
	size_t left_behind;  /* see run_result */
	struct run_child *next_live; /* in live_runs until reaped */
};

/* The children started and not yet reaped, newest first. */
static struct run_child *live_runs;
static uint64_t last_mark;

static void live_remove(struct run_child *c)
{
	for (struct run_child **p = &live_runs; *p != NULL; p = &(*p)->next_live) {
		if (*p == c) {
			*p = c->next_live;
			return;
		}
	}
}

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
static int arm_deadline(struct run_child *c, int64_t timeout_ms)
{
	struct itimerspec its = {
		.it_value.tv_sec = timeout_ms / 1000,
		.it_value.tv_nsec = (timeout_ms % 1000) * 1000000 + 1,
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
 * reads through a signalfd, and a child must not inherit that), working
 * directory /, and every descriptor above 2 closed: our own are
 * close-on-exec, but libcurl's sockets are not.  -errno when it could not
 * be started, an exec failure included.
 */
static int spawn(const char *const argv[], const char *const envp[],
		 int out_fd, int err_fd, pid_t *ret_pid)
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

static void pipe_init(struct run_pipe *p, size_t limit, size_t drain_max)
{
	*p = (struct run_pipe){
		.fd = -1,
		.cap = limit + 1 < 4096 ? limit + 1 : 4096,
		.limit = limit,
		.drain_max = drain_max ? drain_max : RUN_DRAIN_DEFAULT,
	};
	p->data = xcalloc(1, p->cap);
}

/*
 * A pipe whose read end we keep (non-blocking, close-on-exec) and whose
 * write end the child gets (blocking, like any ordinary stdout).
 */
static int pipe_open(int *ret_read, int *ret_write)
{
	int fds[2];

	if (pipe2(fds, O_CLOEXEC) < 0)
		return -errno;
	if (fcntl(fds[0], F_SETFL, O_NONBLOCK) < 0) {
		int r = -errno;

		close(fds[0]);
		close(fds[1]);
		return r;
	}
	*ret_read = fds[0];
	*ret_write = fds[1];
	return 0;
}

/* envp behind the child's mark; free the array and its first string. */
static char **marked_env(const char *const envp[], uint64_t mark)
{
	size_t n = 0;
	char **env;

	while (envp[n] != NULL)
		n++;
	env = xcalloc(n + 2, sizeof(*env));
	env[0] = xasprintf(RUN_MARK_NAME "%llu", (unsigned long long)mark);
	memcpy(env + 1, envp, n * sizeof(*env));
	return env;
}

int run_start(const char *const argv[], const char *const envp[],
	      const struct run_options *opt, struct run_child **ret)
{
	struct run_child *c = xcalloc(1, sizeof(*c));
	int out_w = -1, err_w = -1;
	char **env;
	int r;

	c->pid_fd = c->timer_fd = c->epoll_fd = -1;
	c->pid = -1;
	c->started_ms = time_mono_ms();
	pipe_init(&c->out, opt->max_output, opt->drain_max);
	pipe_init(&c->err, opt->stderr_apart ? opt->max_stderr : 0,
		  opt->drain_max);

	if (argv[0] == NULL || argv[0][0] != '/') {
		r = -EINVAL;
		goto fail;
	}
	r = pipe_open(&c->out.fd, &out_w);
	if (r == 0 && opt->stderr_apart)
		r = pipe_open(&c->err.fd, &err_w);
	if (r < 0)
		goto fail;
	c->mark = ++last_mark;
	env = marked_env(envp, c->mark);
	r = spawn(argv, (const char *const *)env, out_w,
		  err_w >= 0 ? err_w : out_w, &c->pid);
	free(env[0]);
	free(env);
	close_fd(&out_w);
	close_fd(&err_w);
	if (r < 0) {
		c->pid = -1;
		goto fail;
	}
	children_own(c->pid);
	c->next_live = live_runs;
	live_runs = c;
	c->pid_fd = pidfd_open(c->pid, 0);
	c->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
	if (c->pid_fd < 0 || c->epoll_fd < 0) {
		r = -errno;
		goto fail;
	}
	r = watch(c->epoll_fd, c->out.fd);
	if (r == 0 && c->err.fd >= 0)
		r = watch(c->epoll_fd, c->err.fd);
	if (r == 0)
		r = watch(c->epoll_fd, c->pid_fd);
	if (r == 0)
		r = arm_deadline(c, opt->timeout_ms > 0 ? opt->timeout_ms : 1);
	if (r < 0)
		goto fail;
	*ret = c;
	return 0;
fail:
	/* a child we cannot watch must not run unwatched: run_free kills it */
	run_free(c);
	return r;
}

int run_fd(const struct run_child *c)
{
	return c->epoll_fd;
}

/* Keep n bytes up to the limit; count the rest as dropped. */
static void pipe_keep(struct run_pipe *p, const char *buf, size_t n)
{
	size_t room = p->limit - p->len;

	if (n > room) {
		p->truncated = true;
		p->dropped += n - room;
		n = room;
	}
	if (n == 0)
		return;
	if (p->len + n + 1 > p->cap) {
		while (p->len + n + 1 > p->cap)
			p->cap *= 2;
		p->data = xreallocarray(p->data, p->cap, 1);
	}
	memcpy(p->data + p->len, buf, n);
	p->len += n;
	p->data[p->len] = '\0';
}

static void pipe_close(struct run_child *c, struct run_pipe *p)
{
	if (p->fd < 0)
		return;
	epoll_ctl(c->epoll_fd, EPOLL_CTL_DEL, p->fd, NULL);
	close_fd(&p->fd);
}

/*
 * Read what the pipe has now.  It is closed at end of file, on an error
 * and once more than drain_max was dropped: the writer then dies of
 * SIGPIPE or meets its deadline, and we stop copying its flood.
 */
static void pipe_drain(struct run_child *c, struct run_pipe *p)
{
	char buf[16384];

	while (p->fd >= 0) {
		ssize_t n;

		if (p->dropped >= p->drain_max) {
			p->cut = true;
			pipe_close(c, p);
			break;
		}
		n = read(p->fd, buf, sizeof(buf));
		if (n > 0) {
			pipe_keep(p, buf, (size_t)n);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno == EAGAIN)
			break;
		pipe_close(c, p);
	}
}

/*
 * A process's state letter ('Z' for a zombie) and process group, from
 * /proc/<pid>/stat; 0 or -errno (-ENOENT once it is gone).
 */
static int proc_state(pid_t pid, char *ret_state, pid_t *ret_pgid)
{
	char path[64], buf[512], *p, state;
	int fd, pgid, r;
	ssize_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	r = n < 0 ? -errno : n == 0 ? -EIO : 0;
	close(fd);
	if (r < 0)
		return r;
	buf[n] = '\0';
	/* "pid (comm) S ppid pgrp ...": comm may hold anything but ends at the last ')' */
	p = strrchr(buf, ')');
	if (p == NULL || sscanf(p + 1, " %c %*d %d", &state, &pgid) != 2)
		return -EIO;
	*ret_state = state;
	*ret_pgid = (pid_t)pgid;
	return 0;
}

/* The TOCSIN_RUN a process was started with, 0 when none is found. */
static uint64_t proc_mark(pid_t pid)
{
	char path[64], *buf = xcalloc(1, RUN_ENVIRON_MAX + 1);
	size_t len = 0, name = strlen(RUN_MARK_NAME);
	uint64_t mark = 0;
	ssize_t n = 0;
	int fd;

	snprintf(path, sizeof(path), "/proc/%d/environ", (int)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	while (fd >= 0 && len < RUN_ENVIRON_MAX &&
	       ((n = read(fd, buf + len, RUN_ENVIRON_MAX - len)) > 0 ||
		(n < 0 && errno == EINTR)))
		len += n > 0 ? (size_t)n : 0;
	if (fd >= 0)
		close(fd);
	for (size_t i = 0; i < len; i += strlen(buf + i) + 1) {
		if (strncmp(buf + i, RUN_MARK_NAME, name) == 0) {
			mark = strtoull(buf + i + name, NULL, 10);
			break;
		}
	}
	free(buf);
	return mark;
}

/*
 * Which running child an adopted process came from: the one whose group
 * it is in, else the one whose mark it carries.  NULL when neither tells
 * (it cleared its environment, or its child was reaped already).
 */
static struct run_child *run_of(pid_t pid, pid_t pgid)
{
	uint64_t mark;

	for (struct run_child *r = live_runs; r != NULL; r = r->next_live)
		if (r->pid == pgid)
			return r;
	mark = proc_mark(pid);
	for (struct run_child *r = live_runs; mark && r != NULL; r = r->next_live)
		if (r->mark == mark)
			return r;
	return NULL;
}

/*
 * Kill and reap what child c left behind, once its leader has exited:
 * the agent is a subreaper (children.h), so the leader's children became
 * ours when it exited, whichever group or session they had moved to, and
 * the children of each one killed become ours as it dies; so we go round
 * until none is left.  Adopted processes that belong to another running
 * child are left to it; ones nobody can be told from are killed now, and
 * every zombie nobody owns is reaped.  Each is our unreaped child, so its
 * pid cannot be reused under our kill().  Returns how many were still
 * running, but for the members of c's group when c was killed at its
 * deadline: those died with it.
 */
static size_t sweep(struct run_child *c)
{
	size_t left = 0;
	bool again = true;

	while (again) {
		pid_t *kids, pgid = 0;
		size_t n;
		char state = 0;

		again = false;
		if (children_unowned(&kids, &n) < 0)
			break;
		for (size_t i = 0; i < n; i++) {
			struct run_child *owner;

			if (proc_state(kids[i], &state, &pgid) < 0)
				continue;
			if (state != 'Z') {
				owner = run_of(kids[i], pgid);
				if (owner != NULL && owner != c)
					continue;
				/* one we may not kill (it became root for good)
				 * we must not wait for either */
				if (kill(kids[i], SIGKILL) < 0 && errno != ESRCH)
					continue;
				if (!(c->timed_out && pgid == c->pid))
					left++;
			}
			while (waitpid(kids[i], NULL, 0) < 0 && errno == EINTR)
				;
			again = true;
		}
		free(kids);
	}
	return left;
}

/*
 * Reap the leader once it has exited (block: wait for that): kill what
 * it left behind first, in its group and out of it (while the leader is
 * a zombie its pid, the group's id, cannot be reused), then collect its
 * status and CPU time.  0 whether or not it had exited, -errno on
 * failure.
 */
static int reap_if_exited(struct run_child *c, bool block)
{
	siginfo_t si = { 0 };
	struct rusage ru = { 0 };
	int status = 0;
	pid_t p;

	if (c->reaped)
		return 0;
	while (waitid(P_PID, (id_t)c->pid, &si,
		      WEXITED | WNOWAIT | (block ? 0 : WNOHANG)) < 0) {
		if (errno != EINTR)
			return -errno;
	}
	if (si.si_pid == 0)
		return 0; /* still running */
	c->left_behind = sweep(c);
	kill(-c->pid, SIGKILL);
	do
		p = wait4(c->pid, &status, 0, &ru);
	while (p < 0 && errno == EINTR);
	if (p < 0)
		return -errno;
	c->reaped = true;
	children_disown(c->pid);
	live_remove(c);
	c->status = status;
	c->cpu_us = (int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
		    ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
	epoll_ctl(c->epoll_fd, EPOLL_CTL_DEL, c->pid_fd, NULL);
	close_fd(&c->pid_fd);
	return 0;
}

/*
 * Kill a child not yet reaped: its group, and its leader by its pidfd,
 * for a leader that moved to another group (setpgid) escapes kill(-pid)
 * and would run on past its deadline, or block run_free().  Until the
 * leader is reaped neither its pid nor the group's id can be reused.
 */
static void kill_child(struct run_child *c)
{
	kill(-c->pid, SIGKILL);
	if (c->pid_fd < 0 || pidfd_send_signal(c->pid_fd, SIGKILL, NULL, 0) < 0)
		kill(c->pid, SIGKILL);
}

static bool deadline_passed(struct run_child *c)
{
	uint64_t expirations;

	return read(c->timer_fd, &expirations, sizeof(expirations)) ==
	       sizeof(expirations);
}

/* Move what the child left into *ret (the child keeps nothing). */
static void take_result(struct run_child *c, struct run_result *ret)
{
	*ret = (struct run_result){
		.status = c->status,
		.timed_out = c->timed_out,
		.truncated = c->out.truncated,
		.err_cut = c->err.cut,
		.output = c->out.data,
		.len = c->out.len,
		.cpu_us = c->cpu_us,
		.left_behind = c->left_behind,
		.wall_ms = time_mono_ms() - c->started_ms,
	};
	c->out.data = NULL;
	if (c->err.limit > 0) {
		ret->errout = c->err.data;
		ret->errlen = c->err.len;
		c->err.data = NULL;
	}
}

int run_pump(struct run_child *c, struct run_result *ret_result)
{
	int r;

	pipe_drain(c, &c->out);
	pipe_drain(c, &c->err);
	if (!c->timed_out && !c->reaped && deadline_passed(c)) {
		/* the pidfd reports the end of the group's leader */
		c->timed_out = true;
		kill_child(c);
	}
	r = reap_if_exited(c, false);
	if (r < 0)
		return r;
	if (!c->reaped)
		return 0;
	/* the leader's last words, and nothing after them */
	pipe_drain(c, &c->out);
	pipe_drain(c, &c->err);
	pipe_close(c, &c->out);
	pipe_close(c, &c->err);
	take_result(c, ret_result);
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
		kill_child(c);
		if (reap_if_exited(c, true) < 0) {
			/* not ours to wait for after all; forget it */
			children_disown(c->pid);
			live_remove(c);
		}
	}
	close_fd(&c->out.fd);
	close_fd(&c->err.fd);
	close_fd(&c->pid_fd);
	close_fd(&c->timer_fd);
	close_fd(&c->epoll_fd);
	free(c->out.data);
	free(c->err.data);
	free(c);
}

void run_result_clear(struct run_result *result)
{
	free(result->output);
	free(result->errout);
	*result = (struct run_result){ 0 };
}

int run_capture(const char *const argv[], const char *const envp[],
		const struct run_options *opt, struct run_result *ret_result)
{
	struct run_child *c;
	int r = run_start(argv, envp, opt, &c);

	if (r < 0)
		return r;
	r = run_wait(c, ret_result);
	run_free(c);
	return r;
}

void run_format_timeout(int64_t timeout_ms, char *buf, size_t size)
{
	if (timeout_ms < 1000)
		snprintf(buf, size, "%lld ms", (long long)timeout_ms);
	else
		format_duration(timeout_ms / 1000, buf, size);
}

void run_describe(const struct run_result *res, int64_t timeout_ms,
		  char *buf, size_t size)
{
	char d[32];

	if (res->timed_out) {
		run_format_timeout(timeout_ms, d, sizeof(d));
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
