/*
 * Console sessions kept in a real SQLite file with the real writer, and
 * the store closed and opened again as a restart does: which sessions
 * come back (with their CSRF token), which stay ended, which expired;
 * the cap; that requests do not each cost a write; and that memory and
 * the store agree when the store refuses a change (a trigger the test
 * adds to the real file) or a login races a change of its account.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../../common/util.h"
#include "../../server/account.h"
#include "../../server/audit.h"
#include "../../server/server.h"
#include "../../server/session.h"
#include "../../server/store.h"
#include "../../server/writer.h"
#include "tmpdb.h"

#define T0 1795341600000LL
/* Changes made by a configured admin token: nothing to check. */
#define ADMIN ACTOR_UNCHECKED("admin")
#define TECH (PERM_READ | PERM_WRITE)

struct fixture {
	char path[64];
	struct console_config conf;
	struct store *st;
	struct audit *audit;
	struct accounts *a;
	struct sessions *s;
	struct writer *w;
};

/* Open everything as tocsin-server does, the clock at now_ms. */
static void open_all(struct fixture *f, int64_t now_ms)
{
	assert_int_equal(store_open(f->path, &f->st), 0);
	assert_int_equal(audit_open(f->st, &f->audit), 0);
	assert_int_equal(accounts_open(f->st, f->audit, &f->a), 0);
	assert_int_equal(sessions_open(f->st, f->a, &f->conf, now_ms, &f->s), 0);
	assert_int_equal(writer_start(f->st, 64, 16, &f->w), 0);
	accounts_attach_writer(f->a, f->w);
	sessions_attach_writer(f->s, f->w);
}

static void close_all(struct fixture *f)
{
	writer_stop(f->w);
	sessions_free(f->s);
	accounts_close(f->a);
	audit_close(f->audit);
	store_close(f->st);
}

/* A restart: what is still valid at now_ms comes back. */
static void restart(struct fixture *f, int64_t now_ms)
{
	close_all(f);
	open_all(f, now_ms);
}

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	char err[256];

	if (tmpdb_make(f->path, sizeof(f->path), "session") < 0)
		return -1;
	console_config_defaults(&f->conf);
	f->conf.idle_ms = 10000;
	f->conf.absolute_ms = 60000;
	f->conf.max_sessions = 3;
	open_all(f, T0);
	/* The accounts exist before any login. */
	if (account_set(f->a, "carol", "technician", "correct horse battery",
			ADMIN, T0 - 1000, err, sizeof(err)) != 1 ||
	    account_set(f->a, "dave", "technician", "correct horse battery",
			ADMIN, T0 - 1000, err, sizeof(err)) != 1)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	close_all(f);
	tmpdb_remove(f->path);
	free(f);
	return 0;
}

/* The number sql counts, straight from the file. */
static long long count(struct fixture *f, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *q;
	long long n = -1;

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &q, NULL), SQLITE_OK);
	if (sqlite3_step(q) == SQLITE_ROW)
		n = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	sqlite3_close(db);
	return n;
}

/* sql run on the file by a connection of the test's own. */
static void exec(struct fixture *f, const char *sql)
{
	char *err = NULL;
	sqlite3 *db;
	int rc;

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	sqlite3_busy_timeout(db, 5000);
	rc = sqlite3_exec(db, sql, NULL, NULL, &err);
	if (rc != SQLITE_OK)
		fail_msg("%s: %s", sql, err ? err : sqlite3_errstr(rc));
	sqlite3_free(err);
	sqlite3_close(db);
}

/* Rows of the store with the hash of is's cookie: 1 or 0. */
static long long stored(struct fixture *f, const struct session_issued *is)
{
	char hex[2 * 32 + 1], sql[256];
	uint8_t hash[32];

	crypto_generichash(hash, sizeof(hash), (const uint8_t *)is->secret,
			   strlen(is->secret), NULL, 0);
	sodium_bin2hex(hex, sizeof(hex), hash, sizeof(hash));
	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM console_sessions WHERE lower(hex(hash)) = '%s'",
		 hex);
	return count(f, sql);
}

static void login(struct fixture *f, const char *name, int64_t now_ms,
		  struct session_issued *ret)
{
	assert_int_equal(session_create(f->s, &f->conf, name, TECH, NULL, now_ms, ret), 0);
}

/* A request that changes something, with the session's CSRF token. */
static int change(struct fixture *f, const struct session_issued *is,
		  int64_t now_ms, struct principal *p)
{
	*p = (struct principal){ 0 };
	return session_authenticate(f->s, &f->conf, is->secret, is->csrf, true,
				    now_ms, p);
}

