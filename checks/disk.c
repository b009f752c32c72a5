/*
 * disk: space and inodes of every mounted file system that holds data.
 *
 * Mounts come from the configuration (always checked, whatever their type)
 * and, unless discovery is off, from /proc/self/mounts, where pseudo file
 * systems (tmpfs, proc, overlay, ...) and network file systems are skipped:
 * the former hold no data worth a ticket, the latter can block statvfs()
 * for minutes when the server is gone.  Bind mounts of one device are
 * checked once.
 *
 * Every mount also gets a fill-rate prediction (predict.h) from usage
 * samples the agent keeps in its state database (fillrate.h): a volume
 * that fills slowly but surely is a warning days before any percentage
 * threshold would notice.
 */
#include "disk.h"

#include <errno.h>
#include <fnmatch.h>
#include <math.h>
#include <mntent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "../common/config.h"
#include "../common/util.h"
#include "fillrate.h"
#include "predict.h"

struct disk_mount {
	char *path;
	struct disk_thresholds t;
	struct predict_config predict;
};

struct disk_ctx {
	struct disk_thresholds defaults;
	struct predict_config predict; /* for discovered mounts */
	struct fillrate *fillrate;
	struct disk_mount *mounts; /* named in the configuration */
	size_t nmounts;
	char **exclude; /* fnmatch(3) patterns on the mount point */
	bool discover;
	bool include_pseudo;
	bool include_remote;
	char *mounts_file;
};

static const char *const pseudo_fstypes[] = {
	"autofs",     "binfmt_misc", "bpf",	   "cgroup",	 "cgroup2",
	"configfs",   "debugfs",     "devpts",	   "devtmpfs",	 "efivarfs",
	"fusectl",    "hugetlbfs",   "mqueue",	   "nsfs",	 "overlay",
	"proc",	      "pstore",	     "ramfs",	   "rpc_pipefs", "securityfs",
	"selinuxfs",  "squashfs",    "sysfs",	   "tmpfs",	 "tracefs",
	"fuse.lxcfs", "fuse.portal", "fuse.gvfsd-fuse", "nfsd", "iso9660",
	"shm",	      "aufs",
};

static const char *const remote_fstypes[] = {
	"nfs",	"nfs4", "cifs",	 "smb3", "smbfs", "sshfs", "fuse.sshfs",
	"9p",	"afs",	"ceph",	 "glusterfs", "fuse.glusterfs", "lustre",
	"ncpfs", "davfs", "fuse.rclone", "fuse.s3fs",
};

static bool in_list(const char *s, const char *const *list, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (strcmp(s, list[i]) == 0)
			return true;
	return false;
}

bool disk_fstype_is_pseudo(const char *fstype)
{
	return in_list(fstype, pseudo_fstypes, ARRAY_SIZE(pseudo_fstypes));
}

bool disk_fstype_is_remote(const char *fstype)
{
	return in_list(fstype, remote_fstypes, ARRAY_SIZE(remote_fstypes));
}

double disk_used_percent(const struct disk_usage *u)
{
	uint64_t denom = u->used + u->avail;

	if (denom == 0)
		return 0.0;
	return 100.0 * (double)u->used / (double)denom;
}

double disk_inodes_used_percent(const struct disk_usage *u)
{
	if (u->inodes == 0)
		return 0.0;
	return 100.0 * (double)(u->inodes - u->inodes_free) /
	       (double)u->inodes;
}

static enum check_state rate_space(const struct disk_thresholds *t,
				   const struct disk_usage *u, char *why,
				   size_t size)
{
	double pct = disk_used_percent(u);
	char b[32];

	if (t->critical_pct >= 0 && pct >= t->critical_pct) {
		snprintf(why, size, "critical at %g%%", t->critical_pct);
		return CHECK_CRITICAL;
	}
	if (t->critical_free > 0 && u->avail < t->critical_free) {
		format_bytes(t->critical_free, b, sizeof(b));
		snprintf(why, size, "critical below %s free", b);
		return CHECK_CRITICAL;
	}
	if (t->warning_pct >= 0 && pct >= t->warning_pct) {
		snprintf(why, size, "warning at %g%%", t->warning_pct);
		return CHECK_WARNING;
	}
	if (t->warning_free > 0 && u->avail < t->warning_free) {
		format_bytes(t->warning_free, b, sizeof(b));
		snprintf(why, size, "warning below %s free", b);
		return CHECK_WARNING;
	}
	return CHECK_OK;
}

