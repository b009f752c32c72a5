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
#include "account.h"
#include "audit.h"
#include "credentials_private.h"
#include "credindex.h"
#include "hostclaim.h"
#include "inventory.h"
#include "server.h"
#include "session.h"
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

int64_t credentials_column_int(sqlite3_stmt *s, int col)
{
	return sqlite3_column_type(s, col) == SQLITE_NULL
		       ? 0
		       : sqlite3_column_int64(s, col);
}

const char *credentials_column_text(sqlite3_stmt *s, int col)
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
		row->customer = credentials_column_text(s, 2);
		row->expires_ms = credentials_column_int(s, 3);
		row->max_uses = credentials_column_int(s, 4);
		row->uses = sqlite3_column_int64(s, 5);
		row->revoked_ms = credentials_column_int(s, 6);
		row->reason = "revoked";
	} else {
		row->host = credentials_column_text(s, 2);
		row->customer = credentials_column_text(s, 3);
		row->expires_ms = credentials_column_int(s, 4);
		row->revoked_ms = credentials_column_int(s, 5);
		row->reason = credentials_column_text(s, 6);
		row->replaced_by = credentials_column_int(s, 7);
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
static int load_kind(struct credentials *c, enum credentials_stmt which,
		     enum credindex_kind kind, int64_t now_ms)
{
	sqlite3_stmt *s = c->stmt[which];
	struct credindex_row row;
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		row_of(s, kind, &row);
		if (credindex_keeps(row_end(&row, now_ms), now_ms))
			credindex_load(c->ix, &row);
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
	credindex_load_finish(c->ix);
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
void credentials_maybe_prune(struct credentials *c, int64_t now_ms)
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
void credentials_secret_new(const char *prefix, char *out, size_t size,
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

/* Inside a job: refuse the change with a message for the client. */
int credentials_fail(struct change *ch, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(ch->err, sizeof(ch->err), fmt, ap);
	va_end(ap);
	ch->refused = true;
	return writer_refuse(r);
}

/* A change job behind the check of who makes it. */
struct checked_change {
	struct change *ch;
	writer_fn fn;
	writer_done_fn then;
	void *job;
};

/* Writer job: the change, if its actor may still make it. */
static int checked_apply(struct store *st, void *arg)
{
	struct checked_change *k = arg;
	int r = k->ch->by ? session_check_actor(k->ch->by) : 0;

	if (r == -ESTALE || r == -EKEYREVOKED)
		return credentials_fail(k->ch, r, "%s",
					r == -ESTALE ? SESSION_ACTOR_CHANGED
						     : SESSION_ACTOR_ENDED);
	if (r < 0)
		return r;
	return k->fn(st, k->job);
}

static void checked_then(void *arg, int result)
{
	struct checked_change *k = arg;

	if (k->then != NULL)
		k->then(k->job, result);
}

/*
 * Run a change job and hand back its message; store failures get one too
 * (and are -EIO, whatever SQLite said, so that their codes never pass for
 * a refusal).  then applies the change to the index in commit order.  An
 * HTTP thread waits a second at most for room in the writer's queue.
 */
int credentials_run_change(struct change *ch, writer_fn fn, writer_done_fn then,
		      void *job, char *err, size_t errlen)
{
	struct checked_change k = { .ch = ch, .fn = fn, .then = then,
				    .job = job };
	int r = writer_run_then(ch->c->w, checked_apply, checked_then, &k, 1000);

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
int credentials_audit_change(struct change *ch, const char *action,
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
	return credentials_audit_change(&j->ch, "enrollment_token.create",
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
	credentials_maybe_prune(j->ch.c, j->ch.now_ms);
}

int credentials_token_create_for(struct credentials *c, const char *customer,
				 const char *hosts, int64_t expires_ms,
				 int64_t max_uses, const struct actor *actor,
				 int64_t now_ms, struct credential_issued *ret,
				 char *err, size_t errlen)
{
	struct token_create_job j = {
		.ch = { .c = c, .now_ms = now_ms, .actor = actor->name,
			.by = actor },
		.customer = customer,
		.hosts = hosts,
		.expires_ms = expires_ms,
		.max_uses = max_uses,
	};
	struct credential_issued out = { .expires_ms = expires_ms };
	int r;

	credentials_secret_new(TOKEN_PREFIX, out.secret, sizeof(out.secret), j.hash);
	r = credentials_run_change(&j.ch, token_create_apply, token_create_then, &j, err,
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
			     const struct actor *actor, int64_t now_ms,
			     struct credential_issued *ret, char *err,
			     size_t errlen)
{
	return credentials_token_create_for(c, customer, NULL, expires_ms,
					    max_uses, actor, now_ms, ret, err,
					    errlen);
}

void credentials_ids_add(struct ids *ids, int64_t id)
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
		return credentials_fail(ch, -ENOENT, "no %s %lld", what, (long long)id);
	if (rc != SQLITE_ROW)
		return sqlite_to_errno(rc);
	return credentials_fail(ch, -EALREADY, "%s %lld was already revoked", what,
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
	return credentials_audit_change(&j->ch, "enrollment_token.revoke",
			    "enrollment token", j->id, NULL);
}

static void token_revoke_then(void *arg, int result)
{
	struct revoke_job *j = arg;

	if (result < 0)
		return;
	credindex_revoke(j->ch.c->ix, CREDINDEX_TOKEN, j->id, j->ch.now_ms,
			 "revoked");
	credentials_maybe_prune(j->ch.c, j->ch.now_ms);
}

int credentials_token_revoke(struct credentials *c, int64_t id,
			     const struct actor *actor, int64_t now_ms,
			     char *err, size_t errlen)
{
	struct revoke_job j = {
		.ch = { .c = c, .now_ms = now_ms, .actor = actor->name,
			.by = actor },
		.id = id,
	};

	return credentials_run_change(&j.ch, token_revoke_apply, token_revoke_then, &j,
			  err, errlen);
}

int credentials_insert_credential(struct change *ch, const char *host,
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
		strlcpy_safe(j->host, credentials_column_text(s, 0), sizeof(j->host));
		strlcpy_safe(j->customer, credentials_column_text(s, 1), sizeof(j->customer));
		expires = credentials_column_int(s, 2);
		revoked = credentials_column_int(s, 3);
		j->superseded = credentials_column_int(s, 4);
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc != SQLITE_ROW)
		return rc == SQLITE_DONE ? credentials_fail(&j->ch, -EACCES, "no credential %lld",
						(long long)j->old_id)
					 : sqlite_to_errno(rc);
	if (revoked != 0 || (expires != 0 && j->ch.now_ms >= expires))
		return credentials_fail(&j->ch, -EACCES, "credential %lld can no longer be used",
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
		last = credentials_column_int(s, 0);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc != SQLITE_ROW)
		return sqlite_to_errno(rc);
	if (last == 0 || j->ch.now_ms - last >= j->interval_ms)
		return 0;
	wait_s = (last + j->interval_ms - j->ch.now_ms + 999) / 1000;
	return credentials_fail(&j->ch, -EDQUOT,
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
	r = credentials_insert_credential(&j->ch, j->host, j->customer, j->hash, 0, &j->id);
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
	return credentials_audit_change(&j->ch, "credential.rotate", "credential",
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
	credentials_maybe_prune(c, j->ch.now_ms);
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

	credentials_secret_new(CREDENTIAL_PREFIX, out.secret, sizeof(out.secret), j.hash);
	r = credentials_run_change(&j.ch, rotate_apply, rotate_then, &j, err, errlen);
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
		credentials_ids_add(&j->revoked, sqlite3_column_int64(s, 0));
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
	return credentials_audit_change(&j->ch, "credential.revoke", "credential",
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
	credentials_maybe_prune(j->ch.c, j->ch.now_ms);
}

int credentials_revoke(struct credentials *c, int64_t id,
		       const struct actor *actor, int64_t now_ms, char *err,
		       size_t errlen)
{
	struct revoke_job j = {
		.ch = { .c = c, .now_ms = now_ms, .actor = actor->name,
			.by = actor },
		.id = id,
	};
	int r = credentials_run_change(&j.ch, credential_revoke_apply,
			   credential_revoke_then, &j, err, errlen);

	free(j.revoked.v);
	return r;
}
