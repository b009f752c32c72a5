/*
 * updates: what the package manager says about this host.
 *
 * Items:
 *   pending     upgrades apt would install (`apt-get -s dist-upgrade`)
 *   security    those of them from a security release
 *   lists       age of the package lists: stale lists make the two above
 *               meaningless, so they are a warning of their own
 *   unattended  unattended-upgrades switched on, a warning on a central
 *               host by default: automatic updates caused three of four
 *               server outages in seed 001
 *   reboot      /run/reboot-required, with how long it has been pending
 *   upgrades    packages upgraded recently (history.log and dpkg.log)
 *
 * apt-get and apt-config run as child processes without a shell, with a
 * timeout and bounded output, never with root's locks (Debug::NoLocking)
 * and never `apt update`.  The simulation costs hundreds of milliseconds
 * to seconds of CPU, so it runs on its own interval (apt_interval, 1 h)
 * and then only when its inputs changed (apt_needed()), its results are
 * cached in between, and after the first round it runs
 * in the background: the child's descriptor is the check's watch_fd and
 * its results are reported when it finishes, so the agent's loop (and a
 * unit failure the services check must report within a second) never
 * waits for apt.
 */
#include "updates.h"

#include <dirent.h>
#include <errno.h>
#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common/config.h"
#include "../common/log.h"
#include "../common/utf8.h"
#include "../common/util.h"
#include "check.h"
#include "pkglog.h"
#include "run.h"

#define APT_OUTPUT_MAX (8u * 1024 * 1024)
#define CONFIG_OUTPUT_MAX (1024u * 1024)
#define REBOOT_PKGS_MAX (64 * 1024)
#define NAMES_IN_SUMMARY 8

static const char *const default_security_patterns[] = { "*security*", NULL };

/* --- parsing apt's output ------------------------------------------------- */

bool updates_release_is_security(const char *releases, size_t len,
				 const char *const *patterns)
{
	char one[512];

	while (len > 0) {
		const char *comma = memchr(releases, ',', len);
		size_t n = comma ? (size_t)(comma - releases) : len;
		size_t skip = 0;

		while (skip < n && releases[skip] == ' ')
			skip++;
		if (n - skip < sizeof(one)) {
			memcpy(one, releases + skip, n - skip);
			one[n - skip] = '\0';
			for (size_t i = 0; patterns && patterns[i]; i++)
				if (fnmatch(patterns[i], one, FNM_CASEFOLD) == 0)
					return true;
		}
		if (comma == NULL)
			break;
		releases += n + 1;
		len -= n + 1;
	}
	return false;
}

/*
 * "Inst name [from] (to releases [arch]) ..." after "Inst ", up to the
 * end of the line at eol.  false when it is not that shape.  The pieces
 * are kept as valid UTF-8 (utf8_dup): they go into summaries and JSON.
 */
static bool parse_inst(const char *s, const char *eol,
		       const char *const *patterns, struct updates_sim *sim)
{
	const char *name_end = memchr(s, ' ', (size_t)(eol - s));
	const char *from = NULL, *from_end = NULL, *open, *close, *to_end, *rel_end;
	struct updates_pkg *p;

	if (name_end == NULL || name_end == s)
		return false;
	open = name_end + 1;
	if (*open == '[') {
		from = open + 1;
		from_end = memchr(from, ']', (size_t)(eol - from));
		if (from_end == NULL || from_end + 2 > eol || from_end[1] != ' ')
			return false;
		open = from_end + 2;
	}
	if (*open != '(')
		return false;
	close = memchr(open, ')', (size_t)(eol - open));
	to_end = memchr(open, ' ', close ? (size_t)(close - open) : 0);
	if (close == NULL)
		return false;
	if (to_end == NULL)
		to_end = close;
	rel_end = close;
	/* drop the trailing " [amd64]" */
	for (const char *q = close; q > to_end; q--) {
		if (q[0] == '[' && q[-1] == ' ') {
			rel_end = q - 1;
			break;
		}
	}
	if (sim->n == sim->cap) {
		sim->cap = sim->cap ? sim->cap * 2 : 32;
		sim->v = xreallocarray(sim->v, sim->cap, sizeof(*sim->v));
	}
	p = &sim->v[sim->n++];
	*p = (struct updates_pkg){
		.name = utf8_dup(s, (size_t)(name_end - s)),
		.from = from ? utf8_dup(from, (size_t)(from_end - from)) : NULL,
		.to = utf8_dup(open + 1, (size_t)(to_end - open - 1)),
	};
	if (rel_end > to_end)
		p->security = updates_release_is_security(
			to_end + 1, (size_t)(rel_end - to_end - 1), patterns);
	if (p->from == NULL) {
		sim->installs++;
	} else {
		sim->upgrades++;
		sim->security += p->security;
	}
	return true;
}

