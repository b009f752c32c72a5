#include "dedup.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/log.h"
#include "../common/util.h"
#include "dedup_metrics.h"
#include "flap.h"
#include "inventory.h"
#include "keymap.h"
#include "lifecycle.h"
#include "problem.h"
#include "silence.h"
#include "topology.h"
#include "writer.h"

#define SYSTEM_ACTOR "tocsin"
/* Problems one tick looks at; the rest wait for the next tick. */
#define TICK_BATCH 256

/* What the event (or timer) at hand is about. */
struct ctx {
	struct dedup *d;
	const char *host;
	const struct host *inv; /* the host's inventory entry, or NULL */
	int64_t host_id;
	const char *check;
	const char *item;
	int64_t now_ms;
	struct dedup_stats *stats;
	const struct lifecycle_params *params; /* looked up when needed */
	bool raised; /* the collector's own events (dedup_apply_raised()) */
};

static const struct lifecycle_params *params(struct ctx *c)
{
	if (c->params == NULL)
		c->params = lifecycle_params_for(c->d->lc, c->inv, c->host,
						 c->check, c->item);
	return c->params;
}

/* Tell the listeners (routing, notifications, ...) what happened. */
static int announce(struct ctx *c, enum ticket_change_kind kind,
		    const struct store_ticket *t, const struct store_event *ev,
		    const char *field, const char *old_value,
		    const char *new_value)
{
	const struct ticket_change ch = {
		.kind = kind,
		.ticket_id = t->id,
		.at_ms = c->now_ms,
		.actor = SYSTEM_ACTOR,
		.host = c->host,
		.check = c->check,
		.item = c->item,
		.state = ev->state,
		.summary = ev->summary,
		.field = field,
		.old_value = old_value,
		.new_value = new_value,
		.parent_id = t->parent_id,
		.flapping = t->flapping,
	};

	return store_ticket_changed(c->d->st, &ch);
}

/* A journal line by the system itself at the time of the change. */
static int journal(struct ctx *c, int64_t ticket_id, const char *action,
		   const char *old_value, const char *new_value,
		   const char *text)
{
	return store_journal_add(c->d->st, ticket_id, c->now_ms, SYSTEM_ACTOR,
				 action, old_value, new_value, text);
}

/* A duration for journal lines: "5 min", "2 h". */
static void span_text(int64_t ms, char *buf, size_t size)
{
	format_duration(ms > 0 ? ms / 1000 : 0, buf, size);
}

/* Link the events that led to a confirmed problem to its ticket. */
static int link_pending(struct ctx *c, struct problem *p, int64_t ticket_id)
{
	int r = 0;

	for (size_t i = 0; r == 0 && i < p->npending; i++)
		r = store_event_link(c->d->st, p->pending[i], ticket_id);
	p->npending = 0;
	return r;
}

/* The key's ticket is flapping from now: one ticket until it calms down. */
static int flap_mark(struct ctx *c, struct store_ticket *t)
{
	char window[32], *text;
	int r;

	span_text(params(c)->flap_window_ms, window, sizeof(window));
	text = xasprintf("flapping: %lld changes between ok and not ok within %s; the ticket stays open until it calms down",
			 (long long)params(c)->flap_threshold, window);
	t->flapping = true;
	r = store_ticket_set_flapping(c->d->st, t->id, true);
	if (r == 0)
		r = journal(c, t->id, "flapping", "no", "yes", text);
	free(text);
	return r;
}

/* Where the ticket belongs in the topology now; t->parent_id follows. */
static int place_in_topology(struct ctx *c, struct store_ticket *t)
{
	struct topology_parent parent;
	char old[32];
	int r;

	r = topology_find_parent(c->d->topology, c->host, &parent);
	if (r < 0)
		return r;
	if (r > 0 && parent.ticket_id != t->parent_id) {
		r = topology_attach(c->d->topology, t->id, &parent, c->now_ms,
				    NULL);
		t->parent_id = parent.ticket_id;
		return r;
	}
	if (r == 0 && t->parent_id > 0) {
		snprintf(old, sizeof(old), "#%lld", (long long)t->parent_id);
		r = store_ticket_set_parent(c->d->st, t->id, 0);
		if (r == 0)
			r = journal(c, t->id, "detached", old, NULL,
				    "the parent is no longer down: a ticket of its own");
		t->parent_id = 0;
	}
	return r;
}

/* Confirmation is worth a journal line when it was not the first result. */
static int journal_confirmed(struct ctx *c, const struct problem *p,
			     int64_t ticket_id, int64_t silence_id)
{
	char since[TIME_RFC3339_LEN], *text = NULL;
	int r = 0;

	time_format_rfc3339(p->first_ms, since);
	if (silence_id > 0)
		text = xasprintf("silence #%lld ended and the problem is still there (not ok since %s)",
				 (long long)silence_id, since);
	else if (p->streak > 1 || params(c)->confirm_for_ms > 0)
		text = xasprintf("confirmed after %lld non-ok result%s since %s",
				 (long long)p->streak, p->streak == 1 ? "" : "s",
				 since);
	if (text)
		r = journal(c, ticket_id, silence_id > 0 ? "silence" : "confirmed",
			    NULL, NULL, text);
	free(text);
	return r;
}

/*
 * A confirmed problem's new ticket, from ev (the event, or the problem's
 * latest state when a timer confirms it), with the events that led to it
 * and its place in the topology.  silence_id > 0: it was held back by
 * that silence until now.
 */
