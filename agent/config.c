/*
 * The agent's configuration: the keys the agent owns itself, and one
 * section per check, handed to that check's configure hook.
 */
#include <ctype.h>
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../checks/claims.h"
#include "../common/config.h"
#include "../common/util.h"
#include "agent.h"
#include "credential.h"

static void agent_checks_free(struct agent_config *conf)
{
	for (size_t i = 0; i < conf->nchecks; i++) {
		struct agent_check *ac = &conf->checks[i];

		if (ac->check->free)
			ac->check->free(ac->ctx);
	}
	free(conf->checks);
	conf->checks = NULL;
	conf->nchecks = 0;
}

void agent_config_free(struct agent_config *conf)
{
	if (conf == NULL)
		return;
	agent_checks_free(conf);
	claims_free(conf->env.claims);
	free(conf->inventory);
	free(conf->host);
	free(conf->state_dir);
	cfg_string_list_free(conf->server_urls);
	if (conf->token)
		explicit_bzero(conf->token, strlen(conf->token));
	free(conf->token);
	free(conf->ca_file);
	free(conf->pin_sha256);
	free(conf->client_cert);
	free(conf->client_key);
	free(conf->deliverer_path);
	free(conf);
}

/* A file the agent must read later: say now when it cannot. */
static void check_readable(struct cfg *cfg, const struct cfg_node *map,
			   const char *key, const char *path)
{
	if (path != NULL && access(path, R_OK) < 0)
		cfg_error(cfg, cfg_get(cfg, map, key), "cannot read %s: %s",
			  path, strerror(errno));
}

/* server.url: one URL or a list, tried in order. */
static void parse_urls(struct cfg *cfg, const struct cfg_node *node,
		       struct agent_config *conf)
{
	const struct cfg_node *list = cfg_get(cfg, node, "url");
	size_t n;

	if (cfg_get_string_list(cfg, node, "url", &conf->server_urls) <= 0)
		return;
	for (n = 0; conf->server_urls[n]; n++) {
		const char *url = conf->server_urls[n];
		const struct cfg_node *at =
			list->type == CFG_SEQ ? list->items[n] : list;

		if (strncmp(url, "https://", 8) == 0 && url[8] != '\0')
			continue;
		if (strncmp(url, "http://", 7) != 0 || url[7] == '\0')
			cfg_error(cfg, at, "'%s' is not an http:// or https:// URL",
				  url);
		else if (!conf->allow_plain_http)
			cfg_error(cfg, at,
				  "'%s' is plain HTTP: events and credentials would travel unencrypted; use https:// or set server.allow_plain_http: true",
				  url);
	}
	if (n > AGENT_URLS_MAX)
		cfg_error(cfg, list, "at most %d collector URLs", AGENT_URLS_MAX);
	if (n == 0) {
		cfg_error(cfg, list, "expected at least one URL");
		cfg_string_list_free(conf->server_urls);
		conf->server_urls = NULL;
	}
}

static bool is_base64_sha256(const char *s)
{
	size_t len = strlen(s);

	if (len != 44 || s[43] != '=')
		return false;
	for (size_t i = 0; i < 43; i++)
		if (!(isalnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '/'))
			return false;
	return true;
}

/* server.pin_sha256: one pin or a list, as curl's "sha256//BASE64". */
static void parse_pins(struct cfg *cfg, const struct cfg_node *node,
		       struct agent_config *conf)
{
	const struct cfg_node *at = cfg_get(cfg, node, "pin_sha256");
	char **pins = NULL, *joined = NULL;

	if (cfg_get_string_list(cfg, node, "pin_sha256", &pins) <= 0)
		return;
	for (size_t i = 0; pins[i]; i++) {
		const char *p = pins[i];
		char *next;

		if (strncmp(p, "sha256//", 8) == 0)
			p += 8;
		if (!is_base64_sha256(p)) {
			cfg_error(cfg, at->type == CFG_SEQ ? at->items[i] : at,
				  "'%s' is not a SHA-256 pin (sha256// and 44 characters of base64, as `openssl pkey -pubin -outform der | openssl dgst -sha256 -binary | base64` prints)",
				  pins[i]);
			continue;
		}
		next = joined ? xasprintf("%s;sha256//%s", joined, p)
			      : xasprintf("sha256//%s", p);
		free(joined);
		joined = next;
	}
	cfg_string_list_free(pins);
	free(conf->pin_sha256);
	conf->pin_sha256 = joined;
}

