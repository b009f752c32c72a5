/*
 * Per-host credentials (PROTOCOL.md): enrollment with a customer's
 * enrollment token, the credential file, and rotation.
 *
 * The credential lives in state_dir/credential, mode 0600, first line the
 * secret (a comment line after it says what it is), replaced atomically
 * (temporary file, fsync, rename, fsync of the directory), so a crash
 * leaves either the old or the new secret, never half of one.  The agent
 * uses it as its bearer token when neither server.token nor
 * server.token_file is configured.
 *
 * The file functions live here; the requests to the collector (enroll,
 * rotate) in agent/grant.c, which only the deliverer links, and the
 * subcommands in agent/enroll.c.
 */
#ifndef TOCSIN_CREDENTIAL_H
#define TOCSIN_CREDENTIAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define CREDENTIAL_FILE "credential"
/* Longest secret we accept from a file or the collector. */
#define CREDENTIAL_MAX 1024

/* What the collector granted: POST /api/v1/enroll or .../rotate. */
struct credential_grant {
	char *host;	/* NULL after a rotation */
	char *customer; /* NULL after a rotation */
	int64_t id;
	char *secret;
};

void credential_grant_clear(struct credential_grant *g);

/* state_dir/credential, malloc'ed. */
char *credential_path(const char *state_dir);

/*
 * The first line of path, surrounding blanks removed: 0 and a malloc'ed
 * *ret_secret, -ENODATA when empty, -EFBIG when longer than
 * CREDENTIAL_MAX, -EINVAL when it holds control characters, else -errno.
 */
int credential_read(const char *path, char **ret_secret);

/*
 * Replace path atomically with the secret of g (mode 0600; owned by the
 * owner of its directory when we run as root, so that the daemon's user
 * can read what an administrator enrolled).  0 or -errno.
 */
int credential_store(const char *path, const struct credential_grant *g,
		     const char *server_url);

/* A secret has no blanks or control characters: it goes into a header. */
bool credential_secret_chars_ok(const char *s);

#endif
