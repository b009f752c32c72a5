/*
 * tocsin silence add|list|remove: maintenance windows over the API.
 *
 * Times and durations are passed to the server as written; it validates
 * them and explains what is wrong, so the CLI and the API say the same.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/util.h"
#include "cli.h"

static void print_silence_row(json_t *s)
{
	char starts[32], ends[32];

	cli_short_time(cli_str(s, "starts_at"), starts, sizeof(starts));
	cli_short_time(cli_str(s, "ends_at"), ends, sizeof(ends));
	printf("%-5lld %-8s %-20s %-12s %-16s %-16s %-16s %-10s %s\n",
	       (long long)json_integer_value(json_object_get(s, "id")),
	       cli_str(s, "state"), cli_str(s, "host"), cli_str(s, "check"),
	       cli_str(s, "item"), starts, ends, cli_str(s, "author"),
	       cli_str(s, "comment"));
}

static void print_header(void)
{
	printf("%-5s %-8s %-20s %-12s %-16s %-16s %-16s %-10s %s\n", "ID",
	       "STATE", "HOST", "CHECK", "ITEM", "START", "END", "AUTHOR",
	       "COMMENT");
}

/* Print an answer: as JSON with --json, else as a table row. */
static int print_one(struct client *c, json_t *doc)
{
	int r = 0;

	if (c->json) {
		cli_print_json(doc);
	} else if (cli_expect(doc, "id", JSON_INTEGER) == NULL) {
		r = 1;
	} else {
		print_header();
		print_silence_row(doc);
	}
	json_decref(doc);
	return r;
}

static void set_optional(json_t *body, const char *key, const char *value)
{
	if (value != NULL)
		json_object_set_new(body, key, json_string(value));
}

static int add_run(struct client *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "host", required_argument, NULL, 'H' },
		{ "check", required_argument, NULL, 'c' },
		{ "item", required_argument, NULL, 'i' },
		{ "start", required_argument, NULL, 's' },
		{ "end", required_argument, NULL, 'e' },
		{ "duration", required_argument, NULL, 'd' },
		{ "comment", required_argument, NULL, 'm' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	const char *v[128] = { 0 };
	json_t *body, *doc;
	int opt;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt == 'j')
			c->json = true;
		else if (opt == '?' || opt == ':')
			return cli_usage_error(&cli_cmd_silence, NULL);
		else
			v[opt] = optarg;
	}
	if (optind != argc)
		return cli_usage_error(&cli_cmd_silence, "unexpected argument");
	if (v['H'] == NULL)
		return cli_usage_error(&cli_cmd_silence,
				       "silence add needs --host (a name or pattern such as 'web*')");
	if (v['m'] == NULL)
		return cli_usage_error(&cli_cmd_silence,
				       "silence add needs --comment: say why");
	body = json_object();
	set_optional(body, "host", v['H']);
	set_optional(body, "check", v['c']);
	set_optional(body, "item", v['i']);
	set_optional(body, "start", v['s']);
	set_optional(body, "end", v['e']);
	set_optional(body, "duration", v['d']);
	set_optional(body, "comment", v['m']);
	doc = cli_request(c, "POST", "/api/v1/silences", body);
	json_decref(body);
	if (doc == NULL)
		return 1;
	return print_one(c, doc);
}

static int list_run(struct client *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "state", required_argument, NULL, 's' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	const char *state = "all";
	json_t *doc, *list, *s;
	char *path, *esc;
	size_t i;
	int opt, status;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		if (opt == 's')
			state = optarg;
		else if (opt == 'j')
			c->json = true;
		else
			return cli_usage_error(&cli_cmd_silence, NULL);
	}
	if (optind != argc)
		return cli_usage_error(&cli_cmd_silence, "unexpected argument");
	esc = cli_escape(state);
	path = xasprintf("/api/v1/silences?state=%s", esc);
	free(esc);
	opt = cli_fetch_list(c, path, "silences", &doc, &list, &status);
	free(path);
	if (opt)
		return status;
	if (json_array_size(list) == 0) {
		printf("no silences\n");
	} else {
		print_header();
		json_array_foreach(list, i, s)
			print_silence_row(s);
	}
	json_decref(doc);
	return 0;
}

static int remove_run(struct client *c, int argc, char **argv)
{
	json_t *doc;
	int64_t id;
	char *path;
	int r;

	r = cli_id_args(&cli_cmd_silence, c, argc, argv, "silence", &id);
	if (r != 0)
		return r;
	path = xasprintf("/api/v1/silences/%lld", (long long)id);
	doc = cli_request(c, "DELETE", path, NULL);
	free(path);
	if (doc == NULL)
		return 1;
	return print_one(c, doc);
}

static int silence_run(struct client *c, int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*run)(struct client *c, int argc, char **argv);
	} subs[] = {
		{ "add", add_run },
		{ "list", list_run },
		{ "remove", remove_run },
	};

	if (argc < 2)
		return cli_usage_error(&cli_cmd_silence,
				       "add, list or remove?");
	for (size_t i = 0; i < ARRAY_SIZE(subs); i++)
		if (strcmp(argv[1], subs[i].name) == 0)
			return subs[i].run(c, argc - 1, argv + 1);
	fprintf(stderr, "tocsin silence: unknown subcommand '%s'\n", argv[1]);
	return cli_usage_error(&cli_cmd_silence, NULL);
}

const struct cli_command cli_cmd_silence = {
	.name = "silence",
	.synopsis = "silence add --host PATTERN [--check C] [--item I] "
		    "(--duration D | --end TIME) [--start TIME] --comment TEXT | "
		    "silence list [--state active|pending|expired|all] | "
		    "silence remove ID   [--json]   maintenance windows",
	.run = silence_run,
};
