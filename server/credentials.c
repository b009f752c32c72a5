#include "credentials.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "../common/util.h"
#include "audit.h"
#include "inventory.h"
#include "server.h"
#include "store.h"
#include "writer.h"

/*
 * Secrets are 32 random bytes from libsodium, so they are stored as a
 * plain BLAKE2b hash (crypto_generichash, as token_hash() does for the
 * configured tokens), not with crypto_pwhash: a slow, salted password
 * hash defends low-entropy secrets against guessing, and a 256-bit random
 * secret cannot be guessed anyway.  pwhash would only cost tens of
 * milliseconds and megabytes of memory per request, and a salt would make
 * the lookup by hash impossible.
 */
#define SECRET_BYTES 32
#define TOKEN_PREFIX "tce_" /* enrollment token */
#define CREDENTIAL_PREFIX "tch_" /* host credential */

static const char *const credentials_steps[] = {
	/* 1: enrollment tokens and per-host credentials, hashes only */
	"CREATE TABLE enrollment_tokens ("
	"  id INTEGER PRIMARY KEY,"
	"  customer TEXT NOT NULL,"
	"  hash BLOB NOT NULL UNIQUE,"
	"  created_at INTEGER NOT NULL,"
	"  created_by TEXT NOT NULL,"
	"  expires_at INTEGER NOT NULL,"
	"  max_uses INTEGER," /* NULL: unlimited */
	"  uses INTEGER NOT NULL DEFAULT 0,"
	"  revoked_at INTEGER,"
	"  revoked_by TEXT);"
	"CREATE TABLE credentials ("
	"  id INTEGER PRIMARY KEY,"
	"  host TEXT NOT NULL,"
	"  customer TEXT NOT NULL,"
	"  hash BLOB NOT NULL UNIQUE,"
	"  created_at INTEGER NOT NULL,"
	"  created_by TEXT NOT NULL,"
	"  enrollment_token_id INTEGER REFERENCES enrollment_tokens(id),"
	/* a rotation's successor; this one then ends at expires_at */
	"  replaced_by INTEGER REFERENCES credentials(id),"
	"  expires_at INTEGER,"
	"  revoked_at INTEGER,"
	"  revoked_reason TEXT CHECK (revoked_reason IN"
	"    ('revoked', 'reenrolled', 'rotated', 'superseded')));"
	"CREATE INDEX credentials_active_host ON credentials(host)"
	"  WHERE revoked_at IS NULL;",
};

const struct db_schema credentials_schema = {
	.module = "credentials",
	.steps = credentials_steps,
	.nsteps = ARRAY_SIZE(credentials_steps),
};

enum stmt {
	STMT_LOAD_TOKENS,
	STMT_LOAD_CREDENTIALS,
	STMT_TOKEN_INSERT,
	STMT_TOKEN_GET,
	STMT_TOKEN_REVOKE,
	STMT_TOKEN_USE,
	STMT_TOKEN_LIST,
	STMT_HOST_ACTIVE,
	STMT_HOST_REPLACE_ALL,
	STMT_CREDENTIAL_INSERT,
	STMT_CREDENTIAL_GET,
	STMT_CREDENTIAL_REPLACE,
	STMT_CREDENTIAL_END,
	STMT_CREDENTIAL_REVOKE,
	STMT_CREDENTIAL_LIST,
	STMT_COUNT,
};

static const char *const stmt_sql[STMT_COUNT] = {
	[STMT_LOAD_TOKENS] =
		"SELECT id, hash, customer, expires_at, max_uses, uses, revoked_at"
		" FROM enrollment_tokens ORDER BY id",
	[STMT_LOAD_CREDENTIALS] =
		"SELECT id, hash, host, customer, expires_at, revoked_at,"
		" revoked_reason, replaced_by FROM credentials ORDER BY id",
	[STMT_TOKEN_INSERT] =
		"INSERT INTO enrollment_tokens(customer, hash, created_at,"
		" created_by, expires_at, max_uses) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[STMT_TOKEN_GET] =
		"SELECT expires_at, max_uses, uses, revoked_at"
		" FROM enrollment_tokens WHERE id = ?1",
	[STMT_TOKEN_REVOKE] =
		"UPDATE enrollment_tokens SET revoked_at = ?2, revoked_by = ?3"
		" WHERE id = ?1 AND revoked_at IS NULL",
	[STMT_TOKEN_USE] =
		"UPDATE enrollment_tokens SET uses = uses + 1 WHERE id = ?1"
		" RETURNING uses",
	[STMT_TOKEN_LIST] =
		"SELECT id, customer, created_at, created_by, expires_at, max_uses,"
		" uses, revoked_at, revoked_by FROM enrollment_tokens ORDER BY id",
	[STMT_HOST_ACTIVE] =
		"SELECT id, customer FROM credentials WHERE host = ?1"
		" AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?2)"
		" AND customer != ?3 LIMIT 1",
	[STMT_HOST_REPLACE_ALL] =
		"UPDATE credentials SET revoked_at = ?2, revoked_reason = 'reenrolled'"
		" WHERE host = ?1 AND revoked_at IS NULL RETURNING id",
	[STMT_CREDENTIAL_INSERT] =
		"INSERT INTO credentials(host, customer, hash, created_at,"
		" created_by, enrollment_token_id) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
	[STMT_CREDENTIAL_GET] =
		"SELECT host, customer, expires_at, revoked_at, replaced_by"
		" FROM credentials WHERE id = ?1",
	[STMT_CREDENTIAL_REPLACE] =
		"UPDATE credentials SET replaced_by = ?2,"
		" expires_at = min(coalesce(expires_at, ?3), ?3) WHERE id = ?1",
	[STMT_CREDENTIAL_END] =
		"UPDATE credentials SET revoked_at = ?2, revoked_reason = ?3"
		" WHERE id = ?1 AND revoked_at IS NULL",
	/* The credential and the rest of its rotation: predecessor, successor. */
	[STMT_CREDENTIAL_REVOKE] =
		"UPDATE credentials SET revoked_at = ?2, revoked_reason = 'revoked'"
		" WHERE revoked_at IS NULL AND (id = ?1 OR replaced_by = ?1"
		" OR id = (SELECT replaced_by FROM credentials WHERE id = ?1))"
		" RETURNING id",
	[STMT_CREDENTIAL_LIST] =
		"SELECT id, host, customer, created_at, created_by,"
		" enrollment_token_id, replaced_by, expires_at, revoked_at,"
		" revoked_reason FROM credentials"
		" WHERE (?1 IS NULL OR customer = ?1) AND (?2 IS NULL OR host = ?2)"
		" ORDER BY id",
};

