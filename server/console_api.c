#include "console_api.h"

#include <errno.h>
#include <fcntl.h>
#include <microhttpd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/util.h"
#include "account.h"
#include "api.h"
#include "audit.h"
#include "console_assets.h"
#include "credapi.h"
#include "desk.h"
#include "helpdesk.h"
#include "session.h"
#include "writer.h"

/* One audit entry as its own writer job (logins change nothing else). */
struct audit_job {
	struct audit *audit;
	int64_t at_ms;
	const char *actor, *action, *target, *detail;
};

static int audit_job_apply(struct store *st, void *arg)
{
	struct audit_job *j = arg;

	(void)st;
	return audit_add(j->audit, j->at_ms, j->actor, j->action, j->target,
			 j->detail);
}

/* Write one audit entry and wait for its commit: 0 or -errno. */
static int console_audit(struct api *api, const char *actor,
			 const char *action, const char *target,
			 const char *detail)
{
	struct audit_job j = { .audit = api->audit, .at_ms = time_now_ms(),
			       .actor = actor, .action = action,
			       .target = target, .detail = detail };
	int r = writer_run_timed(api->writer, audit_job_apply, &j, 1000);

	if (r < 0)
		log_warnx("audit entry %s of %s failed: %s", action, actor,
			  strerror(-r));
	return r;
}

static const struct console_config *console_conf(struct api *api)
{
	return &atomic_load(&api->conf)->console;
}

int console_api_session_auth(void *app, const char *cookie, const char *csrf,
			     bool state_changing, struct principal *ret)
{
	struct api *api = app;

	if (api->sessions == NULL)
		return -EACCES;
	return session_authenticate(api->sessions, console_conf(api), cookie,
				    csrf, state_changing, time_now_ms(), ret);
}

/* Set-Cookie for secret (NULL: clear the cookie), Secure over TLS. */
static char *session_cookie(struct api *api, const char *secret,
			    int64_t max_age_ms)
{
	bool tls = atomic_load(&api->conf)->tls != NULL;

	if (secret == NULL)
		return xasprintf("%s=; Path=/; Max-Age=0; HttpOnly; SameSite=Strict%s",
				 HTTP_SESSION_COOKIE, tls ? "; Secure" : "");
	return xasprintf("%s=%s; Path=/; Max-Age=%lld; HttpOnly; SameSite=Strict%s",
			 HTTP_SESSION_COOKIE, secret,
			 (long long)(max_age_ms / 1000), tls ? "; Secure" : "");
}

static json_t *session_json(const char *name, unsigned perms,
			    const struct session_issued *s)
{
	char idle[TIME_RFC3339_LEN], abs[TIME_RFC3339_LEN];

	time_format_rfc3339(s->idle_expires_ms, idle);
	time_format_rfc3339(s->expires_ms, abs);
	return json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", name, "role",
			 account_perms_role(perms), "csrf", s->csrf, "idle_expires_at",
			 idle, "expires_at", abs);
}

/* A JSON body is required: a cross-site form cannot send one unasked. */
static bool json_content_type(const struct http_request *req)
{
	const char *type = http_header(req, MHD_HTTP_HEADER_CONTENT_TYPE);

	return type != NULL && strncasecmp(type, "application/json", 16) == 0;
}

/*
 * Before checking a password of name from address: true after a 429
 * with Retry-After in resp when either failed too often lately.
 */
static bool login_blocked(struct api *api, const char *name,
			  const char *address, struct http_response *resp)
{
	int wait_s = session_login_blocked(api->sessions, console_conf(api),
					   name, address, time_now_ms());

	if (wait_s <= 0)
		return false;
	session_count_blocked(api->sessions);
	http_error(resp, MHD_HTTP_TOO_MANY_REQUESTS,
		   "too many failed logins for this account or from this address; try again in %d s",
		   wait_s);
	resp->retry_after_s = wait_s;
	return true;
}

/* A failed login: counted, audited, answered 401 alike for both causes. */
static void login_failed(struct api *api, const char *name,
			 const char *address, bool known,
			 struct http_response *resp)
{
	char target[80];

	session_login_failed(api->sessions, console_conf(api), name, known,
			     address, time_now_ms());
	snprintf(target, sizeof(target), "address %s", address);
	console_audit(api, name, "login.fail", target,
		      known ? "wrong password" : "no such account");
	http_error(resp, MHD_HTTP_UNAUTHORIZED, "wrong name or password");
}

