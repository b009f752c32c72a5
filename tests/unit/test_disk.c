/* The disk check: thresholds, summaries, mount selection. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../checks/check.h"
#include "../../checks/disk.h"
#include "../../common/config.h"
#include "../../common/util.h"

#define GiB (1024ULL * 1024 * 1024)

static const struct disk_thresholds defaults = {
	.warning_pct = 90,
	.critical_pct = 95,
	.inodes_warning_pct = 90,
	.inodes_critical_pct = 95,
};

static void test_summary_reads_like_df(void **state)
{
	/* 90 GiB file system, 6.2 GiB available: 93.1% used */
	struct disk_usage u = {
		.total = 90 * GiB,
		.used = (uint64_t)(83.8 * GiB),
		.avail = (uint64_t)(6.2 * GiB),
		.inodes = 1000,
		.inodes_free = 900,
	};
	char summary[256];
	enum check_state s;

	(void)state;
	s = disk_evaluate("/srv", &defaults, &u, summary, sizeof(summary));
	assert_int_equal(s, CHECK_WARNING);
	assert_string_equal(summary,
			    "/srv: 93.1% used, 6.2 GiB free of 90.0 GiB (warning at 90%)");
}

static void test_percent_thresholds(void **state)
{
	struct disk_usage u = { .total = 100 * GiB, .inodes = 0 };
	char summary[256];

	(void)state;
	u.used = 50 * GiB;
	u.avail = 50 * GiB;
	assert_int_equal(disk_evaluate("/", &defaults, &u, summary, sizeof(summary)),
			 CHECK_OK);
	u.used = 95 * GiB;
	u.avail = 5 * GiB;
	assert_int_equal(disk_evaluate("/", &defaults, &u, summary, sizeof(summary)),
			 CHECK_CRITICAL);
	assert_non_null(strstr(summary, "(critical at 95%)"));
	/* reserved blocks do not count as free: df's arithmetic */
	u.total = 100 * GiB;
	u.used = 85 * GiB;
	u.avail = 5 * GiB; /* 10 GiB reserved for root */
	assert_true(disk_used_percent(&u) > 94.4 && disk_used_percent(&u) < 94.5);
	assert_int_equal(disk_evaluate("/", &defaults, &u, summary, sizeof(summary)),
			 CHECK_WARNING);
}

static void test_absolute_free_thresholds(void **state)
{
	struct disk_thresholds t = defaults;
	struct disk_usage u = {
		.total = 400 * GiB, .used = 300 * GiB, .avail = 100 * GiB,
	};
	char summary[256];

	(void)state;
	/* A volume at 75% is fine by percent... */
	assert_int_equal(disk_evaluate("/big", &t, &u, summary, sizeof(summary)),
			 CHECK_OK);
	/* ...but not when the operator wants 200 GiB headroom. */
	t.warning_free = 200 * GiB;
	assert_int_equal(disk_evaluate("/big", &t, &u, summary, sizeof(summary)),
			 CHECK_WARNING);
	assert_non_null(strstr(summary, "warning below 200 GiB free"));
	t.critical_free = 150 * GiB;
	assert_int_equal(disk_evaluate("/big", &t, &u, summary, sizeof(summary)),
			 CHECK_CRITICAL);
}

static void test_inodes(void **state)
{
	struct disk_usage u = {
		.total = 10 * GiB, .used = 1 * GiB, .avail = 9 * GiB,
		.inodes = 1000, .inodes_free = 30,
	};
	char summary[256];

	(void)state;
	assert_int_equal(disk_evaluate("/var", &defaults, &u, summary, sizeof(summary)),
			 CHECK_CRITICAL);
	assert_non_null(strstr(summary, "inodes 97.0% used (critical at 95%)"));
	/* file systems without an inode limit report 0 inodes */
	u.inodes = 0;
	u.inodes_free = 0;
	assert_int_equal(disk_evaluate("/var", &defaults, &u, summary, sizeof(summary)),
			 CHECK_OK);
}

static void test_pseudo_and_remote_types(void **state)
{
	(void)state;
	assert_true(disk_fstype_is_pseudo("tmpfs"));
	assert_true(disk_fstype_is_pseudo("overlay"));
	assert_true(disk_fstype_is_pseudo("squashfs"));
	assert_true(disk_fstype_is_pseudo("proc"));
	assert_false(disk_fstype_is_pseudo("ext4"));
	assert_false(disk_fstype_is_pseudo("xfs"));
	assert_true(disk_fstype_is_remote("nfs4"));
	assert_false(disk_fstype_is_remote("btrfs"));
}

