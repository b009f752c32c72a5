#include "session.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/config.h"
#include "../common/util.h"
#include "account.h"

#define SESSION_HASH_LEN 32
/* Failed-login counters kept at most for unknown names, and for networks. */
#define LOGIN_COUNTERS_MAX 4096
/* A counter's key: a name (NUL-padded), or a network (see network_key()). */
#define LOGIN_KEY_LEN (ACCOUNT_NAME_MAX + 1)

struct session {
	int64_t id; /* 0: a free slot */
	uint8_t hash[SESSION_HASH_LEN];
	char name[64];
	unsigned perms;
	char csrf[SESSION_SECRET_LEN];
	int64_t created_ms, seen_ms;
};

struct login_counter {
	uint8_t key[LOGIN_KEY_LEN];
	int64_t window_start_ms;
	int64_t failures; /* 0, or a window that ended: a free slot */
};

/* Counters of one kind, grown on demand up to max. */
struct login_table {
	struct login_counter *slots;
	size_t used, cap, max; /* slots[0, used) were handed out */
};

struct sessions {
	pthread_mutex_t lock;
	struct session *list;
	size_t n, cap;
	int64_t last_id;
	/*
	 * Failed logins, in three tables so that one kind of key cannot push
	 * another out: names of accounts (only a checked password of an
	 * account enters, so ACCOUNTS_MAX bound it), names that are no
	 * account (made up at will: the attacker's to churn), and client
	 * networks.
	 */
	struct login_table accounts, unknown, networks;
	struct session_stats stats; /* under lock */
};

void console_config_defaults(struct console_config *conf)
{
	*conf = (struct console_config){
		.idle_ms = 3600 * 1000LL,
		.absolute_ms = 12 * 3600 * 1000LL,
		.max_sessions = 1000,
		.login_failures = 5,
		.login_window_ms = 15 * 60 * 1000LL,
	};
}

void console_config_parse(struct cfg *cfg, const struct cfg_node *node,
			  struct console_config *conf)
{
	if (node == NULL || cfg_expect_map(cfg, node) < 0)
		return;
	cfg_get_duration(cfg, node, "session_idle", &conf->idle_ms);
	cfg_get_duration(cfg, node, "session_max", &conf->absolute_ms);
	cfg_get_int(cfg, node, "max_sessions", 1, 1000000, &conf->max_sessions);
	cfg_get_int(cfg, node, "login_failures", 1, 1000000,
		    &conf->login_failures);
	cfg_get_duration(cfg, node, "login_window", &conf->login_window_ms);
	if (conf->idle_ms < 1000)
		cfg_error(cfg, cfg_get(cfg, node, "session_idle"),
			  "session_idle must be at least 1s");
	if (conf->absolute_ms < conf->idle_ms)
		cfg_error(cfg, cfg_get(cfg, node, "session_max"),
			  "session_max must be at least session_idle");
	if (conf->login_window_ms < 1000)
		cfg_error(cfg, cfg_get(cfg, node, "login_window"),
			  "login_window must be at least 1s");
}

int sessions_new(struct sessions **ret)
{
	struct sessions *s = xcalloc(1, sizeof(*s));

	pthread_mutex_init(&s->lock, NULL);
	s->accounts.max = ACCOUNTS_MAX;
	s->unknown.max = LOGIN_COUNTERS_MAX;
	s->networks.max = LOGIN_COUNTERS_MAX;
	*ret = s;
	return 0;
}

void sessions_free(struct sessions *s)
{
	if (s == NULL)
		return;
	pthread_mutex_destroy(&s->lock);
	sodium_memzero(s->list, s->cap * sizeof(*s->list));
	free(s->list);
	free(s->accounts.slots);
	free(s->unknown.slots);
	free(s->networks.slots);
	free(s);
}

static void random_text(char out[SESSION_SECRET_LEN])
{
	uint8_t raw[32];

	randombytes_buf(raw, sizeof(raw));
	sodium_bin2base64(out, SESSION_SECRET_LEN, raw, sizeof(raw),
			  sodium_base64_VARIANT_URLSAFE_NO_PADDING);
	sodium_memzero(raw, sizeof(raw));
}

static void secret_hash(const char *secret, uint8_t out[SESSION_HASH_LEN])
{
	crypto_generichash(out, SESSION_HASH_LEN, (const uint8_t *)secret,
			   strlen(secret), NULL, 0);
}

static bool expired(const struct session *se, const struct console_config *conf,
		    int64_t now_ms)
{
	return now_ms - se->seen_ms >= conf->idle_ms ||
	       now_ms - se->created_ms >= conf->absolute_ms;
}

