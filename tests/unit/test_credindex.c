/* The credential index's bulk load at start (server/credindex.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "../../server/credindex.h"

#define NOW 1800000000000LL

/* A live credential of host with secret. */
static struct credindex_row credential(int64_t id, const char *secret,
				       const char *host)
{
	struct credindex_row row = { .kind = CREDINDEX_CREDENTIAL, .id = id,
				     .host = host, .customer = "acme" };

	token_hash(secret, row.hash);
	return row;
}

/* The host secret authenticates as, or "-ENOENT" / "-EACCES". */
static const char *host_of(struct credindex *ix, const char *secret,
			   struct principal *p)
{
	int64_t retire;
	int r = credindex_authenticate(ix, secret, NOW, p, &retire);

	return r == 0 ? p->host : r == -ENOENT ? "-ENOENT" : "-EACCES";
}

static void test_an_empty_load_finds_nothing(void **state)
{
	struct credindex *ix = credindex_new();
	struct principal p;

	(void)state;
	credindex_load_finish(ix);
	assert_int_equal(credindex_count(ix), 0);
	assert_string_equal(host_of(ix, "no-such-secret-000000", &p), "-ENOENT");
	credindex_free(ix);
}

/* Rows in any order, tokens and credentials: each found by hash and id. */
static void test_loaded_rows_are_found_by_hash_and_id(void **state)
{
	enum { N = 5000 };
	struct credindex *ix = credindex_new();
	struct principal p;
	char secret[64], host[32];
	struct credindex_row row;

	(void)state;
	for (int i = 0; i < N; i++) {
		int id = (i * 7919) % N + 1; /* not in id order */

		snprintf(secret, sizeof(secret), "secret-of-credential-%d", id);
		snprintf(host, sizeof(host), "h%d", id);
		row = credential(id, secret, host);
		credindex_load(ix, &row);
	}
	row = (struct credindex_row){ .kind = CREDINDEX_TOKEN, .id = 1,
				      .customer = "acme",
				      .expires_ms = NOW + 3600000 };
	token_hash("an-enrollment-token-0001", row.hash);
	credindex_load(ix, &row);
	credindex_load_finish(ix);
	assert_int_equal(credindex_count(ix), N + 1);
	for (int id = 1; id <= N; id++) {
		snprintf(secret, sizeof(secret), "secret-of-credential-%d", id);
		snprintf(host, sizeof(host), "h%d", id);
		assert_string_equal(host_of(ix, secret, &p), host);
		assert_int_equal(p.credential_id, id);
	}
	assert_int_equal(credindex_authenticate(ix, "an-enrollment-token-0001",
						NOW, &p, &(int64_t){ 0 }),
			 0);
	assert_string_equal(host_of(ix, "secret-of-credential-0", &p), "-ENOENT");
	/* Found by id: a revocation reaches the loaded entry. */
	credindex_revoke(ix, CREDINDEX_CREDENTIAL, 4242, NOW - 1, "revoked");
	assert_string_equal(host_of(ix, "secret-of-credential-4242", &p), "-EACCES");
	/* And an add after the load goes to its place. */
	row = credential(N + 1, "added-after-the-load-0001", "late");
	credindex_add(ix, &row);
	assert_string_equal(host_of(ix, "added-after-the-load-0001", &p), "late");
	assert_string_equal(host_of(ix, "secret-of-credential-1", &p), "h1");
	credindex_free(ix);
}

/* Of two rows with one id the later stays, as with credindex_add(). */
static void test_a_repeated_id_keeps_the_last_row(void **state)
{
	struct credindex *ix = credindex_new();
	struct credindex_row row;
	struct principal p;

	(void)state;
	row = credential(7, "first-secret-of-seven-01", "first");
	credindex_add(ix, &row);
	row = credential(7, "second-secret-of-seven-1", "second");
	credindex_load(ix, &row);
	row = credential(3, "secret-of-three-0000001", "three");
	credindex_load(ix, &row);
	row = credential(7, "third-secret-of-seven-01", "third");
	credindex_load(ix, &row);
	credindex_load_finish(ix);
	assert_int_equal(credindex_count(ix), 2);
	assert_string_equal(host_of(ix, "third-secret-of-seven-01", &p), "third");
	assert_string_equal(host_of(ix, "second-secret-of-seven-1", &p), "-ENOENT");
	assert_string_equal(host_of(ix, "first-secret-of-seven-01", &p), "-ENOENT");
	assert_string_equal(host_of(ix, "secret-of-three-0000001", &p), "three");
	credindex_free(ix);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_an_empty_load_finds_nothing),
		cmocka_unit_test(test_loaded_rows_are_found_by_hash_and_id),
		cmocka_unit_test(test_a_repeated_id_keeps_the_last_row),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