/* Configure the real check from YAML text; returns its context. */
static void *configure(const char *yaml, struct cfg **ret_cfg)
{
	const struct check *ck = checks_find("disk");
	/* must outlive the context (check.h), hence static */
	static struct check_env env = { .host = "h", .state_dir = "/tmp" };
	struct cfg *cfg;
	void *ctx = NULL;

	assert_non_null(ck);
	assert_int_equal(cfg_load_string("disk.yaml", yaml, &cfg), 0);
	assert_int_equal(ck->configure(cfg, cfg_get(cfg, cfg->root, "disk"),
				       &env, &ctx),
			 0);
	cfg_finish(cfg);
	*ret_cfg = cfg;
	return ctx;
}

static void test_discovery_skips_pseudo_unless_named(void **state)
{
	const struct check *ck = checks_find("disk");
	char mounts[] = "/tmp/tocsin-test-mounts-XXXXXX";
	struct check_results res = { 0 };
	struct cfg *cfg;
	char *yaml;
	void *ctx;
	int fd;

	(void)state;
	fd = mkstemp(mounts);
	assert_true(fd >= 0);
	dprintf(fd, "proc /proc proc rw 0 0\n"
		    "tmpfs /run tmpfs rw 0 0\n"
		    "server:/x /mnt/nfs nfs4 rw 0 0\n"
		    "/dev/root / ext4 rw 0 0\n");
	close(fd);

	yaml = xasprintf("disk:\n  mounts_file: %s\n  mounts:\n    - path: /tmp\n      warning: 0%%\n",
			 mounts);
	ctx = configure(yaml, &cfg);
	assert_int_equal(cfg->nerrors, 0);
	assert_int_equal(ck->collect(ctx, 0, &res), 0);
	/* /tmp (named, whatever its type) and / (ext4); not /proc, /run, nfs */
	assert_int_equal(res.n, 2);
	assert_string_equal(res.v[0].item, "/tmp");
	assert_int_equal(res.v[0].state, CHECK_WARNING);
	assert_non_null(json_object_get(res.v[0].metrics, "free_bytes"));
	assert_string_equal(res.v[1].item, "/");

	check_results_clear(&res);
	ck->free(ctx);
	cfg_free(cfg);
	free(yaml);
	unlink(mounts);
}

static void test_missing_named_mount_is_unknown(void **state)
{
	const struct check *ck = checks_find("disk");
	struct check_results res = { 0 };
	struct cfg *cfg;
	void *ctx;

	(void)state;
	ctx = configure("disk:\n  discover: false\n  mounts: [/does/not/exist]\n", &cfg);
	assert_int_equal(ck->collect(ctx, 0, &res), 0);
	assert_int_equal(res.n, 1);
	assert_int_equal(res.v[0].state, CHECK_UNKNOWN);
	assert_non_null(strstr(res.v[0].summary, "No such file or directory"));
	check_results_clear(&res);
	ck->free(ctx);
	cfg_free(cfg);
}

static void test_config_errors(void **state)
{
	const struct check *ck = checks_find("disk");
	struct cfg *cfg;
	void *ctx;

	(void)state;
	ctx = configure("disk:\n"
			"  warning: 97%\n"
			"  critical: 95%\n"
			"  mounts:\n"
			"    - relative/path\n"
			"    - warning: 50%\n"
			"  colour: blue\n",
			&cfg);
	for (size_t i = 0; i < cfg->nerrors; i++)
		print_message("  error: %s\n", cfg->errors[i]);
	assert_int_equal(cfg->nerrors, 4);
	assert_non_null(strstr(cfg->errors[0], "must not be above critical"));
	assert_non_null(strstr(cfg->errors[1], "disk.yaml:5:7: disk.mounts[0]: mount path 'relative/path' is not absolute"));
	assert_non_null(strstr(cfg->errors[2], "disk.mounts[1]: a mount needs a path"));
	assert_non_null(strstr(cfg->errors[3], "disk.yaml:7:3: disk.colour: unknown key"));
	ck->free(ctx);
	cfg_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_summary_reads_like_df),
		cmocka_unit_test(test_percent_thresholds),
		cmocka_unit_test(test_absolute_free_thresholds),
		cmocka_unit_test(test_inodes),
		cmocka_unit_test(test_pseudo_and_remote_types),
		cmocka_unit_test(test_discovery_skips_pseudo_unless_named),
		cmocka_unit_test(test_missing_named_mount_is_unknown),
		cmocka_unit_test(test_config_errors),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