static void test_a_session_and_its_csrf_token_survive_a_restart(void **state)
{
	struct fixture *f = *state;
	struct session_issued is, got;
	struct principal p;
	char hex[2 * 32 + 1];
	uint8_t hash[32];

	login(f, "carol", T0, &is);
	assert_int_equal(change(f, &is, T0 + 1, &p), 0);
	restart(f, T0 + 2000);
	assert_int_equal(session_count(f->s), 1);
	assert_int_equal(change(f, &is, T0 + 2000, &p), 0);
	assert_string_equal(p.name, "carol");
	assert_int_equal(p.perms, TECH);
	/* The token and deadlines are the login's. */
	assert_int_equal(session_get(f->s, &f->conf, p.session_id, &got), 0);
	assert_string_equal(got.csrf, is.csrf);
	assert_int_equal(got.expires_ms, T0 + 60000);
	assert_int_equal(got.idle_expires_ms, T0 + 12000);
	/* The store has the cookie's hash, never the cookie. */
	crypto_generichash(hash, sizeof(hash), (const uint8_t *)is.secret,
			   strlen(is.secret), NULL, 0);
	sodium_bin2hex(hex, sizeof(hex), hash, sizeof(hash));
	{
		char sql[256];

		snprintf(sql, sizeof(sql),
			 "SELECT count(*) FROM console_sessions WHERE lower(hex(hash)) = '%s'",
			 hex);
		assert_int_equal(count(f, sql), 1);
	}
	/* A wrong CSRF token still fails after the restart. */
	is.csrf[0] = is.csrf[0] == 'A' ? 'B' : 'A';
	assert_int_equal(change(f, &is, T0 + 2001, &p), -EPERM);
}

static void test_ended_sessions_stay_ended_after_a_restart(void **state)
{
	struct fixture *f = *state;
	struct session_issued out, changed, after, other;
	struct principal p;
	char err[256];

	login(f, "carol", T0, &out);
	login(f, "carol", T0, &changed);
	login(f, "dave", T0, &other);
	assert_int_equal(change(f, &out, T0 + 1, &p), 0);
	assert_int_equal(session_delete(f->s, p.session_id), 0); /* logout */
	/* A new password ends carol's other sessions; a later login is new. */
	assert_int_equal(account_set(f->a, "carol", "technician",
				     "another long password", ACTOR_UNCHECKED("carol"), T0 + 10,
				     err, sizeof(err)),
			 0);
	assert_int_equal(session_delete_account(f->s, "carol"), 1);
	login(f, "carol", T0 + 20, &after);
	restart(f, T0 + 1000);
	assert_int_equal(change(f, &out, T0 + 1000, &p), -EACCES);
	assert_int_equal(change(f, &changed, T0 + 1000, &p), -EACCES);
	assert_int_equal(change(f, &after, T0 + 1000, &p), 0);
	assert_int_equal(change(f, &other, T0 + 1000, &p), 0);
	assert_int_equal(count(f, "SELECT count(*) FROM console_sessions"), 2);
}

/*
 * Should the store miss the deletion of an account's sessions (the
 * writer busy), the next start still does not bring them back: a
 * session older than its account's last change, or of no account, ends.
 */
static void test_a_changed_or_deleted_account_is_checked_at_start(void **state)
{
	struct fixture *f = *state;
	struct session_issued carol, dave;
	struct principal p;
	char err[256];

	login(f, "carol", T0, &carol);
	login(f, "dave", T0, &dave);
	/* Only the accounts change: the sessions' rows are left as they are. */
	assert_int_equal(account_set(f->a, "carol", "viewer",
				     "correct horse battery", ADMIN, T0 + 10,
				     err, sizeof(err)),
			 0);
	assert_int_equal(account_delete(f->a, "dave", ADMIN, T0 + 10), 0);
	assert_int_equal(count(f, "SELECT count(*) FROM console_sessions"), 2);
	restart(f, T0 + 1000);
	assert_int_equal(change(f, &carol, T0 + 1000, &p), -EACCES);
	assert_int_equal(change(f, &dave, T0 + 1000, &p), -EACCES);
	assert_int_equal(session_count(f->s), 0);
	assert_int_equal(count(f, "SELECT count(*) FROM console_sessions"), 0);
}

static void test_expired_sessions_are_purged_not_restored(void **state)
{
	struct fixture *f = *state;
	struct session_issued busy, idle, old;
	struct principal p;

	login(f, "carol", T0, &busy);
	login(f, "carol", T0, &idle);
	/* busy is used; the store hears of it (a quarter of idle passed). */
	assert_int_equal(change(f, &busy, T0 + 9000, &p), 0);
	restart(f, T0 + 15000);
	/* idle: 15 s unused, past the 10 s limit; busy: 6 s. */
	assert_int_equal(change(f, &idle, T0 + 15000, &p), -EACCES);
	assert_int_equal(change(f, &busy, T0 + 15000, &p), 0);
	assert_int_equal(count(f, "SELECT count(*) FROM console_sessions"), 1);

	/* Kept busy to its absolute limit, it is not restored past it. */
	login(f, "dave", T0 + 15000, &old);
	for (int64_t t = T0 + 20000; t < T0 + 60000; t += 5000)
		assert_int_equal(change(f, &busy, t, &p), 0);
	assert_int_equal(change(f, &busy, T0 + 59999, &p), 0);
	restart(f, T0 + 60000);
	assert_int_equal(change(f, &busy, T0 + 60000, &p), -EACCES);
	/* dave's was not used for 45 s: past idle. */
	assert_int_equal(change(f, &old, T0 + 60000, &p), -EACCES);
	assert_int_equal(count(f, "SELECT count(*) FROM console_sessions"), 0);
}

