/*
 * Enrollment tokens and host credentials on a real SQLite file: what the
 * index lets in, what it refuses and why, and that a reopened store says
 * the same (the index is rebuilt from the database).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <pthread.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/config.h"
#include "../../common/util.h"
#include "../../server/account.h"
#include "../../server/audit.h"
#include "../../server/credentials.h"
#include "../../server/enrollment.h"
#include "../../server/inventory.h"
#include "../../server/server.h"
#include "../../server/session.h"
#include "../../server/store.h"
#include "../../server/writer.h"
#include "tmpdb.h"

#define T0 1795341600000LL /* 2026-11-22 10:00 UTC */
/* Changes made by a configured admin token: nothing to check. */
#define ADMIN ACTOR_UNCHECKED("admin")
#define DAY (24 * 3600 * 1000LL)

struct fixture {
	char path[64];
	struct store *st;
	struct audit *audit;
	struct credentials *c;
	struct writer *w;
};

static void open_all(struct fixture *f)
{
	assert_int_equal(store_open(f->path, &f->st), 0);
	assert_int_equal(audit_open(f->st, &f->audit), 0);
	assert_int_equal(credentials_open(f->st, f->audit, &f->c), 0);
	assert_int_equal(writer_start(f->st, 64, 16, &f->w), 0);
	credentials_attach_writer(f->c, f->w);
}

static void close_all(struct fixture *f)
{
	writer_stop(f->w);
	credentials_close(f->c);
	audit_close(f->audit);
	store_close(f->st);
	f->w = NULL;
	f->c = NULL;
	f->audit = NULL;
	f->st = NULL;
}

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));

	if (sodium_init() < 0)
		return -1;
	if (tmpdb_make(f->path, sizeof(f->path), "cred") < 0)
		return -1;
	open_all(f);
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

static struct credential_issued token(struct fixture *f, int64_t max_uses)
{
	struct credential_issued t;
	char err[256];

	assert_int_equal(credentials_token_create(f->c, "acme", T0 + 7 * DAY,
						  max_uses, ADMIN, T0, &t,
						  err, sizeof(err)),
			 0);
	return t;
}

static struct principal auth_ok(struct fixture *f, const char *secret,
				int64_t now)
{
	struct principal p = { 0 };

	assert_int_equal(credentials_authenticate(f->c, secret, now, &p), 0);
	return p;
}

static void auth_denied(struct fixture *f, const char *secret, int64_t now,
			const char *why)
{
	struct principal p = { 0 };

	assert_int_equal(credentials_authenticate(f->c, secret, now, &p), -EACCES);
	if (strstr(p.denied, why) == NULL)
		fail_msg("denied '%s' does not contain '%s'", p.denied, why);
}

static struct credential_issued enroll(struct fixture *f, const char *tok,
				       const char *host, int64_t now)
{
	struct principal p = auth_ok(f, tok, now);
	struct credential_issued cred;
	char err[384];
	int r = enrollment_enroll(f->c, &p, host, NULL, now, &cred, err,
				   sizeof(err));

	if (r < 0)
		fail_msg("enroll %s: %s", host, err);
	return cred;
}

/* An enrollment that must be refused with r and a message containing why. */
static void enroll_refused(struct fixture *f, const char *tok, const char *host,
			   const struct inventory *inv, int64_t now, int r,
			   const char *why)
{
	struct principal p = auth_ok(f, tok, now);
	struct credential_issued cred;
	char err[384] = "";

	assert_int_equal(enrollment_enroll(f->c, &p, host, inv, now, &cred, err,
					    sizeof(err)),
			 r);
	if (strstr(err, why) == NULL)
		fail_msg("refusal '%s' does not contain '%s'", err, why);
}

static struct credential_issued token_of(struct fixture *f, const char *customer,
					 const char *hosts)
{
	struct credential_issued t;
	char err[256];

	assert_int_equal(credentials_token_create_for(f->c, customer, hosts,
						      T0 + 60 * DAY, 0, ADMIN,
						      T0, &t, err, sizeof(err)),
			 0);
	return t;
}

static void approve(struct fixture *f, const char *host, const char *customer,
		    int64_t now)
{
	char err[256];
	int64_t id;

	assert_int_equal(enrollment_approve(f->c, host, customer, now + DAY,
					     ADMIN, now, &id, err, sizeof(err)),
			 0);
	assert_true(id > 0);
}

