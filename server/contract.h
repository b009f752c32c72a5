/*
 * Service contracts (the contracts: section): a business calendar and,
 * per priority, the targets for the first response and the resolution.
 * A customer names its contract (customers.<id>.contract); hosts of
 * customers without one use helpdesk.default_contract, if any.
 *
 * A target is either business time ("4h": four hours inside opening
 * hours) or business days ("1bd": by the same time on the next business
 * day, see calendar_add_days()).  Contracts are immutable once parsed.
 */
#ifndef TOCSIN_CONTRACT_H
#define TOCSIN_CONTRACT_H

#include <stddef.h>
#include <stdint.h>

#include "calendar.h"

struct cfg;
struct cfg_node;

#define CONTRACT_PRIORITIES_MAX 8

struct contract_target {
	int64_t ms;   /* business time, > 0; or 0 when days is used */
	int days;     /* business days, > 0; or 0 */
};

struct contract {
	char *id;
	char *name;
	struct calendar *calendar;
	/* Indexed like helpdesk priorities; unset targets have ms = days = 0. */
	struct contract_target response[CONTRACT_PRIORITIES_MAX];
	struct contract_target resolution[CONTRACT_PRIORITIES_MAX];
};

/*
 * Parse the contracts: mapping under root.  priorities names the
 * priority levels targets may be given for (NULL-terminated).  Errors go
 * to cfg; contracts with errors are left out.
 */
void contract_parse_all(struct cfg *cfg, const struct cfg_node *root,
			char *const *priorities, struct contract **ret,
			size_t *ret_n);
void contract_free_all(struct contract *contracts, size_t n);

/*
 * A target in business milliseconds for a ticket opened at opened_ms:
 * business-days targets are measured on the contract's calendar from
 * then.  -1 when the target is not set.
 */
int64_t contract_target_ms(const struct contract *c,
			   const struct contract_target *t, int64_t opened_ms);

#endif
