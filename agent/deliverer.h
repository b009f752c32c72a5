/*
 * The deliverer: everything of the agent that speaks to the network runs
 * in a separate small executable, tocsin-agent-deliver, so that the
 * long-running tocsin-agent (the checks and the outbox) never loads
 * libcurl and its TLS libraries (privilege separation in the manner of
 * OpenSMTPD: the process that parses what the network sends is not the
 * one that keeps the state).  This is the agent's side: finding the
 * program, starting it, the conversation, and its end.
 *
 * The conversation (frames of agent/wire.h on one socket, the deliverer's
 * descriptor 3; the agent asks, the deliverer answers each request once,
 * one request at a time):
 *
 *   hello   (first, no answer) {"op": "hello", "protocol": 1,
 *           "agent_pid": N, "urls": [...], "token": T | "credential": PATH,
 *           "timeout_ms", "ca_file", "pin_sha256", "client_cert",
 *           "client_key", "allow_plain_http", "retry_primary_ms",
 *           "current": URL index, "primary_retry_in_ms"}: the transport
 *           settings, and the failover state the agent keeps across
 *           deliverers (which URL answered last, when to try the first
 *           again).
 *   post    {"op": "post", "path": P} + the body (JSON) ->
 *           {"status": HTTP status or 0, "error": why, "message": the
 *           collector's words, "retry_after_ms", "url": index tried last,
 *           "switched", "current", "primary_retry_in_ms", "explained": the
 *           refusal came as the collector's {"error": ...}, "accepted":
 *           the collector's count in a 2xx (absent: no acknowledgement),
 *           "credential_changed": the credential file held a new secret
 *           after a 401/403, which the deliverer now uses}
 *   rotate  {"op": "rotate"} -> {"result": "rotated" | "unstored" |
 *           "failed", "credential_id", "error"}: trade the credential for
 *           a new one and store it in the credential file
 *   enroll  {"op": "enroll", "host": H, "state_dir": D} -> {"result":
 *           "enrolled" | "unstored" | "failed", "host", "customer",
 *           "credential_id", "error"}: the hello's token is an enrollment
 *           token; the credential goes to D/credential
 *
 * Closing the socket asks the deliverer to exit; it also dies with the
 * agent (PR_SET_PDEATHSIG).  The agent trusts nothing the deliverer says
 * beyond what it checks (deliverer_post_reply() and the callers), bounds
 * the size of its answers and kills a deliverer that does not answer in
 * time.
 */
#ifndef TOCSIN_DELIVERER_H
#define TOCSIN_DELIVERER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define DELIVERER_PROGRAM "tocsin-agent-deliver"
#ifndef DELIVERER_LIBEXEC_DIR
#define DELIVERER_LIBEXEC_DIR "/usr/libexec/tocsin"
#endif
#define DELIVERER_PROTOCOL 1
/* The deliverer's descriptor for the conversation. */
#define DELIVERER_FD 3
/* Beyond the collector's timeouts: exec, loading libcurl, TLS set-up. */
#define DELIVERER_SLACK_MS 5000
/* The largest answer the agent reads: a header and a small body. */
#define DELIVERER_REPLY_BODY_MAX (64 * 1024)
/* How long a deliverer asked to exit may take before it is killed. */
#define DELIVERER_EXIT_GRACE_MS 2000

struct agent_config;
struct deliverer;

/*
 * The program to run: configured (deliverer.path), else next to this
 * executable (how the build trees run), else in DELIVERER_LIBEXEC_DIR
 * (how the package installs it).  0 and a malloc'ed *ret_path, or
 * -ENOENT with why naming every place tried.
 */
int deliverer_locate(const char *configured, char **ret_path, char *why,
		     size_t whylen);

/*
 * The hello for conf: urls (NULL: conf's), token (NULL: the credential
 * file at credential_path), and the failover state.  New reference.
 */
json_t *deliverer_hello(const struct agent_config *conf, char *const *urls,
			const char *token, const char *credential_path,
			size_t current, int64_t primary_retry_in_ms);

/*
 * Start path with the socket as its descriptor 3 (every other descriptor
 * of ours closed, stdin /dev/null, stdout and stderr to our stderr, an
 * empty signal mask and default dispositions) and send hello.  0 and
 * *ret, or -errno (-ENOENT, -EACCES: the program cannot be run).
 */
int deliverer_spawn(const char *path, const json_t *hello,
		    struct deliverer **ret);

pid_t deliverer_pid(const struct deliverer *dv);
/* A request was sent and its answer has not been read yet. */
bool deliverer_busy(const struct deliverer *dv);

/*
 * Send a request: op, fields of extra (may be NULL; borrowed) and body.
 * 0, or -errno when the deliverer cannot take it (then kill it).
 */
