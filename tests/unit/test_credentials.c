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
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/util.h"
#include "../../server/audit.h"
#include "../../server/credentials.h"
#include "../../server/inventory.h"
#include "../../server/store.h"
#include "../../server/writer.h"

#define T0 1795341600000LL /* 2026-11-22 10:00 UTC */
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
	int fd;

	if (sodium_init() < 0)
		return -1;
	strcpy(f->path, "/tmp/tocsin-test-cred-XXXXXX");
	fd = mkstemp(f->path);
	if (fd < 0)
		return -1;
	close(fd);
	unlink(f->path);
	open_all(f);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;
	char *wal = xasprintf("%s-wal", f->path), *shm = xasprintf("%s-shm", f->path);

	close_all(f);
	unlink(f->path);
	unlink(wal);
	unlink(shm);
	free(wal);
	free(shm);
	free(f);
	return 0;
}

static struct credential_issued token(struct fixture *f, int64_t max_uses)
{
	struct credential_issued t;
	char err[256];

	assert_int_equal(credentials_token_create(f->c, "acme", T0 + 7 * DAY,
						  max_uses, "admin", T0, &t,
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
	int r = credentials_enroll(f->c, &p, host, NULL, now, &cred, err,
				   sizeof(err));

	if (r < 0)
		fail_msg("enroll %s: %s", host, err);
	return cred;
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
						  "admin", T0, &globex, err,
						  sizeof(err)),
			 0);
	p = auth_ok(f, globex.secret, T0);
	assert_int_equal(credentials_enroll(f->c, &p, "web01", NULL, T0, &cred,
					    err, sizeof(err)),
			 -EEXIST);
	assert_non_null(strstr(err, "host web01 belongs to customer acme"));
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
	assert_int_equal(credentials_revoke(f->c, gone.id, "admin", T0, err, sizeof(err)), 0);
	assert_int_equal(credentials_revoke(f->c, gone.id, "admin", T0, err, sizeof(err)),
			 -EALREADY);
	assert_int_equal(credentials_revoke(f->c, 999, "admin", T0, err, sizeof(err)), -ENOENT);
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_enrolled_credential_is_bound_to_host_and_customer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tokens_refuse_when_used_up_or_expired, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_host_of_another_customer_is_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotation_grace_ends_at_first_use_or_after_an_hour, setup, teardown),
		cmocka_unit_test_setup_teardown(test_revocation_and_reopening_agree, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_credentials_are_all_found, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
