#include "credential.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/config.h"
#include "../common/util.h"
#include "agent.h"
#include "transport.h"

/* A collector's secret goes into an HTTP header and a file's first line. */
#define SECRET_MIN 16

void credential_grant_clear(struct credential_grant *g)
{
	if (g == NULL)
		return;
	free(g->host);
	free(g->customer);
	if (g->secret)
		explicit_bzero(g->secret, strlen(g->secret));
	free(g->secret);
	*g = (struct credential_grant){ 0 };
}

char *credential_path(const char *state_dir)
{
	return xasprintf("%s/%s", state_dir, CREDENTIAL_FILE);
}

static bool secret_chars_ok(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

int credential_read(const char *path, char **ret_secret)
{
	char buf[CREDENTIAL_MAX + 2];
	FILE *fp = fopen(path, "re");
	size_t n, start = 0;
	int r = 0;

	if (fp == NULL)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	if (ferror(fp))
		r = -EIO;
	fclose(fp);
	if (r < 0)
		return r;
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '\t'))
		buf[--n] = '\0';
	while (buf[start] == ' ' || buf[start] == '\t')
		start++;
	if (buf[start] == '\0')
		r = -ENODATA;
	else if (n - start > CREDENTIAL_MAX)
		r = -EFBIG;
	else if (!secret_chars_ok(buf + start))
		r = -EINVAL;
	else
		*ret_secret = xstrdup(buf + start);
	explicit_bzero(buf, sizeof(buf));
	return r;
}

int credential_store(const char *path, const struct credential_grant *g,
		     const char *server_url)
{
	char at[TIME_RFC3339_LEN], *text, *dir, *slash;
	struct stat st;
	int r;

	time_format_rfc3339(time_now_ms(), at);
	if (g->host != NULL)
		text = xasprintf("%s\n# tocsin-agent credential %lld of host %s (customer %s) from %s, %s\n",
				 g->secret, (long long)g->id, g->host,
				 g->customer ? g->customer : "-", server_url, at);
	else
		text = xasprintf("%s\n# tocsin-agent credential %lld from %s, rotated %s\n",
				 g->secret, (long long)g->id, server_url, at);
	r = write_file_atomic(path, text, 0600);
	explicit_bzero(text, strlen(text));
	free(text);
	if (r < 0 || geteuid() != 0)
		return r;
	/* root enrolled for a daemon that runs as its own user */
	dir = xstrdup(path);
	slash = strrchr(dir, '/');
	if (slash == NULL)
		strlcpy_safe(dir, ".", strlen(dir) + 1);
	else
		slash[slash == dir ? 1 : 0] = '\0';
	if (stat(dir, &st) == 0 &&
	    (st.st_uid != 0 || st.st_gid != 0) &&
	    chown(path, st.st_uid, st.st_gid) < 0)
		r = -errno;
	free(dir);
	return r;
}

/* Take the grant from the collector's answer; false when it is not one. */
static bool parse_grant(const char *body, bool enrolled,
			struct credential_grant *ret, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *doc = body ? json_loads(body, 0, &jerr) : NULL;
	const char *secret = NULL, *host = NULL, *customer = NULL;
	json_int_t id = 0;
	bool ok = false;

	if (doc == NULL) {
		snprintf(err, errlen, "the collector's answer is not JSON");
		return false;
	}
	if (json_unpack(doc, "{s:s, s:I}", "credential", &secret,
			"credential_id", &id) < 0) {
		snprintf(err, errlen,
			 "the collector's answer lacks credential or credential_id");
	} else if (enrolled &&
		   json_unpack(doc, "{s:s, s?s}", "host", &host, "customer",
			       &customer) < 0) {
		snprintf(err, errlen, "the collector's answer lacks the host");
	} else if (strlen(secret) < SECRET_MIN ||
		   strlen(secret) > CREDENTIAL_MAX || !secret_chars_ok(secret)) {
		snprintf(err, errlen,
			 "the collector sent a credential that is not %d to %d printable characters",
			 SECRET_MIN, CREDENTIAL_MAX);
	} else {
		*ret = (struct credential_grant){
			.host = host ? xstrdup(host) : NULL,
			.customer = customer ? xstrdup(customer) : NULL,
			.id = id,
			.secret = xstrdup(secret),
		};
		ok = true;
	}
	json_decref(doc);
	return ok;
}

