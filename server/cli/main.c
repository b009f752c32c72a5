/*
 * tocsin: the technicians' command line, a client of the JSON API.
 *
 * The server URL and token come from --url/--token, else TOCSIN_URL and
 * TOCSIN_TOKEN, else the config file (--config, ~/.config/tocsin/cli.yaml,
 * /etc/tocsin/cli.yaml) with the keys url and token.
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/config.h"
#include "../../common/util.h"
#include "cli.h"

#define REPLY_MAX (64 * 1024 * 1024)

/* Every command, in the order --help lists them.  One line per command. */
static const struct cli_command *const commands[] = {
	&cli_cmd_tickets,
	&cli_cmd_ticket,
	&cli_cmd_traps,
	&cli_cmd_silence,
	&cli_cmd_ack,
	&cli_cmd_start,
	&cli_cmd_assign,
	&cli_cmd_unassign,
	&cli_cmd_comment,
	&cli_cmd_ask,
	&cli_cmd_escalate,
	&cli_cmd_priority,
	&cli_cmd_urgency,
	&cli_cmd_impact,
	&cli_cmd_merge,
	&cli_cmd_resolve,
	&cli_cmd_close,
	&cli_cmd_reopen,
	&cli_cmd_enrollment,
	&cli_cmd_credential,
	&cli_cmd_audit,
	&cli_cmd_account,
	NULL,
};

struct buffer {
	char *data;
	size_t len;
};

static void usage(FILE *fp)
{
	fprintf(fp, "usage: tocsin [--url URL] [--token TOKEN] [--config FILE] COMMAND [ARGS]\n"
		    "\ncommands:\n");
	for (size_t i = 0; commands[i]; i++)
		fprintf(fp, "  %s\n", commands[i]->synopsis);
	fprintf(fp,
		"\nEvery command takes --json to print the API's answer as it is.\n"
		"The server URL and token come from the flags, else TOCSIN_URL and\n"
		"TOCSIN_TOKEN, else the file given with --config, ~/.config/tocsin/cli.yaml\n"
		"or /etc/tocsin/cli.yaml (keys: url, token).\n");
}

int cli_usage_error(const struct cli_command *cmd, const char *why)
{
	if (why != NULL)
		fprintf(stderr, "tocsin %s: %s\n", cmd->name, why);
	fprintf(stderr, "usage: tocsin %s\n", cmd->synopsis);
	return 2;
}

int cli_id_args(const struct cli_command *cmd, struct client *c, int argc,
		char **argv, const char *what, int64_t *ret_id)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	char why[64];
	int64_t id;
	int opt;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt != 'j')
			return cli_usage_error(cmd, NULL);
		c->json = true;
	}
	if (optind + 1 != argc) {
		snprintf(why, sizeof(why), "which %s?", what);
		return cli_usage_error(cmd, why);
	}
	if (parse_int64(argv[optind], &id) < 0 || id < 1) {
		snprintf(why, sizeof(why), "a %s id is a positive number", what);
		return cli_usage_error(cmd, why);
	}
	*ret_id = id;
	return 0;
}

static int load_cli_file(const char *path, struct client *c, bool required)
{
	struct cfg *cfg;
	int r;

	if (access(path, R_OK) < 0) {
		if (!required)
			return 0;
		fprintf(stderr, "tocsin: cannot read %s: %s\n", path,
			strerror(errno));
		return -errno;
	}
	r = cfg_load(path, NULL, &cfg);
	if (r < 0)
		return r;
	if (c->url == NULL)
		cfg_get_string(cfg, cfg->root, "url", &c->url);
	else
		cfg_get(cfg, cfg->root, "url");
	if (c->token == NULL)
		cfg_get_string(cfg, cfg->root, "token", &c->token);
	else
		cfg_get(cfg, cfg->root, "token");
	if (cfg_finish(cfg) > 0) {
		cfg_print_errors(cfg);
		cfg_free(cfg);
		return -EINVAL;
	}
	cfg_free(cfg);
	return 0;
}

static int resolve_settings(struct client *c, const char *config_path)
{
	const char *home = getenv("HOME");
	int r = 0;

	if (c->url == NULL && getenv("TOCSIN_URL"))
		c->url = xstrdup(getenv("TOCSIN_URL"));
	if (c->token == NULL && getenv("TOCSIN_TOKEN"))
		c->token = xstrdup(getenv("TOCSIN_TOKEN"));
	if (config_path != NULL) {
		r = load_cli_file(config_path, c, true);
	} else if (c->url == NULL || c->token == NULL) {
		if (home != NULL) {
			char *p = xasprintf("%s/.config/tocsin/cli.yaml", home);
			r = load_cli_file(p, c, false);
			free(p);
		}
		if (r == 0)
			r = load_cli_file("/etc/tocsin/cli.yaml", c, false);
	}
	if (r < 0)
		return r;
	if (c->url == NULL) {
		fprintf(stderr,
			"tocsin: no server URL: use --url, TOCSIN_URL or url: in ~/.config/tocsin/cli.yaml\n");
		return -EINVAL;
	}
	if (c->token == NULL) {
		fprintf(stderr,
			"tocsin: no token: use --token, TOCSIN_TOKEN or token: in ~/.config/tocsin/cli.yaml\n");
		return -EINVAL;
	}
	return 0;
}

