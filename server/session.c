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
#include "store.h"
#include "writer.h"

#define SESSION_HASH_LEN 32
/* Failed-login counters kept at most for unknown names, and for networks. */
#define LOGIN_COUNTERS_MAX 4096
/* A counter's key: a name (NUL-padded), or a network (see network_key()). */
#define LOGIN_KEY_LEN (ACCOUNT_NAME_MAX + 1)
/* The most the store's last-seen time of a session lags behind. */
#define SESSION_TOUCH_MAX_MS (60 * 1000LL)
/* How long an HTTP thread waits for room in the writer's queue. */
#define SESSION_WRITER_WAIT_MS 1000

static const char *const session_steps[] = {
	/*
	 * 1: console sessions, by the BLAKE2b hash of their cookie (the
	 * cookie itself is never stored); seen lags (session_touch_ms()).
	 */
	"CREATE TABLE console_sessions ("
	"  hash BLOB PRIMARY KEY,"
	"  name TEXT NOT NULL,"
	"  perms INTEGER NOT NULL,"
	"  csrf TEXT NOT NULL,"
	"  created INTEGER NOT NULL,"
	"  seen INTEGER NOT NULL) WITHOUT ROWID;"
	"CREATE INDEX console_sessions_name ON console_sessions(name);",
};

const struct db_schema session_schema = {
	.module = "sessions",
	.steps = session_steps,
	.nsteps = ARRAY_SIZE(session_steps),
};

struct session {
	int64_t id; /* 0: a free slot */
	uint8_t hash[SESSION_HASH_LEN];
	char name[64];
	unsigned perms;
	char csrf[SESSION_SECRET_LEN];
	int64_t created_ms, seen_ms;
	int64_t stored_seen_ms; /* seen as the store has it */
	/*
	 * Its account's generation at login (account_verify()'s stamp): what
	 * the changes its requests make check (session_check_actor()).  A
	 * restored session has its account's current one: start purged the
	 * sessions of accounts changed since their login.
	 */
	int64_t account_generation;
	/*
	 * A login not committed yet pushes it out (make_room()): it still
	 * works, but no longer counts against max_sessions nor is pushed
	 * out again; it leaves memory when the login commits, and stays
	 * should the login fail.
	 */
	bool leaving;
};