static int nothing(struct store *st, void *arg)
{
	(void)st;
	(void)arg;
	return 0;
}

/* The writer jobs that ran since before (one of them a no-op to wait for). */
static uint64_t jobs_since(struct fixture *f, const struct writer_stats *before)
{
	struct writer_stats now;

	/* Jobs run in order: once this one ran, every posted touch has. */
	assert_int_equal(writer_run(f->w, nothing, NULL), 0);
	writer_get_stats(f->w, &now);
	return now.jobs - before->jobs - 1;
}

/* Requests within session_touch_ms() of the last write cost no writer job. */
static void test_requests_do_not_each_write(void **state)
{
	struct fixture *f = *state;
	struct session_issued is;
	struct writer_stats before;
	struct principal p;

	assert_int_equal(session_touch_ms(&f->conf), 2500);
	login(f, "carol", T0, &is);
	writer_get_stats(f->w, &before);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(change(f, &is, T0 + 1 + i * 2, &p), 0);
	/* 1,000 requests within 2.5 s of the login: no write at all. */
	assert_int_equal(jobs_since(f, &before), 0);
	writer_get_stats(f->w, &before);
	for (int i = 0; i < 1000; i++)
		assert_int_equal(change(f, &is, T0 + 2500 + i, &p), 0);
	/* One write, by the first request past the interval. */
	assert_int_equal(jobs_since(f, &before), 1);
	assert_int_equal(count(f, "SELECT seen FROM console_sessions") - T0, 2500);
	/* The default idle hour: a minute. */
	console_config_defaults(&f->conf);
	assert_int_equal(session_touch_ms(&f->conf), 60000);
}

/* max_sessions holds in the store too: the idlest leaves it. */
static void test_the_cap_holds_in_the_store(void **state)
{
	struct fixture *f = *state;
	struct session_issued a, b, c, d;
	struct principal p;

	login(f, "carol", T0, &a);
	login(f, "carol", T0 + 10, &b);
	login(f, "dave", T0 + 20, &c);
	assert_int_equal(change(f, &a, T0 + 30, &p), 0); /* a is busy: b idlest */
	login(f, "dave", T0 + 40, &d);
	assert_int_equal(count(f, "SELECT count(*) FROM console_sessions"), 3);
	restart(f, T0 + 100);
	assert_int_equal(session_count(f->s), 3);
	assert_int_equal(change(f, &b, T0 + 100, &p), -EACCES);
	assert_int_equal(change(f, &a, T0 + 100, &p), 0);
	assert_int_equal(change(f, &c, T0 + 100, &p), 0);
	assert_int_equal(change(f, &d, T0 + 100, &p), 0);
	/* A smaller cap at start keeps the most recently seen. */
	f->conf.max_sessions = 1;
	restart(f, T0 + 200);
	assert_int_equal(session_count(f->s), 1);
	assert_int_equal(count(f, "SELECT count(*) FROM console_sessions"), 1);
}

/* A store that refuses every new session's row (the statement fails). */
static const char refuse_rows[] =
	"CREATE TRIGGER test_refuse BEFORE INSERT ON console_sessions"
	" BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;";
/*
 * A store whose commit fails: the row breaks a deferred foreign key
 * (the store's connection checks them), which only COMMIT finds.
 */
static const char refuse_commits[] =
	"CREATE TABLE test_parent(id INTEGER PRIMARY KEY);"
	"CREATE TABLE test_child(parent INTEGER REFERENCES test_parent(id)"
	" DEFERRABLE INITIALLY DEFERRED);"
	"CREATE TRIGGER test_refuse AFTER INSERT ON console_sessions"
	" BEGIN INSERT INTO test_child VALUES (1); END;";

/*
 * The table full (a, b, c; b the idlest), a login the store refuses
 * (refuse: SQL that makes it) pushes nobody out, in memory or in the
 * store; the next login, accepted, pushes out the idlest in both.
 */