static void drop(struct sessions *s, size_t i)
{
	s->list[i] = s->list[--s->n];
	sodium_memzero(&s->list[s->n], sizeof(s->list[s->n]));
}

/* Under s->lock: room for one more, dropping expired ones, then the idlest. */
static void make_room(struct sessions *s, const struct console_config *conf,
		      int64_t now_ms)
{
	size_t idlest = 0;

	for (size_t i = s->n; i-- > 0;)
		if (expired(&s->list[i], conf, now_ms))
			drop(s, i);
	if (s->n > 0 && (int64_t)s->n >= conf->max_sessions) {
		for (size_t i = 1; i < s->n; i++)
			if (s->list[i].seen_ms < s->list[idlest].seen_ms)
				idlest = i;
		drop(s, idlest);
	}
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 16;
		s->list = xreallocarray(s->list, s->cap, sizeof(*s->list));
	}
}

void session_create(struct sessions *s, const struct console_config *conf,
		    const char *name, unsigned perms, int64_t now_ms,
		    struct session_issued *ret)
{
	struct session se = { .perms = perms, .created_ms = now_ms,
			      .seen_ms = now_ms };

	random_text(ret->secret);
	random_text(se.csrf);
	secret_hash(ret->secret, se.hash);
	strlcpy_safe(se.name, name, sizeof(se.name));
	memcpy(ret->csrf, se.csrf, sizeof(ret->csrf));
	ret->idle_expires_ms = now_ms + conf->idle_ms;
	ret->expires_ms = now_ms + conf->absolute_ms;
	pthread_mutex_lock(&s->lock);
	make_room(s, conf, now_ms);
	se.id = ++s->last_id;
	s->list[s->n++] = se;
	s->stats.logins++;
	pthread_mutex_unlock(&s->lock);
	sodium_memzero(&se, sizeof(se));
}

/* Under s->lock: the slot of hash, or -1. */
static ssize_t find_hash(const struct sessions *s, const uint8_t *hash)
{
	for (size_t i = 0; i < s->n; i++)
		if (sodium_memcmp(s->list[i].hash, hash, SESSION_HASH_LEN) == 0)
			return (ssize_t)i;
	return -1;
}

static ssize_t find_id(const struct sessions *s, int64_t id)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->list[i].id == id)
			return (ssize_t)i;
	return -1;
}

/* Constant time for tokens of the right length. */
static bool csrf_matches(const char *expected, const char *got)
{
	if (got == NULL || strlen(got) != strlen(expected))
		return false;
	return sodium_memcmp(expected, got, strlen(expected)) == 0;
}

int session_authenticate(struct sessions *s, const struct console_config *conf,
			 const char *cookie, const char *csrf,
			 bool state_changing, int64_t now_ms,
			 struct principal *ret)
{
	uint8_t hash[SESSION_HASH_LEN];
	struct session *se;
	ssize_t i;
	int r = 0;

	/* Every secret has one length: others are no session, without
	 * hashing them or scanning the sessions. */
	bool shaped = strlen(cookie) == SESSION_SECRET_LEN - 1;

	if (shaped)
		secret_hash(cookie, hash);
	pthread_mutex_lock(&s->lock);
	i = shaped ? find_hash(s, hash) : -1;
	if (i < 0) {
		r = -EACCES;
		s->stats.expired++;
		snprintf(ret->denied, sizeof(ret->denied),
			 "no such session (logged out, or the collector restarted): log in again");
		goto out;
	}
	se = &s->list[i];
	if (expired(se, conf, now_ms)) {
		r = -EACCES;
		s->stats.expired++;
		snprintf(ret->denied, sizeof(ret->denied),
			 "the session expired: log in again");
		drop(s, (size_t)i);
		goto out;
	}
	if (state_changing && !csrf_matches(se->csrf, csrf)) {
		r = -EPERM;
		s->stats.csrf_refused++;
		snprintf(ret->denied, sizeof(ret->denied),
			 "a request with a session cookie must carry the session's CSRF token in X-Tocsin-CSRF");
		goto out;
	}
	se->seen_ms = now_ms;
	*ret = (struct principal){ .perms = se->perms, .session_id = se->id };
	strlcpy_safe(ret->name, se->name, sizeof(ret->name));
out:
	pthread_mutex_unlock(&s->lock);
	return r;
}