/* Hashes of sessions a login pushes out, for the store to follow. */
struct hash_list {
	uint8_t (*hashes)[SESSION_HASH_LEN];
	size_t n, cap;
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
	/* Kept in the store (sessions_open()), or not (sessions_new()). */
	bool stored;
	struct accounts *users; /* the accounts logins are checked against */
	struct writer *w;
	/* On the writer's connection; the writer thread only. */
	sqlite3_stmt *insert, *remove, *remove_account, *touch, *trim;
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
	sqlite3_finalize(s->insert);
	sqlite3_finalize(s->remove);
	sqlite3_finalize(s->remove_account);
	sqlite3_finalize(s->touch);
	sqlite3_finalize(s->trim);
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

/* Under s->lock: drop slot i (the last slot moves into it). */
static void drop(struct sessions *s, size_t i)
{
	s->list[i] = s->list[--s->n];
	sodium_memzero(&s->list[s->n], sizeof(s->list[s->n]));
}

static void hash_list_add(struct hash_list *l, const uint8_t *hash)
{
	if (l->n == l->cap) {
		l->cap = l->cap ? l->cap * 2 : 4;
		l->hashes = xreallocarray(l->hashes, l->cap,
					  sizeof(*l->hashes));
	}
	memcpy(l->hashes[l->n++], hash, SESSION_HASH_LEN);
}

/*
 * Under s->lock: slot i makes room.  Without gone (nothing to commit
 * first: memory only, or the start) it is dropped at once; else it is
 * only marked leaving, its hash into gone, for the login's outcome to
 * decide (create_done() or create_undo()): memory must not lose a session
 * the store still has.
 */
static void push_out(struct sessions *s, size_t i, struct hash_list *gone)
{
	if (gone == NULL) {
		drop(s, i);
		return;
	}
	s->list[i].leaving = true;
	hash_list_add(gone, s->list[i].hash);
}

/*
 * Under s->lock: room for one more, pushing out expired sessions, then
 * the idlest while max_sessions (which a reload may have lowered) are
 * staying.  Sessions already leaving do not count.
 */
static void make_room(struct sessions *s, const struct console_config *conf,
		      int64_t now_ms, struct hash_list *gone)
{
	size_t staying = 0;

	for (size_t i = s->n; i-- > 0;) {
		if (s->list[i].leaving)
			continue;
		if (expired(&s->list[i], conf, now_ms))
			push_out(s, i, gone);
		else
			staying++;
	}
	while (staying > 0 && (int64_t)staying >= conf->max_sessions) {
		ssize_t idlest = -1;

		for (size_t i = 0; i < s->n; i++)
			if (!s->list[i].leaving &&
			    (idlest < 0 ||
			     s->list[i].seen_ms < s->list[idlest].seen_ms))
				idlest = (ssize_t)i;
		push_out(s, (size_t)idlest, gone);
		staying--;
	}
	if (s->n == s->cap) {
		s->cap = s->cap ? s->cap * 2 : 16;
		s->list = xreallocarray(s->list, s->cap, sizeof(*s->list));
	}
}

/* Under s->lock: se joins the sessions (making room), with a new id. */
static void remember(struct sessions *s, const struct console_config *conf,
		     struct session *se, int64_t now_ms, struct hash_list *gone)
{
	make_room(s, conf, now_ms, gone);
	se->id = ++s->last_id;
	s->list[s->n++] = *se;
}

/*
 * At start: what the store keeps only while it is valid (the account
 * exists and has not changed since the login; neither deadline passed)
 * and the most recently seen max_sessions of those.  Like the
 * migrations, this runs on the writer's connection before the writer
 * thread starts: nothing else writes yet.
 */
static int purge(struct store *st, const struct console_config *conf,
		 int64_t now_ms)
{
	sqlite3_stmt *q = NULL;
	int r;

	r = store_prepare(st,
			  "DELETE FROM console_sessions WHERE hash NOT IN ("
			  " SELECT s.hash FROM console_sessions s"
			  " JOIN accounts a ON a.name = s.name"
			  " WHERE a.updated <= s.created AND s.created > ?1"
			  " AND s.seen > ?2 ORDER BY s.seen DESC LIMIT ?3)",
			  &q);
	if (r < 0)
		return r;
	sqlite3_bind_int64(q, 1, now_ms - conf->absolute_ms);
	sqlite3_bind_int64(q, 2, now_ms - conf->idle_ms);
	sqlite3_bind_int64(q, 3, conf->max_sessions);
	r = db_step_done(q);
	sqlite3_finalize(q);
	return r;
}

/* One stored row as a session: 0, or -EINVAL for a row of another shape. */
static int row_session(sqlite3_stmt *q, struct session *ret)
{
	const char *name = (const char *)sqlite3_column_text(q, 1);
	const char *csrf = (const char *)sqlite3_column_text(q, 3);

	if (sqlite3_column_bytes(q, 0) != SESSION_HASH_LEN || name == NULL ||
	    !account_name_valid(name) || csrf == NULL ||
	    strlen(csrf) != SESSION_SECRET_LEN - 1)
		return -EINVAL;
	memcpy(ret->hash, sqlite3_column_blob(q, 0), SESSION_HASH_LEN);
	strlcpy_safe(ret->name, name, sizeof(ret->name));
	ret->perms = (unsigned)sqlite3_column_int64(q, 2);
	memcpy(ret->csrf, csrf, SESSION_SECRET_LEN);
	ret->created_ms = sqlite3_column_int64(q, 4);
	ret->seen_ms = ret->stored_seen_ms = sqlite3_column_int64(q, 5);
	ret->account_generation = sqlite3_column_int64(q, 6);
	return 0;
}

/* At start, after purge(): every stored session into memory. */
static int restore(struct sessions *s, struct store *st,
		   const struct console_config *conf, int64_t now_ms)
{
	sqlite3_stmt *q = NULL;
	int rc, r;

	r = store_prepare(st,
			  "SELECT s.hash, s.name, s.perms, s.csrf, s.created,"
			  " s.seen, a.generation FROM console_sessions s"
			  " JOIN accounts a ON a.name = s.name"
			  " ORDER BY s.seen DESC LIMIT ?1",
			  &q);
	if (r < 0)
		return r;
	sqlite3_bind_int64(q, 1, conf->max_sessions);
	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		struct session se = { 0 };

		if (row_session(q, &se) < 0)
			continue;
		pthread_mutex_lock(&s->lock);
		remember(s, conf, &se, now_ms, NULL);
		pthread_mutex_unlock(&s->lock);
		sodium_memzero(&se, sizeof(se));
	}
	sqlite3_finalize(q);
	return rc == SQLITE_DONE ? 0 : sqlite_to_errno(rc);
}

