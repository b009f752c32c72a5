/*
 * tocsin-agent-deliver: the part of the agent that speaks to the network
 * (agent/deliverer.h describes why and the conversation).  tocsin-agent
 * starts it when there is something to send and it lives only as long as
 * the agent keeps it busy: it takes the transport settings from the
 * hello, then answers requests on descriptor 3 until the agent closes the
 * socket, or dies with the agent.
 *
 * It holds what it needs and nothing more: the settings of the hello, the
 * credential (read here from the credential file, or the hello's token),
 * one curl handle, and the batch of the request at hand.  It keeps no
 * state the agent needs: whatever it was told is answered, and an answer
 * that never comes means the agent sends the same events again.
 *
 * It does not log what happened to a request: that is in the answer and
 * the agent logs it.  It writes to stderr (the agent's log) only when it
 * cannot take part in the conversation at all.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/utf8.h"
#include "../common/util.h"
#include "agent.h"
#include "credential.h"
#include "deliverer.h"
#include "grant.h"
#include "transport.h"
#include "wire.h"

/* The largest request: a batch (outbox.batch_bytes at most) and room. */
#define REQUEST_BODY_MAX (AGENT_BATCH_BYTES_MAX + 64 * 1024)

struct deliver {
	struct transport *t;
	char *credential_path; /* NULL with a configured token */
	char *token;
	char no_token[1024];   /* why there is no token, when there is none */
	char broken[1024];     /* why the hello cannot be followed */
};

/*
 * Answers carry text from outside (curl's words, a collector's body cut
 * at a limit): JSON takes valid UTF-8 only, so it is cleaned, never lost.
 */
static json_t *failed(const char *result_key, const char *why)
{
	if (strcmp(result_key, "status") == 0)
		return json_pack("{s:i, s:o}", "status", 0, "error",
				 utf8_json_string(why));
	return json_pack("{s:s, s:o}", "result", "failed", "error",
			 utf8_json_string(why));
}

static char *hello_string(const json_t *h, const char *key)
{
	const char *v = json_string_value(json_object_get(h, key));

	return v ? xstrdup(v) : NULL;
}

/* The credential named in the hello; why in dl->no_token when unusable. */
static void read_credential(struct deliver *dl)
{
	int r = credential_read(dl->credential_path, &dl->token);

	if (r < 0)
		snprintf(dl->no_token, sizeof(dl->no_token),
			 "cannot read the credential %s (%s); enroll this host: tocsin-agent enroll --server URL --token TOKEN",
			 dl->credential_path, strerror(-r));
}

/* The transport of the hello.  0, or -EINVAL with why. */
static int take_hello(struct deliver *dl, const json_t *h, char *why,
		      size_t whylen)
{
	const json_t *list = json_object_get(h, "urls");
	struct transport_options o = { 0 };
	char *urls[AGENT_URLS_MAX + 1] = { NULL };
	char *ca = hello_string(h, "ca_file"), *pin = hello_string(h, "pin_sha256");
	char *cert = hello_string(h, "client_cert"), *key = hello_string(h, "client_key");
	size_t n = json_array_size(list);
	int r = -EINVAL;

	if (json_integer_value(json_object_get(h, "protocol")) != DELIVERER_PROTOCOL) {
		snprintf(why, whylen, "the agent speaks protocol %lld, this deliverer %d: install matching versions",
			 (long long)json_integer_value(json_object_get(h, "protocol")),
			 DELIVERER_PROTOCOL);
		goto out;
	}
	if (json_integer_value(json_object_get(h, "agent_pid")) != getppid()) {
		/* the agent died before we could ask to die with it */
		snprintf(why, whylen, "the agent that started this deliverer is gone");
		goto out;
	}
	if (n == 0 || n > AGENT_URLS_MAX) {
		snprintf(why, whylen, "the hello names %zu collector URLs", n);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		const char *u = json_string_value(json_array_get(list, i));

		if (u == NULL) {
			snprintf(why, whylen, "the hello's URL %zu is not a string", i);
			goto out;
		}
		urls[i] = xstrdup(u);
	}
	dl->token = hello_string(h, "token");
	dl->credential_path = dl->token ? NULL : hello_string(h, "credential");
	if (dl->credential_path)
		read_credential(dl);
	else if (dl->token == NULL)
		snprintf(dl->no_token, sizeof(dl->no_token),
			 "the agent gave the deliverer no credential");
	o = (struct transport_options){
		.urls = urls,
		.token = dl->token,
		.timeout_ms = json_integer_value(json_object_get(h, "timeout_ms")),
		.ca_file = ca,
		.pin_sha256 = pin,
		.client_cert = cert,
		.client_key = key,
		.allow_plain_http = json_is_true(json_object_get(h, "allow_plain_http")),
		.retry_primary_ms = json_integer_value(json_object_get(h, "retry_primary_ms")),
	};
	r = transport_new(&o, &dl->t);
	if (r < 0) {
		snprintf(why, whylen, "cannot set up the transport: %s", strerror(-r));
		goto out;
	}
	transport_set_failover(dl->t,
			       (size_t)json_integer_value(json_object_get(h, "current")),
			       json_integer_value(json_object_get(h, "primary_retry_in_ms")));
out:
	for (size_t i = 0; urls[i]; i++)
		free(urls[i]);
	free(ca);
	free(pin);
	free(cert);
	free(key);
	return r;
}

