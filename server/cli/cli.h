/*
 * tocsin, the technicians' command line: shared client plumbing.
 *
 * Each command lives in its own file under server/cli/ and is listed in
 * the table in main.c.  A command gets its own argv (argv[0] is the
 * command name) and parses its options with getopt_long.
 */
#ifndef TOCSIN_CLI_H
#define TOCSIN_CLI_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct client {
	char *url;
	char *token;
	bool json; /* --json: print the API's answer as it is */
};

struct cli_command {
	const char *name;
	const char *synopsis; /* one usage line, shown by tocsin --help */
	int (*run)(struct client *c, int argc, char **argv);
};

/*
 * Call the API: method on path (which starts with /api/...), with an
 * optional JSON body (borrowed).  Returns the decoded answer, or NULL after
 * printing why to stderr (unreachable server, HTTP error with the server's
 * message, malformed answer).
 */
json_t *cli_request(const struct client *c, const char *method,
		    const char *path, json_t *body);
json_t *cli_get(const struct client *c, const char *path);
/*
 * GET path for a command that prints a table of the answer's member key,
 * an array of objects: 1 when there is nothing more to do (the answer was
 * printed as JSON for --json: *ret_status 0; or it failed or had another
 * shape and said why: *ret_status 1), else 0, *ret_doc and *ret_list
 * (borrowed from *ret_doc).
 */
int cli_fetch_list(const struct client *c, const char *path, const char *key,
		   json_t **ret_doc, json_t **ret_list, int *ret_status);

/*
 * The answer's member key when it is of type; else NULL after saying on
 * stderr that the server's answer is not what we expected.  For the
 * commands that print an answer: they exit 1 then, never print zeros.
 */
json_t *cli_expect(json_t *doc, const char *key, json_type type);

/* A string member or "-". */
const char *cli_str(json_t *obj, const char *key);
/* "2026-11-22T21:53:07.123Z" -> "2026-11-22 21:53". */
void cli_short_time(const char *iso, char *buf, size_t size);
void cli_print_json(json_t *doc);
/* Percent-encode text for a URL query or path segment (malloc'ed). */
char *cli_escape(const char *text);
/* For a command's bad usage: print its synopsis, return 2. */
int cli_usage_error(const struct cli_command *cmd, const char *why);
/*
 * The arguments of a command on one object by id: [--json] ID, where
 * what names the object ("ticket").  0 and *ret_id, or the exit status of
 * a usage error already printed.
 */
int cli_id_args(const struct cli_command *cmd, struct client *c, int argc,
		char **argv, const char *what, int64_t *ret_id);

/*
 * The token (server/cli/token.c).  cli_token_read(): the content of a
 * token file less one trailing newline, when the file is the user's
 * alone (mode 0600 or stricter) and the token passes cli_token_check();
 * 0 and a malloc'ed *ret_token, else -errno after saying why.
 * cli_private_file(): 0 when group and others have no access to path,
 * else -errno after saying so.  cli_token_check(): 0 when the len bytes
 * of token are not empty and hold no control character (it goes into a
 * header), else -EINVAL after naming source.
 */
int cli_token_read(const char *path, char **ret_token);
int cli_private_file(const char *path);
int cli_token_check(const char *token, size_t len, const char *source);

/* Flapping, parent and children of a ticket (server/cli/lifecycle.c). */
void cli_print_lifecycle(json_t *ticket);

/*
 * DELETE path/ID for a "revoke ID" subcommand (argv[0] is "revoke"),
 * printing "<what> ID revoked at ..."; returns the exit status.
 */
int cli_revoke(const struct cli_command *cmd, struct client *c, int argc,
	       char **argv, const char *path, const char *what);

extern const struct cli_command cli_cmd_tickets;
extern const struct cli_command cli_cmd_ticket;
extern const struct cli_command cli_cmd_traps;
extern const struct cli_command cli_cmd_silence;
/* workflow.c: the helpdesk part of `tocsin ticket` */
void cli_print_helpdesk(json_t *t);
/* workflow.c: one command per ticket action */
extern const struct cli_command cli_cmd_ack, cli_cmd_start, cli_cmd_assign,
	cli_cmd_unassign, cli_cmd_comment, cli_cmd_ask, cli_cmd_escalate,
	cli_cmd_priority, cli_cmd_urgency, cli_cmd_impact, cli_cmd_merge,
	cli_cmd_resolve, cli_cmd_close, cli_cmd_reopen;
extern const struct cli_command cli_cmd_enrollment;
extern const struct cli_command cli_cmd_credential;
extern const struct cli_command cli_cmd_audit;
extern const struct cli_command cli_cmd_account;

#endif
