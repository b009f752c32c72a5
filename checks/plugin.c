/*
 * plugin: Nagios-compatible plugins, for everything the built-in checks
 * do not cover.
 *
 *   checks:
 *     plugin:
 *       plugins:
 *         - name: raid
 *           command: [/usr/lib/nagios/plugins/check_raid, --warn, "80"]
 *           interval: 5m
 *           timeout: 10s
 *
 * Exit status 0/1/2/3 is ok/warning/critical/unknown; the first output
 * line is the summary; performance data becomes metrics (nagios.h).
 *
 * Safety: only commands from the local configuration ever run (nothing
 * the collector sends can name one); argv is executed directly, no shell,
 * and argv[0] must be an absolute path; the environment is minimal (PATH,
 * LC_ALL=C and what the plugin's env: names); stdin is /dev/null, the
 * working directory /, and no descriptor of the agent leaks.  Each plugin
 * runs in a process group of its own: on timeout the whole group is
 * killed, and when the plugin exits, whatever it left running is killed
 * too, in its group or out of it (setsid), and logged: the agent adopts
 * orphans (children.h), and every plugin has TOCSIN_RUN=<n> in its
 * environment to tell its descendants from another plugin's.  Output is read up to PLUGIN_OUTPUT_MAX; more is drained
 * and dropped, and the result is unknown, saying so.  All of that is
 * checks/run.c, which apt's children share.
 *
 * Concurrency: plugins run as child processes watched through one epoll
 * descriptor (each child's own epoll descriptor from run.c, with its
 * pipes, pidfd and deadline, and a timerfd for due times), which the
 * agent polls with everything else.  collect() and
 * on_ready() only start processes and read what is there, so a slow
 * plugin never stalls another check: at most max_concurrent (default 4)
 * plugins run at once, the others wait for a free slot, and each result
 * is delivered the moment its plugin ends.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <unistd.h>

#include "../common/config.h"
#include "../common/log.h"
#include "../common/utf8.h"
#include "../common/util.h"
#include "check.h"
#include "nagios.h"
#include "run.h"

#define PLUGIN_OUTPUT_MAX (64 * 1024)
#define PLUGIN_STDERR_MAX 4096
/* Past its limit, output is drained this far and then the pipe closed: a
 * plugin that floods dies of SIGPIPE (or meets its timeout), instead of
 * making the agent copy gigabytes into the void. */
#define PLUGIN_DRAIN_MAX (1024 * 1024)
#define PLUGIN_NAME_MAX 64
#define PLUGIN_ARGS_MAX 64
#define PLUGIN_ENV_MAX 32
#define PLUGIN_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

enum phase {
	PHASE_IDLE,
	PHASE_QUEUED,  /* due, waiting for a free slot */
	PHASE_RUNNING,
};

struct plugin {
	char *name;
	char **argv; /* NULL-terminated; argv[0] absolute */
	char **envp; /* NULL-terminated */
	int64_t interval_ms;
	int64_t timeout_ms;

	enum phase phase;
	int64_t next_due_ms; /* monotonic; 0: at once */
	struct run_child *child; /* while running */
	int64_t started_ms;      /* monotonic */
};

struct plugin_ctx {
	const struct check_env *env;
	struct plugin *plugins;
	size_t nplugins;
	size_t max_running;
	size_t running;
	int epfd;
	int timerfd;
};

/* epoll data: the plugin's index, or the timer of due times. */
#define TIMER_TAG UINT64_MAX

static void strv_free(char **v)
{
	for (size_t i = 0; v && v[i]; i++)
		free(v[i]);
	free(v);
}

static bool valid_name(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > PLUGIN_NAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || strchr("_-.", s[i])))
			return false;
	return true;
}

static bool valid_env_key(const char *s)
{
	if (!((s[0] >= 'A' && s[0] <= 'Z') || (s[0] >= 'a' && s[0] <= 'z') ||
	      s[0] == '_'))
		return false;
	for (size_t i = 1; s[i]; i++)
		if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_'))
			return false;
	return true;
}

