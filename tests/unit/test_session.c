/*
 * Console sessions with a clock the test holds: the idle and absolute
 * deadlines to the millisecond, the CSRF check, the limit on sessions,
 * and the failed-login windows per account and per address.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <string.h>

#include "../../server/session.h"

static struct console_config conf(void)
{
	struct console_config c;

	console_config_defaults(&c);
	c.idle_ms = 1000;
	c.absolute_ms = 5000;
	c.max_sessions = 3;
	c.login_failures = 2;
	c.login_window_ms = 10000;
	return c;
}

static int auth(struct sessions *s, const struct console_config *c,
		const struct session_issued *is, const char *csrf,
		bool changing, int64_t now, struct principal *p)
{
	*p = (struct principal){ 0 };
	return session_authenticate(s, c, is->secret, csrf, changing, now, p);
}

static void test_idle_and_absolute_deadlines(void **state)
{
	struct console_config c = conf();
	struct sessions *s;
	struct session_issued is;
	struct principal p;
	int64_t t;

	(void)state;
	sessions_new(&s);
	session_create(s, &c, "carol", 6, NULL, 0, &is);
	assert_int_equal(strlen(is.secret), 43);
	assert_int_equal(is.idle_expires_ms, 1000);
	assert_int_equal(is.expires_ms, 5000);
	assert_int_equal(auth(s, &c, &is, NULL, false, 999, &p), 0);
	assert_string_equal(p.name, "carol");
	assert_int_equal(p.perms, 6);
	assert_true(p.session_id > 0);
	/* Each request moves the idle deadline, never the absolute one. */
	for (t = 999; t < 5000; t += 999)
		assert_int_equal(auth(s, &c, &is, NULL, false, t, &p), 0);
	assert_int_equal(auth(s, &c, &is, NULL, false, 5000, &p), -EACCES);
	assert_string_equal(p.denied, "the session expired: log in again");
	/* Expired sessions are gone, not kept. */
	assert_int_equal(session_count(s), 0);

	session_create(s, &c, "carol", 6, NULL, 10000, &is);
	assert_int_equal(auth(s, &c, &is, NULL, false, 11000, &p), -EACCES);
	sessions_free(s);
}

/* Cookies of another length, one character off or empty, are no session. */
static void test_a_cookie_of_the_wrong_shape_is_no_session(void **state)
{
	struct console_config c = conf();
	struct sessions *s;
	struct session_issued is;
	struct principal p;
	char cut[SESSION_SECRET_LEN], longer[SESSION_SECRET_LEN + 1];

	(void)state;
	sessions_new(&s);
	session_create(s, &c, "carol", 6, NULL, 0, &is);
	memcpy(cut, is.secret, sizeof(cut));
	cut[strlen(cut) - 1] = '\0';
	snprintf(longer, sizeof(longer), "%sA", is.secret);
	for (int i = 0; i < 3; i++) {
		const char *cookie = i == 0 ? cut : i == 1 ? longer : "";

		memset(&p, 0, sizeof(p));
		assert_int_equal(session_authenticate(s, &c, cookie, NULL, false, 1, &p),
				 -EACCES);
		assert_string_equal(p.denied,
				    "no such session (logged out, expired or ended by a change of its account): log in again");
	}
	assert_int_equal(session_authenticate(s, &c, is.secret, NULL, false, 1, &p), 0);
	sessions_free(s);
}

