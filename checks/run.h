/*
 * Local programs run by checks (apt-get, apt-config, plugins): no shell,
 * a fixed argument vector and environment, stdin from /dev/null, stdout
 * and stderr captured together up to a limit, and a deadline after which
 * the child's whole process group is killed.
 *
 * A child runs in its own process group, so a timeout also kills what it
 * spawned.  run_start() returns at once; the caller either blocks in
 * run_wait() or polls run_fd() (readable on output, exit or deadline) and
 * calls run_pump() whenever it is readable, which is how a check keeps a
 * slow program off the agent's event loop.
 */
#ifndef TOCSIN_RUN_H
#define TOCSIN_RUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

struct run_result {
	int status;      /* wait(2) status; meaningful unless timed_out */
	bool timed_out;  /* killed at the deadline */
	bool truncated;  /* output beyond the limit was read and dropped */
	char *output;    /* stdout and stderr interleaved, NUL-terminated */
	size_t len;
	int64_t cpu_us;  /* user + system CPU of the child and what it waited for */
	int64_t wall_ms;
};

struct run_child;

/*
 * The spawn itself, for callers that watch the child on their own (the
 * plugin check keeps stdout and stderr apart): argv[0] (absolute) with
 * envp, stdin from /dev/null, stdout on out_fd and stderr on err_fd (may
 * be the same), in a process group of its own, default signal dispositions
 * and an empty signal mask, no other descriptor of ours, working directory
 * /.  0 and *ret_pid, or -errno (an exec failure included).
 */
int run_spawn(const char *const argv[], const char *const envp[], int out_fd,
	      int err_fd, pid_t *ret_pid);

/*
 * Start argv[0] (an absolute path) with envp.  0, or -errno when it could
 * not be started (-ENOENT for a missing program, -EACCES, ...).
 */
int run_start(const char *const argv[], const char *const envp[],
	      int64_t timeout_ms, size_t max_output, struct run_child **ret);
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
		int64_t timeout_ms, size_t max_output,
		struct run_result *ret_result);

/*
 * "exited with status 3", "killed by signal 9", "timed out after 30 s":
 * how a technician should read a result's fate.
 */
void run_describe(const struct run_result *result, int64_t timeout_ms,
		  char *buf, size_t size);

#endif
