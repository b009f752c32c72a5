/*
 * Deduplication and the alert lifecycle: events become at most one open
 * ticket per problem key (host, check, item).
 *
 * For each key (see problem.h) a non-ok result is first *pending* until
 * the problem is confirmed (confirm_after results in a row, or lasting
 * confirm_for); then, unless a silence holds it back (silence.h), it
 * opens a ticket -- or reopens the key's last ticket when it was resolved
 * less than reopen_within ago -- which becomes a child of a down
 * parent's ticket where the topology says so (topology.h).  Further
 * non-ok results are occurrences of the open ticket; an ok result
 * resolves it or marks it recovered for review (on_recovery).  Too many
 * changes between ok and not ok within flap_window mark the ticket
 * flapping: it then stays open, with journal lines when flapping starts
 * and when it calms down, and no new tickets.  The parameters come from
 * the first lifecycle rule that fits (lifecycle.h).  An event whose id is
 * already stored changes nothing, so a resend is harmless, and every
 * ticket change is announced to the store's listeners.
 *
 * Time: a problem's results are ordered by the time each was observed
 * (a late report changes no state), capped at the time it was received
 * plus lifecycle.max_clock_ahead (default 0): one event from a clock
 * a year ahead would otherwise make every correctly dated result after
 * it late, and its ticket unresolvable.  The capped time is what the
 * ticket's last_seen and the lifecycle use; the stored event keeps the
 * agent's own observed_at for the record.  Timers (confirm_for, flap
 * windows and calming down, the end of a silence) are measured and run
 * on the collector's clock alone: from when results were received, in
 * dedup_tick().
 *
 * Keys: a host's agent may create at most ingest.max_keys_per_host
 * problem keys (lifecycle.h), since their rows are never deleted: one
 * agent inventing item names would otherwise make rows, tickets and
 * memory grow without end.  A batch that would go beyond is refused whole
 * (-EDQUOT, the figures in the stats), events of known keys with it, so
 * that a batch stays all or nothing: the agent splits a refused batch
 * (HTTP 400) and drops only the single events still refused, so the
 * known keys get through and only the new keys past the cap are lost.
 * The collector's own events (dedup_apply_raised()) are not capped.
 *
 * These run inside a transaction the caller holds, as a writer job (see
 * writer.h): a batch is applied whole or, when the job fails and its
 * savepoint is rolled back, not at all.
 */
#ifndef TOCSIN_DEDUP_H
#define TOCSIN_DEDUP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "ingest.h"
#include "store.h"

struct inventory;
struct lifecycle_config;
struct writer;

struct dedup_stats {
	size_t accepted;   /* new events stored */
	size_t duplicates; /* ids seen before, ignored */
	size_t opened;
	size_t updated;
	size_t resolved;
	size_t reopened;
	size_t recovered;  /* marked recovered, awaiting review */
	size_t pending;	   /* non-ok results not confirmed yet */
	size_t suppressed; /* confirmed, but a silence holds them back */
	/* A batch refused with -EDQUOT (the key cap), and why: */
	size_t keys_known;  /* the host's problem keys */
	size_t keys_new;    /* ... the batch would add */
	size_t keys_max;    /* ingest.max_keys_per_host */
	bool refusing_anew; /* the first refusal since its last batch taken */
};

/* The name dedup's context is attached to the store under. */
#define DEDUP_MODULE "dedup"

/* dedup's context; other modules of the collector read these parts. */
struct dedup {
	struct store *st;
	const struct lifecycle_config *lc;
	struct lifecycle_config *own_lc; /* the defaults, when nobody configured */
	struct problems *problems;
	struct silences *silences;
	struct topology *topology;
	struct dedup_metrics *metrics;
};

/*
 * Give st's deduplication its rules and inventory (both borrowed: they
 * must outlive the store, or be replaced by another call first), and
 * register its ticket-change listener.  Call before the writer starts, or
 * as a writer job to reconfigure.  A store never configured runs on the
 * built-in defaults without an inventory.
 */
int dedup_configure(struct store *st, const struct lifecycle_config *lc,
		    const struct inventory *inv);
/* st's dedup context, created with the defaults when needed; NULL on error. */
struct dedup *dedup_get(struct store *st);

/*
 * Apply a validated batch received at now_ms.  0 and *ret_stats, or a
 * negative errno, after which the caller must roll back.
 */
int dedup_apply(struct store *st, const struct ingest_batch *batch,
		int64_t now_ms, struct dedup_stats *ret_stats);
/*
 * observed_ms as the lifecycle takes it for an event received at
 * received_ms: no later than lc's max_clock_ahead after it (dedup.h).
 */
int64_t dedup_cap_observed(const struct lifecycle_config *lc,
			   int64_t observed_ms, int64_t received_ms);
/* The same for events from any source (traps, silence detection, ...). */
int dedup_apply_events(struct store *st, const char *host,
		       const struct ingest_event *events, size_t nevents,
		       int64_t now_ms, struct dedup_stats *ret_stats);

/*
 * The same for problem events the collector raises itself, once per
 * problem (silence detection's "host silent"): nothing repeats them, so
 * a rule's confirm_after does not hold them back (only its confirm_for,
 * which the timer counts, does).
 */
int dedup_apply_raised(struct store *st, const char *host,
		       const struct ingest_event *events, size_t nevents,
		       int64_t now_ms, struct dedup_stats *ret_stats);

/*
 * The timers at now_ms: problems whose confirm_for has passed, whose
 * silence has ended, or whose flapping has calmed down; and the purge of
 * long-expired silences.  A writer job; returns how many problems it
 * looked at, or -errno.
 */
int dedup_tick(struct store *st, int64_t now_ms);

/*
 * A silence was removed at now_ms: the problems it held back are looked
 * at by the next tick.  Part of the removing writer job.
 */
int dedup_silence_removed(struct store *st, int64_t silence_id,
			  int64_t now_ms);

/* The children of a ticket for the API, under store_lock(). */
int dedup_children_json(struct store *st, int64_t ticket_id, json_t **ret);

/*
 * A thread that posts dedup_tick() to the writer every tick_ms (skipping
 * a tick while the previous one still waits in the queue).
 */
struct dedup_timer;
int dedup_timer_start(struct writer *w, int64_t tick_ms,
		      struct dedup_timer **ret);
void dedup_timer_stop(struct dedup_timer *t);
/* How many ticks the timer has handed to the writer so far. */
uint64_t dedup_timer_posted(struct dedup_timer *t);

#endif