static void test_csrf_only_for_changes_and_exact(void **state)
{
	struct console_config c = conf();
	struct sessions *s;
	struct session_issued is, got;
	struct principal p;
	char wrong[SESSION_SECRET_LEN];

	(void)state;
	sessions_new(&s);
	session_create(s, &c, "carol", 6, NULL, 0, &is);
	assert_int_equal(auth(s, &c, &is, NULL, false, 1, &p), 0);
	assert_int_equal(auth(s, &c, &is, NULL, true, 1, &p), -EPERM);
	assert_non_null(strstr(p.denied, "X-Tocsin-CSRF"));
	memcpy(wrong, is.csrf, sizeof(wrong));
	wrong[0] = wrong[0] == 'A' ? 'B' : 'A';
	assert_int_equal(auth(s, &c, &is, wrong, true, 1, &p), -EPERM);
	wrong[42] = '\0'; /* a prefix is no match either */
	memcpy(wrong, is.csrf, 42);
	assert_int_equal(auth(s, &c, &is, wrong, true, 1, &p), -EPERM);
	assert_int_equal(auth(s, &c, &is, "", true, 1, &p), -EPERM);
	assert_int_equal(auth(s, &c, &is, is.csrf, true, 1, &p), 0);
	/* The token can be asked for again, the secret not. */
	assert_int_equal(session_get(s, &c, p.session_id, &got), 0);
	assert_string_equal(got.csrf, is.csrf);
	assert_string_equal(got.secret, "");
	/* A logout ends it. */
	assert_int_equal(session_delete(s, p.session_id), 0);
	assert_int_equal(session_delete(s, p.session_id), -ENOENT);
	assert_int_equal(auth(s, &c, &is, is.csrf, false, 2, &p), -EACCES);
	sessions_free(s);
}

static void test_the_idlest_session_makes_room(void **state)
{
	struct console_config c = conf();
	struct sessions *s;
	struct session_issued a, b, d, e;
	struct principal p;

	(void)state;
	sessions_new(&s);
	session_create(s, &c, "a", 2, NULL, 0, &a);
	session_create(s, &c, "b", 2, NULL, 10, &b);
	session_create(s, &c, "d", 2, NULL, 20, &d);
	assert_int_equal(auth(s, &c, &a, NULL, false, 30, &p), 0); /* a is busy */
	session_create(s, &c, "e", 2, NULL, 40, &e);
	assert_int_equal(session_count(s), 3);
	assert_int_equal(auth(s, &c, &b, NULL, false, 50, &p), -EACCES);
	assert_int_equal(auth(s, &c, &a, NULL, false, 50, &p), 0);
	assert_int_equal(session_delete_account(s, "a"), 1);
	assert_int_equal(auth(s, &c, &a, NULL, false, 60, &p), -EACCES);
	assert_int_equal(auth(s, &c, &e, NULL, false, 60, &p), 0);
	sessions_free(s);
}

static void test_failed_logins_per_account_and_address(void **state)
{
	struct console_config c = conf();
	struct sessions *s;

	(void)state;
	sessions_new(&s);
	assert_int_equal(session_login_blocked(s, &c, "carol", "10.0.0.1", 0), 0);
	session_login_failed(s, &c, "carol", true, "10.0.0.1", 0);
	assert_int_equal(session_login_blocked(s, &c, "carol", "10.0.0.1", 1), 0);
	session_login_failed(s, &c, "carol", true, "10.0.0.2", 1000);
	/* The account failed twice, from two addresses: blocked from any. */
	assert_int_equal(session_login_blocked(s, &c, "carol", "10.0.0.9", 1500), 9);
	assert_int_equal(session_login_blocked(s, &c, "dave", "10.0.0.9", 1500), 0);
	assert_int_equal(session_login_blocked(s, &c, "carol", "10.0.0.9", 9999), 1);
	/* The window ends 10 s after its first failure. */
	assert_int_equal(session_login_blocked(s, &c, "carol", "10.0.0.9", 10000), 0);
	/* An address that failed for two accounts is blocked for all. */
	session_login_failed(s, &c, "x", false, "10.0.0.5", 20000);
	session_login_failed(s, &c, "y", true, "10.0.0.5", 20000);
	assert_int_equal(session_login_blocked(s, &c, "dave", "10.0.0.5", 20000), 10);
	/* A success forgets the account's failures, not the address's. */
	session_login_failed(s, &c, "erin", true, "10.0.0.6", 20000);
	session_login_failed(s, &c, "erin", true, "10.0.0.7", 20000);
	session_login_succeeded(s, "erin");
	assert_int_equal(session_login_blocked(s, &c, "erin", "10.0.0.8", 20001), 0);
	sessions_free(s);
}

