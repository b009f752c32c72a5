/*
 * HTTP delivery of event batches to the collector, over libcurl.
 *
 * One transport keeps one curl handle, so consecutive posts reuse the
 * connection.  transport_post() returns 0 only when the collector answered
 * 2xx, which it does only after committing the batch.
 */
#ifndef TOCSIN_TRANSPORT_H
#define TOCSIN_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>

struct transport;

struct transport_reply {
	long status;	       /* HTTP status, 0 when no answer came */
	char error[512];       /* why it failed, for the log and the user */
	int64_t retry_after_ms; /* from Retry-After, 0 when absent */
};

int transport_new(const char *url, const char *token, int64_t timeout_ms,
		  struct transport **ret);
void transport_free(struct transport *t);
/* POST body to <url>/api/v1/events.  0 on 2xx, else -EIO with reply set. */
int transport_post_events(struct transport *t, const char *body, size_t len,
			  struct transport_reply *reply);

#endif
