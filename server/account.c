#include "account.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "../common/util.h"
#include "audit.h"
#include "server.h"
#include "session.h"
#include "store.h"
#include "writer.h"

/* Argon2id with libsodium's interactive limits (64 MiB, 2 passes). */
#define ACCOUNT_OPSLIMIT crypto_pwhash_OPSLIMIT_INTERACTIVE
#define ACCOUNT_MEMLIMIT crypto_pwhash_MEMLIMIT_INTERACTIVE

static const char *const account_steps[] = {
	/* 1: console accounts; the password only as crypto_pwhash_str() */
	"CREATE TABLE accounts ("
	"  name TEXT PRIMARY KEY,"
	"  role TEXT NOT NULL,"
	"  password_hash TEXT NOT NULL,"
	"  created INTEGER NOT NULL,"
	"  updated INTEGER NOT NULL,"
	"  created_by TEXT NOT NULL);",
	/*
	 * 2: which version of the account a row is, new with every change
	 * (not with a rehash): what a login's stamp is compared with.
	 */
	"ALTER TABLE accounts ADD COLUMN generation INTEGER NOT NULL DEFAULT 0;",
};

const struct db_schema account_schema = {
	.module = "accounts",
	.steps = account_steps,
	.nsteps = ARRAY_SIZE(account_steps),
};

struct account {
	char name[ACCOUNT_NAME_MAX + 1];
	char role[16];
	char hash[crypto_pwhash_STRBYTES];
	int64_t created, updated;
	char created_by[64];
	int64_t generation;
};

struct accounts {
	struct audit *audit;
	struct writer *w;
	sqlite3_stmt *upsert, *remove, *rehash, *generation; /* writer thread only */
	/* The last generation handed out: the writer thread's, after start. */
	int64_t last_generation;
	pthread_mutex_t lock; /* list, n */
	struct account *list;
	size_t n;
	/* Verified against for unknown names, made at the first need. */
	pthread_mutex_t dummy_lock;
	bool dummy_made;
	char dummy[crypto_pwhash_STRBYTES];
};

static const struct {
	const char *name;
	unsigned perms;
} account_roles[] = {
	{ "viewer", PERM_READ },
	{ "technician", PERM_READ | PERM_WRITE },
	{ "admin", PERM_READ | PERM_WRITE | PERM_ADMIN },
};

const char *account_perms_role(unsigned perms)
{
	for (size_t i = ARRAY_SIZE(account_roles); i-- > 0;)
		if ((perms & account_roles[i].perms) == account_roles[i].perms)
			return account_roles[i].name;
	return account_roles[0].name;
}

int account_role_perms(const char *role, unsigned *ret_perms)
{
	for (size_t i = 0; i < ARRAY_SIZE(account_roles); i++)
		if (strcmp(role, account_roles[i].name) == 0) {
			*ret_perms = account_roles[i].perms;
			return 0;
		}
	return -EINVAL;
}

/* Under a->lock: the index of name, or -1. */
static ssize_t find(const struct accounts *a, const char *name)
{
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->list[i].name, name) == 0)
			return (ssize_t)i;
	return -1;
}

/* Under a->lock, from the writer thread or at start: insert or replace. */
static void remember(struct accounts *a, const struct account *acc)
{
	ssize_t i = find(a, acc->name);

	if (i >= 0) {
		a->list[i] = *acc;
		return;
	}
	a->list = xreallocarray(a->list, a->n + 1, sizeof(*a->list));
	a->list[a->n++] = *acc;
}

/* At start: every stored account into memory.  0 or -errno. */
static int load(struct accounts *a, struct store *st)
{
	sqlite3_stmt *s = NULL;
	int rc, r;

	r = store_prepare(st,
			  "SELECT name, role, password_hash, created, updated,"
			  " created_by, generation FROM accounts ORDER BY name",
			  &s);
	if (r < 0)
		return r;
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		struct account acc = { 0 };

		strlcpy_safe(acc.name, (const char *)sqlite3_column_text(s, 0),
			     sizeof(acc.name));
		strlcpy_safe(acc.role, (const char *)sqlite3_column_text(s, 1),
			     sizeof(acc.role));
		strlcpy_safe(acc.hash, (const char *)sqlite3_column_text(s, 2),
			     sizeof(acc.hash));
		acc.created = sqlite3_column_int64(s, 3);
		acc.updated = sqlite3_column_int64(s, 4);
		strlcpy_safe(acc.created_by,
			     (const char *)sqlite3_column_text(s, 5),
			     sizeof(acc.created_by));
		acc.generation = sqlite3_column_int64(s, 6);
		if (acc.generation > a->last_generation)
			a->last_generation = acc.generation;
		remember(a, &acc);
	}
	sqlite3_finalize(s);
	return rc == SQLITE_DONE ? 0 : sqlite_to_errno(rc);
}

