/*
 * tocsin account list|set|delete: the web console's accounts (admin).
 *
 * set reads the password from the terminal without echo, or as the first
 * line of standard input when that is not a terminal (for scripts), so
 * that it never shows in argv or the shell's history.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "../../common/util.h"
#include "cli.h"

#define PASSWORD_MAX 1024

/* One line of fp into buf without its newline: 0, or -EINVAL when too long or absent. */
static int read_line(FILE *fp, char *buf, size_t size)
{
	size_t len;

	if (fgets(buf, (int)size, fp) == NULL)
		return -EINVAL;
	len = strcspn(buf, "\n");
	if (buf[len] != '\n' && !feof(fp))
		return -EINVAL;
	buf[len] = '\0';
	return 0;
}

/* The password from the terminal (twice, without echo) or stdin's first line. */
static int read_password(char *buf, size_t size)
{
	struct termios old, quiet;
	char again[PASSWORD_MAX + 2];
	int r;

	if (!isatty(STDIN_FILENO))
		return read_line(stdin, buf, size);
	if (tcgetattr(STDIN_FILENO, &old) < 0)
		return -errno;
	quiet = old;
	quiet.c_lflag &= ~(tcflag_t)ECHO;
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet);
	fprintf(stderr, "password: ");
	r = read_line(stdin, buf, size);
	if (r == 0) {
		fprintf(stderr, "\nagain: ");
		r = read_line(stdin, again, sizeof(again));
		if (r == 0 && strcmp(buf, again) != 0)
			r = -EBADMSG;
	}
	fprintf(stderr, "\n");
	tcsetattr(STDIN_FILENO, TCSAFLUSH, &old);
	explicit_bzero(again, sizeof(again));
	return r;
}

static int set(struct client *c, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "role", required_argument, NULL, 'r' },
		{ "json", no_argument, NULL, 'j' },
		{ NULL, 0, NULL, 0 },
	};
	const char *role = NULL;
	char password[PASSWORD_MAX + 2], *name, *path;
	json_t *body, *doc;
	int opt, r;

	while ((opt = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (opt) {
		case 'r':
			role = optarg;
			break;
		case 'j':
			c->json = true;
			break;
		default:
			return cli_usage_error(&cli_cmd_account, NULL);
		}
	}
	if (optind + 1 != argc || role == NULL)
		return cli_usage_error(&cli_cmd_account,
				       "set needs a NAME and --role");
	r = read_password(password, sizeof(password));
	if (r == -EBADMSG) {
		fprintf(stderr, "tocsin account: the passwords differ\n");
		return 1;
	}
	if (r < 0) {
		fprintf(stderr, "tocsin account: no password read (one line of at most %d bytes)\n",
			PASSWORD_MAX);
		return 1;
	}
	name = cli_escape(argv[optind]);
	path = xasprintf("/api/v1/accounts/%s", name);
	body = json_pack("{s:s, s:s}", "role", role, "password", password);
	explicit_bzero(password, sizeof(password));
	doc = cli_request(c, "PUT", path, body);
	json_decref(body);
	free(path);
	free(name);
	if (doc == NULL)
		return 1;
	if (c->json)
		cli_print_json(doc);
	else if (cli_expect(doc, "name", JSON_STRING) == NULL)
		r = 1;
	else
		printf("account %s: role %s\n", cli_str(doc, "name"),
		       cli_str(doc, "role"));
	json_decref(doc);
	return r;
}

static int list(struct client *c, int argc, char **argv)
{
	json_t *doc, *list, *a;
	size_t i;
	int status;

	if (argc > 2 || (argc == 2 && strcmp(argv[1], "--json") != 0))
		return cli_usage_error(&cli_cmd_account, "list takes only --json");
	c->json = argc == 2;
	if (cli_fetch_list(c, "/api/v1/accounts", "accounts", &doc, &list, &status))
		return status;
	printf("%-24s %-10s %-16s %s\n", "NAME", "ROLE", "UPDATED", "CREATED BY");
	json_array_foreach(list, i, a) {
		char updated[32];

		cli_short_time(cli_str(a, "updated"), updated, sizeof(updated));
		printf("%-24s %-10s %-16s %s\n", cli_str(a, "name"),
		       cli_str(a, "role"), updated, cli_str(a, "created_by"));
	}
	json_decref(doc);
	return 0;
}

static int delete(struct client *c, int argc, char **argv)
{
	char *name, *path;
	json_t *doc;
	int r = 0;

	if (argc != 2)
		return cli_usage_error(&cli_cmd_account, "delete needs a NAME");
	name = cli_escape(argv[1]);
	path = xasprintf("/api/v1/accounts/%s", name);
	doc = cli_request(c, "DELETE", path, NULL);
	free(path);
	free(name);
	if (doc == NULL)
		return 1;
	if (cli_expect(doc, "deleted", JSON_STRING) == NULL)
		r = 1;
	else
		printf("account %s deleted\n", cli_str(doc, "deleted"));
	json_decref(doc);
	return r;
}

static int account_run(struct client *c, int argc, char **argv)
{
	if (argc >= 2 && strcmp(argv[1], "list") == 0)
		return list(c, argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "set") == 0)
		return set(c, argc - 1, argv + 1);
	if (argc >= 2 && strcmp(argv[1], "delete") == 0)
		return delete(c, argc - 1, argv + 1);
	return cli_usage_error(&cli_cmd_account, "list, set or delete?");
}

const struct cli_command cli_cmd_account = {
	.name = "account",
	.synopsis = "account list | set NAME --role viewer|technician|admin | delete NAME   console accounts (admin; set reads the password)",
	.run = account_run,
};