enum entry_kind {
	ENTRY_CREDENTIAL,
	ENTRY_TOKEN,
};

/* One secret the collector knows, as the index keeps it. */
struct entry {
	uint8_t hash[TOKEN_HASH_LEN];
	enum entry_kind kind;
	int64_t id;
	char *host;	    /* credentials */
	char *customer;
	int64_t expires_ms; /* 0: never */
	int64_t revoked_ms; /* 0: usable */
	char reason[16];    /* why it was revoked */
	int64_t replaced_by; /* credentials: the rotation's successor */
	int64_t predecessor; /* credentials: to retire at the first use */
	int64_t max_uses;   /* tokens; 0: unlimited */
	int64_t uses;
};

/* A growable array of entries, sorted by hash or by id. */
struct entries {
	struct entry **v;
	size_t n, cap;
};

struct credentials {
	struct store *st;
	struct audit *audit;
	struct writer *w;
	sqlite3_stmt *stmt[STMT_COUNT];
	pthread_rwlock_t lock; /* the index below */
	struct entries by_hash;
	struct entries credentials; /* by id */
	struct entries tokens;	    /* by id */
};

/* --- the index ------------------------------------------------------- */

static void entry_free(struct entry *e)
{
	if (e == NULL)
		return;
	free(e->host);
	free(e->customer);
	free(e);
}

static void entries_insert(struct entries *a, size_t pos, struct entry *e)
{
	if (a->n == a->cap) {
		a->cap = a->cap ? a->cap * 2 : 64;
		a->v = xreallocarray(a->v, a->cap, sizeof(*a->v));
	}
	memmove(&a->v[pos + 1], &a->v[pos], (a->n - pos) * sizeof(*a->v));
	a->v[pos] = e;
	a->n++;
}

/*
 * The position of hash in by_hash, or where it would go.  The comparison
 * is not constant time, and need not be: it runs on a hash of the
 * presented secret, and learning how that hash orders against stored
 * ones says nothing about any secret (BLAKE2b has no usable preimages).
 * The final equality is checked with sodium_memcmp() all the same.
 */