int deliverer_request(struct deliverer *dv, const char *op, const json_t *extra,
		      const char *body, size_t len);

/*
 * The descriptor to poll for POLLIN: the socket while the deliverer
 * runs, its pidfd once it was asked to exit.
 */
int deliverer_fd(const struct deliverer *dv);

/*
 * Read what the answer to the request in flight still lacks, without
 * blocking.  1 and *ret_reply (new reference) when it is complete, 0
 * when more is to come, or the error, with why:
 *   -EPIPE       the deliverer closed the socket (it died; why is empty,
 *                or says how far into an answer it got);
 *   -ECONNRESET  it closed it with our request unread (it died too; why
 *                "read from the deliverer: Connection reset by peer ...");
 *   -EMSGSIZE, -EBADMSG  a malformed frame (why: which limit, the JSON);
 *   -EPROTO      an answer nobody asked for;
 *   other        the read failed ("read from the deliverer: ...").
 * After an error, end it.
 */
int deliverer_read(struct deliverer *dv, json_t **ret_reply, char *why,
		   size_t whylen);

/* An error of deliverer_read(): the deliverer closed its end (it died). */
bool deliverer_ended(int r);
/* An error of deliverer_read(): it sent what is not an answer. */
bool deliverer_babbled(int r);

/*
 * Wait for the answer until deadline (monotonic ms), polling should_abort
 * (may be NULL) at least once a second.  0 and *ret_reply; -ETIMEDOUT,
 * -ECANCELED, or an error of deliverer_read(), with why.
 */
int deliverer_wait(struct deliverer *dv, int64_t deadline_ms,
		   bool (*should_abort)(void *), void *abort_arg,
		   json_t **ret_reply, char *why, size_t whylen);

/* How a deliverer ended, for the log. */
struct deliverer_exit {
	pid_t pid;
	int status;	      /* wait(2) status */
	bool killed;	      /* by us: SIGKILL after a time limit or a stop */
	unsigned requests;
	int64_t lifetime_ms;
	int64_t cpu_us;	      /* user + system */
};

/* Ask it to exit: close our end of the socket.  Poll deliverer_fd() next. */
void deliverer_retire(struct deliverer *dv);
/*
 * Reap it if it has exited (1, *ret_exit), 0 while it runs.  With
 * wait_ms > 0 wait that long, then kill it and reap it (always 1).
 */
int deliverer_reap(struct deliverer *dv, int64_t wait_ms,
		   struct deliverer_exit *ret_exit);
/* Kill at once (SIGKILL) and reap. */
void deliverer_kill(struct deliverer *dv, struct deliverer_exit *ret_exit);
/*
 * The end of a deliverer the caller is done with: now (it hung, babbled
 * or its request is abandoned) kills it at once; otherwise it is asked to
 * exit and reaped, killed after DELIVERER_EXIT_GRACE_MS.  How it ended
 * in *ret_exit (may be NULL); dv is freed.
 */
void deliverer_end(struct deliverer *dv, bool now,
		   struct deliverer_exit *ret_exit);
/* Free a reaped deliverer (or kill and reap one that is not). */
void deliverer_free(struct deliverer *dv);

/* "exited with status 2", "killed by signal 9", "was killed". */
void deliverer_describe_exit(const struct deliverer_exit *e, char *buf,
			     size_t size);

/* A checked answer to "post", as the delivery acts on it. */
struct deliverer_post_reply {
	long status;		/* 0 when no collector answered */
	char error[1024];
	char message[512];
	int64_t retry_after_ms;
	size_t url;		/* index into the hello's URLs */
	bool switched;
	size_t current;
	int64_t primary_retry_in_ms;
	bool credential_changed;
	bool explained;		/* message came as {"error": ...} */
	int64_t accepted;	/* the collector's count in a 2xx; -1: none */
};

/*
 * Check reply against what a post may answer (nurls URLs in the hello).
 * 0 and *ret, or -EPROTO with why.
 */
int deliverer_post_reply(const json_t *reply, size_t nurls,
			 struct deliverer_post_reply *ret, char *why,
			 size_t whylen);

/*
 * The string member key of reply, at most size - 1 bytes, made one line
 * for the log by utf8_sanitize() (a line break becomes a space, another
 * control character '?'; "" when absent).  0, or -EPROTO when it is not a
 * string or too long.
 */
int deliverer_reply_text(const json_t *reply, const char *key, char *buf,
			 size_t size);

/* The "result" of a rotate or enroll answer, checked against allowed. */
int deliverer_result(const json_t *reply, const char *const *allowed,
		     const char **ret_result, char *why, size_t whylen);

#endif
