/*
 * The helpdesk workflow's configuration: the helpdesk:, contracts: and
 * people: sections (and notify:, parsed by notify.c), with the lookups
 * the workflow modules share.
 *
 * Scales are ordered lists of names, most severe first: impact
 * (helpdesk.impacts), urgency (helpdesk.urgencies, from "the whole
 * system is down" to "small change request") and priority
 * (helpdesk.priorities); helpdesk.priority_matrix gives the priority for
 * each impact and urgency.  Support levels are 1 (first) to 3 (third).
 * Immutable once loaded, so any thread reads it without locks.
 */
#ifndef TOCSIN_HELPDESK_H
#define TOCSIN_HELPDESK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../checks/check.h"
#include "contract.h"
#include "nameindex.h"

struct cfg;
struct cfg_node;
struct inventory;
struct host;
struct notify_config;

#define HELPDESK_LEVELS 3
#define HELPDESK_SCALE_MAX CONTRACT_PRIORITIES_MAX

/* A technician: keyed by the name of their auth token. */
struct helpdesk_person {
	char *id;
	char *name;   /* display name (never used to sign system mail) */
	char *email;  /* NULL: gets no mail */
	int level;    /* 1..3 */
	char **queues; /* NULL-terminated, never NULL */
};

struct helpdesk_queue {
	char *id;
	char *email; /* the queue's own address, or NULL */
	char *lead;  /* a person id: told when tickets breach, or NULL */
};

/* A routing rule: every match key given must hold; the first rule wins. */
struct helpdesk_rule {
	char *check, *tag, *customer;
	int role;	/* enum host_role, or -1 for any */
	char *category, *queue; /* NULL: the default */
	int level;	/* 0: the default (1) */
	int impact, urgency; /* scale indexes, -1: the default */
};

struct helpdesk_hint {
	char *check;
	char *text;
};

struct helpdesk_config {
	char **categories, **impacts, **urgencies, **priorities;
	int nimpacts, nurgencies, npriorities;
	int matrix[HELPDESK_SCALE_MAX][HELPDESK_SCALE_MAX]; /* [impact][urgency] */
	int urgency_by_state[4];	/* indexed by enum check_state */
	int impact_central, impact_decentral;
	struct helpdesk_queue *queues;
	size_t nqueues;
	char *default_queue, *default_category;
	struct helpdesk_person *people;
	size_t npeople;
	struct helpdesk_rule *rules;
	size_t nrules;
	struct helpdesk_hint *hints;
	size_t nhints;
	struct contract *contracts;
	size_t ncontracts;
	/* By id, for helpdesk_person(), helpdesk_queue(), helpdesk_contract(). */
	struct nameindex people_index, queue_index, contract_index;
	const struct contract *default_contract;
	double warn_share;	/* of a target, when the first reminder goes */
	int64_t close_after_ms; /* resolved tickets close by themselves; 0: never */
	int64_t status_every_ms; /* customer status updates; 0: never */
	int64_t tick_ms;	/* how often the timer looks for due tickets */
	int history_max;	/* previous tickets shown for the same problem */
	struct notify_config *notify;
};

/*
 * Parse helpdesk:, contracts:, people: and notify: from root, and resolve
 * the customers' contracts in inv.  Always sets *ret; errors go to cfg.
 */
int helpdesk_config_parse(struct cfg *cfg, const struct cfg_node *root,
			  struct inventory *inv, struct helpdesk_config **ret);
void helpdesk_config_free(struct helpdesk_config *hc);

/* Index of name in a NULL-terminated list, or -1. */
int helpdesk_index(char *const *list, const char *name);
/* By id (people:, helpdesk.queues, contracts:), O(log n); NULL: none or id NULL. */
const struct helpdesk_person *helpdesk_person(const struct helpdesk_config *hc,
					      const char *id);
const struct helpdesk_queue *helpdesk_queue(const struct helpdesk_config *hc,
					    const char *id);
const struct contract *helpdesk_contract(const struct helpdesk_config *hc,
					 const char *id);
/* The contract for a host's customer (or the default); NULL when none. */
const struct contract *helpdesk_contract_for(const struct helpdesk_config *hc,
					     const struct host *h);
/*
 * What an open ticket's SLA clocks run on.  A ticket keeps the contract it
 * was opened with, by name (contract_id), and that contract's targets;
 * when a reload or a restart no longer configures that contract (the
 * customer moved from "gold" to "gold-2027"), its clocks must not stop, so
 * they run on the calendar of the contract a new ticket of its customer
 * (customer_id, "" or NULL for none) would get now (the customer's
 * contract, else helpdesk.default_contract), else on calendar_always().
 */
struct helpdesk_clock {
	const struct contract *contract; /* contract_id, or NULL when it is gone */
	const struct contract *instead;	 /* gone: whose calendar is used, NULL for 24x7 */
	const struct calendar *calendar; /* never NULL */
};

/* The clocks' calendar for a ticket of contract_id (not empty). */
void helpdesk_clock_for(const struct helpdesk_config *hc,
			const struct inventory *inv, const char *contract_id,
			const char *customer_id, struct helpdesk_clock *ret);
/* The knowledge hint for a check type, or NULL. */
const char *helpdesk_hint(const struct helpdesk_config *hc, const char *check);
int helpdesk_priority(const struct helpdesk_config *hc, int impact, int urgency);

#endif
