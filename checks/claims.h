/*
 * Which check reports a systemd unit's failure, when two would: the
 * backup check claims the units of its targets' jobs, and the services
 * check leaves those to it, so that a failed backup job is one ticket
 * (on the backup target, with the job's journal lines), not one per
 * check.  The agent keeps one list per configuration (check_env.claims);
 * a check claims in configure() and drops its claims in free().
 */
#ifndef TOCSIN_CLAIMS_H
#define TOCSIN_CLAIMS_H

#include <stddef.h>

struct claims;

struct claims *claims_new(void);
void claims_free(struct claims *c);

/*
 * owner (the claiming check's context) claims unit, a .service or a
 * .timer (which claims the unit it triggers), described by label for
 * the summaries of the check that leaves it ("backup target postgres").
 * c may be NULL (nobody keeps claims): then nothing happens.
 */
void claims_add(struct claims *c, const void *owner, const char *unit,
		const char *label);
/* Drop every claim of owner. */
void claims_drop(struct claims *c, const void *owner);
/* The label of the claim on unit, or NULL. */
const char *claims_find(const struct claims *c, const char *unit);
/* The claimed units one by one (i from 0 while not NULL), for timers. */
const char *claims_unit(const struct claims *c, size_t i);

#endif
