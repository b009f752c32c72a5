/*
 * Deduplication: events become at most one open ticket per problem key
 * (host, check, item).
 *
 * A non-ok event opens a ticket for its key or adds an occurrence to the
 * open one; an ok event resolves the open ticket with a journal line; an
 * event whose id is already stored changes nothing, so a resend is
 * harmless.  Every ticket change is announced to the store's listeners.
 *
 * These run inside a transaction the caller holds, as a writer job (see
 * writer.h): a batch is applied whole or, when the job fails and its
 * savepoint is rolled back, not at all.
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
 * Apply a validated batch received at now_ms.  0 and *ret_stats, or a
 * negative errno, after which the caller must roll back.
 */
int dedup_apply(struct store *st, const struct ingest_batch *batch,
		int64_t now_ms, struct dedup_stats *ret_stats);
/* The same for events from any source (traps, silence detection, ...). */
int dedup_apply_events(struct store *st, const char *host,
		       const struct ingest_event *events, size_t nevents,
		       int64_t now_ms, struct dedup_stats *ret_stats);

#endif