/*
 * An unknown name is limited like an account (else the answer would tell
 * which names exist): two failures from two addresses block it from a
 * third, as for carol above.
 */
static void test_an_unknown_name_is_limited_like_an_account(void **state)
{
	struct console_config c = conf();
	struct sessions *s;

	(void)state;
	sessions_new(&s);
	session_login_failed(s, &c, "nobody", false, "10.0.0.1", 0);
	session_login_failed(s, &c, "nobody", false, "10.0.0.2", 1000);
	assert_int_equal(session_login_blocked(s, &c, "nobody", "10.0.0.9", 1500), 9);
	assert_int_equal(session_login_blocked(s, &c, "nobody", "10.0.0.9", 10000), 0);
	sessions_free(s);
}

/* "10.%d.%d.%d" of i: one address per i (under 2^24). */
static void address_of(int i, char *buf, size_t size)
{
	snprintf(buf, size, "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255,
		 i & 255);
}

static void test_many_counters_stay_bounded(void **state)
{
	struct console_config c = conf();
	struct sessions *s;
	char name[32];

	(void)state;
	c.login_window_ms = 3600 * 1000;
	sessions_new(&s);
	session_login_failed(s, &c, "carol", true, "10.0.0.1", 0);
	/* A flood of other names evicts the stalest counters, not memory. */
	for (int i = 0; i < 10000; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		session_login_failed(s, &c, name, false, "10.0.0.2", 1 + i);
	}
	/* carol's one failure is still counted: one more blocks her. */
	session_login_failed(s, &c, "carol", true, "10.0.0.3", 10001);
	assert_int_equal(session_login_blocked(s, &c, "carol", "10.0.0.4", 10001),
			 3590);
	/* The first names were forgotten: they are not blocked. */
	session_login_failed(s, &c, "n0", false, "10.0.0.5", 10001);
	assert_int_equal(session_login_blocked(s, &c, "n0", "10.0.0.4", 10001), 0);
	sessions_free(s);
}

/*
 * The flush: a real account fails to its limit, then made-up names fail
 * from thousands of other addresses, more than any table holds.  The
 * account stays blocked, and so does an address that is blocked.
 */
static void test_made_up_names_cannot_flush_an_account(void **state)
{
	struct console_config c = conf();
	struct sessions *s;
	char name[32], address[32];

	(void)state;
	c.login_failures = 5;
	c.login_window_ms = 3600 * 1000;
	sessions_new(&s);
	for (int i = 0; i < 5; i++)
		session_login_failed(s, &c, "carol", true, "192.0.2.1", 0);
	randombytes_stir();
	for (int i = 0; i < 5000; i++) {
		snprintf(name, sizeof(name), "guess-%08x", randombytes_random());
		address_of(i + 100, address, sizeof(address));
		session_login_failed(s, &c, name, false, address, 1 + i);
	}
	assert_int_equal(session_login_blocked(s, &c, "carol", "198.51.100.7", 10000),
			 3590);
	assert_int_equal(session_login_blocked(s, &c, "dave", "192.0.2.1", 10000),
			 3590);
	/* And more real accounts than one table of unknown names holds. */
	for (int i = 0; i < 6000; i++) {
		snprintf(name, sizeof(name), "account%d", i);
		address_of(i + 100000, address, sizeof(address));
		session_login_failed(s, &c, name, true, address, 20000 + i);
	}
	assert_int_equal(session_login_blocked(s, &c, "carol", "198.51.100.7", 30000),
			 3570);
	sessions_free(s);
}