static void test_enrolled_credential_is_bound_to_host_and_customer(void **state)
{
	struct fixture *f = *state;
	struct credential_issued t = token(f, 0), cred;
	struct principal p, unknown = { 0 };

	p = auth_ok(f, t.secret, T0);
	assert_int_equal(p.perms, PERM_ENROLL);
	assert_string_equal(p.customer, "acme");
	assert_int_equal(p.credential_id, t.id);

	cred = enroll(f, t.secret, "web01", T0);
	p = auth_ok(f, cred.secret, T0);
	assert_int_equal(p.perms, PERM_INGEST);
	assert_string_equal(p.host, "web01");
	assert_string_equal(p.customer, "acme");
	assert_int_equal(credentials_authenticate(f->c, "tch_not-a-credential", T0, &unknown),
			 -ENOENT);
	assert_string_equal(unknown.denied, "");
}

static void test_tokens_refuse_when_used_up_or_expired(void **state)
{
	struct fixture *f = *state;
	struct credential_issued once = token(f, 1);

	enroll(f, once.secret, "web01", T0);
	auth_denied(f, once.secret, T0, "is used up (1 of 1 enrollments)");
	struct credential_issued t = token(f, 0);
	auth_denied(f, t.secret, T0 + 7 * DAY, "expired at 2026-11-29T10:00:00.000Z");
}

static void test_a_host_of_another_customer_is_refused(void **state)
{
	struct fixture *f = *state;
	struct credential_issued acme = token(f, 0), globex, cred;
	struct principal p;
	char err[384];

	enroll(f, acme.secret, "web01", T0);
	assert_int_equal(credentials_token_create(f->c, "globex", T0 + DAY, 0,
						  ADMIN, T0, &globex, err,
						  sizeof(err)),
			 0);
	p = auth_ok(f, globex.secret, T0);
	assert_int_equal(enrollment_enroll(f->c, &p, "web01", NULL, T0, &cred,
					    err, sizeof(err)),
			 -EEXIST);
	assert_non_null(strstr(err, "host web01 belongs to customer acme (credential"));
	assert_non_null(strstr(err, "tocsin enrollment approve web01 --customer globex"));
}

static void test_a_claim_outlives_revocation_until_an_admin_moves_it(void **state)
{
	struct fixture *f = *state;
	struct credential_issued acme = token(f, 0), globex = token_of(f, "globex", NULL);
	struct credential_issued first, moved;
	char err[256];

	first = enroll(f, acme.secret, "web01", T0);
	assert_int_equal(credentials_revoke(f->c, first.id, ADMIN, T0, err, sizeof(err)), 0);
	/* revoking frees nothing: the name stays acme's */
	enroll_refused(f, globex.secret, "web01", NULL, T0 + 1000, -EEXIST,
		       "host web01 belongs to customer acme (since 2026-11-22T10:00:00.000Z)");
	/* an approval without a customer does not move a host */
	approve(f, "web01", NULL, T0 + 2000);
	enroll_refused(f, globex.secret, "web01", NULL, T0 + 3000, -EEXIST,
		       "belongs to customer acme");
	approve(f, "web01", "globex", T0 + 4000);
	moved = enroll(f, globex.secret, "web01", T0 + 5000);
	assert_string_equal(auth_ok(f, moved.secret, T0 + 6000).customer, "globex");
	/* and now it is globex's, after a restart too */
	close_all(f);
	open_all(f);
	enroll_refused(f, acme.secret, "web01", NULL, T0 + 7000, -EEXIST,
		       "belongs to customer globex");
}

