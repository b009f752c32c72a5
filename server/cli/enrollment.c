/*
 * tocsin enrollment create|list|revoke: enrollment tokens for customers;
 * tocsin enrollment approve|approvals: an administrator's approval of the
 * next enrollment of a host that is in use or belongs to another customer.
 */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/config.h"
#include "../../common/util.h"
#include "cli.h"

static int create(struct client *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "customer", required_argument, NULL, 'c' },
		{ "expires", required_argument, NULL, 'e' },
		{ "max-uses", required_argument, NULL, 'm' },
		{ "hosts", required_argument, NULL, 'H' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	const char *customer = NULL, *expires = NULL, *hosts = NULL;
	int64_t max_uses = 0, ms;
	json_t *body, *doc;
	int opt, r = 0;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			customer = optarg;
			break;
		case 'e':
			if (parse_duration_ms(optarg, &ms) < 0 || ms <= 0)
				return cli_usage_error(&cli_cmd_enrollment,
						       "--expires takes a duration such as 7d or 12h");
			expires = optarg;
			break;
		case 'm':
			if (parse_int64(optarg, &max_uses) < 0 || max_uses < 1)
				return cli_usage_error(&cli_cmd_enrollment,
						       "--max-uses takes a positive number");
			break;
		case 'H':
			hosts = optarg;
			break;
		case 'j':
			c->json = true;
			break;
		default:
			return cli_usage_error(&cli_cmd_enrollment, NULL);
		}
	}
	if (customer == NULL || optind != argc)
		return cli_usage_error(&cli_cmd_enrollment,
				       "create needs --customer and nothing else");
	body = json_pack("{s:s}", "customer", customer);
	if (expires != NULL)
		json_object_set_new(body, "expires_in", json_string(expires));
	if (max_uses > 0)
		json_object_set_new(body, "max_uses", json_integer(max_uses));
	if (hosts != NULL)
		json_object_set_new(body, "hosts", json_string(hosts));
	doc = cli_request(c, "POST", "/api/v1/enrollment-tokens", body);
	json_decref(body);
	if (doc == NULL)
		return 1;
	if (c->json) {
		cli_print_json(doc);
	} else if (cli_expect(doc, "id", JSON_INTEGER) == NULL ||
		   cli_expect(doc, "token", JSON_STRING) == NULL) {
		r = 1;
	} else {
		printf("enrollment token %lld for customer %s%s%s, valid until %s%s\n",
		       (long long)json_integer_value(json_object_get(doc, "id")),
		       cli_str(doc, "customer"),
		       hosts ? ", hosts matching " : "", hosts ? hosts : "",
		       cli_str(doc, "expires_at"),
		       max_uses > 0 ? " or its last use" : "");
		printf("\n  %s\n\n", cli_str(doc, "token"));
		printf("It is shown only now.  On each host of %s run:\n"
		       "  tocsin-agent enroll --server URL --token TOKEN\n",
		       cli_str(doc, "customer"));
	}
	json_decref(doc);
	return r;
}

static int list(struct client *c, int argc, char **argv)
{
	json_t *doc, *list, *t;
	int status;
	size_t i;

	if (argc > 1 && strcmp(argv[1], "--json") == 0)
		c->json = true;
	else if (argc > 1)
		return cli_usage_error(&cli_cmd_enrollment, "list takes only --json");
	if (cli_fetch_list(c, "/api/v1/enrollment-tokens", "enrollment_tokens",
			   &doc, &list, &status))
		return status;
	printf("%-5s %-16s %-8s %-16s %-11s %s\n", "ID", "CUSTOMER", "STATE",
	       "EXPIRES", "USES", "CREATED BY");
	json_array_foreach(list, i, t) {
		char expires[32], uses[32];
		json_t *max = json_object_get(t, "max_uses");

		cli_short_time(cli_str(t, "expires_at"), expires, sizeof(expires));
		if (json_is_integer(max))
			snprintf(uses, sizeof(uses), "%lld/%lld",
				 (long long)json_integer_value(json_object_get(t, "uses")),
				 (long long)json_integer_value(max));
		else
			snprintf(uses, sizeof(uses), "%lld",
				 (long long)json_integer_value(json_object_get(t, "uses")));
		printf("%-5lld %-16s %-8s %-16s %-11s %s\n",
		       (long long)json_integer_value(json_object_get(t, "id")),
		       cli_str(t, "customer"), cli_str(t, "state"), expires, uses,
		       cli_str(t, "created_by"));
	}
	json_decref(doc);
	return 0;
}