static int open_ticket(struct ctx *c, struct problem *p,
		       const struct store_event *ev, int64_t silence_id)
{
	char *title = xasprintf("%s %s on %s", c->check, c->item, c->host);
	struct store_ticket t = { 0 };
	int r;

	r = store_ticket_open(c->d->st, c->host_id, c->check, c->item, title,
			      ev, &t.id);
	free(title);
	if (r < 0)
		return r;
	r = journal(c, t.id, "opened", NULL, check_state_name(ev->state),
		    ev->summary);
	/* Results that led to the confirmation count; the first began it. */
	if (r == 0 && p->streak > 1)
		r = store_ticket_set_history(c->d->st, t.id, p->streak,
					     p->first_ms);
	if (r == 0)
		r = journal_confirmed(c, p, t.id, silence_id);
	if (r == 0)
		r = link_pending(c, p, t.id);
	if (r == 0 && p->flapping)
		r = flap_mark(c, &t);
	if (r == 0)
		r = place_in_topology(c, &t);
	if (r == 0)
		r = announce(c, TICKET_OPENED, &t, ev, NULL, NULL, NULL);
	if (r < 0)
		return r;
	c->stats->opened++;
	p->phase = PROBLEM_OPEN;
	p->ticket_id = t.id;
	p->prior_status[0] = '\0';
	p->streak = 0; /* counted on the ticket; a later stretch counts anew */
	return 0;
}

/*
 * The problem is back while its ticket is recovered, or within
 * reopen_within of its resolution: the same ticket, open again, in the
 * status it had when the problem went away (new when a technician
 * resolved it: it needs someone's attention again).
 */
static int reopen_ticket(struct ctx *c, struct problem *p,
			 struct store_ticket *t, const struct store_event *ev,
			 int64_t went_away_ms)
{
	const char *status = p->prior_status[0] ? p->prior_status : "new";
	char old_status[sizeof(t->status)], gap[32], *text;
	int64_t recovered_ms = t->resolved_ms ? t->resolved_ms : went_away_ms;
	int r;

	strlcpy_safe(old_status, t->status, sizeof(old_status));
	span_text(c->now_ms - recovered_ms, gap, sizeof(gap));
	text = xasprintf("the problem came back %s after it went away: %s", gap,
			 ev->summary);
	r = store_ticket_reopen(c->d->st, t->id, status);
	if (r == 0)
		r = journal(c, t->id, "reopened", old_status, status, text);
	free(text);
	if (r == 0)
		r = store_ticket_occurrence(c->d->st, t, ev);
	if (r == 0 && p->streak > 1)
		r = store_ticket_set_history(c->d->st, t->id,
					     t->occurrences + p->streak,
					     t->first_seen_ms);
	if (r == 0)
		r = link_pending(c, p, t->id);
	if (r == 0 && p->flapping && !t->flapping)
		r = flap_mark(c, t);
	if (r == 0)
		r = place_in_topology(c, t);
	if (r == 0)
		r = announce(c, TICKET_REOPENED, t, ev, "status", old_status,
			     status);
	if (r < 0)
		return r;
	c->stats->reopened++;
	p->phase = PROBLEM_OPEN;
	p->ticket_id = t->id;
	p->prior_status[0] = '\0';
	p->streak = 0;
	return 0;
}

/* Reopen the key's last ticket if the rule allows it, else open one. */
static int open_or_reopen(struct ctx *c, struct problem *p,
			  const struct store_event *ev)
{
	int64_t silence_id = p->phase == PROBLEM_SILENCED ? p->silence_id : 0;
	const struct lifecycle_params *prm = params(c);
	struct store_ticket last;
	int r;

	p->silence_id = 0;
	if (p->ticket_id > 0 && prm->reopen_within_ms > 0) {
		r = store_ticket_lookup(c->d->st, p->ticket_id, &last);
		if (r < 0 && r != -ENOENT)
			return r;
		if (r == 0 && strcmp(last.status, "resolved") == 0 &&
		    c->now_ms - last.resolved_ms <= prm->reopen_within_ms) {
			r = reopen_ticket(c, p, &last, ev, last.resolved_ms);
			if (r == 0 && silence_id > 0)
				r = journal_confirmed(c, p, last.id, silence_id);
			return r;
		}
	}
	return open_ticket(c, p, ev, silence_id);
}

/*
 * Whether the rule counts the problem as real at at_ms (flapping is).
 * An event the collector raised once for the problem (raised) has no
 * repeats to count: without a confirm_for to wait, confirm_after cannot
 * hold it back, or a silent host would never get a ticket.
 */
static bool confirmed(const struct lifecycle_params *prm,
		      const struct problem *p, int64_t at_ms, bool raised)
{
	/* Held back by a silence, it had been confirmed (confirm()). */
	if (p->flapping || p->phase == PROBLEM_SILENCED)
		return true;
	if (prm->confirm_after > 0 &&
	    (p->streak >= prm->confirm_after ||
	     (raised && prm->confirm_for_ms == 0)))
		return true;
	return prm->confirm_for_ms > 0 &&
	       at_ms - p->since_ms >= prm->confirm_for_ms;
}

/*
 * Whether a silence holds the problem back at now: 1 with the silence
 * and its end, 0, or -errno.  A problem a silence of its own already
 * holds costs one read of that silence, not a scan of all of them with
 * their patterns, for each of its events while the silence lasts; held
 * back by the topology (a silenced parent), it is looked at afresh, as
 * the parent may have come back.
 */
