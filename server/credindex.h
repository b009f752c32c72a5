/*
 * The in-memory index of enrollment tokens and host credentials: what
 * authentication looks a presented secret up in, on the HTTP threads,
 * without SQL.
 *
 * The index is a cache of the credentials tables.  It is filled at start
 * and then changed only in the order the changes commit: credentials.c
 * applies each change from its writer job's callback (writer_run_then()),
 * which runs on the writer thread in commit order.  So two changes racing
 * on HTTP threads (a rotation and a revocation of the same credential,
 * two enrollments of one host) cannot be applied the wrong way round, and
 * a change never reaches the index before it is durable.  The one
 * exception only restricts: the first use of a rotated credential's
 * successor retires its predecessor in the index at once (the database
 * follows through a posted job).
 *
 * Entries that ended (revoked, expired) longer than CREDINDEX_FORGET_MS
 * ago are dropped, so the index does not grow with every rotation ever
 * made; a secret that old then gets the generic 401.
 */
#ifndef TOCSIN_CREDINDEX_H
#define TOCSIN_CREDINDEX_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http.h"
#include "server.h"

/* Ended entries are forgotten this long after their end. */
#define CREDINDEX_FORGET_MS (30 * 24 * 3600 * 1000LL)

struct credindex;

enum credindex_kind {
	CREDINDEX_CREDENTIAL,
	CREDINDEX_TOKEN,
};

/* What the index keeps of one token or credential (strings are copied). */
struct credindex_row {
	enum credindex_kind kind;
	int64_t id;
	uint8_t hash[TOKEN_HASH_LEN];
	const char *host;     /* credentials */
	const char *customer;
	int64_t expires_ms;   /* 0: never */
	int64_t revoked_ms;   /* 0: usable */
	const char *reason;   /* why it was revoked: revoked, reenrolled, ... */
	int64_t replaced_by;  /* credentials: the rotation's successor */
	int64_t predecessor;  /* credentials: retired at the first use */
	int64_t max_uses;     /* tokens; 0: unlimited */
	int64_t uses;
};

struct credindex *credindex_new(void);
void credindex_free(struct credindex *ix);

/* Add (or, for an id already there, replace) an entry. */
void credindex_add(struct credindex *ix, const struct credindex_row *row);
/* Mark id revoked at now_ms for reason; nothing when unknown or revoked. */
void credindex_revoke(struct credindex *ix, enum credindex_kind kind,
		      int64_t id, int64_t now_ms, const char *reason);
/*
 * Filling the index at start (credentials.c's index_load()): rows are
 * appended by credindex_load() and sorted once by credindex_load_finish(),
 * O(n log n), where credindex_add() of each would move half of the hash
 * order every time, O(n^2) for the hundred thousand credentials of a
 * large MSP.  Lookups see loaded rows only after credindex_load_finish();
 * of rows with one id, the last loaded (or added) stays.
 */
void credindex_load(struct credindex *ix, const struct credindex_row *row);
void credindex_load_finish(struct credindex *ix);
/* A rotation: old_id is replaced by new_id and ends at old_expires_ms. */
void credindex_replace(struct credindex *ix, int64_t old_id, int64_t new_id,
		       int64_t old_expires_ms);
/* An enrollment used token_id: its use count is now uses. */
void credindex_set_uses(struct credindex *ix, int64_t token_id, int64_t uses);
/* After loading: link every successor still waiting to its predecessor. */
void credindex_link_rotations(struct credindex *ix);

/*
 * Look secret up: 0 and *ret, -ENOENT when it is not one of ours, or
 * -EACCES with ret->denied saying why it may not be used.  A credential
 * whose predecessor is still valid returns it in *ret_retire (else 0):
 * the caller retires it (credindex_retire()) and records that.
 */
int credindex_authenticate(struct credindex *ix, const char *secret,
			   int64_t now_ms, struct principal *ret,
			   int64_t *ret_retire);
/*
 * The first use of new_id: its predecessor ends now (reason "rotated").
 * Returns the predecessor's id, or 0 when another request did it first.
 */
int64_t credindex_retire(struct credindex *ix, int64_t new_id, int64_t now_ms);

/* When credential id was last used to authenticate, 0: not since start. */
int64_t credindex_last_used(struct credindex *ix, int64_t id);

/*
 * Drop the entries that ended more than CREDINDEX_FORGET_MS before now_ms;
 * returns how many.  O(entries): the caller decides how often.
 */
size_t credindex_prune(struct credindex *ix, int64_t now_ms);
/* Whether an entry that ended at end_ms (0: has not) is kept. */
bool credindex_keeps(int64_t end_ms, int64_t now_ms);

size_t credindex_count(struct credindex *ix);

#endif
