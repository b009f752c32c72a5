/*
 * The audit trail: who did what to which credential, and when.
 *
 * Enrollment tokens, enrollments, rotations and revocations write a row
 * here inside the same transaction as the change itself (a writer job),
 * so the trail has no gaps and no entries for changes that rolled back.
 * Other modules with security-relevant actions (accounts, settings) may
 * use audit_add() the same way.
 */
#ifndef TOCSIN_AUDIT_H
#define TOCSIN_AUDIT_H

#include <jansson.h>
#include <stdint.h>

#include "../common/db.h"

struct store;
struct audit;

extern const struct db_schema audit_schema;

/* Prepare the statements over st (after its migrations). */
int audit_open(struct store *st, struct audit **ret);
/* Finalize them; before store_close().  NULL is fine. */
void audit_close(struct audit *a);

/*
 * Inside a writer job: actor (a principal's name) did action
 * ("credential.revoke") to target ("credential 17"); detail is free text
 * or NULL.  0 or -errno.
 */
int audit_add(struct audit *a, int64_t at_ms, const char *actor,
	      const char *action, const char *target, const char *detail);

/* Under store_lock(): the newest entries first, as a JSON array. */
int audit_list(struct audit *a, int64_t limit, int64_t offset, json_t **ret);

#endif