static int held_back(struct ctx *c, const struct problem *p,
		     int64_t *ret_silence_id, int64_t *ret_ends_ms)
{
	int r;

	if (p->phase == PROBLEM_SILENCED && p->silence_id > 0 &&
	    p->due_ms > c->now_ms) {
		r = silence_holds(c->d->silences, p->silence_id, c->host,
				  c->check, c->item, c->now_ms, ret_ends_ms);
		if (r > 0)
			*ret_silence_id = p->silence_id;
		if (r != 0)
			return r;
	}
	r = silence_find(c->d->silences, c->host, c->check, c->item,
			 c->now_ms, ret_silence_id, ret_ends_ms);
	if (r == 0)
		r = topology_held_back(c->d->topology, c->host, c->now_ms,
				       ret_silence_id, ret_ends_ms);
	return r;
}

/*
 * A problem without an open ticket at at_ms: still pending, held back by
 * a silence, or a ticket now.  The problem row is saved.
 */
static int confirm(struct ctx *c, struct problem *p,
		   const struct store_event *ev, int64_t at_ms)
{
	const struct lifecycle_params *prm = params(c);
	int64_t silence_id, ends_ms;
	int r;

	if (!confirmed(prm, p, at_ms, c->raised)) {
		p->phase = PROBLEM_PENDING;
		p->due_ms = prm->confirm_for_ms > 0
				    ? p->since_ms + prm->confirm_for_ms
				    : 0;
		if (ev->id)
			c->stats->pending++;
	} else if ((r = held_back(c, p, &silence_id, &ends_ms)) != 0) {
		if (r < 0)
			return r;
		p->phase = PROBLEM_SILENCED;
		p->silence_id = silence_id;
		p->due_ms = ends_ms;
		if (ev->id) {
			c->stats->suppressed++;
			r = dedup_metrics_add(c->d->metrics, DEDUP_SUPPRESSED, 1);
			if (r < 0)
				return r;
		}
	} else {
		r = open_or_reopen(c, p, ev);
		if (r < 0)
			return r;
		p->due_ms = 0;
	}
	if (p->flapping) {
		int64_t calm = flap_calm_at(&p->changes, prm->flap_window_ms,
					    prm->flap_threshold);

		if (p->due_ms == 0 || (calm > 0 && calm < p->due_ms))
			p->due_ms = calm;
	}
	return problem_save(c->d->problems, c->host_id, c->check, c->item, p);
}

/*
 * ev is one more occurrence of the open ticket t; a change of state is
 * journaled and announced unless quiet (a flapping ticket changes all the
 * time: flapping itself was journaled once).
 */
static int add_occurrence(struct ctx *c, const struct store_ticket *t,
			  const struct store_event *ev, bool quiet)
{
	int r;

	r = store_ticket_occurrence(c->d->st, t, ev);
	if (r == 0 && ev->id && ev->ticket_id != t->id)
		r = store_event_link(c->d->st, ev->id, t->id);
	/* A change of state is worth a journal line; a repeat is not. */
	if (r == 0 && !quiet && t->state != ev->state &&
	    ev->observed_ms >= t->last_seen_ms) {
		r = journal(c, t->id, "state", check_state_name(t->state),
			    check_state_name(ev->state), ev->summary);
		if (r == 0)
			r = announce(c, TICKET_UPDATED, t, ev, NULL, NULL, NULL);
	}
	if (r < 0)
		return r;
	c->stats->updated++;
	return 0;
}

/* The problem went away: resolve the ticket, or mark it for review. */
static int recover_ticket(struct ctx *c, struct problem *p,
			  struct store_ticket *t, const struct store_event *ev)
{
	bool review = params(c)->on_recovery == RECOVERY_REVIEW;
	int r;

	strlcpy_safe(p->prior_status, t->status, sizeof(p->prior_status));
	r = review ? store_ticket_recover(c->d->st, t->id)
		   : store_ticket_resolve(c->d->st, t->id, c->now_ms);
	if (r == 0)
		r = journal(c, t->id, review ? "recovered" : "resolved",
			    check_state_name(t->state), "ok", ev->summary);
	if (r == 0 && ev->id && ev->ticket_id != t->id)
		r = store_event_link(c->d->st, ev->id, t->id);
	if (r == 0)
		r = announce(c, review ? TICKET_RECOVERED : TICKET_RESOLVED, t,
			     ev, NULL, NULL, NULL);
	if (r < 0)
		return r;
	if (review)
		c->stats->recovered++;
	else
		c->stats->resolved++;
	p->phase = PROBLEM_OK;
	return 0;
}

/* Flapping calmed down: the ticket is normal again, and goes if ok. */
static int flap_calm(struct ctx *c, struct problem *p, struct store_ticket *t,
		     const struct store_event *ev)
{
	char window[32], *text;
	int r;

	p->flapping = false;
	r = dedup_metrics_add(c->d->metrics, DEDUP_FLAP_CALMED, 1);
	if (r < 0 || t == NULL)
		return r;
	span_text(params(c)->flap_window_ms, window, sizeof(window));
	text = xasprintf("calmed down: fewer than %lld changes between ok and not ok within %s",
			 (long long)(params(c)->flap_threshold + 1) / 2, window);
	t->flapping = false;
	r = store_ticket_set_flapping(c->d->st, t->id, false);
	if (r == 0)
		r = journal(c, t->id, "flapping", "yes", "no", text);
	free(text);
	if (r == 0)
		r = announce(c, TICKET_UPDATED, t, ev, "flapping", "yes", "no");
	if (r == 0 && p->state == CHECK_OK &&
	    strcmp(t->status, "recovered") != 0)
		r = recover_ticket(c, p, t, ev);
	return r;
}

