/*
 * Console accounts: technicians who log in with a name and a password.
 *
 * An account has a name, a role (viewer, technician or admin, with the
 * permissions of a token of that role, minus ingest) and a password of
 * which the store keeps only an Argon2id hash (crypto_pwhash_str).  An
 * administrator creates and changes accounts over the API (PUT
 * /api/v1/accounts/{name}); every change is a writer job that also writes
 * the audit trail.
 *
 * Logins run on the HTTP threads and must not wait for the store: the
 * accounts are loaded at start into memory and every change reaches that
 * copy from the writer thread in commit order (writer_run_then()).
 */
#ifndef TOCSIN_ACCOUNT_H
#define TOCSIN_ACCOUNT_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/db.h"

struct audit;
struct store;
struct writer;
struct accounts;
struct sessions;

extern const struct db_schema account_schema;

#define ACCOUNT_NAME_MAX 63
#define ACCOUNT_PASSWORD_MIN 10
#define ACCOUNT_PASSWORD_MAX 1024
/* Accounts kept in memory at most: each login scans them. */
#define ACCOUNTS_MAX 10000

/* Load the accounts of st (after its migrations); audit gets the trail. */
int accounts_open(struct store *st, struct audit *audit,
		  struct accounts **ret);
/* Changes go through w from then on (it starts after accounts_open()). */
void accounts_attach_writer(struct accounts *a, struct writer *w);
/* After the HTTP server stopped and the writer drained.  NULL is fine. */
void accounts_close(struct accounts *a);

/*
 * Whether name may be an account's: 1 to ACCOUNT_NAME_MAX letters,
 * digits and . _ - @, since names appear in journals, URLs, audit entries
 * and terminals.
 */
bool account_name_valid(const char *name);

/* The role names accounts may have, and their permissions (enum permission). */
int account_role_perms(const char *role, unsigned *ret_perms);
/*
 * The role whose permissions perms holds, the widest first ("viewer"
 * when none is held whole): how a session or token principal names its
 * role, from the same table as account_role_perms().
 */
const char *account_perms_role(unsigned perms);

/*
 * Which version of an account a password was checked against.  Every
 * change of the account (password, role) and its deletion make the stamp
 * taken before it stale; replacing a weaker hash does not.  What acts on
 * a checked password later, in a writer job (a login's session, a new
 * password), compares it first: the account may have changed while the
 * slow hash ran.
 */
struct account_stamp {
	int64_t generation;
};

/*
 * Who makes a change with an admin's authority (accounts, enrollment
 * tokens, credentials, approvals) or a technician's (ticket actions,
 * silences): the name for the audit trail or the journal and, for a
 * request that came with a console session, that session and its
 * account's stamp at login.  The session's role was read when its
 * request was authenticated; the change's writer job checks first
 * (session_check_actor()) that the account is still that one and the
 * session still open, so that an admin or a technician demoted, deleted
 * or given a new password while a slow request ran does not act as one
 * still.  A configured token is no account: sessions NULL, nothing to
 * check.
 */
struct actor {
	const char *name;
	struct sessions *sessions; /* NULL: nothing to check */
	int64_t session_id;
	struct account_stamp stamp;
};

/* An actor with nothing to check: a configured token, a test, a benchmark. */
#define ACTOR_UNCHECKED(n) (&(const struct actor){ .name = (n) })

/*
 * Check name's password: 0 with its role's permissions in *ret_perms and
 * the account's stamp in *ret_stamp, -ENOENT for no such account,
 * -EACCES for a wrong password.  An unknown name costs the same time as
 * a wrong password, so that timing does not tell which names exist.  A
 * hash made with weaker limits than today's is replaced (a posted writer
 * job).  Slow (Argon2id): HTTP threads only.
 */
int account_verify(struct accounts *a, const char *name, const char *password,
		   unsigned *ret_perms, struct account_stamp *ret_stamp);
/*
 * Inside a writer job (the writer thread only): 0 when name is still the
 * account stamp was taken of, -ESTALE (declined: writer_refuse()) when
 * it changed or was deleted since, including by a job ahead in the same
 * transaction, or the store's error.
 */
int account_check_stamp(struct accounts *a, const char *name,
			const struct account_stamp *stamp);

/*
 * Create name or replace its role and password, by actor: 0 for a
 * change, 1 for a new account; -EINVAL with a message in err for a bad
 * name, role or password, -ESTALE or -EKEYREVOKED (session_check_actor())
 * when the actor's session may no longer act, -EAGAIN when the writer
 * is busy, -EIO for the store.
 */
int account_set(struct accounts *a, const char *name, const char *role,
		const char *password, const struct actor *actor,
		int64_t now_ms, char *err, size_t errlen);
/*
 * account_set() of an account whose password was just checked (its
 * stamp expect): -ESTALE with a message in err, and nothing changed,
 * when it changed or was deleted since.
 */
int account_set_unchanged(struct accounts *a, const char *name,
			  const struct account_stamp *expect, const char *role,
			  const char *password, const char *actor,
			  int64_t now_ms, char *err, size_t errlen);
/* Delete name by actor: 0, -ENOENT, -ESTALE, -EKEYREVOKED, -EAGAIN, -EIO. */
int account_delete(struct accounts *a, const char *name,
		   const struct actor *actor, int64_t now_ms);
/* Every account (name, role, created, updated, created_by), by name. */
json_t *account_list(struct accounts *a);

#endif
