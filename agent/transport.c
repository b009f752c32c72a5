#include "transport.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "agent.h"

/* The collector's answers are small; more than this is not a collector. */
#define REPLY_MAX (64 * 1024)
/*
 * A Retry-After beyond a day is taken as a day (the agent caps it lower
 * still): the collector's figure, in seconds, must fit in milliseconds.
 */
#define RETRY_AFTER_MAX_S (24 * 3600)

struct transport {
	CURL *curl; /* made on the first request */
	char **urls;
	size_t nurls;
	size_t current;		 /* index of the URL that answered last */
	int64_t primary_retry_at; /* monotonic ms */
	char *token;
	struct curl_slist *headers;
	int64_t timeout_ms;
	char *ca_file, *pin_sha256, *client_cert, *client_key;
	bool allow_plain_http;
	int64_t retry_primary_ms;
	bool (*should_abort)(void *arg);
	void *abort_arg;
	char errbuf[CURL_ERROR_SIZE];
	char *reply;
	size_t reply_len;
};

static char *dup_or_null(const char *s)
{
	return s ? xstrdup(s) : NULL;
}

static size_t collect_reply(char *data, size_t size, size_t n, void *p)
{
	struct transport *t = p;
	size_t len = size * n;

	if (t->reply_len + len > REPLY_MAX)
		return 0; /* makes curl fail with CURLE_WRITE_ERROR */
	t->reply = xreallocarray(t->reply, t->reply_len + len + 1, 1);
	memcpy(t->reply + t->reply_len, data, len);
	t->reply_len += len;
	t->reply[t->reply_len] = '\0';
	return len;
}

static int on_progress(void *p, curl_off_t dltotal, curl_off_t dlnow,
		       curl_off_t ultotal, curl_off_t ulnow)
{
	struct transport *t = p;

	(void)dltotal, (void)dlnow, (void)ultotal, (void)ulnow;
	return t->should_abort && t->should_abort(t->abort_arg) ? 1 : 0;
}

int transport_new(const struct transport_options *o, struct transport **ret)
{
	struct transport *t;
	size_t n = 0;

	while (o->urls && o->urls[n])
		n++;
	if (n == 0 || n > AGENT_URLS_MAX)
		return -EINVAL;
	t = xcalloc(1, sizeof(*t));
	t->urls = xcalloc(n + 1, sizeof(*t->urls));
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(o->urls[i]);

		while (len > 0 && o->urls[i][len - 1] == '/')
			len--;
		t->urls[i] = xasprintf("%.*s", (int)len, o->urls[i]);
	}
	t->nurls = n;
	t->timeout_ms = o->timeout_ms > 0 ? o->timeout_ms : 10000;
	t->ca_file = dup_or_null(o->ca_file);
	t->pin_sha256 = dup_or_null(o->pin_sha256);
	t->client_cert = dup_or_null(o->client_cert);
	t->client_key = dup_or_null(o->client_key);
	t->allow_plain_http = o->allow_plain_http;
	t->retry_primary_ms = o->retry_primary_ms;
	t->should_abort = o->should_abort;
	t->abort_arg = o->abort_arg;
	transport_set_token(t, o->token);
	*ret = t;
	return 0;
}

void transport_free(struct transport *t)
{
	if (t == NULL)
		return;
	if (t->curl)
		curl_easy_cleanup(t->curl);
	for (size_t i = 0; i < t->nurls; i++)
		free(t->urls[i]);
	free(t->urls);
	curl_slist_free_all(t->headers);
	if (t->token)
		explicit_bzero(t->token, strlen(t->token));
	free(t->token);
	free(t->ca_file);
	free(t->pin_sha256);
	free(t->client_cert);
	free(t->client_key);
	free(t->reply);
	free(t);
}