static void parse_duration_min(struct cfg *cfg, const struct cfg_node *node,
			       const char *key, int64_t min, int64_t *ret)
{
	int64_t v;

	if (cfg_get_duration(cfg, node, key, &v) <= 0)
		return;
	if (v < min)
		cfg_error(cfg, cfg_get(cfg, node, key),
			  "%s must be at least %lld ms", key, (long long)min);
	else
		*ret = v;
}

static void parse_server(struct cfg *cfg, const struct cfg_node *node,
			 struct agent_config *conf)
{
	char *token_file = NULL;

	if (cfg_expect_map(cfg, node) < 0)
		return;
	cfg_get_bool(cfg, node, "allow_plain_http", &conf->allow_plain_http);
	parse_urls(cfg, node, conf);
	cfg_get_string(cfg, node, "token", &conf->token);
	parse_duration_min(cfg, node, "timeout", 100, &conf->timeout_ms);
	if (cfg_get_string(cfg, node, "token_file", &token_file) > 0 &&
	    conf->token != NULL) {
		cfg_error(cfg, cfg_get(cfg, node, "token_file"),
			  "token and token_file are mutually exclusive");
	} else if (token_file != NULL) {
		int r = credential_read(token_file, &conf->token);
		if (r < 0)
			cfg_error(cfg, cfg_get(cfg, node, "token_file"),
				  "cannot read token from %s: %s", token_file,
				  strerror(-r));
	}
	free(token_file);
	cfg_get_string(cfg, node, "ca_file", &conf->ca_file);
	check_readable(cfg, node, "ca_file", conf->ca_file);
	parse_pins(cfg, node, conf);
	cfg_get_string(cfg, node, "client_cert", &conf->client_cert);
	cfg_get_string(cfg, node, "client_key", &conf->client_key);
	check_readable(cfg, node, "client_cert", conf->client_cert);
	check_readable(cfg, node, "client_key", conf->client_key);
	if ((conf->client_cert == NULL) != (conf->client_key == NULL))
		cfg_error(cfg, node, "client_cert and client_key go together");
	parse_duration_min(cfg, node, "retry_primary", 1000,
			   &conf->retry_primary_ms);
	parse_duration_min(cfg, node, "backoff_max", 1000, &conf->backoff_max_ms);
	if (cfg_get_duration(cfg, node, "hold_repeats", &conf->hold_repeats_ms) > 0 &&
	    conf->hold_repeats_ms > 3600 * 1000) {
		cfg_error(cfg, cfg_get(cfg, node, "hold_repeats"),
			  "hold_repeats must be at most 1h");
		conf->hold_repeats_ms = AGENT_DEFAULT_HOLD_REPEATS_MS;
	}
	if (cfg_get_duration(cfg, node, "rotate_every", &conf->rotate_every_ms) > 0 &&
	    conf->rotate_every_ms != 0 && conf->rotate_every_ms < 1000) {
		cfg_error(cfg, cfg_get(cfg, node, "rotate_every"),
			  "rotate_every must be 0 (off) or at least 1s");
		conf->rotate_every_ms = 0;
	}
}

static void parse_count(struct cfg *cfg, const struct cfg_node *node,
			const char *key, int64_t min, int64_t max,
			uint64_t *ret)
{
	int64_t v;

	if (cfg_get_int(cfg, node, key, min, max, &v) > 0)
		*ret = (uint64_t)v;
}

static void parse_bytes(struct cfg *cfg, const struct cfg_node *node,
			const char *key, uint64_t min, uint64_t max,
			uint64_t *ret)
{
	uint64_t v;

	if (cfg_get_size(cfg, node, key, &v) <= 0)
		return;
	if (v < min || v > max)
		cfg_error(cfg, cfg_get(cfg, node, key),
			  "%s must be between %llu and %llu bytes", key,
			  (unsigned long long)min, (unsigned long long)max);
	else
		*ret = v;
}

