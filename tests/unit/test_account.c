/*
 * Console accounts on a real SQLite file with the real writer: Argon2id
 * hashes, verification, a weaker hash replaced at the next login, the
 * audit trail, and what a reopened store still knows.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/util.h"
#include "../../server/account.h"
#include "../../server/audit.h"
#include "../../server/server.h"
#include "../../server/store.h"
#include "../../server/writer.h"
#include "tmpdb.h"

#define T0 1795341600000LL
/* Changes made by a configured admin token: nothing to check. */
#define ADMIN ACTOR_UNCHECKED("admin")

struct fixture {
	char path[64];
	struct store *st;
	struct audit *audit;
	struct accounts *a;
	struct writer *w;
};

static void open_all(struct fixture *f)
{
	assert_int_equal(store_open(f->path, &f->st), 0);
	assert_int_equal(audit_open(f->st, &f->audit), 0);
	assert_int_equal(accounts_open(f->st, f->audit, &f->a), 0);
	assert_int_equal(writer_start(f->st, 64, 16, &f->w), 0);
	accounts_attach_writer(f->a, f->w);
}

static void close_all(struct fixture *f)
{
	writer_stop(f->w); /* runs what was posted (a rehash) first */
	accounts_close(f->a);
	audit_close(f->audit);
	store_close(f->st);
}

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));

	if (tmpdb_make(f->path, sizeof(f->path), "account") < 0)
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

/* One column of one row, as a malloc'ed string, straight from the file. */
static char *query(struct fixture *f, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *s;
	char *v = NULL;

	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &s, NULL), SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW)
		v = xstrdup((const char *)sqlite3_column_text(s, 0));
	sqlite3_finalize(s);
	sqlite3_close(db);
	return v;
}

/* carol, a technician, created and her password checked. */
static void carol_created_and_checked(struct fixture *f, unsigned *ret_perms,
				      struct account_stamp *ret_stamp)
{
	char err[256];

	assert_int_equal(account_set(f->a, "carol", "technician",
				     "correct horse battery", ADMIN, T0, err,
				     sizeof(err)),
			 1);
	assert_int_equal(account_verify(f->a, "carol", "correct horse battery",
					ret_perms, ret_stamp),
			 0);
}

static void test_set_verify_and_reopen(void **state)
{
	struct fixture *f = *state;
	struct account_stamp stamp;
	char err[256];
	unsigned perms = 0;
	char *hash, *trail;

	carol_created_and_checked(f, &perms, &stamp);
	assert_int_equal(perms, PERM_READ | PERM_WRITE);
	perms = 0;
	assert_int_equal(account_verify(f->a, "carol", "wrong", &perms, &stamp), -EACCES);
	assert_int_equal(account_verify(f->a, "nobody", "wrong", &perms, &stamp), -ENOENT);
	assert_int_equal(perms, 0); /* untouched on failure */
	/* Replacing is 0, with a new hash. */
	assert_int_equal(account_set(f->a, "carol", "admin", "another password",
				     ADMIN, T0 + 1, err, sizeof(err)),
			 0);
	assert_int_equal(account_verify(f->a, "carol", "correct horse battery",
					&perms, &stamp),
			 -EACCES);
	close_all(f);
	hash = query(f, "SELECT password_hash FROM accounts WHERE name = 'carol'");
	assert_non_null(strstr(hash, "$argon2id$v=19$m=65536,t=2,p=1$"));
	trail = query(f, "SELECT group_concat(action || ' ' || target || ' ' || detail, ', ')"
			 " FROM audit");
	assert_string_equal(trail, "account.create carol technician, account.update carol admin");
	free(hash);
	free(trail);
	/* What the store knows comes back. */
	open_all(f);
	assert_int_equal(account_verify(f->a, "carol", "another password", &perms, &stamp), 0);
	assert_int_equal(perms, PERM_READ | PERM_WRITE | PERM_ADMIN);
	assert_int_equal(account_delete(f->a, "carol", ADMIN, T0 + 2), 0);
	assert_int_equal(account_delete(f->a, "carol", ADMIN, T0 + 3), -ENOENT);
	assert_int_equal(account_verify(f->a, "carol", "another password", &perms, &stamp),
			 -ENOENT);
}

