#include "ticket_query.h"

#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <string.h>

#include "http.h"

#define PAGE 1000

bool ticket_query_from(const struct http_request *req, struct ticket_query *ret)
{
	*ret = (struct ticket_query){
		.host = http_query(req, "host"),
		.check = http_query(req, "check"),
		.item = http_query(req, "item"),
		.customer = http_query(req, "customer"),
		.queue = http_query(req, "queue"),
		.assignee = http_query(req, "assignee"),
	};
	return ret->host || ret->check || ret->item || ret->customer ||
	       ret->queue || ret->assignee;
}

static bool pattern_valid(const char *key, const char *pattern, char *why,
			  size_t size)
{
	size_t stars = 0;

	if (pattern == NULL)
		return true;
	if (strlen(pattern) > TICKET_QUERY_PATTERN_MAX) {
		snprintf(why, size, "query parameter %s: longer than %d characters",
			 key, TICKET_QUERY_PATTERN_MAX);
		return false;
	}
	for (const char *p = pattern; *p; p++)
		stars += *p == '*';
	if (stars > TICKET_QUERY_STARS_MAX) {
		snprintf(why, size, "query parameter %s: more than %d '*' in one pattern",
			 key, TICKET_QUERY_STARS_MAX);
		return false;
	}
	return true;
}

bool ticket_query_valid(const struct ticket_query *q, char *why, size_t size)
{
	return pattern_valid("host", q->host, why, size) &&
	       pattern_valid("check", q->check, why, size) &&
	       pattern_valid("item", q->item, why, size) &&
	       pattern_valid("customer", q->customer, why, size) &&
	       pattern_valid("queue", q->queue, why, size) &&
	       pattern_valid("assignee", q->assignee, why, size);
}

/* A field without a value (no customer, nobody assigned) matches only "". */
static bool field_matches(json_t *ticket, const char *key, const char *pattern)
{
	const char *v;

	if (pattern == NULL)
		return true;
	v = json_string_value(json_object_get(ticket, key));
	return fnmatch(pattern, v ? v : "", 0) == 0;
}

bool ticket_query_match(const struct ticket_query *q, json_t *ticket)
{
	return field_matches(ticket, "host", q->host) &&
	       field_matches(ticket, "check", q->check) &&
	       field_matches(ticket, "item", q->item) &&
	       field_matches(ticket, "customer", q->customer) &&
	       field_matches(ticket, "queue", q->queue) &&
	       field_matches(ticket, "assignee", q->assignee);
}

int ticket_query_run(const struct ticket_query *q, ticket_query_page page,
		     void *arg, int64_t limit, int64_t offset, json_t **ret)
{
	json_t *out = json_array(), *chunk, *t;
	int64_t at = 0, skipped = 0;
	size_t i, n;
	int r;

	while ((int64_t)json_array_size(out) < limit) {
		if (at >= TICKET_QUERY_SCAN_MAX) {
			json_decref(out);
			return -E2BIG;
		}
		r = page(arg, PAGE, at, &chunk);
		if (r < 0) {
			json_decref(out);
			return r;
		}
		n = json_array_size(chunk);
		json_array_foreach(chunk, i, t) {
			if (!ticket_query_match(q, t))
				continue;
			if (skipped < offset)
				skipped++;
			else if ((int64_t)json_array_size(out) < limit)
				json_array_append(out, t);
		}
		json_decref(chunk);
		at += (int64_t)n;
		if (n < PAGE)
			break;
	}
	*ret = out;
	return 0;
}
