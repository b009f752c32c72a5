/*
 * tocsin ack|start|assign|unassign|comment|ask|escalate|priority|urgency|impact|
 * merge|resolve|close|reopen: working tickets, one command per action of
 * POST /api/v1/tickets/{id}/actions.  The server records who did it from
 * the token; nothing here names the actor.  Options end where the text
 * begins (split_args()).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/util.h"
#include "cli.h"

/* How a command's positional arguments map onto the action's body. */
struct workflow_def {
	const char *command, *action;
	const char *arg;	/* the body member for the second argument, or NULL */
	const char *text;	/* the member for the remaining words, or NULL */
	bool text_required;
};

static const struct workflow_def defs[] = {
	{ "ack", "acknowledge", NULL, "text", false },
	{ "start", "start", NULL, "text", false },
	{ "assign", "assign", "assignee", "text", false },
	{ "unassign", "unassign", NULL, "text", false },
	{ "comment", "comment", NULL, "text", true },
	{ "ask", "ask", NULL, "text", true },
	{ "escalate", "escalate", NULL, "text", false },
	{ "priority", "priority", "priority", "text", false },
	{ "urgency", "urgency", "urgency", "text", false },
	{ "impact", "impact", "impact", "text", false },
	{ "merge", "merge", "into", "text", false },
	{ "resolve", "resolve", NULL, "note", true },
	{ "close", "close", NULL, "text", false },
	{ "reopen", "reopen", NULL, "text", false },
};

static const struct cli_command *command_of(const char *name);

static const struct workflow_def *def_of(const char *name)
{
	for (size_t i = 0; i < ARRAY_SIZE(defs); i++)
		if (strcmp(defs[i].command, name) == 0)
			return &defs[i];
	return NULL;
}

/* The remaining words joined by spaces (malloc'ed), or NULL when none. */
static char *join(int argc, char **argv)
{
	size_t len = 1;
	char *s;

	if (argc <= 0)
		return NULL;
	for (int i = 0; i < argc; i++)
		len += strlen(argv[i]) + 1;
	s = xcalloc(1, len);
	for (int i = 0; i < argc; i++) {
		if (i)
			strlcat_safe(s, " ", len);
		strlcat_safe(s, argv[i], len);
	}
	return s;
}

static void print_result(json_t *t)
{
	const char *assignee = cli_str(t, "assignee");

	printf("ticket #%lld: %s, priority %s, queue %s, level %lld, assignee %s\n",
	       (long long)json_integer_value(json_object_get(t, "id")),
	       cli_str(t, "status"), cli_str(t, "priority"), cli_str(t, "queue"),
	       (long long)json_integer_value(json_object_get(t, "level")),
	       strcmp(assignee, "-") ? assignee : "nobody");
}

static void print_clock(const char *what, json_t *c)
{
	if (!json_is_object(c))
		return;
	printf("  %-12s %s, due %s, %lld s used of %lld s\n", what, cli_str(c, "state"),
	       cli_str(c, "due"), (long long)json_integer_value(json_object_get(c, "elapsed_s")),
	       (long long)json_integer_value(json_object_get(c, "target_s")));
}

void cli_print_helpdesk(json_t *t)
{
	json_t *h;
	size_t i;

	printf("  customer:    %s (contract %s)\n", cli_str(t, "customer"), cli_str(t, "contract"));
	printf("  priority:    %s (impact %s, urgency %s)%s\n", cli_str(t, "priority"),
	       cli_str(t, "impact"), cli_str(t, "urgency"),
	       json_is_true(json_object_get(t, "overdue")) ? "  OVERDUE" : "");
	printf("  queue:       %s, level %lld, category %s, assignee %s\n", cli_str(t, "queue"),
	       (long long)json_integer_value(json_object_get(t, "level")),
	       cli_str(t, "category"), cli_str(t, "assignee"));
	print_clock("response:", json_object_get(json_object_get(t, "sla"), "response"));
	print_clock("resolution:", json_object_get(json_object_get(t, "sla"), "resolution"));
	if (json_is_string(json_object_get(t, "knowledge_hint")))
		printf("  knowledge:   %s\n", cli_str(t, "knowledge_hint"));
	json_array_foreach(json_object_get(t, "history"), i, h)
		printf("  earlier:     #%lld %s: %s\n",
		       (long long)json_integer_value(json_object_get(h, "id")),
		       cli_str(h, "resolved_at"), cli_str(h, "resolution"));
}

struct flags {
	bool json, customer, third_party;
};

/* 1 when arg is one of def's options (and set), 0 when it is not. */
static int flag_of(const struct workflow_def *def, const char *arg, struct flags *f)
{
	if (strcmp(arg, "--json") == 0)
		f->json = true;
	else if (strcmp(arg, "--customer") == 0 && strcmp(def->command, "comment") == 0)
		f->customer = true;
	else if (strcmp(arg, "--third-party") == 0 && strcmp(def->command, "ask") == 0)
		f->third_party = true;
	else
		return 0;
	return 1;
}

/*
 * The words of a command: options, the ticket id, the value (assignee,
 * priority, ...), the text.  Before the id only options may come.  After
 * it, this command's own options are taken until the text begins; the
 * first other word begins it, and everything from there is text, so a
 * text may hold words that start with '-' ("comment 7 rm -rf was it").
 * "--" ends the options for a text that starts with one of their names.
 * 0, or the exit status of a usage error already printed.
 */
