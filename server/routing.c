#include "routing.h"

#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "desk.h"
#include "inventory.h"
#include "store.h"

static bool rule_matches(const struct helpdesk_rule *r, const struct host *h,
			 const char *check)
{
	enum host_role role = h ? h->role : HOST_ROLE_DECENTRAL;

	if (r->check && (check == NULL || strcmp(r->check, check) != 0))
		return false;
	if (r->tag && (h == NULL || !host_has_tag(h, r->tag)))
		return false;
	if (r->role >= 0 && (int)role != r->role)
		return false;
	if (r->customer && (h == NULL || h->customer == NULL ||
			    strcmp(r->customer, h->customer->id) != 0))
		return false;
	return true;
}

void routing_route(struct desk *d, const struct host *h, const char *check,
		   enum check_state state, int64_t opened_ms,
		   struct desk_row *row)
{
	const struct helpdesk_config *hc = d->hc;
	const struct helpdesk_rule *rule = NULL;
	const struct contract *contract = helpdesk_contract_for(hc, h);
	int impact, urgency;

	for (size_t i = 0; i < hc->nrules && rule == NULL; i++)
		if (rule_matches(&hc->rules[i], h, check))
			rule = &hc->rules[i];
	if (h && h->customer)
		strlcpy_safe(row->customer, h->customer->id, DESK_NAME_MAX);
	if (contract)
		strlcpy_safe(row->contract, contract->id, DESK_NAME_MAX);
	strlcpy_safe(row->category,
		     rule && rule->category ? rule->category : hc->default_category,
		     DESK_NAME_MAX);
	strlcpy_safe(row->queue, rule && rule->queue ? rule->queue : hc->default_queue,
		     DESK_NAME_MAX);
	row->level = rule && rule->level ? rule->level : 1;
	impact = rule && rule->impact >= 0 ? rule->impact
	       : h && h->role == HOST_ROLE_CENTRAL ? hc->impact_central
						   : hc->impact_decentral;
	urgency = rule && rule->urgency >= 0 ? rule->urgency
					     : hc->urgency_by_state[state & 3];
	strlcpy_safe(row->impact, hc->impacts[impact], DESK_NAME_MAX);
	strlcpy_safe(row->urgency, hc->urgencies[urgency], DESK_NAME_MAX);
	strlcpy_safe(row->priority,
		     hc->priorities[helpdesk_priority(hc, impact, urgency)],
		     DESK_NAME_MAX);
	row->response_due = row->resolution_due = -1;
	row->next_check = -1;
	row->next_status_at = -1;
	if (h && h->customer && h->customer->notify_updates &&
	    hc->status_every_ms > 0 && h->customer->contacts[0])
		row->next_status_at = opened_ms + hc->status_every_ms;
	desk_targets(d, row, opened_ms);
}

/*
 * A new ticket: its fields, in the transaction that opens it, planned
 * before the row is written so that it is written once.  A row that is
 * there already stays as it is (desk_row_insert()).
 */
static int open_row(struct desk *d, const struct ticket_change *c,
		    const struct desk_core *core)
{
	const struct host *h = inventory_host(d->inv, core->host);
	struct desk_row row = { .ticket_id = core->id };
	int r;

	routing_route(d, h, core->check, c->state, core->opened_ms, &row);
	r = desk_plan(d, core, &row, c->at_ms);
	if (r < 0)
		return r;
	return desk_row_insert(d, &row, helpdesk_hint(d->hc, core->check),
			       core->summary);
}

/*
 * The check state of an open ticket changed (a disk from warning to
 * critical): when routing gives the new state a more urgent urgency than
 * the ticket has, and nobody set the urgency by hand, the ticket takes
 * it, with the priority from the matrix (unless set by hand) and new
 * targets; each change is journaled by the system.  Never lowers: a
 * problem that eases keeps the urgency it had.  1 when it raised it (the
 * caller refreshes), 0 when not, or -errno.
 */
