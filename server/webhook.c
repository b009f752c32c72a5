#include "webhook.h"

#include <curl/curl.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "notify.h"

/* The reply is read (bounded) and dropped: only the status counts. */
static size_t on_data(char *data, size_t size, size_t n, void *arg)
{
	size_t *seen = arg;

	(void)data;
	*seen += size * n;
	return *seen > WEBHOOK_REPLY_MAX ? 0 : size * n;
}

int webhook_send(const struct notify_webhook *w, const char *body,
		 const char *key, int64_t timeout_ms, char *err, size_t errlen)
{
	struct curl_slist *headers = NULL;
	char *idem = xasprintf("Idempotency-Key: %s", key);
	size_t seen = 0;
	long status = 0;
	CURLcode rc;
	CURL *curl = curl_easy_init();
	int r = 0;

	if (curl == NULL) {
		free(idem);
		snprintf(err, errlen, "cannot initialise libcurl");
		return -ENOMEM;
	}
	headers = curl_slist_append(headers, "Content-Type: application/json");
	headers = curl_slist_append(headers, idem);
	for (size_t i = 0; w->headers[i]; i++)
		headers = curl_slist_append(headers, w->headers[i]);
	curl_easy_setopt(curl, CURLOPT_URL, w->url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)timeout_ms);
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &seen);
	rc = curl_easy_perform(curl);
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	if (rc != CURLE_OK) {
		snprintf(err, errlen, "webhook %s: %s", w->name, curl_easy_strerror(rc));
		r = -EIO;
	} else if (status < 200 || status >= 300) {
		snprintf(err, errlen, "webhook %s: HTTP %ld", w->name, status);
		r = -EIO;
	}
	curl_easy_cleanup(curl);
	curl_slist_free_all(headers);
	free(idem);
	return r;
}
