#include "credindex.h"

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"

/* One secret the collector knows. */
struct entry {
	uint8_t hash[TOKEN_HASH_LEN];
	enum credindex_kind kind;
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
	/* Written under the read lock by concurrent requests, hence atomic. */
	atomic_int_fast64_t last_used_ms;
	uint64_t seq; /* when added: of two with one id, the later stays */
};

/* A growable array of entries, sorted by hash or by id. */
struct entries {
	struct entry **v;
	size_t n, cap;
};

struct credindex {
	pthread_rwlock_t lock;
	uint64_t seq;
	struct entries by_hash;
	struct entries credentials; /* by id */
	struct entries tokens;	    /* by id */
};

static void entry_free(struct entry *e)
{
	if (e == NULL)
		return;
	free(e->host);
	free(e->customer);
	free(e);
}

struct credindex *credindex_new(void)
{
	struct credindex *ix = xcalloc(1, sizeof(*ix));

	pthread_rwlock_init(&ix->lock, NULL);
	return ix;
}

void credindex_free(struct credindex *ix)
{
	if (ix == NULL)
		return;
	for (size_t i = 0; i < ix->by_hash.n; i++)
		entry_free(ix->by_hash.v[i]);
	free(ix->by_hash.v);
	free(ix->credentials.v);
	free(ix->tokens.v);
	pthread_rwlock_destroy(&ix->lock);
	free(ix);
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

static void entries_remove(struct entries *a, size_t pos)
{
	memmove(&a->v[pos], &a->v[pos + 1], (a->n - pos - 1) * sizeof(*a->v));
	a->n--;
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

static struct entry *find_hash(const struct credindex *ix, const uint8_t *hash)
{
	size_t pos = hash_position(&ix->by_hash, hash);

	if (pos < ix->by_hash.n &&
	    sodium_memcmp(ix->by_hash.v[pos]->hash, hash, TOKEN_HASH_LEN) == 0)
		return ix->by_hash.v[pos];
	return NULL;
}

/* The position of id in a (sorted by id), or where it would go. */
static size_t id_position(const struct entries *a, int64_t id)
{
	size_t lo = 0, hi = a->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (a->v[mid]->id < id)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static struct entries *by_id(struct credindex *ix, enum credindex_kind kind)
{
	return kind == CREDINDEX_TOKEN ? &ix->tokens : &ix->credentials;
}

static struct entry *find_id(struct credindex *ix, enum credindex_kind kind,
			     int64_t id)
{
	struct entries *a = by_id(ix, kind);
	size_t pos = id_position(a, id);

	return pos < a->n && a->v[pos]->id == id ? a->v[pos] : NULL;
}

/* Take e out of both arrays; the caller holds the write lock. */
static void unlink_entry(struct credindex *ix, struct entry *e)
{
	struct entries *a = by_id(ix, e->kind);
	size_t pos = hash_position(&ix->by_hash, e->hash);

	while (pos < ix->by_hash.n && ix->by_hash.v[pos] != e)
		pos++;
	if (pos < ix->by_hash.n)
		entries_remove(&ix->by_hash, pos);
	pos = id_position(a, e->id);
	if (pos < a->n && a->v[pos] == e)
		entries_remove(a, pos);
}

/* A new entry with a copy of row's strings. */
static struct entry *entry_of(const struct credindex_row *row)
{
	struct entry *e = xcalloc(1, sizeof(*e));

	memcpy(e->hash, row->hash, TOKEN_HASH_LEN);
	e->kind = row->kind;
	e->id = row->id;
	e->host = row->host ? xstrdup(row->host) : NULL;
	e->customer = xstrdup(row->customer ? row->customer : "");
	e->expires_ms = row->expires_ms;
	e->revoked_ms = row->revoked_ms;
	strlcpy_safe(e->reason, row->reason ? row->reason : "", sizeof(e->reason));
	e->replaced_by = row->replaced_by;
	e->predecessor = row->predecessor;
	e->max_uses = row->max_uses;
	e->uses = row->uses;
	return e;
}

void credindex_add(struct credindex *ix, const struct credindex_row *row)
{
	struct entry *e = entry_of(row), *old;
	struct entries *a = by_id(ix, row->kind);

	pthread_rwlock_wrlock(&ix->lock);
	e->seq = ix->seq++;
	old = find_id(ix, row->kind, row->id);
	if (old != NULL) {
		unlink_entry(ix, old);
		entry_free(old);
	}
	entries_insert(a, id_position(a, e->id), e);
	entries_insert(&ix->by_hash, hash_position(&ix->by_hash, e->hash), e);
	pthread_rwlock_unlock(&ix->lock);
}

void credindex_load(struct credindex *ix, const struct credindex_row *row)
{
	struct entry *e = entry_of(row);
	struct entries *a = by_id(ix, row->kind);

	pthread_rwlock_wrlock(&ix->lock);
	e->seq = ix->seq++;
	entries_insert(a, a->n, e);
	pthread_rwlock_unlock(&ix->lock);
}

static int id_seq_order(const void *pa, const void *pb)
{
	const struct entry *a = *(const struct entry *const *)pa;
	const struct entry *b = *(const struct entry *const *)pb;

	if (a->id != b->id)
		return a->id < b->id ? -1 : 1;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

static int hash_order(const void *pa, const void *pb)
{
	const struct entry *a = *(const struct entry *const *)pa;
	const struct entry *b = *(const struct entry *const *)pb;
	int c = memcmp(a->hash, b->hash, TOKEN_HASH_LEN);

	if (c != 0)
		return c;
	return a->seq < b->seq ? -1 : a->seq > b->seq;
}

/* Sort a by id, keeping the latest entry of each id (the others freed). */
static void entries_sort_unique(struct entries *a)
{
	size_t kept = 0;

	if (a->n == 0)
		return;
	qsort(a->v, a->n, sizeof(*a->v), id_seq_order);
	for (size_t i = 0; i < a->n; i++) {
		if (i + 1 < a->n && a->v[i + 1]->id == a->v[i]->id) {
			entry_free(a->v[i]);
			continue;
		}
		a->v[kept++] = a->v[i];
	}
	a->n = kept;
}

static void entries_append_all(struct entries *to, const struct entries *from)
{
	for (size_t i = 0; i < from->n; i++)
		entries_insert(to, to->n, from->v[i]);
}

void credindex_load_finish(struct credindex *ix)
{
	pthread_rwlock_wrlock(&ix->lock);
	entries_sort_unique(&ix->tokens);
	entries_sort_unique(&ix->credentials);
	ix->by_hash.n = 0;
	entries_append_all(&ix->by_hash, &ix->tokens);
	entries_append_all(&ix->by_hash, &ix->credentials);
	if (ix->by_hash.n > 0)
		qsort(ix->by_hash.v, ix->by_hash.n, sizeof(*ix->by_hash.v),
		      hash_order);
	pthread_rwlock_unlock(&ix->lock);
}

/* Revoke e; the caller holds the write lock. */
static void revoke_entry(struct entry *e, int64_t now_ms, const char *reason)
{
	if (e == NULL || e->revoked_ms != 0)
		return;
	e->revoked_ms = now_ms;
	strlcpy_safe(e->reason, reason, sizeof(e->reason));
}

void credindex_revoke(struct credindex *ix, enum credindex_kind kind,
		      int64_t id, int64_t now_ms, const char *reason)
{
	pthread_rwlock_wrlock(&ix->lock);
	revoke_entry(find_id(ix, kind, id), now_ms, reason);
	pthread_rwlock_unlock(&ix->lock);
}

void credindex_replace(struct credindex *ix, int64_t old_id, int64_t new_id,
		       int64_t old_expires_ms)
{
	struct entry *old;

	pthread_rwlock_wrlock(&ix->lock);
	old = find_id(ix, CREDINDEX_CREDENTIAL, old_id);
	if (old != NULL) {
		old->replaced_by = new_id;
		old->expires_ms = old_expires_ms;
	}
	pthread_rwlock_unlock(&ix->lock);
}

void credindex_set_uses(struct credindex *ix, int64_t token_id, int64_t uses)
{
	struct entry *t;

	pthread_rwlock_wrlock(&ix->lock);
	t = find_id(ix, CREDINDEX_TOKEN, token_id);
	if (t != NULL)
		t->uses = uses;
	pthread_rwlock_unlock(&ix->lock);
}

void credindex_link_rotations(struct credindex *ix)
{
	pthread_rwlock_wrlock(&ix->lock);
	for (size_t i = 0; i < ix->credentials.n; i++) {
		struct entry *old = ix->credentials.v[i], *next;

		if (old->replaced_by == 0 || old->revoked_ms != 0)
			continue;
		next = find_id(ix, CREDINDEX_CREDENTIAL, old->replaced_by);
		if (next != NULL && next->revoked_ms == 0)
			next->predecessor = old->id;
	}
	pthread_rwlock_unlock(&ix->lock);
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

/*
 * Remember the use.  Many requests write this at once under the read
 * lock; a second's precision is plenty, and skipping the store when it
 * would not change spares the cache line.
 */
static void note_use(struct entry *e, int64_t now_ms)
{
	int64_t last = atomic_load_explicit(&e->last_used_ms,
					    memory_order_relaxed);

	if (now_ms > last + 1000)
		atomic_store_explicit(&e->last_used_ms, now_ms,
				      memory_order_relaxed);
}

int credindex_authenticate(struct credindex *ix, const char *secret,
			   int64_t now_ms, struct principal *ret,
			   int64_t *ret_retire)
{
	struct principal p = { 0 };
	uint8_t hash[TOKEN_HASH_LEN];
	struct entry *e;
	int64_t retire = 0;
	int r;

	token_hash(secret, hash);
	pthread_rwlock_rdlock(&ix->lock);
	e = find_hash(ix, hash);
	if (e == NULL) {
		r = -ENOENT;
	} else if (e->kind == CREDINDEX_TOKEN) {
		r = check_token(e, now_ms, &p);
	} else {
		r = check_credential(e, now_ms, &p);
		if (r == 0) {
			retire = e->predecessor;
			note_use(e, now_ms);
		}
	}
	pthread_rwlock_unlock(&ix->lock);
	sodium_memzero(hash, sizeof(hash));
	if (r == -EACCES)
		strlcpy_safe(ret->denied, p.denied, sizeof(ret->denied));
	else if (r == 0)
		*ret = p;
	*ret_retire = r == 0 ? retire : 0;
	return r;
}

int64_t credindex_retire(struct credindex *ix, int64_t new_id, int64_t now_ms)
{
	struct entry *e;
	int64_t old_id = 0;

	pthread_rwlock_wrlock(&ix->lock);
	e = find_id(ix, CREDINDEX_CREDENTIAL, new_id);
	if (e != NULL && e->predecessor != 0) {
		old_id = e->predecessor;
		e->predecessor = 0;
		revoke_entry(find_id(ix, CREDINDEX_CREDENTIAL, old_id), now_ms,
			     "rotated");
	}
	pthread_rwlock_unlock(&ix->lock);
	return old_id;
}

int64_t credindex_last_used(struct credindex *ix, int64_t id)
{
	struct entry *e;
	int64_t at = 0;

	pthread_rwlock_rdlock(&ix->lock);
	e = find_id(ix, CREDINDEX_CREDENTIAL, id);
	if (e != NULL)
		at = atomic_load_explicit(&e->last_used_ms, memory_order_relaxed);
	pthread_rwlock_unlock(&ix->lock);
	return at;
}

/* --- pruning ------------------------------------------------------------- */

/* When e stopped being usable, or 0 while it still may be. */
static int64_t entry_end(const struct entry *e, int64_t now_ms)
{
	if (e->revoked_ms != 0)
		return e->revoked_ms;
	if (e->expires_ms != 0 && e->expires_ms <= now_ms)
		return e->expires_ms;
	return 0;
}

bool credindex_keeps(int64_t end_ms, int64_t now_ms)
{
	return end_ms == 0 || end_ms > now_ms - CREDINDEX_FORGET_MS;
}

/* Keep the entries of a that pass; frees nothing. */
static void entries_filter(struct entries *a, int64_t now_ms)
{
	size_t kept = 0;

	for (size_t i = 0; i < a->n; i++)
		if (credindex_keeps(entry_end(a->v[i], now_ms), now_ms))
			a->v[kept++] = a->v[i];
	a->n = kept;
}

size_t credindex_prune(struct credindex *ix, int64_t now_ms)
{
	size_t dropped = 0, kept = 0;

	pthread_rwlock_wrlock(&ix->lock);
	entries_filter(&ix->credentials, now_ms);
	entries_filter(&ix->tokens, now_ms);
	for (size_t i = 0; i < ix->by_hash.n; i++) {
		struct entry *e = ix->by_hash.v[i];

		if (credindex_keeps(entry_end(e, now_ms), now_ms)) {
			ix->by_hash.v[kept++] = e;
		} else {
			entry_free(e);
			dropped++;
		}
	}
	ix->by_hash.n = kept;
	pthread_rwlock_unlock(&ix->lock);
	return dropped;
}

size_t credindex_count(struct credindex *ix)
{
	size_t n;

	pthread_rwlock_rdlock(&ix->lock);
	n = ix->by_hash.n;
	pthread_rwlock_unlock(&ix->lock);
	return n;
}
