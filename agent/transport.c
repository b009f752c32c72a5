#include "transport.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"

/* The collector's answers are small; more than this is not a collector. */
#define REPLY_MAX (64 * 1024)

struct transport {
	CURL *curl;
	char *events_url;
	struct curl_slist *headers;
	char *reply;
	size_t reply_len;
};

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

int transport_new(const char *url, const char *token, int64_t timeout_ms,
		  struct transport **ret)
{
	struct transport *t = xcalloc(1, sizeof(*t));
	size_t len = strlen(url);
	char *auth;

	curl_global_init(CURL_GLOBAL_DEFAULT);
	t->curl = curl_easy_init();
	if (t->curl == NULL) {
		free(t);
		return -ENOMEM;
	}
	while (len > 0 && url[len - 1] == '/')
		len--;
	t->events_url = xasprintf("%.*s/api/v1/events", (int)len, url);
	t->headers = curl_slist_append(NULL, "Content-Type: application/json");
	if (token != NULL) {
		auth = xasprintf("Authorization: Bearer %s", token);
		t->headers = curl_slist_append(t->headers, auth);
		free(auth);
	}
	curl_easy_setopt(t->curl, CURLOPT_URL, t->events_url);
	curl_easy_setopt(t->curl, CURLOPT_HTTPHEADER, t->headers);
	curl_easy_setopt(t->curl, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(t->curl, CURLOPT_CONNECTTIMEOUT_MS,
			 (long)(timeout_ms < 5000 ? timeout_ms : 5000));
	curl_easy_setopt(t->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(t->curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(t->curl, CURLOPT_WRITEFUNCTION, collect_reply);
	curl_easy_setopt(t->curl, CURLOPT_WRITEDATA, t);
	curl_easy_setopt(t->curl, CURLOPT_USERAGENT, "tocsin-agent/" TOCSIN_VERSION);
	*ret = t;
	return 0;
}

void transport_free(struct transport *t)
{
	if (t == NULL)
		return;
	curl_easy_cleanup(t->curl);
	curl_slist_free_all(t->headers);
	free(t->events_url);
	free(t->reply);
	free(t);
}

/* The collector explains refusals as {"error": "..."}; quote that. */
static void reply_error_text(const struct transport *t, char *buf,
			     size_t size)
{
	json_t *doc = t->reply ? json_loads(t->reply, 0, NULL) : NULL;
	const char *msg = doc ? json_string_value(json_object_get(doc, "error"))
			      : NULL;

	if (msg != NULL)
		strlcpy_safe(buf, msg, size);
	else if (t->reply != NULL)
		snprintf(buf, size, "%.200s", t->reply);
	else
		buf[0] = '\0';
	json_decref(doc);
}

int transport_post_events(struct transport *t, const char *body, size_t len,
			  struct transport_reply *reply)
{
	char why[400];
	curl_off_t retry_after = 0;
	CURLcode rc;

	memset(reply, 0, sizeof(*reply));
	free(t->reply);
	t->reply = NULL;
	t->reply_len = 0;
	curl_easy_setopt(t->curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(t->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);

	rc = curl_easy_perform(t->curl);
	if (rc != CURLE_OK) {
		snprintf(reply->error, sizeof(reply->error),
			 "cannot reach the collector at %s: %s",
			 t->events_url, curl_easy_strerror(rc));
		return -EIO;
	}
	curl_easy_getinfo(t->curl, CURLINFO_RESPONSE_CODE, &reply->status);
	if (curl_easy_getinfo(t->curl, CURLINFO_RETRY_AFTER, &retry_after) ==
		    CURLE_OK &&
	    retry_after > 0)
		reply->retry_after_ms = (int64_t)retry_after * 1000;
	if (reply->status >= 200 && reply->status < 300)
		return 0;
	reply_error_text(t, why, sizeof(why));
	snprintf(reply->error, sizeof(reply->error),
		 "the collector at %s refused the events: HTTP %ld%s%s",
		 t->events_url, reply->status, why[0] ? ": " : "", why);
	return -EIO;
}