static int prepare_statements(struct sessions *s, struct store *st)
{
	int r;

	r = store_prepare(st,
			  "INSERT INTO console_sessions(hash, name, perms, csrf,"
			  " created, seen) VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
			  &s->insert);
	if (r == 0)
		r = store_prepare(st, "DELETE FROM console_sessions WHERE hash = ?1",
				  &s->remove);
	if (r == 0)
		r = store_prepare(st, "DELETE FROM console_sessions WHERE name = ?1",
				  &s->remove_account);
	if (r == 0)
		r = store_prepare(st,
				  "UPDATE console_sessions SET seen = ?2"
				  " WHERE hash = ?1 AND seen < ?2",
				  &s->touch);
	/* After a login: rows past the absolute limit, or beyond the cap. */
	if (r == 0)
		r = store_prepare(st,
				  "DELETE FROM console_sessions WHERE created <= ?1"
				  " OR hash NOT IN (SELECT hash FROM console_sessions"
				  " ORDER BY seen DESC LIMIT ?2)",
				  &s->trim);
	return r;
}

int sessions_open(struct store *st, struct accounts *accounts,
		  const struct console_config *conf, int64_t now_ms,
		  struct sessions **ret)
{
	struct sessions *s;
	int r;

	sessions_new(&s);
	s->stored = true;
	s->users = accounts;
	r = prepare_statements(s, st);
	if (r == 0)
		r = purge(st, conf, now_ms);
	if (r == 0)
		r = restore(s, st, conf, now_ms);
	if (r < 0) {
		sessions_free(s);
		return r;
	}
	*ret = s;
	return 0;
}

void sessions_attach_writer(struct sessions *s, struct writer *w)
{
	s->w = w;
}

int64_t session_touch_ms(const struct console_config *conf)
{
	int64_t quarter = conf->idle_ms / 4;

	return quarter < SESSION_TOUCH_MAX_MS ? quarter : SESSION_TOUCH_MAX_MS;
}

/* A login, as a writer job: the limits and the reload are copied. */
struct create_job {
	struct sessions *s;
	struct console_config conf;
	struct session se;
	const struct account_stamp *stamp; /* NULL: not checked */
	int64_t now_ms;
	struct hash_list gone;
};

static int bind_hash(sqlite3_stmt *st, int i, const uint8_t *hash)
{
	return sqlite3_bind_blob(st, i, hash, SESSION_HASH_LEN, SQLITE_TRANSIENT);
}

/*
 * Under s->lock, on the writer thread: the login of j did not reach the
 * store (its job failed, or the commit).  Its session leaves memory and
 * the ones it pushed out stay, as they stay in the store.  Once is
 * enough: j->gone is emptied.
 */
static void create_undo(struct create_job *j)
{
	struct sessions *s = j->s;
	ssize_t i;

	i = find_hash(s, j->se.hash);
	if (i >= 0)
		drop(s, (size_t)i);
	for (size_t k = 0; k < j->gone.n; k++) {
		i = find_hash(s, j->gone.hashes[k]);
		if (i >= 0)
			s->list[i].leaving = false;
	}
	j->gone.n = 0;
}

/* Under s->lock, on the writer thread: j's login committed. */
static void create_done(struct create_job *j)
{
	struct sessions *s = j->s;
	ssize_t i;

	for (size_t k = 0; k < j->gone.n; k++) {
		i = find_hash(s, j->gone.hashes[k]);
		if (i >= 0)
			drop(s, (size_t)i);
	}
	s->stats.logins++;
}

