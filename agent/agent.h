/*
 * tocsin-agent: configuration and the pieces main.c wires together.
 */
#ifndef TOCSIN_AGENT_H
#define TOCSIN_AGENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../checks/check.h"
#include "../common/log.h"

#define AGENT_DEFAULT_CONFIG "/etc/tocsin/agent.yaml"
#define AGENT_DEFAULT_STATE_DIR "/var/lib/tocsin-agent"

struct agent_check {
	const struct check *check;
	void *ctx;
	int64_t interval_ms;
	int64_t next_due_ms; /* monotonic */
};

struct agent_config {
	char *host;
	char *state_dir;
	enum log_level log_level;
	char *server_url;
	char *token;
	int64_t timeout_ms;
	struct agent_check *checks;
	size_t nchecks;
	struct check_info *inventory; /* env.inventory: one per checks[] */
	struct check_env env;
};

struct cfg;

/*
 * Load main_path and its drop-ins into a new configuration.  On return
 * *ret_cfg holds every error found (the caller prints them); the config
 * is usable only when cfg_finish() reported none.
 */
int agent_config_load(const char *main_path, const char *dropin_dir,
		      struct agent_config **ret_conf, struct cfg **ret_cfg);
void agent_config_free(struct agent_config *conf);

#endif