/* Flapping begins; t is the key's open ticket, or NULL when it has none. */
static int flap_start(struct ctx *c, struct problem *p, struct store_ticket *t,
		      const struct store_event *ev)
{
	int r;

	p->flapping = true;
	r = dedup_metrics_add(c->d->metrics, DEDUP_FLAP_STARTED, 1);
	if (r == 0 && t != NULL)
		r = flap_mark(c, t);
	if (r == 0 && t != NULL)
		r = announce(c, TICKET_UPDATED, t, ev, "flapping", "no", "yes");
	return r;
}

/*
 * The event's time on the problem's timeline, which orders its results
 * (a late report changes no state): the agent's observed time, capped at
 * ingest (dedup_cap_observed()).  Timers do not use it: see clock_ms().
 */
static int64_t timeline_ms(const struct store_event *ev)
{
	return ev->observed_ms;
}

/*
 * The time timers count from: when the collector received the result.
 * confirm_for, flap windows and their calm-down are due on the
 * collector's clock (dedup_tick()), so they are measured on it too: an
 * agent an hour behind, or an outbox replaying an hour-old stretch,
 * does not confirm a problem at once with confirm_for: 5m.
 */
static int64_t clock_ms(const struct store_event *ev)
{
	return ev->received_ms;
}

/*
 * An ok result: a pending or silenced problem simply goes away; an open
 * ticket is resolved or recovered, unless the key is flapping; late
 * results change nothing.  had: p was read from the store; found: t is
 * the key's open ticket.
 *
 * Only a real recovery (the problem was not ok before this result) moves
 * the ticket: once it is recovered or resolved, whatever a technician
 * does with it (start reviewing it, reopen it) stands against the
 * routine ok results that follow, until the problem comes back and goes
 * away again.  A key without a row (a ticket older than the lifecycle)
 * takes the ticket's state for the problem's.
 */
static int on_ok(struct ctx *c, const struct store_event *ev,
		 struct problem *p, bool had, struct store_ticket *t,
		 bool found)
{
	const struct lifecycle_params *prm;
	int64_t at = timeline_ms(ev), rx = clock_ms(ev);
	bool was_problem = had ? p->state != CHECK_OK
			       : found && t->state != CHECK_OK;
	bool was_flapping = p->flapping;
	int r = 0;

	/* Nothing pending, nothing open: the common case costs nothing. */
	if ((!was_problem && !found && !p->flapping) ||
	    (found && ev->observed_ms < t->last_seen_ms) ||
	    (had && at < p->last_ms))
		return 0;
	prm = params(c);
	if (was_problem) {
		flap_record(&p->changes, rx);
		p->state = CHECK_OK;
		p->last_ms = at;
		p->streak = 0;
		p->npending = 0;
		/* Unconfirmed or silenced, it simply went away: no ticket. */
		if (p->phase != PROBLEM_OPEN || !found)
			p->phase = PROBLEM_OK;
		p->silence_id = 0;
		p->due_ms = 0;
		/* Going away too often is flapping as much as coming back. */
		if (!p->flapping &&
		    flap_starts(&p->changes, rx, prm->flap_window_ms,
				prm->flap_threshold))
			r = flap_start(c, p, found ? t : NULL, ev);
	}
	if (r < 0)
		return r;
	if (p->flapping) {
		if (flap_calmed(&p->changes, rx, prm->flap_window_ms,
				prm->flap_threshold)) {
			r = flap_calm(c, p, found ? t : NULL, ev);
			p->due_ms = 0;
		} else {
			if (found && was_problem)
				r = add_occurrence(c, t, ev, true);
			p->due_ms = flap_calm_at(&p->changes, prm->flap_window_ms,
						 prm->flap_threshold);
		}
	} else if (found && was_problem && strcmp(t->status, "recovered") != 0) {
		r = recover_ticket(c, p, t, ev);
	} else if (found) {
		r = store_event_link(c->d->st, ev->id, t->id);
	}
	/* A routine ok on a recovered (or reopened) ticket changes no row. */
	if (r == 0 && (was_problem || (was_flapping && !p->flapping)))
		r = problem_save(c->d->problems, c->host_id, c->check, c->item, p);
	return r;
}

/*
 * A non-ok result: an occurrence of the open ticket (reopening it when it
 * was recovered), or one more result towards confirming the problem;
 * flapping starts or calms down on the way.
 */