/* deliverer: where the program is, and how long an idle one stays. */
static void parse_deliverer(struct cfg *cfg, const struct cfg_node *node,
			    struct agent_config *conf)
{
	int64_t linger;

	if (cfg_expect_map(cfg, node) < 0)
		return;
	if (cfg_get_string(cfg, node, "path", &conf->deliverer_path) > 0 &&
	    conf->deliverer_path[0] != '/') {
		cfg_error(cfg, cfg_get(cfg, node, "path"),
			  "'%s' is not an absolute path", conf->deliverer_path);
		free(conf->deliverer_path);
		conf->deliverer_path = NULL;
	} else if (conf->deliverer_path != NULL &&
		   access(conf->deliverer_path, X_OK) < 0) {
		cfg_error(cfg, cfg_get(cfg, node, "path"), "cannot run %s: %s",
			  conf->deliverer_path, strerror(errno));
	}
	if (cfg_get_duration(cfg, node, "linger", &linger) <= 0)
		return;
	if (linger > 3600 * 1000)
		cfg_error(cfg, cfg_get(cfg, node, "linger"),
			  "linger must be at most 1h");
	else
		conf->deliverer_linger_ms = linger;
}

/* outbox: its bounds and the batch sizes (below the collector's). */
static void parse_outbox(struct cfg *cfg, const struct cfg_node *node,
			 struct outbox_limits *lim)
{
	int64_t age;

	if (cfg_expect_map(cfg, node) < 0)
		return;
	parse_count(cfg, node, "max_events", 10, 100000000, &lim->max_events);
	parse_bytes(cfg, node, "max_bytes", 64 * 1024, 1ULL << 40,
		    &lim->max_bytes);
	if (cfg_get_duration(cfg, node, "max_age", &age) > 0) {
		if (age != 0 && age < 60000)
			cfg_error(cfg, cfg_get(cfg, node, "max_age"),
				  "max_age must be 0 (off) or at least 1m");
		else
			lim->max_age_ms = age;
	}
	parse_count(cfg, node, "batch_events", 1, 100000, &lim->batch_events);
	parse_bytes(cfg, node, "batch_bytes", 4096, AGENT_BATCH_BYTES_MAX,
		    &lim->batch_bytes);
	if (lim->batch_bytes > lim->max_bytes)
		cfg_error(cfg, node, "batch_bytes must not exceed max_bytes");
}

/*
 * Configure every check in the table.  A check runs when it is enabled by
 * default or has a section, unless the section says enabled: false.
 */
static void parse_checks(struct cfg *cfg, const struct cfg_node *node,
			 struct agent_config *conf)
{
	size_t n = 0;

	if (cfg_expect_map(cfg, node) < 0)
		return;
	while (checks_table[n])
		n++;
	conf->checks = xcalloc(n, sizeof(*conf->checks));
	for (size_t i = 0; i < n; i++) {
		const struct check *ck = checks_table[i];
		const struct cfg_node *section = cfg_get(cfg, node, ck->name);
		bool enabled = ck->enabled_by_default || section != NULL;
		int64_t interval = ck->default_interval_ms;
		void *ctx = NULL;

		if (cfg_expect_map(cfg, section) < 0)
			continue;
		cfg_get_bool(cfg, section, "enabled", &enabled);
		cfg_get_duration(cfg, section, "interval", &interval);
		if (interval < 1000) {
			cfg_error(cfg, cfg_get(cfg, section, "interval"),
				  "interval must be at least 1s");
			interval = ck->default_interval_ms;
		}
		/* Parse a disabled check too, so its typos are still found. */
		if (ck->configure(cfg, section, &conf->env, &ctx) < 0)
			continue;
		if (!enabled) {
			ck->free(ctx);
			continue;
		}
		conf->checks[conf->nchecks++] = (struct agent_check){
			.check = ck,
			.ctx = ctx,
			.interval_ms = interval,
		};
	}
}

