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
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/config.h"
#include "../../common/util.h"

#define REPLY_MAX (64 * 1024 * 1024)

struct client {
	char *url;
	char *token;
	bool json;
};

struct buffer {
	char *data;
	size_t len;
};

static void usage(FILE *fp)
{
	fprintf(fp,
		"usage: tocsin [--url URL] [--token TOKEN] [--config FILE] COMMAND [ARGS]\n"
		"\n"
		"commands:\n"
		"  tickets [--state open|resolved|all] [--limit N] [--json]\n"
		"                          list tickets (default: open)\n"
		"  ticket ID [--json]      show one ticket with its occurrences and journal\n"
		"\n"
		"The server URL and token come from the flags, else TOCSIN_URL and\n"
		"TOCSIN_TOKEN, else the file given with --config, ~/.config/tocsin/cli.yaml\n"
		"or /etc/tocsin/cli.yaml (keys: url, token).\n");
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

/* GET path from the server; the decoded JSON answer or NULL after a message. */
static json_t *api_get(const struct client *c, const char *path)
{
	struct buffer b = { 0 };
	struct curl_slist *headers = NULL;
	size_t len = strlen(c->url);
	char *url, *auth;
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

		fprintf(stderr, "tocsin: %s: HTTP %ld: %s\n", url, status,
			msg ? msg : "no explanation from the server");
		json_decref(doc);
		doc = NULL;
	} else if (doc == NULL) {
		fprintf(stderr, "tocsin: %s: the answer is not JSON\n", url);
	}
out:
	curl_easy_cleanup(curl);
	curl_slist_free_all(headers);
	free(url);
	free(auth);
	free(b.data);
	return doc;
}

static const char *str(json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	return s ? s : "-";
}

/* "2026-11-22T21:53:07.123Z" -> "2026-11-22 21:53" for tables. */
static void short_time(const char *iso, char *buf, size_t size)
{
	if (strlen(iso) >= 16)
		snprintf(buf, size, "%.10s %.5s", iso, iso + 11);
	else
		snprintf(buf, size, "%s", iso);
}

static void print_json(json_t *doc)
{
	char *text = json_dumps(doc, JSON_INDENT(2));

	if (text != NULL)
		printf("%s\n", text);
	free(text);
}

static int cmd_tickets(const struct client *c, const char *state,
		       const char *limit)
{
	char *path = xasprintf("/api/v1/tickets?state=%s%s%s", state,
			       limit ? "&limit=" : "", limit ? limit : "");
	json_t *doc = api_get(c, path), *tickets, *t;
	size_t i;

	free(path);
	if (doc == NULL)
		return 1;
	if (c->json) {
		print_json(doc);
		json_decref(doc);
		return 0;
	}
	tickets = json_object_get(doc, "tickets");
	if (json_array_size(tickets) == 0) {
		printf("no %s tickets\n", strcmp(state, "all") ? state : "");
		json_decref(doc);
		return 0;
	}
	printf("%-6s %-9s %-9s %-20s %5s  %-16s  %s\n", "ID", "STATUS", "STATE",
	       "HOST", "OCC", "LAST SEEN", "SUMMARY");
	json_array_foreach(tickets, i, t) {
		char seen[32];

		short_time(str(t, "last_seen"), seen, sizeof(seen));
		printf("%-6lld %-9s %-9s %-20s %5lld  %-16s  %s\n",
		       (long long)json_integer_value(json_object_get(t, "id")),
		       str(t, "status"), str(t, "state"), str(t, "host"),
		       (long long)json_integer_value(
			       json_object_get(t, "occurrence_count")),
		       seen, str(t, "summary"));
	}
	json_decref(doc);
	return 0;
}

static int cmd_ticket(const struct client *c, const char *id)
{
	char *path = xasprintf("/api/v1/tickets/%s", id);
	json_t *t = api_get(c, path), *e;
	size_t i;

	free(path);
	if (t == NULL)
		return 1;
	if (c->json) {
		print_json(t);
		json_decref(t);
		return 0;
	}
	printf("Ticket #%lld: %s\n",
	       (long long)json_integer_value(json_object_get(t, "id")),
	       str(t, "title"));
	printf("  status:      %s (state %s, worst %s)\n", str(t, "status"),
	       str(t, "state"), str(t, "worst_state"));
	printf("  problem:     host %s, check %s, item %s\n", str(t, "host"),
	       str(t, "check"), str(t, "item"));
	printf("  summary:     %s\n", str(t, "summary"));
	printf("  occurrences: %lld, first seen %s, last seen %s\n",
	       (long long)json_integer_value(
		       json_object_get(t, "occurrence_count")),
	       str(t, "first_seen"), str(t, "last_seen"));
	printf("  opened:      %s\n", str(t, "opened_at"));
	if (json_is_string(json_object_get(t, "resolved_at")))
		printf("  resolved:    %s\n", str(t, "resolved_at"));
	printf("\nJournal:\n");
	json_array_foreach(json_object_get(t, "journal"), i, e) {
		printf("  %s  %-8s %-9s %s\n", str(e, "at"), str(e, "actor"),
		       str(e, "action"), str(e, "text"));
	}
	printf("\nLatest occurrences:\n");
	json_array_foreach(json_object_get(t, "occurrences"), i, e) {
		printf("  %s  %-9s %s\n", str(e, "observed_at"), str(e, "state"),
		       str(e, "summary"));
	}
	json_decref(t);
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "url", required_argument, NULL, 'u' },
		{ "token", required_argument, NULL, 't' },
		{ "config", required_argument, NULL, 'c' },
		{ "state", required_argument, NULL, 's' },
		{ "limit", required_argument, NULL, 'l' },
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct client c = { 0 };
	const char *config_path = NULL, *state = "open", *limit = NULL;
	const char *cmd;
	int opt, r;

	/* GNU getopt permutes, so options may follow the command. */
	while ((opt = getopt_long(argc, argv, "u:t:c:h", opts, NULL)) != -1) {
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
		case 's':
			state = optarg;
			break;
		case 'l':
			limit = optarg;
			break;
		case 'j':
			c.json = true;
			break;
		case 'V':
			printf("tocsin %s\n", TOCSIN_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return 2;
	}
	cmd = argv[optind];
	if (strcmp(state, "open") != 0 && strcmp(state, "resolved") != 0 &&
	    strcmp(state, "all") != 0) {
		fprintf(stderr, "tocsin: --state must be open, resolved or all\n");
		return 2;
	}
	if (resolve_settings(&c, config_path) < 0)
		return 2;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	if (strcmp(cmd, "tickets") == 0 && optind + 1 == argc) {
		r = cmd_tickets(&c, state, limit);
	} else if (strcmp(cmd, "ticket") == 0 && optind + 2 == argc) {
		r = cmd_ticket(&c, argv[optind + 1]);
	} else {
		usage(stderr);
		r = 2;
	}
	curl_global_cleanup();
	free(c.url);
	free(c.token);
	return r;
}