/* A blocking counter goes last: 4,096 other names at once do not reset one. */
static void test_a_blocking_counter_is_evicted_last(void **state)
{
	struct console_config c = conf();
	struct sessions *s;
	char name[32], address[32];

	(void)state;
	c.login_window_ms = 3600 * 1000;
	sessions_new(&s);
	session_login_failed(s, &c, "ghost", false, "192.0.2.1", 0);
	session_login_failed(s, &c, "ghost", false, "192.0.2.1", 0);
	for (int i = 0; i < 10000; i++) {
		snprintf(name, sizeof(name), "n%d", i);
		address_of(i + 100, address, sizeof(address));
		session_login_failed(s, &c, name, false, address, 1 + i);
	}
	assert_int_equal(session_login_blocked(s, &c, "ghost", "198.51.100.7", 20000),
			 3580);
	assert_int_equal(session_login_blocked(s, &c, "dave", "192.0.2.1", 20000),
			 3580);
	sessions_free(s);
}

/* IPv6 clients by their /64, IPv4-mapped ones as the IPv4 address. */
static void test_ipv6_addresses_count_by_their_64(void **state)
{
	struct console_config c = conf();
	struct sessions *s;

	(void)state;
	sessions_new(&s);
	session_login_failed(s, &c, "a", false, "2001:db8:1:2::1", 0);
	session_login_failed(s, &c, "b", false, "2001:db8:1:2:ffff:eeee:dddd:cccc", 0);
	assert_int_equal(session_login_blocked(s, &c, "z", "2001:db8:1:2::99", 0), 10);
	assert_int_equal(session_login_blocked(s, &c, "z", "2001:DB8:1:2:0::7", 0), 10);
	/* The neighbouring /64s are other networks. */
	assert_int_equal(session_login_blocked(s, &c, "z", "2001:db8:1:3::1", 0), 0);
	assert_int_equal(session_login_blocked(s, &c, "z", "2001:db8:1:1::1", 0), 0);
	assert_int_equal(session_login_blocked(s, &c, "z", "2001:db9:1:2::1", 0), 0);
	/* A link-local address with its zone is its /64 too. */
	session_login_failed(s, &c, "a", false, "fe80::1%eth0", 0);
	session_login_failed(s, &c, "b", false, "fe80::2%eth1", 0);
	assert_int_equal(session_login_blocked(s, &c, "z", "fe80::3", 0), 10);

	/* IPv4 by the whole address, mapped or not. */
	session_login_failed(s, &c, "a", false, "::ffff:10.1.2.3", 0);
	session_login_failed(s, &c, "b", false, "10.1.2.3", 0);
	assert_int_equal(session_login_blocked(s, &c, "z", "10.1.2.3", 0), 10);
	assert_int_equal(session_login_blocked(s, &c, "z", "::ffff:10.1.2.3", 0), 10);
	assert_int_equal(session_login_blocked(s, &c, "z", "10.1.2.4", 0), 0);
	assert_int_equal(session_login_blocked(s, &c, "z", "::ffff:10.1.2.4", 0), 0);
	/* The mapped /64 is not one network: ::ffff:0:0/96 is all of IPv4. */
	assert_int_equal(session_login_blocked(s, &c, "z", "::ffff:10.9.9.9", 0), 0);
	sessions_free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_idle_and_absolute_deadlines),
		cmocka_unit_test(test_a_cookie_of_the_wrong_shape_is_no_session),
		cmocka_unit_test(test_csrf_only_for_changes_and_exact),
		cmocka_unit_test(test_the_idlest_session_makes_room),
		cmocka_unit_test(test_failed_logins_per_account_and_address),
		cmocka_unit_test(test_an_unknown_name_is_limited_like_an_account),
		cmocka_unit_test(test_many_counters_stay_bounded),
		cmocka_unit_test(test_made_up_names_cannot_flush_an_account),
		cmocka_unit_test(test_a_blocking_counter_is_evicted_last),
		cmocka_unit_test(test_ipv6_addresses_count_by_their_64),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