void transport_set_token(struct transport *t, const char *token)
{
	char *auth;

	curl_slist_free_all(t->headers);
	if (t->token)
		explicit_bzero(t->token, strlen(t->token));
	free(t->token);
	t->token = dup_or_null(token);
	t->headers = curl_slist_append(NULL, "Content-Type: application/json");
	if (token != NULL) {
		auth = xasprintf("Authorization: Bearer %s", token);
		t->headers = curl_slist_append(t->headers, auth);
		explicit_bzero(auth, strlen(auth));
		free(auth);
	}
	if (t->curl)
		curl_easy_setopt(t->curl, CURLOPT_HTTPHEADER, t->headers);
}

const char *transport_url(const struct transport *t)
{
	return t->urls[t->current];
}

size_t transport_url_count(const struct transport *t)
{
	return t->nurls;
}

void transport_failover(const struct transport *t, size_t *ret_current,
			int64_t *ret_primary_retry_in_ms)
{
	int64_t left = t->primary_retry_at - time_mono_ms();

	*ret_current = t->current;
	*ret_primary_retry_in_ms = t->current != 0 && left > 0 ? left : 0;
}

void transport_set_failover(struct transport *t, size_t current,
			    int64_t primary_retry_in_ms)
{
	if (current >= t->nurls)
		return;
	t->current = current;
	t->primary_retry_at = time_mono_ms() + primary_retry_in_ms;
}

/* The curl handle, made and configured once. */
static int transport_handle(struct transport *t)
{
	CURL *c;

	if (t->curl)
		return 0;
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return -ENOMEM;
	c = curl_easy_init();
	if (c == NULL)
		return -ENOMEM;
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, t->headers);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, (long)t->timeout_ms);
	curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)(t->timeout_ms < 5000 ? t->timeout_ms : 5000));
	curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR,
			 t->allow_plain_http ? "http,https" : "https");
	curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(c, CURLOPT_ERRORBUFFER, t->errbuf);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect_reply);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(c, CURLOPT_XFERINFODATA, t);
	curl_easy_setopt(c, CURLOPT_USERAGENT, "tocsin-agent/" TOCSIN_VERSION);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
	curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
	/*
	 * server.ca_file is then the only trust anchor.  CAINFO alone would
	 * replace only the CA bundle: libcurl would still look up issuers in
	 * its compiled-in CA directory (/etc/ssl/certs on Debian), so any CA
	 * of the system store would vouch for the collector (and OpenSSL
	 * would search that directory on every handshake).  A pin is checked
	 * on top of this verification, never instead of it; a client
	 * certificate only says who we are.  Without ca_file: libcurl's
	 * defaults, the system store.
	 */
	if (t->ca_file) {
		curl_easy_setopt(c, CURLOPT_CAINFO, t->ca_file);
		curl_easy_setopt(c, CURLOPT_CAPATH, NULL);
	}
	if (t->pin_sha256)
		curl_easy_setopt(c, CURLOPT_PINNEDPUBLICKEY, t->pin_sha256);
	if (t->client_cert) {
		curl_easy_setopt(c, CURLOPT_SSLCERT, t->client_cert);
		curl_easy_setopt(c, CURLOPT_SSLKEY, t->client_key);
	}
	t->curl = c;
	return 0;
}

static bool contains(const char *haystack, const char *needle)
{
	return strcasestr(haystack, needle) != NULL;
}

/* tls_reason()'s answer when no trusted CA vouches for the collector. */
static const char unknown_ca[] =
	"unknown CA: the collector's certificate is not signed by a CA of the system store";

/* Why the TLS layer refused the collector, in the words an admin needs. */
static const char *tls_reason(const char *detail)
{
	if (contains(detail, "expired"))
		return "the collector's certificate has expired";
	if (contains(detail, "not yet valid"))
		return "the collector's certificate is not valid yet";
	if (contains(detail, "subject name") || contains(detail, "does not match") ||
	    contains(detail, "hostname mismatch") || contains(detail, "name mismatch"))
		return "host name mismatch: the collector's certificate is for another name";
	if (contains(detail, "issuer") || contains(detail, "self-signed") ||
	    contains(detail, "self signed") || contains(detail, "unknown ca") ||
	    contains(detail, "not trusted") || contains(detail, "untrusted"))
		return unknown_ca;
	return "the collector's certificate was refused";
}

