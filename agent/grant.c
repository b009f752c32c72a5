#include "grant.h"

#include <errno.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "agent.h"
#include "transport.h"

/* A collector's secret goes into an HTTP header and a file's first line. */
#define SECRET_MIN 16

/* Take the grant from the collector's answer; false when it is not one. */
static bool parse_grant(const char *body, bool enrolled,
			struct credential_grant *ret, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *doc = body ? json_loads(body, 0, &jerr) : NULL;
	const char *secret = NULL, *host = NULL, *customer = NULL;
	json_int_t id = 0;
	bool ok = false;

	if (doc == NULL) {
		snprintf(err, errlen, "the collector's answer is not JSON");
		return false;
	}
	if (json_unpack(doc, "{s:s, s:I}", "credential", &secret,
			"credential_id", &id) < 0) {
		snprintf(err, errlen,
			 "the collector's answer lacks credential or credential_id");
	} else if (enrolled &&
		   json_unpack(doc, "{s:s, s?s}", "host", &host, "customer",
			       &customer) < 0) {
		snprintf(err, errlen, "the collector's answer lacks the host");
	} else if (enrolled &&
		   (name_check(host, AGENT_HOST_MAX, false) < 0 ||
		    (customer &&
		     name_check(customer, AGENT_CUSTOMER_MAX, true) < 0))) {
		/* before it is stored: the credential file and the report
		 * take them as they are */
		snprintf(err, errlen,
			 "the collector sent a host or customer name that is empty, longer than %d/%d characters or has control characters (or a space in the host)",
			 AGENT_HOST_MAX, AGENT_CUSTOMER_MAX);
	} else if (strlen(secret) < SECRET_MIN ||
		   strlen(secret) > CREDENTIAL_MAX || !credential_secret_chars_ok(secret)) {
		snprintf(err, errlen,
			 "the collector sent a credential that is not %d to %d printable characters",
			 SECRET_MIN, CREDENTIAL_MAX);
	} else {
		*ret = (struct credential_grant){
			.host = host ? xstrdup(host) : NULL,
			.customer = customer ? xstrdup(customer) : NULL,
			.id = id,
			.secret = xstrdup(secret),
		};
		ok = true;
	}
	json_decref(doc);
	return ok;
}

/* A refusal in words: the collector's message, or what the status means. */
static void refusal(const struct transport_reply *reply, const char *what,
		    char *err, size_t errlen)
{
	if (reply->status == 404 || reply->status == 405)
		snprintf(err, errlen,
			 "the collector at %s does not offer %s (HTTP %ld): it predates per-host credentials; configure server.token instead",
			 reply->url, what, reply->status);
	else if (reply->status != 0)
		snprintf(err, errlen, "the collector at %s refused %s: HTTP %ld%s%s",
			 reply->url, what, reply->status,
			 reply->message[0] ? ": " : "", reply->message);
	else
		snprintf(err, errlen, "%s", reply->error);
}

/* POST body to path and take the grant from the answer. */
static int request_grant(struct transport *t, const char *path,
			 const char *body, const char *what, bool enrolled,
			 struct credential_grant *ret, char *err, size_t errlen)
{
	struct transport_reply reply;
	int r = transport_post(t, path, body, strlen(body), &reply);

	if (r < 0) {
		refusal(&reply, what, err, errlen);
		return r;
	}
	if (!parse_grant(reply.body, enrolled, ret, err, errlen))
		return -EBADMSG;
	return 0;
}

int grant_enroll(struct transport *t, const char *host,
		 struct credential_grant *ret, char *err, size_t errlen)
{
	json_t *req = json_pack("{s:s}", "host", host);
	char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	int r;

	json_decref(req);
	if (body == NULL)
		return -ENOMEM;
	r = request_grant(t, "/api/v1/enroll", body, "the enrollment", true,
			  ret, err, errlen);
	free(body);
	return r;
}

int grant_rotate(struct transport *t, struct credential_grant *ret,
		 char *err, size_t errlen)
{
	return request_grant(t, "/api/v1/credentials/rotate", "{}",
			     "the rotation", false, ret, err, errlen);
}
