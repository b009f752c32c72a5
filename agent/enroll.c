/*
 * The agent's subcommands that speak to the collector once: enroll and
 * rotate-credential.  Like the daemon they leave the network to the
 * deliverer (agent/deliverer.h): this side reads the configuration and
 * the arguments, starts a deliverer, asks it once, prints the answer and
 * waits for it to exit.
 */
#include "enroll.h"

#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/config.h"
#include "../common/util.h"
#include "agent.h"
#include "credential.h"
#include "deliverer.h"

/* Load the configuration for a subcommand; prints its errors.  2 on error. */
static int load_config(const char *path, const char *dropin, unsigned flags,
		       struct agent_config **ret)
{
	char *dir = dropin ? xstrdup(dropin) : cfg_dropin_dir_for(path);
	struct cfg *cfg;
	int r;

	r = agent_config_load_flags(path, dir, flags, ret, &cfg);
	free(dir);
	if (r < 0) {
		fprintf(stderr, "tocsin-agent: cannot load %s: %s\n", path,
			strerror(-r));
		return 2;
	}
	if (cfg_print_errors(cfg) > 0) {
		fprintf(stderr, "%s: %zu configuration error%s\n", path,
			cfg->nerrors, cfg->nerrors == 1 ? "" : "s");
		cfg_free(cfg);
		agent_config_free(*ret);
		*ret = NULL;
		return 2;
	}
	cfg_free(cfg);
	return 0;
}

static void enroll_usage(FILE *fp)
{
	fprintf(fp,
		"usage: tocsin-agent enroll --server URL (--token TOKEN | --token-file FILE)\n"
		"                           [--host NAME] [--config FILE] [--conf-dir DIR]\n"
		"\n"
		"Trade a customer's enrollment token for this host's own credential,\n"
		"stored in state_dir/%s (mode 0600).  TLS settings (server.ca_file,\n"
		"server.pin_sha256, ...) come from the configuration, which may be absent.\n",
		CREDENTIAL_FILE);
}

struct enroll_args {
	const char *config;
	const char *dropin;
	const char *server;
	char *token;
	const char *host;
	bool config_given;
};

/* 0, -1 after --help, or the exit status for bad usage. */
static int enroll_parse(int argc, char **argv, struct enroll_args *a)
{
	static const struct option opts[] = {
		{ "server", required_argument, NULL, 's' },
		{ "token", required_argument, NULL, 't' },
		{ "token-file", required_argument, NULL, 'T' },
		{ "host", required_argument, NULL, 'H' },
		{ "config", required_argument, NULL, 'c' },
		{ "conf-dir", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int c, r;

	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 's': a->server = optarg; break;
		case 'H': a->host = optarg; break;
		case 'c': a->config = optarg; a->config_given = true; break;
		case 'd': a->dropin = optarg; break;
		case 't':
			free(a->token);
			a->token = xstrdup(optarg);
			break;
		case 'T':
			free(a->token);
			a->token = NULL;
			r = credential_read(optarg, &a->token);
			if (r < 0) {
				fprintf(stderr, "tocsin-agent: cannot read the enrollment token from %s: %s\n",
					optarg, strerror(-r));
				return 2;
			}
			break;
		case 'h': enroll_usage(stdout); return -1;
		default: enroll_usage(stderr); return 2;
		}
	}
	if (optind != argc || a->server == NULL || a->token == NULL) {
		enroll_usage(stderr);
		return 2;
	}
	return 0;
}

static bool url_listed(char *const *urls, const char *url)
{
	for (size_t i = 0; urls && urls[i]; i++)
		if (strcmp(urls[i], url) == 0)
			return true;
	return false;
}

/* Say what to do next so the daemon picks the credential up. */
static void enroll_hints(const struct agent_config *conf,
			 const struct enroll_args *a)
{
	if (!url_listed(conf->server_urls, a->server))
		printf("next: set server.url: %s in %s\n", a->server, a->config);
	if (conf->token != NULL)
		printf("note: server.token or server.token_file in %s takes precedence over the credential: remove it\n",
		       a->config);
}

/*
 * Start a deliverer for urls (NULL: the configuration's) with token (NULL:
 * the credential file at cred), ask it op once and wait for the answer
 * and its exit.  0 and *ret_reply, or -errno with err saying why.
 */