static void test_a_host_in_use_needs_an_approval_to_enroll_again(void **state)
{
	struct fixture *f = *state;
	struct credential_issued t = token(f, 0), first, second;

	first = enroll(f, t.secret, "web01", T0);
	auth_ok(f, first.secret, T0 + 1000); /* the agent reports */
	enroll_refused(f, t.secret, "web01", NULL, T0 + 2000, -EEXIST,
		       "host web01 is in use: its credential ");
	enroll_refused(f, t.secret, "web01", NULL, T0 + 2000, -EEXIST,
		       "tocsin enrollment approve web01");
	auth_ok(f, first.secret, T0 + 3000); /* nothing was cut off */
	approve(f, "web01", NULL, T0 + 3000);
	second = enroll(f, t.secret, "web01", T0 + 4000);
	auth_denied(f, first.secret, T0 + 5000, "replaced when the host enrolled again");
	auth_ok(f, second.secret, T0 + 5000);
	/* the approval was used up */
	enroll_refused(f, t.secret, "web01", NULL, T0 + 6000, -EEXIST, "is in use");
	/* a day after its last use, a host is free to enroll again */
	enroll(f, t.secret, "web01", T0 + 5000 + DAY + 1000);
}

struct touch_job {
	const char *host;
	int64_t at;
};

static int touch_apply(struct store *st, void *arg)
{
	struct touch_job *j = arg;
	int64_t id;

	return store_host_touch(st, j->host, j->at, &id);
}

static void test_a_host_reporting_with_a_shared_token_is_not_up_for_grabs(void **state)
{
	struct fixture *f = *state;
	struct credential_issued t = token(f, 0);
	struct touch_job touch = { "web09", T0 };
	struct inventory *inv;
	struct cfg *cfg;

	/* web09 reports (a shared token: no credential, no claim) */
	assert_int_equal(writer_run(f->w, touch_apply, &touch), 0);
	enroll_refused(f, t.secret, "web09", NULL, T0 + 60000, -EEXIST,
		       "host web09 is in use: it reported 60 s ago and belongs to no customer yet");
	/* the inventory says whose it is: then its customer's token may enroll it */
	assert_int_equal(cfg_load_string("inv.yaml",
					 "customers:\n  acme: {name: A}\n"
					 "hosts:\n  web09: {customer: acme}\n",
					 &cfg), 0);
	assert_int_equal(inventory_parse(cfg, cfg->root, &inv), 0);
	{
		struct principal p = auth_ok(f, t.secret, T0 + 60000);
		struct credential_issued cred;
		char err[384];

		assert_int_equal(enrollment_enroll(f->c, &p, "web09", inv, T0 + 60000,
						    &cred, err, sizeof(err)),
				 0);
	}
	inventory_free(inv);
	cfg_free(cfg);
}

static void test_a_token_for_some_hosts_refuses_others(void **state)
{
	struct fixture *f = *state;
	struct credential_issued web = token_of(f, "acme", "web*");

	enroll(f, web.secret, "web02", T0);
	enroll_refused(f, web.secret, "db01", NULL, T0, -EPERM,
		       "may only enroll hosts matching 'web*', not db01");
}

static void test_rotations_are_limited_per_host(void **state)
{
	struct fixture *f = *state;
	struct credential_issued t = token(f, 0), a, b, c;
	struct principal p;
	char err[256];

	a = enroll(f, t.secret, "web01", T0);
	p = auth_ok(f, a.secret, T0);
	assert_int_equal(credentials_rotate(f->c, &p, T0, &b, err, sizeof(err)), 0);
	/* neither the new credential nor the old one may rotate again at once */
	p = auth_ok(f, b.secret, T0 + 1000);
	assert_int_equal(credentials_rotate(f->c, &p, T0 + 1000, &c, err, sizeof(err)),
			 -EDQUOT);
	assert_string_equal(err, "host web01 rotated its credential less than 60 s ago; rotate again in 59 s");
	p = auth_ok(f, b.secret, T0 + 60000);
	assert_int_equal(credentials_rotate(f->c, &p, T0 + 60000, &c, err, sizeof(err)), 0);
	auth_ok(f, c.secret, T0 + 61000);
}

static void test_long_ended_entries_are_forgotten(void **state)
{
	struct fixture *f = *state;
	struct credential_issued t = token(f, 0), gone, kept;
	char err[256];

	gone = enroll(f, t.secret, "web01", T0);
	kept = enroll(f, t.secret, "web02", T0);
	assert_int_equal(credentials_revoke(f->c, gone.id, ADMIN, T0, err, sizeof(err)), 0);
	assert_int_equal(credentials_count(f->c), 3);
	/* the next change a month later prunes the index */
	assert_int_equal(credentials_revoke(f->c, kept.id, ADMIN, T0 + 31 * DAY, err,
					    sizeof(err)), 0);
	/* gone ended over 30 days before: forgotten; kept just ended: kept */
	assert_int_equal(credentials_count(f->c), 2);
	{
		struct principal p = { 0 };

		assert_int_equal(credentials_authenticate(f->c, gone.secret, T0 + 31 * DAY, &p),
				 -ENOENT);
	}
	auth_denied(f, kept.secret, T0 + 31 * DAY, "was revoked");
}