static void refused_login_pushes_nobody_out(struct fixture *f,
					    const char *refuse, bool at_commit)
{
	struct session_issued a, b, c, d;
	struct writer_stats before, after;
	struct principal p;

	login(f, "carol", T0, &a);
	login(f, "carol", T0 + 10, &b);
	login(f, "dave", T0 + 20, &c);
	assert_int_equal(change(f, &a, T0 + 30, &p), 0); /* b is the idlest */
	exec(f, refuse);
	writer_get_stats(f->w, &before);
	assert_true(session_create(f->s, &f->conf, "dave", TECH, NULL,
				   T0 + 40, &d) < 0);
	/* Refused where meant: its statement (the group commits), or COMMIT. */
	writer_get_stats(f->w, &after);
	assert_int_equal(after.commits - before.commits, at_commit ? 0 : 1);
	assert_int_equal(session_count(f->s), 3);
	assert_int_equal(count(f, "SELECT count(*) FROM console_sessions"), 3);
	assert_int_equal(stored(f, &b), 1);
	/* b still works; used, it is no longer the idlest: c is. */
	assert_int_equal(change(f, &b, T0 + 50, &p), 0);
	exec(f, "DROP TRIGGER test_refuse");
	login(f, "dave", T0 + 60, &d);
	assert_int_equal(change(f, &c, T0 + 70, &p), -EACCES);
	assert_int_equal(stored(f, &c), 0);
	assert_int_equal(session_count(f->s), 3);
	assert_int_equal(count(f, "SELECT count(*) FROM console_sessions"), 3);
	/* After a restart, the same three. */
	restart(f, T0 + 100);
	assert_int_equal(session_count(f->s), 3);
	assert_int_equal(change(f, &a, T0 + 100, &p), 0);
	assert_int_equal(change(f, &b, T0 + 100, &p), 0);
	assert_int_equal(change(f, &c, T0 + 100, &p), -EACCES);
	assert_int_equal(change(f, &d, T0 + 100, &p), 0);
}

static void test_a_login_the_store_refuses_pushes_nobody_out(void **state)
{
	refused_login_pushes_nobody_out(*state, refuse_rows, false);
}

static void test_a_login_whose_commit_fails_pushes_nobody_out(void **state)
{
	refused_login_pushes_nobody_out(*state, refuse_commits, true);
}

/* Wait, 5 s at most, until the writer has n jobs waiting. */
static void queue_waits(struct fixture *f, size_t n)
{
	struct timespec pause = { .tv_nsec = 1000 * 1000 };
	int64_t deadline = time_mono_ms() + 5000;
	struct writer_stats ws;

	for (;;) {
		writer_get_stats(f->w, &ws);
		if (ws.queued == n)
			return;
		if (time_mono_ms() > deadline)
			fail_msg("the writer has %zu jobs waiting, not %zu",
				 ws.queued, n);
		nanosleep(&pause, NULL);
	}
}

/*
 * Hold the writer (it takes a job, then waits for the store) so that the
 * jobs queued until release_writer() share one group, in their order.
 */
static void hold_writer(struct fixture *f)
{
	store_lock(f->st);
	assert_int_equal(writer_post(f->w, nothing, NULL, NULL), 0);
	queue_waits(f, 0);
}

static void release_writer(struct fixture *f)
{
	store_unlock(f->st);
}

/* A login on a thread of its own, as an HTTP thread makes it. */
struct login_thread {
	pthread_t thread;
	struct fixture *f;
	const char *name;
	const struct account_stamp *stamp; /* NULL: not checked */
	int64_t now_ms;
	struct session_issued is;
	int result;
};

static void *login_main(void *arg)
{
	struct login_thread *t = arg;

	t->result = session_create(t->f->s, &t->f->conf, t->name, TECH,
				   t->stamp, t->now_ms, &t->is);
	return NULL;
}

/* Start t's login and wait until its job is queued (then n are). */
static void login_queued(struct login_thread *t, size_t n)
{
	assert_int_equal(pthread_create(&t->thread, NULL, login_main, t), 0);
	queue_waits(t->f, n);
}

/*
 * Two logins in one writer group, the table full: the first is refused
 * by the store, the second is not.  The second pushes out the idlest
 * (which the first had chosen too): the first's choice is undone as it
 * fails, not once the group commits.
 */
static void test_a_refused_login_leaves_room_to_the_next_of_its_group(
	void **state)
{
	struct fixture *f = *state;
	struct login_thread refused = { .f = f, .name = "dave", .now_ms = T0 + 40 };
	struct login_thread next = { .f = f, .name = "carol", .now_ms = T0 + 50 };
	struct session_issued a, b, c;
	struct principal p;

	login(f, "carol", T0, &a);
	login(f, "carol", T0 + 10, &b);
	login(f, "dave", T0 + 20, &c);
	assert_int_equal(change(f, &a, T0 + 30, &p), 0); /* b is the idlest */
	exec(f, "CREATE TRIGGER test_refuse BEFORE INSERT ON console_sessions"
		" WHEN NEW.name = 'dave'"
		" BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;");
	hold_writer(f);
	login_queued(&refused, 1);
	login_queued(&next, 2);
	release_writer(f);
	pthread_join(refused.thread, NULL);
	pthread_join(next.thread, NULL);
	assert_true(refused.result < 0);
	assert_int_equal(next.result, 0);
	assert_int_equal(change(f, &b, T0 + 60, &p), -EACCES);
	assert_int_equal(change(f, &a, T0 + 60, &p), 0);
	assert_int_equal(change(f, &c, T0 + 60, &p), 0);
	assert_int_equal(change(f, &next.is, T0 + 60, &p), 0);
	assert_int_equal(session_count(f->s), 3);
	assert_int_equal(count(f, "SELECT count(*) FROM console_sessions"), 3);
	assert_int_equal(stored(f, &b), 0);
	assert_int_equal(stored(f, &c), 1);
}