/* command: a list of strings, the first an absolute path. */
static int parse_command(struct cfg *cfg, const struct cfg_node *cmd,
			 const struct cfg_node *item, struct plugin *pl)
{
	if (cmd == NULL || cmd->type == CFG_NULL) {
		cfg_error(cfg, item, "a plugin needs a command");
		return -EINVAL;
	}
	if (cmd->type != CFG_SEQ || cmd->nitems == 0) {
		cfg_error(cfg, cmd,
			  "command must be a list: [/absolute/path, arg, ...] (no shell is used)");
		return -EINVAL;
	}
	if (cmd->nitems > PLUGIN_ARGS_MAX) {
		cfg_error(cfg, cmd, "at most %d arguments", PLUGIN_ARGS_MAX);
		return -EINVAL;
	}
	pl->argv = xcalloc(cmd->nitems + 1, sizeof(*pl->argv));
	for (size_t i = 0; i < cmd->nitems; i++)
		if (cfg_node_string(cfg, cmd->items[i], &pl->argv[i]) < 0)
			return -EINVAL;
	if (pl->argv[0][0] != '/') {
		cfg_error(cfg, cmd->items[0],
			  "'%s' is not an absolute path (plugins run without a shell or PATH search)",
			  pl->argv[0]);
		return -EINVAL;
	}
	return 0;
}

/* env: a mapping of variable to value, added to PATH and LC_ALL=C. */
static int parse_env(struct cfg *cfg, const struct cfg_node *env,
		     struct plugin *pl)
{
	size_t n = 0, max = PLUGIN_ENV_MAX + 2;

	pl->envp = xcalloc(max + 1, sizeof(*pl->envp));
	pl->envp[n++] = xstrdup(PLUGIN_PATH);
	pl->envp[n++] = xstrdup("LC_ALL=C");
	if (env == NULL || env->type == CFG_NULL)
		return 0;
	if (env->type != CFG_MAP) {
		cfg_error(cfg, env, "env must be a mapping of NAME: value");
		return -EINVAL;
	}
	for (size_t i = 0; i < env->npairs; i++) {
		const struct cfg_pair *pr = &env->pairs[i];
		char *value = NULL;

		if (n >= max) {
			cfg_error(cfg, env, "at most %d variables", PLUGIN_ENV_MAX);
			return -EINVAL;
		}
		if (!valid_env_key(pr->key)) {
			cfg_error(cfg, pr->value, "'%s' is not a variable name",
				  pr->key);
			return -EINVAL;
		}
		if (cfg_get_string(cfg, env, pr->key, &value) <= 0)
			return -EINVAL;
		pl->envp[n++] = xasprintf("%s=%s", pr->key, value);
		free(value);
	}
	return 0;
}

static bool name_taken(const struct plugin_ctx *ctx, const char *name)
{
	for (size_t i = 0; i < ctx->nplugins; i++)
		if (strcmp(ctx->plugins[i].name, name) == 0)
			return true;
	return false;
}

static void plugin_clear(struct plugin *pl)
{
	free(pl->name);
	strv_free(pl->argv);
	strv_free(pl->envp);
}

static void parse_plugin(struct cfg *cfg, const struct cfg_node *item,
			 struct plugin_ctx *ctx)
{
	struct plugin pl = {
		.interval_ms = 60 * 1000,
		.timeout_ms = 10 * 1000,
	};

	if (item->type != CFG_MAP) {
		cfg_error(cfg, item, "expected a mapping with a name and a command");
		return;
	}
	if (cfg_get_string(cfg, item, "name", &pl.name) <= 0) {
		if (cfg_get(cfg, item, "name") == NULL)
			cfg_error(cfg, item, "a plugin needs a name");
		goto fail;
	}
	if (!valid_name(pl.name)) {
		cfg_error(cfg, cfg_get(cfg, item, "name"),
			  "name '%s' may only hold letters, digits, '_', '-' and '.' (at most %d)",
			  pl.name, PLUGIN_NAME_MAX);
		goto fail;
	}
	if (name_taken(ctx, pl.name)) {
		cfg_error(cfg, item, "a plugin named '%s' already exists", pl.name);
		goto fail;
	}
	if (cfg_get_duration(cfg, item, "interval", &pl.interval_ms) > 0 &&
	    pl.interval_ms < 1000) {
		cfg_error(cfg, cfg_get(cfg, item, "interval"),
			  "interval must be at least 1s");
		goto fail;
	}
	if (cfg_get_duration(cfg, item, "timeout", &pl.timeout_ms) > 0 &&
	    (pl.timeout_ms < 100 || pl.timeout_ms > 3600 * 1000)) {
		cfg_error(cfg, cfg_get(cfg, item, "timeout"),
			  "timeout must be between 100ms and 1h");
		goto fail;
	}
	if (parse_command(cfg, cfg_get(cfg, item, "command"), item, &pl) < 0 ||
	    parse_env(cfg, cfg_get(cfg, item, "env"), &pl) < 0)
		goto fail;
	ctx->plugins[ctx->nplugins++] = pl;
	return;
fail:
	plugin_clear(&pl);
}