int accounts_open(struct store *st, struct audit *audit, struct accounts **ret)
{
	struct accounts *a = xcalloc(1, sizeof(*a));
	int r;

	a->audit = audit;
	pthread_mutex_init(&a->lock, NULL);
	pthread_mutex_init(&a->dummy_lock, NULL);
	r = store_prepare(st,
			  "INSERT INTO accounts(name, role, password_hash, created,"
			  " updated, created_by, generation)"
			  " VALUES (?1, ?2, ?3, ?4, ?4, ?5, ?6)"
			  " ON CONFLICT(name) DO UPDATE SET role = ?2,"
			  " password_hash = ?3, updated = ?4, generation = ?6",
			  &a->upsert);
	if (r == 0)
		r = store_prepare(st, "DELETE FROM accounts WHERE name = ?1",
				  &a->remove);
	if (r == 0)
		r = store_prepare(st,
				  "UPDATE accounts SET password_hash = ?2"
				  " WHERE name = ?1 AND password_hash = ?3",
				  &a->rehash);
	if (r == 0)
		r = store_prepare(st,
				  "SELECT generation FROM accounts WHERE name = ?1",
				  &a->generation);
	if (r == 0)
		r = load(a, st);
	if (r < 0) {
		accounts_close(a);
		return r;
	}
	*ret = a;
	return 0;
}

void accounts_attach_writer(struct accounts *a, struct writer *w)
{
	a->w = w;
}

void accounts_close(struct accounts *a)
{
	if (a == NULL)
		return;
	sqlite3_finalize(a->upsert);
	sqlite3_finalize(a->remove);
	sqlite3_finalize(a->rehash);
	sqlite3_finalize(a->generation);
	pthread_mutex_destroy(&a->lock);
	pthread_mutex_destroy(&a->dummy_lock);
	sodium_memzero(a->list, a->n * sizeof(*a->list));
	free(a->list);
	free(a);
}

/*
 * A hash to verify against when the name is unknown (see
 * account_verify()), made at the first need: making it at start would
 * cost every start an Argon2id round.
 */
static const char *dummy_hash(struct accounts *a)
{
	pthread_mutex_lock(&a->dummy_lock);
	if (!a->dummy_made) {
		char password[33];

		randombytes_buf(password, sizeof(password) - 1);
		for (size_t i = 0; i < sizeof(password) - 1; i++)
			password[i] = (char)('a' + (unsigned char)password[i] % 26);
		password[sizeof(password) - 1] = '\0';
		/* Out of memory leaves it empty: verifying then fails at once. */
		if (crypto_pwhash_str(a->dummy, password, sizeof(password) - 1,
				      ACCOUNT_OPSLIMIT, ACCOUNT_MEMLIMIT) != 0)
			a->dummy[0] = '\0';
		a->dummy_made = true;
	}
	pthread_mutex_unlock(&a->dummy_lock);
	return a->dummy;
}

/* A rehash, posted after a login: it applies only if the hash is unchanged. */
struct rehash_job {
	struct accounts *a;
	char name[ACCOUNT_NAME_MAX + 1];
	char old[crypto_pwhash_STRBYTES], new[crypto_pwhash_STRBYTES];
};

/* Writer job: the new hash, unless the password changed meanwhile (-ESTALE). */
static int rehash_apply(struct store *st, void *arg)
{
	struct rehash_job *j = arg;
	int r;

	(void)st;
	db_bind_text(j->a->rehash, 1, j->name);
	db_bind_text(j->a->rehash, 2, j->new);
	db_bind_text(j->a->rehash, 3, j->old);
	r = db_step_done(j->a->rehash);
	if (r == 0 && sqlite3_changes(store_db(st)) == 0)
		r = writer_refuse(-ESTALE);
	return r;
}