size_t updates_parse_sim(const char *output, const char *const *patterns,
			 struct updates_sim *sim, size_t *ret_bad)
{
	size_t understood = 0, bad = 0;

	for (const char *s = output; *s != '\0';) {
		const char *eol = strchr(s, '\n');

		if (eol == NULL)
			eol = s + strlen(s);
		if (strncmp(s, "Inst ", 5) == 0) {
			if (sim->n < UPDATES_SIM_MAX &&
			    parse_inst(s + 5, eol, patterns, sim))
				understood++;
			else
				bad++;
		} else if (strncmp(s, "Remv ", 5) == 0) {
			sim->removals++;
			understood++;
		}
		s = *eol ? eol + 1 : eol;
	}
	if (ret_bad)
		*ret_bad = bad;
	return understood;
}

void updates_sim_clear(struct updates_sim *sim)
{
	for (size_t i = 0; i < sim->n; i++) {
		free(sim->v[i].name);
		free(sim->v[i].from);
		free(sim->v[i].to);
	}
	free(sim->v);
	*sim = (struct updates_sim){ 0 };
}

char *updates_apt_config_value(const char *dump, const char *key)
{
	size_t klen = strlen(key);

	for (const char *s = dump; *s != '\0';) {
		const char *eol = strchr(s, '\n');

		if (eol == NULL)
			eol = s + strlen(s);
		if (strncmp(s, key, klen) == 0 && s[klen] == ' ' &&
		    s[klen + 1] == '"') {
			const char *v = s + klen + 2;
			const char *q = memchr(v, '"', (size_t)(eol - v));

			if (q != NULL)
				return utf8_dup(v, (size_t)(q - v));
		}
		s = *eol ? eol + 1 : eol;
	}
	return NULL;
}

/* A periodic interval is a number of days; "0" or nothing means off. */
static bool periodic_on(const char *v)
{
	return v != NULL && *v != '\0' && strcmp(v, "0") != 0 &&
	       strcasecmp(v, "false") != 0 && strcasecmp(v, "no") != 0;
}

bool updates_unattended_enabled(const char *enable, const char *unattended)
{
	if (enable != NULL && !periodic_on(enable))
		return false;
	return periodic_on(unattended);
}

/* --- the check -------------------------------------------------------------- */

enum apt_stage {
	STAGE_IDLE,
	STAGE_CONFIG, /* apt-config dump running */
	STAGE_SIM,    /* apt-get -s running */
};

struct updates_ctx {
	const struct check_env *env;
	/* configuration */
	char *apt_get;
	char *apt_config;
	char *unattended_bin;
	int mode; /* 0 dist-upgrade, 1 upgrade */
	char **security_patterns;
	int64_t apt_interval_ms;
	int64_t apt_refresh_ms;  /* 0: every apt_interval, changed or not */
	int64_t apt_timeout_ms;
	int64_t pending_warning, pending_critical;
	int64_t security_warning, security_critical;
	char *lists_dir;
	char *dpkg_status;
	char *apt_etc;
	char *update_stamp;
	int64_t lists_max_age_ms;
	int unattended_central, unattended_decentral; /* enum check_state */
	char *reboot_file;
	int64_t reboot_grace_ms;
	int64_t recent_window_ms;
	struct pkglog_cache pkglog;
	/* state */
	struct run_child *child;
	enum apt_stage stage;
	int64_t cpu_us;
	uint64_t job_inputs;     /* the inputs' fingerprint as the job started */
	char *config_dump;       /* apt-config output of the running job */
	char *config_error;
	int64_t next_apt_ms;     /* monotonic */
	bool seed_tried;         /* looked for a snapshot in the state database */
	char *state_key;         /* what a saved snapshot depends on */
	struct updates_snapshot snap;
};

static const char *const mode_names[] = { "dist-upgrade", "upgrade", NULL };
static const char *const state_names[] = { "ok", "warning", "critical", NULL };

static const char *const *patterns(const struct updates_ctx *ctx)
{
	return ctx->security_patterns ? (const char *const *)ctx->security_patterns
				      : default_security_patterns;
}

void updates_snapshot_clear(struct updates_snapshot *s)
{
	updates_sim_clear(&s->sim);
	free(s->sim_error);
	free(s->unattended_error);
	*s = (struct updates_snapshot){ 0 };
}

