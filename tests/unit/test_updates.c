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
				      .unattended = true, .cpu_us = 4711 };
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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_real_simulation_output),
		cmocka_unit_test(test_edge_cases),
		cmocka_unit_test(test_garbage_never_crashes),
		cmocka_unit_test(test_security_patterns),
		cmocka_unit_test(test_apt_config_dump),
		cmocka_unit_test(test_snapshot_survives_in_the_state_database),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