/* approve HOST [--customer C] [--expires 1h] [--json] */
static int approve(struct client *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "customer", required_argument, NULL, 'c' },
		{ "expires", required_argument, NULL, 'e' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	const char *customer = NULL, *expires = NULL;
	json_t *body, *doc;
	int64_t ms;
	int opt, r = 0;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'c':
			customer = optarg;
			break;
		case 'e':
			if (parse_duration_ms(optarg, &ms) < 0 || ms <= 0)
				return cli_usage_error(&cli_cmd_enrollment,
						       "--expires takes a duration such as 1h or 30m");
			expires = optarg;
			break;
		case 'j':
			c->json = true;
			break;
		default:
			return cli_usage_error(&cli_cmd_enrollment, NULL);
		}
	}
	if (optind != argc - 1)
		return cli_usage_error(&cli_cmd_enrollment,
				       "approve takes one host name");
	body = json_pack("{s:s}", "host", argv[optind]);
	if (customer != NULL)
		json_object_set_new(body, "customer", json_string(customer));
	if (expires != NULL)
		json_object_set_new(body, "expires_in", json_string(expires));
	doc = cli_request(c, "POST", "/api/v1/enrollment-approvals", body);
	json_decref(body);
	if (doc == NULL)
		return 1;
	if (c->json)
		cli_print_json(doc);
	else if (cli_expect(doc, "id", JSON_INTEGER) == NULL)
		r = 1;
	else
		printf("approval %lld: the next enrollment of host %s%s%s may go ahead until %s\n",
		       (long long)json_integer_value(json_object_get(doc, "id")),
		       cli_str(doc, "host"), customer ? " into customer " : "",
		       customer ? customer : "", cli_str(doc, "expires_at"));
	json_decref(doc);
	return r;
}

static int approvals(struct client *c, int argc, char **argv)
{
	json_t *doc, *list, *a, *cust;
	int status;
	size_t i;

	if (argc > 1 && strcmp(argv[1], "--json") == 0)
		c->json = true;
	else if (argc > 1)
		return cli_usage_error(&cli_cmd_enrollment,
				       "approvals takes only --json");
	if (cli_fetch_list(c, "/api/v1/enrollment-approvals", "enrollment_approvals",
			   &doc, &list, &status))
		return status;
	printf("%-5s %-24s %-16s %-8s %-16s %s\n", "ID", "HOST", "CUSTOMER",
	       "STATE", "EXPIRES", "APPROVED BY");
	json_array_foreach(list, i, a) {
		char expires[32];

		cust = json_object_get(a, "customer");
		cli_short_time(cli_str(a, "expires_at"), expires, sizeof(expires));
		printf("%-5lld %-24s %-16s %-8s %-16s %s\n",
		       (long long)json_integer_value(json_object_get(a, "id")),
		       cli_str(a, "host"),
		       json_is_string(cust) ? json_string_value(cust) : "(its own)",
		       cli_str(a, "state"), expires, cli_str(a, "created_by"));
	}
	json_decref(doc);
	return 0;
}

/* DELETE path/ID for the revoke subcommands of both groups. */
int cli_revoke(const struct cli_command *cmd, struct client *c, int argc,
	       char **argv, const char *path, const char *what)
{
	json_t *doc;
	int64_t id;
	char *url;
	int r = 0;

	if (argc != 2 || parse_int64(argv[1], &id) < 0 || id < 1)
		return cli_usage_error(cmd, "revoke takes one id");
	url = xasprintf("%s/%lld", path, (long long)id);
	doc = cli_request(c, "DELETE", url, NULL);
	free(url);
	if (doc == NULL)
		return 1;
	if (cli_expect(doc, "revoked_at", JSON_STRING) == NULL)
		r = 1;
	else
		printf("%s %lld revoked at %s\n", what, (long long)id,
		       cli_str(doc, "revoked_at"));
	json_decref(doc);
	return r;
}

static int enrollment_run(struct client *c, int argc, char **argv)
{
	if (argc < 2)
		return cli_usage_error(&cli_cmd_enrollment,
				       "create, list, revoke, approve or approvals?");
	/* The subcommand's options start after its name. */
	if (strcmp(argv[1], "create") == 0)
		return create(c, argc - 1, argv + 1);
	if (strcmp(argv[1], "list") == 0)
		return list(c, argc - 1, argv + 1);
	if (strcmp(argv[1], "revoke") == 0)
		return cli_revoke(&cli_cmd_enrollment, c, argc - 1, argv + 1,
				  "/api/v1/enrollment-tokens", "enrollment token");
	if (strcmp(argv[1], "approve") == 0)
		return approve(c, argc - 1, argv + 1);
	if (strcmp(argv[1], "approvals") == 0)
		return approvals(c, argc - 1, argv + 1);
	return cli_usage_error(&cli_cmd_enrollment,
			       "create, list, revoke, approve or approvals?");
}

const struct cli_command cli_cmd_enrollment = {
	.name = "enrollment",
	.synopsis = "enrollment create --customer C [--expires 7d] [--max-uses N] [--hosts PATTERN] | list | revoke ID | approve HOST [--customer C] [--expires 1h] | approvals   enrollment tokens and approvals (admin)",
	.run = enrollment_run,
};