static void test_rotation_grace_ends_at_first_use_or_after_an_hour(void **state)
{
	struct fixture *f = *state;
	struct credential_issued t = token(f, 0), a, b, next;
	struct principal p;
	char err[256];

	a = enroll(f, t.secret, "web01", T0);
	b = enroll(f, t.secret, "web02", T0);
	/* web01 rotates and uses the new secret: the old one ends at once */
	p = auth_ok(f, a.secret, T0);
	assert_int_equal(credentials_rotate(f->c, &p, T0, &next, err, sizeof(err)), 0);
	auth_ok(f, a.secret, T0 + 1000);
	auth_ok(f, next.secret, T0 + 2000);
	auth_denied(f, a.secret, T0 + 3000, "was replaced by credential");
	/* web02 rotates but never uses the new one: the old one lasts an hour */
	p = auth_ok(f, b.secret, T0);
	assert_int_equal(credentials_rotate(f->c, &p, T0, &next, err, sizeof(err)), 0);
	auth_ok(f, b.secret, T0 + CREDENTIAL_GRACE_MS - 1);
	auth_denied(f, b.secret, T0 + CREDENTIAL_GRACE_MS, "at a rotation");
	auth_ok(f, next.secret, T0 + CREDENTIAL_GRACE_MS);
}

static void test_revocation_and_reopening_agree(void **state)
{
	struct fixture *f = *state;
	struct credential_issued t = token(f, 0), keep, gone, old, rot;
	struct principal p;
	char err[256];

	keep = enroll(f, t.secret, "web01", T0);
	gone = enroll(f, t.secret, "web02", T0);
	old = enroll(f, t.secret, "web03", T0);
	p = auth_ok(f, old.secret, T0);
	assert_int_equal(credentials_rotate(f->c, &p, T0, &rot, err, sizeof(err)), 0);
	assert_int_equal(credentials_revoke(f->c, gone.id, ADMIN, T0, err, sizeof(err)), 0);
	assert_int_equal(credentials_revoke(f->c, gone.id, ADMIN, T0, err, sizeof(err)),
			 -EALREADY);
	assert_int_equal(credentials_revoke(f->c, 999, ADMIN, T0, err, sizeof(err)), -ENOENT);
	auth_denied(f, gone.secret, T0, "was revoked");

	close_all(f);
	open_all(f);
	auth_ok(f, keep.secret, T0);
	auth_denied(f, gone.secret, T0, "of host web02 was revoked");
	/* the rotation's pending retirement is rebuilt from the database */
	auth_ok(f, old.secret, T0);
	auth_ok(f, rot.secret, T0);
	auth_denied(f, old.secret, T0, "at a rotation");
}

static void test_many_credentials_are_all_found(void **state)
{
	struct fixture *f = *state;
	struct credential_issued t = token(f, 0);
	static struct credential_issued creds[2000];
	char host[32];

	for (size_t i = 0; i < ARRAY_SIZE(creds); i++) {
		snprintf(host, sizeof(host), "host%04zu", i);
		creds[i] = enroll(f, t.secret, host, T0);
	}
	assert_int_equal(credentials_count(f->c), ARRAY_SIZE(creds) + 1);
	for (size_t i = 0; i < ARRAY_SIZE(creds); i++) {
		struct principal p = auth_ok(f, creds[i].secret, T0);

		snprintf(host, sizeof(host), "host%04zu", i);
		assert_string_equal(p.host, host);
	}
}


/*
 * Commit order.  The jobs of two changes are queued behind the held
 * store, so they share one group in a known order; a posted job after
 * them looks at the index from its done callback, which runs in the same
 * order, before the waiting threads are even woken.
 */