int session_get(struct sessions *s, const struct console_config *conf,
		int64_t id, struct session_issued *ret)
{
	ssize_t i;

	pthread_mutex_lock(&s->lock);
	i = find_id(s, id);
	if (i >= 0) {
		/* The secret itself is not kept: only the cookie has it. */
		memset(ret->secret, 0, sizeof(ret->secret));
		memcpy(ret->csrf, s->list[i].csrf, sizeof(ret->csrf));
		ret->expires_ms = s->list[i].created_ms + conf->absolute_ms;
		ret->idle_expires_ms = s->list[i].seen_ms + conf->idle_ms;
	}
	pthread_mutex_unlock(&s->lock);
	return i >= 0 ? 0 : -ENOENT;
}

int session_delete(struct sessions *s, int64_t id)
{
	ssize_t i;

	pthread_mutex_lock(&s->lock);
	i = find_id(s, id);
	if (i >= 0)
		drop(s, (size_t)i);
	pthread_mutex_unlock(&s->lock);
	return i >= 0 ? 0 : -ENOENT;
}

size_t session_delete_account(struct sessions *s, const char *name)
{
	size_t n = 0;

	pthread_mutex_lock(&s->lock);
	for (size_t i = s->n; i-- > 0;)
		if (strcmp(s->list[i].name, name) == 0) {
			drop(s, i);
			n++;
		}
	pthread_mutex_unlock(&s->lock);
	return n;
}

size_t session_count(struct sessions *s)
{
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = s->n;
	pthread_mutex_unlock(&s->lock);
	return n;
}

/* Whether c holds failures of a window that has not ended. */
static bool counting(const struct login_counter *c,
		     const struct console_config *conf, int64_t now_ms)
{
	return c->failures > 0 &&
	       now_ms - c->window_start_ms < conf->login_window_ms;
}

static bool blocking(const struct login_counter *c,
		     const struct console_config *conf, int64_t now_ms)
{
	return counting(c, conf, now_ms) && c->failures >= conf->login_failures;
}

/*
 * Under s->lock: the counting counter of key in t, or NULL.  It scans
 * the whole table whatever it finds, so that the time of a refusal does
 * not depend on where (in which table) the name is counted.
 */
static struct login_counter *table_find(struct login_table *t,
					const struct console_config *conf,
					const uint8_t key[LOGIN_KEY_LEN],
					int64_t now_ms)
{
	struct login_counter *found = NULL;

	for (size_t i = 0; i < t->used; i++)
		if (counting(&t->slots[i], conf, now_ms) &&
		    memcmp(t->slots[i].key, key, LOGIN_KEY_LEN) == 0)
			found = &t->slots[i];
	return found;
}

/*
 * Under s->lock: the counter of key in t, or a new one in a free slot,
 * a new slot while t has fewer than t->max, else the stalest counter
 * that does not block (one that does goes last: evicting it would lift
 * a limit that holds).
 */
static struct login_counter *table_counter(struct login_table *t,
					   const struct console_config *conf,
					   const uint8_t key[LOGIN_KEY_LEN],
					   int64_t now_ms)
{
	struct login_counter *c, *free_slot = NULL, *open = NULL, *any = NULL;

	for (size_t i = 0; i < t->used; i++) {
		c = &t->slots[i];
		if (!counting(c, conf, now_ms)) {
			if (free_slot == NULL)
				free_slot = c;
			continue;
		}
		if (memcmp(c->key, key, LOGIN_KEY_LEN) == 0)
			return c;
		if (!blocking(c, conf, now_ms) &&
		    (open == NULL || c->window_start_ms < open->window_start_ms))
			open = c;
		if (any == NULL || c->window_start_ms < any->window_start_ms)
			any = c;
	}
	if (free_slot != NULL) {
		c = free_slot;
	} else if (t->used < t->max) {
		if (t->used == t->cap) {
			t->cap = t->cap ? t->cap * 2 : 64;
			if (t->cap > t->max)
				t->cap = t->max;
			t->slots = xreallocarray(t->slots, t->cap,
						 sizeof(*t->slots));
		}
		c = &t->slots[t->used++];
	} else {
		c = open != NULL ? open : any;
	}
	memcpy(c->key, key, LOGIN_KEY_LEN);
	c->window_start_ms = now_ms;
	c->failures = 0;
	return c;
}

/* A name as a key: longer names (which no account has) are cut. */
static void name_key(const char *name, uint8_t key[LOGIN_KEY_LEN])
{
	size_t len = strlen(name);

	memset(key, 0, LOGIN_KEY_LEN);
	memcpy(key, name, len < LOGIN_KEY_LEN ? len : LOGIN_KEY_LEN - 1);
}