#ifdef TOCSIN_TEST_HOOKS
/*
 * Test builds only (build/asan): with the variable env naming a FIFO, a
 * request waits there until a test opens the FIFO (it then knows the
 * request is held) and writes a byte to it (the request goes on): what
 * lets a test change an account meanwhile without guessing at timing.
 */
static void test_gate(const char *env)
{
	const char *fifo = getenv(env);
	char byte;
	int fd;

	if (fifo == NULL)
		return;
	fd = open(fifo, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		log_warn("test password gate %s", fifo);
		return;
	}
	if (read(fd, &byte, 1) < 0)
		log_warn("test password gate %s", fifo);
	close(fd);
}
#else
static void test_gate(const char *env)
{
	(void)env;
}
#endif

/*
 * A password that matched (a login's, or the current one of a password
 * change) waits at TOCSIN_TEST_PASSWORD_GATE, between the check and
 * what it allows.
 */
static void password_test_gate(void)
{
	test_gate("TOCSIN_TEST_PASSWORD_GATE");
}

void console_api_actor(struct api *api, const struct http_request *req,
		       struct actor *ret)
{
	session_actor(api->sessions, req->principal, ret);
	if (ret->sessions != NULL)
		test_gate("TOCSIN_TEST_ACTOR_GATE");
}

bool console_api_actor_refused(struct api *api, const struct actor *actor,
			       int r, const char *action, const char *target,
			       struct http_response *resp)
{
	const char *why = "the session ended while the request ran";
	char refused[64];

	if (actor->sessions == NULL || (r != -ESTALE && r != -EKEYREVOKED))
		return false;
	if (r == -ESTALE)
		why = "the account changed while the request ran";
	log_warnx("%s of %s by %s (session) refused: %s", action, target,
		  actor->name, why);
	snprintf(refused, sizeof(refused), "%s.refused", action);
	console_audit(api, actor->name, refused, target, why);
	if (r == -ESTALE)
		http_error(resp, MHD_HTTP_CONFLICT, "%s", SESSION_ACTOR_CHANGED);
	else
		http_error(resp, MHD_HTTP_UNAUTHORIZED, "%s",
			   SESSION_ACTOR_ENDED);
	return true;
}

/*
 * A login whose account changed (or went) while its password was being
 * checked: no session, 409, in the journal and the trail after its
 * "login" entry.
 */
static void login_stale(struct api *api, const char *name, const char *target,
			struct http_response *resp)
{
	log_warnx("login of %s (%s) refused: the account changed or was deleted while its password was checked",
		  name, target);
	console_audit(api, name, "login.fail", target,
		      "the account changed during login");
	http_error(resp, MHD_HTTP_CONFLICT,
		   "the account changed during login; log in again");
}

/*
 * POST /api/v1/session: the limits first (no password is checked for a
 * blocked name or address), then Argon2id, then the audit entry, and only
 * once that is committed the session and its cookie, if the account is
 * still the one whose password was checked.
 */
void console_api_login(void *app, const struct http_request *req,
		       struct http_response *resp)
{
	static const char *const allowed[] = { "name", "password", NULL };
	struct api *api = app;
	const struct console_config *conf = console_conf(api);
	struct account_stamp stamp;
	struct session_issued issued;
	const char *name, *password;
	char address[64], target[80];
	unsigned perms = 0;
	json_t *body;
	int r;

