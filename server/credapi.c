#include "credapi.h"

#include <errno.h>
#include <microhttpd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/config.h"
#include "../common/log.h"
#include "../common/util.h"
#include "account.h"
#include "api.h"
#include "audit.h"
#include "console_api.h"
#include "credentials.h"
#include "enrollment.h"
#include "credlist.h"
#include "hostclaim.h"
#include "inventory.h"

#define TOKEN_EXPIRY_DEFAULT_MS (7 * 24 * 3600 * 1000LL)
#define TOKEN_EXPIRY_MAX_MS (365 * 24 * 3600 * 1000LL)
#define TOKEN_USES_MAX 1000000
#define AUDIT_PAGE_MAX 1000
#define HOST_NAME_MAX_LEN 253

/* "... again in 42 s" -> 42; 60 when the message says no number. */
static int retry_after_from(const char *err)
{
	const char *in = strstr(err, " in ");
	long s = in ? strtol(in + 4, NULL, 10) : 0;

	return s > 0 && s <= 86400 ? (int)s : 60;
}

/* The answer for a failed change; see credentials.h for the codes. */
static void change_failed(struct http_response *resp, int r, const char *err)
{
	switch (r) {
	case -ENOENT:
		http_error(resp, MHD_HTTP_NOT_FOUND, "%s", err);
		break;
	case -EALREADY:
	case -EEXIST:
		http_error(resp, MHD_HTTP_CONFLICT, "%s", err);
		break;
	case -EACCES:
		http_error(resp, MHD_HTTP_UNAUTHORIZED, "%s", err);
		break;
	case -EPERM:
		http_error(resp, MHD_HTTP_FORBIDDEN, "%s", err);
		break;
	case -EDQUOT:
		/* A limit on rotations: the message says how long to wait. */
		http_error(resp, MHD_HTTP_TOO_MANY_REQUESTS, "%s", err);
		resp->retry_after_s = retry_after_from(err);
		break;
	case -EAGAIN:
		http_error(resp, MHD_HTTP_SERVICE_UNAVAILABLE, "%s; retry later",
			   err);
		resp->retry_after_s = 2;
		break;
	default:
		log_warnx("credentials: %s", err);
		http_error(resp, MHD_HTTP_SERVICE_UNAVAILABLE,
			   "%s; retry later", err);
		resp->retry_after_s = 5;
	}
}

/*
 * The request body as a JSON object whose keys are all in allowed
 * (NULL-terminated); NULL after a 400 in resp.  An empty body is {}.
 */
static json_t *body_object(const struct http_request *req,
			   const char *const *allowed,
			   struct http_response *resp)
{
	json_error_t jerr;
	const char *key;
	json_t *doc, *v;

	if (req->body_len == 0)
		return json_object();
	doc = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES,
			 &jerr);
	if (doc == NULL) {
		http_error(resp, MHD_HTTP_BAD_REQUEST,
			   "invalid JSON at line %d, column %d: %s", jerr.line,
			   jerr.column, jerr.text);
		return NULL;
	}
	if (!json_is_object(doc)) {
		http_error(resp, MHD_HTTP_BAD_REQUEST,
			   "the body must be a JSON object");
		json_decref(doc);
		return NULL;
	}
	json_object_foreach(doc, key, v) {
		size_t i;

		for (i = 0; allowed[i]; i++)
			if (strcmp(allowed[i], key) == 0)
				break;
		if (allowed[i] == NULL) {
			http_error(resp, MHD_HTTP_BAD_REQUEST,
				   "unknown key '%.64s'", key);
			json_decref(doc);
			return NULL;
		}
	}
	return doc;
}

json_t *credapi_body_object(const struct http_request *req,
			    const char *const *allowed,
			    struct http_response *resp)
{
	return body_object(req, allowed, resp);
}

/* Printable, 1 to max bytes, no control characters. */
static bool printable_name(const char *s, size_t max)
{
	size_t len = strlen(s);

	if (len == 0 || len > max)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f || *s == '/')
			return false;
	return true;
}

/* A host name as agents report it: letters, digits, '.', '-', '_'. */
static bool valid_host_name(const char *s)
{
	size_t len = strlen(s);

	if (len == 0 || len > HOST_NAME_MAX_LEN)
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') ||
		      (*s >= '0' && *s <= '9') || *s == '.' || *s == '-' ||
		      *s == '_'))
			return false;
	return true;
}

/* A path parameter that must be a positive id; 0 after a 400. */
static int64_t param_id(const struct http_request *req, const char *what,
			struct http_response *resp)
{
	int64_t id;

	if (parse_int64(req->param, &id) < 0 || id <= 0) {
		http_error(resp, MHD_HTTP_BAD_REQUEST, "'%s' is not %s id",
			   req->param, what);
		return 0;
	}
	return id;
}