static void plugin_free(void *p);

/*
 * Called per configuration load.  Creates the epoll descriptor the agent
 * will poll and the timerfd in it even for a disabled check (configure
 * runs for every check, so that typos are found); plugins with errors are
 * left out and the errors recorded.
 */
static int plugin_configure(struct cfg *cfg, const struct cfg_node *node,
			    const struct check_env *env, void **ret_ctx)
{
	struct plugin_ctx *ctx = xcalloc(1, sizeof(*ctx));
	const struct cfg_node *list = cfg_get(cfg, node, "plugins");
	int64_t max = 4;
	int r;

	ctx->env = env;
	ctx->epfd = ctx->timerfd = -1;
	cfg_get_int(cfg, node, "max_concurrent", 1, 64, &max);
	ctx->max_running = (size_t)max;
	if (list != NULL && list->type == CFG_SEQ) {
		ctx->plugins = xcalloc(list->nitems, sizeof(*ctx->plugins));
		for (size_t i = 0; i < list->nitems; i++)
			parse_plugin(cfg, list->items[i], ctx);
	} else if (list != NULL && list->type != CFG_NULL) {
		cfg_error(cfg, list, "expected a list of plugins");
	}

	ctx->epfd = epoll_create1(EPOLL_CLOEXEC);
	ctx->timerfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC | TFD_NONBLOCK);
	if (ctx->epfd < 0 || ctx->timerfd < 0 ||
	    epoll_ctl(ctx->epfd, EPOLL_CTL_ADD, ctx->timerfd,
		      &(struct epoll_event){ .events = EPOLLIN,
					     .data.u64 = TIMER_TAG }) < 0) {
		r = -errno;
		plugin_free(ctx);
		return r;
	}
	*ret_ctx = ctx;
	return 0;
}

/* Stop a running plugin's process group, if any, and forget it. */
static void plugin_stop(struct plugin_ctx *ctx, struct plugin *pl)
{
	if (pl->child == NULL)
		return;
	epoll_ctl(ctx->epfd, EPOLL_CTL_DEL, run_fd(pl->child), NULL);
	run_free(pl->child);
	pl->child = NULL;
}

/*
 * A plugin still running when its configuration goes away is killed and
 * reports nothing this round: said, so that a result that never comes is
 * explained (it runs again under the new configuration when due).
 */
static void plugin_abandon(struct plugin_ctx *ctx, struct plugin *pl)
{
	char ran[32];

	if (pl->child == NULL)
		return;
	run_format_timeout(time_mono_ms() - pl->started_ms, ran, sizeof(ran));
	log_warnx("plugin %s: killed after %s of running, abandoned %s",
		  pl->name, ran,
		  ctx->env->reloading ? "by the reload" : "as the agent stops");
	plugin_stop(ctx, pl);
}

static void plugin_free(void *p)
{
	struct plugin_ctx *ctx = p;

	if (ctx == NULL)
		return;
	for (size_t i = 0; i < ctx->nplugins; i++) {
		plugin_abandon(ctx, &ctx->plugins[i]);
		plugin_clear(&ctx->plugins[i]);
	}
	free(ctx->plugins);
	if (ctx->timerfd >= 0)
		close(ctx->timerfd);
	if (ctx->epfd >= 0)
		close(ctx->epfd);
	free(ctx);
}

/*
 * Start plugin i (run.h: a process group of its own, stdout and stderr
 * apart and bounded, the deadline armed) and watch it.  0, or -errno:
 * the plugin cannot run, and nothing of it is left.
 */