static enum check_state rate_inodes(const struct disk_thresholds *t,
				    const struct disk_usage *u)
{
	double pct = disk_inodes_used_percent(u);

	if (u->inodes == 0)
		return CHECK_OK;
	if (t->inodes_critical_pct >= 0 && pct >= t->inodes_critical_pct)
		return CHECK_CRITICAL;
	if (t->inodes_warning_pct >= 0 && pct >= t->inodes_warning_pct)
		return CHECK_WARNING;
	return CHECK_OK;
}

enum check_state disk_evaluate(const char *mount,
			       const struct disk_thresholds *t,
			       const struct disk_usage *u, char *summary,
			       size_t size)
{
	char why[64] = "", freeb[32], totalb[32];
	enum check_state space = rate_space(t, u, why, sizeof(why));
	enum check_state inodes = rate_inodes(t, u);
	int n;

	format_bytes(u->avail, freeb, sizeof(freeb));
	format_bytes(u->total, totalb, sizeof(totalb));
	n = snprintf(summary, size, "%s: %.1f%% used, %s free of %s", mount,
		     disk_used_percent(u), freeb, totalb);
	if (n < 0 || (size_t)n >= size)
		return check_state_worst(space, inodes);
	if (space != CHECK_OK)
		n += snprintf(summary + n, size - (size_t)n, " (%s)", why);
	if (inodes != CHECK_OK && (size_t)n < size)
		snprintf(summary + n, size - (size_t)n,
			 "; inodes %.1f%% used (%s at %g%%)",
			 disk_inodes_used_percent(u),
			 inodes == CHECK_CRITICAL ? "critical" : "warning",
			 inodes == CHECK_CRITICAL ? t->inodes_critical_pct
						  : t->inodes_warning_pct);
	return check_state_worst(space, inodes);
}

/* Read threshold keys present in map into t; others stay as they are. */
static void parse_thresholds(struct cfg *cfg, const struct cfg_node *map,
			     struct disk_thresholds *t)
{
	cfg_get_percent(cfg, map, "warning", &t->warning_pct);
	cfg_get_percent(cfg, map, "critical", &t->critical_pct);
	cfg_get_size(cfg, map, "warning_free", &t->warning_free);
	cfg_get_size(cfg, map, "critical_free", &t->critical_free);
	cfg_get_percent(cfg, map, "inodes_warning", &t->inodes_warning_pct);
	cfg_get_percent(cfg, map, "inodes_critical", &t->inodes_critical_pct);

	if (t->warning_pct > t->critical_pct)
		cfg_error(cfg, map,
			  "warning (%g%%) must not be above critical (%g%%)",
			  t->warning_pct, t->critical_pct);
	if (t->critical_free > 0 && t->warning_free > 0 &&
	    t->warning_free < t->critical_free)
		cfg_error(cfg, map,
			  "warning_free must not be below critical_free");
	if (t->inodes_warning_pct > t->inodes_critical_pct)
		cfg_error(cfg, map,
			  "inodes_warning must not be above inodes_critical");
}

static void disk_free(void *p)
{
	struct disk_ctx *ctx = p;

	if (ctx == NULL)
		return;
	for (size_t i = 0; i < ctx->nmounts; i++)
		free(ctx->mounts[i].path);
	free(ctx->mounts);
	cfg_string_list_free(ctx->exclude);
	free(ctx->mounts_file);
	fillrate_free(ctx->fillrate);
	free(ctx);
}

static void parse_mounts(struct cfg *cfg, const struct cfg_node *list,
			 struct disk_ctx *ctx)
{
	if (list == NULL || list->type == CFG_NULL)
		return;
	if (list->type != CFG_SEQ) {
		cfg_error(cfg, list, "expected a list of mount points");
		return;
	}
	ctx->mounts = xcalloc(list->nitems, sizeof(*ctx->mounts));
	for (size_t i = 0; i < list->nitems; i++) {
		const struct cfg_node *item = list->items[i];
		struct disk_mount *m = &ctx->mounts[ctx->nmounts];

		m->t = ctx->defaults;
		m->predict = ctx->predict;
		if (item->type == CFG_SCALAR) {
			m->path = xstrdup(item->value);
		} else if (item->type == CFG_MAP) {
			parse_thresholds(cfg, item, &m->t);
			predict_config_parse(cfg, item, &m->predict);
			if (cfg_get_string(cfg, item, "path", &m->path) <= 0) {
				cfg_error(cfg, item, "a mount needs a path");
				continue;
			}
		} else {
			cfg_error(cfg, item,
				  "expected a path or a mapping with a path");
			continue;
		}
		if (m->path[0] != '/') {
			cfg_error(cfg, item, "mount path '%s' is not absolute",
				  m->path);
			free(m->path);
			continue;
		}
		ctx->nmounts++;
	}
}

