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
#include "outbox.h"

#define AGENT_DEFAULT_CONFIG "/etc/tocsin/agent.yaml"
#define AGENT_DEFAULT_STATE_DIR "/var/lib/tocsin-agent"
#define AGENT_URLS_MAX 16  /* collector URLs in server.url */
/* outbox.batch_bytes at most: one batch and its parsed copy fit the unit's MemoryMax */
#define AGENT_BATCH_BYTES_MAX (64ULL << 20)
#define AGENT_HOST_MAX 253 /* as the collector allows */
#define AGENT_CUSTOMER_MAX 255 /* a customer name from the collector */
/* deliverer.linger: see docs/benchmarks.md for what it trades */
#define AGENT_DEFAULT_LINGER_MS 2000
/* server.hold_repeats; the heartbeat then promises this interval */
#define AGENT_DEFAULT_HOLD_REPEATS_MS (5 * 60 * 1000)

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
	/* server: the collectors in order, and how to reach them */
	char **server_urls;	 /* NULL-terminated, at least one when valid */
	char *token;		 /* server.token(_file); NULL: the credential file */
	int64_t timeout_ms;
	char *ca_file;
	char *pin_sha256;	 /* "sha256//...;sha256//..." for curl */
	char *client_cert;
	char *client_key;
	bool allow_plain_http;
	int64_t retry_primary_ms; /* failback to the first URL */
	int64_t backoff_max_ms;	  /* cap of the retry delay */
	int64_t rotate_every_ms;  /* 0: no scheduled credential rotation */
	int64_t hold_repeats_ms;  /* repeated samples may wait this long */
	/* deliverer: the program that speaks to the network (deliverer.h) */
	char *deliverer_path;	  /* NULL: next to tocsin-agent, or libexec */
	int64_t deliverer_linger_ms; /* an idle deliverer exits after this */
	struct outbox_limits outbox;
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

/* For subcommands that need less than the daemon (enroll). */
enum agent_config_flags {
	AGENT_CONFIG_NO_SERVER_URL = 1 << 0,  /* server.url may be absent */
	AGENT_CONFIG_MAY_BE_MISSING = 1 << 1, /* no main file: defaults */
};
int agent_config_load_flags(const char *main_path, const char *dropin_dir,
			    unsigned flags, struct agent_config **ret_conf,
			    struct cfg **ret_cfg);
void agent_config_free(struct agent_config *conf);

#endif
