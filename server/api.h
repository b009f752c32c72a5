/*
 * The JSON API: route table and handlers over the store.
 */
#ifndef TOCSIN_API_H
#define TOCSIN_API_H

#include "budget.h"
#include "http.h"
#include "metrics.h"
#include "server.h"
#include "store.h"

#include <stdatomic.h>

struct metrics;
struct writer;
struct desk;
struct traplisten;

/* What the ingest endpoint has done since start, for /metrics. */
struct api_counters {
	atomic_uint_fast64_t batches;	       /* committed */
	atomic_uint_fast64_t batches_rejected; /* 4xx: malformed or over a limit */
	atomic_uint_fast64_t batches_failed;   /* 503: the store failed */
	atomic_uint_fast64_t batches_over_key_cap; /* 400: ingest.max_keys_per_host */
	atomic_uint_fast64_t events;	       /* stored */
	atomic_uint_fast64_t duplicates;       /* ids seen before */
	atomic_uint_fast64_t tickets_opened;
	atomic_uint_fast64_t tickets_updated;
	atomic_uint_fast64_t tickets_resolved;
};

struct api {
	/* Replaced whole on SIGHUP (daemon.c), hence atomic; see there. */
	const struct server_config *_Atomic conf;
	struct store *store;	 /* the writer's; reads go to reader */
	struct writer *writer;	 /* every change goes through it */
	struct metrics *metrics; /* sources for GET /metrics */
	struct desk *desk;	 /* the helpdesk workflow (desk.h) */
	struct api_counters counters;
	struct credentials *credentials; /* enrollment tokens, host credentials */
	struct audit *audit;
	struct liveness *liveness;	 /* heartbeats and silent hosts */
	struct retention *retention;	 /* event retention (retention.h) */
	struct traplisten *traps;	 /* NULL: no traps: section at start */
	struct budget ingest_bytes;	 /* request bytes of batches waiting for the writer */
	/*
	 * The read side: a second connection (store_open_reader()) with the
	 * modules' read contexts over it, so that reads never wait for the
	 * writer's group commits.  Reads: under store_lock(reader).
	 */
	struct store *reader;
	struct desk *desk_reader;	 /* the helpdesk's fields of tickets */
	struct credlist *credlist;	 /* tokens, credentials, approvals, audit */
	struct accounts *accounts;	 /* the console's accounts (account.h) */
	struct sessions *sessions;	 /* ... and their sessions (session.h) */
};

/*
 * Answer 503 with Retry-After for a store failure r while doing what,
 * and log it: the store's problem, worth a retry later.
 */
void api_store_failure(struct api *api, struct http_response *resp,
		       const char *what, int r);

/*
 * An optional non-negative integer query parameter within [0, max]:
 * 0 (and *ret when present), or -EINVAL after a 400 in resp.
 */
int api_query_int(const struct http_request *req, const char *key,
		  int64_t max, int64_t *ret, struct http_response *resp);

/* The metrics source for the ingest counters and the writer. */
void api_metrics(void *app, struct metrics_out *out);

extern const struct http_route api_routes[];

/* The http_authenticator for the API: configured tokens. */
int api_authenticate(void *app, const char *secret, struct principal *ret);

#endif