struct end_account_thread {
	pthread_t thread;
	struct fixture *f;
	const char *name;
	size_t ended;
};

static void *end_account_main(void *arg)
{
	struct end_account_thread *t = arg;

	t->ended = session_delete_account(t->f->s, t->name);
	return NULL;
}

/*
 * A login whose password was checked before its account changed, its
 * job queued before the change's end of the account's sessions: the
 * store loses its row with the others, and memory its session.
 */
static void test_a_login_racing_a_change_of_its_account_ends(void **state)
{
	struct fixture *f = *state;
	struct login_thread racing = { .f = f, .name = "carol", .now_ms = T0 + 10 };
	struct end_account_thread end = { .f = f, .name = "carol" };
	struct session_issued dave;
	struct principal p;

	login(f, "dave", T0, &dave);
	hold_writer(f);
	login_queued(&racing, 1);
	assert_int_equal(pthread_create(&end.thread, NULL, end_account_main, &end),
			 0);
	queue_waits(f, 2);
	release_writer(f);
	pthread_join(racing.thread, NULL);
	pthread_join(end.thread, NULL);
	assert_int_equal(racing.result, 0);
	assert_int_equal(count(f, "SELECT count(*) FROM console_sessions"
				  " WHERE name = 'carol'"), 0);
	assert_int_equal(change(f, &racing.is, T0 + 20, &p), -EACCES);
	assert_int_equal(change(f, &dave, T0 + 20, &p), 0);
	assert_int_equal(session_count(f->s), 1);
}

/* name's password checked, as a login does first: its stamp. */
static struct account_stamp checked(struct fixture *f, const char *name,
				    const char *password)
{
	struct account_stamp stamp;
	unsigned perms;

	assert_int_equal(account_verify(f->a, name, password, &perms, &stamp), 0);
	assert_int_equal(perms, TECH);
	return stamp;
}

/* session_create() after a password check, as console_api_login() calls it. */
static int login_checked(struct fixture *f, const char *name,
			 const struct account_stamp *stamp, int64_t now_ms,
			 struct session_issued *ret)
{
	return session_create(f->s, &f->conf, name, TECH, stamp, now_ms, ret);
}

/* Sessions of name in memory (a request with each) and in the store. */
static void no_session_of(struct fixture *f, const char *name,
			  const struct session_issued *is)
{
	char sql[128];
	struct principal p;

	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM console_sessions WHERE name = '%s'", name);
	assert_int_equal(count(f, sql), 0);
	assert_int_equal(change(f, is, T0 + 100, &p), -EACCES);
}

/*
 * The password changed between a login's check (with the old one) and
 * its session: no session, in memory or in the store, and the new
 * password logs in.
 */
static void test_a_login_checked_before_a_new_password_gets_no_session(
	void **state)
{
	struct fixture *f = *state;
	struct account_stamp stamp = checked(f, "carol", "correct horse battery");
	struct session_issued is = { 0 };
	char err[256];

	assert_int_equal(account_set(f->a, "carol", "technician",
				     "another long password", ADMIN, T0 + 10,
				     err, sizeof(err)),
			 0);
	session_delete_account(f->s, "carol");
	assert_int_equal(login_checked(f, "carol", &stamp, T0 + 20, &is), -ESTALE);
	assert_int_equal(session_count(f->s), 0);
	no_session_of(f, "carol", &is);
	/* The new password's stamp is the account's. */
	stamp = checked(f, "carol", "another long password");
	assert_int_equal(login_checked(f, "carol", &stamp, T0 + 30, &is), 0);
	assert_int_equal(stored(f, &is), 1);
}

/* Deleted, or its role lowered, meanwhile: no session either. */
static void test_a_login_checked_before_a_deletion_or_new_role_gets_none(
	void **state)
{
	struct fixture *f = *state;
	struct account_stamp carol = checked(f, "carol", "correct horse battery");
	struct account_stamp dave = checked(f, "dave", "correct horse battery");
	struct session_issued is = { 0 };
	char err[256];

	assert_int_equal(account_delete(f->a, "carol", ADMIN, T0 + 10), 0);
	assert_int_equal(login_checked(f, "carol", &carol, T0 + 20, &is), -ESTALE);
	no_session_of(f, "carol", &is);
	/* Created again (same name, same password): still another account. */
	assert_int_equal(account_set(f->a, "carol", "technician",
				     "correct horse battery", ADMIN, T0 + 30,
				     err, sizeof(err)),
			 1);
	assert_int_equal(login_checked(f, "carol", &carol, T0 + 40, &is), -ESTALE);
	no_session_of(f, "carol", &is);
	/* The same password, a lower role. */
	assert_int_equal(account_set(f->a, "dave", "viewer",
				     "correct horse battery", ADMIN, T0 + 50,
				     err, sizeof(err)),
			 0);
	assert_int_equal(login_checked(f, "dave", &dave, T0 + 60, &is), -ESTALE);
	no_session_of(f, "dave", &is);
	assert_int_equal(session_count(f->s), 0);
}