	if (!json_content_type(req)) {
		http_error(resp, MHD_HTTP_UNSUPPORTED_MEDIA_TYPE,
			   "a login is a JSON body: Content-Type: application/json");
		return;
	}
	body = credapi_body_object(req, allowed, resp);
	if (body == NULL)
		return;
	name = json_string_value(json_object_get(body, "name"));
	password = json_string_value(json_object_get(body, "password"));
	if (name == NULL || password == NULL || name[0] == '\0') {
		http_error(resp, MHD_HTTP_BAD_REQUEST,
			   "a login needs name and password, as strings");
		goto out;
	}
	if (strlen(name) > ACCOUNT_NAME_MAX ||
	    strlen(password) > ACCOUNT_PASSWORD_MAX) {
		http_error(resp, MHD_HTTP_BAD_REQUEST,
			   "name (at most %d bytes) or password (at most %d) is too long",
			   ACCOUNT_NAME_MAX, ACCOUNT_PASSWORD_MAX);
		goto out;
	}
	http_client_address(req, address, sizeof(address));
	if (login_blocked(api, name, address, resp))
		goto out;
	/* No account has such a name: the trail gets no control characters. */
	if (!account_name_valid(name))
		r = account_verify(api->accounts, "?", password, &perms, &stamp);
	else
		r = account_verify(api->accounts, name, password, &perms, &stamp);
	if (r < 0) {
		login_failed(api, account_name_valid(name) ? name : "?", address,
			     r == -EACCES, resp);
		goto out;
	}
	password_test_gate();
	snprintf(target, sizeof(target), "address %s", address);
	/* A login the trail cannot show does not happen. */
	if (console_audit(api, name, "login", target, NULL) < 0) {
		api_store_failure(api, resp, "recording the login", -EIO);
		goto out;
	}
	r = session_create(api->sessions, conf, name, perms, &stamp,
			   time_now_ms(), &issued);
	if (r == -ESTALE) {
		login_stale(api, name, target, resp);
		goto out;
	}
	if (r < 0) {
		api_store_failure(api, resp, "recording the session", r);
		goto out;
	}
	session_login_succeeded(api->sessions, name);
	resp->set_cookie = session_cookie(api, issued.secret, conf->absolute_ms);
	resp->status = MHD_HTTP_CREATED;
	resp->json = session_json(name, perms, &issued);
	sodium_memzero(&issued, sizeof(issued));
out:
	json_decref(body);
}

void console_api_whoami(void *app, const struct http_request *req,
			struct http_response *resp)
{
	struct api *api = app;
	const struct principal *p = req->principal;
	struct session_issued s;

	if (p->session_id == 0) {
		resp->json = json_pack("{s:s, s:s, s:n}", "name", p->name,
				       "role", account_perms_role(p->perms), "csrf");
		return;
	}
	if (session_get(api->sessions, console_conf(api), p->session_id, &s) < 0) {
		http_error(resp, MHD_HTTP_UNAUTHORIZED,
			   "the session ended: log in again");
		return;
	}
	resp->json = session_json(p->name, p->perms, &s);
}

void console_api_logout(void *app, const struct http_request *req,
			struct http_response *resp)
{
	struct api *api = app;
	const struct principal *p = req->principal;
	char address[64], target[80];
	int r;

	if (p->session_id == 0) {
		http_error(resp, MHD_HTTP_BAD_REQUEST,
			   "this request has no session to end (it came with a bearer token)");
		return;
	}
	r = session_delete(api->sessions, p->session_id);
	if (r < 0 && r != -ENOENT) {
		/* The session goes on: ended in memory only, a restart would revive it. */
		api_store_failure(api, resp, "ending the session", r);
		return;
	}
	http_client_address(req, address, sizeof(address));
	snprintf(target, sizeof(target), "address %s", address);
	console_audit(api, p->name, "logout", target, NULL);
	resp->set_cookie = session_cookie(api, NULL, 0);
	resp->json = json_pack("{s:b}", "logged_out", 1);
}

/*
 * A logged-in account changes its own password, proving the current one
 * (counted like a login's failures): every session of the account ends,
 * this one too, so that a stolen session does not outlive the change.
 */
void console_api_password(void *app, const struct http_request *req,
			  struct http_response *resp)
{
	static const char *const allowed[] = { "current", "password", NULL };
	struct api *api = app;
	const struct principal *p = req->principal;
	const char *current, *password;
	char address[64], err[256];
	struct account_stamp stamp;
	unsigned perms;
	json_t *body;
	int r;

