/*
 * Local programs run by checks (apt-get, apt-config, plugins): no shell,
 * a fixed argument vector and environment, stdin from /dev/null, no
 * descriptor of the agent's but 0, 1 and 2 (libcurl's sockets are not
 * close-on-exec), stdout and stderr captured up to limits, together or
 * apart, and a deadline.
 *
 * A child runs in its own process group.  When the deadline passes the
 * whole group is killed, and the child itself should it have left it;
 * when the child exits (or is killed), whatever it left running is killed
 * too, so neither a hang nor a forgotten background process outlives its
 * check.  That includes descendants that left its group or session
 * (setsid): where the agent is a child subreaper (children.h) they become
 * the agent's children as their parents die, and are told from another
 * child's by their group or by TOCSIN_RUN=<n>, which every child gets
 * first in its environment and its descendants inherit.  Output past a limit is read and dropped up to a drain limit,
 * then its pipe is closed, so a program that floods dies of SIGPIPE
 * instead of making the agent copy gigabytes into the void.
 *
 * run_start() returns at once; the caller either blocks in run_wait() or
 * polls run_fd() (readable on output, exit or deadline) and calls
 * run_pump() whenever it is readable, which is how a check keeps a slow
 * program off the agent's event loop.
 */
#ifndef TOCSIN_RUN_H
#define TOCSIN_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* What is drained past a limit before the pipe is closed, by default. */
#define RUN_DRAIN_DEFAULT (1024 * 1024)

struct run_options {
	int64_t timeout_ms;  /* then the group is killed (at least 1 ms) */
	size_t max_output;   /* bytes of stdout kept (and of stderr with it) */
	bool stderr_apart;   /* stderr into a buffer of its own */
	size_t max_stderr;   /* bytes of it kept, when apart */
	size_t drain_max;    /* past a limit; 0 is RUN_DRAIN_DEFAULT */
};

struct run_result {
	int status;      /* wait(2) status; meaningful unless timed_out */
	bool timed_out;  /* killed at the deadline */
	bool truncated;  /* stdout beyond its limit was dropped */
	/* stderr apart past drain_max, so we closed its pipe: writing on,
	 * the child died of SIGPIPE (or saw EPIPE), through no fault of its
	 * own (stdout cut off is truncated too) */
	bool err_cut;
	char *output;    /* stdout (and stderr unless apart), NUL-terminated */
	size_t len;
	char *errout;    /* stderr when apart (else NULL), NUL-terminated */
	size_t errlen;
	int64_t cpu_us;  /* user + system CPU of the child and what it waited for */
	/* processes it left running when it exited, killed (when it timed
	 * out: those outside its group, which died with it) */
	size_t left_behind;
	int64_t wall_ms;
};

struct run_child;

/*
 * Start argv[0] (an absolute path) with envp.  0, or -errno when it could
 * not be started (-ENOENT for a missing program, -EACCES, -EINVAL for a
 * relative path, ...).
 */
int run_start(const char *const argv[], const char *const envp[],
	      const struct run_options *opt, struct run_child **ret);
/* The descriptor to poll for POLLIN; stays the same for the child's life. */
int run_fd(const struct run_child *child);
/*
 * Read what is there without blocking and act on exit or the deadline.
 * Returns 1 when the child is finished (its result moved to *ret_result,
 * which the caller clears), 0 while it runs, -errno on failure.
 */
int run_pump(struct run_child *child, struct run_result *ret_result);
/* Block until the child is finished; 0 and *ret_result, or -errno. */
int run_wait(struct run_child *child, struct run_result *ret_result);
/* Kill (the group of) a child still running, reap it, free everything. */
void run_free(struct run_child *child);
void run_result_clear(struct run_result *result);

/* run_start() + run_wait() + run_free(). */
int run_capture(const char *const argv[], const char *const envp[],
		const struct run_options *opt, struct run_result *ret_result);

/*
 * "exited with status 3", "killed by signal 9", "timed out after 30 s":
 * how a technician should read a result's fate.
 */
void run_describe(const struct run_result *result, int64_t timeout_ms,
		  char *buf, size_t size);
/* "30 s", "250 ms": a timeout as a summary says it. */
void run_format_timeout(int64_t timeout_ms, char *buf, size_t size);

#endif