static json_t *json_time(int64_t ms)
{
	char at[TIME_RFC3339_LEN];

	time_format_rfc3339(ms, at);
	return json_string(at);
}

/* expires_in and max_uses of a token request; -EINVAL after a 400. */
static int token_limits(json_t *body, int64_t *ret_expiry_ms,
			int64_t *ret_max_uses, struct http_response *resp)
{
	json_t *exp = json_object_get(body, "expires_in");
	json_t *uses = json_object_get(body, "max_uses");
	int64_t ms = TOKEN_EXPIRY_DEFAULT_MS;

	if (exp != NULL && !json_is_null(exp) &&
	    (!json_is_string(exp) ||
	     parse_duration_ms(json_string_value(exp), &ms) < 0 || ms <= 0 ||
	     ms > TOKEN_EXPIRY_MAX_MS)) {
		http_error(resp, MHD_HTTP_BAD_REQUEST,
			   "expires_in: expected a duration from 1s to 365d such as \"7d\" or \"12h\"");
		return -EINVAL;
	}
	*ret_max_uses = 0;
	if (uses != NULL && !json_is_null(uses)) {
		if (!json_is_integer(uses) || json_integer_value(uses) < 1 ||
		    json_integer_value(uses) > TOKEN_USES_MAX) {
			http_error(resp, MHD_HTTP_BAD_REQUEST,
				   "max_uses: expected an integer from 1 to %d, or null for no limit",
				   TOKEN_USES_MAX);
			return -EINVAL;
		}
		*ret_max_uses = json_integer_value(uses);
	}
	*ret_expiry_ms = ms;
	return 0;
}

/*
 * hosts of a token request: a shell pattern of the host names the token
 * may enroll ("web*"), or absent for any; -EINVAL after a 400.
 */
static int token_hosts(json_t *body, const char **ret, struct http_response *resp)
{
	json_t *v = json_object_get(body, "hosts");
	const char *s;

	*ret = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	s = json_string_value(v);
	if (s == NULL || !printable_name(s, HOST_NAME_MAX_LEN) ||
	    strchr(s, ' ') != NULL) {
		http_error(resp, MHD_HTTP_BAD_REQUEST,
			   "hosts: expected a shell pattern of host names such as \"web*\" (1 to %d characters, no spaces)",
			   HOST_NAME_MAX_LEN);
		return -EINVAL;
	}
	*ret = s;
	return 0;
}

void credapi_token_create(void *app, const struct http_request *req,
			  struct http_response *resp)
{
	static const char *const keys[] = { "customer", "expires_in",
					    "max_uses", "hosts", NULL };
	struct api *api = app;
	struct credential_issued tok;
	int64_t now = time_now_ms(), expiry_ms, max_uses;
	const char *customer, *hosts;
	char err[256];
	json_t *body = body_object(req, keys, resp);
	struct actor by;
	int r;

	if (body == NULL)
		return;
	console_api_actor(api, req, &by);
	customer = json_string_value(json_object_get(body, "customer"));
	if (customer == NULL || !printable_name(customer, CUSTOMER_ID_MAX)) {
		http_error(resp, MHD_HTTP_BAD_REQUEST,
			   "customer: expected a customer id of 1 to %d printable characters",
			   CUSTOMER_ID_MAX);
		goto out;
	}
	if (api->conf->inventory->ncustomers > 0 &&
	    inventory_customer(api->conf->inventory, customer) == NULL) {
		http_error(resp, MHD_HTTP_BAD_REQUEST,
			   "customer: '%s' is not a customer of the inventory (customers: in the configuration)",
			   customer);
		goto out;
	}
	if (token_limits(body, &expiry_ms, &max_uses, resp) < 0 ||
	    token_hosts(body, &hosts, resp) < 0)
		goto out;
	r = credentials_token_create_for(api->credentials, customer, hosts,
					 now + expiry_ms, max_uses, &by, now,
					 &tok, err, sizeof(err));
	if (console_api_actor_refused(api, &by, r, "enrollment_token.create",
				      "enrollment token", resp))
		goto out;
	if (r < 0) {
		change_failed(resp, r, err);
		goto out;
	}
	resp->status = MHD_HTTP_CREATED;
	resp->json = json_pack("{s:I, s:s, s:s, s:o, s:o, s:o}", "id",
			       (json_int_t)tok.id, "token", tok.secret,
			       "customer", customer, "expires_at",
			       json_time(tok.expires_ms), "max_uses",
			       max_uses > 0 ? json_integer(max_uses)
					    : json_null(),
			       "hosts", hosts ? json_string(hosts) : json_null());
	sodium_memzero(&tok, sizeof(tok));
out:
	json_decref(body);
}

