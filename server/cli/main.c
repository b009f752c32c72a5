/*
 * tocsin: the technicians' command line, a client of the JSON API.
 *
 * The server URL and token come from --url/--token (--token-file), else
 * TOCSIN_URL and TOCSIN_TOKEN, else the config file (--config,
 * ~/.config/tocsin/cli.yaml, /etc/tocsin/cli.yaml) with the keys url and
 * token (token_file).  Every string of an answer is made fit for a
 * terminal before a command sees it (sanitize_strings()).
 */
#include <curl/curl.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/config.h"
#include "../../common/utf8.h"
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
	size_t cap;   /* bytes allocated at data */
	bool too_big; /* the answer went past REPLY_MAX */
};

static void usage(FILE *fp)
{
	fprintf(fp, "usage: tocsin [--url URL] [--token TOKEN | --token-file FILE] [--config FILE] COMMAND [ARGS]\n"
		    "\ncommands:\n");
	for (size_t i = 0; commands[i]; i++)
		fprintf(fp, "  %s\n", commands[i]->synopsis);
	fprintf(fp,
		"\nEvery command takes --json to print the API's answer as it is.\n"
		"The server URL and token come from the flags, else TOCSIN_URL and\n"
		"TOCSIN_TOKEN, else the file given with --config, ~/.config/tocsin/cli.yaml\n"
		"or /etc/tocsin/cli.yaml (keys: url, and token or token_file).\n"
		"--token shows the token to every user of this machine (ps, /proc);\n"
		"prefer --token-file or the config file.  A file that holds a token\n"
		"must be yours alone (chmod 600).\n");
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

/*
 * Take from the file at path what the flags and the environment left
 * unset: url, and token or token_file (one of the two).  A token taken
 * from here needs the file that holds it to be ours alone; *ret_source
 * then names where it came from (malloc'ed).  0, or -errno after saying
 * why.
 */
static int load_cli_file(const char *path, struct client *c, bool required,
			 char **ret_source)
{
	bool wants_token = c->token == NULL;
	char *token_file = NULL;
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
	if (wants_token) {
		cfg_get_string(cfg, cfg->root, "token", &c->token);
		if (cfg_get_path(cfg, cfg->root, "token_file", &token_file) > 0 &&
		    c->token != NULL)
			cfg_error(cfg, cfg_get(cfg, cfg->root, "token_file"),
				  "token and token_file are mutually exclusive");
	} else {
		cfg_get(cfg, cfg->root, "token");
		cfg_get(cfg, cfg->root, "token_file");
	}
	if (cfg_finish(cfg) > 0) {
		cfg_print_errors(cfg);
		r = -EINVAL;
	} else if (token_file != NULL) {
		r = cli_token_read(token_file, &c->token);
		if (r == 0)
			*ret_source = xstrdup(token_file);
	} else if (wants_token && c->token != NULL) {
		r = cli_private_file(path);
		*ret_source = xasprintf("token: in %s", path);
	}
	free(token_file);
	cfg_free(cfg);
	return r;
}

/*
 * Settle the URL and the token: the flags (token_file is --token-file's),
 * the environment, the config file, in that order.  0, or -errno after
 * saying why.
 */
static int resolve_settings(struct client *c, const char *config_path,
			    const char *token_file)
{
	const char *home = getenv("HOME");
	char *source = NULL;
	int r = 0;

	if (token_file != NULL) {
		r = cli_token_read(token_file, &c->token);
		if (r < 0)
			return r;
		source = xstrdup(token_file);
	} else if (c->token != NULL) {
		source = xstrdup("--token");
	}
	if (c->url == NULL && getenv("TOCSIN_URL"))
		c->url = xstrdup(getenv("TOCSIN_URL"));
	if (c->token == NULL && getenv("TOCSIN_TOKEN")) {
		c->token = xstrdup(getenv("TOCSIN_TOKEN"));
		source = xstrdup("TOCSIN_TOKEN");
	}
	if (config_path != NULL) {
		r = load_cli_file(config_path, c, true, &source);
	} else if (c->url == NULL || c->token == NULL) {
		if (home != NULL) {
			char *p = xasprintf("%s/.config/tocsin/cli.yaml", home);
			r = load_cli_file(p, c, false, &source);
			free(p);
		}
		if (r == 0)
			r = load_cli_file("/etc/tocsin/cli.yaml", c, false, &source);
	}
	if (r < 0)
		goto out;
	r = -EINVAL;
	if (c->url == NULL)
		fprintf(stderr,
			"tocsin: no server URL: use --url, TOCSIN_URL or url: in ~/.config/tocsin/cli.yaml\n");
	else if (c->token == NULL)
		fprintf(stderr,
			"tocsin: no token: use --token-file, TOCSIN_TOKEN or token: in ~/.config/tocsin/cli.yaml\n");
	else
		r = cli_token_check(c->token, strlen(c->token), source);
out:
	free(source);
	return r;
}

static size_t on_data(char *data, size_t size, size_t n, void *p)
{
	struct buffer *b = p;
	size_t len = size * n;

	if (b->len + len > REPLY_MAX) {
		b->too_big = true;
		return 0; /* curl ends the transfer */
	}
	/* Doubling: growing by each piece copies the answer once a piece
	 * (an allocator that never grows in place, ASan's, made 64 MiB a
	 * matter of minutes). */
	if (b->len + len + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 16384;

		while (cap < b->len + len + 1)
			cap *= 2;
		b->data = xreallocarray(b->data, cap, 1);
		b->cap = cap;
	}
	memcpy(b->data + b->len, data, len);
	b->len += len;
	b->data[b->len] = '\0';
	return len;
}

/*
 * Make every string of an answer fit for a terminal, in place, before
 * anything of it is printed: an agent's summary or a technician's comment
 * may hold escape sequences (clear the screen, write the clipboard with
 * OSC 52).  Control characters but line breaks and tabs, C1 controls too,
 * become '?' under the project's policy (common/utf8.h).  The parser's
 * depth limit bounds the recursion.
 */
static void sanitize_strings(json_t *v)
{
	const char *key;
	json_t *member;
	size_t i;

	if (json_is_string(v)) {
		const char *text = json_string_value(v);
		size_t len = json_string_length(v), n;
		char *clean = xcalloc(1, len + 1);

		n = utf8_sanitize(clean, len + 1, text, len,
				  UTF8_KEEP_NEWLINES | UTF8_NO_C1);
		if (n != len || memcmp(clean, text, len) != 0)
			json_string_setn(v, clean, n);
		free(clean);
	} else if (json_is_array(v)) {
		json_array_foreach(v, i, member)
			sanitize_strings(member);
	} else if (json_is_object(v)) {
		json_object_foreach(v, key, member)
			sanitize_strings(member);
	}
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
	/* a Content-Length past the limit ends it before the body */
	curl_easy_setopt(curl, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)REPLY_MAX);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT, 30L);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http,https");
	rc = curl_easy_perform(curl);
	if (b.too_big || rc == CURLE_FILESIZE_EXCEEDED) {
		fprintf(stderr, "tocsin: the answer from %s is larger than %d MiB\n",
			url, REPLY_MAX >> 20);
		goto out;
	}
	if (rc != CURLE_OK) {
		fprintf(stderr, "tocsin: cannot reach %s: %s\n", url,
			curl_easy_strerror(rc));
		goto out;
	}
	curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
	doc = b.data ? json_loads(b.data, 0, &jerr) : NULL;
	/* --json prints the answer as it is: JSON escapes what is unsafe */
	if (doc != NULL && (!c->json || status < 200 || status >= 300))
		sanitize_strings(doc);
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
	explicit_bzero(auth, strlen(auth));
	free(auth);
	free(b.data);
	return doc;
}

