/*
 * What the collector grants an agent (PROTOCOL.md): a credential for an
 * enrollment token (POST /api/v1/enroll), or a new one for the current
 * credential (POST /api/v1/credentials/rotate).  These speak to the
 * network, so only the deliverer links them.
 */
#ifndef TOCSIN_GRANT_H
#define TOCSIN_GRANT_H

#include <stddef.h>

#include "credential.h"

struct transport;

/*
 * Ask the collector for a credential for host, authenticated with the
 * enrollment token t carries.  0 and *ret, or -errno with err saying why
 * (the collector's own words where it gave any).
 */
int grant_enroll(struct transport *t, const char *host,
		 struct credential_grant *ret, char *err, size_t errlen);

/* Trade the credential t carries for a new one.  As grant_enroll(). */
int grant_rotate(struct transport *t, struct credential_grant *ret,
		 char *err, size_t errlen);

#endif