void credapi_token_list(void *app, const struct http_request *req,
			struct http_response *resp)
{
	struct api *api = app;
	json_t *list;
	int r;

	(void)req;
	r = credlist_tokens(api->credlist, time_now_ms(), &list);
	if (r < 0) {
		change_failed(resp, r, "listing enrollment tokens failed");
		return;
	}
	resp->json = json_pack("{s:o}", "enrollment_tokens", list);
}

void credapi_token_revoke(void *app, const struct http_request *req,
			  struct http_response *resp)
{
	struct api *api = app;
	int64_t id = param_id(req, "an enrollment token", resp), now;
	char err[256], target[64];
	struct actor by;
	int r;

	if (id == 0)
		return;
	console_api_actor(api, req, &by);
	now = time_now_ms();
	r = credentials_token_revoke(api->credentials, id, &by, now, err,
				     sizeof(err));
	snprintf(target, sizeof(target), "enrollment token %lld", (long long)id);
	if (console_api_actor_refused(api, &by, r, "enrollment_token.revoke",
				      target, resp))
		return;
	if (r < 0) {
		change_failed(resp, r, err);
		return;
	}
	resp->json = json_pack("{s:I, s:s, s:o}", "id", (json_int_t)id,
			       "state", "revoked", "revoked_at", json_time(now));
}

void credapi_enroll(void *app, const struct http_request *req,
		    struct http_response *resp)
{
	static const char *const keys[] = { "host", NULL };
	struct api *api = app;
	const struct principal *p = req->principal;
	struct credential_issued cred;
	json_t *body = body_object(req, keys, resp);
	const char *host;
	char err[384];
	int r;

	if (body == NULL)
		return;
	host = json_string_value(json_object_get(body, "host"));
	if (host == NULL || !valid_host_name(host)) {
		http_error(resp, MHD_HTTP_BAD_REQUEST,
			   "host: expected a host name of 1 to %d letters, digits, '.', '-' or '_'",
			   HOST_NAME_MAX_LEN);
		goto out;
	}
	r = enrollment_enroll(api->credentials, p, host, api->conf->inventory,
			       time_now_ms(), &cred, err, sizeof(err));
	if (r < 0) {
		change_failed(resp, r, err);
		goto out;
	}
	log_info("host %s of customer %s enrolled with %s: credential %lld",
		 host, p->customer, p->name, (long long)cred.id);
	resp->status = MHD_HTTP_CREATED;
	resp->json = json_pack("{s:s, s:s, s:I, s:s}", "host", host,
			       "customer", p->customer, "credential_id",
			       (json_int_t)cred.id, "credential", cred.secret);
	sodium_memzero(&cred, sizeof(cred));
out:
	json_decref(body);
}

void credapi_rotate(void *app, const struct http_request *req,
		    struct http_response *resp)
{
	struct api *api = app;
	const struct principal *p = req->principal;
	struct credential_issued cred;
	char err[256];
	int r;

	if (p->host[0] == '\0') {
		http_error(resp, MHD_HTTP_FORBIDDEN,
			   "only a per-host credential can be rotated; '%s' is a token from auth.tokens",
			   p->name);
		return;
	}
	r = credentials_rotate(api->credentials, p, time_now_ms(), &cred, err,
			       sizeof(err));
	if (r < 0) {
		change_failed(resp, r, err);
		return;
	}
	log_info("host %s rotated credential %lld to %lld", p->host,
		 (long long)p->credential_id, (long long)cred.id);
	resp->json = json_pack("{s:I, s:s}", "credential_id",
			       (json_int_t)cred.id, "credential", cred.secret);
	sodium_memzero(&cred, sizeof(cred));
}

void credapi_list(void *app, const struct http_request *req,
		  struct http_response *resp)
{
	struct api *api = app;
	json_t *list;
	int r;

	r = credlist_credentials(api->credlist, http_query(req, "customer"),
				 http_query(req, "host"), time_now_ms(), &list);
	if (r < 0) {
		change_failed(resp, r, "listing credentials failed");
		return;
	}
	resp->json = json_pack("{s:o}", "credentials", list);
}

void credapi_revoke(void *app, const struct http_request *req,
		    struct http_response *resp)
{
	struct api *api = app;
	int64_t id = param_id(req, "a credential", resp), now;
	char err[256], target[64];
	struct actor by;
	int r;

