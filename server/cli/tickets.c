/*
 * tocsin tickets, tocsin ticket ID: reading tickets.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/util.h"
#include "cli.h"

static int tickets_run(struct client *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "state", required_argument, NULL, 's' },
		{ "limit", required_argument, NULL, 'l' },
		{ "json", no_argument, NULL, 'j' },
		{ "children", no_argument, NULL, 'c' },
		/* The API's filters (shell patterns), by their index in filters[]. */
		{ "host", required_argument, NULL, 0x100 },
		{ "check", required_argument, NULL, 0x101 },
		{ "item", required_argument, NULL, 0x102 },
		{ "customer", required_argument, NULL, 0x103 },
		{ "queue", required_argument, NULL, 0x104 },
		{ "assignee", required_argument, NULL, 0x105 },
		{ NULL, 0, NULL, 0 },
	};
	static const char *const filters[] = { "host", "check", "item",
					       "customer", "queue", "assignee" };
	const char *values[ARRAY_SIZE(filters)] = { 0 };
	const char *state = "open", *limit = "100", *children = "false";
	json_t *doc, *tickets, *t;
	int64_t n;
	char *path;
	size_t i;
	int opt, status;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 's':
			state = optarg;
			break;
		case 'l':
			limit = optarg;
			break;
		case 'j':
			c->json = true;
			break;
		case 'c':
			children = "true";
			break;
		default:
			if (opt < 0x100 || opt >= 0x100 + (int)ARRAY_SIZE(filters))
				return cli_usage_error(&cli_cmd_tickets, NULL);
			values[opt - 0x100] = optarg;
			break;
		}
	}
	if (optind != argc)
		return cli_usage_error(&cli_cmd_tickets, "unexpected argument");
	if (strcmp(state, "open") != 0 && strcmp(state, "resolved") != 0 &&
	    strcmp(state, "all") != 0)
		return cli_usage_error(&cli_cmd_tickets,
				       "--state must be open, resolved or all");
	if (parse_int64(limit, &n) < 0 || n < 1)
		return cli_usage_error(&cli_cmd_tickets,
				       "--limit must be a positive number");

	path = xasprintf("/api/v1/tickets?state=%s&limit=%s&children=%s", state,
			 limit, children);
	for (i = 0; i < ARRAY_SIZE(filters); i++) {
		char *value, *longer;

		if (values[i] == NULL)
			continue;
		value = cli_escape(values[i]);
		longer = xasprintf("%s&%s=%s", path, filters[i], value);
		free(value);
		free(path);
		path = longer;
	}
	opt = cli_fetch_list(c, path, "tickets", &doc, &tickets, &status);
	free(path);
	if (opt)
		return status;
	if (json_array_size(tickets) == 0) {
		printf("no %s tickets\n", strcmp(state, "all") ? state : "");
		json_decref(doc);
		return 0;
	}
	printf("%-6s %-11s %-9s %-20s %5s  %-16s  %s\n", "ID", "STATUS",
	       "STATE", "HOST", "OCC", "LAST SEEN", "SUMMARY");
	json_array_foreach(tickets, i, t) {
		char seen[32];

		cli_short_time(cli_str(t, "last_seen"), seen, sizeof(seen));
		printf("%-6lld %-11s %-9s %-20s %5lld  %-16s  %s\n",
		       (long long)json_integer_value(json_object_get(t, "id")),
		       cli_str(t, "status"), cli_str(t, "state"),
		       cli_str(t, "host"),
		       (long long)json_integer_value(
			       json_object_get(t, "occurrence_count")),
		       seen, cli_str(t, "summary"));
	}
	json_decref(doc);
	return 0;
}

static void print_ticket(json_t *t)
{
	json_t *e;
	size_t i;

	printf("Ticket #%lld: %s\n",
	       (long long)json_integer_value(json_object_get(t, "id")),
	       cli_str(t, "title"));
	printf("  status:      %s (state %s, worst %s)\n", cli_str(t, "status"),
	       cli_str(t, "state"), cli_str(t, "worst_state"));
	printf("  problem:     host %s, check %s, item %s\n",
	       cli_str(t, "host"), cli_str(t, "check"), cli_str(t, "item"));
	printf("  summary:     %s\n", cli_str(t, "summary"));
	printf("  occurrences: %lld, first seen %s, last seen %s\n",
	       (long long)json_integer_value(
		       json_object_get(t, "occurrence_count")),
	       cli_str(t, "first_seen"), cli_str(t, "last_seen"));
	printf("  opened:      %s\n", cli_str(t, "opened_at"));
	if (json_is_string(json_object_get(t, "resolved_at")))
		printf("  resolved:    %s\n", cli_str(t, "resolved_at"));
	cli_print_lifecycle(t);
	if (json_is_string(json_object_get(t, "priority")))
		cli_print_helpdesk(t);
	printf("\nJournal:\n");
	json_array_foreach(json_object_get(t, "journal"), i, e) {
		printf("  %s  %-8s %-9s %s\n", cli_str(e, "at"),
		       cli_str(e, "actor"), cli_str(e, "action"),
		       cli_str(e, "text"));
	}
	printf("\nLatest occurrences:\n");
	json_array_foreach(json_object_get(t, "occurrences"), i, e) {
		printf("  %s  %-9s %s\n", cli_str(e, "observed_at"),
		       cli_str(e, "state"), cli_str(e, "summary"));
	}
}

static int ticket_run(struct client *c, int argc, char **argv)
{
	json_t *t;
	int64_t id;
	char *path;
	int r;

	r = cli_id_args(&cli_cmd_ticket, c, argc, argv, "ticket", &id);
	if (r != 0)
		return r;
	path = xasprintf("/api/v1/tickets/%lld", (long long)id);
	t = cli_get(c, path);
	free(path);
	if (t == NULL)
		return 1;
	if (c->json) {
		cli_print_json(t);
	} else if (cli_expect(t, "id", JSON_INTEGER) == NULL ||
		   cli_expect(t, "journal", JSON_ARRAY) == NULL ||
		   cli_expect(t, "occurrences", JSON_ARRAY) == NULL) {
		r = 1;
	} else {
		print_ticket(t);
	}
	json_decref(t);
	return r;
}

const struct cli_command cli_cmd_tickets = {
	.name = "tickets",
	.synopsis = "tickets [--state open|resolved|all] [--limit N] [--children] [--host|--check|--item|--customer|--queue|--assignee PATTERN] [--json]   list tickets (default: open; --children: also those attached to a parent's ticket)",
	.run = tickets_run,
};

const struct cli_command cli_cmd_ticket = {
	.name = "ticket",
	.synopsis = "ticket ID [--json]   one ticket with its occurrences and journal",
	.run = ticket_run,
};