/* A refusal in words: the collector's message, or what the status means. */
static void refusal(const struct transport_reply *reply, const char *what,
		    char *err, size_t errlen)
{
	if (reply->status == 404 || reply->status == 405)
		snprintf(err, errlen,
			 "the collector at %s does not offer %s (HTTP %ld): it predates per-host credentials; configure server.token instead",
			 reply->url, what, reply->status);
	else if (reply->status != 0)
		snprintf(err, errlen, "the collector at %s refused %s: HTTP %ld%s%s",
			 reply->url, what, reply->status,
			 reply->message[0] ? ": " : "", reply->message);
	else
		snprintf(err, errlen, "%s", reply->error);
}

/* POST body to path and take the grant from the answer. */
static int request_grant(struct transport *t, const char *path,
			 const char *body, const char *what, bool enrolled,
			 struct credential_grant *ret, char *err, size_t errlen)
{
	struct transport_reply reply;
	int r = transport_post(t, path, body, strlen(body), &reply);

	if (r < 0) {
		refusal(&reply, what, err, errlen);
		return r;
	}
	if (!parse_grant(reply.body, enrolled, ret, err, errlen))
		return -EBADMSG;
	return 0;
}

int credential_enroll(struct transport *t, const char *host,
		      struct credential_grant *ret, char *err, size_t errlen)
{
	json_t *req = json_pack("{s:s}", "host", host);
	char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	int r;

	json_decref(req);
	if (body == NULL)
		return -ENOMEM;
	r = request_grant(t, "/api/v1/enroll", body, "the enrollment", true,
			  ret, err, errlen);
	free(body);
	return r;
}

int credential_rotate(struct transport *t, struct credential_grant *ret,
		      char *err, size_t errlen)
{
	return request_grant(t, "/api/v1/credentials/rotate", "{}",
			     "the rotation", false, ret, err, errlen);
}

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

int credential_main_enroll(int argc, char **argv)
{
	struct enroll_args a = { .config = AGENT_DEFAULT_CONFIG };
	struct agent_config *conf = NULL;
	struct credential_grant g = { 0 };
	struct transport_options o;
	struct transport *t = NULL;
	char *urls[2] = { NULL, NULL }, *path = NULL, err[1024];
	int r, rc;

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
	urls[1] = NULL;
	agent_transport_options(conf, a.token, &o);
	o.urls = urls;
	if (transport_new(&o, &t) < 0)
		goto out;
	r = credential_enroll(t, a.host ? a.host : conf->host, &g, err,
			      sizeof(err));
	if (r < 0) {
		fprintf(stderr, "tocsin-agent: enrollment failed: %s\n", err);
		goto out;
	}
	if (mkdir(conf->state_dir, 0700) < 0 && errno != EEXIST) {
		fprintf(stderr, "tocsin-agent: cannot create %s: %s\n",
			conf->state_dir, strerror(errno));
		goto out;
	}
	path = credential_path(conf->state_dir);
	r = credential_store(path, &g, a.server);
	if (r < 0) {
		fprintf(stderr, "tocsin-agent: enrolled as credential %lld, but cannot store it in %s: %s\n",
			(long long)g.id, path, strerror(-r));
		goto out;
	}
	printf("enrolled host %s for customer %s: credential %lld stored in %s\n",
	       g.host, g.customer ? g.customer : "-", (long long)g.id, path);
	enroll_hints(conf, &a);
	rc = 0;
out:
	free(urls[0]);
	free(path);
	credential_grant_clear(&g);
	transport_free(t);
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

int credential_main_rotate(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "conf-dir", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = AGENT_DEFAULT_CONFIG, *dropin = NULL;
	struct agent_config *conf = NULL;
	struct credential_grant g = { 0 };
	struct transport_options o;
	struct transport *t = NULL;
	char *path = NULL, *secret = NULL, err[1024];
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
	agent_transport_options(conf, secret, &o);
	if (transport_new(&o, &t) < 0)
		goto out;
	r = credential_rotate(t, &g, err, sizeof(err));
	if (r < 0) {
		fprintf(stderr, "tocsin-agent: rotation failed: %s\n", err);
		goto out;
	}
	r = credential_store(path, &g, transport_url(t));
	if (r < 0) {
		fprintf(stderr, "tocsin-agent: cannot store the new credential %lld in %s: %s; the old one keeps working for 1 h\n",
			(long long)g.id, path, strerror(-r));
		goto out;
	}
	printf("credential %lld stored in %s; the old one stops working when the new one is first used\n",
	       (long long)g.id, path);
	rc = 0;
out:
	if (secret)
		explicit_bzero(secret, strlen(secret));
	free(secret);
	free(path);
	credential_grant_clear(&g);
	transport_free(t);
	agent_config_free(conf);
	return rc;
}