static int raise_urgency(struct desk *d, const struct ticket_change *c,
			 const struct desk_core *core, struct desk_row *row)
{
	const struct helpdesk_config *hc = d->hc;
	struct desk_row routed = { .ticket_id = core->id };
	char old[DESK_NAME_MAX], oldprio[DESK_NAME_MAX], *text;
	struct sla_state sla;
	int now_u, new_u, r;

	if (row->urgency_manual || c->state == CHECK_OK)
		return 0;
	routing_route(d, inventory_host(d->inv, core->host), core->check, c->state,
		      core->opened_ms, &routed);
	now_u = helpdesk_index(hc->urgencies, row->urgency);
	new_u = helpdesk_index(hc->urgencies, routed.urgency);
	if (new_u < 0 || (now_u >= 0 && new_u >= now_u))
		return 0;
	strlcpy_safe(old, row->urgency, sizeof(old));
	strlcpy_safe(oldprio, row->priority, sizeof(oldprio));
	strlcpy_safe(row->urgency, routed.urgency, DESK_NAME_MAX);
	if (!row->priority_manual)
		strlcpy_safe(row->priority,
			     hc->priorities[helpdesk_priority(
				     hc, helpdesk_index(hc->impacts, row->impact), new_u)],
			     DESK_NAME_MAX);
	desk_targets(d, row, core->opened_ms);
	r = desk_sla(d, core, row, c->at_ms, &sla);
	if (r < 0)
		return r;
	desk_reset_flags(d, row, &sla);
	text = xasprintf("the check is %s now: %s", check_state_name(c->state),
			 c->summary ? c->summary : core->summary);
	r = store_journal_add(d->st, core->id, c->at_ms, DESK_SYSTEM_ACTOR, "urgency",
			      old, row->urgency, text);
	if (r == 0 && strcmp(oldprio, row->priority) != 0)
		r = store_journal_add(d->st, core->id, c->at_ms, DESK_SYSTEM_ACTOR,
				      "priority", oldprio, row->priority, text);
	free(text);
	return r < 0 ? r : 1;
}

/*
 * row as read, planned again at now_ms: written only when its due caches
 * or next_check moved.  A technician's action has written the row itself
 * (action.c) and usually moves none; a resolution moves next_check to the
 * automatic close.
 */
static int replan(struct desk *d, const struct desk_core *core, struct desk_row *row,
		  int64_t now_ms)
{
	int64_t response_due = row->response_due, resolution_due = row->resolution_due;
	int64_t next_check = row->next_check;
	int r = desk_plan(d, core, row, now_ms);

	if (r < 0)
		return r;
	if (row->response_due == response_due && row->resolution_due == resolution_due &&
	    row->next_check == next_check)
		return 0;
	return desk_row_update(d, row);
}

/*
 * The listener: a new ticket gets its fields; a worse check state may
 * raise its urgency; any other change replans the due caches and
 * next_check (replan()).  Runs in the change's transaction.
 *
 * An update of the check state, of flapping or of the parent moves no
 * SLA clock (they follow the status alone): unless the urgency rose, the
 * due caches stay as they are, which spares recomputing the clocks from
 * the ticket's journal for the commonest change there is.
 */
static int on_change(void *arg, struct store *st, const struct ticket_change *c)
{
	struct desk *d = arg;
	struct desk_core core = { 0 };
	struct desk_row row;
	int r;

	(void)st;
	/* A change of a ticket that is not there is not ours to fail. */
	r = desk_core_get(d, c->ticket_id, &core);
	if (r <= 0)
		goto out;
	/* An opening whose row is there already (a detached child) keeps it. */
	if (c->kind == TICKET_OPENED) {
		r = open_row(d, c, &core);
		goto out;
	}
	r = desk_row_get(d, c->ticket_id, &row);
	if (r < 0)
		goto out;
	/* Tickets from before the helpdesk existed get their row lazily. */
	if (r == 0) {
		r = open_row(d, c, &core);
		goto out;
	}
	/* A change of the check state: dedup announces it without a field. */
	r = c->kind == TICKET_UPDATED && c->field == NULL && sla_status_open(core.status)
		    ? raise_urgency(d, c, &core, &row)
		    : 0;
	if (r > 0)
		r = desk_refresh(d, &core, &row, c->at_ms);
	else if (r == 0 && c->kind != TICKET_UPDATED)
		r = replan(d, &core, &row, c->at_ms);
out:
	desk_core_clear(&core);
	return r;
}

int routing_listen(struct store *st, struct desk *d)
{
	return store_listen(st, on_change, d);
}
