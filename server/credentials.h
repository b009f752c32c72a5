/*
 * Enrollment tokens and per-host credentials (PROTOCOL.md).
 *
 * An administrator creates an enrollment token for a customer; an agent
 * trades it (POST /api/v1/enroll) for a credential bound to that customer
 * and its host name.  Both are random secrets of which the collector
 * keeps only a hash.  A credential can be rotated by its holder (the old
 * one stays valid until the new one is first used, or for an hour) and
 * revoked by an administrator; every such change is a writer job that
 * also writes the audit trail.
 *
 * Authentication runs on every request, on the HTTP threads: it looks the
 * presented secret's hash up in an in-memory index of every token and
 * credential (credindex.h), which is loaded at start and updated by each
 * change's writer job in commit order.  No SQL runs per request.
 *
 * Enrollment (enrollment.h) trades a token for a credential; who may
 * enroll which host name is hostclaim.h's part.  Rotations are limited
 * to one per host per rotate_interval.
 */
#ifndef TOCSIN_CREDENTIALS_H
#define TOCSIN_CREDENTIALS_H

#include <jansson.h>
#include <stdint.h>

#include "../common/db.h"
#include "http.h"

struct actor;
struct audit;
struct inventory;
struct store;
struct writer;
struct credentials;

extern const struct db_schema credentials_schema;

/* How long a rotated credential stays valid if its successor is not used. */
#define CREDENTIAL_GRACE_MS (3600 * 1000LL)
/* Room for a secret: a prefix and 32 random bytes in base64url, plus NUL. */
#define CREDENTIAL_SECRET_MAX 64
#define CUSTOMER_ID_MAX 63

/*
 * Prepare the statements over st (after its migrations) and load the
 * index.  audit receives the trail.  Changes go through w, which may be
 * attached later with credentials_attach_writer() (it does not exist yet
 * when the index must be loaded).  The enrollment settings are the
 * defaults until credentials_configure().
 */
int credentials_open(struct store *st, struct audit *audit,
		     struct credentials **ret);
void credentials_attach_writer(struct credentials *c, struct writer *w);
/* The enrollment: section's defaults, and its parser (node may be NULL). */
struct cfg;
struct cfg_node;
void credentials_config_defaults(struct enrollment_config *conf);
void credentials_config_parse(struct cfg *cfg, const struct cfg_node *node,
			      struct enrollment_config *conf);
/* New settings (at start and on SIGHUP); they apply to the next change. */
void credentials_configure(struct credentials *c,
			   const struct enrollment_config *conf);
/* Finalize; before store_close() and after the HTTP server stopped. */
void credentials_close(struct credentials *c);

/*
 * The http_authenticator's part for enrollment tokens and credentials:
 * 0 and *ret, -ENOENT when the secret is not one of ours, -EACCES with
 * ret->denied when it is but may not be used (revoked, expired, used up).
 * The first use of a rotated credential's successor retires the old one.
 */
int credentials_authenticate(struct credentials *c, const char *secret,
			     int64_t now_ms, struct principal *ret);

/* What a change hands out once: the only time the secret is seen. */
struct credential_issued {
	int64_t id;
	char secret[CREDENTIAL_SECRET_MAX];
	int64_t expires_ms; /* enrollment tokens; 0: never */
};

/*
 * The changes.  Each returns 0, or -errno with a message for the client
 * in err: -ENOENT no such id, -EALREADY already revoked, -EEXIST the host
 * belongs to another customer or is in use (an approval is needed),
 * -EPERM the enrollment token may not enroll that host name, -EACCES the
 * token or credential can no longer be used, -EDQUOT too soon after the
 * last rotation; -EAGAIN the writer's queue is full, and anything else
 * (-EIO) is the store's failure.  actor (account.h) is who acts, by
 * name in the audit trail; when its session may no longer act
 * (session_check_actor()), nothing changes: -ESTALE (its account
 * changed) or -EKEYREVOKED (its session ended).
 */
int credentials_token_create(struct credentials *c, const char *customer,
			     int64_t expires_ms, int64_t max_uses,
			     const struct actor *actor, int64_t now_ms,
			     struct credential_issued *ret, char *err,
			     size_t errlen);
/* The same, for host names matching the shell pattern hosts only. */
int credentials_token_create_for(struct credentials *c, const char *customer,
				 const char *hosts, int64_t expires_ms,
				 int64_t max_uses, const struct actor *actor,
				 int64_t now_ms, struct credential_issued *ret,
				 char *err, size_t errlen);
int credentials_token_revoke(struct credentials *c, int64_t id,
			     const struct actor *actor, int64_t now_ms,
			     char *err, size_t errlen);
/* A new secret for the per-host credential p presented. */
int credentials_rotate(struct credentials *c, const struct principal *p,
		       int64_t now_ms, struct credential_issued *ret,
		       char *err, size_t errlen);
int credentials_revoke(struct credentials *c, int64_t id,
		       const struct actor *actor, int64_t now_ms, char *err,
		       size_t errlen);
/* Entries in the index, for the benchmark and /metrics. */
size_t credentials_count(struct credentials *c);

#endif