/*
 * A collector that wants a client certificate we do not have drops the
 * connection once TLS 1.3 is up: all curl sees is a reset.  Say what it
 * may mean.
 */
static bool maybe_client_cert(const struct transport *t, size_t i, CURLcode rc)
{
	return t->client_cert == NULL && strncmp(t->urls[i], "https://", 8) == 0 &&
	       (rc == CURLE_SEND_ERROR || rc == CURLE_RECV_ERROR ||
		rc == CURLE_SSL_CONNECT_ERROR);
}

/* A sentence for a request to URL i that got no HTTP answer. */
static void describe_failure(const struct transport *t, size_t i, CURLcode rc,
			     char *buf, size_t size)
{
	const char *detail = t->errbuf[0] ? t->errbuf : curl_easy_strerror(rc);
	const char *reason;

	switch (rc) {
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
		snprintf(buf, size,
			 "TLS: pin mismatch: the collector's public key is not the one in server.pin_sha256 (%s)",
			 detail);
		break;
	case CURLE_PEER_FAILED_VERIFICATION:
		reason = tls_reason(detail);
		/* with a CA file, the system store was not asked: say so */
		if (reason == unknown_ca && t->ca_file)
			snprintf(buf, size,
				 "TLS: unknown CA: the collector's certificate is not signed by server.ca_file %s, the only CA trusted when it is set (%s)",
				 t->ca_file, detail);
		else
			snprintf(buf, size, "TLS: %s (%s)", reason, detail);
		break;
	case CURLE_SSL_CACERT_BADFILE:
		snprintf(buf, size, "TLS: cannot use server.ca_file %s (%s)",
			 t->ca_file ? t->ca_file : "", detail);
		break;
	case CURLE_SSL_CERTPROBLEM:
		snprintf(buf, size,
			 "TLS: cannot use the client certificate server.client_cert %s (%s)",
			 t->client_cert ? t->client_cert : "", detail);
		break;
	case CURLE_SSL_CONNECT_ERROR:
		snprintf(buf, size, "TLS handshake failed (%s)", detail);
		break;
	case CURLE_UNSUPPORTED_PROTOCOL:
		snprintf(buf, size,
			 "plain HTTP is off: use https:// or set server.allow_plain_http (%s)",
			 detail);
		break;
	default:
		snprintf(buf, size, "%s", detail);
		break;
	}
	if (maybe_client_cert(t, i, rc))
		strlcat_safe(buf,
			     " (if the collector requires a client certificate, set server.client_cert and server.client_key)",
			     size);
}

/*
 * The collector explains refusals as {"error": "..."}; quote that (and
 * say it was so in *ret_explained), else the start of whatever came.
 */
static void reply_message(const struct transport *t, char *buf, size_t size,
			  bool *ret_explained)
{
	json_t *doc = t->reply ? json_loads(t->reply, 0, NULL) : NULL;
	const char *msg = doc ? json_string_value(json_object_get(doc, "error"))
			      : NULL;

	*ret_explained = msg != NULL;
	if (msg != NULL)
		strlcpy_safe(buf, msg, size);
	else if (t->reply != NULL)
		snprintf(buf, size, "%.200s", t->reply);
	else
		buf[0] = '\0';
	json_decref(doc);
}

/*
 * The collector acknowledges events with {"accepted": N, ...}: N, or -1
 * when the answer is not that (something else answered the URL).
 */
static int64_t reply_accepted(const struct transport *t)
{
	json_t *doc = t->reply ? json_loads(t->reply, 0, NULL) : NULL;
	json_t *v = json_object_get(doc, "accepted");
	int64_t n = json_is_integer(v) && json_integer_value(v) >= 0
			    ? json_integer_value(v)
			    : -1;

	json_decref(doc);
	return n;
}