static int ask_deliverer(const struct agent_config *conf, char *const *urls,
			 const char *token, const char *cred, const char *op,
			 const json_t *extra, json_t **ret_reply, char *err,
			 size_t errlen)
{
	struct deliverer *dv = NULL;
	json_t *hello;
	char *path = NULL, how[128], why[512] = "";
	const char *what = ""; /* what kind of failure why is */
	struct deliverer_exit e;
	int64_t limit = DELIVERER_SLACK_MS;
	int r;

	/* each URL may be tried for server.timeout */
	for (char *const *u = urls ? urls : conf->server_urls; u && *u; u++)
		limit += conf->timeout_ms;

	r = deliverer_locate(conf->deliverer_path, &path, err, errlen);
	if (r < 0)
		return r;
	hello = deliverer_hello(conf, urls, token, cred, 0, 0);
	r = deliverer_spawn(path, hello, &dv);
	json_decref(hello);
	if (r < 0) {
		snprintf(err, errlen, "cannot start the deliverer %s: %s", path,
			 strerror(-r));
		free(path);
		return r;
	}
	free(path);
	r = deliverer_request(dv, op, extra, NULL, 0);
	if (r < 0) {
		snprintf(why, sizeof(why), "cannot hand it the request: %s",
			 strerror(-r));
	} else {
		r = deliverer_wait(dv, time_mono_ms() + limit, NULL, NULL, ret_reply,
				   why, sizeof(why));
		if (deliverer_babbled(r))
			what = "the deliverer sent what is not an answer: ";
	}
	if (deliverer_ended(r))
		what = why[0] != '\0' ? "the deliverer ended without an answer: "
				      : "the deliverer ended without an answer";
	deliverer_end(dv, r < 0, &e);
	if (r < 0) {
		deliverer_describe_exit(&e, how, sizeof(how));
		snprintf(err, errlen, "%s%s (the deliverer, pid %d, %s)", what,
			 why, (int)e.pid, how);
	}
	return r;
}

/* What the deliverer said about an enrollment: 0 when enrolled. */
static int enroll_report(const json_t *reply, const struct agent_config *conf,
			 const struct enroll_args *a)
{
	static const char *const results[] = { "enrolled", "unstored", "failed",
					       NULL };
	char err[1024], host[AGENT_HOST_MAX + 1], customer[AGENT_CUSTOMER_MAX + 1], *path;
	const char *result;
	json_int_t id = json_integer_value(json_object_get(reply, "credential_id"));

	if (deliverer_result(reply, results, &result, err, sizeof(err)) < 0 ||
	    deliverer_reply_text(reply, "host", host, sizeof(host)) < 0 ||
	    deliverer_reply_text(reply, "customer", customer, sizeof(customer)) < 0) {
		fprintf(stderr, "tocsin-agent: enrollment failed: the deliverer's answer is not one\n");
		return 1;
	}
	if (deliverer_reply_text(reply, "error", err, sizeof(err)) < 0)
		strlcpy_safe(err, "no reason given", sizeof(err));
	if (strcmp(result, "failed") == 0) {
		fprintf(stderr, "tocsin-agent: enrollment failed: %s\n", err);
		return 1;
	}
	if (strcmp(result, "unstored") == 0) {
		fprintf(stderr, "tocsin-agent: %s\n", err);
		return 1;
	}
	path = credential_path(conf->state_dir);
	printf("enrolled host %s for customer %s: credential %lld stored in %s\n",
	       host, customer[0] ? customer : "-", (long long)id, path);
	free(path);
	enroll_hints(conf, a);
	return 0;
}

