#include "event.h"

#include "../common/log.h"
#include "../common/util.h"

/* Results that could not become events, for the log line that says so. */
static size_t unencodable;

json_t *event_from_result(const struct check_result *r, int64_t observed_ms)
{
	char id[UUID_STR_LEN], at[TIME_RFC3339_LEN];
	json_t *ev;

	if (uuid_generate(id) < 0)
		return NULL;
	time_format_rfc3339(observed_ms, at);
	ev = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s}", "id", id, "check",
		       r->check, "item", r->item, "state",
		       check_state_name(r->state), "summary", r->summary,
		       "observed_at", at);
	if (ev == NULL) {
		/* checks make their text valid UTF-8: this should not happen */
		log_warnx("cannot encode the result %s/%s as an event: dropped (%zu so far)",
			  r->check, r->item, ++unencodable);
		return NULL;
	}
	if (r->metrics != NULL)
		json_object_set(ev, "metrics", r->metrics);
	else
		json_object_set_new(ev, "metrics", json_object());
	if (r->context != NULL)
		json_object_set(ev, "context", r->context);
	return ev;
}

json_t *event_batch(const char *host, json_t *events)
{
	return json_pack("{s:s, s:O, s:{s:s}}", "host", host, "events", events,
			 "agent", "version", TOCSIN_VERSION);
}