static void updates_free(void *p)
{
	struct updates_ctx *ctx = p;

	if (ctx == NULL)
		return;
	run_free(ctx->child);
	updates_snapshot_clear(&ctx->snap);
	free(ctx->config_dump);
	free(ctx->config_error);
	free(ctx->apt_get);
	free(ctx->apt_config);
	free(ctx->unattended_bin);
	cfg_string_list_free(ctx->security_patterns);
	free(ctx->lists_dir);
	free(ctx->dpkg_status);
	free(ctx->apt_etc);
	free(ctx->update_stamp);
	free(ctx->reboot_file);
	free(ctx->state_key);
	pkglog_cache_free(&ctx->pkglog);
	free(ctx);
}

static void get_count(struct cfg *cfg, const struct cfg_node *node,
		      const char *key, int64_t *ret)
{
	cfg_get_int(cfg, node, key, 0, 1000000, ret);
}

/* What the snapshot of an apt run depends on, as one string. */
static char *state_key(const struct updates_ctx *ctx)
{
	char *key = xasprintf("%s|%s|%s|%s", ctx->apt_get, ctx->apt_config,
			      ctx->unattended_bin, mode_names[ctx->mode]);

	for (const char *const *p = patterns(ctx); *p; p++) {
		char *longer = xasprintf("%s|%s", key, *p);

		free(key);
		key = longer;
	}
	return key;
}

static int updates_configure(struct cfg *cfg, const struct cfg_node *node,
			     const struct check_env *env, void **ret_ctx)
{
	struct updates_ctx *ctx = xcalloc(1, sizeof(*ctx));

	ctx->env = env;
	ctx->apt_get = xstrdup("/usr/bin/apt-get");
	ctx->apt_config = xstrdup("/usr/bin/apt-config");
	ctx->unattended_bin = xstrdup("/usr/bin/unattended-upgrade");
	ctx->apt_interval_ms = 60 * 60 * 1000;
	ctx->apt_refresh_ms = 24LL * 3600 * 1000;
	ctx->apt_timeout_ms = 120 * 1000;
	ctx->pending_warning = 1;
	ctx->security_critical = 1;
	ctx->lists_dir = xstrdup("/var/lib/apt/lists");
	ctx->dpkg_status = xstrdup("/var/lib/dpkg/status");
	ctx->apt_etc = xstrdup("/etc/apt");
	ctx->update_stamp = xstrdup("/var/lib/apt/periodic/update-success-stamp");
	ctx->lists_max_age_ms = 7LL * 24 * 3600 * 1000;
	ctx->unattended_central = CHECK_WARNING;
	ctx->unattended_decentral = CHECK_OK;
	ctx->reboot_file = xstrdup("/run/reboot-required");
	ctx->recent_window_ms = 24LL * 3600 * 1000;

	cfg_get_path(cfg, node, "apt_get", &ctx->apt_get);
	cfg_get_path(cfg, node, "apt_config", &ctx->apt_config);
	cfg_get_path(cfg, node, "unattended_upgrade", &ctx->unattended_bin);
	cfg_get_enum(cfg, node, "mode", mode_names, &ctx->mode);
	cfg_get_string_list(cfg, node, "security_patterns",
			    &ctx->security_patterns);
	cfg_get_duration(cfg, node, "apt_interval", &ctx->apt_interval_ms);
	cfg_get_duration(cfg, node, "apt_refresh", &ctx->apt_refresh_ms);
	cfg_get_duration(cfg, node, "apt_timeout", &ctx->apt_timeout_ms);
	get_count(cfg, node, "pending_warning", &ctx->pending_warning);
	get_count(cfg, node, "pending_critical", &ctx->pending_critical);
	get_count(cfg, node, "security_warning", &ctx->security_warning);
	get_count(cfg, node, "security_critical", &ctx->security_critical);
	cfg_get_path(cfg, node, "lists_dir", &ctx->lists_dir);
	cfg_get_path(cfg, node, "dpkg_status", &ctx->dpkg_status);
	cfg_get_path(cfg, node, "apt_etc", &ctx->apt_etc);
	cfg_get_path(cfg, node, "update_stamp", &ctx->update_stamp);
	cfg_get_duration(cfg, node, "lists_max_age", &ctx->lists_max_age_ms);
	cfg_get_enum(cfg, node, "unattended_central", state_names,
		     &ctx->unattended_central);
	cfg_get_enum(cfg, node, "unattended_decentral", state_names,
		     &ctx->unattended_decentral);
	cfg_get_path(cfg, node, "reboot_required_file", &ctx->reboot_file);
	cfg_get_duration(cfg, node, "reboot_grace", &ctx->reboot_grace_ms);
	pkglog_cache_configure(&ctx->pkglog, cfg, node);
	cfg_get_duration(cfg, node, "recent_window", &ctx->recent_window_ms);

	ctx->state_key = state_key(ctx);
	if (ctx->apt_timeout_ms < 1000)
		cfg_error(cfg, cfg_get(cfg, node, "apt_timeout"),
			  "apt_timeout must be at least 1s");
	if (ctx->apt_interval_ms < 5 * 1000)
		cfg_error(cfg, cfg_get(cfg, node, "apt_interval"),
			  "apt_interval must be at least 5s: the simulation is expensive");
	if (ctx->pending_critical && ctx->pending_warning > ctx->pending_critical)
		cfg_error(cfg, cfg_get(cfg, node, "pending_warning"),
			  "pending_warning must not be above pending_critical");
	if (ctx->security_critical && ctx->security_warning > ctx->security_critical)
		cfg_error(cfg, cfg_get(cfg, node, "security_warning"),
			  "security_warning must not be above security_critical");
	*ret_ctx = ctx;
	return 0;
}