/* On the writer thread: the memory follows the committed hash; frees j. */
static void rehash_done(void *arg, int result)
{
	struct rehash_job *j = arg;

	if (result == 0) {
		pthread_mutex_lock(&j->a->lock);
		ssize_t i = find(j->a, j->name);
		if (i >= 0 && strcmp(j->a->list[i].hash, j->old) == 0)
			strlcpy_safe(j->a->list[i].hash, j->new,
				     sizeof(j->a->list[i].hash));
		pthread_mutex_unlock(&j->a->lock);
	}
	sodium_memzero(j, sizeof(*j));
	free(j);
}

/* After a login with an outdated hash: hash again, post the change. */
static void rehash(struct accounts *a, const char *name, const char *old,
		   const char *password)
{
	struct rehash_job *j = xcalloc(1, sizeof(*j));

	j->a = a;
	strlcpy_safe(j->name, name, sizeof(j->name));
	strlcpy_safe(j->old, old, sizeof(j->old));
	if (a->w == NULL ||
	    crypto_pwhash_str(j->new, password, strlen(password),
			      ACCOUNT_OPSLIMIT, ACCOUNT_MEMLIMIT) != 0 ||
	    writer_post(a->w, rehash_apply, j, rehash_done) < 0)
		rehash_done(j, -EAGAIN); /* the next login tries again */
}

int account_verify(struct accounts *a, const char *name, const char *password,
		   unsigned *ret_perms, struct account_stamp *ret_stamp)
{
	char hash[crypto_pwhash_STRBYTES];
	struct account_stamp stamp = { 0 };
	unsigned perms = 0;
	bool known;
	ssize_t i;
	int r;

	pthread_mutex_lock(&a->lock);
	i = find(a, name);
	known = i >= 0;
	if (known) {
		strlcpy_safe(hash, a->list[i].hash, sizeof(hash));
		account_role_perms(a->list[i].role, &perms);
		/* The hash and its generation change together (set_then()). */
		stamp.generation = a->list[i].generation;
	}
	pthread_mutex_unlock(&a->lock);
	if (!known) {
		strlcpy_safe(hash, dummy_hash(a), sizeof(hash));
		/* The same work as for a known name; the outcome is no login. */
		if (crypto_pwhash_str_verify(hash, password, strlen(password)) == 0)
			return -ENOENT;
		return -ENOENT;
	}
	r = crypto_pwhash_str_verify(hash, password, strlen(password));
	if (r != 0)
		return -EACCES;
	if (crypto_pwhash_str_needs_rehash(hash, ACCOUNT_OPSLIMIT,
					   ACCOUNT_MEMLIMIT) != 0)
		rehash(a, name, hash, password);
	*ret_perms = perms;
	*ret_stamp = stamp;
	return 0;
}

/*
 * The store, not memory, is asked: memory follows a change only once its
 * group commits, and the change may be ahead of the caller's job in the
 * same group.
 */
int account_check_stamp(struct accounts *a, const char *name,
			const struct account_stamp *stamp)
{
	sqlite3_stmt *q = a->generation;
	int64_t generation = 0;
	int rc;

	db_bind_text(q, 1, name);
	rc = sqlite3_step(q);
	if (rc == SQLITE_ROW)
		generation = sqlite3_column_int64(q, 0);
	sqlite3_reset(q);
	sqlite3_clear_bindings(q);
	if (rc != SQLITE_ROW && rc != SQLITE_DONE)
		return sqlite_to_errno(rc);
	if (rc == SQLITE_DONE || generation != stamp->generation)
		return writer_refuse(-ESTALE);
	return 0;
}

bool account_name_valid(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len > ACCOUNT_NAME_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		char c = name[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '.' || c == '_' ||
		      c == '-' || c == '@'))
			return false;
	}
	return true;
}

struct set_job {
	struct accounts *a;
	struct account acc;
	const struct account_stamp *expect; /* NULL: whatever the account is */
	const struct actor *actor;
	bool created;
};

/*
 * Writer job: insert or replace the account, with its audit entry and a
 * new generation; -ESTALE when it is no longer the account j->expect
 * was taken of, -ESTALE or -EKEYREVOKED when the actor may no longer act.
 */
