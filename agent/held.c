#include "held.h"

#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"

static const char *field(const json_t *ev, const char *name)
{
	const char *v = json_string_value(json_object_get(ev, name));

	return v ? v : "";
}

static bool same_key(const json_t *a, const json_t *b)
{
	return strcmp(field(a, "check"), field(b, "check")) == 0 &&
	       strcmp(field(a, "item"), field(b, "item")) == 0;
}

void held_init(struct held *h, size_t max)
{
	h->events = json_array();
	h->max = max > 0 ? max : 1;
	h->dropped_repeats = h->dropped_changes = 0;
}

void held_fini(struct held *h)
{
	json_decref(h->events);
	h->events = NULL;
}

size_t held_count(const struct held *h)
{
	return json_array_size(h->events);
}

/* The latest held event of ev's key, or NULL. */
static const json_t *latest_of_key(const struct held *h, const json_t *ev)
{
	for (size_t i = held_count(h); i-- > 0;) {
		const json_t *e = json_array_get(h->events, i);

		if (same_key(e, ev))
			return e;
	}
	return NULL;
}

/*
 * The oldest event a newer held event of its key supersedes, else 0:
 * from the newest back, the last one met whose key was already seen
 * (a set of the keys met, so one pass instead of every pair).
 */
static size_t victim(const struct held *h)
{
	json_t *seen = json_object();
	size_t found = 0;

	for (size_t i = held_count(h); i-- > 0;) {
		const json_t *e = json_array_get(h->events, i);
		/* '\x1f' is in no check's name: the pair stays apart */
		char *key = xasprintf("%s\x1f%s", field(e, "check"),
				      field(e, "item"));

		if (json_object_get(seen, key) != NULL)
			found = i;
		else
			json_object_set_new(seen, key, json_true());
		free(key);
	}
	json_decref(seen);
	return found;
}

void held_add(struct held *h, json_t *ev)
{
	const json_t *last = latest_of_key(h, ev);

	if (last != NULL &&
	    strcmp(field(last, "state"), field(ev, "state")) == 0) {
		json_decref(ev);
		h->dropped_repeats++;
		return;
	}
	json_array_append_new(h->events, ev);
	if (held_count(h) > h->max) {
		json_array_remove(h->events, victim(h));
		h->dropped_changes++;
	}
}

void held_remove(struct held *h, const json_t *sent)
{
	for (size_t i = 0; i < json_array_size(sent); i++) {
		const json_t *ev = json_array_get(sent, i);

		for (size_t j = 0; j < held_count(h); j++)
			if (json_array_get(h->events, j) == ev) {
				json_array_remove(h->events, j);
				break;
			}
	}
}

void held_clear(struct held *h)
{
	json_array_clear(h->events);
	h->dropped_repeats = h->dropped_changes = 0;
}
