/*
 * tocsin credential list|revoke: per-host credentials.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/util.h"
#include "cli.h"

/* The list's path with the filters that are set (malloc'ed). */
static char *list_path(const char *customer, const char *host)
{
	char *c = customer ? cli_escape(customer) : NULL;
	char *h = host ? cli_escape(host) : NULL;
	char *path;

	if (c != NULL && h != NULL)
		path = xasprintf("/api/v1/credentials?customer=%s&host=%s", c, h);
	else if (c != NULL)
		path = xasprintf("/api/v1/credentials?customer=%s", c);
	else if (h != NULL)
		path = xasprintf("/api/v1/credentials?host=%s", h);
	else
		path = xstrdup("/api/v1/credentials");
	free(c);
	free(h);
	return path;
}

static int list(struct client *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "customer", required_argument, NULL, 'c' },
		{ "host", required_argument, NULL, 'H' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	const char *customer = NULL, *host = NULL;
	json_t *doc, *list, *t;
	char *path;
	size_t i;
	int opt, done, status;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			customer = optarg;
			break;
		case 'H':
			host = optarg;
			break;
		case 'j':
			c->json = true;
			break;
		default:
			return cli_usage_error(&cli_cmd_credential, NULL);
		}
	}
	if (optind != argc)
		return cli_usage_error(&cli_cmd_credential, "unexpected argument");
	path = list_path(customer, host);
	done = cli_fetch_list(c, path, "credentials", &doc, &list, &status);
	free(path);
	if (done)
		return status;
	printf("%-5s %-20s %-16s %-9s %-16s %s\n", "ID", "HOST", "CUSTOMER",
	       "STATE", "CREATED", "CREATED BY");
	json_array_foreach(list, i, t) {
		char created[32];

		cli_short_time(cli_str(t, "created_at"), created, sizeof(created));
		printf("%-5lld %-20s %-16s %-9s %-16s %s\n",
		       (long long)json_integer_value(json_object_get(t, "id")),
		       cli_str(t, "host"), cli_str(t, "customer"),
		       cli_str(t, "state"), created, cli_str(t, "created_by"));
	}
	json_decref(doc);
	return 0;
}

static int credential_run(struct client *c, int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "list") == 0)
		return list(c, argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "revoke") == 0)
		return cli_revoke(&cli_cmd_credential, c, argc - 1, argv + 1,
				  "/api/v1/credentials", "credential");
	return cli_usage_error(&cli_cmd_credential, "list or revoke?");
}

const struct cli_command cli_cmd_credential = {
	.name = "credential",
	.synopsis = "credential list [--customer C] [--host H] | revoke ID   per-host credentials (admin)",
	.run = credential_run,
};