static size_t hash_position(const struct entries *a, const uint8_t *hash)
{
	size_t lo = 0, hi = a->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (memcmp(a->v[mid]->hash, hash, TOKEN_HASH_LEN) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct entry *find_hash(const struct credentials *c,
			       const uint8_t *hash)
{
	size_t pos = hash_position(&c->by_hash, hash);

	if (pos < c->by_hash.n &&
	    sodium_memcmp(c->by_hash.v[pos]->hash, hash, TOKEN_HASH_LEN) == 0)
		return c->by_hash.v[pos];
	return NULL;
}

static struct entry *find_id(const struct entries *a, int64_t id)
{
	size_t lo = 0, hi = a->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (a->v[mid]->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo < a->n && a->v[lo]->id == id ? a->v[lo] : NULL;
}

/* Add e (owned from now on) to the index; the caller holds the write lock. */
static void index_add(struct credentials *c, struct entry *e)
{
	struct entries *by_id = e->kind == ENTRY_TOKEN ? &c->tokens
						       : &c->credentials;
	size_t pos = by_id->n;

	while (pos > 0 && by_id->v[pos - 1]->id > e->id)
		pos--;
	entries_insert(by_id, pos, e);
	entries_insert(&c->by_hash, hash_position(&c->by_hash, e->hash), e);
}

static void index_revoke(struct credentials *c, enum entry_kind kind,
			 int64_t id, int64_t now_ms, const char *reason)
{
	struct entry *e = find_id(kind == ENTRY_TOKEN ? &c->tokens
						      : &c->credentials,
				  id);

	if (e == NULL || e->revoked_ms != 0)
		return;
	e->revoked_ms = now_ms;
	strlcpy_safe(e->reason, reason, sizeof(e->reason));
}

static int64_t column_or_zero(sqlite3_stmt *s, int col)
{
	return sqlite3_column_type(s, col) == SQLITE_NULL
		       ? 0
		       : sqlite3_column_int64(s, col);
}

static const char *column_text(sqlite3_stmt *s, int col)
{
	const char *t = (const char *)sqlite3_column_text(s, col);

	return t ? t : "";
}

/* A row of STMT_LOAD_TOKENS or STMT_LOAD_CREDENTIALS as an entry. */
static struct entry *entry_from_row(sqlite3_stmt *s, enum entry_kind kind)
{
	struct entry *e = xcalloc(1, sizeof(*e));

	e->kind = kind;
	e->id = sqlite3_column_int64(s, 0);
	if (sqlite3_column_bytes(s, 1) == TOKEN_HASH_LEN)
		memcpy(e->hash, sqlite3_column_blob(s, 1), TOKEN_HASH_LEN);
	if (kind == ENTRY_TOKEN) {
		e->customer = xstrdup(column_text(s, 2));
		e->expires_ms = column_or_zero(s, 3);
		e->max_uses = column_or_zero(s, 4);
		e->uses = sqlite3_column_int64(s, 5);
		e->revoked_ms = column_or_zero(s, 6);
		strlcpy_safe(e->reason, "revoked", sizeof(e->reason));
	} else {
		e->host = xstrdup(column_text(s, 2));
		e->customer = xstrdup(column_text(s, 3));
		e->expires_ms = column_or_zero(s, 4);
		e->revoked_ms = column_or_zero(s, 5);
		strlcpy_safe(e->reason, column_text(s, 6), sizeof(e->reason));
		e->replaced_by = column_or_zero(s, 7);
	}
	return e;
}

static int load_kind(struct credentials *c, enum stmt which,
		     enum entry_kind kind)
{
	sqlite3_stmt *s = c->stmt[which];
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		index_add(c, entry_from_row(s, kind));
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : sqlite_to_errno(rc);
}

/* Fill the index from the database, at start. */
static int index_load(struct credentials *c)
{
	int r;

	store_lock(c->st);
	r = load_kind(c, STMT_LOAD_TOKENS, ENTRY_TOKEN);
	if (r == 0)
		r = load_kind(c, STMT_LOAD_CREDENTIALS, ENTRY_CREDENTIAL);
	store_unlock(c->st);
	if (r < 0)
		return r;
	/* A rotated credential still in use waits for its successor. */
	for (size_t i = 0; i < c->credentials.n; i++) {
		struct entry *old = c->credentials.v[i], *next;

		if (old->replaced_by == 0 || old->revoked_ms != 0)
			continue;
		next = find_id(&c->credentials, old->replaced_by);
		if (next != NULL && next->revoked_ms == 0)
			next->predecessor = old->id;
	}
	return 0;
}

int credentials_open(struct store *st, struct audit *audit,
		     struct credentials **ret)
{
	struct credentials *c = xcalloc(1, sizeof(*c));
	int r = 0;

	c->st = st;
	c->audit = audit;
	pthread_rwlock_init(&c->lock, NULL);
	for (int i = 0; r == 0 && i < STMT_COUNT; i++)
		r = store_prepare(st, stmt_sql[i], &c->stmt[i]);
	if (r == 0)
		r = index_load(c);
	if (r < 0) {
		credentials_close(c);
		return r;
	}
	*ret = c;
	return 0;
}

void credentials_attach_writer(struct credentials *c, struct writer *w)
{
	c->w = w;
}

void credentials_close(struct credentials *c)
{
	if (c == NULL)
		return;
	for (int i = 0; i < STMT_COUNT; i++)
		sqlite3_finalize(c->stmt[i]);
	for (size_t i = 0; i < c->by_hash.n; i++)
		entry_free(c->by_hash.v[i]);
	free(c->by_hash.v);
	free(c->credentials.v);
	free(c->tokens.v);
	pthread_rwlock_destroy(&c->lock);
	free(c);
}

size_t credentials_count(struct credentials *c)
{
	size_t n;

	pthread_rwlock_rdlock(&c->lock);
	n = c->by_hash.n;
	pthread_rwlock_unlock(&c->lock);
	return n;
}

/* --- authentication ---------------------------------------------------- */

static void deny(struct principal *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void deny(struct principal *p, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(p->denied, sizeof(p->denied), fmt, ap);
	va_end(ap);
}

static int check_token(const struct entry *e, int64_t now_ms,
		       struct principal *p)
{
	char at[TIME_RFC3339_LEN];

	if (e->revoked_ms != 0) {
		deny(p, "enrollment token %lld was revoked", (long long)e->id);
		return -EACCES;
	}
	if (now_ms >= e->expires_ms) {
		time_format_rfc3339(e->expires_ms, at);
		deny(p, "enrollment token %lld expired at %s", (long long)e->id,
		     at);
		return -EACCES;
	}
	if (e->max_uses > 0 && e->uses >= e->max_uses) {
		deny(p, "enrollment token %lld is used up (%lld of %lld enrollments)",
		     (long long)e->id, (long long)e->uses,
		     (long long)e->max_uses);
		return -EACCES;
	}
	snprintf(p->name, sizeof(p->name), "enrollment token %lld",
		 (long long)e->id);
	p->perms = PERM_ENROLL;
	strlcpy_safe(p->customer, e->customer, sizeof(p->customer));
	p->credential_id = e->id;
	return 0;
}

static int check_credential(const struct entry *e, int64_t now_ms,
			    struct principal *p)
{
	long long id = (long long)e->id;

	if (e->revoked_ms != 0 && strcmp(e->reason, "revoked") == 0) {
		deny(p, "credential %lld of host %s was revoked",
		     id, e->host);
		return -EACCES;
	}
	if (e->revoked_ms != 0 && strcmp(e->reason, "reenrolled") == 0) {
		deny(p, "credential %lld of host %s was replaced when the host enrolled again",
		     id, e->host);
		return -EACCES;
	}
	if (e->revoked_ms != 0 && e->replaced_by == 0) {
		deny(p, "credential %lld of host %s was superseded by a later rotation",
		     id, e->host);
		return -EACCES;
	}
	if (e->revoked_ms != 0 ||
	    (e->expires_ms != 0 && now_ms >= e->expires_ms)) {
		deny(p, "credential %lld of host %s was replaced by credential %lld at a rotation",
		     id, e->host, (long long)e->replaced_by);
		return -EACCES;
	}
	snprintf(p->name, sizeof(p->name), "credential %lld", id);
	p->perms = PERM_INGEST;
	strlcpy_safe(p->host, e->host, sizeof(p->host));
	strlcpy_safe(p->customer, e->customer, sizeof(p->customer));
	p->credential_id = e->id;
	return 0;
}

struct retire_job {
	struct credentials *c;
	int64_t old_id, new_id, now_ms;
};

/* Writer job: the successor was used, so its predecessor ends now. */
static int retire_apply(struct store *st, void *arg)
{
	struct retire_job *j = arg;
	sqlite3_stmt *s = j->c->stmt[STMT_CREDENTIAL_END];
	char actor[48], target[48];
	int r;

	sqlite3_bind_int64(s, 1, j->old_id);
	sqlite3_bind_int64(s, 2, j->now_ms);
	db_bind_text(s, 3, "rotated");
	r = db_step_done(s);
	if (r < 0 || sqlite3_changes(store_db(st)) == 0)
		return r;
	snprintf(actor, sizeof(actor), "credential %lld", (long long)j->new_id);
	snprintf(target, sizeof(target), "credential %lld",
		 (long long)j->old_id);
	return audit_add(j->c->audit, j->now_ms, actor, "credential.retire",
			 target, "its successor was used for the first time");
}

static void retire_done(void *arg, int result)
{
	struct retire_job *j = arg;

	/* The old credential then ends at its expiry instead; say so. */
	if (result < 0)
		log_warnx("cannot retire credential %lld after the first use of %lld: %s",
			  (long long)j->old_id, (long long)j->new_id,
			  strerror(-result));
	free(j);
}

/*
 * The first use of new_id: its predecessor ends now, in the index at
 * once and in the database through a posted job.
 */
static void retire_predecessor(struct credentials *c, int64_t new_id,
			       int64_t now_ms)
{
	struct retire_job *j;
	struct entry *e;
	int64_t old_id = 0;

	pthread_rwlock_wrlock(&c->lock);
	e = find_id(&c->credentials, new_id);
	if (e != NULL && e->predecessor != 0) {
		old_id = e->predecessor;
		e->predecessor = 0;
		index_revoke(c, ENTRY_CREDENTIAL, old_id, now_ms, "rotated");
	}
	pthread_rwlock_unlock(&c->lock);
	if (old_id == 0 || c->w == NULL)
		return;
	j = xcalloc(1, sizeof(*j));
	*j = (struct retire_job){ c, old_id, new_id, now_ms };
	if (writer_post(c->w, retire_apply, j, retire_done) < 0)
		retire_done(j, -EAGAIN);
}

int credentials_authenticate(struct credentials *c, const char *secret,
			     int64_t now_ms, struct principal *ret)
{
	struct principal p = { 0 };
	uint8_t hash[TOKEN_HASH_LEN];
	const struct entry *e;
	int64_t retire = 0;
	int r;

	token_hash(secret, hash);
	pthread_rwlock_rdlock(&c->lock);
	e = find_hash(c, hash);
	if (e == NULL) {
		r = -ENOENT;
	} else if (e->kind == ENTRY_TOKEN) {
		r = check_token(e, now_ms, &p);
	} else {
		r = check_credential(e, now_ms, &p);
		if (r == 0)
			retire = e->predecessor;
	}
	pthread_rwlock_unlock(&c->lock);
	if (retire != 0)
		retire_predecessor(c, p.credential_id, now_ms);
	if (r == -EACCES)
		strlcpy_safe(ret->denied, p.denied, sizeof(ret->denied));
	else if (r == 0)
		*ret = p;
	return r;
}

/* --- changes ------------------------------------------------------------ */

/* A new secret with its prefix, and its hash. */
static void secret_new(const char *prefix, char *out, size_t size,
		       uint8_t hash[TOKEN_HASH_LEN])
{
	unsigned char raw[SECRET_BYTES];
	char b64[sodium_base64_ENCODED_LEN(SECRET_BYTES,
					   sodium_base64_VARIANT_URLSAFE_NO_PADDING)];

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2base64(b64, sizeof(b64), raw, sizeof(raw),
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	snprintf(out, size, "%s%s", prefix, b64);
	token_hash(out, hash);
	sodium_memzero(raw, sizeof(raw));
	sodium_memzero(b64, sizeof(b64));
}

/* The fields every change job carries. */
struct change {
	struct credentials *c;
	int64_t now_ms;
	const char *actor;
	char err[256];
};

static int fail(struct change *ch, int r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct change *ch, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ch->err, sizeof(ch->err), fmt, ap);
	va_end(ap);
	return r;
}

/*
 * Run a change job and hand back its message; store failures get one too.
 * An HTTP thread waits a second at most for room in the writer's queue.
 */
static int run_change(struct change *ch, writer_fn fn, void *job, char *err,
		      size_t errlen)
{
	int r = writer_run_timed(ch->c->w, fn, job, 1000);

	if (r < 0) {
		if (r == -EAGAIN)
			snprintf(ch->err, sizeof(ch->err),
				 "the collector is busy: its store queue is full");
		else if (ch->err[0] == '\0')
			snprintf(ch->err, sizeof(ch->err),
				 "the store failed: %s", strerror(-r));
		strlcpy_safe(err, ch->err, errlen);
	}
	return r;
}

/* Audit what ch did: action on "<kind> <id>" ("credential 17"). */
static int audit_change(struct change *ch, const char *action,
			const char *kind, int64_t id, const char *detail)
{
	char target[64];

	snprintf(target, sizeof(target), "%s %lld", kind, (long long)id);
	return audit_add(ch->c->audit, ch->now_ms, ch->actor, action, target,
			 detail);
}

struct token_create_job {
	struct change ch;
	const char *customer;
	int64_t expires_ms, max_uses;
	uint8_t hash[TOKEN_HASH_LEN];
	int64_t id;
};

static int token_create_apply(struct store *st, void *arg)
{
	struct token_create_job *j = arg;
	sqlite3_stmt *s = j->ch.c->stmt[STMT_TOKEN_INSERT];
	char at[TIME_RFC3339_LEN], detail[192];
	int r;

	db_bind_text(s, 1, j->customer);
	sqlite3_bind_blob(s, 2, j->hash, TOKEN_HASH_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, j->ch.now_ms);
	db_bind_text(s, 4, j->ch.actor);
	sqlite3_bind_int64(s, 5, j->expires_ms);
	if (j->max_uses > 0)
		sqlite3_bind_int64(s, 6, j->max_uses);
	else
		sqlite3_bind_null(s, 6);
	r = db_step_done(s);
	if (r < 0)
		return r;
	j->id = sqlite3_last_insert_rowid(store_db(st));
	time_format_rfc3339(j->expires_ms, at);
	if (j->max_uses > 0)
		snprintf(detail, sizeof(detail),
			 "customer %s, expires %s, at most %lld uses",
			 j->customer, at, (long long)j->max_uses);
	else
		snprintf(detail, sizeof(detail), "customer %s, expires %s",
			 j->customer, at);
	return audit_change(&j->ch, "enrollment_token.create",
			    "enrollment token", j->id, detail);
}

int credentials_token_create(struct credentials *c, const char *customer,
			     int64_t expires_ms, int64_t max_uses,
			     const char *actor, int64_t now_ms,
			     struct credential_issued *ret, char *err,
			     size_t errlen)
{
	struct token_create_job j = {
		.ch = { .c = c, .now_ms = now_ms, .actor = actor },
		.customer = customer,
		.expires_ms = expires_ms,
		.max_uses = max_uses,
	};
	struct credential_issued out = { .expires_ms = expires_ms };
	struct entry *e;
	int r;

	secret_new(TOKEN_PREFIX, out.secret, sizeof(out.secret), j.hash);
	r = run_change(&j.ch, token_create_apply, &j, err, errlen);
	if (r < 0) {
		sodium_memzero(&out, sizeof(out));
		return r;
	}
	e = xcalloc(1, sizeof(*e));
	*e = (struct entry){ .kind = ENTRY_TOKEN,
			     .id = j.id,
			     .customer = xstrdup(customer),
			     .expires_ms = expires_ms,
			     .max_uses = max_uses };
	memcpy(e->hash, j.hash, TOKEN_HASH_LEN);
	pthread_rwlock_wrlock(&c->lock);
	index_add(c, e);
	pthread_rwlock_unlock(&c->lock);
	out.id = j.id;
	*ret = out;
	return 0;
}

/* A list of ids a job collected, for the index update after its commit. */
struct ids {
	int64_t *v;
	size_t n;
};

static void ids_add(struct ids *ids, int64_t id)
{
	ids->v = xreallocarray(ids->v, ids->n + 1, sizeof(*ids->v));
	ids->v[ids->n++] = id;
}

struct revoke_job {
	struct change ch;
	int64_t id;
	struct ids revoked; /* credentials: the ones actually revoked */
};

/* Why an id could not be revoked: unknown (-ENOENT) or already (-EALREADY). */
static int explain_unrevocable(struct change *ch, sqlite3_stmt *get,
			       const char *what, int64_t id)
{
	int rc;

	sqlite3_bind_int64(get, 1, id);
	rc = sqlite3_step(get);
	sqlite3_reset(get);
	sqlite3_clear_bindings(get);
	if (rc == SQLITE_DONE)
		return fail(ch, -ENOENT, "no %s %lld", what, (long long)id);
	if (rc != SQLITE_ROW)
		return sqlite_to_errno(rc);
	return fail(ch, -EALREADY, "%s %lld was already revoked", what,
		    (long long)id);
}

static int token_revoke_apply(struct store *st, void *arg)
{
	struct revoke_job *j = arg;
	sqlite3_stmt *s = j->ch.c->stmt[STMT_TOKEN_REVOKE];
	int r;

	sqlite3_bind_int64(s, 1, j->id);
	sqlite3_bind_int64(s, 2, j->ch.now_ms);
	db_bind_text(s, 3, j->ch.actor);
	r = db_step_done(s);
	if (r < 0)
		return r;
	if (sqlite3_changes(store_db(st)) == 0)
		return explain_unrevocable(&j->ch,
					   j->ch.c->stmt[STMT_TOKEN_GET],
					   "enrollment token", j->id);
	return audit_change(&j->ch, "enrollment_token.revoke",
			    "enrollment token", j->id, NULL);
}

int credentials_token_revoke(struct credentials *c, int64_t id,
			     const char *actor, int64_t now_ms, char *err,
			     size_t errlen)
{
	struct revoke_job j = {
		.ch = { .c = c, .now_ms = now_ms, .actor = actor },
		.id = id,
	};
	int r = run_change(&j.ch, token_revoke_apply, &j, err, errlen);

	if (r < 0)
		return r;
	pthread_rwlock_wrlock(&c->lock);
	index_revoke(c, ENTRY_TOKEN, id, now_ms, "revoked");
	pthread_rwlock_unlock(&c->lock);
	return 0;
}

struct enroll_job {
	struct change ch;
	int64_t token_id;
	const char *customer;
	const char *host;
	uint8_t hash[TOKEN_HASH_LEN];
	int64_t id, uses;
	struct ids replaced; /* earlier credentials of the host */
};

/* The token again, inside the transaction: another enrollment may have
 * used it up since the request was authenticated. */
static int enroll_check_token(struct enroll_job *j)
{
	sqlite3_stmt *s = j->ch.c->stmt[STMT_TOKEN_GET];
	long long id = (long long)j->token_id;
	int64_t expires, max_uses, uses, revoked;
	int rc;

	sqlite3_bind_int64(s, 1, j->token_id);
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(s);
		sqlite3_clear_bindings(s);
		return rc == SQLITE_DONE
			       ? fail(&j->ch, -EACCES, "no enrollment token %lld", id)
			       : sqlite_to_errno(rc);
	}
	expires = sqlite3_column_int64(s, 0);
	max_uses = column_or_zero(s, 1);
	uses = sqlite3_column_int64(s, 2);
	revoked = column_or_zero(s, 3);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (revoked != 0)
		return fail(&j->ch, -EACCES, "enrollment token %lld was revoked", id);
	if (j->ch.now_ms >= expires)
		return fail(&j->ch, -EACCES, "enrollment token %lld has expired", id);
	if (max_uses > 0 && uses >= max_uses)
		return fail(&j->ch, -EACCES,
			    "enrollment token %lld is used up (%lld of %lld enrollments)",
			    id, (long long)uses, (long long)max_uses);
	return 0;
}

/* -EEXIST when a usable credential binds the host to another customer. */
static int enroll_check_binding(struct enroll_job *j)
{
	sqlite3_stmt *s = j->ch.c->stmt[STMT_HOST_ACTIVE];
	int rc, r = 0;

	db_bind_text(s, 1, j->host);
	sqlite3_bind_int64(s, 2, j->ch.now_ms);
	db_bind_text(s, 3, j->customer);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		r = fail(&j->ch, -EEXIST,
			 "host %s belongs to customer %s (credential %lld); revoke that credential before enrolling it for customer %s",
			 j->host, column_text(s, 1),
			 (long long)sqlite3_column_int64(s, 0), j->customer);
	else if (rc != SQLITE_DONE)
		r = sqlite_to_errno(rc);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return r;
}

/* Revoke the host's earlier credentials, remembering which. */
static int enroll_replace_earlier(struct enroll_job *j)
{
	sqlite3_stmt *s = j->ch.c->stmt[STMT_HOST_REPLACE_ALL];
	int rc;

	db_bind_text(s, 1, j->host);
	sqlite3_bind_int64(s, 2, j->ch.now_ms);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		ids_add(&j->replaced, sqlite3_column_int64(s, 0));
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_DONE ? 0 : sqlite_to_errno(rc);
}

static int insert_credential(struct change *ch, const char *host,
			     const char *customer, const uint8_t *hash,
			     int64_t token_id, int64_t *ret_id)
{
	sqlite3_stmt *s = ch->c->stmt[STMT_CREDENTIAL_INSERT];
	int r;

	db_bind_text(s, 1, host);
	db_bind_text(s, 2, customer);
	sqlite3_bind_blob(s, 3, hash, TOKEN_HASH_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(s, 4, ch->now_ms);
	db_bind_text(s, 5, ch->actor);
	if (token_id > 0)
		sqlite3_bind_int64(s, 6, token_id);
	else
		sqlite3_bind_null(s, 6);
	r = db_step_done(s);
	if (r == 0)
		*ret_id = sqlite3_last_insert_rowid(store_db(ch->c->st));
	return r;
}

static int enroll_apply(struct store *st, void *arg)
{
	struct enroll_job *j = arg;
	sqlite3_stmt *use = j->ch.c->stmt[STMT_TOKEN_USE];
	char detail[384];
	size_t len;
	int r, rc;

	(void)st;
	r = enroll_check_token(j);
	if (r == 0)
		r = enroll_check_binding(j);
	if (r == 0)
		r = enroll_replace_earlier(j);
	if (r == 0)
		r = insert_credential(&j->ch, j->host, j->customer, j->hash,
				      j->token_id, &j->id);
	if (r < 0)
		return r;
	sqlite3_bind_int64(use, 1, j->token_id);
	rc = sqlite3_step(use);
	if (rc == SQLITE_ROW)
		j->uses = sqlite3_column_int64(use, 0);
	while (rc == SQLITE_ROW)
		rc = sqlite3_step(use);
	sqlite3_reset(use);
	sqlite3_clear_bindings(use);
	if (rc != SQLITE_DONE)
		return sqlite_to_errno(rc);
	snprintf(detail, sizeof(detail), "host %s of customer %s", j->host,
		 j->customer);
	for (size_t i = 0; i < j->replaced.n; i++) {
		len = strlen(detail);
		snprintf(detail + len, sizeof(detail) - len, "%s%lld",
			 i == 0 ? "; replaces credential " : ", ",
			 (long long)j->replaced.v[i]);
	}
	return audit_change(&j->ch, "enroll", "credential", j->id, detail);
}

static struct entry *credential_entry(int64_t id, const char *host,
				      const char *customer,
				      const uint8_t *hash)
{
	struct entry *e = xcalloc(1, sizeof(*e));

	e->kind = ENTRY_CREDENTIAL;
	e->id = id;
	e->host = xstrdup(host);
	e->customer = xstrdup(customer);
	memcpy(e->hash, hash, TOKEN_HASH_LEN);
	return e;
}

int credentials_enroll(struct credentials *c, const struct principal *p,
		       const char *host, const struct inventory *inv,
		       int64_t now_ms, struct credential_issued *ret,
		       char *err, size_t errlen)
{
	struct enroll_job j = {
		.ch = { .c = c, .now_ms = now_ms, .actor = p->name },
		.token_id = p->credential_id,
		.customer = p->customer,
		.host = host,
	};
	const struct host *known = inventory_host(inv, host);
	struct credential_issued out = { 0 };
	struct entry *e, *t;
	int r;

	if (known != NULL && known->customer != NULL &&
	    strcmp(known->customer->id, p->customer) != 0) {
		snprintf(err, errlen,
			 "host %s belongs to customer %s in the inventory, not to %s",
			 host, known->customer->id, p->customer);
		return -EEXIST;
	}
	secret_new(CREDENTIAL_PREFIX, out.secret, sizeof(out.secret), j.hash);
	r = run_change(&j.ch, enroll_apply, &j, err, errlen);
	if (r < 0) {
		free(j.replaced.v);
		sodium_memzero(&out, sizeof(out));
		return r;
	}
	e = credential_entry(j.id, host, p->customer, j.hash);
	pthread_rwlock_wrlock(&c->lock);
	for (size_t i = 0; i < j.replaced.n; i++)
		index_revoke(c, ENTRY_CREDENTIAL, j.replaced.v[i], now_ms,
			     "reenrolled");
	free(j.replaced.v);
	index_add(c, e);
	t = find_id(&c->tokens, j.token_id);
	if (t != NULL)
		t->uses = j.uses;
	pthread_rwlock_unlock(&c->lock);
	out.id = j.id;
	*ret = out;
	return 0;
}

struct rotate_job {
	struct change ch;
	int64_t old_id;
	uint8_t hash[TOKEN_HASH_LEN];
	char host[256], customer[CUSTOMER_ID_MAX + 1];
	int64_t id, superseded, old_expires_ms;
};

static int rotate_apply(struct store *st, void *arg)
{
	struct rotate_job *j = arg;
	struct credentials *c = j->ch.c;
	sqlite3_stmt *s = c->stmt[STMT_CREDENTIAL_GET];
	int64_t revoked, expires;
	char detail[512], at[TIME_RFC3339_LEN];
	int rc, r;

	(void)st;
	sqlite3_bind_int64(s, 1, j->old_id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		strlcpy_safe(j->host, column_text(s, 0), sizeof(j->host));
		strlcpy_safe(j->customer, column_text(s, 1), sizeof(j->customer));
		expires = column_or_zero(s, 2);
		revoked = column_or_zero(s, 3);
		j->superseded = column_or_zero(s, 4);
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc != SQLITE_ROW)
		return rc == SQLITE_DONE ? fail(&j->ch, -EACCES, "no credential %lld",
						(long long)j->old_id)
					 : sqlite_to_errno(rc);
	if (revoked != 0 || (expires != 0 && j->ch.now_ms >= expires))
		return fail(&j->ch, -EACCES, "credential %lld can no longer be used",
			    (long long)j->old_id);
	/* A successor that was never used (its secret was lost) goes. */
	if (j->superseded != 0) {
		s = c->stmt[STMT_CREDENTIAL_END];
		sqlite3_bind_int64(s, 1, j->superseded);
		sqlite3_bind_int64(s, 2, j->ch.now_ms);
		db_bind_text(s, 3, "superseded");
		r = db_step_done(s);
		if (r < 0)
			return r;
	}
	r = insert_credential(&j->ch, j->host, j->customer, j->hash, 0, &j->id);
	if (r < 0)
		return r;
	j->old_expires_ms = j->ch.now_ms + CREDENTIAL_GRACE_MS;
	if (expires != 0 && expires < j->old_expires_ms)
		j->old_expires_ms = expires;
	s = c->stmt[STMT_CREDENTIAL_REPLACE];
	sqlite3_bind_int64(s, 1, j->old_id);
	sqlite3_bind_int64(s, 2, j->id);
	sqlite3_bind_int64(s, 3, j->old_expires_ms);
	r = db_step_done(s);
	if (r < 0)
		return r;
	time_format_rfc3339(j->old_expires_ms, at);
	snprintf(detail, sizeof(detail),
		 "host %s: credential %lld valid until the first use of %lld, at most until %s",
		 j->host, (long long)j->old_id, (long long)j->id, at);
	return audit_change(&j->ch, "credential.rotate", "credential",
			    j->old_id, detail);
}

int credentials_rotate(struct credentials *c, const struct principal *p,
		       int64_t now_ms, struct credential_issued *ret,
		       char *err, size_t errlen)
{
	struct rotate_job j = {
		.ch = { .c = c, .now_ms = now_ms, .actor = p->name },
		.old_id = p->credential_id,
	};
	struct credential_issued out = { 0 };
	struct entry *e, *old;
	int r;

	secret_new(CREDENTIAL_PREFIX, out.secret, sizeof(out.secret), j.hash);
	r = run_change(&j.ch, rotate_apply, &j, err, errlen);
	if (r < 0) {
		sodium_memzero(&out, sizeof(out));
		return r;
	}
	e = credential_entry(j.id, j.host, j.customer, j.hash);
	e->predecessor = j.old_id;
	pthread_rwlock_wrlock(&c->lock);
	if (j.superseded != 0)
		index_revoke(c, ENTRY_CREDENTIAL, j.superseded, now_ms,
			     "superseded");
	old = find_id(&c->credentials, j.old_id);
	if (old != NULL) {
		old->replaced_by = j.id;
		old->expires_ms = j.old_expires_ms;
	}
	index_add(c, e);
	pthread_rwlock_unlock(&c->lock);
	out.id = j.id;
	*ret = out;
	return 0;
}

static int credential_revoke_apply(struct store *st, void *arg)
{
	struct revoke_job *j = arg;
	sqlite3_stmt *s = j->ch.c->stmt[STMT_CREDENTIAL_REVOKE];
	char detail[128] = "";
	size_t len;
	int rc;

	(void)st;
	sqlite3_bind_int64(s, 1, j->id);
	sqlite3_bind_int64(s, 2, j->ch.now_ms);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		ids_add(&j->revoked, sqlite3_column_int64(s, 0));
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc != SQLITE_DONE)
		return sqlite_to_errno(rc);
	if (j->revoked.n == 0)
		return explain_unrevocable(&j->ch,
					   j->ch.c->stmt[STMT_CREDENTIAL_GET],
					   "credential", j->id);
	for (size_t i = 0; i < j->revoked.n; i++) {
		if (j->revoked.v[i] == j->id)
			continue;
		len = strlen(detail);
		snprintf(detail + len, sizeof(detail) - len, "%s%lld",
			 len == 0 ? "with its rotation: credential " : ", ",
			 (long long)j->revoked.v[i]);
	}
	return audit_change(&j->ch, "credential.revoke", "credential",
			    j->id, detail[0] ? detail : NULL);
}

int credentials_revoke(struct credentials *c, int64_t id, const char *actor,
		       int64_t now_ms, char *err, size_t errlen)
{
	struct revoke_job j = {
		.ch = { .c = c, .now_ms = now_ms, .actor = actor },
		.id = id,
	};
	int r = run_change(&j.ch, credential_revoke_apply, &j, err, errlen);

	if (r == 0) {
		pthread_rwlock_wrlock(&c->lock);
		for (size_t i = 0; i < j.revoked.n; i++)
			index_revoke(c, ENTRY_CREDENTIAL, j.revoked.v[i],
				     now_ms, "revoked");
		pthread_rwlock_unlock(&c->lock);
	}
	free(j.revoked.v);
	return r;
}

/* --- lists ---------------------------------------------------------- */

static json_t *json_time_or_null(sqlite3_stmt *s, int col)
{
	char at[TIME_RFC3339_LEN];

	if (sqlite3_column_type(s, col) == SQLITE_NULL)
		return json_null();
	time_format_rfc3339(sqlite3_column_int64(s, col), at);
	return json_string(at);
}

static json_t *json_int_or_null(sqlite3_stmt *s, int col)
{
	return sqlite3_column_type(s, col) == SQLITE_NULL
		       ? json_null()
		       : json_integer(sqlite3_column_int64(s, col));
}

static const char *token_state(sqlite3_stmt *s, int64_t now_ms)
{
	if (sqlite3_column_type(s, 7) != SQLITE_NULL)
		return "revoked";
	if (now_ms >= sqlite3_column_int64(s, 4))
		return "expired";
	if (sqlite3_column_type(s, 5) != SQLITE_NULL &&
	    sqlite3_column_int64(s, 6) >= sqlite3_column_int64(s, 5))
		return "used_up";
	return "active";
}

int credentials_token_list(struct credentials *c, int64_t now_ms,
			   json_t **ret)
{
	sqlite3_stmt *s = c->stmt[STMT_TOKEN_LIST];
	json_t *list = json_array();
	int rc;

	store_lock(c->st);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		json_array_append_new(
			list,
			json_pack("{s:I, s:s, s:s, s:o, s:s, s:o, s:o, s:I, s:o, s:o}",
				  "id", (json_int_t)sqlite3_column_int64(s, 0),
				  "customer", column_text(s, 1), "state",
				  token_state(s, now_ms), "created_at",
				  json_time_or_null(s, 2), "created_by",
				  column_text(s, 3), "expires_at",
				  json_time_or_null(s, 4), "max_uses",
				  json_int_or_null(s, 5), "uses",
				  (json_int_t)sqlite3_column_int64(s, 6),
				  "revoked_at", json_time_or_null(s, 7),
				  "revoked_by",
				  sqlite3_column_type(s, 8) == SQLITE_NULL
					  ? json_null()
					  : json_string(column_text(s, 8))));
	sqlite3_reset(s);
	store_unlock(c->st);
	if (rc != SQLITE_DONE) {
		json_decref(list);
		return sqlite_to_errno(rc);
	}
	*ret = list;
	return 0;
}

static const char *credential_state(sqlite3_stmt *s, int64_t now_ms)
{
	if (sqlite3_column_type(s, 8) != SQLITE_NULL)
		return "revoked";
	if (sqlite3_column_type(s, 7) != SQLITE_NULL)
		return now_ms >= sqlite3_column_int64(s, 7) ? "expired"
							    : "rotating";
	return "active";
}

int credentials_list(struct credentials *c, const char *customer,
		     const char *host, int64_t now_ms, json_t **ret)
{
	sqlite3_stmt *s = c->stmt[STMT_CREDENTIAL_LIST];
	json_t *list = json_array();
	int rc;

	store_lock(c->st);
	db_bind_text(s, 1, customer);
	db_bind_text(s, 2, host);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		json_array_append_new(
			list,
			json_pack("{s:I, s:s, s:s, s:s, s:o, s:s, s:o, s:o, s:o, s:o, s:o}",
				  "id", (json_int_t)sqlite3_column_int64(s, 0),
				  "host", column_text(s, 1), "customer",
				  column_text(s, 2), "state",
				  credential_state(s, now_ms), "created_at",
				  json_time_or_null(s, 3), "created_by",
				  column_text(s, 4), "enrollment_token_id",
				  json_int_or_null(s, 5), "replaced_by",
				  json_int_or_null(s, 6), "expires_at",
				  json_time_or_null(s, 7), "revoked_at",
				  json_time_or_null(s, 8), "revoked_reason",
				  sqlite3_column_type(s, 9) == SQLITE_NULL
					  ? json_null()
					  : json_string(column_text(s, 9))));
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	store_unlock(c->st);
	if (rc != SQLITE_DONE) {
		json_decref(list);
		return sqlite_to_errno(rc);
	}
	*ret = list;
	return 0;
}