static void drop_token(struct deliver *dl)
{
	if (dl->token)
		explicit_bzero(dl->token, strlen(dl->token));
	free(dl->token);
	dl->token = NULL;
}

/* After a 401/403: has the credential file a new secret (a rotation by hand)? */
static bool credential_changed(struct deliver *dl)
{
	char *token = NULL;

	if (dl->credential_path == NULL ||
	    credential_read(dl->credential_path, &token) < 0)
		return false;
	if (dl->token != NULL && strcmp(token, dl->token) == 0) {
		explicit_bzero(token, strlen(token));
		free(token);
		return false;
	}
	drop_token(dl);
	dl->token = token;
	dl->no_token[0] = '\0';
	transport_set_token(dl->t, token);
	return true;
}

static json_t *do_post(struct deliver *dl, const json_t *req, const char *body,
		       size_t len)
{
	const char *path = json_string_value(json_object_get(req, "path"));
	struct transport_reply reply;
	size_t current;
	int64_t retry_in;
	json_t *a;

	if (path == NULL || path[0] != '/')
		return failed("status", "the agent's post names no path");
	if (dl->token == NULL && !credential_changed(dl))
		return failed("status", dl->no_token);
	transport_post(dl->t, path, body ? body : "", len, &reply);
	transport_failover(dl->t, &current, &retry_in);
	a = json_pack("{s:i, s:o, s:o, s:I, s:I, s:b, s:I, s:I}",
		      "status", (int)reply.status, "error",
		      utf8_json_string(reply.error), "message",
		      utf8_json_string(reply.message), "retry_after_ms",
		      (json_int_t)reply.retry_after_ms, "url",
		      (json_int_t)reply.url_index, "switched", reply.switched,
		      "current", (json_int_t)current, "primary_retry_in_ms",
		      (json_int_t)retry_in);
	if (reply.explained)
		json_object_set_new(a, "explained", json_true());
	if (reply.accepted >= 0)
		json_object_set_new(a, "accepted", json_integer(reply.accepted));
	if ((reply.status == 401 || reply.status == 403) && credential_changed(dl))
		json_object_set_new(a, "credential_changed", json_true());
	return a;
}

static json_t *do_rotate(struct deliver *dl)
{
	struct credential_grant g = { 0 };
	char err[1024];
	json_t *a;
	int r;

	if (dl->credential_path == NULL)
		return failed("result", "this host authenticates with server.token; only an enrolled credential can be rotated");
	if (dl->token == NULL)
		return failed("result", dl->no_token);
	r = grant_rotate(dl->t, &g, err, sizeof(err));
	if (r < 0)
		return failed("result", err);
	r = credential_store(dl->credential_path, &g, transport_url(dl->t));
	if (r < 0) {
		/* Using a secret we could not store would lock a restart out. */
		a = json_pack("{s:s, s:I, s:s}", "result", "unstored",
			      "credential_id", (json_int_t)g.id, "error",
			      strerror(-r));
	} else {
		drop_token(dl);
		dl->token = xstrdup(g.secret);
		transport_set_token(dl->t, dl->token);
		a = json_pack("{s:s, s:I}", "result", "rotated", "credential_id",
			      (json_int_t)g.id);
	}
	credential_grant_clear(&g);
	return a;
}