/*
 * What does not change the account leaves its stamp good: another
 * account's change, a restart, and the rehash of a weaker hash (which
 * replaces the hash, not the password) posted by the login itself.
 */
static void test_a_login_of_an_unchanged_account_gets_its_session(
	void **state)
{
	struct fixture *f = *state;
	char weak[crypto_pwhash_STRBYTES], sql[256], err[256];
	struct account_stamp stamp;
	struct session_issued is;

	stamp = checked(f, "carol", "correct horse battery");
	assert_int_equal(account_set(f->a, "dave", "viewer",
				     "another long password", ADMIN, T0 + 10,
				     err, sizeof(err)),
			 0);
	assert_int_equal(login_checked(f, "carol", &stamp, T0 + 20, &is), 0);
	assert_int_equal(stored(f, &is), 1);

	close_all(f);
	assert_int_equal(crypto_pwhash_str(weak, "correct horse battery", 21,
					   crypto_pwhash_OPSLIMIT_MIN,
					   crypto_pwhash_MEMLIMIT_MIN),
			 0);
	snprintf(sql, sizeof(sql),
		 "UPDATE accounts SET password_hash = '%s' WHERE name = 'carol'",
		 weak);
	exec(f, sql);
	open_all(f, T0 + 30);
	stamp = checked(f, "carol", "correct horse battery");
	/* The rehash it posted is in the store before the login's job. */
	assert_int_equal(writer_run(f->w, nothing, NULL), 0);
	assert_int_equal(count(f, "SELECT count(*) FROM accounts"
				  " WHERE name = 'carol' AND password_hash LIKE '%m=65536%'"),
			 1);
	assert_int_equal(login_checked(f, "carol", &stamp, T0 + 40, &is), 0);
	assert_int_equal(stored(f, &is), 1);
}

/* A change of an account on a thread of its own, as an admin's request. */
struct set_thread {
	pthread_t thread;
	struct fixture *f;
	const char *name, *role, *password;
	const struct actor *by; /* NULL: a token of an admin */
	int result;
};

static void *set_main(void *arg)
{
	struct set_thread *t = arg;
	const struct actor *by = t->by ? t->by : ADMIN;
	char err[256];

	t->result = account_set(t->f->a, t->name, t->role, t->password, by,
				T0 + 10, err, sizeof(err));
	return NULL;
}

/*
 * The change ahead of the login in one writer group: memory hears of it
 * only once the group commits, the login's check sees it in the store.
 */
static void test_a_change_ahead_in_the_login_s_group_is_seen(void **state)
{
	struct fixture *f = *state;
	struct account_stamp stamp = checked(f, "carol", "correct horse battery");
	struct set_thread set = { .f = f, .name = "carol", .role = "viewer",
				  .password = "correct horse battery" };
	struct login_thread racing = { .f = f, .name = "carol",
				       .stamp = &stamp, .now_ms = T0 + 20 };

	hold_writer(f);
	assert_int_equal(pthread_create(&set.thread, NULL, set_main, &set), 0);
	queue_waits(f, 1);
	login_queued(&racing, 2);
	release_writer(f);
	pthread_join(set.thread, NULL);
	pthread_join(racing.thread, NULL);
	assert_int_equal(set.result, 0);
	assert_int_equal(racing.result, -ESTALE);
	no_session_of(f, "carol", &racing.is);
}

/*
 * The admin boss logged in (an admin's password checked, then its
 * session) and a request of that session authenticated: *ret acts for
 * it, as console_api_actor() makes it.
 */
static void admin_request(struct fixture *f, int64_t now_ms,
			  struct session_issued *ret_is, struct principal *ret_p,
			  struct actor *ret)
{
	struct account_stamp stamp;
	unsigned perms;
	char err[256];

	assert_int_equal(account_set(f->a, "boss", "admin",
				     "correct horse battery", ADMIN, now_ms - 10,
				     err, sizeof(err)),
			 1);
	assert_int_equal(account_verify(f->a, "boss", "correct horse battery",
					&perms, &stamp),
			 0);
	assert_int_equal(session_create(f->s, &f->conf, "boss", perms, &stamp,
					now_ms, ret_is),
			 0);
	assert_int_equal(change(f, ret_is, now_ms, ret_p), 0);
	session_actor(f->s, ret_p, ret);
}

/* Whether account name is in the store. */
static long long account_stored(struct fixture *f, const char *name)
{
	char sql[128];

	snprintf(sql, sizeof(sql),
		 "SELECT count(*) FROM accounts WHERE name = '%s'", name);
	return count(f, sql);
}

