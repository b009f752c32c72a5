/*
 * The updates check's parsers: apt-get's simulation output (a real
 * `apt-get -s dist-upgrade` of a Debian 12 machine in
 * tests/unit/fixtures/sim-dist-upgrade.txt, plus hand-made edge cases)
 * and apt-config's dump.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../checks/updates.h"
#include "../../common/util.h"

static const char *const patterns[] = { "*security*", NULL };

static char *slurp(const char *path)
{
	FILE *fp = fopen(path, "r");
	char *buf = xcalloc(1, 1 << 20);
	size_t n;

	assert_non_null(fp);
	n = fread(buf, 1, (1 << 20) - 1, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

static const struct updates_pkg *find(const struct updates_sim *sim,
				      const char *name)
{
	for (size_t i = 0; i < sim->n; i++)
		if (strcmp(sim->v[i].name, name) == 0)
			return &sim->v[i];
	return NULL;
}

static void test_real_simulation_output(void **state)
{
	char *out = slurp("tests/unit/fixtures/sim-dist-upgrade.txt");
	struct updates_sim sim = { 0 };
	const struct updates_pkg *p;
	size_t bad = 99;

	(void)state;
	/* "Conf" lines and the human-readable header are not counted */
	assert_int_equal(updates_parse_sim(out, patterns, &sim, &bad), 17);
	assert_int_equal(bad, 0);
	assert_int_equal(sim.upgrades, 17);
	assert_int_equal(sim.security, 9);
	assert_int_equal(sim.installs, 0);
	p = find(&sim, "login");
	assert_non_null(p);
	assert_string_equal(p->from, "1:4.13+dfsg1-1+deb12u1");
	assert_string_equal(p->to, "1:4.13+dfsg1-1+deb12u2");
	assert_false(p->security);
	/* trailing "[libpam-modules:amd64 on ...]" does not confuse it */
	p = find(&sim, "libpam-modules-bin");
	assert_non_null(p);
	assert_string_equal(p->to, "1.5.2-6+deb12u3");
	assert_true(p->security);
	updates_sim_clear(&sim);
	free(out);
}

static void test_edge_cases(void **state)
{
	char *out = slurp("tests/unit/fixtures/sim-edge.txt");
	struct updates_sim sim = { 0 };
	const struct updates_pkg *p;
	size_t bad = 0;

	(void)state;
	assert_int_equal(updates_parse_sim(out, patterns, &sim, &bad), 5);
	assert_int_equal(bad, 1); /* "Inst broken-line-without-parens" */
	assert_int_equal(sim.upgrades, 3);
	assert_int_equal(sim.installs, 1);
	assert_int_equal(sim.removals, 1);
	assert_int_equal(sim.security, 1);
	/* in two releases, one of them security */
	p = find(&sim, "libssl3");
	assert_true(p->security);
	/* -updates is not -security */
	assert_false(find(&sim, "tzdata")->security);
	/* a candidate with no release at all (local status only) */
	p = find(&sim, "local-pkg");
	assert_string_equal(p->to, "1.1");
	assert_false(p->security);
	p = find(&sim, "linux-image-6.1.0-29-amd64");
	assert_null(p->from);
	assert_string_equal(p->to, "6.1.123-1");
	updates_sim_clear(&sim);
	free(out);
}

static void test_garbage_never_crashes(void **state)
{
	static const char *const inputs[] = {
		"", "Inst", "Inst ", "Inst x", "Inst x [", "Inst x [1", "Inst x [1]",
		"Inst x [1] (", "Inst x [1] (2", "Inst x (", "Inst x ()", "Inst  (1 a)",
		"Inst x [1] (2 [amd64])", "Inst x [1] (2 Debian-Security:12/s [amd64]",
		"Remv", "\n\n\nInst\n",
	};

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(inputs); i++) {
		struct updates_sim sim = { 0 };

		updates_parse_sim(inputs[i], patterns, &sim, NULL);
		updates_sim_clear(&sim);
	}
}

static void test_security_patterns(void **state)
{
	static const char *const origin_only[] = { "Debian-Security:*", NULL };
	const char *r = "Debian:12.15/oldstable, Debian-Security:12/oldstable-security";

	(void)state;
	assert_true(updates_release_is_security(r, strlen(r), patterns));
	assert_true(updates_release_is_security(r, strlen(r), origin_only));
	r = "Debian:12.15/oldstable-updates";
	assert_false(updates_release_is_security(r, strlen(r), patterns));
	/* case does not matter: Ubuntu writes "Ubuntu:22.04/jammy-security" */
	r = "Ubuntu:22.04/jammy-SECURITY";
	assert_true(updates_release_is_security(r, strlen(r), patterns));
	assert_false(updates_release_is_security("", 0, patterns));
}

