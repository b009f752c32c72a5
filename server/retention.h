/*
 * Event retention: the events table would grow without bound (at 20,000
 * events/s, 1.7 billion rows a day), so raw events are deleted once they
 * are older than retention.events (30 days by default), in small chunks.
 *
 *  - An open ticket keeps its latest keep_per_ticket events (100, what a
 *    ticket's API shows) however old they are; once the ticket is
 *    resolved or closed they go with the rest.
 *  - An event's id is its idempotency key, stored with it: a resend of a
 *    deleted event would count again.  So events are kept at least
 *    retention.event_ids (7 days), which must cover the longest time an
 *    agent may resend an event: its outbox's maximum age (7 days by
 *    default).  retention.events shorter than retention.event_ids is a
 *    configuration error.
 *  - Pruning runs as writer jobs of at most retention.chunk rows (2,000,
 *    some milliseconds each) from a timer: one job waits in the queue at
 *    a time, the next follows at once while there is a backlog, and every
 *    prune_every otherwise; ingest never waits behind a long delete.
 *
 * Rows are visited in arrival order (seq) from a cursor, so each job
 * reads only its chunk; the rows it keeps (an open ticket's latest, or an
 * event not old enough yet because the clock went back) stay behind the
 * cursor, which goes back to the start once an hour to look at them again.
 * Times are the collector's receive times (received_at).
 *
 * Ticket retention: a closed ticket whose last change (its last event,
 * journal entry or resolution) is older than retention.tickets (400
 * days by default) is deleted with every row of it: its events, journal
 * (comments and the SLA clocks' history), notifications, the helpdesk's
 * row, its ids in other ticket systems; the problem key forgets it, so
 * the key's next problem opens a new ticket.  Only closed tickets: a
 * resolved one may still reopen (reopen_within) and is closed by the
 * helpdesk after close_after.  A ticket stays while it has a child,
 * a parent that is not closed, a ticket merged into it or a notification
 * still to send, and the newest ticket always stays (SQLite would give
 * its id to the next ticket).  The same jobs do it once the events have
 * no backlog, at most chunk rows each (a ticket's journal is never cut
 * in two: one ticket's may go beyond), walking closed tickets by id from
 * a cursor of their own; each pass ends at the first ticket opened after
 * the cutoff, and the next starts from the first closed ticket again.
 */
#ifndef TOCSIN_RETENTION_H
#define TOCSIN_RETENTION_H

#include <stdint.h>

#include "server.h"

struct cfg;
struct cfg_node;
struct metrics_out;
struct store;
struct writer;
struct retention;
struct db_schema;

/* The indexes ticket retention needs, after the helpdesk's schema. */
extern const struct db_schema ticket_retention_schema;

void retention_config_defaults(struct retention_config *conf);
/* The retention: section (node may be NULL); errors are recorded in cfg. */
void retention_parse(struct cfg *cfg, const struct cfg_node *node,
		     struct retention_config *conf);

/* Prepare the statements over st (after its migrations); no thread yet. */
int retention_open(struct store *st, const struct retention_config *conf,
		   struct retention **ret);
/* Start the timer that posts prune jobs to w. */
int retention_start(struct retention *rt, struct writer *w);
/* Stop the timer (before the writer stops) and free.  NULL is fine. */
void retention_close(struct retention *rt);
/* New settings (SIGHUP), from the next job on. */
void retention_configure(struct retention *rt,
			 const struct retention_config *conf);

/*
 * One prune job at now_ms, inside the writer's transaction: delete at
 * most chunk events that retention no longer keeps.  Returns how many
 * rows it looked at (chunk: there is more to do), or -errno.
 */
int retention_prune(struct retention *rt, int64_t now_ms);

/*
 * One ticket prune job at now_ms, inside the writer's transaction: delete
 * the closed tickets retention.tickets no longer keeps, at most about
 * chunk rows.  Returns how many tickets it deleted, chunk when there is
 * more to do at once, or -errno.
 */
int retention_prune_tickets(struct retention *rt, int64_t now_ms);

/* The metrics source: events and tickets deleted, jobs, the cursor's age. */
void retention_metrics(void *arg, struct metrics_out *out);

#endif