static int set_apply(struct store *st, void *arg)
{
	struct set_job *j = arg;
	int r;

	(void)st;
	r = session_check_actor(j->actor);
	if (r < 0)
		return r;
	if (j->expect != NULL) {
		r = account_check_stamp(j->a, j->acc.name, j->expect);
		if (r < 0)
			return r;
	}
	pthread_mutex_lock(&j->a->lock);
	j->created = find(j->a, j->acc.name) < 0;
	r = j->created && j->a->n >= ACCOUNTS_MAX ? -EDQUOT : 0;
	pthread_mutex_unlock(&j->a->lock);
	if (r < 0)
		return writer_refuse(r);
	/* Handed out even should the job fail: they need only differ. */
	j->acc.generation = ++j->a->last_generation;
	db_bind_text(j->a->upsert, 1, j->acc.name);
	db_bind_text(j->a->upsert, 2, j->acc.role);
	db_bind_text(j->a->upsert, 3, j->acc.hash);
	sqlite3_bind_int64(j->a->upsert, 4, j->acc.updated);
	db_bind_text(j->a->upsert, 5, j->actor->name);
	sqlite3_bind_int64(j->a->upsert, 6, j->acc.generation);
	r = db_step_done(j->a->upsert);
	if (r == 0)
		r = audit_add(j->a->audit, j->acc.updated, j->actor->name,
			      j->created ? "account.create" : "account.update",
			      j->acc.name, j->acc.role);
	return r;
}

/* On the writer thread, in commit order: the memory follows (creation kept). */
static void set_then(void *arg, int result)
{
	struct set_job *j = arg;
	struct account acc = j->acc;

	if (result < 0)
		return;
	pthread_mutex_lock(&j->a->lock);
	ssize_t i = find(j->a, acc.name);
	if (i >= 0) {
		acc.created = j->a->list[i].created;
		strlcpy_safe(acc.created_by, j->a->list[i].created_by,
			     sizeof(acc.created_by));
	}
	remember(j->a, &acc);
	pthread_mutex_unlock(&j->a->lock);
}

/* writer_run_then()'s outcome as account_set()'s and account_delete()'s. */
static int change_result(int r)
{
	if (r >= 0 || r == -ENOENT || r == -EDQUOT || r == -ESTALE ||
	    r == -EKEYREVOKED)
		return r;
	return r == -EAGAIN || r == -ESHUTDOWN ? -EAGAIN : -EIO;
}

/* account_set() and account_set_unchanged() (expect NULL: the former). */
static int set_account(struct accounts *a, const char *name, const char *role,
		       const char *password,
		       const struct account_stamp *expect,
		       const struct actor *actor, int64_t now_ms, char *err,
		       size_t errlen)
{
	struct set_job j = { .a = a, .expect = expect, .actor = actor };
	size_t plen = strlen(password);
	unsigned perms;
	int r;

	if (!account_name_valid(name)) {
		snprintf(err, errlen,
			 "account name '%.80s': use 1 to %d letters, digits and . _ - @",
			 name, ACCOUNT_NAME_MAX);
		return -EINVAL;
	}
	if (account_role_perms(role, &perms) < 0) {
		snprintf(err, errlen,
			 "role: '%.40s' is not one of viewer, technician, admin",
			 role);
		return -EINVAL;
	}
	if (plen < ACCOUNT_PASSWORD_MIN || plen > ACCOUNT_PASSWORD_MAX) {
		snprintf(err, errlen,
			 "password: %zu characters; it needs %d to %d",
			 plen, ACCOUNT_PASSWORD_MIN, ACCOUNT_PASSWORD_MAX);
		return -EINVAL;
	}
	strlcpy_safe(j.acc.name, name, sizeof(j.acc.name));
	strlcpy_safe(j.acc.role, role, sizeof(j.acc.role));
	strlcpy_safe(j.acc.created_by, actor->name, sizeof(j.acc.created_by));
	j.acc.created = j.acc.updated = now_ms;
	if (crypto_pwhash_str(j.acc.hash, password, plen, ACCOUNT_OPSLIMIT,
			      ACCOUNT_MEMLIMIT) != 0) {
		snprintf(err, errlen, "hashing the password failed: out of memory");
		return -EAGAIN;
	}
	r = change_result(writer_run_then(a->w, set_apply, set_then, &j, 1000));
	if (r == -EDQUOT)
		snprintf(err, errlen, "there are %d accounts already, the most kept",
			 ACCOUNTS_MAX);
	else if (r == -ESTALE && expect == NULL)
		snprintf(err, errlen, "%s", SESSION_ACTOR_CHANGED);
	else if (r == -EKEYREVOKED)
		snprintf(err, errlen, "%s", SESSION_ACTOR_ENDED);
	else if (r == -ESTALE)
		snprintf(err, errlen,
			 "account '%s' changed or was deleted since its password was checked: nothing was changed",
			 name);
	else if (r == -EAGAIN)
		snprintf(err, errlen, "the collector is busy: its store queue is full");
	else if (r < 0)
		snprintf(err, errlen, "the store failed");
	sodium_memzero(&j.acc, sizeof(j.acc));
	return r < 0 ? r : j.created ? 1 : 0;
}

