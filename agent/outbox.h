/*
 * The durable outbox: every event the agent produces is written here
 * (state_dir/agent.db, committed with synchronous=FULL) before any attempt
 * to send it, and deleted only after the collector acknowledged it (2xx,
 * which the collector sends only after its own commit).  An event's id is
 * made when it is queued and never changes, so a batch resent after a
 * crash or a lost answer is recognised by the collector and adds nothing.
 *
 * The outbox is bounded by event count, bytes and age.  When a bound is
 * reached it drops, oldest first and in this order:
 *
 *   1. repeated samples: events whose state equals the previous event of
 *      the same (check, item): the collector loses an occurrence count,
 *      never a state;
 *   2. superseded state changes: a state change of a key that has a newer
 *      event queued, so the collector still learns every key's latest
 *      state and only intermediate transitions are lost;
 *   3. only when every queued event is the latest of its key (more keys
 *      than max_events, or events larger than max_bytes allows): the
 *      oldest events, whatever they are.
 *
 * Age drops (older than max_age) follow steps 1 and 2 only: the latest
 * event of a key is kept whatever its age, since it is what the agent
 * knows of that key now.  Every drop is counted and persisted; once the
 * collector answers again the counts travel as an event of the agent's own
 * (check "agent", item "outbox", state warning) at the head of the next
 * batch, and when the outbox has drained after that, an ok event of the
 * same key closes the episode.
 *
 * Events refused by the collector for good (HTTP 400 or 413 for a batch of
 * one) are deleted and counted the same way, so that one bad event never
 * blocks the queue.
 *
 * Every function that changes the outbox runs one IMMEDIATE transaction,
 * so two agent processes on one state directory (the daemon and a manual
 * --once) stay consistent.
 */
#ifndef TOCSIN_OUTBOX_H
#define TOCSIN_OUTBOX_H

#include <jansson.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../checks/check.h"

struct outbox;

struct outbox_limits {
	uint64_t max_events;   /* queued events, at least 100 */
	uint64_t max_bytes;    /* bytes of queued event text */
	int64_t max_age_ms;    /* 0: no age limit */
	uint64_t batch_events; /* events in one batch */
	uint64_t batch_bytes;  /* bytes of event text in one batch */
};

#define OUTBOX_DEFAULT_MAX_EVENTS 100000
#define OUTBOX_DEFAULT_MAX_BYTES (64ULL * 1024 * 1024)
#define OUTBOX_DEFAULT_MAX_AGE_MS (7LL * 86400 * 1000)
#define OUTBOX_DEFAULT_BATCH_EVENTS 500
#define OUTBOX_DEFAULT_BATCH_BYTES (512ULL * 1024)

void outbox_limits_default(struct outbox_limits *lim);

/* What the outbox holds and has dropped since the last report. */
struct outbox_stats {
	uint64_t queued;
	uint64_t bytes;
	uint64_t dropped_repeats;
	uint64_t dropped_changes;
	uint64_t rejected;
	int64_t dropped_since_ms; /* first unreported drop; 0 when none */
	bool report_pending;	  /* a drop report waits to be sent */
};

/*
 * What one call dropped, for the caller's log line; and how many of the
 * events it queued changed their key's state (the others repeat it), for
 * the delivery's decision whether they must go at once.
 */
struct outbox_drops {
	uint64_t repeats;
	uint64_t changes;
	uint64_t queued_changes;
};

/*
 * Create or migrate the outbox tables in db (the agent's state database,
 * or an in-memory one when the state directory is unusable) and return an
 * outbox bound to it.  db stays owned by the caller and must outlive the
 * outbox.  0 or -errno (-EPROTO: written by a newer agent).
 */
int outbox_open(sqlite3 *db, const struct outbox_limits *lim,
		struct outbox **ret_ob);
void outbox_close(struct outbox *ob);
/* New limits after a reload; they apply from the next enqueue on. */
void outbox_set_limits(struct outbox *ob, const struct outbox_limits *lim);

/*
 * Queue every result (its check name filled in) as an event observed at
 * now_ms, in one transaction, then enforce the bounds.  Returns the number
 * queued, or -errno with nothing queued; *ret_drops (may be NULL) says
 * what had to go to make room.
 */
int outbox_enqueue(struct outbox *ob, const struct check_results *results,
		   int64_t now_ms, struct outbox_drops *ret_drops);

/*
 * The same for events already made (event_from_result(): their id and
 * observed_at stay as they are, so an event sent before, directly, is
 * recognised by the collector): a JSON array, borrowed.  before (may be
 * NULL) is what was dropped before they came here (held in memory while
 * the outbox could not be written): counted and reported as the
 * outbox's own drops.
 */
int outbox_enqueue_events(struct outbox *ob, const json_t *events,
			  const struct outbox_drops *before, int64_t now_ms,
			  struct outbox_drops *ret_drops);

/* A batch taken from the head of the outbox. */
struct outbox_batch {
	json_t *events;	   /* array of event objects, owned */
	size_t n;	   /* json_array_size(events) */
	size_t bytes;	   /* event text in the batch */
	int64_t first_seq; /* queued events first_seq..last_seq */
	int64_t last_seq;  /* 0 when the batch holds only the report */
	char *report_id;   /* set when the batch carries the drop report */
	size_t unreadable; /* rows in the range whose text no longer parses */
};

/*
 * The oldest events, at most max_events (further bounded by the batch
 * limits), with a pending drop report first.  0 with batch->n == 0 and
 * batch->last_seq == 0 when there is nothing to send (n == 0 with a range
 * means every row in it was unreadable: ack it to clear them).  The caller frees the batch with
 * outbox_batch_free() and reports its fate with outbox_ack() or
 * outbox_reject().
 */
int outbox_next_batch(struct outbox *ob, size_t max_events,
		      struct outbox_batch *ret_batch);
void outbox_batch_free(struct outbox_batch *batch);
/* The collector committed batch: delete it.  0 or -errno. */
int outbox_ack(struct outbox *ob, const struct outbox_batch *batch,
	       int64_t now_ms);
/* The collector will never take batch: delete and count it.  0 or -errno. */
int outbox_reject(struct outbox *ob, const struct outbox_batch *batch,
		  int64_t now_ms);

int outbox_stats(struct outbox *ob, struct outbox_stats *ret_stats);

#endif