static int on_problem(struct ctx *c, const struct store_event *ev,
		      struct problem *p, bool had, struct store_ticket *t,
		      bool found)
{
	const struct lifecycle_params *prm;
	int64_t at = timeline_ms(ev), rx = clock_ms(ev);
	int64_t went_away_ms = p->last_ms;
	bool was_ok = !had || p->state == CHECK_OK, starts, dirty = was_ok;
	int r = 0;

	/* Late reports count on the open ticket but change no state. */
	if ((found && ev->observed_ms < t->last_seen_ms) ||
	    (had && at < p->last_ms))
		return found ? add_occurrence(c, t, ev, false) : 0;
	prm = params(c);
	if (was_ok) {
		flap_record(&p->changes, rx);
		p->since_ms = rx;
		p->first_ms = at;
		p->streak = 0;
		p->npending = 0;
	}
	p->state = ev->state;
	p->last_ms = at;
	starts = was_ok && !p->flapping &&
		 flap_starts(&p->changes, rx, prm->flap_window_ms,
			     prm->flap_threshold);
	if (!found) {
		/*
		 * Its ticket was resolved or closed while the problem went on:
		 * nothing recovered, so nothing reopens; a new ticket.
		 */
		if (p->phase == PROBLEM_OPEN) {
			p->ticket_id = 0;
			p->prior_status[0] = '\0';
		}
		p->streak++;
		problem_add_pending(p, ev->id);
		problem_set_summary(p, ev->summary);
		r = starts ? flap_start(c, p, NULL, ev) : 0;
		return r < 0 ? r : confirm(c, p, ev, rx);
	}
	if (strcmp(t->status, "recovered") == 0) {
		p->streak = 1;
		r = reopen_ticket(c, p, t, ev, went_away_ms);
		dirty = true;
	} else {
		r = add_occurrence(c, t, ev, p->flapping);
	}
	if (r == 0 && starts) {
		r = flap_start(c, p, t, ev);
		dirty = true;
	} else if (r == 0 && p->flapping &&
		   flap_calmed(&p->changes, rx, prm->flap_window_ms,
			       prm->flap_threshold)) {
		r = flap_calm(c, p, t, ev);
		dirty = true;
	}
	if (p->flapping)
		p->due_ms = flap_calm_at(&p->changes, prm->flap_window_ms,
					 prm->flap_threshold);
	if (p->phase != PROBLEM_OPEN || p->ticket_id != t->id) {
		p->phase = PROBLEM_OPEN;
		p->ticket_id = t->id;
		p->silence_id = 0;
		dirty = true;
	}
	if (r == 0 && dirty)
		r = problem_save(c->d->problems, c->host_id, c->check, c->item, p);
	return r;
}

/* A problem going on, reported again on its open ticket t. */
static bool going_on(const struct store_event *ev, const struct store_ticket *t)
{
	return ev->state != CHECK_OK && t->state != CHECK_OK && !t->flapping &&
	       strcmp(t->status, "recovered") != 0;
}

/*
 * Before the batch is stored: the events that will be occurrences of
 * their key's open ticket are stored linked to it, which spares an
 * UPDATE each.  Only the first event of each key in the batch is
 * predicted (a later one may find its key changed by the first); a
 * wrong guess is put right by apply_event().  0 or -errno.
 */
static int predict_links(struct store *st, struct store_event *evs, size_t n)
{
	uint64_t seen_small[512], *seen = seen_small;
	size_t cap = 512;
	int r = 0;

	while (cap < 2 * n)
		cap *= 2;
	if (cap > ARRAY_SIZE(seen_small))
		seen = xcalloc(cap, sizeof(*seen));
	else
		memset(seen_small, 0, sizeof(seen_small));
	for (size_t i = 0; r >= 0 && i < n; i++) {
		uint64_t h = keymap_hash(evs[i].host_id, evs[i].check, evs[i].item);
		size_t j = h & (cap - 1);
		struct store_ticket t;

		evs[i].ticket_id = 0;
		while (seen[j] != 0 && seen[j] != h)
			j = (j + 1) & (cap - 1);
		if (seen[j] == h)
			continue; /* a later event of the key (or a collision) */
		seen[j] = h;
		r = store_ticket_find_open(st, evs[i].host_id, evs[i].check,
					   evs[i].item, &t);
		if (r > 0 && going_on(&evs[i], &t))
			evs[i].ticket_id = t.id;
	}
	if (seen != seen_small)
		free(seen);
	return r < 0 ? r : 0;
}

/*
 * Apply one event, already stored with the batch, to its key: 0 or
 * -errno (roll back).
 *
 * The key's open ticket comes from memory (store_ticket_find_open()), so
 * the two common cases cost nothing beyond the event's row: a problem
 * going on, reported again on its open ticket, was stored already linked
 * to it (predict_links()) and is counted as an occurrence without reading
 * its lifecycle row; an ok result for a key with nothing open and a quiet
 * row (or none) changes nothing at all.
 */
static int apply_event(struct ctx *c, struct store_event *ev)
{
	struct store_ticket t;
	struct problem p;
	int r, found, had;

	c->stats->accepted++;
	c->check = ev->check;
	c->item = ev->item;
	c->params = NULL;
	found = store_ticket_find_open(c->d->st, ev->host_id, ev->check,
				       ev->item, &t);
	if (found < 0)
		return found;
	if (found && going_on(ev, &t) && ev->ticket_id == t.id)
		return add_occurrence(c, &t, ev, false);
	if (ev->ticket_id != 0) {
		/* Predicted wrong (the batch changed the key): unlink first. */
		r = store_event_link(c->d->st, ev->id, 0);
		if (r < 0)
			return r;
		ev->ticket_id = 0;
	}
	if (found && going_on(ev, &t))
		return add_occurrence(c, &t, ev, false);
	if (!found && ev->state == CHECK_OK &&
	    problem_quiet(c->d->problems, ev->host_id, ev->check, ev->item))
		return 0;
	had = problem_load(c->d->problems, ev->host_id, ev->check, ev->item, &p);
	if (had < 0)
		return had;
	if (ev->state == CHECK_OK)
		r = on_ok(c, ev, &p, had, &t, found);
	else
		r = on_problem(c, ev, &p, had, &t, found);
	problem_clear(&p);
	return r;
}