static int plugin_spawn(struct plugin_ctx *ctx, size_t i)
{
	struct plugin *pl = &ctx->plugins[i];
	struct run_options opt = {
		.timeout_ms = pl->timeout_ms,
		.max_output = PLUGIN_OUTPUT_MAX,
		.stderr_apart = true,
		.max_stderr = PLUGIN_STDERR_MAX,
		.drain_max = PLUGIN_DRAIN_MAX,
	};
	struct epoll_event ev = { .events = EPOLLIN, .data.u64 = i };
	int r;

	r = run_start((const char *const *)pl->argv,
		      (const char *const *)pl->envp, &opt, &pl->child);
	if (r < 0)
		return r;
	if (epoll_ctl(ctx->epfd, EPOLL_CTL_ADD, run_fd(pl->child), &ev) < 0) {
		r = -errno;
		/* cannot watch it: do not let it run unwatched */
		run_free(pl->child);
		pl->child = NULL;
		return r;
	}
	pl->started_ms = time_mono_ms();
	pl->phase = PHASE_RUNNING;
	ctx->running++;
	return 0;
}

/* The perfdata as context: label, value, uom and the thresholds. */
static json_t *perf_context(const struct nagios_output *o)
{
	json_t *list = json_array();

	for (size_t i = 0; i < o->nperf; i++) {
		const struct nagios_perf *pd = &o->perf[i];
		json_t *e = json_pack("{s:s, s:f, s:s}", "label", pd->label,
				      "value", pd->value, "uom", pd->uom);

		if (e == NULL)
			continue;
		if (pd->warn[0])
			json_object_set_new(e, "warn", json_string(pd->warn));
		if (pd->crit[0])
			json_object_set_new(e, "crit", json_string(pd->crit));
		if (pd->has_min)
			json_object_set_new(e, "min", json_real(pd->min));
		if (pd->has_max)
			json_object_set_new(e, "max", json_real(pd->max));
		json_array_append_new(list, e);
	}
	return list;
}

/* The first line of stderr, sanitized, for a plugin that said nothing else. */
static void first_stderr_line(const struct run_result *res, char *buf,
			      size_t size)
{
	size_t n = res->errlen;
	const char *nl = res->errout ? memchr(res->errout, '\n', n) : NULL;

	if (nl != NULL)
		n = (size_t)(nl - res->errout);
	utf8_sanitize(buf, size, res->errout ? res->errout : "", n, 0);
}

/*
 * Turn a finished run into its result: state from the exit status,
 * summary from the first line, unless it hung, flooded, died or exited
 * with a status plugins do not have.
 */
static void plugin_result(const struct plugin *pl, const struct run_result *res,
			  struct check_results *out)
{
	struct nagios_output o;
	enum check_state state = CHECK_UNKNOWN;
	char line[NAGIOS_SUMMARY_MAX], t[32], how[96];
	json_t *metrics = json_object(), *context;
	struct check_result *r;
	int status = res->status;
	int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;