/* The collector refuses a batch whose host it cannot file: say so here. */
static void check_host(struct cfg *cfg, const struct agent_config *conf)
{
	const struct cfg_node *at = cfg_get(cfg, cfg->root, "host");
	int r = name_check(conf->host, AGENT_HOST_MAX, false);

	if (at == NULL)
		at = cfg->root;
	if (r == -ENODATA)
		cfg_error(cfg, at, "host is empty and the host name is unknown");
	else if (r == -ENAMETOOLONG)
		cfg_error(cfg, at, "host name longer than %d characters",
			  AGENT_HOST_MAX);
	else if (r < 0)
		cfg_error(cfg, at, "host '%s' contains a space or control character",
			  conf->host);
}

/* The inventory checks see in their env (the heartbeat reports it). */
static void build_inventory(struct agent_config *conf)
{
	conf->inventory = xcalloc(conf->nchecks, sizeof(*conf->inventory));
	for (size_t i = 0; i < conf->nchecks; i++)
		conf->inventory[i] = (struct check_info){
			.name = conf->checks[i].check->name,
			.interval_ms = conf->checks[i].interval_ms,
		};
	conf->env.inventory = conf->inventory;
	conf->env.ninventory = conf->nchecks;
}

int agent_config_load(const char *main_path, const char *dropin_dir,
		      struct agent_config **ret_conf, struct cfg **ret_cfg)
{
	return agent_config_load_flags(main_path, dropin_dir, 0, ret_conf,
				       ret_cfg);
}

int agent_config_load_flags(const char *main_path, const char *dropin_dir,
			    unsigned flags, struct agent_config **ret_conf,
			    struct cfg **ret_cfg)
{
	static const char *const levels[] = { "error", "warning", "notice",
					      "info", "debug", NULL };
	static const char *const roles[] = { "decentral", "central", NULL };
	int role = CHECK_ROLE_DECENTRAL;
	struct agent_config *conf = xcalloc(1, sizeof(*conf));
	char hostname[HOST_NAME_MAX + 1] = "";
	struct cfg *cfg;
	int level = 3;
	int r;

	if ((flags & AGENT_CONFIG_MAY_BE_MISSING) &&
	    access(main_path, F_OK) < 0 && errno == ENOENT)
		r = cfg_load_string(main_path, "{}", &cfg);
	else
		r = cfg_load(main_path, dropin_dir, &cfg);
	if (r < 0) {
		free(conf);
		return r;
	}
	gethostname(hostname, sizeof(hostname) - 1);
	conf->host = xstrdup(hostname);
	conf->state_dir = xstrdup(AGENT_DEFAULT_STATE_DIR);
	conf->timeout_ms = 10000;
	conf->retry_primary_ms = 5 * 60 * 1000;
	conf->backoff_max_ms = 5 * 60 * 1000;
	conf->deliverer_linger_ms = AGENT_DEFAULT_LINGER_MS;
	conf->hold_repeats_ms = AGENT_DEFAULT_HOLD_REPEATS_MS;
	outbox_limits_default(&conf->outbox);

	cfg_get_string(cfg, cfg->root, "host", &conf->host);
	cfg_get_string(cfg, cfg->root, "state_dir", &conf->state_dir);
	cfg_get_enum(cfg, cfg->root, "log_level", levels, &level);
	conf->log_level = (enum log_level)(LOG_LEVEL_ERROR + level);
	parse_server(cfg, cfg_get(cfg, cfg->root, "server"), conf);
	parse_outbox(cfg, cfg_get(cfg, cfg->root, "outbox"), &conf->outbox);
	parse_deliverer(cfg, cfg_get(cfg, cfg->root, "deliverer"), conf);

	cfg_get_enum(cfg, cfg->root, "role", roles, &role);
	conf->env.role = (enum check_role)role;
	conf->env.host = conf->host;
	conf->env.state_dir = conf->state_dir;
	conf->env.report_every_ms = conf->hold_repeats_ms;
	conf->env.claims = claims_new();
	parse_checks(cfg, cfg_get(cfg, cfg->root, "checks"), conf);
	build_inventory(conf);

	if (conf->server_urls == NULL && !(flags & AGENT_CONFIG_NO_SERVER_URL))
		cfg_error(cfg, cfg->root, "server.url is required");
	check_host(cfg, conf);
	cfg_finish(cfg);
	*ret_conf = conf;
	*ret_cfg = cfg;
	return 0;
}
