/*
 * Enrollment: an agent trades its customer's enrollment token for a
 * credential of its own host (POST /api/v1/enroll), within the rules of
 * hostclaim.h: a host name belongs to the customer that enrolled it
 * first, or to the inventory's; moving it to another customer, or
 * enrolling again a host whose agent is in use, needs an administrator's
 * approval.  Both are writer jobs that also write the audit trail, with
 * the codes and messages of credentials.h.
 */
#ifndef TOCSIN_ENROLLMENT_H
#define TOCSIN_ENROLLMENT_H

#include <stddef.h>
#include <stdint.h>

#include "credentials.h"

struct inventory;

/*
 * Enroll host with the enrollment token of principal p; inv (may be NULL)
 * binds hosts to customers too.  Refusals: -EEXIST (another customer's
 * host, or in use without an approval), -EPERM (not a host name the
 * token may enroll), -EACCES (the token can no longer be used).
 */
int enrollment_enroll(struct credentials *c, const struct principal *p,
		      const char *host, const struct inventory *inv,
		      int64_t now_ms, struct credential_issued *ret, char *err,
		      size_t errlen);
/*
 * An administrator approves the next enrollment of host until expires_ms:
 * into customer (moving the host there), or NULL (its own customer, while
 * its agent is in use).  0 and *ret_id; -ESTALE or -EKEYREVOKED when actor
 * may no longer act (credentials.h).
 */
int enrollment_approve(struct credentials *c, const char *host,
		       const char *customer, int64_t expires_ms,
		       const struct actor *actor, int64_t now_ms,
		       int64_t *ret_id, char *err, size_t errlen);

#endif