struct racer {
	struct fixture *f;
	struct principal p;
	const char *host;
	int64_t id;
	int r;
	struct credential_issued out;
	char err[384];
};

static void *racer_rotate(void *arg)
{
	struct racer *x = arg;

	x->r = credentials_rotate(x->f->c, &x->p, T0 + 1000, &x->out, x->err,
				  sizeof(x->err));
	return NULL;
}

static void *racer_revoke(void *arg)
{
	struct racer *x = arg;

	x->r = credentials_revoke(x->f->c, x->id, ADMIN, T0 + 1000, x->err,
				  sizeof(x->err));
	return NULL;
}

static void *racer_enroll(void *arg)
{
	struct racer *x = arg;

	x->r = enrollment_enroll(x->f->c, &x->p, x->host, NULL, T0 + 1000,
				  &x->out, x->err, sizeof(x->err));
	return NULL;
}

struct probe {
	struct fixture *f;
	const char *secret; /* must be refused when the probe's callback runs */
	int auth;
	char denied[192];
	size_t count;
};

static int probe_apply(struct store *st, void *arg)
{
	(void)st;
	(void)arg;
	return 0;
}

static void probe_done(void *arg, int result)
{
	struct probe *pr = arg;
	struct principal p = { 0 };

	(void)result;
	pr->auth = credentials_authenticate(pr->f->c, pr->secret, T0 + 1000, &p);
	strlcpy_safe(pr->denied, p.denied, sizeof(pr->denied));
	pr->count = credentials_count(pr->f->c);
}

static void wait_queued(struct fixture *f, size_t n)
{
	struct writer_stats ws;

	do {
		writer_get_stats(f->w, &ws);
	} while (ws.queued != n);
}

/* Run a then b as one group, a probe after them; join both. */
static void race(struct fixture *f, void *(*a)(void *), struct racer *ra,
		 void *(*b)(void *), struct racer *rb, struct probe *pr)
{
	struct probe blocker = { .f = f, .secret = "tch_none" };
	pthread_t ta, tb;

	store_lock(f->st);
	/* the writer takes a first job and blocks on the store ... */
	assert_int_equal(writer_post(f->w, probe_apply, &blocker, probe_done), 0);
	wait_queued(f, 0);
	/* ... so that a, b and the probe queue up behind it, in this order */
	assert_int_equal(pthread_create(&ta, NULL, a, ra), 0);
	wait_queued(f, 1);
	assert_int_equal(pthread_create(&tb, NULL, b, rb), 0);
	wait_queued(f, 2);
	assert_int_equal(writer_post(f->w, probe_apply, pr, probe_done), 0);
	wait_queued(f, 3);
	store_unlock(f->st);
	pthread_join(ta, NULL);
	pthread_join(tb, NULL);
}

static void test_a_revocation_after_a_rotation_revokes_its_successor(void **state)
{
	struct fixture *f = *state;
	struct credential_issued t = token(f, 0), x = enroll(f, t.secret, "web01", T0);
	struct racer rot = { .f = f }, rev = { .f = f };
	struct probe pr = { .f = f, .secret = x.secret };

	rot.p = auth_ok(f, x.secret, T0);
	rev.id = x.id;
	race(f, racer_rotate, &rot, racer_revoke, &rev, &pr);
	assert_int_equal(rot.r, 0);
	assert_int_equal(rev.r, 0);
	/* when the probe ran, both changes were in the index already */
	assert_int_equal(pr.auth, -EACCES);
	assert_non_null(strstr(pr.denied, "was revoked"));
	assert_int_equal(pr.count, 3);
	/* the successor the rotation issued went with its predecessor */
	auth_denied(f, rot.out.secret, T0 + 2000, "was revoked");
	auth_denied(f, x.secret, T0 + 2000, "was revoked");
}

static void test_two_enrollments_of_one_host_leave_one_credential(void **state)
{
	struct fixture *f = *state;
	struct credential_issued t = token(f, 0);
	struct racer e1 = { .f = f, .host = "web01" }, e2 = { .f = f, .host = "web01" };
	struct probe pr = { .f = f, .secret = t.secret };

	e1.p = auth_ok(f, t.secret, T0);
	e2.p = e1.p;
	race(f, racer_enroll, &e1, racer_enroll, &e2, &pr);
	assert_int_equal(e1.r, 0);
	assert_int_equal(e2.r, 0);
	assert_int_equal(pr.count, 3);
	auth_denied(f, e1.out.secret, T0 + 2000, "replaced when the host enrolled again");
	assert_string_equal(auth_ok(f, e2.out.secret, T0 + 2000).host, "web01");
}