static size_t on_data(char *data, size_t size, size_t n, void *p)
{
	struct buffer *b = p;
	size_t len = size * n;

	if (b->len + len > REPLY_MAX)
		return 0;
	b->data = xreallocarray(b->data, b->len + len + 1, 1);
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return len;
}

json_t *cli_request(const struct client *c, const char *method,
		    const char *path, json_t *body)
{
	struct buffer b = { 0 };
	struct curl_slist *headers = NULL;
	size_t len = strlen(c->url);
	char *url, *auth, *payload = NULL;
	json_t *doc = NULL;
	json_error_t jerr;
	long status = 0;
	CURLcode rc;
	CURL *curl;

	while (len > 0 && c->url[len - 1] == '/')
		len--;
	url = xasprintf("%.*s%s", (int)len, c->url, path);
	auth = xasprintf("Authorization: Bearer %s", c->token);
	headers = curl_slist_append(headers, auth);
	curl = curl_easy_init();
	curl_easy_setopt(curl, CURLOPT_URL, url);
	curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, method);
	if (body != NULL) {
		payload = json_dumps(body, JSON_COMPACT);
		headers = curl_slist_append(headers,
					    "Content-Type: application/json");
		curl_easy_setopt(curl, CURLOPT_POSTFIELDS, payload);
	}
	curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
	curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	rc = curl_easy_perform(curl);
	if (rc != CURLE_OK) {
		fprintf(stderr, "tocsin: cannot reach %s: %s\n", url,
			curl_easy_strerror(rc));
		goto out;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	doc = b.data ? json_loads(b.data, 0, &jerr) : NULL;
	if (status < 200 || status >= 300) {
		const char *msg = json_string_value(json_object_get(doc, "error"));

		fprintf(stderr, "tocsin: %s %s: HTTP %ld: %s\n", method, url,
			status, msg ? msg : "no explanation from the server");
		json_decref(doc);
		doc = NULL;
	} else if (doc == NULL) {
		fprintf(stderr, "tocsin: %s: the answer is not JSON\n", url);
	}
out:
	curl_easy_cleanup(curl);
	curl_slist_free_all(headers);
	free(payload);
	free(url);
	free(auth);
	free(b.data);
	return doc;
}

json_t *cli_get(const struct client *c, const char *path)
{
	return cli_request(c, "GET", path, NULL);
}

int cli_fetch(const struct client *c, const char *path, json_t **ret_doc,
	      int *ret_status)
{
	json_t *doc = cli_get(c, path);

	if (doc == NULL) {
		*ret_status = 1;
		return 1;
	}
	if (c->json) {
		cli_print_json(doc);
		json_decref(doc);
		*ret_status = 0;
		return 1;
	}
	*ret_doc = doc;
	return 0;
}

const char *cli_str(json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s ? s : "-";
}

void cli_short_time(const char *iso, char *buf, size_t size)
{
	if (strlen(iso) >= 16)
		snprintf(buf, size, "%.10s %.5s", iso, iso + 11);
	else
		snprintf(buf, size, "%s", iso);
}

void cli_print_json(json_t *doc)
{
	char *text = json_dumps(doc, JSON_INDENT(2));

	if (text != NULL)
		printf("%s\n", text);
	free(text);
}

char *cli_escape(const char *text)
{
	char *tmp = curl_easy_escape(NULL, text, 0);
	char *out = xstrdup(tmp ? tmp : "");

	curl_free(tmp);
	return out;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "token", required_argument, NULL, 't' },
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct client c = { 0 };
	const char *config_path = NULL;
	const struct cli_command *cmd = NULL;
	int opt, r;

	/* "+": global options end at the command; the rest is its own. */
	while ((opt = getopt_long(argc, argv, "+u:t:c:h", opts, NULL)) != -1) {
		switch (opt) {
		case 'u':
			free(c.url);
			c.url = xstrdup(optarg);
			break;
		case 't':
			free(c.token);
			c.token = xstrdup(optarg);
			break;
		case 'c':
			config_path = optarg;
			break;
		case 'V':
			printf("tocsin %s\n", TOCSIN_VERSION);
			r = 0;
			goto out;
		case 'h':
			usage(stdout);
			r = 0;
			goto out;
		default:
			usage(stderr);
			r = 2;
			goto out;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		r = 2;
		goto out;
	}
	for (size_t i = 0; commands[i]; i++)
		if (strcmp(commands[i]->name, argv[optind]) == 0)
			cmd = commands[i];
	if (cmd == NULL) {
		fprintf(stderr, "tocsin: unknown command '%s'\n", argv[optind]);
		usage(stderr);
		r = 2;
		goto out;
	}
	r = resolve_settings(&c, config_path);
	if (r < 0) {
		r = 2;
		goto out;
	}
	curl_global_init(CURL_GLOBAL_DEFAULT);
	argc -= optind;
	argv += optind;
	optind = 0; /* reset getopt for the command's own options */
	r = cmd->run(&c, argc, argv);
	curl_global_cleanup();
out:
	free(c.url);
	free(c.token);
	return r;
}
