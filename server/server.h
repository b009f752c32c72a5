/*
 * tocsin-server: configuration and access control.
 */
#ifndef TOCSIN_SERVER_H
#define TOCSIN_SERVER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/log.h"

#define SERVER_DEFAULT_CONFIG "/etc/tocsin/server.yaml"

/* What a credential may do; a role is a set of these. */
enum permission {
	PERM_INGEST = 1 << 0, /* post events */
	PERM_READ = 1 << 1,   /* read tickets */
	PERM_WRITE = 1 << 2,  /* work tickets */
	PERM_ADMIN = 1 << 3,  /* manage credentials and settings */
	PERM_ENROLL = 1 << 4, /* trade an enrollment token for a host credential */
};

#define TOKEN_HASH_LEN 32

struct server_token {
	char *name;
	uint8_t hash[TOKEN_HASH_LEN];
	unsigned perms;
};

struct tls_config;

/* Silence detection (liveness.c): the liveness: section. */
struct liveness_config {
	int64_t missed_heartbeats;    /* intervals a host may miss */
	int64_t default_interval_ms;  /* for heartbeats that do not say theirs */
	int64_t check_every_ms;	      /* how often the timer looks */
	int64_t startup_grace_ms;     /* extra time after a start, 0: none */
};

/* Event and ticket retention (retention.c): the retention: section. */
struct retention_config {
	int64_t events_ms;	 /* raw events older than this go; 0: never */
	int64_t tickets_ms;	 /* closed tickets unchanged this long go; 0: never */
	int64_t event_ids_ms;	 /* kept at least this long: agents' resend window */
	int64_t keep_per_ticket; /* an open ticket's latest events stay */
	int64_t prune_every_ms;	 /* how often to look when there is no backlog */
	int64_t chunk;		 /* rows per writer job at most */
};

/* Enrollment and credentials (credentials.c): the enrollment: section. */
struct enrollment_config {
	int64_t live_window_ms;	    /* re-enrolling a host in use within this
				     * needs an approval; 0: never */
	int64_t rotate_interval_ms; /* at most one rotation per host this often */
};

/* The web console's sessions and logins (session.c): the console: section. */
struct console_config {
	int64_t idle_ms;	 /* a session ends this long after its last request */
	int64_t absolute_ms;	 /* ... and this long after the login, whatever */
	int64_t max_sessions;	 /* the idlest one goes beyond this */
	int64_t login_failures;	 /* failed logins per account, and per address, */
	int64_t login_window_ms; /* ... within this window, before 429 */
};

struct server_config {
	char *listen_host; /* NULL: all addresses */
	uint16_t listen_port;
	char *database;
	enum log_level log_level;
	size_t max_body;
	size_t max_batch;
	unsigned threads;
	unsigned max_connections;
	int64_t connection_timeout_ms;
	struct server_token *tokens;
	size_t ntokens;
	/* The tokens by hash (for token_find()); of equal ones the last first. */
	const struct server_token **tokens_by_hash;
	struct inventory *inventory;
	struct trap_config *traps; /* NULL: no traps: section, no listener */
	struct lifecycle_config *lifecycle; /* lifecycle:, topology:, silences: */
	struct tls_config *tls;	 /* NULL: plain HTTP, only with allow_plain_http */
	bool allow_plain_http;
	struct liveness_config liveness;
	size_t writer_queue;	 /* jobs waiting for the writer */
	size_t writer_group;	 /* jobs sharing one commit */
	struct helpdesk_config *helpdesk;
	struct retention_config retention;
	struct enrollment_config enrollment;
	size_t writer_queue_bytes; /* request bytes of queued ingest batches */
	struct console_config console; /* sessions and logins (session.h) */
};

struct cfg;

/* Same contract as agent_config_load(): errors are left in *ret_cfg. */
int server_config_load(const char *main_path, const char *dropin_dir,
		       struct server_config **ret_conf, struct cfg **ret_cfg);
void server_config_free(struct server_config *conf);

/* Hash a presented secret the way tokens are stored. */
void token_hash(const char *secret, uint8_t out[TOKEN_HASH_LEN]);
/*
 * The configured token matching secret (the last configured when several
 * share it), or NULL.  O(log tokens): every request, agents' with host
 * credentials too, looks here first, so a scan of an MSP's thousands of
 * tokens taxed them all.
 */
const struct server_token *token_find(const struct server_config *conf,
				      const char *secret);

/* "127.0.0.1:8080", "[::1]:0", ":8080" -> host (NULL = any) and port. */
int parse_listen(const char *text, char **ret_host, uint16_t *ret_port);

#endif