/* --- running apt -------------------------------------------------------------- */

static const char *const child_env[] = {
	"PATH=/usr/sbin:/usr/bin:/sbin:/bin",
	"LC_ALL=C",
	NULL,
};

/*
 * The fingerprint of what apt's answer depends on: its package lists,
 * dpkg's status (what is installed), its configuration (sources, pins,
 * apt.conf.d: also what apt-config reports) and the programs themselves.
 */
static uint64_t apt_inputs(const struct updates_ctx *ctx)
{
	const struct updates_input inputs[] = {
		{ ctx->lists_dir, 1 },	    { ctx->dpkg_status, 0 },
		{ ctx->apt_etc, 2 },	    { ctx->apt_get, 0 },
		{ ctx->apt_config, 0 },	    { ctx->unattended_bin, 0 },
	};

	return updates_inputs_fingerprint(inputs, ARRAY_SIZE(inputs));
}

static int start_config(struct updates_ctx *ctx)
{
	const char *argv[] = { ctx->apt_config, "dump", NULL };
	struct run_options opt = { .timeout_ms = ctx->apt_timeout_ms,
				   .max_output = CONFIG_OUTPUT_MAX };

	return run_start(argv, child_env, &opt, &ctx->child);
}

static int start_sim(struct updates_ctx *ctx)
{
	const char *argv[] = { ctx->apt_get, "-s", "-q",
			       "-o", "Debug::NoLocking=1",
			       "-o", "APT::Get::Show-User-Simulation-Note=false",
			       mode_names[ctx->mode], NULL };
	struct run_options opt = { .timeout_ms = ctx->apt_timeout_ms,
				   .max_output = APT_OUTPUT_MAX };

	return run_start(argv, child_env, &opt, &ctx->child);
}

/* The first line of a program's output, for a summary. */
static void first_line(const char *text, char *buf, size_t size)
{
	size_t n = text ? strcspn(text, "\n") : 0;

	if (n >= size)
		n = size - 1;
	memcpy(buf, text ? text : "", n);
	buf[n] = '\0';
}

/* "cannot run X: why" or "X exited with status 100: E: ..." */
static char *describe_failure(const char *prog, int r,
			      const struct run_result *res, int64_t timeout_ms)
{
	char how[128], line[256];

	if (r < 0)
		return xasprintf("cannot run %s: %s", prog, strerror(-r));
	run_describe(res, timeout_ms, how, sizeof(how));
	first_line(res->output, line, sizeof(line));
	return xasprintf("%s %s%s%s", prog, how, line[0] ? ": " : "", line);
}

static bool succeeded(const struct run_result *res)
{
	return !res->timed_out && WIFEXITED(res->status) &&
	       WEXITSTATUS(res->status) == 0;
}

/* apt-config finished (r < 0: it did not run): keep its dump. */
static void config_done(struct updates_ctx *ctx, int r,
			struct run_result *res)
{
	free(ctx->config_dump);
	free(ctx->config_error);
	ctx->config_dump = ctx->config_error = NULL;
	if (r == 0 && succeeded(res) && !res->truncated) {
		ctx->config_dump = res->output;
		res->output = NULL;
	} else if (r == 0 && res->truncated) {
		ctx->config_error = xasprintf("%s dump: more than %u bytes of output",
					      ctx->apt_config, CONFIG_OUTPUT_MAX);
	} else {
		ctx->config_error = describe_failure(ctx->apt_config, r, res,
						     ctx->apt_timeout_ms);
	}
	if (r == 0)
		ctx->cpu_us += res->cpu_us;
}

