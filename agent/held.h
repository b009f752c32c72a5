/*
 * Events held in memory while the outbox cannot be written (a full disk,
 * an I/O error), until it can take them again or a direct send delivered
 * them.  The events keep the id and observed_at they were made with, so
 * one sent directly and written to the outbox later (its answer lost) is
 * recognised by the collector and adds nothing.
 *
 * Bounded as the outbox is, in the outbox's order of what matters: an
 * event that repeats the state of the latest held event of its key is not
 * kept (the collector loses an occurrence count, never a state); when
 * max events are held, a state change superseded by a newer held event of
 * its key goes first, then the oldest.  Every event not kept is counted.
 */
#ifndef TOCSIN_HELD_H
#define TOCSIN_HELD_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

struct held {
	json_t *events;	  /* array, oldest first */
	size_t max;	  /* at least 1 */
	/* not kept since the outbox last took them: repeats, changes */
	uint64_t dropped_repeats;
	uint64_t dropped_changes;
};

void held_init(struct held *h, size_t max);
void held_fini(struct held *h);
size_t held_count(const struct held *h);
/* Hold ev (stolen; an event object with check, item and state). */
void held_add(struct held *h, json_t *ev);
/* Forget the events of sent (an array of events taken from h->events). */
void held_remove(struct held *h, const json_t *sent);
/* Forget every event and the counts: the outbox took them. */
void held_clear(struct held *h);

#endif
