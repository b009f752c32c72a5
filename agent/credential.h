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
 */
#ifndef TOCSIN_CREDENTIAL_H
#define TOCSIN_CREDENTIAL_H

#include <stddef.h>
#include <stdint.h>

struct transport;

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

/*
 * Ask the collector for a credential for host, authenticated with the
 * enrollment token t carries.  0 and *ret, or -errno with err saying why
 * (the collector's own words where it gave any).
 */
int credential_enroll(struct transport *t, const char *host,
		      struct credential_grant *ret, char *err, size_t errlen);

/* Trade the credential t carries for a new one.  As credential_enroll(). */
int credential_rotate(struct transport *t, struct credential_grant *ret,
		      char *err, size_t errlen);

/* The subcommands: tocsin-agent enroll ..., tocsin-agent rotate-credential. */
int credential_main_enroll(int argc, char **argv);
int credential_main_rotate(int argc, char **argv);

#endif