/* apt-get finished: make the snapshot that collect() reports from. */
static void sim_done(struct updates_ctx *ctx, int r, struct run_result *res)
{
	struct updates_snapshot *s = &ctx->snap;
	size_t bad = 0;

	updates_snapshot_clear(s);
	s->valid = true;
	s->at_ms = time_now_ms();
	if (r == 0)
		ctx->cpu_us += res->cpu_us;
	s->cpu_us = ctx->cpu_us;
	s->inputs = ctx->job_inputs;
	ctx->cpu_us = 0;
	if (r < 0 || !succeeded(res)) {
		s->sim_error = describe_failure(ctx->apt_get, r, res,
						ctx->apt_timeout_ms);
	} else if (res->truncated) {
		s->sim_error = xasprintf("%s -s %s: more than %u bytes of output",
					 ctx->apt_get, mode_names[ctx->mode],
					 APT_OUTPUT_MAX);
	} else {
		updates_parse_sim(res->output, patterns(ctx), &s->sim, &bad);
		if (bad > 0)
			s->sim_error = xasprintf("%zu lines of %s's output not understood",
						 bad, ctx->apt_get);
	}
	if (ctx->config_dump != NULL) {
		char *enable = updates_apt_config_value(ctx->config_dump,
							"APT::Periodic::Enable");
		char *uu = updates_apt_config_value(
			ctx->config_dump, "APT::Periodic::Unattended-Upgrade");

		s->unattended = updates_unattended_enabled(enable, uu) &&
				access(ctx->unattended_bin, X_OK) == 0;
		free(enable);
		free(uu);
	} else {
		s->unattended_error = ctx->config_error
					      ? xstrdup(ctx->config_error)
					      : xstrdup("apt-config did not run");
	}
	/* without the row, a restarted agent only reports later */
	if (ctx->env && ctx->env->db)
		updates_state_save(ctx->env->db, ctx->state_key, s);
}

/* Both steps, blocking: only one-shot runs (--once, --dry-run, check). */
static void run_apt_now(struct updates_ctx *ctx)
{
	struct run_result res = { 0 };
	int r;

	ctx->job_inputs = apt_inputs(ctx);
	r = start_config(ctx);
	if (r == 0) {
		r = run_wait(ctx->child, &res);
		run_free(ctx->child);
		ctx->child = NULL;
	}
	config_done(ctx, r, &res);
	run_result_clear(&res);
	r = start_sim(ctx);
	if (r == 0) {
		r = run_wait(ctx->child, &res);
		run_free(ctx->child);
		ctx->child = NULL;
	}
	sim_done(ctx, r, &res);
	run_result_clear(&res);
}

/*
 * Advance the background job: returns true when a new snapshot is ready.
 * A step that cannot start ends the job with its error in the snapshot.
 */
static bool advance_job(struct updates_ctx *ctx)
{
	struct run_result res = { 0 };
	int r = run_pump(ctx->child, &res);

	if (r == 0)
		return false;
	run_free(ctx->child);
	ctx->child = NULL;
	if (ctx->stage == STAGE_CONFIG) {
		config_done(ctx, r < 0 ? r : 0, &res);
		run_result_clear(&res);
		ctx->stage = STAGE_SIM;
		r = start_sim(ctx);
		if (r == 0)
			return false;
		sim_done(ctx, r, &res);
		ctx->stage = STAGE_IDLE;
		return true;
	}
	sim_done(ctx, r < 0 ? r : 0, &res);
	run_result_clear(&res);
	ctx->stage = STAGE_IDLE;
	return true;
}

static void start_job(struct updates_ctx *ctx, uint64_t inputs)
{
	struct run_result none = { 0 };
	int r;

	ctx->job_inputs = inputs;
	r = start_config(ctx);
	ctx->stage = STAGE_CONFIG;
	if (r == 0)
		return;
	config_done(ctx, r, &none);
	ctx->stage = STAGE_SIM;
	r = start_sim(ctx);
	if (r < 0) {
		sim_done(ctx, r, &none);
		ctx->stage = STAGE_IDLE;
	}
}

/* --- items ------------------------------------------------------------------ */

static enum check_state rate_count(size_t n, int64_t warning, int64_t critical)
{
	if (critical > 0 && (int64_t)n >= critical)
		return CHECK_CRITICAL;
	if (warning > 0 && (int64_t)n >= warning)
		return CHECK_WARNING;
	return CHECK_OK;
}

/* "a 1.0 -> 1.1, b 2 -> 3 and 4 more" of the upgrades (security only). */
static void list_names(const struct updates_sim *sim, bool security_only,
		       char *buf, size_t size)
{
	struct check_names names;

	check_names_init(&names, buf, size, NAMES_IN_SUMMARY);
	for (size_t i = 0; i < sim->n; i++) {
		const struct updates_pkg *p = &sim->v[i];
		char one[256];

		if (p->from == NULL || (security_only && !p->security))
			continue;
		snprintf(one, sizeof(one), "%s %s -> %s", p->name, p->from, p->to);
		check_names_add(&names, one);
	}
	check_names_end(&names);
}

