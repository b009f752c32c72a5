/*
 * What the files of the credentials module share (credentials.c: the
 * store, the index and the changes of tokens and credentials;
 * enrollment.c: enrollments and approvals).  Not for other modules.
 */
#ifndef TOCSIN_CREDENTIALS_PRIVATE_H
#define TOCSIN_CREDENTIALS_PRIVATE_H

#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "credentials.h"
#include "server.h"
#include "writer.h"

enum credentials_stmt {
	STMT_LOAD_TOKENS,
	STMT_LOAD_CREDENTIALS,
	STMT_TOKEN_INSERT,
	STMT_TOKEN_GET,
	STMT_TOKEN_REVOKE,
	STMT_TOKEN_USE,
	STMT_HOST_ACTIVE,
	STMT_HOST_CREDENTIALS,
	STMT_HOST_LAST_ROTATION,
	STMT_HOST_REPLACE_ALL,
	STMT_CREDENTIAL_INSERT,
	STMT_CREDENTIAL_GET,
	STMT_CREDENTIAL_REPLACE,
	STMT_CREDENTIAL_END,
	STMT_CREDENTIAL_REVOKE,
	STMT_COUNT,
};

struct credentials {
	struct store *st;
	struct audit *audit;
	struct writer *w;
	struct hostclaim *claims;
	sqlite3_stmt *stmt[STMT_COUNT];
	struct credindex *ix;
	/* The enrollment: settings; replaced on SIGHUP, read by HTTP threads. */
	atomic_int_fast64_t live_window_ms;
	atomic_int_fast64_t rotate_interval_ms;
	int64_t pruned_ms; /* the index's last pruning; writer thread only */
};

/* The fields every change job carries. */
struct change {
	struct credentials *c;
	int64_t now_ms;
	const char *actor; /* for the trail: by's name, or a host's credential */
	/* An admin's change: checked first (session_check_actor()); or NULL. */
	const struct actor *by;
	bool refused; /* fail() was called: err says why */
	char err[384];
};

/* A list of ids a job collected, for the index update after its commit. */
struct ids {
	int64_t *v;
	size_t n;
};

/* Inside a job: refuse the change with a message for the client (-r). */
int credentials_fail(struct change *ch, int r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/*
 * Run a change job, then apply it to the index in commit order; 0, or
 * -errno with its message in err (see credentials.h for the codes).
 * Neither runs when ch->by may no longer act.
 */
int credentials_run_change(struct change *ch, writer_fn fn, writer_done_fn then,
			   void *job, char *err, size_t errlen);
/* Audit what ch did: action on "<kind> <id>" ("credential 17"). */
int credentials_audit_change(struct change *ch, const char *action,
			     const char *kind, int64_t id, const char *detail);
/* A new secret with its prefix ("tch_"), and its hash. */
void credentials_secret_new(const char *prefix, char *out, size_t size,
			    uint8_t hash[TOKEN_HASH_LEN]);
void credentials_ids_add(struct ids *ids, int64_t id);
/* A credential row; its id in *ret_id.  token_id 0: made by a rotation. */
int credentials_insert_credential(struct change *ch, const char *host,
				  const char *customer, const uint8_t *hash,
				  int64_t token_id, int64_t *ret_id);
/* From a change's callback: now and then, forget long-ended entries. */
void credentials_maybe_prune(struct credentials *c, int64_t now_ms);
/* A column as an integer (NULL: 0) or as text (NULL: ""). */
int64_t credentials_column_int(sqlite3_stmt *s, int col);
const char *credentials_column_text(sqlite3_stmt *s, int col);

#define CREDENTIAL_PREFIX "tch_" /* host credential */

#endif
