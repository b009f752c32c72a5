/*
 * tocsin audit: who enrolled, rotated and revoked what, newest first.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>

#include "../../common/util.h"
#include "cli.h"

static int audit_run(struct client *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "limit", required_argument, NULL, 'l' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	int64_t limit = 50;
	json_t *doc, *list, *e;
	char *path;
	size_t i;
	int opt, done, status;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			if (parse_int64(optarg, &limit) < 0 || limit < 1)
				return cli_usage_error(&cli_cmd_audit,
						       "--limit must be a positive number");
			break;
		case 'j':
			c->json = true;
			break;
		default:
			return cli_usage_error(&cli_cmd_audit, NULL);
		}
	}
	if (optind != argc)
		return cli_usage_error(&cli_cmd_audit, "unexpected argument");
	path = xasprintf("/api/v1/audit?limit=%lld", (long long)limit);
	done = cli_fetch_list(c, path, "audit", &doc, &list, &status);
	free(path);
	if (done)
		return status;
	json_array_foreach(list, i, e) {
		char at[32];

		cli_short_time(cli_str(e, "at"), at, sizeof(at));
		printf("%s  %-20s %-24s %-20s %s\n", at, cli_str(e, "actor"),
		       cli_str(e, "action"), cli_str(e, "target"),
		       json_is_string(json_object_get(e, "detail"))
			       ? cli_str(e, "detail")
			       : "");
	}
	json_decref(doc);
	return 0;
}

const struct cli_command cli_cmd_audit = {
	.name = "audit",
	.synopsis = "audit [--limit N] [--json]   enrollments, rotations and revocations (admin)",
	.run = audit_run,
};
