/*
 * The collector's configuration.
 */
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/config.h"
#include "../common/util.h"
#include "credentials.h"
#include "helpdesk.h"
#include "inventory.h"
#include "lifecycle.h"
#include "liveness.h"
#include "retention.h"
#include "server.h"
#include "session.h"
#include "trapconf.h"
#include "tls.h"

void server_config_free(struct server_config *conf)
{
	if (conf == NULL)
		return;
	for (size_t i = 0; i < conf->ntokens; i++)
		free(conf->tokens[i].name);
	free(conf->tokens);
	free(conf->tokens_by_hash);
	free(conf->listen_host);
	free(conf->database);
	helpdesk_config_free(conf->helpdesk);
	inventory_free(conf->inventory);
	trapconf_free(conf->traps);
	lifecycle_config_free(conf->lifecycle);
	tls_config_free(conf->tls);
	free(conf);
}

void token_hash(const char *secret, uint8_t out[TOKEN_HASH_LEN])
{
	crypto_generichash(out, TOKEN_HASH_LEN, (const unsigned char *)secret,
			   strlen(secret), NULL, 0);
}

/* The first of tokens_by_hash not below hash. */
static size_t token_position(const struct server_config *conf,
			     const uint8_t *hash)
{
	size_t lo = 0, hi = conf->ntokens;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (memcmp(conf->tokens_by_hash[mid]->hash, hash, TOKEN_HASH_LEN) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/*
 * The search orders the presented secret's hash against the stored ones,
 * not in constant time, as credindex.c does for host credentials: that
 * order says nothing usable about a secret (BLAKE2b has no usable
 * preimages).  The equality itself is sodium_memcmp()'s.
 */
const struct server_token *token_find(const struct server_config *conf,
				      const char *secret)
{
	const struct server_token *found = NULL;
	uint8_t hash[TOKEN_HASH_LEN];
	size_t pos;

	token_hash(secret, hash);
	pos = token_position(conf, hash);
	if (pos < conf->ntokens &&
	    sodium_memcmp(hash, conf->tokens_by_hash[pos]->hash, TOKEN_HASH_LEN) == 0)
		found = conf->tokens_by_hash[pos];
	sodium_memzero(hash, sizeof(hash));
	return found;
}

/* By hash; equal hashes the later token first, as token_find() wants. */
static int token_hash_order(const void *pa, const void *pb)
{
	const struct server_token *a = *(const struct server_token *const *)pa;
	const struct server_token *b = *(const struct server_token *const *)pb;
	int c = memcmp(a->hash, b->hash, TOKEN_HASH_LEN);

	if (c != 0)
		return c;
	return a > b ? -1 : a < b;
}

static void index_tokens(struct server_config *conf)
{
	conf->tokens_by_hash = xcalloc(conf->ntokens ? conf->ntokens : 1,
				       sizeof(*conf->tokens_by_hash));
	for (size_t i = 0; i < conf->ntokens; i++)
		conf->tokens_by_hash[i] = &conf->tokens[i];
	if (conf->ntokens > 0)
		qsort(conf->tokens_by_hash, conf->ntokens,
		      sizeof(*conf->tokens_by_hash), token_hash_order);
}

int parse_listen(const char *text, char **ret_host, uint16_t *ret_port)
{
	const char *colon;
	char *host = NULL;
	int64_t port;

	if (text[0] == '[') {
		const char *end = strchr(text, ']');

		if (end == NULL || end[1] != ':')
			return -EINVAL;
		host = xasprintf("%.*s", (int)(end - text - 1), text + 1);
		colon = end + 1;
	} else {
		colon = strrchr(text, ':');
		if (colon == NULL)
			return -EINVAL;
		if (colon != text)
			host = xasprintf("%.*s", (int)(colon - text), text);
	}
	if (parse_int64(colon + 1, &port) < 0 || port < 0 || port > 65535) {
		free(host);
		return -EINVAL;
	}
	if (host != NULL && (strcmp(host, "*") == 0 || host[0] == '\0')) {
		free(host);
		host = NULL;
	}
	*ret_host = host;
	*ret_port = (uint16_t)port;
	return 0;
}

static const struct {
	const char *name;
	unsigned perms;
} roles[] = {
	{ "agent", PERM_INGEST },
	{ "technician", PERM_READ | PERM_WRITE },
	{ "viewer", PERM_READ },
	{ "admin", PERM_INGEST | PERM_READ | PERM_WRITE | PERM_ADMIN },
};

static void parse_token(struct cfg *cfg, const struct cfg_node *node,
			struct server_config *conf)
{
	static const char *const role_names[] = { "agent", "technician",
						  "viewer", "admin", NULL };
	struct server_token *t = &conf->tokens[conf->ntokens];
	char *secret = NULL;
	int role = -1;

	if (node->type != CFG_MAP) {
		cfg_error(cfg, node, "expected a mapping with name, token and role");
		return;
	}
	cfg_get_string(cfg, node, "name", &t->name);
	cfg_get_string(cfg, node, "token", &secret);
	cfg_get_enum(cfg, node, "role", role_names, &role);
	if (t->name == NULL || secret == NULL || role < 0) {
		cfg_error(cfg, node, "a token needs name, token and role");
		free(t->name);
		t->name = NULL;
		free(secret);
		return;
	}
	if (strlen(secret) < 16)
		cfg_error(cfg, cfg_get(cfg, node, "token"),
			  "token secrets must be at least 16 characters");
	token_hash(secret, t->hash);
	sodium_memzero(secret, strlen(secret));
	free(secret);
	t->perms = roles[role].perms;
	conf->ntokens++;
}

static void parse_auth(struct cfg *cfg, const struct cfg_node *node,
		       struct server_config *conf)
{
	const struct cfg_node *tokens;

	if (cfg_expect_map(cfg, node) < 0)
		return;
	tokens = cfg_get(cfg, node, "tokens");
	if (tokens == NULL || tokens->type == CFG_NULL)
		return;
	if (tokens->type != CFG_SEQ) {
		cfg_error(cfg, tokens, "expected a list of tokens");
		return;
	}
	conf->tokens = xcalloc(tokens->nitems, sizeof(*conf->tokens));
	for (size_t i = 0; i < tokens->nitems; i++)
		parse_token(cfg, tokens->items[i], conf);
}

static void parse_http(struct cfg *cfg, const struct cfg_node *node,
		       struct server_config *conf)
{
	uint64_t body = conf->max_body;
	int64_t v;

	if (cfg_expect_map(cfg, node) < 0)
		return;
	if (cfg_get_size(cfg, node, "max_body", &body) > 0) {
		if (body < 1024 || body > 256u * 1024 * 1024)
			cfg_error(cfg, cfg_get(cfg, node, "max_body"),
				  "max_body must be between 1KiB and 256MiB");
		else
			conf->max_body = (size_t)body;
	}
	if (cfg_get_int(cfg, node, "max_batch", 1, 100000, &v) > 0)
		conf->max_batch = (size_t)v;
	if (cfg_get_int(cfg, node, "threads", 1, 256, &v) > 0)
		conf->threads = (unsigned)v;
	if (cfg_get_int(cfg, node, "max_connections", 1, 100000, &v) > 0)
		conf->max_connections = (unsigned)v;
	cfg_get_duration(cfg, node, "connection_timeout",
			 &conf->connection_timeout_ms);
}

/* ingest: limits on what an agent's batches may make the collector keep. */
static void parse_ingest(struct cfg *cfg, const struct cfg_node *node,
			 struct server_config *conf)
{
	int64_t v;

	if (cfg_expect_map(cfg, node) < 0)
		return;
	if (cfg_get_int(cfg, node, "max_keys_per_host", 0, 100000000, &v) > 0)
		conf->lifecycle->max_keys_per_host = (size_t)v;
}

/* writer: how many jobs may wait, and how many share a commit. */
static void parse_writer(struct cfg *cfg, const struct cfg_node *node,
			 struct server_config *conf)
{
	uint64_t bytes;
	int64_t v;

	if (cfg_expect_map(cfg, node) < 0)
		return;
	if (cfg_get_int(cfg, node, "max_queue", 1, 1000000, &v) > 0)
		conf->writer_queue = (size_t)v;
	if (cfg_get_int(cfg, node, "max_group", 1, 100000, &v) > 0)
		conf->writer_group = (size_t)v;
	if (cfg_get_size(cfg, node, "max_queue_bytes", &bytes) > 0) {
		if (bytes < 64 * 1024 || bytes > (uint64_t)64 * 1024 * 1024 * 1024)
			cfg_error(cfg, cfg_get(cfg, node, "max_queue_bytes"),
				  "max_queue_bytes must be between 64KiB and 64GiB");
		else
			conf->writer_queue_bytes = (size_t)bytes;
	}
}

int server_config_load(const char *main_path, const char *dropin_dir,
		       struct server_config **ret_conf, struct cfg **ret_cfg)
{
	static const char *const levels[] = { "error", "warning", "notice",
					      "info", "debug", NULL };
	struct server_config *conf = xcalloc(1, sizeof(*conf));
	char *listen = NULL;
	struct cfg *cfg;
	int level = 3, r;

	r = cfg_load(main_path, dropin_dir, &cfg);
	if (r < 0) {
		free(conf);
		return r;
	}
	conf->listen_port = 8080;
	conf->database = xstrdup("/var/lib/tocsin/tocsin.db");
	conf->max_body = 1024 * 1024;
	conf->max_batch = 1000;
	conf->threads = 4;
	conf->max_connections = 1024;
	conf->connection_timeout_ms = 30000;
	conf->writer_queue = 4096;
	conf->writer_group = 256;
	conf->writer_queue_bytes = 64 * 1024 * 1024;
	liveness_config_defaults(&conf->liveness);
	retention_config_defaults(&conf->retention);
	credentials_config_defaults(&conf->enrollment);
	console_config_defaults(&conf->console);

	if (cfg_get_string(cfg, cfg->root, "listen", &listen) > 0 &&
	    parse_listen(listen, &conf->listen_host, &conf->listen_port) < 0)
		cfg_error(cfg, cfg_get(cfg, cfg->root, "listen"),
			  "'%s' is not host:port (use [addr]:port for IPv6)",
			  listen);
	free(listen);
	cfg_get_string(cfg, cfg->root, "database", &conf->database);
	cfg_get_enum(cfg, cfg->root, "log_level", levels, &level);
	conf->log_level = (enum log_level)(LOG_LEVEL_ERROR + level);
	parse_http(cfg, cfg_get(cfg, cfg->root, "http"), conf);
	parse_auth(cfg, cfg_get(cfg, cfg->root, "auth"), conf);
	index_tokens(conf);
	inventory_parse(cfg, cfg->root, &conf->inventory);
	trapconf_parse(cfg, cfg->root, &conf->traps);
	lifecycle_config_parse(cfg, cfg->root, conf->inventory, &conf->lifecycle);
	helpdesk_config_parse(cfg, cfg->root, conf->inventory, &conf->helpdesk);
	parse_writer(cfg, cfg_get(cfg, cfg->root, "writer"), conf);
	parse_ingest(cfg, cfg_get(cfg, cfg->root, "ingest"), conf);
	tls_parse(cfg, cfg_get(cfg, cfg->root, "tls"), &conf->tls);
	cfg_get_bool(cfg, cfg->root, "allow_plain_http",
		     &conf->allow_plain_http);
	if (conf->tls == NULL && !conf->allow_plain_http)
		cfg_error(cfg, cfg->root,
			  "no tls: section: configure tls.cert and tls.key, or set allow_plain_http: true to serve plain HTTP");
	liveness_parse(cfg, cfg_get(cfg, cfg->root, "liveness"), &conf->liveness);
	retention_parse(cfg, cfg_get(cfg, cfg->root, "retention"), &conf->retention);
	credentials_config_parse(cfg, cfg_get(cfg, cfg->root, "enrollment"),
				 &conf->enrollment);
	console_config_parse(cfg, cfg_get(cfg, cfg->root, "console"),
			     &conf->console);
	if (conf->ntokens == 0)
		cfg_error(cfg, cfg->root,
			  "auth.tokens is empty: nobody could use the server");
	cfg_finish(cfg);
	*ret_conf = conf;
	*ret_cfg = cfg;
	return 0;
}
