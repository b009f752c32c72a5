/*
 * HTTPS to the collector, over libcurl: failover between several
 * collector URLs, server verification (CA file or the system store, an
 * optional public-key pin), an optional client certificate, and errors
 * that say why a connection was refused.
 *
 * One transport keeps one curl handle, created on the first request (an
 * agent that never needs to send pays nothing for TLS), so consecutive
 * posts reuse the connection.
 *
 * Failover: the URLs are tried in order until one answers (any HTTP
 * status below 500).  The transport sticks to the URL that answered and,
 * while that is not the first, tries the first again once every
 * retry_primary_ms.
 */
#ifndef TOCSIN_TRANSPORT_H
#define TOCSIN_TRANSPORT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct transport;

struct transport_options {
	char **urls; /* NULL-terminated, at least one; base URLs */
	const char *token; /* bearer token, may be NULL */
	int64_t timeout_ms;
	const char *ca_file;	 /* NULL: the system store */
	const char *pin_sha256;	 /* curl's "sha256//BASE64[;sha256//...]" */
	const char *client_cert; /* PEM, with client_key */
	const char *client_key;
	bool allow_plain_http;	 /* else http:// URLs are refused */
	int64_t retry_primary_ms;
	/*
	 * Called at least once a second while a request runs; returning
	 * true abandons it (-ECANCELED).  May be NULL.
	 */
	bool (*should_abort)(void *arg);
	void *abort_arg;
};

struct transport_reply {
	long status;	    /* HTTP status, 0 when no collector answered */
	char error[1024];   /* a sentence for the log: where and why */
	char message[512];  /* the collector's {"error": ...}, or "" */
	bool explained;	    /* message came as {"error": ...}, as the collector says it */
	int64_t accepted;   /* a 2xx's {"accepted": N}, the collector's ack; -1: none */
	int64_t retry_after_ms; /* from Retry-After, 0 when absent */
	const char *body;   /* the answer; valid until the next request */
	const char *url;    /* the base URL that answered or was tried last */
	size_t url_index;   /* its index in the options' urls */
	bool switched;	    /* a different URL answered than the last time */
};

/* Copies what it needs from o: o may go away after the call.  0 or -errno. */
int transport_new(const struct transport_options *o, struct transport **ret);
void transport_free(struct transport *t);
void transport_set_token(struct transport *t, const char *token);
/* The base URL in use now (the one that answered last). */
const char *transport_url(const struct transport *t);
size_t transport_url_count(const struct transport *t);

/*
 * The failover state: the index of the URL that answered last and how
 * long until the first is tried again.  A transport in a new process
 * takes it from the one before (the agent keeps it across deliverers),
 * so a failed primary is not tried first by every deliverer.
 */
void transport_failover(const struct transport *t, size_t *ret_current,
			int64_t *ret_primary_retry_in_ms);
void transport_set_failover(struct transport *t, size_t current,
			    int64_t primary_retry_in_ms);

/*
 * POST body (len bytes of JSON) to <url><path> with failover.  0 on 2xx;
 * -ECANCELED when should_abort said so; -EIO otherwise, with reply
 * saying what happened (status 0: nobody answered).
 */
int transport_post(struct transport *t, const char *path, const char *body,
		   size_t len, struct transport_reply *reply);

#endif
