/*
 * Escalation and the other things that happen with time: a thread that
 * wakes every helpdesk.tick, finds the tickets whose next_check has come
 * with an indexed query (never a scan of all tickets), and runs one writer
 * job for them that
 *   - at helpdesk.warn_at of a target announces an "sla_warning" (the
 *     assignee or the queue is reminded),
 *   - at the breach marks the ticket overdue and announces "overdue" (the
 *     next level and the lead are told),
 *   - sends the customer's periodic status update ("status_update"),
 *   - closes resolved tickets after helpdesk.close_after,
 * each with a journal entry by the system itself ("tocsin").  A ticket
 * that fails is undone alone and tried again later with backoff; when
 * nothing is due, no job is run at all.
 */
#ifndef TOCSIN_ESCALATE_H
#define TOCSIN_ESCALATE_H

#include <stddef.h>
#include <stdint.h>

struct desk;
struct escalate;
struct store;

#define ESCALATE_BATCH_MAX 256
/* The longest a failing ticket waits before the timer tries it again. */
#define ESCALATE_BACKOFF_MAX_MS (3600 * 1000LL)

int escalate_start(struct desk *d, struct escalate **ret);
void escalate_stop(struct escalate *e);

/*
 * Writer job (arg: struct escalate_due): every ticket due at now_ms, each
 * under its own savepoint; failed counts those that failed and were
 * pushed out with backoff.  Returns how many it looked at.
 */
struct escalate_due {
	struct desk *d;
	int64_t now_ms;
	size_t failed;
};
int escalate_run_due(struct store *st, void *arg);

#endif