static int disk_configure(struct cfg *cfg, const struct cfg_node *node,
			  const struct check_env *env, void **ret_ctx)
{
	struct disk_ctx *ctx = xcalloc(1, sizeof(*ctx));

	ctx->fillrate = fillrate_new("disk", env);
	predict_config_defaults(&ctx->predict);
	ctx->defaults = (struct disk_thresholds){
		.warning_pct = 90.0,
		.critical_pct = 95.0,
		.inodes_warning_pct = 90.0,
		.inodes_critical_pct = 95.0,
	};
	ctx->discover = true;
	ctx->mounts_file = xstrdup("/proc/self/mounts");

	parse_thresholds(cfg, node, &ctx->defaults);
	predict_config_parse(cfg, node, &ctx->predict);
	cfg_get_bool(cfg, node, "discover", &ctx->discover);
	cfg_get_bool(cfg, node, "include_pseudo", &ctx->include_pseudo);
	cfg_get_bool(cfg, node, "include_remote", &ctx->include_remote);
	cfg_get_string_list(cfg, node, "exclude", &ctx->exclude);
	cfg_get_string(cfg, node, "mounts_file", &ctx->mounts_file);
	parse_mounts(cfg, cfg_get(cfg, node, "mounts"), ctx);

	*ret_ctx = ctx;
	return 0;
}

static bool excluded(const struct disk_ctx *ctx, const char *path)
{
	for (size_t i = 0; ctx->exclude && ctx->exclude[i]; i++)
		if (fnmatch(ctx->exclude[i], path, 0) == 0)
			return true;
	return false;
}

static bool named(const struct disk_ctx *ctx, const char *path)
{
	for (size_t i = 0; i < ctx->nmounts; i++)
		if (strcmp(ctx->mounts[i].path, path) == 0)
			return true;
	return false;
}

static int disk_usage_of(const char *path, struct disk_usage *ret)
{
	struct statvfs sv;
	uint64_t frsize;

	if (statvfs(path, &sv) < 0)
		return -errno;
	frsize = sv.f_frsize ? sv.f_frsize : sv.f_bsize;
	*ret = (struct disk_usage){
		.total = (uint64_t)sv.f_blocks * frsize,
		.used = (uint64_t)(sv.f_blocks - sv.f_bfree) * frsize,
		.avail = (uint64_t)sv.f_bavail * frsize,
		.inodes = sv.f_files,
		.inodes_free = sv.f_ffree,
	};
	return 0;
}

/*
 * Add the fill-rate prediction of a mount to its result: the summary
 * leads with it when it is what makes the mount warning or critical,
 * and the rate and time to full become metrics.
 */
static enum check_state add_prediction(struct disk_ctx *ctx, const char *path,
				       const struct predict_config *pc,
				       int64_t now_ms, const struct disk_usage *u,
				       enum check_state state, char *summary,
				       size_t size, json_t *metrics)
{
	char text[96], horizon[32], rest[512];
	struct prediction p;
	int r;

	if (!pc->enabled)
		return state;
	r = fillrate_observe(ctx->fillrate, path, pc, now_ms, u->used,
			     u->avail, &p);
	if (r < 0) {
		snprintf(text, sizeof(text), "; no fill-rate prediction: %s",
			 fillrate_strerror(r));
		strlcat_safe(summary, text, size);
		return state;
	}
	predict_format(&p, text, sizeof(text));
	if (p.usable && metrics != NULL) {
		json_object_set_new(metrics, "fill_rate_bytes_per_day",
				    json_real(p.rate * 86400.0));
		if (isfinite(p.full_in_s))
			json_object_set_new(metrics, "full_in_s",
					    json_integer((json_int_t)p.full_in_s));
	}
	if (text[0] == '\0')
		return state;
	if (check_state_severity(p.state) <= check_state_severity(state)) {
		strlcat_safe(summary, "; ", size);
		strlcat_safe(summary, text, size);
		return state;
	}
	/* the prediction is the news: "/srv: full in ~5 d at ..., 71% used" */
	format_duration((p.state == CHECK_CRITICAL ? pc->critical_ms
						   : pc->warning_ms) / 1000,
			horizon, sizeof(horizon));
	/* disk_evaluate() wrote "PATH: ..."; a path too long for the
	 * summary leaves nothing after it */
	if (strlen(summary) >= strlen(path) + 2)
		strlcpy_safe(rest, summary + strlen(path) + 2, sizeof(rest));
	else
		rest[0] = '\0';
	/* a very long mount path may cut the tail off; the head matters */
	if (snprintf(summary, size, "%s: %s (%s within %s); %s", path, text,
		     check_state_name(p.state), horizon, rest) < 0)
		summary[0] = '\0';
	return p.state;
}

