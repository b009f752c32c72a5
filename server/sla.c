#include "sla.h"

#include <string.h>

static const char *const status_names[STATUS_COUNT] = {
	[STATUS_NEW] = "new",
	[STATUS_ACKNOWLEDGED] = "acknowledged",
	[STATUS_IN_PROGRESS] = "in_progress",
	[STATUS_WAITING] = "waiting",
	[STATUS_RECOVERED] = "recovered",
	[STATUS_RESOLVED] = "resolved",
	[STATUS_CLOSED] = "closed",
};

const char *sla_status_name(enum ticket_status s)
{
	return (unsigned)s < STATUS_COUNT ? status_names[s] : "unknown";
}

int sla_status_parse(const char *name, enum ticket_status *ret)
{
	for (int i = 0; name && i < STATUS_COUNT; i++) {
		if (strcmp(status_names[i], name) == 0) {
			*ret = (enum ticket_status)i;
			return 0;
		}
	}
	return -1;
}

bool sla_status_open(enum ticket_status s)
{
	return s != STATUS_RESOLVED && s != STATUS_CLOSED;
}

int sla_status_after(const char *action, const char *new_value)
{
	enum ticket_status s;

	if (strcmp(action, "status") == 0)
		return sla_status_parse(new_value, &s) == 0 ? (int)s : -1;
	if (strcmp(action, "opened") == 0)
		return STATUS_NEW;
	if (strcmp(action, "recovered") == 0)
		return STATUS_RECOVERED;
	if (strcmp(action, "resolved") == 0)
		return STATUS_RESOLVED;
	if (strcmp(action, "closed") == 0)
		return STATUS_CLOSED;
	if (strcmp(action, "reopened") == 0)
		return sla_status_parse(new_value, &s) == 0 ? (int)s : STATUS_NEW;
	return -1;
}

/*
 * RUN counts, PAUSE does not; STOP ends the clock when it is the last
 * status (earlier, a reopen turned it into a pause); END ends it for good.
 */
enum phase { RUN, PAUSE, STOP, END };

typedef enum phase (*phase_fn)(enum ticket_status s);

/*
 * The response clock waits for a person: acknowledging, starting or
 * asking back is the response.  The problem going away by itself is
 * none: recovered pauses it, and a system resolution that a recurrence
 * reopens into new lets it run on.
 */
static enum phase response_phase(enum ticket_status s)
{
	switch (s) {
	case STATUS_NEW:
		return RUN;
	case STATUS_RECOVERED:
		return PAUSE;
	case STATUS_RESOLVED:
	case STATUS_CLOSED:
		return STOP;
	default:
		return END;
	}
}

static enum phase resolution_phase(enum ticket_status s)
{
	switch (s) {
	case STATUS_NEW:
	case STATUS_ACKNOWLEDGED:
	case STATUS_IN_PROGRESS:
		return RUN;
	case STATUS_RESOLVED:
	case STATUS_CLOSED:
		return STOP;
	default:
		return PAUSE;
	}
}

/*
 * One clock over the segments: the first END stops it for good; a STOP
 * only in the last segment (earlier ones count as pauses: a reopened
 * ticket).
 */
static void clock_run(const struct calendar *cal, int64_t opened_ms,
		      const struct sla_change *ch, size_t n, int64_t now_ms,
		      int64_t target, double share, phase_fn phase_of,
		      struct sla_clock *c)
{
	int64_t warn_target = (int64_t)((double)target * share);
	int64_t from = opened_ms;
	enum ticket_status status = STATUS_NEW;
	enum phase ph = RUN;

	*c = (struct sla_clock){ .target_ms = target, .due_ms = -1,
				 .warn_ms = -1, .done_ms = -1 };
	if (target < 0)
		return;
	for (size_t i = 0; i <= n; i++) {
		int64_t to = i < n ? ch[i].at_ms : now_ms;
		int64_t b;

		if (to < from)
			to = from;
		if (to > now_ms)
			to = now_ms;
		ph = phase_of(status);
		if (ph == END || (ph == STOP && i == n)) {
			c->done_ms = from;
			break;
		}
		b = calendar_business_ms(cal, from, to);
		if (ph == RUN) {
			if (c->due_ms < 0 && c->elapsed_ms + b >= target)
				c->due_ms = calendar_add_ms(cal, from, target - c->elapsed_ms);
			if (c->warn_ms < 0 && c->elapsed_ms + b >= warn_target)
				c->warn_ms = calendar_add_ms(cal, from,
							     warn_target - c->elapsed_ms);
			c->elapsed_ms += b;
		} else {
			c->paused_ms += b;
		}
		if (i < n) {
			status = ch[i].status;
			from = to;
		}
	}
	c->running = c->done_ms < 0 && ph == RUN;
	c->paused = c->done_ms < 0 && ph != RUN;
	if (c->running) {
		if (c->due_ms < 0)
			c->due_ms = calendar_add_ms(cal, now_ms, target - c->elapsed_ms);
		if (c->warn_ms < 0)
			c->warn_ms = calendar_add_ms(cal, now_ms, warn_target - c->elapsed_ms);
	}
	c->breached = c->elapsed_ms > target ||
		      (c->due_ms >= 0 && c->due_ms < (c->done_ms >= 0 ? c->done_ms : now_ms));
}

void sla_compute(const struct calendar *cal, int64_t opened_ms,
		 const struct sla_change *changes, size_t n, int64_t now_ms,
		 int64_t response_target_ms, int64_t resolution_target_ms,
		 double warn_share, struct sla_state *ret)
{
	clock_run(cal, opened_ms, changes, n, now_ms, response_target_ms,
		  warn_share, response_phase, &ret->response);
	clock_run(cal, opened_ms, changes, n, now_ms, resolution_target_ms,
		  warn_share, resolution_phase, &ret->resolution);
}
