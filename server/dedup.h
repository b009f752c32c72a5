/*
 * Deduplication: events become at most one open ticket per problem key
 * (host, check, item).
 *
 * A non-ok event opens a ticket for its key or adds an occurrence to the
 * open one; an ok event resolves the open ticket with a journal line; an
 * event whose id is already stored changes nothing, so a resend is
 * harmless.  A whole batch is applied in one transaction.
 */
#ifndef TOCSIN_DEDUP_H
#define TOCSIN_DEDUP_H

#include <stddef.h>
#include <stdint.h>

#include "ingest.h"
#include "store.h"

struct dedup_stats {
	size_t accepted;   /* new events stored */
	size_t duplicates; /* ids seen before, ignored */
	size_t opened;
	size_t updated;
	size_t resolved;
};

/*
 * Apply a validated batch at time now_ms.  The caller holds the store
 * lock.  0 after the commit; a negative errno after a rollback, in which
 * case nothing of the batch is stored.
 */
int dedup_apply(struct store *st, const struct ingest_batch *batch,
		int64_t now_ms, struct dedup_stats *ret_stats);
/* The same for events from any source (traps, silence detection, ...). */
int dedup_apply_events(struct store *st, const char *host,
		       const struct ingest_event *events, size_t nevents,
		       int64_t now_ms, struct dedup_stats *ret_stats);

#endif
