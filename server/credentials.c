#include "credentials.h"

#include <errno.h>
#include <fnmatch.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/config.h"
#include "../common/log.h"
#include "../common/util.h"
#include "audit.h"
#include "credindex.h"
#include "hostclaim.h"
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
/* How often the index forgets entries that ended long ago. */
#define PRUNE_EVERY_MS (3600 * 1000LL)

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
	/* 2: tokens for some host names only (a shell pattern; NULL: any) */
	"ALTER TABLE enrollment_tokens ADD COLUMN hosts TEXT;",
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

static const char *const stmt_sql[STMT_COUNT] = {
	[STMT_LOAD_TOKENS] =
		"SELECT id, hash, customer, expires_at, max_uses, uses, revoked_at"
		" FROM enrollment_tokens ORDER BY id",
	[STMT_LOAD_CREDENTIALS] =
		"SELECT id, hash, host, customer, expires_at, revoked_at,"
		" revoked_reason, replaced_by FROM credentials ORDER BY id",
	[STMT_TOKEN_INSERT] =
		"INSERT INTO enrollment_tokens(customer, hash, created_at,"
		" created_by, expires_at, max_uses, hosts)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[STMT_TOKEN_GET] =
		"SELECT expires_at, max_uses, uses, revoked_at, hosts"
		" FROM enrollment_tokens WHERE id = ?1",
	[STMT_TOKEN_REVOKE] =
		"UPDATE enrollment_tokens SET revoked_at = ?2, revoked_by = ?3"
		" WHERE id = ?1 AND revoked_at IS NULL",
	[STMT_TOKEN_USE] =
		"UPDATE enrollment_tokens SET uses = uses + 1 WHERE id = ?1"
		" RETURNING uses",
	[STMT_HOST_ACTIVE] =
		"SELECT id, customer FROM credentials WHERE host = ?1"
		" AND revoked_at IS NULL AND (expires_at IS NULL OR expires_at > ?2)"
		" AND customer != ?3 LIMIT 1",
	[STMT_HOST_CREDENTIALS] =
		"SELECT id FROM credentials WHERE host = ?1 AND revoked_at IS NULL"
		" AND (expires_at IS NULL OR expires_at > ?2)",
	/* Credentials made by rotations (not enrollments) of a host, newest. */
	[STMT_HOST_LAST_ROTATION] =
		"SELECT max(created_at) FROM credentials WHERE host = ?1"
		" AND revoked_at IS NULL AND enrollment_token_id IS NULL",
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

/* --- configuration ------------------------------------------------------ */

void credentials_config_defaults(struct enrollment_config *conf)
{
	*conf = (struct enrollment_config){
		.live_window_ms = 24 * 3600 * 1000LL,
		.rotate_interval_ms = 60 * 1000,
	};
}

void credentials_config_parse(struct cfg *cfg, const struct cfg_node *node,
			      struct enrollment_config *conf)
{
	int64_t v;

	if (cfg_expect_map(cfg, node) < 0)
		return;
	if (cfg_get_duration(cfg, node, "live_window", &v) > 0) {
		if (v < 0 || v > 365 * 24 * 3600 * 1000LL)
			cfg_error(cfg, cfg_get(cfg, node, "live_window"),
				  "live_window must be between 0s (off) and 365d");
		else
			conf->live_window_ms = v;
	}
	if (cfg_get_duration(cfg, node, "rotate_interval", &v) > 0) {
		if (v < 1000 || v > 24 * 3600 * 1000LL)
			cfg_error(cfg, cfg_get(cfg, node, "rotate_interval"),
				  "rotate_interval must be between 1s and 1d");
		else
			conf->rotate_interval_ms = v;
	}
}

void credentials_configure(struct credentials *c,
			   const struct enrollment_config *conf)
{
	atomic_store(&c->live_window_ms, conf->live_window_ms);
	atomic_store(&c->rotate_interval_ms, conf->rotate_interval_ms);
}

/* --- loading ------------------------------------------------------------ */

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

/* A row of STMT_LOAD_TOKENS or STMT_LOAD_CREDENTIALS for the index. */
static void row_of(sqlite3_stmt *s, enum credindex_kind kind,
		   struct credindex_row *row)
{
	*row = (struct credindex_row){ .kind = kind,
				       .id = sqlite3_column_int64(s, 0) };
	if (sqlite3_column_bytes(s, 1) == TOKEN_HASH_LEN)
		memcpy(row->hash, sqlite3_column_blob(s, 1), TOKEN_HASH_LEN);
	if (kind == CREDINDEX_TOKEN) {
		row->customer = column_text(s, 2);
		row->expires_ms = column_or_zero(s, 3);
		row->max_uses = column_or_zero(s, 4);
		row->uses = sqlite3_column_int64(s, 5);
		row->revoked_ms = column_or_zero(s, 6);
		row->reason = "revoked";
	} else {
		row->host = column_text(s, 2);
		row->customer = column_text(s, 3);
		row->expires_ms = column_or_zero(s, 4);
		row->revoked_ms = column_or_zero(s, 5);
		row->reason = column_text(s, 6);
		row->replaced_by = column_or_zero(s, 7);
	}
}

/* When a loaded row stopped being usable at now_ms, or 0. */
static int64_t row_end(const struct credindex_row *row, int64_t now_ms)
{
	if (row->revoked_ms != 0)
		return row->revoked_ms;
	if (row->expires_ms != 0 && row->expires_ms <= now_ms)
		return row->expires_ms;
	return 0;
}

/* Index every row of which, except those ended long ago. */
static int load_kind(struct credentials *c, enum stmt which,
		     enum credindex_kind kind, int64_t now_ms)
{
	sqlite3_stmt *s = c->stmt[which];
	struct credindex_row row;
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		row_of(s, kind, &row);
		if (credindex_keeps(row_end(&row, now_ms), now_ms))
			credindex_add(c->ix, &row);
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : sqlite_to_errno(rc);
}

/* Fill the index from the database, at start. */
static int index_load(struct credentials *c)
{
	int64_t now = time_now_ms();
	int r;

	store_lock(c->st);
	r = load_kind(c, STMT_LOAD_TOKENS, CREDINDEX_TOKEN, now);
	if (r == 0)
		r = load_kind(c, STMT_LOAD_CREDENTIALS, CREDINDEX_CREDENTIAL, now);
	store_unlock(c->st);
	if (r < 0)
		return r;
	/* A rotated credential still in use waits for its successor. */
	credindex_link_rotations(c->ix);
	c->pruned_ms = now;
	return 0;
}

int credentials_open(struct store *st, struct audit *audit,
		     struct credentials **ret)
{
	struct credentials *c = xcalloc(1, sizeof(*c));
	struct enrollment_config defaults;
	int r = 0;

	c->st = st;
	c->audit = audit;
	c->ix = credindex_new();
	credentials_config_defaults(&defaults);
	credentials_configure(c, &defaults);
	for (int i = 0; r == 0 && i < STMT_COUNT; i++)
		r = store_prepare(st, stmt_sql[i], &c->stmt[i]);
	if (r == 0)
		r = hostclaim_open(st, &c->claims);
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
	hostclaim_close(c->claims);
	credindex_free(c->ix);
	free(c);
}

size_t credentials_count(struct credentials *c)
{
	return credindex_count(c->ix);
}

/*
 * From the writer thread, after a change was applied to the index: now
 * and then, forget the entries that ended long ago.
 */
static void maybe_prune(struct credentials *c, int64_t now_ms)
{
	size_t n;

	if (now_ms - c->pruned_ms < PRUNE_EVERY_MS)
		return;
	c->pruned_ms = now_ms;
	n = credindex_prune(c->ix, now_ms);
	if (n > 0)
		log_info("credentials: forgot %zu tokens or credentials that ended over %lld days ago",
			 n, (long long)(CREDINDEX_FORGET_MS / (24 * 3600 * 1000LL)));
}

/* --- authentication ---------------------------------------------------- */

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
 * once (only ever more restrictive) and in the database through a job.
 */
static void retire_predecessor(struct credentials *c, int64_t new_id,
			       int64_t now_ms)
{
	int64_t old_id = credindex_retire(c->ix, new_id, now_ms);
	struct retire_job *j;

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
	int64_t retire = 0;
	int r = credindex_authenticate(c->ix, secret, now_ms, ret, &retire);

	if (retire != 0)
		retire_predecessor(c, ret->credential_id, now_ms);
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
	bool refused; /* fail() was called: err says why */
	char err[384];
};

static int fail(struct change *ch, int r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Inside a job: refuse the change with a message for the client. */
static int fail(struct change *ch, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ch->err, sizeof(ch->err), fmt, ap);
	va_end(ap);
	ch->refused = true;
	return writer_refuse(r);
}

/*
 * Run a change job and hand back its message; store failures get one too
 * (and are -EIO, whatever SQLite said, so that their codes never pass for
 * a refusal).  then applies the change to the index in commit order.  An
 * HTTP thread waits a second at most for room in the writer's queue.
 */
static int run_change(struct change *ch, writer_fn fn, writer_done_fn then,
		      void *job, char *err, size_t errlen)
{
	int r = writer_run_then(ch->c->w, fn, then, job, 1000);

	if (r >= 0)
		return r;
	if (r == -EAGAIN || r == -ESHUTDOWN) {
		snprintf(ch->err, sizeof(ch->err),
			 "the collector is busy: its store queue is full");
		r = -EAGAIN;
	} else if (!ch->refused) {
		snprintf(ch->err, sizeof(ch->err), "the store failed: %s",
			 strerror(-r));
		r = -EIO;
	}
	strlcpy_safe(err, ch->err, errlen);
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
	const char *hosts;
	int64_t expires_ms, max_uses;
	uint8_t hash[TOKEN_HASH_LEN];
	int64_t id;
};

static int token_create_apply(struct store *st, void *arg)
{
	struct token_create_job *j = arg;
	sqlite3_stmt *s = j->ch.c->stmt[STMT_TOKEN_INSERT];
	char at[TIME_RFC3339_LEN], detail[512];
	size_t len;
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
	db_bind_text(s, 7, j->hosts);
	r = db_step_done(s);
	if (r < 0)
		return r;
	j->id = sqlite3_last_insert_rowid(store_db(st));
	time_format_rfc3339(j->expires_ms, at);
	snprintf(detail, sizeof(detail), "customer %s, expires %s", j->customer,
		 at);
	len = strlen(detail);
	if (j->max_uses > 0)
		snprintf(detail + len, sizeof(detail) - len,
			 ", at most %lld uses", (long long)j->max_uses);
	len = strlen(detail);
	if (j->hosts != NULL)
		snprintf(detail + len, sizeof(detail) - len,
			 ", hosts matching '%s'", j->hosts);
	return audit_change(&j->ch, "enrollment_token.create",
			    "enrollment token", j->id, detail);
}

/* In commit order: the token can be used from now on. */
static void token_create_then(void *arg, int result)
{
	struct token_create_job *j = arg;
	struct credindex_row row = { .kind = CREDINDEX_TOKEN,
				     .id = j->id,
				     .customer = j->customer,
				     .expires_ms = j->expires_ms,
				     .max_uses = j->max_uses };

	if (result < 0)
		return;
	memcpy(row.hash, j->hash, TOKEN_HASH_LEN);
	credindex_add(j->ch.c->ix, &row);
	maybe_prune(j->ch.c, j->ch.now_ms);
}

int credentials_token_create_for(struct credentials *c, const char *customer,
				 const char *hosts, int64_t expires_ms,
				 int64_t max_uses, const char *actor,
				 int64_t now_ms, struct credential_issued *ret,
				 char *err, size_t errlen)
{
	struct token_create_job j = {
		.ch = { .c = c, .now_ms = now_ms, .actor = actor },
		.customer = customer,
		.hosts = hosts,
		.expires_ms = expires_ms,
		.max_uses = max_uses,
	};
	struct credential_issued out = { .expires_ms = expires_ms };
	int r;

	secret_new(TOKEN_PREFIX, out.secret, sizeof(out.secret), j.hash);
	r = run_change(&j.ch, token_create_apply, token_create_then, &j, err,
		       errlen);
	if (r < 0) {
		sodium_memzero(&out, sizeof(out));
		return r;
	}
	out.id = j.id;
	*ret = out;
	return 0;
}

int credentials_token_create(struct credentials *c, const char *customer,
			     int64_t expires_ms, int64_t max_uses,
			     const char *actor, int64_t now_ms,
			     struct credential_issued *ret, char *err,
			     size_t errlen)
{
	return credentials_token_create_for(c, customer, NULL, expires_ms,
					    max_uses, actor, now_ms, ret, err,
					    errlen);
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

static void token_revoke_then(void *arg, int result)
{
	struct revoke_job *j = arg;

	if (result < 0)
		return;
	credindex_revoke(j->ch.c->ix, CREDINDEX_TOKEN, j->id, j->ch.now_ms,
			 "revoked");
	maybe_prune(j->ch.c, j->ch.now_ms);
}

int credentials_token_revoke(struct credentials *c, int64_t id,
			     const char *actor, int64_t now_ms, char *err,
			     size_t errlen)
{
	struct revoke_job j = {
		.ch = { .c = c, .now_ms = now_ms, .actor = actor },
		.id = id,
	};

	return run_change(&j.ch, token_revoke_apply, token_revoke_then, &j,
			  err, errlen);
}

struct enroll_job {
	struct change ch;
	int64_t token_id;
	const char *customer;
	const char *host;
	const char *inventory_owner; /* the inventory's customer of host, or NULL */
	int64_t live_window_ms;
	uint8_t hash[TOKEN_HASH_LEN];
	int64_t id, uses;
	int64_t approval;    /* the approval this enrollment uses, or 0 */
	struct ids replaced; /* earlier credentials of the host */
};

/*
 * The token again, inside the transaction: another enrollment may have
 * used it up since the request was authenticated.  A token for some host
 * names only refuses others.
 */
static int enroll_check_token(struct enroll_job *j)
{
	sqlite3_stmt *s = j->ch.c->stmt[STMT_TOKEN_GET];
	long long id = (long long)j->token_id;
	int64_t expires, max_uses, uses, revoked;
	char hosts[256] = "";
	bool any_host;
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
	any_host = sqlite3_column_type(s, 4) == SQLITE_NULL;
	strlcpy_safe(hosts, column_text(s, 4), sizeof(hosts));
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
	if (!any_host && fnmatch(hosts, j->host, 0) != 0)
		return fail(&j->ch, -EPERM,
			    "enrollment token %lld may only enroll hosts matching '%s', not %s",
			    id, hosts, j->host);
	return 0;
}

/* "(credential 17)" or "(since 2026-11-22T10:00:00.000Z)": why host is owner's. */
static int owner_evidence(struct enroll_job *j, int64_t since_ms, char *buf,
			  size_t size)
{
	sqlite3_stmt *s = j->ch.c->stmt[STMT_HOST_ACTIVE];
	char at[TIME_RFC3339_LEN];
	int rc;

	db_bind_text(s, 1, j->host);
	sqlite3_bind_int64(s, 2, j->ch.now_ms);
	db_bind_text(s, 3, j->customer);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		snprintf(buf, size, "credential %lld",
			 (long long)sqlite3_column_int64(s, 0));
	} else {
		time_format_rfc3339(since_ms, at);
		snprintf(buf, size, "since %s", at);
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sqlite_to_errno(rc);
}

/*
 * The host's usable credentials: whether there is one, and the latest
 * use of any of them since the collector started (*ret_used_ms, 0 if
 * none, by *ret_used_id).
 */
static int host_credentials_used(struct enroll_job *j, bool *ret_active,
				 int64_t *ret_used_ms, int64_t *ret_used_id)
{
	sqlite3_stmt *s = j->ch.c->stmt[STMT_HOST_CREDENTIALS];
	int rc;

	*ret_active = false;
	*ret_used_ms = *ret_used_id = 0;
	db_bind_text(s, 1, j->host);
	sqlite3_bind_int64(s, 2, j->ch.now_ms);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(s, 0);
		int64_t used = credindex_last_used(j->ch.c->ix, id);

		*ret_active = true;
		if (used > *ret_used_ms) {
			*ret_used_ms = used;
			*ret_used_id = id;
		}
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_DONE ? 0 : sqlite_to_errno(rc);
}

/*
 * Is the host in use, so that enrolling it again would cut an agent off?
 * Its credential was used within the window, or it reported within it
 * (the hosts table, which survives restarts) while it has a credential
 * or belongs to nobody (then it reports with a shared token, and who it
 * belongs to is not ours to guess).  0 when not, 1 with why in buf.
 */
static int enroll_host_live(struct enroll_job *j, bool owned, char *buf,
			    size_t size)
{
	int64_t since = j->ch.now_ms - j->live_window_ms;
	int64_t used = 0, used_id = 0, seen = 0;
	char ago[32];
	bool active;
	int r;

	r = host_credentials_used(j, &active, &used, &used_id);
	if (r < 0)
		return r;
	if (used_id != 0 && used >= since) {
		format_duration((j->ch.now_ms - used) / 1000, ago, sizeof(ago));
		snprintf(buf, size, "its credential %lld was used %s ago",
			 (long long)used_id, ago);
		return 1;
	}
	r = hostclaim_last_seen(j->ch.c->claims, j->host, &seen);
	if (r < 0)
		return r;
	if (r == 0 || seen < since || (!active && owned))
		return 0;
	format_duration((j->ch.now_ms - seen) / 1000, ago, sizeof(ago));
	snprintf(buf, size, "it reported %s ago%s", ago,
		 owned ? "" : " and belongs to no customer yet");
	return 1;
}

/*
 * Who the host belongs to, and whether this enrollment may take it: the
 * inventory's customer (checked before, on the HTTP thread), else the
 * claim.  Moving a host to another customer, and enrolling a host in use
 * again, need an administrator's approval, which j->approval records.
 */
static int enroll_check_claim(struct enroll_job *j)
{
	char owner[CUSTOMER_ID_MAX + 1] = "", evidence[64], why[160];
	int64_t since = 0;
	bool owned;
	int r;

	if (j->inventory_owner != NULL) {
		strlcpy_safe(owner, j->inventory_owner, sizeof(owner));
		r = 1;
	} else {
		r = hostclaim_owner(j->ch.c->claims, j->host, owner,
				    sizeof(owner), &since);
	}
	if (r < 0)
		return r;
	owned = r == 1;
	if (owned && strcmp(owner, j->customer) != 0) {
		r = hostclaim_find_approval(j->ch.c->claims, j->host,
					    j->customer, true, j->ch.now_ms,
					    &j->approval);
		if (r != 0)
			return r < 0 ? r : 0;
		r = owner_evidence(j, since, evidence, sizeof(evidence));
		if (r < 0)
			return r;
		return fail(&j->ch, -EEXIST,
			    "host %s belongs to customer %s (%s); an administrator can move it to %s with: tocsin enrollment approve %s --customer %s",
			    j->host, owner, evidence, j->customer, j->host,
			    j->customer);
	}
	if (j->live_window_ms <= 0)
		return 0;
	r = enroll_host_live(j, owned, why, sizeof(why));
	if (r <= 0)
		return r;
	r = hostclaim_find_approval(j->ch.c->claims, j->host, j->customer,
				    false, j->ch.now_ms, &j->approval);
	if (r != 0)
		return r < 0 ? r : 0;
	return fail(&j->ch, -EEXIST,
		    "host %s is in use: %s; enrolling it again would cut its agent off. Rotate with the current credential (tocsin-agent rotate-credential), or have an administrator approve it: tocsin enrollment approve %s",
		    j->host, why, j->host);
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

/* Count the token's use; its new count in j->uses. */
static int enroll_use_token(struct enroll_job *j)
{
	sqlite3_stmt *use = j->ch.c->stmt[STMT_TOKEN_USE];
	int rc;

	sqlite3_bind_int64(use, 1, j->token_id);
	rc = sqlite3_step(use);
	if (rc == SQLITE_ROW)
		j->uses = sqlite3_column_int64(use, 0);
	while (rc == SQLITE_ROW)
		rc = sqlite3_step(use);
	sqlite3_reset(use);
	sqlite3_clear_bindings(use);
	return rc == SQLITE_DONE ? 0 : sqlite_to_errno(rc);
}

static int enroll_audit(struct enroll_job *j)
{
	char detail[512];
	size_t len;

	snprintf(detail, sizeof(detail), "host %s of customer %s", j->host,
		 j->customer);
	for (size_t i = 0; i < j->replaced.n; i++) {
		len = strlen(detail);
		snprintf(detail + len, sizeof(detail) - len, "%s%lld",
			 i == 0 ? "; replaces credential " : ", ",
			 (long long)j->replaced.v[i]);
	}
	len = strlen(detail);
	if (j->approval != 0)
		snprintf(detail + len, sizeof(detail) - len,
			 "; approved by enrollment approval %lld",
			 (long long)j->approval);
	return audit_change(&j->ch, "enroll", "credential", j->id, detail);
}

static int enroll_apply(struct store *st, void *arg)
{
	struct enroll_job *j = arg;
	int r;

	(void)st;
	r = enroll_check_token(j);
	if (r == 0)
		r = enroll_check_claim(j);
	if (r == 0)
		r = enroll_replace_earlier(j);
	if (r == 0)
		r = insert_credential(&j->ch, j->host, j->customer, j->hash,
				      j->token_id, &j->id);
	if (r == 0)
		r = enroll_use_token(j);
	if (r == 0)
		r = hostclaim_claim(j->ch.c->claims, j->host, j->customer,
				    j->ch.now_ms, j->ch.actor);
	if (r == 0 && j->approval != 0)
		r = hostclaim_use_approval(j->ch.c->claims, j->approval,
					   j->ch.now_ms, j->id);
	if (r == 0)
		r = enroll_audit(j);
	return r;
}

/* In commit order: the earlier credentials end, the new one works. */
static void enroll_then(void *arg, int result)
{
	struct enroll_job *j = arg;
	struct credentials *c = j->ch.c;
	struct credindex_row row = { .kind = CREDINDEX_CREDENTIAL,
				     .id = j->id,
				     .host = j->host,
				     .customer = j->customer };

	if (result < 0)
		return;
	for (size_t i = 0; i < j->replaced.n; i++)
		credindex_revoke(c->ix, CREDINDEX_CREDENTIAL, j->replaced.v[i],
				 j->ch.now_ms, "reenrolled");
	memcpy(row.hash, j->hash, TOKEN_HASH_LEN);
	credindex_add(c->ix, &row);
	credindex_set_uses(c->ix, j->token_id, j->uses);
	maybe_prune(c, j->ch.now_ms);
}

int credentials_enroll(struct credentials *c, const struct principal *p,
		       const char *host, const struct inventory *inv,
		       int64_t now_ms, struct credential_issued *ret,
		       char *err, size_t errlen)
{
	const struct host *known = inventory_host(inv, host);
	struct enroll_job j = {
		.ch = { .c = c, .now_ms = now_ms, .actor = p->name },
		.token_id = p->credential_id,
		.customer = p->customer,
		.host = host,
		.inventory_owner = known && known->customer ? known->customer->id
							    : NULL,
		.live_window_ms = atomic_load(&c->live_window_ms),
	};
	struct credential_issued out = { 0 };
	int r;

	if (j.inventory_owner != NULL &&
	    strcmp(j.inventory_owner, p->customer) != 0) {
		snprintf(err, errlen,
			 "host %s belongs to customer %s in the inventory, not to %s",
			 host, j.inventory_owner, p->customer);
		return -EEXIST;
	}
	secret_new(CREDENTIAL_PREFIX, out.secret, sizeof(out.secret), j.hash);
	r = run_change(&j.ch, enroll_apply, enroll_then, &j, err, errlen);
	free(j.replaced.v);
	if (r < 0) {
		sodium_memzero(&out, sizeof(out));
		return r;
	}
	out.id = j.id;
	*ret = out;
	return 0;
}

struct rotate_job {
	struct change ch;
	int64_t old_id;
	int64_t interval_ms;
	uint8_t hash[TOKEN_HASH_LEN];
	char host[256], customer[CUSTOMER_ID_MAX + 1];
	int64_t id, superseded, old_expires_ms;
};

/* The credential being rotated, as the database has it now. */
static int rotate_read_old(struct rotate_job *j, int64_t *ret_expires)
{
	sqlite3_stmt *s = j->ch.c->stmt[STMT_CREDENTIAL_GET];
	int64_t revoked = 0, expires = 0;
	int rc;

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
	*ret_expires = expires;
	return 0;
}

/*
 * At most one rotation per host per interval, so that a credential cannot
 * mint credentials (and audit rows, and index entries) as fast as it can
 * post: -EDQUOT when the host's newest rotated credential is too recent.
 */
static int rotate_check_rate(struct rotate_job *j)
{
	sqlite3_stmt *s = j->ch.c->stmt[STMT_HOST_LAST_ROTATION];
	int64_t last = 0, wait_s;
	int rc;

	db_bind_text(s, 1, j->host);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		last = column_or_zero(s, 0);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc != SQLITE_ROW)
		return sqlite_to_errno(rc);
	if (last == 0 || j->ch.now_ms - last >= j->interval_ms)
		return 0;
	wait_s = (last + j->interval_ms - j->ch.now_ms + 999) / 1000;
	return fail(&j->ch, -EDQUOT,
		    "host %s rotated its credential less than %lld s ago; rotate again in %lld s",
		    j->host, (long long)(j->interval_ms / 1000), (long long)wait_s);
}

static int rotate_apply(struct store *st, void *arg)
{
	struct rotate_job *j = arg;
	struct credentials *c = j->ch.c;
	char detail[512], at[TIME_RFC3339_LEN];
	int64_t expires = 0;
	sqlite3_stmt *s;
	int r;

	(void)st;
	r = rotate_read_old(j, &expires);
	if (r == 0)
		r = rotate_check_rate(j);
	if (r < 0)
		return r;
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

/* In commit order: the successor works, the old one waits for its use. */
static void rotate_then(void *arg, int result)
{
	struct rotate_job *j = arg;
	struct credentials *c = j->ch.c;
	struct credindex_row row = { .kind = CREDINDEX_CREDENTIAL,
				     .id = j->id,
				     .host = j->host,
				     .customer = j->customer,
				     .predecessor = j->old_id };

	if (result < 0)
		return;
	if (j->superseded != 0)
		credindex_revoke(c->ix, CREDINDEX_CREDENTIAL, j->superseded,
				 j->ch.now_ms, "superseded");
	credindex_replace(c->ix, j->old_id, j->id, j->old_expires_ms);
	memcpy(row.hash, j->hash, TOKEN_HASH_LEN);
	credindex_add(c->ix, &row);
	maybe_prune(c, j->ch.now_ms);
}

int credentials_rotate(struct credentials *c, const struct principal *p,
		       int64_t now_ms, struct credential_issued *ret,
		       char *err, size_t errlen)
{
	struct rotate_job j = {
		.ch = { .c = c, .now_ms = now_ms, .actor = p->name },
		.old_id = p->credential_id,
		.interval_ms = atomic_load(&c->rotate_interval_ms),
	};
	struct credential_issued out = { 0 };
	int r;

	secret_new(CREDENTIAL_PREFIX, out.secret, sizeof(out.secret), j.hash);
	r = run_change(&j.ch, rotate_apply, rotate_then, &j, err, errlen);
	if (r < 0) {
		sodium_memzero(&out, sizeof(out));
		return r;
	}
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

static void credential_revoke_then(void *arg, int result)
{
	struct revoke_job *j = arg;

	if (result < 0)
		return;
	for (size_t i = 0; i < j->revoked.n; i++)
		credindex_revoke(j->ch.c->ix, CREDINDEX_CREDENTIAL,
				 j->revoked.v[i], j->ch.now_ms, "revoked");
	maybe_prune(j->ch.c, j->ch.now_ms);
}

int credentials_revoke(struct credentials *c, int64_t id, const char *actor,
		       int64_t now_ms, char *err, size_t errlen)
{
	struct revoke_job j = {
		.ch = { .c = c, .now_ms = now_ms, .actor = actor },
		.id = id,
	};
	int r = run_change(&j.ch, credential_revoke_apply,
			   credential_revoke_then, &j, err, errlen);

	free(j.revoked.v);
	return r;
}

struct approve_job {
	struct change ch;
	const char *host;
	const char *customer;
	int64_t expires_ms;
	int64_t id;
};

static int approve_apply(struct store *st, void *arg)
{
	struct approve_job *j = arg;
	char at[TIME_RFC3339_LEN], detail[384];
	int r;

	(void)st;
	r = hostclaim_approve(j->ch.c->claims, j->host, j->customer,
			      j->ch.now_ms, j->expires_ms, j->ch.actor, &j->id);
	if (r < 0)
		return r;
	time_format_rfc3339(j->expires_ms, at);
	if (j->customer != NULL)
		snprintf(detail, sizeof(detail),
			 "the next enrollment of host %s, into customer %s, until %s",
			 j->host, j->customer, at);
	else
		snprintf(detail, sizeof(detail),
			 "the next enrollment of host %s, until %s", j->host, at);
	return audit_change(&j->ch, "enrollment.approve", "enrollment approval",
			    j->id, detail);
}

int credentials_approve(struct credentials *c, const char *host,
			const char *customer, int64_t expires_ms,
			const char *actor, int64_t now_ms, int64_t *ret_id,
			char *err, size_t errlen)
{
	struct approve_job j = {
		.ch = { .c = c, .now_ms = now_ms, .actor = actor },
		.host = host,
		.customer = customer,
		.expires_ms = expires_ms,
	};
	int r = run_change(&j.ch, approve_apply, NULL, &j, err, errlen);

	if (r == 0)
		*ret_id = j.id;
	return r;
}