	if (p->session_id == 0) {
		http_error(resp, MHD_HTTP_BAD_REQUEST,
			   "only a console session changes its own password (a token's account is changed with PUT /api/v1/accounts/NAME)");
		return;
	}
	body = credapi_body_object(req, allowed, resp);
	if (body == NULL)
		return;
	current = json_string_value(json_object_get(body, "current"));
	password = json_string_value(json_object_get(body, "password"));
	if (current == NULL || password == NULL) {
		http_error(resp, MHD_HTTP_BAD_REQUEST,
			   "a password change needs current and password, as strings");
		goto out;
	}
	http_client_address(req, address, sizeof(address));
	if (login_blocked(api, p->name, address, resp))
		goto out;
	r = strlen(current) > ACCOUNT_PASSWORD_MAX
		    ? -EACCES
		    : account_verify(api->accounts, p->name, current, &perms,
				     &stamp);
	if (r < 0) {
		/* The account may have been deleted since the session began. */
		session_login_failed(api->sessions, console_conf(api), p->name,
				     r != -ENOENT, address, time_now_ms());
		http_error(resp, MHD_HTTP_FORBIDDEN, "current: wrong password");
		goto out;
	}
	password_test_gate();
	/* Not over a change (or deletion) made while current was checked. */
	r = account_set_unchanged(api->accounts, p->name, &stamp,
				  account_perms_role(perms), password, p->name,
				  time_now_ms(), err, sizeof(err));
	if (r == -ESTALE)
		log_warnx("password change of %s refused: %s", p->name, err);
	if (r < 0) {
		http_error(resp, r == -EINVAL	? MHD_HTTP_BAD_REQUEST
				 : r == -ESTALE ? MHD_HTTP_CONFLICT
						: MHD_HTTP_SERVICE_UNAVAILABLE,
			   "%s", err);
		goto out;
	}
	session_delete_account(api->sessions, p->name);
	resp->set_cookie = session_cookie(api, NULL, 0);
	resp->json = json_pack("{s:s}", "changed", p->name);
out:
	json_decref(body);
}

void console_api_accounts(void *app, const struct http_request *req,
			  struct http_response *resp)
{
	struct api *api = app;

	(void)req;
	resp->json = json_pack("{s:o}", "accounts", account_list(api->accounts));
}

void console_api_account_set(void *app, const struct http_request *req,
			     struct http_response *resp)
{
	static const char *const allowed[] = { "role", "password", NULL };
	struct api *api = app;
	const char *role, *password;
	char err[256];
	struct actor by;
	json_t *body;
	int r;

	body = credapi_body_object(req, allowed, resp);
	if (body == NULL)
		return;
	console_api_actor(api, req, &by);
	role = json_string_value(json_object_get(body, "role"));
	password = json_string_value(json_object_get(body, "password"));
	if (role == NULL || password == NULL) {
		http_error(resp, MHD_HTTP_BAD_REQUEST,
			   "an account needs role and password, as strings");
		goto out;
	}
	r = account_set(api->accounts, req->param, role, password, &by,
			time_now_ms(), err, sizeof(err));
	/* The target as the trail names accounts: by name. */
	if (console_api_actor_refused(api, &by, r, "account.set", req->param,
				      resp))
		goto out;
	if (r < 0) {
		http_error(resp,
			   r == -EINVAL	  ? MHD_HTTP_BAD_REQUEST
			   : r == -EDQUOT ? MHD_HTTP_CONFLICT
					  : MHD_HTTP_SERVICE_UNAVAILABLE,
			   "%s", err);
		if (r == -EAGAIN || r == -EIO)
			resp->retry_after_s = 2;
		goto out;
	}
	/* A new password or role: who was logged in logs in again. */
	session_delete_account(api->sessions, req->param);
	resp->status = r == 1 ? MHD_HTTP_CREATED : MHD_HTTP_OK;
	resp->json = json_pack("{s:s, s:s}", "name", req->param, "role", role);
out:
	json_decref(body);
}

void console_api_account_delete(void *app, const struct http_request *req,
				struct http_response *resp)
{
	struct api *api = app;
	struct actor by;
	int r;

	console_api_actor(api, req, &by);
	r = account_delete(api->accounts, req->param, &by, time_now_ms());
	if (console_api_actor_refused(api, &by, r, "account.delete", req->param,
				      resp))
		return;
	if (r == -ENOENT) {
		http_error(resp, MHD_HTTP_NOT_FOUND, "no account '%.80s'",
			   req->param);
		return;
	}
	if (r < 0) {
		api_store_failure(api, resp, "deleting the account", r);
		return;
	}
	session_delete_account(api->sessions, req->param);
	resp->json = json_pack("{s:s}", "deleted", req->param);
}

/* A NULL-terminated list of names as a JSON array. */
static json_t *names_json(char *const *names)
{
	json_t *a = json_array();

	for (size_t i = 0; names[i]; i++)
		json_array_append_new(a, json_string(names[i]));
	return a;
}

/*
 * What a technician may pick for a ticket, from one helpdesk
 * configuration: the scales most severe first and queues and people in
 * their configured order.  People without their e-mail addresses: the
 * console never shows them.  Every name is UTF-8 (libyaml reads nothing
 * else), so jansson takes them all.
 */