static json_t *names_json(const struct updates_sim *sim, bool security_only)
{
	json_t *a = json_array();

	/* 100 entries stay far below the collector's 64 KiB per context */
	for (size_t i = 0; i < sim->n && json_array_size(a) < 100; i++) {
		const struct updates_pkg *p = &sim->v[i];

		if (p->from == NULL || (security_only && !p->security))
			continue;
		json_array_append_new(a, json_pack("{s:s, s:s, s:s}", "package",
						   p->name, "from", p->from,
						   "to", p->to));
	}
	return a;
}

/* The age of the lists, appended to summaries when they are stale. */
struct lists_age {
	int error;        /* -errno when the directory could not be read */
	bool none;        /* no Release files at all */
	int64_t age_s;
	bool stale;
};

static void report_apt(struct updates_ctx *ctx, const struct lists_age *la,
		       struct check_results *out)
{
	const struct updates_snapshot *s = &ctx->snap;
	char names[768], note[96] = "", age[32];
	struct check_result *r;
	json_t *m;

	if (la->stale) {
		format_duration(la->age_s, age, sizeof(age));
		snprintf(note, sizeof(note), " (package lists are %s old)", age);
	}
	if (s->sim_error != NULL) {
		check_results_add(out, "pending", CHECK_UNKNOWN, NULL, "%s",
				  s->sim_error);
		check_results_add(out, "security", CHECK_UNKNOWN, NULL, "%s",
				  s->sim_error);
	} else {
		list_names(&s->sim, false, names, sizeof(names));
		m = json_pack("{s:I, s:I, s:I, s:f}", "pending",
			      (json_int_t)s->sim.upgrades, "new_packages",
			      (json_int_t)s->sim.installs, "removals",
			      (json_int_t)s->sim.removals, "apt_cpu_seconds",
			      (double)s->cpu_us / 1e6);
		r = check_results_add(out, "pending",
				      rate_count(s->sim.upgrades, ctx->pending_warning,
						 ctx->pending_critical),
				      m, "%zu pending update%s%s%s%s",
				      s->sim.upgrades, s->sim.upgrades == 1 ? "" : "s",
				      s->sim.upgrades ? ": " : "", names, note);
		r->context = json_pack("{s:o}", "packages", names_json(&s->sim, false));
		list_names(&s->sim, true, names, sizeof(names));
		r = check_results_add(out, "security",
				      rate_count(s->sim.security, ctx->security_warning,
						 ctx->security_critical),
				      json_pack("{s:I}", "security",
						(json_int_t)s->sim.security),
				      "%zu security update%s%s%s%s", s->sim.security,
				      s->sim.security == 1 ? "" : "s",
				      s->sim.security ? ": " : "", names, note);
		r->context = json_pack("{s:o}", "packages", names_json(&s->sim, true));
	}
	if (s->unattended_error != NULL) {
		check_results_add(out, "unattended", CHECK_UNKNOWN, NULL, "%s",
				  s->unattended_error);
	} else {
		bool central = ctx->env && ctx->env->role == CHECK_ROLE_CENTRAL;
		enum check_state st = !s->unattended ? CHECK_OK
				      : central	     ? (enum check_state)ctx->unattended_central
						     : (enum check_state)ctx->unattended_decentral;

		check_results_add(out, "unattended", st,
				  json_pack("{s:i}", "enabled", s->unattended),
				  "unattended-upgrades is %s on this %s host%s",
				  s->unattended ? "enabled" : "disabled",
				  central ? "central" : "decentral",
				  s->unattended && central
					  ? ": updates install without a technician watching"
					  : "");
	}
}

/* Newest Release/InRelease file of the lists, or the update stamp. */
static void lists_age(const struct updates_ctx *ctx, int64_t now_ms,
		      struct lists_age *ret)
{
	int64_t newest = 0;
	struct dirent *de;
	struct stat st;
	DIR *d = opendir(ctx->lists_dir);

	*ret = (struct lists_age){ 0 };
	if (d == NULL) {
		ret->error = -errno;
		return;
	}
	while ((de = readdir(d)) != NULL) {
		size_t n = strlen(de->d_name);

		if (!(n > 8 && strcmp(de->d_name + n - 8, "_Release") == 0) &&
		    !(n > 10 && strcmp(de->d_name + n - 10, "_InRelease") == 0))
			continue;
		if (fstatat(dirfd(d), de->d_name, &st, 0) == 0 &&
		    (int64_t)st.st_mtime * 1000 > newest)
			newest = (int64_t)st.st_mtime * 1000;
	}
	closedir(d);
	if (stat(ctx->update_stamp, &st) == 0 &&
	    (int64_t)st.st_mtime * 1000 > newest)
		newest = (int64_t)st.st_mtime * 1000;
	ret->none = newest == 0;
	ret->age_s = newest ? (now_ms - newest) / 1000 : 0;
	if (ret->age_s < 0)
		ret->age_s = 0;
	ret->stale = ret->none || ret->age_s * 1000 > ctx->lists_max_age_ms;
}

