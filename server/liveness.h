/*
 * Silence detection: every host's last heartbeat, and one "host silent"
 * ticket for a host that stops sending them.
 *
 * Agents send an event (host, heartbeat, alive) in state ok every
 * interval, saying the interval in metrics.interval_s (see PROTOCOL.md).
 * Each heartbeat is recorded in the liveness table inside the same
 * transaction as its batch.  A timer thread looks every few seconds for
 * hosts whose last heartbeat is older than missed_heartbeats intervals
 * and raises a critical event on (host, heartbeat, alive) through the
 * writer and the normal deduplication, so the silence is one ticket like
 * any other problem.  The host's next heartbeat is an ok on the same key
 * and resolves it; its summary is extended with the length of the gap
 * ("back after 7 min of silence"), so the resolution's journal line says
 * how long the host was gone.
 *
 * Last heartbeats live in the database, so a restart forgets nothing;
 * and since a collector that was itself down saw nothing, every host's
 * clock starts no earlier than the collector's own start: nobody is
 * flagged before it had missed_heartbeats intervals to report.
 */
#ifndef TOCSIN_LIVENESS_H
#define TOCSIN_LIVENESS_H

#include <stdint.h>

#include "dedup.h"
#include "ingest.h"
#include "server.h"

struct cfg;
struct cfg_node;
struct store;
struct writer;
struct liveness;

extern const struct db_schema liveness_schema;

#define LIVENESS_CHECK "heartbeat"
#define LIVENESS_ITEM "alive"

void liveness_config_defaults(struct liveness_config *conf);
/* The liveness: section (node may be NULL); errors are recorded in cfg. */
void liveness_parse(struct cfg *cfg, const struct cfg_node *node,
		    struct liveness_config *conf);

/*
 * Prepare the statements over st (after its migrations) and start the
 * timer thread, which posts its jobs to w.  start_ms is when this
 * collector started (the grace described above).
 */
int liveness_start(struct store *st, struct writer *w,
		   const struct liveness_config *conf, int64_t start_ms,
		   struct liveness **ret);
/* Count hosts for /metrics on reader (store_open_reader()) from now on. */
int liveness_attach_reader(struct liveness *lv, struct store *reader);
/* The metrics source: rounds, hosts flagged, hosts alive and silent. */
struct metrics_out;
void liveness_metrics(void *arg, struct metrics_out *out);

/* Stop the timer (before the writer stops).  NULL is fine. */
void liveness_stop(struct liveness *lv);
/* New settings (SIGHUP); they apply from the timer's next round. */
void liveness_configure(struct liveness *lv, const struct liveness_config *conf);

/*
 * Apply an agent batch inside a writer job: record its heartbeats, end
 * the host's silence if it was silent, and apply the events through the
 * deduplication (dedup_apply()).  Same contract as dedup_apply().
 */
int liveness_ingest(struct liveness *lv, struct store *st,
		    const struct ingest_batch *batch, int64_t now_ms,
		    struct dedup_stats *ret_stats);

/*
 * Look for silent hosts once, now, and wait until what was found is
 * committed: the timer's round, for tests.  Returns how many hosts were
 * flagged, or -errno.
 */
int liveness_check_now(struct liveness *lv, int64_t now_ms);

#endif