/*
 * An admin's session request authenticated, then its account demoted,
 * given a new password or deleted before the request's change: the
 * change is refused (-ESTALE), nothing changed, even though the session
 * was not ended yet (session_delete_account() runs after the change
 * that ends it: the window of a request in flight).
 */
static void test_a_change_by_a_session_whose_account_changed_is_refused(
	void **state)
{
	/* role NULL: the account is deleted */
	static const struct {
		const char *role, *password;
	} changes[] = {
		{ "viewer", "correct horse battery" },
		{ "admin", "another long password" },
		{ NULL, NULL },
	};
	struct fixture *f = *state;
	struct session_issued is;
	struct principal p;
	struct actor by;
	char err[256];

	for (size_t i = 0; i < ARRAY_SIZE(changes); i++) {
		admin_request(f, T0 + 100 * (int64_t)i, &is, &p, &by);
		/* Unchanged, the session acts. */
		assert_int_equal(account_set(f->a, "erin", "viewer",
					     "correct horse battery", &by, T0,
					     err, sizeof(err)),
				 1);
		assert_int_equal(account_delete(f->a, "erin", &by, T0), 0);
		if (changes[i].role == NULL)
			assert_int_equal(account_delete(f->a, "boss", ADMIN, T0),
					 0);
		else
			assert_int_equal(account_set(f->a, "boss",
						     changes[i].role,
						     changes[i].password, ADMIN,
						     T0, err, sizeof(err)),
					 0);
		err[0] = '\0';
		assert_int_equal(account_set(f->a, "erin", "admin",
					     "correct horse battery", &by, T0,
					     err, sizeof(err)),
				 -ESTALE);
		assert_string_equal(err, SESSION_ACTOR_CHANGED);
		assert_int_equal(account_stored(f, "erin"), 0);
		assert_int_equal(account_delete(f->a, "carol", &by, T0),
				 -ESTALE);
		assert_int_equal(account_stored(f, "carol"), 1);
		session_delete_account(f->s, "boss");
		account_delete(f->a, "boss", ADMIN, T0);
	}
	/* The trail has the changes made, not the ones refused. */
	assert_int_equal(count(f, "SELECT count(*) FROM audit"
				  " WHERE target = 'erin' AND action = 'account.create'"),
			 ARRAY_SIZE(changes));
	assert_int_equal(count(f, "SELECT count(*) FROM audit"
				  " WHERE target = 'carol' AND action = 'account.delete'"),
			 0);
}

/* A session that ended (a logout) while its request ran: -EKEYREVOKED. */
static void test_a_change_by_a_session_that_ended_is_refused(void **state)
{
	struct fixture *f = *state;
	struct session_issued is;
	struct principal p, token = { .name = "ops" };
	struct actor by;
	char err[256];

	admin_request(f, T0, &is, &p, &by);
	assert_int_equal(session_delete(f->s, p.session_id), 0);
	assert_int_equal(account_set(f->a, "erin", "admin",
				     "correct horse battery", &by, T0, err,
				     sizeof(err)),
			 -EKEYREVOKED);
	assert_string_equal(err, SESSION_ACTOR_ENDED);
	assert_int_equal(account_delete(f->a, "carol", &by, T0), -EKEYREVOKED);
	assert_int_equal(account_stored(f, "erin"), 0);
	assert_int_equal(account_stored(f, "carol"), 1);
	/* A configured token has no session nor account: never refused. */
	session_actor(f->s, &token, &by);
	assert_null(by.sessions);
	assert_int_equal(account_set(f->a, "erin", "admin",
				     "correct horse battery", &by, T0, err,
				     sizeof(err)),
			 1);
}

/* A session restored by a restart acts with its account's stamp. */
static void test_a_restored_session_still_acts(void **state)
{
	struct fixture *f = *state;
	struct session_issued is;
	struct principal p;
	struct actor by;
	char err[256];

	admin_request(f, T0, &is, &p, &by);
	restart(f, T0 + 100);
	assert_int_equal(change(f, &is, T0 + 100, &p), 0);
	session_actor(f->s, &p, &by);
	assert_int_equal(account_set(f->a, "erin", "admin",
				     "correct horse battery", &by, T0 + 100,
				     err, sizeof(err)),
			 1);
	assert_int_equal(account_set(f->a, "boss", "viewer",
				     "correct horse battery",
				     ADMIN, T0 + 200, err,
				     sizeof(err)),
			 0);
	assert_int_equal(account_delete(f->a, "erin", &by, T0 + 300), -ESTALE);
}

/*
 * The demotion ahead of the admin's change in one writer group: memory
 * hears of it only once the group commits, the change's check sees it
 * in the store.
 */
