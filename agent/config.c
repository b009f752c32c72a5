/*
 * The agent's configuration: the keys the agent owns itself, and one
 * section per check, handed to that check's configure hook.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/config.h"
#include "../common/util.h"
#include "agent.h"

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
	free(conf->inventory);
	free(conf->host);
	free(conf->state_dir);
	free(conf->server_url);
	free(conf->token);
	free(conf);
}

/* Read a secret from a file: first line, trailing whitespace removed. */
static int read_secret_file(const char *path, char **ret)
{
	char buf[1024];
	FILE *fp = fopen(path, "re");
	size_t n;

	if (fp == NULL)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	fclose(fp);
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '\t'))
		buf[--n] = '\0';
	if (buf[0] == '\0')
		return -ENODATA;
	*ret = xstrdup(buf);
	return 0;
}

static void parse_server(struct cfg *cfg, const struct cfg_node *node,
			 struct agent_config *conf)
{
	char *token_file = NULL;

	if (cfg_expect_map(cfg, node) < 0)
		return;
	cfg_get_string(cfg, node, "url", &conf->server_url);
	cfg_get_string(cfg, node, "token", &conf->token);
	cfg_get_duration(cfg, node, "timeout", &conf->timeout_ms);
	if (cfg_get_string(cfg, node, "token_file", &token_file) > 0) {
		int r = read_secret_file(token_file, &conf->token);
		if (r < 0)
			cfg_error(cfg, cfg_get(cfg, node, "token_file"),
				  "cannot read token from %s: %s", token_file,
				  strerror(-r));
	}
	free(token_file);
	if (conf->server_url != NULL &&
	    strncmp(conf->server_url, "http://", 7) != 0 &&
	    strncmp(conf->server_url, "https://", 8) != 0)
		cfg_error(cfg, cfg_get(cfg, node, "url"),
			  "'%s' is not an http:// or https:// URL",
			  conf->server_url);
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
	static const char *const levels[] = { "error", "warning", "notice",
					      "info", "debug", NULL };
	static const char *const roles[] = { "decentral", "central", NULL };
	int role = CHECK_ROLE_DECENTRAL;
	struct agent_config *conf = xcalloc(1, sizeof(*conf));
	char hostname[HOST_NAME_MAX + 1] = "";
	struct cfg *cfg;
	int level = 3;
	int r;

	r = cfg_load(main_path, dropin_dir, &cfg);
	if (r < 0) {
		free(conf);
		return r;
	}
	gethostname(hostname, sizeof(hostname) - 1);
	conf->host = xstrdup(hostname);
	conf->state_dir = xstrdup(AGENT_DEFAULT_STATE_DIR);
	conf->timeout_ms = 10000;

	cfg_get_string(cfg, cfg->root, "host", &conf->host);
	cfg_get_string(cfg, cfg->root, "state_dir", &conf->state_dir);
	cfg_get_enum(cfg, cfg->root, "log_level", levels, &level);
	conf->log_level = (enum log_level)(LOG_LEVEL_ERROR + level);
	parse_server(cfg, cfg_get(cfg, cfg->root, "server"), conf);

	cfg_get_enum(cfg, cfg->root, "role", roles, &role);
	conf->env.role = (enum check_role)role;
	conf->env.host = conf->host;
	conf->env.state_dir = conf->state_dir;
	parse_checks(cfg, cfg_get(cfg, cfg->root, "checks"), conf);
	build_inventory(conf);

	if (conf->server_url == NULL)
		cfg_error(cfg, cfg->root, "server.url is required");
	if (conf->host[0] == '\0')
		cfg_error(cfg, cfg->root, "host is empty and the host name is unknown");
	cfg_finish(cfg);
	*ret_conf = conf;
	*ret_cfg = cfg;
	return 0;
}