/* Writer job: the login's rows; memory follows in create_apply(). */
static int create_rows(struct sessions *s, struct create_job *j)
{
	int r = 0;

	for (size_t i = 0; r == 0 && i < j->gone.n; i++) {
		bind_hash(s->remove, 1, j->gone.hashes[i]);
		r = db_step_done(s->remove);
	}
	if (r < 0)
		return r;
	bind_hash(s->insert, 1, j->se.hash);
	db_bind_text(s->insert, 2, j->se.name);
	sqlite3_bind_int64(s->insert, 3, j->se.perms);
	db_bind_text(s->insert, 4, j->se.csrf);
	sqlite3_bind_int64(s->insert, 5, j->se.created_ms);
	r = db_step_done(s->insert);
	if (r < 0)
		return r;
	sqlite3_bind_int64(s->trim, 1, j->now_ms - j->conf.absolute_ms);
	sqlite3_bind_int64(s->trim, 2, j->conf.max_sessions);
	return db_step_done(s->trim);
}

/*
 * Writer job: first the account, which may have changed (or gone) since
 * its password was checked: then nothing happens (-ESTALE).  A change
 * ends the account's sessions once it committed (session_delete_account()),
 * so a login checked here either comes before the change, and ends with
 * the others, or sees it.
 *
 * The session joins memory here (so that logins in one group count each
 * other against max_sessions) and the ones it pushes out are marked
 * leaving, not dropped: they leave memory only once the login commits
 * (create_then()).  Their rows leave the store, and so do rows beyond
 * the limits that memory no longer has (sessions that expired on a
 * request).  A job that fails undoes its marks at once, so that the next
 * logins of its group see the sessions it pushed out.
 */
static int create_apply(struct store *st, void *arg)
{
	struct create_job *j = arg;
	struct sessions *s = j->s;
	int r;

	(void)st;
	if (j->stamp != NULL) {
		r = account_check_stamp(s->users, j->se.name, j->stamp);
		if (r < 0)
			return r;
	}
	pthread_mutex_lock(&s->lock);
	remember(s, &j->conf, &j->se, j->now_ms, &j->gone);
	pthread_mutex_unlock(&s->lock);
	r = create_rows(s, j);
	if (r < 0) {
		pthread_mutex_lock(&s->lock);
		create_undo(j);
		pthread_mutex_unlock(&s->lock);
	}
	return r;
}

/*
 * On the writer thread, in commit order: a login the store does not
 * have does not happen, nor do its evictions.
 */
static void create_then(void *arg, int result)
{
	struct create_job *j = arg;

	pthread_mutex_lock(&j->s->lock);
	if (result >= 0)
		create_done(j);
	else
		create_undo(j);
	pthread_mutex_unlock(&j->s->lock);
}

int session_create(struct sessions *s, const struct console_config *conf,
		   const char *name, unsigned perms,
		   const struct account_stamp *stamp, int64_t now_ms,
		   struct session_issued *ret)
{
	struct create_job j = { .s = s, .conf = *conf, .stamp = stamp,
				.now_ms = now_ms };
	struct session_issued issued;
	int r = 0;

	j.se = (struct session){ .perms = perms, .created_ms = now_ms,
				 .seen_ms = now_ms, .stored_seen_ms = now_ms };
	if (stamp != NULL)
		j.se.account_generation = stamp->generation;
	random_text(issued.secret);
	random_text(j.se.csrf);
	secret_hash(issued.secret, j.se.hash);
	strlcpy_safe(j.se.name, name, sizeof(j.se.name));
	memcpy(issued.csrf, j.se.csrf, sizeof(issued.csrf));
	issued.idle_expires_ms = now_ms + conf->idle_ms;
	issued.expires_ms = now_ms + conf->absolute_ms;
	if (!s->stored) {
		pthread_mutex_lock(&s->lock);
		remember(s, conf, &j.se, now_ms, NULL);
		s->stats.logins++;
		pthread_mutex_unlock(&s->lock);
	} else if (s->w == NULL) {
		r = -ESHUTDOWN;
	} else {
		r = writer_run_then(s->w, create_apply, create_then, &j,
				    SESSION_WRITER_WAIT_MS);
	}
	if (r >= 0)
		*ret = issued;
	sodium_memzero(&issued, sizeof(issued));
	sodium_memzero(&j.se, sizeof(j.se));
	free(j.gone.hashes);
	return r < 0 ? r : 0;
}

