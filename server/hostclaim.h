/*
 * Who a host name belongs to, for enrollment: claims and approvals.
 *
 * An enrollment token of customer C may not take a host name another
 * customer holds, nor cut off an agent that is in use.  A host name is
 * claimed by the customer that first enrolled it (table host_claims); a
 * claim outlives revocations, so revoking a credential does not free the
 * name for anyone else.  The inventory's customer, where it names one,
 * overrides the claim.  What only an administrator may allow (moving a
 * host to another customer, re-enrolling a host whose agent reported or
 * used its credential recently) needs an approval: a one-time permission
 * for the next enrollment of that host, created with
 * `tocsin enrollment approve HOST [--customer C]` and used up by it.
 *
 * Everything here runs inside the enrollment's writer job, except the
 * lists (under the reader's lock).
 */
#ifndef TOCSIN_HOSTCLAIM_H
#define TOCSIN_HOSTCLAIM_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/db.h"
#include "credentials.h"

struct store;
struct hostclaim;

extern const struct db_schema hostclaim_schema;

/* Approvals last this long unless the administrator says otherwise. */
#define HOSTCLAIM_APPROVAL_DEFAULT_MS (3600 * 1000LL)
#define HOSTCLAIM_APPROVAL_MAX_MS (7 * 24 * 3600 * 1000LL)

int hostclaim_open(struct store *st, struct hostclaim **ret);
void hostclaim_close(struct hostclaim *hc);

/* The customer claiming host: 1 and the fields, 0 when unclaimed. */
int hostclaim_owner(struct hostclaim *hc, const char *host, char *customer,
		    size_t size, int64_t *ret_since_ms);
/* host claimed by customer from now on (replacing any earlier claim). */
int hostclaim_claim(struct hostclaim *hc, const char *host,
		    const char *customer, int64_t now_ms, const char *actor);
/* When host last reported, from the hosts table: 1 and *ret, or 0. */
int hostclaim_last_seen(struct hostclaim *hc, const char *host,
			int64_t *ret_ms);

/*
 * A usable approval for enrolling host for customer at now_ms: 1 and
 * *ret_id, or 0.  With for_customer, only one naming that customer
 * counts (moving a host); otherwise also one that names none.
 */
int hostclaim_find_approval(struct hostclaim *hc, const char *host,
			    const char *customer, bool for_customer,
			    int64_t now_ms, int64_t *ret_id);
/* The enrollment that issued credential_id used approval id. */
int hostclaim_use_approval(struct hostclaim *hc, int64_t id, int64_t now_ms,
			   int64_t credential_id);

/*
 * An administrator approves the next enrollment of host (for customer,
 * or NULL: its own), until expires_ms.  A writer job's part: 0 and
 * *ret_id, or -errno.
 */
int hostclaim_approve(struct hostclaim *hc, const char *host,
		      const char *customer, int64_t now_ms, int64_t expires_ms,
		      const char *actor, int64_t *ret_id);
/* Every approval, newest first, with its state (pending, used, expired). */
int hostclaim_approvals_json(struct hostclaim *hc, int64_t now_ms,
			     json_t **ret);

#endif