/* ---- context ------------------------------------------------------------ */

static void dedup_free(void *arg)
{
	struct dedup *d = arg;

	if (d == NULL)
		return;
	topology_close(d->topology);
	silence_close(d->silences);
	problem_close(d->problems);
	dedup_metrics_close(d->metrics);
	lifecycle_config_free(d->own_lc);
	free(d);
}

/* Whether a person (not the system) resolved or closed the ticket. */
static bool resolved_by_hand(const struct ticket_change *c)
{
	return (c->kind == TICKET_RESOLVED || c->kind == TICKET_CLOSED) &&
	       c->actor != NULL && strcmp(c->actor, SYSTEM_ACTOR) != 0 &&
	       c->host != NULL && c->check != NULL && c->item != NULL;
}

/*
 * Every ticket change, whoever makes it: count it, mind the topology,
 * and when a technician resolves or closes a ticket, forget the status
 * it had before its recovery: if the problem comes back, it needs
 * someone's attention again (new), not the old status.
 */
static int on_ticket_change(void *arg, struct store *st,
			    const struct ticket_change *c)
{
	struct dedup *d = store_attached(st, DEDUP_MODULE);
	int r;

	(void)arg;
	if (d == NULL)
		return 0;
	r = dedup_metrics_count_change(d->metrics, c);
	if (r == 0)
		r = topology_on_change(d->topology, c);
	if (r == 0 && resolved_by_hand(c))
		r = problem_forget_prior_status(d->problems, c->host, c->check,
						c->item, c->ticket_id);
	return r;
}

/* A context over st with lc (NULL: the built-in defaults) and inv. */
static int dedup_create(struct store *st, const struct lifecycle_config *lc,
			const struct inventory *inv, struct dedup **ret)
{
	struct dedup *d = xcalloc(1, sizeof(*d));
	int r;

	d->st = st;
	if (lc == NULL)
		lc = d->own_lc = lifecycle_config_default();
	d->lc = lc;
	r = problem_open(st, &d->problems);
	if (r == 0)
		r = silence_open(st, &d->silences);
	if (r == 0)
		r = dedup_metrics_open(st, &d->metrics);
	if (r == 0)
		r = topology_open(st, lc, inv, d->metrics, &d->topology);
	if (r < 0) {
		dedup_free(d);
		return r;
	}
	*ret = d;
	return 0;
}

int dedup_configure(struct store *st, const struct lifecycle_config *lc,
		    const struct inventory *inv)
{
	bool first = store_attached(st, DEDUP_MODULE) == NULL;
	struct dedup *d;
	int r;

	r = dedup_create(st, lc, inv, &d);
	if (r < 0)
		return r;
	r = store_attach(st, DEDUP_MODULE, d, dedup_free);
	if (r == 0 && first)
		r = store_listen(st, on_ticket_change, NULL);
	return r;
}

struct dedup *dedup_get(struct store *st)
{
	struct dedup *d = store_attached(st, DEDUP_MODULE);

	if (d == NULL && dedup_configure(st, NULL, NULL) == 0)
		d = store_attached(st, DEDUP_MODULE);
	return d;
}

/* ---- entry points --------------------------------------------------------- */

int64_t dedup_cap_observed(const struct lifecycle_config *lc,
			   int64_t observed_ms, int64_t received_ms)
{
	int64_t max = received_ms + lc->max_clock_ahead_ms;

	return observed_ms > max ? max : observed_ms;
}

int dedup_apply(struct store *st, const struct ingest_batch *batch,
		int64_t now_ms, struct dedup_stats *ret_stats)
{
	return dedup_apply_events(st, batch->host, batch->events,
				  batch->nevents, now_ms, ret_stats);
}

/*
 * The problem keys the events would add to the host's: non-ok results of
 * keys without a row, each counted once.  Only when the batch could go
 * beyond the cap at all, so that a host well below it costs one look-up
 * per batch.  0, or -EDQUOT with the figures in *stats.
 */
static int check_key_cap(struct dedup *d, int64_t host_id,
			 const struct ingest_event *events, size_t nevents,
			 struct dedup_stats *stats)
{
	size_t max = d->lc->max_keys_per_host;
	size_t known = problem_host_keys(d->problems, host_id), added = 0;
	struct keymap *seen = NULL;

	if (max == 0 || known + nevents <= max) {
		problem_host_refusing(d->problems, host_id, false);
		return 0;
	}
	for (size_t i = 0; i < nevents; i++) {
		const struct ingest_event *ev = &events[i];
		bool fresh;

		if (ev->state == CHECK_OK ||
		    problem_may_exist(d->problems, host_id, ev->check, ev->item))
			continue;
		if (seen == NULL)
			seen = keymap_new(1);
		keymap_put(seen, host_id, ev->check, ev->item, &fresh);
		added += fresh;
	}
	keymap_free(seen);
	if (known + added <= max) {
		problem_host_refusing(d->problems, host_id, false);
		return 0;
	}
	*stats = (struct dedup_stats){
		.keys_known = known,
		.keys_new = added,
		.keys_max = max,
		.refusing_anew =
			!problem_host_refusing(d->problems, host_id, true),
	};
	return writer_refuse(-EDQUOT);
}