static json_t *scales_json(const struct helpdesk_config *hc)
{
	json_t *queues = json_array(), *people = json_array();

	for (size_t i = 0; i < hc->nqueues; i++)
		json_array_append_new(queues, json_string(hc->queues[i].id));
	for (size_t i = 0; i < hc->npeople; i++) {
		const struct helpdesk_person *p = &hc->people[i];

		json_array_append_new(people,
				      json_pack("{s:s, s:s, s:i, s:o}", "id", p->id,
						"name", p->name ? p->name : p->id,
						"level", p->level, "queues",
						names_json(p->queues)));
	}
	return json_pack("{s:o, s:o, s:o, s:o, s:o}", "impacts",
			 names_json(hc->impacts), "urgencies",
			 names_json(hc->urgencies), "priorities",
			 names_json(hc->priorities), "queues", queues, "people",
			 people);
}

/*
 * GET /api/v1/helpdesk/scales: from the helpdesk the actions are checked
 * against (the writer's desk), which a SIGHUP swaps atomically; replaced
 * configurations are kept until exit, so the one loaded here stays valid
 * while it is read.
 */
void console_api_scales(void *app, const struct http_request *req,
			struct http_response *resp)
{
	struct api *api = app;

	(void)req;
	if (api->desk == NULL) {
		http_error(resp, MHD_HTTP_SERVICE_UNAVAILABLE,
			   "the helpdesk is not running");
		return;
	}
	resp->json = scales_json(atomic_load(&api->desk->hc));
}

/* Answer one compiled-in file, or 304 when the client has it already. */
static void send_asset(const struct http_request *req,
		       const struct console_asset *a,
		       struct http_response *resp)
{
	const char *match = http_header(req, MHD_HTTP_HEADER_IF_NONE_MATCH);

	resp->etag = a->etag;
	resp->content_type = a->content_type;
	resp->static_body = a->data;
	resp->static_len = a->len;
	if (match != NULL && strcmp(match, a->etag) == 0) {
		resp->status = MHD_HTTP_NOT_MODIFIED;
		resp->static_len = 0;
	}
}

static const struct console_asset *asset_find(const char *name)
{
	for (const struct console_asset *a = console_assets; a->name; a++)
		if (strcmp(a->name, name) == 0)
			return a;
	return NULL;
}

void console_api_index(void *app, const struct http_request *req,
		       struct http_response *resp)
{
	const struct console_asset *a = asset_find("index.html");

	(void)app;
	if (a == NULL) {
		http_error(resp, MHD_HTTP_NOT_FOUND, "this build has no console");
		return;
	}
	send_asset(req, a, resp);
}

void console_api_asset(void *app, const struct http_request *req,
		       struct http_response *resp)
{
	const struct console_asset *a = asset_find(req->param);

	(void)app;
	if (a == NULL || strcmp(a->name, "index.html") == 0) {
		http_error(resp, MHD_HTTP_NOT_FOUND, "no console file '%.80s'",
			   req->param);
		return;
	}
	send_asset(req, a, resp);
}

void console_api_metrics(void *app, struct metrics_out *out)
{
	struct api *api = app;
	struct session_stats st;

	session_get_stats(api->sessions, console_conf(api), time_now_ms(), &st);
	metrics_counter(out, "tocsin_console_logins_total",
			"Console logins, by outcome.", "result=\"ok\"", st.logins);
	metrics_counter(out, "tocsin_console_logins_total", NULL,
			"result=\"failed\"", st.failed);
	metrics_counter(out, "tocsin_console_logins_total", NULL,
			"result=\"rate_limited\"", st.blocked);
	metrics_counter(out, "tocsin_console_csrf_refused_total",
			"Requests with a session cookie refused for a missing or wrong CSRF token.",
			NULL, st.csrf_refused);
	metrics_counter(out, "tocsin_console_session_refused_total",
			"Requests with an unknown or expired session cookie.", NULL,
			st.expired);
	metrics_gauge(out, "tocsin_console_sessions", "Console sessions open.",
		      NULL, (double)st.active);
	/* Names that are no account never take the accounts' counters. */
	metrics_gauge(out, "tocsin_console_login_counters",
		      "Failed-login counters within login_window, by what they count.",
		      "of=\"account\"", (double)st.counting_accounts);
	metrics_gauge(out, "tocsin_console_login_counters", NULL,
		      "of=\"unknown_name\"", (double)st.counting_unknown);
	metrics_gauge(out, "tocsin_console_login_counters", NULL,
		      "of=\"network\"", (double)st.counting_networks);
}