static void test_apt_config_dump(void **state)
{
	const char *dump =
		"APT \"\";\n"
		"APT::Periodic \"\";\n"
		"APT::Periodic::Update-Package-Lists \"1\";\n"
		"APT::Periodic::Unattended-Upgrade \"1\";\n"
		"APT::Periodic::Unattended-Upgrade-Extra \"0\";\n";
	char *v;

	(void)state;
	v = updates_apt_config_value(dump, "APT::Periodic::Unattended-Upgrade");
	assert_string_equal(v, "1");
	free(v);
	assert_null(updates_apt_config_value(dump, "APT::Periodic::Enable"));
	assert_null(updates_apt_config_value("APT::Periodic::Unattended-Upgrade \"1",
					     "APT::Periodic::Unattended-Upgrade"));

	assert_true(updates_unattended_enabled(NULL, "1"));
	assert_true(updates_unattended_enabled("1", "always"));
	assert_false(updates_unattended_enabled(NULL, "0"));
	assert_false(updates_unattended_enabled(NULL, NULL));
	/* Enable "0" switches all of APT::Periodic off */
	assert_false(updates_unattended_enabled("0", "1"));
}

/*
 * The snapshot a restarted agent reports from: what was saved comes
 * back, counts included, and only under the key it was saved with.
 */
static void test_snapshot_survives_in_the_state_database(void **state)
{
	struct updates_sim sim = { 0 };
	struct updates_snapshot s = { .valid = true, .at_ms = 1795341600123LL,
				      .unattended = true, .cpu_us = 4711,
				      .inputs = 0xfedcba9876543210ULL };
	struct updates_snapshot back = { 0 };
	sqlite3 *db;

	(void)state;
	assert_int_equal(sqlite3_open(":memory:", &db), SQLITE_OK);
	updates_parse_sim("Inst libssl3 [3.0.11-1] (3.0.13-1 Debian-Security:12/stable-security [amd64])\n"
			  "Inst tool [1.0] (1.1 Debian:12/stable [all])\n"
			  "Inst newdep (2.0 Debian:12/stable [all])\n"
			  "Remv oldpkg [0.9]\n",
			  patterns, &sim, NULL);
	s.sim = sim;
	assert_int_equal(updates_state_load(db, "k", &back), -ENOENT);
	assert_int_equal(updates_state_save(db, "k", &s), 0);
	assert_int_equal(updates_state_load(db, "other", &back), -ENOENT);
	assert_int_equal(updates_state_load(db, "k", &back), 0);
	assert_true(back.valid && back.seeded);
	assert_int_equal(back.at_ms, s.at_ms);
	assert_true(back.unattended);
	assert_int_equal(back.cpu_us, 4711);
	assert_true(back.inputs == 0xfedcba9876543210ULL);
	assert_null(back.sim_error);
	assert_int_equal(back.sim.n, 3);
	assert_int_equal(back.sim.upgrades, 2);
	assert_int_equal(back.sim.security, 1);
	assert_int_equal(back.sim.installs, 1);
	assert_int_equal(back.sim.removals, 1);
	assert_string_equal(back.sim.v[0].name, "libssl3");
	assert_string_equal(back.sim.v[0].from, "3.0.11-1");
	assert_true(back.sim.v[0].security);
	assert_null(back.sim.v[2].from);
	updates_snapshot_clear(&back);

	/* an error is a snapshot too: a restart reports it again */
	updates_snapshot_clear(&s);
	s = (struct updates_snapshot){ .valid = true, .at_ms = 1,
				       .sim_error = xstrdup("apt-get exited with status 100"),
				       .unattended_error = xstrdup("apt-config did not run") };
	assert_int_equal(updates_state_save(db, "k", &s), 0);
	assert_int_equal(updates_state_load(db, "k", &back), 0);
	assert_string_equal(back.sim_error, "apt-get exited with status 100");
	assert_string_equal(back.unattended_error, "apt-config did not run");
	assert_int_equal(back.sim.n, 0);
	updates_snapshot_clear(&back);
	updates_snapshot_clear(&s);
	sqlite3_close(db);
}

static char *join(char *buf, size_t size, const char *a, const char *b)
{
	snprintf(buf, size, "%s%s", a, b);
	return buf;
}

static void write_file(const char *dir, const char *name, const char *text)
{
	char *path = xasprintf("%s/%s", dir, name);
	FILE *fp = fopen(path, "we");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
	free(path);
}

