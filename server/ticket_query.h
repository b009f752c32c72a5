/*
 * Filters of the ticket list (GET /api/v1/tickets?host=web*&queue=...):
 * shell patterns on host, check, item, customer, queue and assignee,
 * applied before paging, so that limit and offset count matches.
 */
#ifndef TOCSIN_TICKET_QUERY_H
#define TOCSIN_TICKET_QUERY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

struct http_request;

/* Tickets looked at for one filtered request at most. */
#define TICKET_QUERY_SCAN_MAX 100000
/*
 * Bounds on one filter pattern: fnmatch() backtracks on every '*', and a
 * request's patterns run against up to TICKET_QUERY_SCAN_MAX tickets
 * while the read connection is held.
 */
#define TICKET_QUERY_PATTERN_MAX 256
#define TICKET_QUERY_STARS_MAX 4

struct ticket_query {
	const char *host, *check, *item, *customer, *queue, *assignee;
};

/* The filters in req's query string (borrowed); false when there are none. */
bool ticket_query_from(const struct http_request *req, struct ticket_query *ret);
/*
 * Whether every pattern of q is within the bounds above: true, or false
 * with why ("query parameter host: ...") filled in.
 */
bool ticket_query_valid(const struct ticket_query *q, char *why, size_t size);
/* Whether ticket (a list entry, with the helpdesk's fields) matches. */
bool ticket_query_match(const struct ticket_query *q, json_t *ticket);

/* One page of the unfiltered list: 0 and *ret, or -errno. */
typedef int (*ticket_query_page)(void *arg, int64_t limit, int64_t offset,
				 json_t **ret);

/*
 * The matches of q from pages of the unfiltered list, the first offset
 * skipped, at most limit: 0 and *ret, -E2BIG when more than
 * TICKET_QUERY_SCAN_MAX tickets were looked at before limit matches
 * were found (and the list goes on), or page()'s error.
 */
int ticket_query_run(const struct ticket_query *q, ticket_query_page page,
		     void *arg, int64_t limit, int64_t offset, json_t **ret);

#endif
