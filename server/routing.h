/*
 * Automatic tickets: when a ticket opens, routing rules (helpdesk.routing)
 * map its check, its host's tags, role and customer to category, queue,
 * support level, impact and urgency, and the contract gives its SLA
 * targets.  The first rule whose match keys all hold wins; what it leaves
 * out comes from the defaults (urgency from the check state, impact from
 * the host's role: central hosts outrank decentral ones).
 *
 * The listener runs inside the transaction that opens the ticket, so the
 * ticket never exists without its fields.  On every later change it
 * recomputes the ticket's due dates and next_check for the timer.
 */
#ifndef TOCSIN_ROUTING_H
#define TOCSIN_ROUTING_H

#include <stdint.h>

struct store;
struct desk;
struct desk_row;
struct host;
enum check_state;

int routing_listen(struct store *st, struct desk *d);

/*
 * Fill row (ticket_id set by the caller) for a ticket of check on host h
 * (NULL: not in the inventory) in the given state, opened at opened_ms.
 */
void routing_route(struct desk *d, const struct host *h, const char *check,
		   enum check_state state, int64_t opened_ms,
		   struct desk_row *row);

#endif
