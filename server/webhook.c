#include "webhook.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "notify.h"

struct reply {
	char *p;
	size_t len;
};

/* The reply is kept up to WEBHOOK_REPLY_MAX; a longer one fails the request. */
static size_t on_data(char *data, size_t size, size_t n, void *arg)
{
	struct reply *r = arg;
	size_t len = size * n;

	if (r->len + len > WEBHOOK_REPLY_MAX)
		return 0;
	r->p = xreallocarray(r->p, r->len + len + 1, 1);
	memcpy(r->p + r->len, data, len);
	r->len += len;
	r->p[r->len] = '\0';
	return len;
}

/* libcurl asks about once a second, even while nothing moves. */
static int on_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	(void)a, (void)b, (void)c, (void)d;
	return atomic_load((const atomic_bool *)arg) ? 1 : 0;
}

/* Statuses that say "not now" rather than "not this". */
static bool status_transient(long status)
{
	return status >= 500 || status == 408 || status == 429;
}

int webhook_send(const struct notify_webhook *w, const char *url, bool put,
		 const char *body, const char *key, char **ret_reply,
		 const atomic_bool *stop, char *err, size_t errlen)
{
	struct curl_slist *headers = NULL;
	char *idem = xasprintf("Idempotency-Key: %s", key);
	struct reply reply = { 0 };
	long status = 0;
	CURLcode rc;
	CURL *curl = curl_easy_init();
	int r = 0;

	if (curl == NULL) {
		free(idem);
		snprintf(err, errlen, "cannot initialise libcurl");
		return -EAGAIN;
	}
	headers = curl_slist_append(headers, "Content-Type: application/json");
	headers = curl_slist_append(headers, idem);
	for (size_t i = 0; w->headers[i]; i++)
		headers = curl_slist_append(headers, w->headers[i]);
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)w->timeout_ms);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	if (put)
		curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, "PUT");
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &reply);
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(curl, CURLOPT_XFERINFODATA, (void *)(uintptr_t)stop);
	rc = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	if (rc == CURLE_ABORTED_BY_CALLBACK) {
		snprintf(err, errlen, "webhook %s: abandoned, the server is stopping", w->name);
		r = -ECANCELED;
	} else if (rc != CURLE_OK) {
		snprintf(err, errlen, "webhook %s: %s", w->name, curl_easy_strerror(rc));
		r = -EAGAIN;
	} else if (status < 200 || status >= 300) {
		snprintf(err, errlen, "webhook %s: HTTP %ld", w->name, status);
		r = status_transient(status) ? -EAGAIN : -EIO;
	}
	curl_easy_cleanup(curl);
	curl_slist_free_all(headers);
	free(idem);
	if (r == 0 && ret_reply) {
		*ret_reply = reply.p ? reply.p : xstrdup("");
		reply.p = NULL;
	}
	free(reply.p);
	return r;
}