	nagios_output_parse(res->output, res->len, &o);
	if (o.summary[0] != '\0')
		strlcpy_safe(line, o.summary, sizeof(line));
	else
		first_stderr_line(res, line, sizeof(line));
	for (size_t i = 0; i < o.nperf; i++)
		json_object_set_new(metrics, o.perf[i].label,
				    json_real(o.perf[i].value));
	run_format_timeout(pl->timeout_ms, t, sizeof(t));
	run_describe(res, pl->timeout_ms, how, sizeof(how));
	if (res->timed_out) {
		r = check_results_add(out, pl->name, CHECK_UNKNOWN, metrics,
				      "%s: timed out after %s and was killed%s%s%s",
				      pl->name, t,
				      res->truncated ? ", its output past 64 KiB truncated" : "",
				      line[0] ? "; first line: " : "", line);
	} else if (res->truncated) {
		r = check_results_add(out, pl->name, CHECK_UNKNOWN, metrics,
				      "%s: output exceeded %d KiB and was truncated%s%s",
				      pl->name, PLUGIN_OUTPUT_MAX / 1024,
				      line[0] ? "; first line: " : "", line);
	} else if (res->err_cut && (WIFSIGNALED(status) || code > 3)) {
		/* most likely SIGPIPE, ours: say so, not "exit status 141" */
		r = check_results_add(out, pl->name, CHECK_UNKNOWN, metrics,
				      "%s: the agent closed its stderr after %d MiB, then it %s%s%s%s",
				      pl->name, PLUGIN_DRAIN_MAX / (1024 * 1024),
				      WIFSIGNALED(status) ? "was " : "", how,
				      line[0] ? "; first line: " : "", line);
	} else if (WIFSIGNALED(status)) {
		r = check_results_add(out, pl->name, CHECK_UNKNOWN, metrics,
				      "%s: killed by signal %d (%s)%s%s", pl->name,
				      WTERMSIG(status), strsignal(WTERMSIG(status)),
				      line[0] ? "; first line: " : "", line);
	} else if (code < 0 || code > 3) {
		r = check_results_add(out, pl->name, CHECK_UNKNOWN, metrics,
				      "%s: exit status %d is not a plugin status (0-3)%s%s",
				      pl->name, code, line[0] ? ": " : "", line);
	} else {
		state = (enum check_state)code;
		if (line[0] != '\0')
			r = check_results_add(out, pl->name, state, metrics, "%s", line);
		else
			r = check_results_add(out, pl->name, state, metrics,
					      "%s: no output (exit status %d)",
					      pl->name, code);
	}
	context = json_pack("{s:i, s:I, s:I, s:o}", "exit_status", code,
			    "duration_ms", (json_int_t)res->wall_ms, "cpu_us",
			    (json_int_t)res->cpu_us, "perfdata", perf_context(&o));
	if (context != NULL && o.long_output != NULL)
		json_object_set_new(context, "long_output",
				    json_string(o.long_output));
	if (context != NULL && o.perf_skipped > 0)
		json_object_set_new(context, "perfdata_skipped",
				    json_pack("{s:I, s:s}", "count",
					      (json_int_t)o.perf_skipped, "first",
					      o.first_bad));
	r->context = context;
	nagios_output_free(&o);
}

/* A plugin whose process could not be started at all. */
static void spawn_failed(struct plugin *pl, int err, struct check_results *out)
{
	check_results_add(out, pl->name, CHECK_UNKNOWN, NULL,
			  "%s: cannot run %s: %s", pl->name, pl->argv[0],
			  strerror(-err));
	pl->next_due_ms = time_mono_ms() + pl->interval_ms;
	pl->phase = PHASE_IDLE;
}

/*
 * The plugin's run made progress (output, its end, its deadline): when it
 * is over, report it and make it idle until it is due again.
 */
static void plugin_pump(struct plugin_ctx *ctx, struct plugin *pl,
			struct check_results *out)
{
	struct run_result res = { 0 };
	int r = run_pump(pl->child, &res);

	if (r == 0)
		return;
	plugin_stop(ctx, pl);
	if (r < 0)
		check_results_add(out, pl->name, CHECK_UNKNOWN, NULL,
				  "%s: lost track of its process: %s", pl->name,
				  strerror(-r));
	else
		plugin_result(pl, &res, out);
	if (res.left_behind > 0)
		log_warnx("plugin %s left %zu process%s behind; killed", pl->name,
			  res.left_behind, res.left_behind == 1 ? "" : "es");
	run_result_clear(&res);
	pl->phase = PHASE_IDLE;
	pl->next_due_ms = pl->started_ms + pl->interval_ms;
	ctx->running--;
}

enum queue {
	QUEUE_NONE, /* only start what is already queued */
	QUEUE_DUE,  /* queue the plugins whose interval has passed */
	QUEUE_ALL,  /* queue every idle plugin (a one-shot run) */
};

/* Queue plugins as told, then start queued ones while slots are free. */
static void schedule(struct plugin_ctx *ctx, enum queue q,
		     struct check_results *out)
{
	int64_t now = time_mono_ms();

