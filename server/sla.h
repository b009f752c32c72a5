/*
 * SLA clocks, computed from a ticket's journal so that they cannot drift:
 * nothing is accumulated in counters that a missed update could skew
 * (GLPI's clock drifts across pauses); every read recomputes from the
 * status changes and the contract's calendar.
 *
 * The response clock runs from the opening while the ticket is new and
 * stops for good when a person responds (acknowledged, in progress,
 * waiting); recovered pauses it (the problem went away by itself, which
 * is no response), resolved and closed stop it unless a reopen into new
 * lets it run on, the time between counting as a pause.  The resolution clock
 * runs in new, acknowledged and in_progress, pauses in waiting (for the
 * customer or a third party) and recovered (the problem went away and
 * awaits review), and stops in resolved or closed; a reopen resumes it,
 * the time spent resolved counting as a pause.  Both count business time
 * only.
 */
#ifndef TOCSIN_SLA_H
#define TOCSIN_SLA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "calendar.h"

enum ticket_status {
	STATUS_NEW,
	STATUS_ACKNOWLEDGED,
	STATUS_IN_PROGRESS,
	STATUS_WAITING,
	STATUS_RECOVERED,
	STATUS_RESOLVED,
	STATUS_CLOSED,
	STATUS_COUNT,
};

const char *sla_status_name(enum ticket_status s);
int sla_status_parse(const char *name, enum ticket_status *ret);
/* Open: not resolved and not closed. */
bool sla_status_open(enum ticket_status s);

/*
 * The status a journal row leaves the ticket in, or -1 when the row does
 * not change the status.  Rows: action "status" (new_value is the
 * status), and the lifecycle's "opened", "recovered", "resolved",
 * "reopened" (new_value, when a status, else new) and "closed".
 */
int sla_status_after(const char *action, const char *new_value);

struct sla_change {
	int64_t at_ms;
	enum ticket_status status;
};

struct sla_clock {
	int64_t target_ms;  /* business ms; -1: no target, nothing else is set */
	int64_t elapsed_ms; /* business time counted so far */
	int64_t paused_ms;  /* business time spent paused */
	int64_t due_ms;	    /* when elapsed reaches the target; -1 while paused */
	int64_t warn_ms;    /* when it reaches warn_share of it; -1 likewise */
	int64_t done_ms;    /* when the clock stopped for good; -1 running */
	bool running, paused, breached;
};

struct sla_state {
	struct sla_clock response, resolution;
};

/*
 * Compute both clocks at now_ms for a ticket opened at opened_ms whose
 * status changes are changes[0..n) in time order (the opening itself may
 * be among them).  Targets are business ms, or -1 for none.
 */
void sla_compute(const struct calendar *cal, int64_t opened_ms,
		 const struct sla_change *changes, size_t n, int64_t now_ms,
		 int64_t response_target_ms, int64_t resolution_target_ms,
		 double warn_share, struct sla_state *ret);

#endif