/*
 * A client address as a key: IPv4 by the address, IPv4-mapped IPv6 as
 * that IPv4 address, other IPv6 by its /64 (the least one host is given:
 * by the full address, a host would have 2^64 fresh counters), a zone
 * (%eth0) ignored.  Anything else ("unknown") by its text.
 */
static void network_key(const char *address, uint8_t key[LOGIN_KEY_LEN])
{
	char text[INET6_ADDRSTRLEN];
	size_t len = strcspn(address, "%");
	struct in6_addr a6;
	struct in_addr a4;

	memset(key, 0, LOGIN_KEY_LEN);
	if (len < sizeof(text)) {
		memcpy(text, address, len);
		text[len] = '\0';
		if (inet_pton(AF_INET, text, &a4) == 1) {
			key[0] = 4;
			memcpy(key + 1, &a4, sizeof(a4));
			return;
		}
		if (inet_pton(AF_INET6, text, &a6) == 1) {
			if (IN6_IS_ADDR_V4MAPPED(&a6)) {
				key[0] = 4;
				memcpy(key + 1, &a6.s6_addr[12], 4);
			} else {
				key[0] = 6;
				memcpy(key + 1, a6.s6_addr, 8);
			}
			return;
		}
	}
	key[0] = 't';
	len = strlen(address);
	memcpy(key + 1, address, len < LOGIN_KEY_LEN - 1 ? len : LOGIN_KEY_LEN - 2);
}

/* Seconds until c's window ends, when it is full. */
static int blocked_for(const struct login_counter *c,
		       const struct console_config *conf, int64_t now_ms)
{
	int64_t left;

	if (c == NULL || !blocking(c, conf, now_ms))
		return 0;
	left = c->window_start_ms + conf->login_window_ms - now_ms;
	return left <= 0 ? 0 : (int)((left + 999) / 1000);
}

static int longest(int a, int b)
{
	return a > b ? a : b;
}

/*
 * Whether the name is an account's is not known yet (the password is
 * not checked), and must not matter: both tables of names are asked.
 */
int session_login_blocked(struct sessions *s, const struct console_config *conf,
			  const char *name, const char *address, int64_t now_ms)
{
	uint8_t account[LOGIN_KEY_LEN], network[LOGIN_KEY_LEN];
	int wait_s;

	name_key(name, account);
	network_key(address, network);
	pthread_mutex_lock(&s->lock);
	wait_s = longest(
		blocked_for(table_find(&s->accounts, conf, account, now_ms),
			    conf, now_ms),
		blocked_for(table_find(&s->unknown, conf, account, now_ms),
			    conf, now_ms));
	wait_s = longest(wait_s, blocked_for(table_find(&s->networks, conf,
							network, now_ms),
					     conf, now_ms));
	pthread_mutex_unlock(&s->lock);
	return wait_s;
}

/*
 * known (the name is an account's) picks the table, so that made-up
 * names churn only theirs: an unknown name is still limited like an
 * account, or the answers would tell which names exist.
 */
void session_login_failed(struct sessions *s, const struct console_config *conf,
			  const char *name, bool known, const char *address,
			  int64_t now_ms)
{
	uint8_t account[LOGIN_KEY_LEN], network[LOGIN_KEY_LEN];

	name_key(name, account);
	network_key(address, network);
	pthread_mutex_lock(&s->lock);
	table_counter(known ? &s->accounts : &s->unknown, conf, account,
		      now_ms)->failures++;
	table_counter(&s->networks, conf, network, now_ms)->failures++;
	s->stats.failed++;
	pthread_mutex_unlock(&s->lock);
}

/* Under s->lock: forget key's failures in t. */
static void table_forget(struct login_table *t,
			 const uint8_t key[LOGIN_KEY_LEN])
{
	for (size_t i = 0; i < t->used; i++)
		if (memcmp(t->slots[i].key, key, LOGIN_KEY_LEN) == 0)
			t->slots[i].failures = 0;
}

void session_login_succeeded(struct sessions *s, const char *name)
{
	uint8_t account[LOGIN_KEY_LEN];

	name_key(name, account);
	pthread_mutex_lock(&s->lock);
	table_forget(&s->accounts, account);
	/* Failures from before the account was created, too. */
	table_forget(&s->unknown, account);
	pthread_mutex_unlock(&s->lock);
}

void session_count_blocked(struct sessions *s)
{
	pthread_mutex_lock(&s->lock);
	s->stats.blocked++;
	pthread_mutex_unlock(&s->lock);
}

void session_get_stats(struct sessions *s, struct session_stats *ret)
{
	pthread_mutex_lock(&s->lock);
	*ret = s->stats;
	ret->active = s->n;
	pthread_mutex_unlock(&s->lock);
}