	for (size_t i = 0; i < ctx->nplugins && q != QUEUE_NONE; i++) {
		struct plugin *pl = &ctx->plugins[i];

		if (pl->phase == PHASE_IDLE &&
		    (q == QUEUE_ALL || pl->next_due_ms <= now))
			pl->phase = PHASE_QUEUED;
	}
	for (size_t i = 0; i < ctx->nplugins && ctx->running < ctx->max_running; i++) {
		struct plugin *pl = &ctx->plugins[i];
		int r;

		if (pl->phase != PHASE_QUEUED)
			continue;
		r = plugin_spawn(ctx, i);
		if (r < 0)
			spawn_failed(pl, r, out);
	}
}

/* Arm the timer for the next due plugin (run.c watches the deadlines). */
static void arm_timer(struct plugin_ctx *ctx)
{
	int64_t next = INT64_MAX, now = time_mono_ms();
	struct itimerspec its = { 0 };

	for (size_t i = 0; i < ctx->nplugins && !ctx->env->one_shot; i++) {
		const struct plugin *pl = &ctx->plugins[i];

		if (pl->phase == PHASE_IDLE && pl->next_due_ms < next)
			next = pl->next_due_ms;
	}
	if (next != INT64_MAX) {
		int64_t wait = next - now > 0 ? next - now : 1;

		its.it_value.tv_sec = wait / 1000;
		its.it_value.tv_nsec = (wait % 1000) * 1000000;
	}
	timerfd_settime(ctx->timerfd, 0, &its, NULL);
}

/*
 * On the check's interval: start the plugins that are due (all of them in
 * a one-shot run).  Results come later, from on_ready(); only a plugin
 * that cannot be started at all reports here.
 */
static int plugin_collect(void *p, int64_t now_ms, struct check_results *out)
{
	struct plugin_ctx *ctx = p;

	(void)now_ms;
	if (ctx->nplugins == 0) {
		check_results_add(out, "plugins", CHECK_UNKNOWN, NULL,
				  "the plugin check is enabled but has no plugins (checks.plugin.plugins)");
		return 0;
	}
	/* a one-shot run runs every plugin once, whatever its interval */
	schedule(ctx, ctx->env->one_shot ? QUEUE_ALL : QUEUE_DUE, out);
	arm_timer(ctx);
	return 0;
}

/*
 * When the epoll descriptor is readable: let the running plugins that
 * have news make progress (run.c reads, reaps and kills at deadlines),
 * report those that ended, start queued and (in the daemon) due ones,
 * and re-arm the timer.  Never blocks.
 */
static int plugin_on_ready(void *p, int64_t now_ms, struct check_results *out)
{
	struct plugin_ctx *ctx = p;
	struct epoll_event evs[16];
	uint64_t expirations;
	int n;

	(void)now_ms;
	while ((n = epoll_wait(ctx->epfd, evs, ARRAY_SIZE(evs), 0)) > 0) {
		for (int k = 0; k < n; k++) {
			uint64_t tag = evs[k].data.u64;
			struct plugin *pl;

			if (tag == TIMER_TAG) {
				(void)!read(ctx->timerfd, &expirations,
					    sizeof(expirations));
				continue;
			}
			pl = &ctx->plugins[tag];
			if (pl->phase == PHASE_RUNNING)
				plugin_pump(ctx, pl, out);
		}
		if (n < (int)ARRAY_SIZE(evs))
			break;
	}
	/* free slots go to queued plugins; the daemon also starts due ones,
	 * but a one-shot run must not start a plugin twice */
	schedule(ctx, ctx->env->one_shot ? QUEUE_NONE : QUEUE_DUE, out);
	arm_timer(ctx);
	return 0;
}

static int plugin_watch_fd(void *p)
{
	const struct plugin_ctx *ctx = p;

	return ctx->nplugins > 0 ? ctx->epfd : -1;
}

static bool plugin_busy(void *p)
{
	const struct plugin_ctx *ctx = p;

	for (size_t i = 0; i < ctx->nplugins; i++)
		if (ctx->plugins[i].phase != PHASE_IDLE)
			return true;
	return false;
}

const struct check check_plugin = {
	.name = "plugin",
	.default_interval_ms = 60 * 1000,
	.enabled_by_default = false,
	.configure = plugin_configure,
	.collect = plugin_collect,
	.free = plugin_free,
	.watch_fd = plugin_watch_fd,
	.on_ready = plugin_on_ready,
	.busy = plugin_busy,
};