static void report_lists(const struct updates_ctx *ctx,
			 const struct lists_age *la, struct check_results *out)
{
	char age[32], max[32];

	if (la->error < 0) {
		check_results_add(out, "lists", CHECK_UNKNOWN, NULL,
				  "cannot read %s: %s", ctx->lists_dir,
				  strerror(-la->error));
		return;
	}
	if (la->none) {
		check_results_add(out, "lists", CHECK_WARNING, NULL,
				  "no package lists in %s: apt update never ran",
				  ctx->lists_dir);
		return;
	}
	format_duration(la->age_s, age, sizeof(age));
	format_duration(ctx->lists_max_age_ms / 1000, max, sizeof(max));
	check_results_add(out, "lists", la->stale ? CHECK_WARNING : CHECK_OK,
			  json_pack("{s:f}", "age_hours", (double)la->age_s / 3600),
			  "package lists are %s old%s%s", age,
			  la->stale ? "; stale beyond " : "", la->stale ? max : "");
}

/* /run/reboot-required.pkgs: unique lines, "a, b and 3 more". */
static void reboot_pkgs(const char *path, char *buf, size_t size)
{
	char data[REBOOT_PKGS_MAX + 1], *save = NULL, *line;
	struct check_names names;
	FILE *fp = fopen(path, "re");
	size_t n;

	check_names_init(&names, buf, size, NAMES_IN_SUMMARY);
	if (fp == NULL)
		return;
	n = fread(data, 1, REBOOT_PKGS_MAX, fp);
	fclose(fp);
	data[n] = '\0';
	for (line = strtok_r(data, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		bool seen = false;

		/* the file names a package once per trigger: count it once */
		for (char *q = data; q < line && !seen; q += strlen(q) + 1)
			seen = strcmp(q, line) == 0;
		if (!seen)
			check_names_add(&names, line);
	}
	check_names_end(&names);
}

static void report_reboot(const struct updates_ctx *ctx, int64_t now_ms,
			  struct check_results *out)
{
	char pkgs[512], age[32], *pkgs_path;
	struct stat st;
	int64_t pending_s;
	enum check_state state;

	if (stat(ctx->reboot_file, &st) < 0) {
		if (errno == ENOENT)
			check_results_add(out, "reboot", CHECK_OK,
					  json_pack("{s:i}", "required", 0),
					  "no reboot required");
		else
			check_results_add(out, "reboot", CHECK_UNKNOWN, NULL,
					  "cannot check %s: %s", ctx->reboot_file,
					  strerror(errno));
		return;
	}
	pending_s = now_ms / 1000 - (int64_t)st.st_mtime;
	if (pending_s < 0)
		pending_s = 0;
	pkgs_path = xasprintf("%s.pkgs", ctx->reboot_file);
	reboot_pkgs(pkgs_path, pkgs, sizeof(pkgs));
	free(pkgs_path);
	format_duration(pending_s, age, sizeof(age));
	state = pending_s * 1000 >= ctx->reboot_grace_ms ? CHECK_WARNING : CHECK_OK;
	check_results_add(out, "reboot", state,
			  json_pack("{s:i, s:f}", "required", 1,
				    "pending_hours", (double)pending_s / 3600),
			  "reboot required for %s%s%s", age,
			  pkgs[0] ? " by " : "", pkgs);
}

static void report_recent(struct updates_ctx *ctx, int64_t now_ms,
			  struct check_results *out)
{
	const struct pkglog *log = &ctx->pkglog.log;
	char buf[768], window[32];
	struct check_names names;
	struct check_result *r;
	size_t first, n;
	int rc = pkglog_cache_refresh(&ctx->pkglog, now_ms - ctx->recent_window_ms);

	if (rc < 0) {
		check_results_add(out, "upgrades", CHECK_UNKNOWN, NULL, "%s",
				  ctx->pkglog.why);
		return;
	}
	n = pkglog_window(log, now_ms, ctx->recent_window_ms, &first);
	check_names_init(&names, buf, sizeof(buf), NAMES_IN_SUMMARY);
	for (size_t i = first + n; i > first; i--) {
		const struct pkglog_upgrade *u = &log->v[i - 1];
		char one[256];

		snprintf(one, sizeof(one), "%s %s -> %s", u->package, u->from, u->to);
		check_names_add(&names, one);
	}
	check_names_end(&names);
	format_duration(ctx->recent_window_ms / 1000, window, sizeof(window));
	r = check_results_add(out, "upgrades", CHECK_OK,
			      json_pack("{s:I}", "upgraded", (json_int_t)n),
			      "%zu package%s upgraded in the last %s%s%s", n,
			      n == 1 ? "" : "s", window, n ? ": " : "", buf);
	r->context = json_pack("{s:o}", "upgrades", pkglog_json(log, first, n, 50));
}

/*
 * The daemon's first round: report from the snapshot the state database
 * holds, if this configuration saved one, and run apt when it is due by
 * that snapshot's age and apt_needed(), in the background in any case.  A restart or a
 * reload (SIGHUP builds a new context) so never waits for apt.
 */
static void seed(struct updates_ctx *ctx, int64_t now_ms, int64_t mono)
{
	int64_t age_ms;

	ctx->seed_tried = true;
	ctx->next_apt_ms = mono; /* at once, unless the seed is fresh */
	if (ctx->env == NULL || ctx->env->db == NULL ||
	    updates_state_load(ctx->env->db, ctx->state_key, &ctx->snap) < 0)
		return;
	age_ms = now_ms - ctx->snap.at_ms;
	if (age_ms >= 0 && age_ms < ctx->apt_interval_ms)
		ctx->next_apt_ms = mono + ctx->apt_interval_ms - age_ms;
}

/*
 * Whether the simulation must run again, its interval being over: not
 * when none of its inputs changed since the snapshot was taken (apt would
 * say the same; on most hosts the lists change once or twice a day, after
 * apt's own `apt update`), unless that snapshot is older than
 * apt_refresh or has an error (which a retry may mend).  *ret_inputs is
 * the fingerprint of now.
 */
static bool apt_needed(const struct updates_ctx *ctx, int64_t now_ms,
		       uint64_t *ret_inputs)
{
	const struct updates_snapshot *s = &ctx->snap;
	int64_t age_ms = now_ms - s->at_ms;

	*ret_inputs = apt_inputs(ctx);
	if (!s->valid || s->sim_error || s->unattended_error ||
	    s->inputs != *ret_inputs || ctx->apt_refresh_ms == 0)
		return true;
	return age_ms < 0 || age_ms >= ctx->apt_refresh_ms;
}

static int updates_collect(void *p, int64_t now_ms, struct check_results *out)
{
	struct updates_ctx *ctx = p;
	struct lists_age la;
	int64_t mono = time_mono_ms();

	if (ctx->child != NULL)
		advance_job(ctx); /* enforces the deadline of a silent child */
	if (ctx->env && ctx->env->one_shot) {
		/* a one-shot run prints what apt says now */
		if (!ctx->snap.valid)
			run_apt_now(ctx);
	} else {
		uint64_t inputs;

		if (!ctx->seed_tried)
			seed(ctx, now_ms, mono);
		if (ctx->child == NULL && mono >= ctx->next_apt_ms) {
			ctx->next_apt_ms = mono + ctx->apt_interval_ms;
			if (apt_needed(ctx, now_ms, &inputs))
				start_job(ctx, inputs);
			else /* why apt did not run: for an operator, and the tests */
				log_debug("updates: apt's inputs did not change since its last run: not running it again (next look in %llds)",
					  (long long)(ctx->apt_interval_ms / 1000));
		}
	}
	lists_age(ctx, now_ms, &la);
	/* without a snapshot yet, the apt items come when the run ends */
	if (ctx->snap.valid)
		report_apt(ctx, &la, out);
	report_lists(ctx, &la, out);
	report_reboot(ctx, now_ms, out);
	report_recent(ctx, now_ms, out);
	return 0;
}

static int updates_watch_fd(void *p)
{
	struct updates_ctx *ctx = p;

	return ctx->child ? run_fd(ctx->child) : -1;
}

/* The background apt job progressed: report its items when it is done. */
static int updates_on_ready(void *p, int64_t now_ms, struct check_results *out)
{
	struct updates_ctx *ctx = p;
	struct lists_age la;

	if (ctx->child == NULL || !advance_job(ctx))
		return 0;
	lists_age(ctx, now_ms, &la);
	report_apt(ctx, &la, out);
	return 0;
}

const struct check check_updates = {
	.name = "updates",
	.default_interval_ms = 5 * 60 * 1000,
	.enabled_by_default = true,
	.configure = updates_configure,
	.collect = updates_collect,
	.free = updates_free,
	.watch_fd = updates_watch_fd,
	.on_ready = updates_on_ready,
};