	if (id == 0)
		return;
	console_api_actor(api, req, &by);
	now = time_now_ms();
	r = credentials_revoke(api->credentials, id, &by, now, err, sizeof(err));
	snprintf(target, sizeof(target), "credential %lld", (long long)id);
	if (console_api_actor_refused(api, &by, r, "credential.revoke", target,
				      resp))
		return;
	if (r < 0) {
		change_failed(resp, r, err);
		return;
	}
	log_info("%s revoked credential %lld", req->principal->name,
		 (long long)id);
	resp->json = json_pack("{s:I, s:s, s:o}", "id", (json_int_t)id,
			       "state", "revoked", "revoked_at", json_time(now));
}

void credapi_audit(void *app, const struct http_request *req,
		   struct http_response *resp)
{
	struct api *api = app;
	int64_t limit = 100, offset = 0;
	json_t *list;
	int r;

	if (api_query_int(req, "limit", AUDIT_PAGE_MAX, &limit, resp) < 0 ||
	    api_query_int(req, "offset", INT64_MAX / 2, &offset, resp) < 0)
		return;
	r = credlist_audit(api->credlist, limit, offset, &list);
	if (r < 0) {
		change_failed(resp, r, "reading the audit trail failed");
		return;
	}
	resp->json = json_pack("{s:o}", "audit", list);
}

/* expires_in of an approval request: 0 and *ret_ms, or -EINVAL after a 400. */
static int approval_expiry(json_t *body, int64_t *ret_ms,
			   struct http_response *resp)
{
	json_t *exp = json_object_get(body, "expires_in");
	int64_t ms = HOSTCLAIM_APPROVAL_DEFAULT_MS;

	if (exp != NULL && !json_is_null(exp) &&
	    (!json_is_string(exp) ||
	     parse_duration_ms(json_string_value(exp), &ms) < 0 || ms <= 0 ||
	     ms > HOSTCLAIM_APPROVAL_MAX_MS)) {
		http_error(resp, MHD_HTTP_BAD_REQUEST,
			   "expires_in: expected a duration from 1s to 7d such as \"1h\"");
		return -EINVAL;
	}
	*ret_ms = ms;
	return 0;
}

void credapi_approve(void *app, const struct http_request *req,
		     struct http_response *resp)
{
	static const char *const keys[] = { "host", "customer", "expires_in",
					    NULL };
	struct api *api = app;
	json_t *body = body_object(req, keys, resp);
	const char *host, *customer;
	int64_t now = time_now_ms(), expiry_ms, id;
	char err[384], target[300];
	struct actor by;
	int r;

	if (body == NULL)
		return;
	console_api_actor(api, req, &by);
	host = json_string_value(json_object_get(body, "host"));
	customer = json_string_value(json_object_get(body, "customer"));
	if (host == NULL || !valid_host_name(host)) {
		http_error(resp, MHD_HTTP_BAD_REQUEST,
			   "host: expected a host name of 1 to %d letters, digits, '.', '-' or '_'",
			   HOST_NAME_MAX_LEN);
		goto out;
	}
	if (json_object_get(body, "customer") != NULL &&
	    !json_is_null(json_object_get(body, "customer")) &&
	    (customer == NULL || !printable_name(customer, CUSTOMER_ID_MAX) ||
	     (api->conf->inventory->ncustomers > 0 &&
	      inventory_customer(api->conf->inventory, customer) == NULL))) {
		http_error(resp, MHD_HTTP_BAD_REQUEST,
			   "customer: expected the id of a customer (of the inventory, when it lists customers)");
		goto out;
	}
	if (approval_expiry(body, &expiry_ms, resp) < 0)
		goto out;
	r = enrollment_approve(api->credentials, host, customer,
				now + expiry_ms, &by, now, &id, err,
				sizeof(err));
	snprintf(target, sizeof(target), "host %s", host);
	if (console_api_actor_refused(api, &by, r, "enrollment.approve", target,
				      resp))
		goto out;
	if (r < 0) {
		change_failed(resp, r, err);
		goto out;
	}
	log_info("%s approved the next enrollment of host %s%s%s (approval %lld)",
		 req->principal->name, host, customer ? " into customer " : "",
		 customer ? customer : "", (long long)id);
	resp->status = MHD_HTTP_CREATED;
	resp->json = json_pack("{s:I, s:s, s:o, s:s, s:o}", "id", (json_int_t)id,
			       "host", host, "customer",
			       customer ? json_string(customer) : json_null(),
			       "state", "pending", "expires_at",
			       json_time(now + expiry_ms));
out:
	json_decref(body);
}

void credapi_approvals(void *app, const struct http_request *req,
		       struct http_response *resp)
{
	struct api *api = app;
	json_t *list;
	int r;

	(void)req;
	r = credlist_approvals(api->credlist, time_now_ms(), &list);
	if (r < 0) {
		change_failed(resp, r, "listing enrollment approvals failed");
		return;
	}
	resp->json = json_pack("{s:o}", "enrollment_approvals", list);
}