static void report_mount(struct disk_ctx *ctx, struct check_results *out,
			 const char *path, const struct disk_thresholds *t,
			 const struct predict_config *pc, int64_t now_ms)
{
	struct disk_usage u = { 0 };
	char summary[512];
	enum check_state state;
	json_t *metrics;
	int r = disk_usage_of(path, &u);

	if (r < 0) {
		check_results_add(out, path, CHECK_UNKNOWN, NULL,
				  "%s: cannot read usage: %s", path,
				  strerror(-r));
		return;
	}
	state = disk_evaluate(path, t, &u, summary, sizeof(summary));
	metrics = json_pack("{s:I, s:I, s:I, s:f}", "total_bytes",
			    (json_int_t)u.total, "used_bytes",
			    (json_int_t)u.used, "free_bytes",
			    (json_int_t)u.avail, "used_percent",
			    disk_used_percent(&u));
	if (metrics != NULL && u.inodes > 0)
		json_object_set_new(metrics, "inodes_used_percent",
				    json_real(disk_inodes_used_percent(&u)));
	state = add_prediction(ctx, path, pc, now_ms, &u, state, summary,
			       sizeof(summary), metrics);
	check_results_add(out, path, state, metrics, "%s", summary);
}

/* dev_t of every discovered mount already reported, to skip bind mounts. */
struct seen_devs {
	dev_t *v;
	size_t n;
};

static bool seen_dev(struct seen_devs *seen, dev_t dev)
{
	for (size_t i = 0; i < seen->n; i++)
		if (seen->v[i] == dev)
			return true;
	seen->v = xreallocarray(seen->v, seen->n + 1, sizeof(*seen->v));
	seen->v[seen->n++] = dev;
	return false;
}

static int disk_collect(void *p, int64_t now_ms, struct check_results *out)
{
	struct disk_ctx *ctx = p;
	struct seen_devs seen = { 0 };
	struct mntent ent;
	char buf[4096];
	FILE *fp;

	/* Named paths may be directories inside a discovered mount, so
	 * they are matched by path, not by device. */
	for (size_t i = 0; i < ctx->nmounts; i++)
		report_mount(ctx, out, ctx->mounts[i].path, &ctx->mounts[i].t,
			     &ctx->mounts[i].predict, now_ms);
	if (!ctx->discover)
		goto done;

	fp = setmntent(ctx->mounts_file, "re");
	if (fp == NULL) {
		check_results_add(out, ctx->mounts_file, CHECK_UNKNOWN, NULL,
				  "cannot list mounts from %s: %s",
				  ctx->mounts_file, strerror(errno));
		goto done;
	}
	while (getmntent_r(fp, &ent, buf, sizeof(buf)) != NULL) {
		struct stat st;

		if (named(ctx, ent.mnt_dir) || excluded(ctx, ent.mnt_dir))
			continue;
		if (!ctx->include_pseudo && disk_fstype_is_pseudo(ent.mnt_type))
			continue;
		if (!ctx->include_remote && disk_fstype_is_remote(ent.mnt_type))
			continue;
		if (stat(ent.mnt_dir, &st) < 0 || seen_dev(&seen, st.st_dev))
			continue;
		report_mount(ctx, out, ent.mnt_dir, &ctx->defaults,
			     &ctx->predict, now_ms);
	}
	endmntent(fp);
done:
	free(seen.v);
	return 0;
}

const struct check check_disk = {
	.name = "disk",
	.default_interval_ms = 60 * 1000,
	.enabled_by_default = true,
	.configure = disk_configure,
	.collect = disk_collect,
	.free = disk_free,
};