static void test_a_demotion_ahead_in_the_change_s_group_is_seen(void **state)
{
	struct fixture *f = *state;
	struct session_issued is;
	struct principal p;
	struct actor by;
	struct set_thread demote = { .f = f, .name = "boss", .role = "viewer",
				     .password = "correct horse battery" };
	struct set_thread create = { .f = f, .name = "erin", .role = "admin",
				     .password = "correct horse battery",
				     .by = &by };

	admin_request(f, T0, &is, &p, &by);
	hold_writer(f);
	assert_int_equal(pthread_create(&demote.thread, NULL, set_main, &demote),
			 0);
	queue_waits(f, 1);
	assert_int_equal(pthread_create(&create.thread, NULL, set_main, &create),
			 0);
	queue_waits(f, 2);
	release_writer(f);
	pthread_join(demote.thread, NULL);
	pthread_join(create.thread, NULL);
	assert_int_equal(demote.result, 0);
	assert_int_equal(create.result, -ESTALE);
	assert_int_equal(account_stored(f, "erin"), 0);
}

/* A store that refuses to delete sessions' rows. */
static const char refuse_deletes[] =
	"CREATE TRIGGER test_refuse BEFORE DELETE ON console_sessions"
	" BEGIN SELECT RAISE(ABORT, 'refused by the test'); END;";

/* A logout the store refuses does not happen, in memory either. */
static void test_a_logout_the_store_refuses_does_not_end_the_session(
	void **state)
{
	struct fixture *f = *state;
	struct session_issued is;
	struct principal p;

	login(f, "carol", T0, &is);
	assert_int_equal(change(f, &is, T0 + 1, &p), 0);
	exec(f, refuse_deletes);
	assert_true(session_delete(f->s, p.session_id) < 0);
	assert_int_equal(change(f, &is, T0 + 2, &p), 0);
	assert_int_equal(stored(f, &is), 1);
	exec(f, "DROP TRIGGER test_refuse");
	assert_int_equal(session_delete(f->s, p.session_id), 0);
	assert_int_equal(change(f, &is, T0 + 3, &p), -EACCES);
	assert_int_equal(stored(f, &is), 0);
}

/*
 * What ends whatever the store says: a session that expired on a
 * request, and the sessions of an account that changed.  Memory ends
 * them at once (a limit that holds must not wait for the disk); should
 * the store keep their rows, the next start does not restore them.
 */
static void test_ends_the_store_refuses_are_not_restored(void **state)
{
	struct fixture *f = *state;
	struct session_issued expiring, changed, other;
	struct principal p;
	char err[256];

	login(f, "dave", T0, &expiring);
	login(f, "carol", T0 + 5000, &changed);
	login(f, "dave", T0 + 5000, &other);
	exec(f, refuse_deletes);
	/* 10 s unused: expired; the removal the request posts is refused. */
	assert_int_equal(change(f, &expiring, T0 + 10000, &p), -EACCES);
	assert_int_equal(account_set(f->a, "carol", "technician",
				     "another long password", ACTOR_UNCHECKED("carol"), T0 + 10000,
				     err, sizeof(err)),
			 0);
	assert_int_equal(session_delete_account(f->s, "carol"), 1);
	assert_int_equal(change(f, &changed, T0 + 10001, &p), -EACCES);
	/* Every job ran: the store kept both rows. */
	assert_int_equal(writer_run(f->w, nothing, NULL), 0);
	assert_int_equal(stored(f, &expiring), 1);
	assert_int_equal(stored(f, &changed), 1);
	close_all(f);
	exec(f, "DROP TRIGGER test_refuse");
	open_all(f, T0 + 10002);
	assert_int_equal(change(f, &expiring, T0 + 10002, &p), -EACCES);
	assert_int_equal(change(f, &changed, T0 + 10002, &p), -EACCES);
	assert_int_equal(change(f, &other, T0 + 10002, &p), 0);
	assert_int_equal(session_count(f->s), 1);
	assert_int_equal(count(f, "SELECT count(*) FROM console_sessions"), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(
			test_a_change_by_a_session_whose_account_changed_is_refused,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_a_change_by_a_session_that_ended_is_refused, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_a_restored_session_still_acts,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_a_demotion_ahead_in_the_change_s_group_is_seen, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_a_session_and_its_csrf_token_survive_a_restart, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_ended_sessions_stay_ended_after_a_restart, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_a_changed_or_deleted_account_is_checked_at_start,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_expired_sessions_are_purged_not_restored, setup,
			teardown),
		cmocka_unit_test_setup_teardown(test_requests_do_not_each_write,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_the_cap_holds_in_the_store,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_a_login_the_store_refuses_pushes_nobody_out, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_a_login_whose_commit_fails_pushes_nobody_out, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_a_refused_login_leaves_room_to_the_next_of_its_group,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_a_login_racing_a_change_of_its_account_ends, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_a_login_checked_before_a_new_password_gets_no_session,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_a_login_checked_before_a_deletion_or_new_role_gets_none,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_a_login_of_an_unchanged_account_gets_its_session,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_a_change_ahead_in_the_login_s_group_is_seen, setup,
			teardown),
		cmocka_unit_test_setup_teardown(
			test_a_logout_the_store_refuses_does_not_end_the_session,
			setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_ends_the_store_refuses_are_not_restored, setup,
			teardown),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