static json_t *do_enroll(struct deliver *dl, const json_t *req)
{
	const char *host = json_string_value(json_object_get(req, "host"));
	const char *dir = json_string_value(json_object_get(req, "state_dir"));
	struct credential_grant g = { 0 };
	char err[1024], *path;
	json_t *a;
	int r;

	if (host == NULL || dir == NULL)
		return failed("result", "the agent's enroll names no host or state_dir");
	r = grant_enroll(dl->t, host, &g, err, sizeof(err));
	if (r < 0)
		return failed("result", err);
	path = credential_path(dir);
	if (mkdir(dir, 0700) < 0 && errno != EEXIST) {
		snprintf(err, sizeof(err), "cannot create %s: %s", dir, strerror(errno));
		r = -1;
	} else if ((r = credential_store(path, &g, transport_url(dl->t))) < 0) {
		snprintf(err, sizeof(err),
			 "enrolled as credential %lld, but cannot store it in %s: %s",
			 (long long)g.id, path, strerror(-r));
	}
	if (r < 0)
		a = json_pack("{s:s, s:I, s:o}", "result", "unstored",
			      "credential_id", (json_int_t)g.id, "error",
			      utf8_json_string(err));
	else
		a = json_pack("{s:s, s:o, s:o*, s:I}", "result", "enrolled", "host",
			      utf8_json_string(g.host), "customer",
			      g.customer ? utf8_json_string(g.customer) : NULL,
			      "credential_id", (json_int_t)g.id);
	free(path);
	credential_grant_clear(&g);
	return a;
}

/*
 * Read one whole frame, blocking.  1, 0 at a clean end (the agent closed
 * the socket between frames, with an answer of ours unread or not), or
 * -errno with why (a frame cut short by end of file included: the agent
 * died while it sent).
 */
static int next_frame(struct wire_reader *rd, struct wire_frame *f, char *why,
		      size_t whylen)
{
	int r;

	while ((r = wire_reader_feed(rd, DELIVERER_FD, f, why, whylen)) == 0)
		;
	if ((r == -EPIPE || r == -ECONNRESET) && wire_reader_idle(rd))
		return 0;
	return r;
}

/* One answer per request; a deliverer that cannot work says why to each. */
static json_t *answer(struct deliver *dl, const struct wire_frame *f)
{
	const char *op = json_string_value(json_object_get(f->head, "op"));

	if (dl->broken[0] != '\0')
		return failed(op && strcmp(op, "post") == 0 ? "status" : "result",
			      dl->broken);

	if (op && strcmp(op, "post") == 0)
		return do_post(dl, f->head, f->body, f->len);
	if (op && strcmp(op, "rotate") == 0)
		return do_rotate(dl);
	if (op && strcmp(op, "enroll") == 0)
		return do_enroll(dl, f->head);
	return failed("result", "the deliverer does not know this request");
}

/* The conversation: the hello, then one answer per request. */
static int converse(struct deliver *dl)
{
	struct wire_reader rd;
	struct wire_frame f = { 0 };
	char why[1024];
	int r;

	wire_reader_init(&rd, REQUEST_BODY_MAX);
	r = next_frame(&rd, &f, why, sizeof(why));
	if (r < 0)
		log_errorx("cannot read the agent's hello: %s", why);
	if (r <= 0) {
		wire_reader_clear(&rd);
		return r;
	}
	if (take_hello(dl, f.head, why, sizeof(why)) < 0)
		strlcpy_safe(dl->broken, why, sizeof(dl->broken));
	wire_frame_clear(&f);
	for (;;) {
		json_t *a;

		r = next_frame(&rd, &f, why, sizeof(why));
		if (r < 0)
			log_errorx("cannot read the agent's request: %s", why);
		if (r <= 0)
			break;
		a = answer(dl, &f);
		wire_frame_clear(&f);
		r = a ? wire_send(DELIVERER_FD, a, NULL, 0, 60000) : -ENOMEM;
		json_decref(a);
		if (r < 0 && r != -EPIPE)
			log_errorx("cannot answer the agent: %s", strerror(-r));
		if (r < 0)
			break;
	}
	wire_reader_clear(&rd);
	return r;
}

int main(int argc, char **argv)
{
	struct deliver dl = { 0 };
	struct stat st;
	int r;

	(void)argv;
	log_init(DELIVERER_PROGRAM, LOG_LEVEL_INFO);
	/* Die with the agent, even in the middle of a request. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	if (argc != 1 || fstat(DELIVERER_FD, &st) < 0 || !S_ISSOCK(st.st_mode)) {
		fprintf(stderr, "%s is started by tocsin-agent, which talks to it on descriptor %d; it takes no arguments\n",
			DELIVERER_PROGRAM, DELIVERER_FD);
		return 2;
	}
	close_range(DELIVERER_FD + 1, ~0U, 0);
	r = converse(&dl);
	transport_free(dl.t);
	drop_token(&dl);
	free(dl.credential_path);
	return r < 0 && r != -EPIPE ? 1 : 0;
}
