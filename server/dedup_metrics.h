/*
 * Ticket metrics of the alert lifecycle for /metrics: counters of ticket
 * changes (opened, reopened, recovered, resolved, closed, by whoever made
 * them), children attached and detached, events held back by silences,
 * flapping started and calmed; and gauges read from the store: open
 * tickets by status, flapping tickets, active and pending silences,
 * unconfirmed problems and problems behind a silence.
 *
 * The counters live in the database and are bumped inside the
 * transaction that makes the change, so they count exactly what was
 * committed (a rolled-back job takes its counts with it) and survive a
 * restart.
 */
#ifndef TOCSIN_DEDUP_METRICS_H
#define TOCSIN_DEDUP_METRICS_H

#include <stdint.h>

#include "../common/db.h"

struct store;
struct ticket_change;
struct metrics_out;
struct dedup_metrics;

enum dedup_counter {
	DEDUP_OPENED,
	DEDUP_REOPENED,
	DEDUP_RECOVERED,
	DEDUP_RESOLVED,
	DEDUP_CLOSED,
	DEDUP_ATTACHED,
	DEDUP_DETACHED,
	DEDUP_SUPPRESSED,
	DEDUP_FLAP_STARTED,
	DEDUP_FLAP_CALMED,
	DEDUP_COUNTER_COUNT,
};

extern const struct db_schema dedup_metrics_schema;

int dedup_metrics_open(struct store *st, struct dedup_metrics **ret);
void dedup_metrics_close(struct dedup_metrics *m);

/* Add n to a counter, in the caller's transaction. */
int dedup_metrics_add(struct dedup_metrics *m, enum dedup_counter c,
		      int64_t n);
/* Count a ticket change by its kind (from the dedup listener). */
int dedup_metrics_count_change(struct dedup_metrics *m,
			       const struct ticket_change *c);
/* A counter's committed value (for tests). */
int dedup_metrics_get(struct dedup_metrics *m, enum dedup_counter c,
		      int64_t *ret);

/*
 * The metrics source (metrics_add_source() with the store as arg): takes
 * store_lock() and writes every counter and gauge.
 */
void dedup_metrics_source(void *store, struct metrics_out *out);

#endif