/* One request to URL i.  0 when an HTTP answer came (reply->status). */
static int post_one(struct transport *t, size_t i, const char *path,
		    const char *body, size_t len, struct transport_reply *reply,
		    char *why, size_t whylen)
{
	curl_off_t retry_after = 0;
	char *url = xasprintf("%s%s", t->urls[i], path);
	CURLcode rc;

	free(t->reply);
	t->reply = NULL;
	t->reply_len = 0;
	t->errbuf[0] = '\0';
	curl_easy_setopt(t->curl, CURLOPT_URL, url);
	curl_easy_setopt(t->curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(t->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
	rc = curl_easy_perform(t->curl);
	free(url);
	if (rc == CURLE_ABORTED_BY_CALLBACK)
		return -ECANCELED;
	if (rc != CURLE_OK) {
		describe_failure(t, i, rc, why, whylen);
		return -EIO;
	}
	curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &reply->status);
	if (curl_easy_getinfo(t->curl, CURLINFO_RETRY_AFTER, &retry_after) ==
		    CURLE_OK &&
	    retry_after > 0)
		reply->retry_after_ms =
			(int64_t)(retry_after < RETRY_AFTER_MAX_S ? retry_after
								   : RETRY_AFTER_MAX_S) *
			1000;
	reply->body = t->reply;
	return 0;
}

/* The order to try the URLs in: the primary first when it is due again. */
static size_t try_order(const struct transport *t, int64_t now,
			size_t order[AGENT_URLS_MAX])
{
	size_t n = 0;
	bool primary_first = t->current != 0 && now >= t->primary_retry_at;

	if (primary_first)
		order[n++] = 0;
	for (size_t k = 0; k < t->nurls; k++) {
		size_t i = (t->current + k) % t->nurls;

		if (!(primary_first && i == 0))
			order[n++] = i;
	}
	return n;
}

int transport_post(struct transport *t, const char *path, const char *body,
		   size_t len, struct transport_reply *reply)
{
	size_t order[AGENT_URLS_MAX], n, last = t->current;
	int64_t now = time_mono_ms();
	bool tried_primary = false;
	char why[512];
	int r;

	memset(reply, 0, sizeof(*reply));
	reply->accepted = -1;
	r = transport_handle(t);
	if (r < 0) {
		snprintf(reply->error, sizeof(reply->error),
			 "cannot set up libcurl: %s", strerror(-r));
		return r;
	}
	n = try_order(t, now, order);
	for (size_t k = 0; k < n; k++) {
		size_t i = order[k];

		reply->status = 0;
		reply->url = t->urls[i];
		reply->url_index = i;
		tried_primary |= i == 0;
		r = post_one(t, i, path, body, len, reply, why, sizeof(why));
		if (r == -ECANCELED) {
			snprintf(reply->error, sizeof(reply->error),
				 "request to %s abandoned", t->urls[i]);
			return r;
		}
		if (r == 0 && reply->status < 500) {
			t->current = i;
			break;
		}
		if (r == 0)
			snprintf(why, sizeof(why), "HTTP %ld", reply->status);
		if (reply->error[0] != '\0')
			strlcat_safe(reply->error, "; ", sizeof(reply->error));
		strlcat_safe(reply->error, "cannot reach the collector at ",
			     sizeof(reply->error));
		strlcat_safe(reply->error, t->urls[i], sizeof(reply->error));
		strlcat_safe(reply->error, path, sizeof(reply->error));
		strlcat_safe(reply->error, ": ", sizeof(reply->error));
		strlcat_safe(reply->error, why, sizeof(reply->error));
	}
	if (t->current != 0 && (tried_primary || t->current != last))
		t->primary_retry_at = now + t->retry_primary_ms;
	reply->switched = t->current != last;
	if (reply->status == 0 || reply->status >= 500) {
		if (reply->status >= 500)
			reply_message(t, reply->message, sizeof(reply->message),
				      &reply->explained);
		return -EIO;
	}
	if (reply->status >= 200 && reply->status < 300) {
		reply->error[0] = '\0';
		reply->accepted = reply_accepted(t);
		return 0;
	}
	reply_message(t, reply->message, sizeof(reply->message),
		      &reply->explained);
	snprintf(reply->error, sizeof(reply->error),
		 "the collector at %s answered HTTP %ld%s%s", reply->url,
		 reply->status, reply->message[0] ? ": " : "", reply->message);
	return -EIO;
}
