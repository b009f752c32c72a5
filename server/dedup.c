#include "dedup.h"

#include <stdio.h>
#include <stdlib.h>

#include "../common/util.h"

#define SYSTEM_ACTOR "tocsin"

/* Tell the listeners (routing, notifications, ...) what ev did. */
static int announce(struct store *st, enum ticket_change_kind kind,
		    int64_t ticket_id, const struct store_event *ev,
		    const char *host)
{
	const struct ticket_change c = {
		.kind = kind,
		.ticket_id = ticket_id,
		.at_ms = ev->received_ms,
		.actor = SYSTEM_ACTOR,
		.host = host,
		.check = ev->check,
		.item = ev->item,
		.state = ev->state,
		.summary = ev->summary,
	};

	return store_ticket_changed(st, &c);
}

static int open_ticket(struct store *st, const struct store_event *ev,
		       const char *host, struct dedup_stats *stats)
{
	char *title = xasprintf("%s %s on %s", ev->check, ev->item, host);
	int64_t ticket_id;
	int r;

	r = store_ticket_open(st, ev->host_id, ev->check, ev->item, title, ev,
			      &ticket_id);
	free(title);
	if (r < 0)
		return r;
	r = store_journal_add(st, ticket_id, ev->received_ms, SYSTEM_ACTOR,
			      "opened", NULL, check_state_name(ev->state),
			      ev->summary);
	if (r == 0)
		r = store_event_link(st, ev->id, ticket_id);
	if (r == 0)
		r = announce(st, TICKET_OPENED, ticket_id, ev, host);
	if (r < 0)
		return r;
	stats->opened++;
	return 0;
}

static int add_occurrence(struct store *st, const struct store_ticket *t,
			  const struct store_event *ev, const char *host,
			  struct dedup_stats *stats)
{
	int r;

	r = store_ticket_occurrence(st, t, ev);
	if (r == 0)
		r = store_event_link(st, ev->id, t->id);
	/* A change of state is worth a journal line; a repeat is not. */
	if (r == 0 && t->state != ev->state &&
	    ev->observed_ms >= t->last_seen_ms) {
		r = store_journal_add(st, t->id, ev->received_ms, SYSTEM_ACTOR,
				      "state", check_state_name(t->state),
				      check_state_name(ev->state), ev->summary);
		if (r == 0)
			r = announce(st, TICKET_UPDATED, t->id, ev, host);
	}
	if (r < 0)
		return r;
	stats->updated++;
	return 0;
}

static int resolve_ticket(struct store *st, const struct store_ticket *t,
			  const struct store_event *ev, const char *host,
			  struct dedup_stats *stats)
{
	int r;

	/* An ok sample older than the last problem report is stale. */
	if (ev->observed_ms < t->last_seen_ms)
		return 0;
	r = store_ticket_resolve(st, t->id, ev->received_ms);
	if (r < 0)
		return r;
	r = store_journal_add(st, t->id, ev->received_ms, SYSTEM_ACTOR,
			      "resolved", check_state_name(t->state), "ok",
			      ev->summary);
	if (r == 0)
		r = store_event_link(st, ev->id, t->id);
	if (r == 0)
		r = announce(st, TICKET_RESOLVED, t->id, ev, host);
	if (r < 0)
		return r;
	stats->resolved++;
	return 0;
}

static int apply_event(struct store *st, const struct store_event *ev,
		       const char *host, struct dedup_stats *stats)
{
	struct store_ticket t;
	int r, found;

	r = store_event_insert(st, ev);
	if (r < 0)
		return r;
	if (r == 0) {
		stats->duplicates++;
		return 0;
	}
	stats->accepted++;
	found = store_ticket_find_open(st, ev->host_id, ev->check, ev->item,
				       &t);
	if (found < 0)
		return found;
	if (ev->state == CHECK_OK)
		return found ? resolve_ticket(st, &t, ev, host, stats) : 0;
	if (found)
		return add_occurrence(st, &t, ev, host, stats);
	return open_ticket(st, ev, host, stats);
}

int dedup_apply(struct store *st, const struct ingest_batch *batch,
		int64_t now_ms, struct dedup_stats *ret_stats)
{
	return dedup_apply_events(st, batch->host, batch->events,
				  batch->nevents, now_ms, ret_stats);
}

int dedup_apply_events(struct store *st, const char *host,
		       const struct ingest_event *events, size_t nevents,
		       int64_t now_ms, struct dedup_stats *ret_stats)
{
	struct dedup_stats stats = { 0 };
	int64_t host_id;
	int r;

	r = store_host_touch(st, host, now_ms, &host_id);
	for (size_t i = 0; r == 0 && i < nevents; i++) {
		const struct ingest_event *in = &events[i];
		struct store_event ev = {
			.id = in->id,
			.host_id = host_id,
			.check = in->check,
			.item = in->item,
			.state = in->state,
			.summary = in->summary,
			.metrics = in->metrics,
			.context = in->context,
			.observed_ms = in->observed_ms,
			.received_ms = now_ms,
		};
		r = apply_event(st, &ev, host, &stats);
	}
	if (r < 0)
		return r;
	*ret_stats = stats;
	return 0;
}