static int split_args(const struct cli_command *cmd, const struct workflow_def *def,
		      int argc, char **argv, struct flags *f, const char **ret_id,
		      const char **ret_value, int *ret_text)
{
	bool options = true;
	int i = 1;

	for (; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "--") == 0) {
			options = false;
			i++;
			break;
		}
		if (!flag_of(def, argv[i], f)) {
			fprintf(stderr, "tocsin %s: unknown option %s\n", def->command, argv[i]);
			return cli_usage_error(cmd, NULL);
		}
	}
	if (i >= argc)
		return cli_usage_error(cmd, "which ticket?");
	*ret_id = argv[i++];
	*ret_value = NULL;
	for (; i < argc; i++) {
		if (options && strcmp(argv[i], "--") == 0) {
			options = false;
			continue;
		}
		if (options && flag_of(def, argv[i], f))
			continue;
		if (def->arg && *ret_value == NULL) {
			*ret_value = argv[i];
			continue;
		}
		break;
	}
	*ret_text = i;
	return 0;
}

static int workflow_run(struct client *c, int argc, char **argv)
{
	const struct workflow_def *def = def_of(argv[0]);
	const struct cli_command *cmd = command_of(argv[0]);
	struct flags f = { .json = c->json };
	const char *idarg = NULL, *value = NULL;
	json_t *body, *t;
	char *path, *text;
	int64_t id, into;
	int r, first = 0;

	r = split_args(cmd, def, argc, argv, &f, &idarg, &value, &first);
	if (r != 0)
		return r;
	c->json = f.json;
	if (parse_int64(idarg, &id) < 0 || id < 1)
		return cli_usage_error(cmd, "a ticket id is a positive number");
	body = json_pack("{s:s}", "action", def->action);
	if (def->arg) {
		if (value == NULL) {
			json_decref(body);
			return cli_usage_error(cmd, "an argument is missing");
		}
		if (strcmp(def->arg, "into") == 0) {
			if (parse_int64(value, &into) < 0 || into < 1) {
				json_decref(body);
				return cli_usage_error(cmd, "merge into a ticket id");
			}
			json_object_set_new(body, "into", json_integer(into));
		} else {
			json_object_set_new(body, def->arg, json_string(value));
		}
	}
	text = join(argc - first, argv + first);
	if (text == NULL && def->text_required) {
		json_decref(body);
		return cli_usage_error(cmd, "the text is missing");
	}
	if (text)
		json_object_set_new(body, def->text, json_string(text));
	free(text);
	if (f.customer)
		json_object_set_new(body, "visibility", json_string("customer"));
	if (f.third_party)
		json_object_set_new(body, "party", json_string("third_party"));
	path = xasprintf("/api/v1/tickets/%lld/actions", (long long)id);
	t = cli_request(c, "POST", path, body);
	free(path);
	json_decref(body);
	if (t == NULL)
		return 1;
	if (c->json)
		cli_print_json(t);
	else if (cli_expect(t, "id", JSON_INTEGER) == NULL)
		r = 1;
	else
		print_result(t);
	json_decref(t);
	return r;
}

#define WORKFLOW(var, cmd_name, usage)                                \
	const struct cli_command var = { .name = cmd_name, .synopsis = usage, \
					 .run = workflow_run }

WORKFLOW(cli_cmd_ack, "ack", "ack ID [TEXT]   acknowledge a new ticket");
WORKFLOW(cli_cmd_start, "start", "start ID [TEXT]   work on it now (also after waiting)");
WORKFLOW(cli_cmd_assign, "assign", "assign ID PERSON [TEXT]   hand it to a technician");
WORKFLOW(cli_cmd_unassign, "unassign", "unassign ID [TEXT]   leave it to nobody again");
WORKFLOW(cli_cmd_comment, "comment",
	 "comment ID [--customer] TEXT   add a comment (internal unless --customer)");
WORKFLOW(cli_cmd_ask, "ask",
	 "ask ID [--third-party] TEXT   ask the customer (or a third party); the SLA pauses");
WORKFLOW(cli_cmd_escalate, "escalate", "escalate ID [TEXT]   to the next support level");
WORKFLOW(cli_cmd_priority, "priority", "priority ID PRIORITY [TEXT]   set the priority by hand");
WORKFLOW(cli_cmd_urgency, "urgency", "urgency ID URGENCY [TEXT]   change the urgency");
WORKFLOW(cli_cmd_impact, "impact", "impact ID IMPACT [TEXT]   change the impact");
WORKFLOW(cli_cmd_merge, "merge", "merge ID INTO [TEXT]   close ID as a duplicate of INTO");
WORKFLOW(cli_cmd_resolve, "resolve", "resolve ID NOTE   resolve with a resolution note");
WORKFLOW(cli_cmd_close, "close", "close ID [TEXT]   close a resolved ticket");
WORKFLOW(cli_cmd_reopen, "reopen", "reopen ID [TEXT]   reopen a resolved or closed ticket");

static const struct cli_command *command_of(const char *name)
{
	static const struct cli_command *const all[] = {
		&cli_cmd_ack, &cli_cmd_start, &cli_cmd_assign, &cli_cmd_unassign,
		&cli_cmd_comment, &cli_cmd_ask, &cli_cmd_escalate,
		&cli_cmd_priority, &cli_cmd_urgency, &cli_cmd_impact,
		&cli_cmd_merge, &cli_cmd_resolve, &cli_cmd_close, &cli_cmd_reopen,
	};

	for (size_t i = 0; i < ARRAY_SIZE(all); i++)
		if (strcmp(all[i]->name, name) == 0)
			return all[i];
	return all[0];
}