/* Constant time for tokens of the right length. */
static bool csrf_matches(const char *expected, const char *got)
{
	if (got == NULL || strlen(got) != strlen(expected))
		return false;
	return sodium_memcmp(expected, got, strlen(expected)) == 0;
}

/* One row of the store to follow memory: posted, freed when done. */
struct row_job {
	struct sessions *s;
	uint8_t hash[SESSION_HASH_LEN];
	int64_t seen_ms, was_seen_ms;
};

/* Writer job: the store's last-seen time of a session moves on. */
static int touch_apply(struct store *st, void *arg)
{
	struct row_job *j = arg;

	(void)st;
	bind_hash(j->s->touch, 1, j->hash);
	sqlite3_bind_int64(j->s->touch, 2, j->seen_ms);
	return db_step_done(j->s->touch);
}

/* Writer job: a session that ended leaves the store. */
static int remove_apply(struct store *st, void *arg)
{
	struct row_job *j = arg;

	(void)st;
	bind_hash(j->s->remove, 1, j->hash);
	return db_step_done(j->s->remove);
}

static void row_job_free(void *arg, int result)
{
	(void)result;
	free(arg);
}

/*
 * Not under s->lock: post a change of one row.  A touch that cannot be
 * queued is tried again by the next request; a removal that cannot, by
 * the next login's trim, or the next start's purge.
 */
static void post_row(struct sessions *s, writer_fn fn,
		     const struct row_job *job)
{
	struct row_job *j = xcalloc(1, sizeof(*j));
	ssize_t i;

	*j = *job;
	if (writer_post(s->w, fn, j, row_job_free) == 0)
		return;
	/* a refused job is not called back: its argument is still ours */
	free(j);
	if (fn != touch_apply)
		return;
	pthread_mutex_lock(&s->lock);
	i = find_hash(s, job->hash);
	if (i >= 0 && s->list[i].stored_seen_ms == job->seen_ms)
		s->list[i].stored_seen_ms = job->was_seen_ms;
	pthread_mutex_unlock(&s->lock);
}

int session_authenticate(struct sessions *s, const struct console_config *conf,
			 const char *cookie, const char *csrf,
			 bool state_changing, int64_t now_ms,
			 struct principal *ret)
{
	uint8_t hash[SESSION_HASH_LEN];
	struct row_job job = { .s = s };
	writer_fn post = NULL;
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
			 "no such session (logged out, expired or ended by a change of its account): log in again");
		goto out;
	}
	se = &s->list[i];
	if (expired(se, conf, now_ms)) {
		r = -EACCES;
		s->stats.expired++;
		snprintf(ret->denied, sizeof(ret->denied),
			 "the session expired: log in again");
		memcpy(job.hash, se->hash, SESSION_HASH_LEN);
		post = remove_apply;
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
	/* The store hears of requests only so often: no write per request. */
	if (now_ms - se->stored_seen_ms >= session_touch_ms(conf)) {
		memcpy(job.hash, se->hash, SESSION_HASH_LEN);
		job.seen_ms = now_ms;
		job.was_seen_ms = se->stored_seen_ms;
		se->stored_seen_ms = now_ms;
		post = touch_apply;
	}
	*ret = (struct principal){ .perms = se->perms, .session_id = se->id };
	ret->account_generation = se->account_generation;
	strlcpy_safe(ret->name, se->name, sizeof(ret->name));
out:
	pthread_mutex_unlock(&s->lock);
	if (post != NULL && s->w != NULL)
		post_row(s, post, &job);
	return r;
}

void session_actor(struct sessions *s, const struct principal *p,
		   struct actor *ret)
{
	*ret = (struct actor){ .name = p->name };
	if (p->session_id == 0)
		return;
	ret->sessions = s;
	ret->session_id = p->session_id;
	ret->stamp.generation = p->account_generation;
}

/*
 * The account first, in the store (account_check_stamp()): a change of
 * it ends its sessions only once it committed, possibly after this job
 * in the same group.  Then the session, in memory: a logout ahead in the
 * same group may still show it, and the change goes through as though
 * it came first, as it could have.
 */