/* dedup_apply_events(), and dedup_apply_raised() when raised. */
static int apply_events(struct store *st, const char *host,
			const struct ingest_event *events, size_t nevents,
			int64_t now_ms, bool raised,
			struct dedup_stats *ret_stats)
{
	struct dedup_stats stats = { 0 };
	struct dedup *d = dedup_get(st);
	struct store_event *evs;
	int64_t host_id = 0;
	bool *stored;
	struct ctx c;
	int r;

	if (d == NULL)
		return -ENOMEM;
	r = store_host_touch(st, host, now_ms, &host_id);
	if (r == 0 && !raised)
		r = check_key_cap(d, host_id, events, nevents, ret_stats);
	if (r < 0)
		return r;
	c = (struct ctx){
		.d = d,
		.host = host,
		.inv = topology_host(d->topology, host),
		.host_id = host_id,
		.now_ms = now_ms,
		.stats = &stats,
		.raised = raised,
	};
	evs = xreallocarray(NULL, nevents ? nevents : 1, sizeof(*evs));
	stored = xreallocarray(NULL, nevents ? nevents : 1, sizeof(*stored));
	for (size_t i = 0; i < nevents; i++) {
		const struct ingest_event *in = &events[i];

		evs[i] = (struct store_event){
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
	}
	/* Every row at once, then the lifecycle event by event, in order. */
	if (r == 0)
		r = predict_links(st, evs, nevents);
	if (r == 0 && nevents > 0)
		r = store_events_insert(st, evs, nevents, stored);
	/* The rows keep the agent's times; the lifecycle and tickets not. */
	for (size_t i = 0; r >= 0 && i < nevents; i++)
		evs[i].observed_ms = dedup_cap_observed(d->lc, evs[i].observed_ms,
							now_ms);
	for (size_t i = 0; r >= 0 && i < nevents; i++) {
		if (stored[i])
			r = apply_event(&c, &evs[i]);
		else
			stats.duplicates++;
	}
	free(evs);
	free(stored);
	if (r < 0)
		return r;
	*ret_stats = stats;
	return 0;
}

int dedup_apply_events(struct store *st, const char *host,
		       const struct ingest_event *events, size_t nevents,
		       int64_t now_ms, struct dedup_stats *ret_stats)
{
	return apply_events(st, host, events, nevents, now_ms, false,
			    ret_stats);
}

int dedup_apply_raised(struct store *st, const char *host,
		       const struct ingest_event *events, size_t nevents,
		       int64_t now_ms, struct dedup_stats *ret_stats)
{
	return apply_events(st, host, events, nevents, now_ms, true,
			    ret_stats);
}

/* A timer is due for one problem: calm, confirm, or a silence ended. */
static int tick_problem(struct ctx *c, struct problem *p,
			struct store_ticket *t, bool found)
{
	const struct lifecycle_params *prm = params(c);
	const struct store_event ev = {
		.host_id = c->host_id,
		.check = c->check,
		.item = c->item,
		.state = p->state,
		.summary = p->summary ? p->summary
				      : (p->state == CHECK_OK ? "ok" : ""),
		.metrics = "{}",
		.observed_ms = p->last_ms,
		.received_ms = c->now_ms,
	};
	int r = 0;

