#include "deliverer.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/pidfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common/children.h"
#include "../common/utf8.h"
#include "../common/util.h"
#include "agent.h"
#include "wire.h"

extern char **environ;

/* Sending a request: a deliverer that takes longer to read it is hung. */
#define SEND_TIMEOUT_MS 5000

struct deliverer {
	pid_t pid;
	int pidfd;
	int sock;	/* -1 once retired */
	bool busy;
	bool reaped;
	unsigned requests;
	int64_t started_ms;
	struct wire_reader rd;
	struct deliverer_exit exit;
};

/* Is path a file we may run?  0 or -errno. */
static int runnable(const char *path)
{
	return access(path, X_OK) == 0 ? 0 : -errno;
}

int deliverer_locate(const char *configured, char **ret_path, char *why,
		     size_t whylen)
{
	char self[PATH_MAX], *slash, *beside = NULL, *libexec;
	ssize_t n;
	int r;

	if (configured != NULL) {
		r = runnable(configured);
		if (r < 0) {
			snprintf(why, whylen, "cannot run the deliverer %s (deliverer.path): %s",
				 configured, strerror(-r));
			return r;
		}
		*ret_path = xstrdup(configured);
		return 0;
	}
	n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	if (n > 0) {
		self[n] = '\0';
		slash = strrchr(self, '/');
		if (slash != NULL) {
			*slash = '\0';
			beside = xasprintf("%s/%s", self, DELIVERER_PROGRAM);
			if (runnable(beside) == 0) {
				*ret_path = beside;
				return 0;
			}
		}
	}
	libexec = xasprintf("%s/%s", DELIVERER_LIBEXEC_DIR, DELIVERER_PROGRAM);
	r = runnable(libexec);
	if (r == 0) {
		free(beside);
		*ret_path = libexec;
		return 0;
	}
	snprintf(why, whylen,
		 "cannot find the deliverer %s: not in %s%s%s (%s); install it or set deliverer.path",
		 DELIVERER_PROGRAM, DELIVERER_LIBEXEC_DIR,
		 beside ? " nor next to this program as " : "",
		 beside ? beside : "", strerror(-r));
	free(beside);
	free(libexec);
	return -ENOENT;
}

static void set_string(json_t *o, const char *key, const char *value)
{
	if (value != NULL)
		json_object_set_new(o, key, json_string(value));
}

json_t *deliverer_hello(const struct agent_config *conf, char *const *urls,
			const char *token, const char *credential_path,
			size_t current, int64_t primary_retry_in_ms)
{
	json_t *h = json_object(), *list = json_array();

	if (urls == NULL)
		urls = conf->server_urls;
	for (size_t i = 0; urls && urls[i]; i++)
		json_array_append_new(list, json_string(urls[i]));
	json_object_set_new(h, "op", json_string("hello"));
	json_object_set_new(h, "protocol", json_integer(DELIVERER_PROTOCOL));
	json_object_set_new(h, "agent_pid", json_integer(getpid()));
	json_object_set_new(h, "urls", list);
	if (token != NULL)
		set_string(h, "token", token);
	else
		set_string(h, "credential", credential_path);
	json_object_set_new(h, "timeout_ms", json_integer(conf->timeout_ms));
	set_string(h, "ca_file", conf->ca_file);
	set_string(h, "pin_sha256", conf->pin_sha256);
	set_string(h, "client_cert", conf->client_cert);
	set_string(h, "client_key", conf->client_key);
	json_object_set_new(h, "allow_plain_http",
			    json_boolean(conf->allow_plain_http));
	json_object_set_new(h, "retry_primary_ms",
			    json_integer(conf->retry_primary_ms));
	json_object_set_new(h, "current", json_integer((json_int_t)current));
	json_object_set_new(h, "primary_retry_in_ms",
			    json_integer(primary_retry_in_ms));
	return h;
}