static void test_bad_input_is_refused_with_a_reason(void **state)
{
	struct fixture *f = *state;
	char err[256];
	json_t *list;

	assert_int_equal(account_set(f->a, "", "viewer", "long enough!", ADMIN,
				     T0, err, sizeof(err)),
			 -EINVAL);
	assert_non_null(strstr(err, "use 1 to 63 letters"));
	assert_int_equal(account_set(f->a, "a/b", "viewer", "long enough!",
				     ADMIN, T0, err, sizeof(err)),
			 -EINVAL);
	assert_int_equal(account_set(f->a, "carol", "agent", "long enough!",
				     ADMIN, T0, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "role: 'agent' is not one of viewer, technician, admin");
	assert_int_equal(account_set(f->a, "carol", "viewer", "short", ADMIN,
				     T0, err, sizeof(err)),
			 -EINVAL);
	assert_string_equal(err, "password: 5 characters; it needs 10 to 1024");
	list = account_list(f->a);
	assert_int_equal(json_array_size(list), 0); /* nothing was stored */
	json_decref(list);
}

static void test_a_weaker_hash_is_replaced_at_login(void **state)
{
	struct fixture *f = *state;
	char weak[crypto_pwhash_STRBYTES], err[256], *sql, *hash;
	struct account_stamp stamp;
	unsigned perms;
	sqlite3 *db;

	assert_int_equal(account_set(f->a, "carol", "viewer", "correct horse battery",
				     ADMIN, T0, err, sizeof(err)),
			 1);
	close_all(f);
	/* As an older collector with lower limits would have stored it. */
	assert_int_equal(crypto_pwhash_str(weak, "correct horse battery", 21,
					   crypto_pwhash_OPSLIMIT_MIN,
					   crypto_pwhash_MEMLIMIT_MIN),
			 0);
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	sql = sqlite3_mprintf("UPDATE accounts SET password_hash = %Q", weak);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_free(sql);
	sqlite3_close(db);
	open_all(f);
	assert_int_equal(account_verify(f->a, "carol", "correct horse battery", &perms, &stamp), 0);
	close_all(f); /* the writer runs the posted rehash before it stops */
	hash = query(f, "SELECT password_hash FROM accounts");
	assert_string_not_equal(hash, weak);
	assert_non_null(strstr(hash, "$argon2id$v=19$m=65536,t=2,p=1$"));
	assert_int_equal(crypto_pwhash_str_verify(hash, "correct horse battery", 21), 0);
	free(hash);
	open_all(f);
}

/*
 * A password change proves the current password, then sets the new one:
 * not over an administrator's change or deletion made in between (the
 * account would come back, or the reset be undone by who knew the old
 * password); its own change makes the stamp it used stale too.
 */
static void test_a_password_change_does_not_undo_a_change_made_meanwhile(
	void **state)
{
	struct fixture *f = *state;
	struct account_stamp stamp, fresh;
	unsigned perms;
	char err[256];
	json_t *list;

	carol_created_and_checked(f, &perms, &stamp);
	/* An administrator resets it meanwhile. */
	assert_int_equal(account_set(f->a, "carol", "viewer", "reset by the admin",
				     ADMIN, T0 + 1, err, sizeof(err)),
			 0);
	assert_int_equal(account_set_unchanged(f->a, "carol", &stamp, "technician",
					       "chosen by carol", "carol", T0 + 2,
					       err, sizeof(err)),
			 -ESTALE);
	assert_string_equal(err, "account 'carol' changed or was deleted since its password was checked: nothing was changed");
	assert_int_equal(account_verify(f->a, "carol", "reset by the admin",
					&perms, &fresh),
			 0);
	assert_int_equal(perms, PERM_READ);
	assert_true(fresh.generation != stamp.generation);
	/* Unchanged: it applies, and makes the stamp stale in its turn. */
	assert_int_equal(account_set_unchanged(f->a, "carol", &fresh, "viewer",
					       "chosen by carol", "carol", T0 + 3,
					       err, sizeof(err)),
			 0);
	assert_int_equal(account_set_unchanged(f->a, "carol", &fresh, "viewer",
					       "chosen again", "carol", T0 + 4,
					       err, sizeof(err)),
			 -ESTALE);
	assert_int_equal(account_verify(f->a, "carol", "chosen by carol", &perms,
					&stamp),
			 0);
	/* Deleted meanwhile: not created again. */
	assert_int_equal(account_delete(f->a, "carol", ADMIN, T0 + 5), 0);
	assert_int_equal(account_set_unchanged(f->a, "carol", &stamp, "viewer",
					       "chosen again", "carol", T0 + 6,
					       err, sizeof(err)),
			 -ESTALE);
	list = account_list(f->a);
	assert_int_equal(json_array_size(list), 0);
	json_decref(list);
	close_all(f);
	open_all(f);
	list = account_list(f->a);
	assert_int_equal(json_array_size(list), 0);
	json_decref(list);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_set_verify_and_reopen, setup, teardown),
		cmocka_unit_test_setup_teardown(test_bad_input_is_refused_with_a_reason,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_weaker_hash_is_replaced_at_login,
						setup, teardown),
		cmocka_unit_test_setup_teardown(
			test_a_password_change_does_not_undo_a_change_made_meanwhile,
			setup, teardown),
	};

	if (sodium_init() < 0)
		return 1;
	return cmocka_run_group_tests(tests, NULL, NULL);
}
