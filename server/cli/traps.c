/*
 * tocsin traps unknown: traps from devices nobody configured, for review.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/util.h"
#include "cli.h"

/* What could identify the sender: sysName, agent-addr, engine id, user. */
static void identity(json_t *t, char *buf, size_t size)
{
	static const char *const keys[] = { "sys_name", "agent_addr",
					     "engine_id", "user" };

	buf[0] = '\0';
	for (size_t i = 0; i < ARRAY_SIZE(keys); i++) {
		const char *v = json_string_value(json_object_get(t, keys[i]));

		if (v == NULL)
			continue;
		if (buf[0] != '\0')
			strlcat_safe(buf, " ", size);
		strlcat_safe(buf, keys[i], size);
		strlcat_safe(buf, "=", size);
		strlcat_safe(buf, v, size);
	}
	if (buf[0] == '\0')
		strlcpy_safe(buf, "-", size);
}

static int unknown_run(struct client *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "limit", required_argument, NULL, 'l' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	const char *limit = "50";
	json_t *doc, *list, *t;
	int64_t n;
	char *path;
	size_t i;
	int opt, done, status;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'l':
			limit = optarg;
			break;
		case 'j':
			c->json = true;
			break;
		default:
			return cli_usage_error(&cli_cmd_traps, NULL);
		}
	}
	if (optind != argc)
		return cli_usage_error(&cli_cmd_traps, "unexpected argument");
	if (parse_int64(limit, &n) < 0 || n < 1 || n > 1000)
		return cli_usage_error(&cli_cmd_traps,
				       "--limit must be a number from 1 to 1000");
	path = xasprintf("/api/v1/traps/unknown?limit=%lld", (long long)n);
	done = cli_fetch_list(c, path, "traps", &doc, &list, &status);
	free(path);
	if (done)
		return status;
	if (cli_expect(doc, "kept", JSON_INTEGER) == NULL) {
		json_decref(doc);
		return 1;
	}
	if (json_array_size(list) > 0)
		printf("%-16s  %-39s %-3s %-24s %s\n", "RECEIVED", "SOURCE", "VER",
		       "TRAP", "IDENTITY");
	json_array_foreach(list, i, t) {
		char at[32], id[512];

		cli_short_time(cli_str(t, "received_at"), at, sizeof(at));
		identity(t, id, sizeof(id));
		printf("%-16s  %-39s %-3s %-24s %s\n", at, cli_str(t, "source"),
		       cli_str(t, "version"), cli_str(t, "trap"), id);
	}
	printf("%lld traps from unknown devices kept (newest %zu shown); add"
	       " a device with hosts.<name>.snmp to accept its traps\n",
	       (long long)json_integer_value(json_object_get(doc, "kept")),
	       json_array_size(list));
	json_decref(doc);
	return 0;
}

static int traps_run(struct client *c, int argc, char **argv)
{
	if (argc < 2 || strcmp(argv[1], "unknown") != 0)
		return cli_usage_error(&cli_cmd_traps,
				       argc < 2 ? "which traps?"
						: "unknown subcommand");
	return unknown_run(c, argc - 1, argv + 1);
}

const struct cli_command cli_cmd_traps = {
	.name = "traps",
	.synopsis = "traps unknown [--limit N] [--json]   traps from unknown devices, kept for review",
	.run = traps_run,
};