json_t *cli_get(const struct client *c, const char *path)
{
	return cli_request(c, "GET", path, NULL);
}

/* GET path for a command that prints a table: see cli_fetch_list(). */
static int cli_fetch(const struct client *c, const char *path, json_t **ret_doc,
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

json_t *cli_expect(json_t *doc, const char *key, json_type type)
{
	static const char *const wanted[] = {
		[JSON_OBJECT] = "an object", [JSON_ARRAY] = "an array",
		[JSON_STRING] = "a string",  [JSON_INTEGER] = "an integer",
		[JSON_REAL] = "a number",    [JSON_TRUE] = "a boolean",
		[JSON_FALSE] = "a boolean",  [JSON_NULL] = "null",
	};
	json_t *member = json_object_get(doc, key);

	if (member != NULL && json_typeof(member) == type)
		return member;
	fprintf(stderr, "tocsin: unexpected answer from the server: %s should be %s\n",
		key, wanted[type]);
	return NULL;
}

int cli_fetch_list(const struct client *c, const char *path, const char *key,
		   json_t **ret_doc, json_t **ret_list, int *ret_status)
{
	json_t *doc, *list, *item;
	size_t i;

	if (cli_fetch(c, path, &doc, ret_status))
		return 1;
	list = cli_expect(doc, key, JSON_ARRAY);
	json_array_foreach(list, i, item) {
		if (!json_is_object(item)) {
			fprintf(stderr,
				"tocsin: unexpected answer from the server: %s[%zu] should be an object\n",
				key, i);
			list = NULL;
			break;
		}
	}
	if (list == NULL) {
		json_decref(doc);
		*ret_status = 1;
		return 1;
	}
	*ret_doc = doc;
	*ret_list = list;
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

/*
 * --json: the answer as it is.  JSON escapes the C0 controls; on a
 * terminal, which some take U+009B for "ESC [", every non-ASCII character
 * is escaped too, so that no C1 control reaches it.
 */
void cli_print_json(json_t *doc)
{
	size_t flags = JSON_INDENT(2) |
		       (isatty(STDOUT_FILENO) ? JSON_ENSURE_ASCII : 0);
	char *text = json_dumps(doc, flags);

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
		{ "token-file", required_argument, NULL, 'T' },
		{ "config", required_argument, NULL, 'c' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	struct client c = { 0 };
	const char *config_path = NULL, *token_file = NULL;
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
			/* out of ps from now on; it was in it until here */
			memset(optarg, 'x', strlen(optarg));
			break;
		case 'T':
			token_file = optarg;
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
	if (c.token != NULL && token_file != NULL) {
		fprintf(stderr, "tocsin: --token or --token-file, not both\n");
		r = 2;
		goto out;
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
	r = resolve_settings(&c, config_path, token_file);
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
	if (c.token != NULL)
		explicit_bzero(c.token, strlen(c.token));
	free(c.token);
	return r;
}