int enroll_main(int argc, char **argv)
{
	struct enroll_args a = { .config = AGENT_DEFAULT_CONFIG };
	struct agent_config *conf = NULL;
	char *urls[2] = { NULL, NULL }, err[1024];
	json_t *extra = NULL, *reply = NULL;
	int rc;

	rc = enroll_parse(argc, argv, &a);
	if (rc != 0) {
		rc = rc < 0 ? 0 : rc;
		goto out;
	}
	rc = load_config(a.config, a.dropin,
			 AGENT_CONFIG_NO_SERVER_URL |
				 (a.config_given ? 0 : AGENT_CONFIG_MAY_BE_MISSING),
			 &conf);
	if (rc != 0)
		goto out;
	rc = 1;
	if (strncmp(a.server, "https://", 8) != 0 &&
	    !(strncmp(a.server, "http://", 7) == 0 && conf->allow_plain_http)) {
		fprintf(stderr, "tocsin-agent: --server %s: use an https:// URL (http:// only with server.allow_plain_http: true in the configuration)\n",
			a.server);
		goto out;
	}
	urls[0] = xstrdup(a.server);
	extra = json_pack("{s:s, s:s}", "host", a.host ? a.host : conf->host,
			  "state_dir", conf->state_dir);
	if (ask_deliverer(conf, urls, a.token, NULL, "enroll", extra, &reply, err,
			  sizeof(err)) < 0) {
		fprintf(stderr, "tocsin-agent: enrollment failed: %s\n", err);
		goto out;
	}
	rc = enroll_report(reply, conf, &a);
out:
	json_decref(extra);
	json_decref(reply);
	free(urls[0]);
	agent_config_free(conf);
	if (a.token)
		explicit_bzero(a.token, strlen(a.token));
	free(a.token);
	return rc;
}

static void rotate_usage(FILE *fp)
{
	fprintf(fp,
		"usage: tocsin-agent rotate-credential [--config FILE] [--conf-dir DIR]\n"
		"\n"
		"Replace this host's credential (state_dir/%s) with a new one.  The\n"
		"old one keeps working until the new one is first used, or for 1 h.\n",
		CREDENTIAL_FILE);
}

/* What the deliverer said about a rotation: 0 when rotated and stored. */
static int rotate_report(const json_t *reply, const char *path)
{
	static const char *const results[] = { "rotated", "unstored", "failed",
					       NULL };
	json_int_t id = json_integer_value(json_object_get(reply, "credential_id"));
	const char *result;
	char err[1024];

	if (deliverer_result(reply, results, &result, err, sizeof(err)) < 0) {
		fprintf(stderr, "tocsin-agent: rotation failed: %s\n", err);
		return 1;
	}
	if (deliverer_reply_text(reply, "error", err, sizeof(err)) < 0)
		strlcpy_safe(err, "no reason given", sizeof(err));
	if (strcmp(result, "failed") == 0) {
		fprintf(stderr, "tocsin-agent: rotation failed: %s\n", err);
		return 1;
	}
	if (strcmp(result, "unstored") == 0) {
		fprintf(stderr, "tocsin-agent: cannot store the new credential %lld in %s: %s; the old one keeps working for 1 h\n",
			(long long)id, path, err);
		return 1;
	}
	printf("credential %lld stored in %s; the old one stops working when the new one is first used\n",
	       (long long)id, path);
	return 0;
}

int enroll_rotate_main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "conf-dir", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = AGENT_DEFAULT_CONFIG, *dropin = NULL;
	struct agent_config *conf = NULL;
	char *path = NULL, *secret = NULL, err[1024];
	json_t *reply = NULL;
	int c, r, rc = 1;

	while ((c = getopt_long(argc, argv, "c:h", opts, NULL)) != -1) {
		switch (c) {
		case 'c': config = optarg; break;
		case 'd': dropin = optarg; break;
		case 'h': rotate_usage(stdout); return 0;
		default: rotate_usage(stderr); return 2;
		}
	}
	if (optind != argc) {
		rotate_usage(stderr);
		return 2;
	}
	if (load_config(config, dropin, 0, &conf) != 0)
		return 2;
	if (conf->token != NULL) {
		fprintf(stderr, "tocsin-agent: this host authenticates with server.token from %s; only an enrolled credential can be rotated\n",
			config);
		goto out;
	}
	path = credential_path(conf->state_dir);
	r = credential_read(path, &secret);
	if (r < 0) {
		fprintf(stderr, "tocsin-agent: cannot read the credential %s: %s (enroll first: tocsin-agent enroll --server URL --token TOKEN)\n",
			path, strerror(-r));
		goto out;
	}
	if (ask_deliverer(conf, NULL, NULL, path, "rotate", NULL, &reply, err,
			  sizeof(err)) < 0) {
		fprintf(stderr, "tocsin-agent: rotation failed: %s\n", err);
		goto out;
	}
	rc = rotate_report(reply, path);
out:
	if (secret)
		explicit_bzero(secret, strlen(secret));
	free(secret);
	free(path);
	json_decref(reply);
	agent_config_free(conf);
	return rc;
}