/* A modification time one second later, as apt update would leave it. */
static void touch_later(const char *dir, const char *name)
{
	char *path = xasprintf("%s/%s", dir, name);
	struct stat st;

	assert_int_equal(stat(path, &st), 0);
	st.st_mtim.tv_sec++;
	assert_int_equal(utimensat(AT_FDCWD, path,
				   (struct timespec[]){ st.st_atim, st.st_mtim }, 0), 0);
	free(path);
}

/*
 * The fingerprint that tells whether apt would answer differently: it
 * changes with a file's time, content size, a new file, a file in a
 * subdirectory when the input goes that deep, a path that appears; not
 * with apt's lock files, nor with the order of a directory's entries.
 */
static void test_inputs_fingerprint(void **state)
{
	char root[] = "/tmp/tocsin-test-inputs-XXXXXX";
	char *lists, *etc, *sub, *status, *lock, path[256];
	uint64_t before, after;

	(void)state;
	assert_non_null(mkdtemp(root));
	lists = xasprintf("%s/lists", root);
	etc = xasprintf("%s/etc", root);
	sub = xasprintf("%s/etc/sources.list.d", root);
	status = xasprintf("%s/status", root);
	lock = xasprintf("%s/lists/partial", root);
	assert_int_equal(mkdir(lists, 0755), 0);
	assert_int_equal(mkdir(etc, 0755), 0);
	assert_int_equal(mkdir(sub, 0755), 0);
	write_file(lists, "a_InRelease", "a");
	write_file(lists, "a_Packages", "pkgs");
	write_file(root, "status", "Package: x\n");
	write_file(sub, "one.sources", "Types: deb\n");
	{
		const struct updates_input in[] = {
			{ lists, 1 }, { status, 0 }, { etc, 2 },
		};
		const struct updates_input shallow[] = { { etc, 1 } };
		uint64_t shallow_before = updates_inputs_fingerprint(shallow, 1);
		const size_t n = ARRAY_SIZE(in);

		before = updates_inputs_fingerprint(in, n);
		assert_true(updates_inputs_fingerprint(in, n) == before);

		touch_later(lists, "a_InRelease");
		after = updates_inputs_fingerprint(in, n);
		assert_true(after != before);
		before = after;

		write_file(root, "status", "Package: x\nPackage: y\n");
		after = updates_inputs_fingerprint(in, n);
		assert_true(after != before);
		before = after;

		/* a file added and removed again: the same fingerprint */
		write_file(lists, "b_Packages", "more");
		after = updates_inputs_fingerprint(in, n);
		assert_true(after != before);
		assert_int_equal(unlink(join(path, sizeof(path), lists, "/b_Packages")), 0);
		assert_true(updates_inputs_fingerprint(in, n) == before);

		/* two levels below etc count at depth 2, not at depth 1 */
		write_file(sub, "two.sources", "Types: deb\n");
		after = updates_inputs_fingerprint(in, n);
		assert_true(after != before);
		before = after;
		assert_true(updates_inputs_fingerprint(shallow, 1) == shallow_before);

		/* apt's lock, its download directory and hidden files: no change */
		write_file(lists, "lock", "");
		assert_int_equal(mkdir(lock, 0700), 0);
		write_file(lock, "x_Packages", "half");
		write_file(lists, ".hidden", "");
		assert_true(updates_inputs_fingerprint(in, n) == before);

		/* a missing path counts too: its appearing is a change */
		const struct updates_input missing[] = { { sub, 1 }, { "", 0 },
							 { NULL, 0 } };
		const struct updates_input gone[] = {
			{ join(path, sizeof(path), root, "/absent"), 0 } };
		uint64_t absent = updates_inputs_fingerprint(gone, 1);

		write_file(root, "absent", "");
		assert_true(updates_inputs_fingerprint(gone, 1) != absent);
		/* empty and NULL paths are left out */
		assert_true(updates_inputs_fingerprint(missing, 3) ==
			    updates_inputs_fingerprint(missing, 1));
	}
	free(lists);
	free(etc);
	free(sub);
	free(status);
	free(lock);
	assert_int_equal(system(join(path, sizeof(path), "rm -rf ", root)), 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_simulation_output),
		cmocka_unit_test(test_edge_cases),
		cmocka_unit_test(test_garbage_never_crashes),
		cmocka_unit_test(test_security_patterns),
		cmocka_unit_test(test_apt_config_dump),
		cmocka_unit_test(test_snapshot_survives_in_the_state_database),
		cmocka_unit_test(test_inputs_fingerprint),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