/* posix_spawn with the socket as descriptor 3 and nothing else of ours. */
static int spawn(const char *path, int child_end, pid_t *ret_pid)
{
	char *const argv[] = { (char *)DELIVERER_PROGRAM, NULL };
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, all;
	int r;

	sigemptyset(&none);
	sigfillset(&all);
	posix_spawn_file_actions_init(&fa);
	posix_spawnattr_init(&attr);
	posix_spawn_file_actions_addopen(&fa, STDIN_FILENO, "/dev/null",
					 O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&fa, STDERR_FILENO, STDOUT_FILENO);
	posix_spawn_file_actions_adddup2(&fa, child_end, DELIVERER_FD);
	posix_spawn_file_actions_addclosefrom_np(&fa, DELIVERER_FD + 1);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK |
					       POSIX_SPAWN_SETSIGDEF);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	r = posix_spawn(ret_pid, path, &fa, &attr, argv, environ);
	posix_spawnattr_destroy(&attr);
	posix_spawn_file_actions_destroy(&fa);
	return -r;
}

int deliverer_spawn(const char *path, const json_t *hello,
		    struct deliverer **ret)
{
	struct deliverer *dv;
	int sv[2], child_end, r;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0)
		return -errno;
	/* above 3, so that dup2 onto 3 really clears close-on-exec */
	child_end = fcntl(sv[1], F_DUPFD_CLOEXEC, DELIVERER_FD + 1);
	close(sv[1]);
	if (child_end < 0) {
		r = -errno;
		close(sv[0]);
		return r;
	}
	r = spawn(path, child_end, &pid);
	close(child_end);
	if (r < 0) {
		close(sv[0]);
		return r;
	}
	children_own(pid); /* its status is ours to wait for, never a sweep's */
	dv = xcalloc(1, sizeof(*dv));
	dv->pid = pid;
	dv->sock = sv[0];
	dv->started_ms = time_mono_ms();
	dv->pidfd = (int)pidfd_open(pid, 0);
	r = dv->pidfd < 0 ? -errno : 0; /* before fcntl() may change errno */
	wire_reader_init(&dv->rd, DELIVERER_REPLY_BODY_MAX);
	fcntl(dv->sock, F_SETFL, fcntl(dv->sock, F_GETFL) | O_NONBLOCK);
	if (r == 0)
		r = wire_send(dv->sock, hello, NULL, 0, SEND_TIMEOUT_MS);
	if (r < 0) {
		deliverer_end(dv, true, NULL);
		return r;
	}
	*ret = dv;
	return 0;
}

pid_t deliverer_pid(const struct deliverer *dv)
{
	return dv->pid;
}

bool deliverer_busy(const struct deliverer *dv)
{
	return dv->busy;
}

int deliverer_request(struct deliverer *dv, const char *op, const json_t *extra,
		      const char *body, size_t len)
{
	json_t *head = extra ? json_deep_copy(extra) : json_object();
	int r;

	if (dv->sock < 0 || dv->busy) {
		json_decref(head);
		return -EBUSY;
	}
	json_object_set_new(head, "op", json_string(op));
	r = wire_send(dv->sock, head, body, len, SEND_TIMEOUT_MS);
	json_decref(head);
	if (r == 0)
		dv->busy = true;
	return r;
}

int deliverer_fd(const struct deliverer *dv)
{
	return dv->sock >= 0 ? dv->sock : dv->pidfd;
}

int deliverer_read(struct deliverer *dv, json_t **ret_reply, char *why,
		   size_t whylen)
{
	struct wire_frame f = { 0 };
	int r;

	if (dv->sock < 0) {
		snprintf(why, whylen, "the deliverer was asked to exit");
		return -EPIPE;
	}
	r = wire_reader_feed(&dv->rd, dv->sock, &f, why, whylen);
	if (r == -EPIPE && wire_reader_idle(&dv->rd))
		why[0] = '\0'; /* it closed the socket between frames: it died */
	if (r == -EPIPE || r == -EMSGSIZE || r == -EBADMSG)
		return r;
	if (r < 0) {
		/* the read failed (a reset: it died with our request unread) */
		char how[256];

		strlcpy_safe(how, why, sizeof(how));
		snprintf(why, whylen, "read from the deliverer: %s", how);
		return r;
	}
	if (r == 0)
		return 0;
	/* An answer nobody asked for is not an answer. */
	if (!dv->busy) {
		wire_frame_clear(&f);
		snprintf(why, whylen, "an answer while no request was in flight");
		return -EPROTO;
	}
	dv->busy = false;
	dv->requests++;
	*ret_reply = f.head;
	f.head = NULL;
	wire_frame_clear(&f);
	return 1;
}