int account_set(struct accounts *a, const char *name, const char *role,
		const char *password, const struct actor *actor,
		int64_t now_ms, char *err, size_t errlen)
{
	return set_account(a, name, role, password, NULL, actor, now_ms, err,
			   errlen);
}

int account_set_unchanged(struct accounts *a, const char *name,
			  const struct account_stamp *expect, const char *role,
			  const char *password, const char *actor,
			  int64_t now_ms, char *err, size_t errlen)
{
	return set_account(a, name, role, password, expect,
			   ACTOR_UNCHECKED(actor), now_ms, err, errlen);
}

struct delete_job {
	struct accounts *a;
	const char *name;
	const struct actor *actor;
	int64_t now_ms;
};

/*
 * Writer job: delete the account (-ENOENT when there is none), audited;
 * -ESTALE or -EKEYREVOKED when the actor may no longer act.
 */
static int delete_apply(struct store *st, void *arg)
{
	struct delete_job *j = arg;
	int r;

	r = session_check_actor(j->actor);
	if (r < 0)
		return r;
	db_bind_text(j->a->remove, 1, j->name);
	r = db_step_done(j->a->remove);
	if (r == 0 && sqlite3_changes(store_db(st)) == 0)
		return writer_refuse(-ENOENT);
	if (r == 0)
		r = audit_add(j->a->audit, j->now_ms, j->actor->name,
			      "account.delete", j->name, NULL);
	return r;
}

/* On the writer thread, in commit order: forget the account. */
static void delete_then(void *arg, int result)
{
	struct delete_job *j = arg;
	ssize_t i;

	if (result < 0)
		return;
	pthread_mutex_lock(&j->a->lock);
	i = find(j->a, j->name);
	if (i >= 0) {
		j->a->list[i] = j->a->list[j->a->n - 1];
		j->a->n--;
	}
	pthread_mutex_unlock(&j->a->lock);
}

int account_delete(struct accounts *a, const char *name,
		   const struct actor *actor, int64_t now_ms)
{
	struct delete_job j = { .a = a, .name = name, .actor = actor,
				.now_ms = now_ms };

	return change_result(
		writer_run_then(a->w, delete_apply, delete_then, &j, 1000));
}

static int by_name(const void *x, const void *y)
{
	return strcmp(((const struct account *)x)->name,
		      ((const struct account *)y)->name);
}

json_t *account_list(struct accounts *a)
{
	json_t *list = json_array();
	char created[TIME_RFC3339_LEN], updated[TIME_RFC3339_LEN];

	pthread_mutex_lock(&a->lock);
	if (a->n > 1)
		qsort(a->list, a->n, sizeof(*a->list), by_name);
	for (size_t i = 0; i < a->n; i++) {
		const struct account *acc = &a->list[i];

		time_format_rfc3339(acc->created, created);
		time_format_rfc3339(acc->updated, updated);
		json_array_append_new(
			list, json_pack("{s:s, s:s, s:s, s:s, s:s}", "name",
					acc->name, "role", acc->role, "created",
					created, "updated", updated,
					"created_by", acc->created_by));
	}
	pthread_mutex_unlock(&a->lock);
	return list;
}