int session_check_actor(const struct actor *actor)
{
	struct sessions *s = actor->sessions;
	ssize_t i;
	int r;

	if (s == NULL)
		return 0;
	if (s->users != NULL) {
		r = account_check_stamp(s->users, actor->name, &actor->stamp);
		if (r < 0)
			return r;
	}
	pthread_mutex_lock(&s->lock);
	i = find_id(s, actor->session_id);
	pthread_mutex_unlock(&s->lock);
	return i < 0 ? writer_refuse(-EKEYREVOKED) : 0;
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

/* On the writer thread, once the store forgot the session: memory does. */
static void remove_then(void *arg, int result)
{
	struct row_job *j = arg;
	ssize_t i;

	if (result < 0)
		return;
	pthread_mutex_lock(&j->s->lock);
	i = find_hash(j->s, j->hash);
	if (i >= 0)
		drop(j->s, (size_t)i);
	pthread_mutex_unlock(&j->s->lock);
}

int session_delete(struct sessions *s, int64_t id)
{
	struct row_job j = { .s = s };
	ssize_t i;

	pthread_mutex_lock(&s->lock);
	i = find_id(s, id);
	if (i >= 0) {
		memcpy(j.hash, s->list[i].hash, SESSION_HASH_LEN);
		if (!s->stored)
			drop(s, (size_t)i);
	}
	pthread_mutex_unlock(&s->lock);
	if (i < 0)
		return -ENOENT;
	if (!s->stored)
		return 0;
	if (s->w == NULL)
		return -ESHUTDOWN;
	return writer_run_then(s->w, remove_apply, remove_then, &j,
			       SESSION_WRITER_WAIT_MS);
}

struct account_job {
	struct sessions *s;
	const char *name;
};

/* Under s->lock: every session of name leaves memory; how many. */
static size_t drop_account(struct sessions *s, const char *name)
{
	size_t n = 0;

	for (size_t i = s->n; i-- > 0;)
		if (strcmp(s->list[i].name, name) == 0) {
			drop(s, i);
			n++;
		}
	return n;
}

/*
 * Writer job: every session of an account leaves the store, and memory
 * once more: a login that raced the change (its password checked before
 * it) may have joined memory since session_delete_account() dropped the
 * account's sessions, its job ahead of this one; its row goes now, so
 * must it.
 */
static int remove_account_apply(struct store *st, void *arg)
{
	struct account_job *j = arg;

	(void)st;
	pthread_mutex_lock(&j->s->lock);
	drop_account(j->s, j->name);
	pthread_mutex_unlock(&j->s->lock);
	db_bind_text(j->s->remove_account, 1, j->name);
	return db_step_done(j->s->remove_account);
}

size_t session_delete_account(struct sessions *s, const char *name)
{
	struct account_job j = { .s = s, .name = name };
	size_t n;

	pthread_mutex_lock(&s->lock);
	n = drop_account(s, name);
	pthread_mutex_unlock(&s->lock);
	/*
	 * Ended now, whatever the store says: should the deletion fail,
	 * the next start does not restore them either (sessions_open()).
	 */
	if (s->stored && s->w != NULL)
		writer_run_timed(s->w, remove_account_apply, &j,
				 SESSION_WRITER_WAIT_MS);
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

/* Under s->lock: t's counters that count (see counting()). */
static size_t table_counting(const struct login_table *t,
			     const struct console_config *conf, int64_t now_ms)
{
	size_t n = 0;

	for (size_t i = 0; i < t->used; i++)
		if (counting(&t->slots[i], conf, now_ms))
			n++;
	return n;
}

void session_get_stats(struct sessions *s, const struct console_config *conf,
		       int64_t now_ms, struct session_stats *ret)
{
	pthread_mutex_lock(&s->lock);
	*ret = s->stats;
	ret->active = s->n;
	ret->counting_accounts = table_counting(&s->accounts, conf, now_ms);
	ret->counting_unknown = table_counting(&s->unknown, conf, now_ms);
	ret->counting_networks = table_counting(&s->networks, conf, now_ms);
	pthread_mutex_unlock(&s->lock);
}