	p->due_ms = 0;
	if (p->flapping) {
		if (flap_calmed(&p->changes, c->now_ms, prm->flap_window_ms,
				prm->flap_threshold))
			r = flap_calm(c, p, found ? t : NULL, &ev);
		else
			p->due_ms = flap_calm_at(&p->changes, prm->flap_window_ms,
						 prm->flap_threshold);
	}
	if (r == 0 && !found && p->state != CHECK_OK &&
	    (p->phase == PROBLEM_PENDING || p->phase == PROBLEM_SILENCED))
		return confirm(c, p, &ev, c->now_ms);
	if (r == 0)
		r = problem_save(c->d->problems, c->host_id, c->check, c->item, p);
	return r;
}

/* A due key and where it goes in the tick's order. */
struct due {
	struct problem_key key;
	int depth;     /* devices above the host in the topology */
	bool down;     /* one of the down checks */
	size_t index;  /* its place in due order */
};

/* How many devices the topology puts above host (a bounded walk). */
static int host_depth(const struct host *h)
{
	int depth = 0;

	for (const struct host *p = h ? h->parent : NULL; p && depth < 64;
	     p = p->parent)
		depth++;
	return depth;
}

static int due_cmp(const void *a, const void *b)
{
	const struct due *x = a, *y = b;

	if (x->depth != y->depth)
		return x->depth < y->depth ? -1 : 1;
	if (x->down != y->down)
		return x->down ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

/*
 * The due keys in the order a tick handles them: parents before the
 * hosts behind them, and a host's down checks before its other problems,
 * else in due order.  A silence on a router ends for the router and its
 * hosts at the same moment: the router's ticket must exist before its
 * hosts look for a down parent, or they open standalone tickets (and
 * stay so with attach_window: 0).
 */
static void order_due(const struct dedup *d, struct problem_key *keys, int n)
{
	struct due due[TICK_BATCH];

	for (int i = 0; i < n; i++)
		due[i] = (struct due){
			.key = keys[i],
			.depth = host_depth(topology_host(d->topology,
							      keys[i].host)),
			.down = lifecycle_is_down_check(d->lc, keys[i].host,
							keys[i].check,
							keys[i].item),
			.index = (size_t)i,
		};
	qsort(due, (size_t)n, sizeof(*due), due_cmp);
	for (int i = 0; i < n; i++)
		keys[i] = due[i].key;
}

int dedup_tick(struct store *st, int64_t now_ms)
{
	struct dedup *d = dedup_get(st);
	struct problem_key keys[TICK_BATCH];
	struct dedup_stats stats = { 0 };
	int n, r = 0;

	if (d == NULL)
		return -ENOMEM;
	n = problem_due(d->problems, now_ms, keys, TICK_BATCH);
	if (n < 0)
		return n;
	order_due(d, keys, n);
	for (int i = 0; r == 0 && i < n; i++) {
		struct ctx c = {
			.d = d,
			.host = keys[i].host,
			.inv = topology_host(d->topology, keys[i].host),
			.host_id = keys[i].host_id,
			.check = keys[i].check,
			.item = keys[i].item,
			.now_ms = now_ms,
			.stats = &stats,
		};
		struct store_ticket t;
		struct problem p;
		int found, had;

		found = store_ticket_find_open(st, c.host_id, c.check, c.item, &t);
		had = found < 0 ? found
				: problem_load(d->problems, c.host_id, c.check,
					       c.item, &p);
		if (found < 0 || had < 0)
			r = found < 0 ? found : had;
		else if (had)
			r = tick_problem(&c, &p, &t, found);
		if (had > 0)
			problem_clear(&p);
	}
	problem_keys_free(keys, (size_t)n);
	if (r == 0)
		r = silence_purge(d->silences,
				  now_ms - d->lc->silences.keep_expired_ms);
	return r < 0 ? r : n;
}

int dedup_silence_removed(struct store *st, int64_t silence_id,
			  int64_t now_ms)
{
	struct dedup *d = dedup_get(st);

	return d ? problem_silence_ended(d->problems, silence_id, now_ms)
		 : -ENOMEM;
}

int dedup_children_json(struct store *st, int64_t ticket_id, json_t **ret)
{
	struct dedup *d = store_attached(st, DEDUP_MODULE);

	if (d == NULL) {
		*ret = json_array();
		return 0;
	}
	return topology_children_json(d->topology, ticket_id, ret);
}

/* ---- timer thread ----------------------------------------------------------- */

struct dedup_timer {
	struct writer *writer;
	int64_t tick_ms;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	bool stopping;
	atomic_bool queued; /* a tick waits in the writer's queue */
	atomic_uint_fast64_t posted; /* ticks handed to the writer */
	int64_t warned_ms;  /* writer thread only: the last failure logged */
};

static int tick_job(struct store *st, void *arg)
{
	(void)arg;
	return dedup_tick(st, time_now_ms());
}

static void tick_done(void *arg, int result)
{
	struct dedup_timer *t = arg;

	/* The next tick tries again; say so once a minute at most. */
	if (result < 0 && time_mono_ms() - t->warned_ms >= 60000) {
		log_warnx("lifecycle timers failed: %s; retrying every tick",
			  strerror(-result));
		t->warned_ms = time_mono_ms();
	}
	atomic_store(&t->queued, false);
}

/*
 * The wait runs on CLOCK_MONOTONIC (cond_init_monotonic() in
 * dedup_timer_start()): a step of the wall clock, backwards by an hour
 * say, must not hold every lifecycle timer back that long.
 */
static void *timer_main(void *arg)
{
	struct dedup_timer *t = arg;
	struct timespec until;

	pthread_mutex_lock(&t->lock);
	while (!t->stopping) {
		until = time_mono_deadline(t->tick_ms);
		pthread_cond_timedwait(&t->wake, &t->lock, &until);
		if (t->stopping)
			break;
		if (atomic_exchange(&t->queued, true))
			continue;
		/* Refused (queue full, stopping): the next tick tries again. */
		if (writer_post(t->writer, tick_job, t, tick_done) < 0)
			atomic_store(&t->queued, false);
		else
			atomic_fetch_add(&t->posted, 1);
	}
	pthread_mutex_unlock(&t->lock);
	return NULL;
}

int dedup_timer_start(struct writer *w, int64_t tick_ms,
		      struct dedup_timer **ret)
{
	struct dedup_timer *t = xcalloc(1, sizeof(*t));
	int r;

	t->writer = w;
	t->tick_ms = tick_ms > 0 ? tick_ms : 1000;
	t->warned_ms = -60000;
	atomic_init(&t->queued, false);
	atomic_init(&t->posted, 0);
	pthread_mutex_init(&t->lock, NULL);
	cond_init_monotonic(&t->wake);
	r = pthread_create(&t->thread, NULL, timer_main, t);
	if (r != 0) {
		pthread_cond_destroy(&t->wake);
		pthread_mutex_destroy(&t->lock);
		free(t);
		return -r;
	}
	*ret = t;
	return 0;
}

void dedup_timer_stop(struct dedup_timer *t)
{
	if (t == NULL)
		return;
	pthread_mutex_lock(&t->lock);
	t->stopping = true;
	pthread_cond_signal(&t->wake);
	pthread_mutex_unlock(&t->lock);
	pthread_join(t->thread, NULL);
	/* A tick still queued calls tick_done(t): wait for it (the writer runs). */
	while (atomic_load(&t->queued)) {
		struct timespec ms = { .tv_nsec = 1000000L };

		nanosleep(&ms, NULL);
	}
	pthread_cond_destroy(&t->wake);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

uint64_t dedup_timer_posted(struct dedup_timer *t)
{
	return atomic_load(&t->posted);
}