/* Audit entries of action, on the writer's connection (held meanwhile). */
static long long audited(struct fixture *f, const char *action)
{
	sqlite3_stmt *q;
	long long n = -1;

	store_lock(f->st);
	assert_int_equal(store_prepare(f->st, "SELECT count(*) FROM audit"
					      " WHERE action = ?1", &q),
			 0);
	sqlite3_bind_text(q, 1, action, -1, SQLITE_STATIC);
	if (sqlite3_step(q) == SQLITE_ROW)
		n = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	store_unlock(f->st);
	return n;
}

/*
 * An admin's console session that ended while its request ran (the
 * request authenticated before): none of the admin's changes happen,
 * -EKEYREVOKED with the message the client gets.  (Its account's changes are
 * test_session_store's: these sessions are in memory, with no accounts.)
 */
static void test_an_ended_session_s_changes_are_refused(void **state)
{
	struct fixture *f = *state;
	struct credential_issued t = token(f, 0);
	struct credential_issued cred = enroll(f, t.secret, "web01", T0);
	struct console_config conf;
	struct session_issued is;
	struct credential_issued tok;
	struct sessions *s;
	struct principal p = { 0 };
	struct actor by;
	char err[384];
	int64_t id;

	console_config_defaults(&conf);
	assert_int_equal(sessions_new(&s), 0);
	assert_int_equal(session_create(s, &conf, "boss", PERM_ADMIN, NULL, T0,
					&is),
			 0);
	assert_int_equal(session_authenticate(s, &conf, is.secret, is.csrf, true,
					      T0, &p),
			 0);
	session_actor(s, &p, &by);
	assert_int_equal(session_delete(s, p.session_id), 0);

	assert_int_equal(credentials_token_create(f->c, "acme", T0 + DAY, 0, &by,
						  T0, &tok, err, sizeof(err)),
			 -EKEYREVOKED);
	assert_string_equal(err, SESSION_ACTOR_ENDED);
	assert_int_equal(credentials_token_revoke(f->c, t.id, &by, T0, err,
						  sizeof(err)),
			 -EKEYREVOKED);
	assert_int_equal(credentials_revoke(f->c, cred.id, &by, T0, err,
					    sizeof(err)),
			 -EKEYREVOKED);
	assert_int_equal(enrollment_approve(f->c, "web01", NULL, T0 + DAY, &by,
					    T0, &id, err, sizeof(err)),
			 -EKEYREVOKED);
	assert_string_equal(err, SESSION_ACTOR_ENDED);
	/* Nothing changed: the token still enrolls, the credential works. */
	auth_ok(f, cred.secret, T0);
	enroll(f, t.secret, "web02", T0);
	assert_int_equal(audited(f, "enrollment_token.create"), 1);
	assert_int_equal(audited(f, "enrollment_token.revoke"), 0);
	assert_int_equal(audited(f, "credential.revoke"), 0);
	assert_int_equal(audited(f, "enrollment.approve"), 0);
	sessions_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_enrolled_credential_is_bound_to_host_and_customer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tokens_refuse_when_used_up_or_expired, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_host_of_another_customer_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotation_grace_ends_at_first_use_or_after_an_hour, setup, teardown),
		cmocka_unit_test_setup_teardown(test_revocation_and_reopening_agree, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_credentials_are_all_found, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_claim_outlives_revocation_until_an_admin_moves_it, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_host_in_use_needs_an_approval_to_enroll_again, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_host_reporting_with_a_shared_token_is_not_up_for_grabs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_token_for_some_hosts_refuses_others, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotations_are_limited_per_host, setup, teardown),
		cmocka_unit_test_setup_teardown(test_long_ended_entries_are_forgotten, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_revocation_after_a_rotation_revokes_its_successor, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_enrollments_of_one_host_leave_one_credential, setup, teardown),
		cmocka_unit_test_setup_teardown(test_an_ended_session_s_changes_are_refused, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