bool deliverer_ended(int r)
{
	return r == -EPIPE || r == -ECONNRESET;
}

bool deliverer_babbled(int r)
{
	return r == -EMSGSIZE || r == -EBADMSG || r == -EPROTO;
}

int deliverer_wait(struct deliverer *dv, int64_t deadline_ms,
		   bool (*should_abort)(void *), void *abort_arg,
		   json_t **ret_reply, char *why, size_t whylen)
{
	for (;;) {
		struct pollfd p = { .fd = dv->sock, .events = POLLIN };
		int64_t left = deadline_ms - time_mono_ms();
		int r;

		if (should_abort && should_abort(abort_arg))
			goto canceled;
		if (left <= 0) {
			snprintf(why, whylen, "no answer in time");
			return -ETIMEDOUT;
		}
		if (poll(&p, 1, left > 1000 ? 1000 : (int)left) < 0 &&
		    errno != EINTR) {
			r = -errno;
			snprintf(why, whylen, "cannot wait for the deliverer: %s",
				 strerror(-r));
			return r;
		}
		if (!(p.revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		/* a Ctrl-C that woke us by killing the deliverer is an abort */
		if (should_abort && should_abort(abort_arg))
			goto canceled;
		r = deliverer_read(dv, ret_reply, why, whylen);
		if (r != 0)
			return r < 0 ? r : 0;
	}
canceled:
	snprintf(why, whylen, "interrupted");
	return -ECANCELED;
}

void deliverer_retire(struct deliverer *dv)
{
	if (dv->sock >= 0)
		close(dv->sock);
	dv->sock = -1;
	wire_reader_clear(&dv->rd);
}

/* wait4 with the rusage: how the deliverer ended and what it cost. */
static int reap_now(struct deliverer *dv, int flags)
{
	struct rusage ru;
	int status;
	pid_t p;

	do
		p = wait4(dv->pid, &status, flags, &ru);
	while (p < 0 && errno == EINTR);
	if (p == 0)
		return 0;
	children_disown(dv->pid);
	dv->reaped = true;
	dv->exit.pid = dv->pid;
	dv->exit.status = p < 0 ? 0 : status;
	dv->exit.requests = dv->requests;
	dv->exit.lifetime_ms = time_mono_ms() - dv->started_ms;
	if (p > 0)
		dv->exit.cpu_us =
			(int64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000 +
			ru.ru_utime.tv_usec + ru.ru_stime.tv_usec;
	return 1;
}

int deliverer_reap(struct deliverer *dv, int64_t wait_ms,
		   struct deliverer_exit *ret_exit)
{
	struct pollfd p = { .fd = dv->pidfd, .events = POLLIN };
	int r;

	if (!dv->reaped) {
		if (wait_ms > 0 && dv->pidfd >= 0)
			(void)poll(&p, 1, wait_ms > INT_MAX ? INT_MAX : (int)wait_ms);
		r = reap_now(dv, WNOHANG);
		if (r == 0 && wait_ms <= 0)
			return 0;
		if (r == 0) {
			deliverer_kill(dv, ret_exit);
			return 1;
		}
	}
	if (ret_exit)
		*ret_exit = dv->exit;
	return 1;
}

void deliverer_kill(struct deliverer *dv, struct deliverer_exit *ret_exit)
{
	deliverer_retire(dv);
	if (!dv->reaped) {
		kill(dv->pid, SIGKILL);
		reap_now(dv, 0);
		dv->exit.killed = true;
	}
	if (ret_exit)
		*ret_exit = dv->exit;
}

void deliverer_end(struct deliverer *dv, bool now,
		   struct deliverer_exit *ret_exit)
{
	if (now) {
		deliverer_kill(dv, ret_exit);
	} else {
		deliverer_retire(dv);
		deliverer_reap(dv, DELIVERER_EXIT_GRACE_MS, ret_exit);
	}
	deliverer_free(dv);
}

void deliverer_free(struct deliverer *dv)
{
	if (dv == NULL)
		return;
	if (!dv->reaped)
		deliverer_kill(dv, NULL);
	if (dv->pidfd >= 0)
		close(dv->pidfd);
	wire_reader_clear(&dv->rd);
	free(dv);
}

void deliverer_describe_exit(const struct deliverer_exit *e, char *buf,
			     size_t size)
{
	if (e->killed)
		snprintf(buf, size, "was killed");
	else if (WIFEXITED(e->status))
		snprintf(buf, size, "exited with status %d", WEXITSTATUS(e->status));
	else if (WIFSIGNALED(e->status))
		snprintf(buf, size, "was killed by signal %d (%s)",
			 WTERMSIG(e->status), strsignal(WTERMSIG(e->status)));
	else
		snprintf(buf, size, "ended with wait status %d", e->status);
}

int deliverer_reply_text(const json_t *reply, const char *key, char *buf,
			 size_t size)
{
	const json_t *v = json_object_get(reply, key);

	buf[0] = '\0';
	if (v == NULL)
		return 0;
	if (!json_is_string(v) || json_string_length(v) >= size)
		return -EPROTO;
	/* it goes into the log as one line; a byte stays one byte, so it fits */
	utf8_sanitize(buf, size, json_string_value(v), json_string_length(v), 0);
	return 0;
}

/* An integer member within [min, max], or 0 when absent. */
static int reply_int(const json_t *reply, const char *key, int64_t min,
		     int64_t max, int64_t *ret)
{
	const json_t *v = json_object_get(reply, key);

	*ret = 0;
	if (v == NULL)
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < min ||
	    json_integer_value(v) > max)
		return -EPROTO;
	*ret = json_integer_value(v);
	return 0;
}

static int reply_bool(const json_t *reply, const char *key, bool *ret)
{
	const json_t *v = json_object_get(reply, key);

	*ret = false;
	if (v == NULL)
		return 0;
	if (!json_is_boolean(v))
		return -EPROTO;
	*ret = json_is_true(v);
	return 0;
}

int deliverer_post_reply(const json_t *reply, size_t nurls,
			 struct deliverer_post_reply *ret, char *why,
			 size_t whylen)
{
	struct deliverer_post_reply p = { 0 };
	int64_t status, url, current;
	const char *bad = NULL;

	if (reply_int(reply, "status", 0, 999, &status) < 0)
		bad = "status";
	else if (deliverer_reply_text(reply, "error", p.error, sizeof(p.error)) < 0)
		bad = "error";
	else if (deliverer_reply_text(reply, "message", p.message, sizeof(p.message)) < 0)
		bad = "message";
	else if (reply_int(reply, "retry_after_ms", 0, INT64_MAX / 2,
			   &p.retry_after_ms) < 0)
		bad = "retry_after_ms";
	else if (reply_int(reply, "url", 0, (int64_t)nurls - 1, &url) < 0)
		bad = "url";
	else if (reply_int(reply, "current", 0, (int64_t)nurls - 1, &current) < 0)
		bad = "current";
	else if (reply_int(reply, "primary_retry_in_ms", 0, INT64_MAX / 2,
			   &p.primary_retry_in_ms) < 0)
		bad = "primary_retry_in_ms";
	else if (reply_bool(reply, "switched", &p.switched) < 0)
		bad = "switched";
	else if (reply_bool(reply, "credential_changed", &p.credential_changed) < 0)
		bad = "credential_changed";
	else if (reply_bool(reply, "explained", &p.explained) < 0)
		bad = "explained";
	else if (reply_int(reply, "accepted", 0, INT64_MAX / 2, &p.accepted) < 0)
		bad = "accepted";
	else if (json_object_get(reply, "status") == NULL)
		bad = "status";
	if (bad != NULL) {
		snprintf(why, whylen,
			 "the deliverer's answer to a post has no valid \"%s\"", bad);
		return -EPROTO;
	}
	if (json_object_get(reply, "accepted") == NULL)
		p.accepted = -1;
	p.status = (long)status;
	p.url = (size_t)url;
	p.current = (size_t)current;
	*ret = p;
	return 0;
}

int deliverer_result(const json_t *reply, const char *const *allowed,
		     const char **ret_result, char *why, size_t whylen)
{
	const char *result = json_string_value(json_object_get(reply, "result"));

	for (size_t i = 0; result && allowed[i]; i++) {
		if (strcmp(result, allowed[i]) == 0) {
			*ret_result = allowed[i];
			return 0;
		}
	}
	snprintf(why, whylen, "the deliverer's answer has no valid \"result\"");
	return -EPROTO;
}
