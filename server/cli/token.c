/*
 * tocsin's bearer token: read from a file, and checked before it goes into
 * the Authorization header.
 *
 * A file that holds a token (a --token-file, a cli.yaml with token:) must
 * be the user's alone, as ssh insists for a private key and as the agent
 * keeps its credential (mode 0600): a token is an identity, and another
 * user who can read it acts as us.  We refuse rather than warn, since a
 * warning comes too late for a token already read by someone else.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../common/util.h"
#include "cli.h"

/* Far above any token the server issues, small enough to read at once. */
#define TOKEN_FILE_MAX 4096

/* 0 when st gives group and others no access to path, else -EPERM after saying so. */
static int check_private(const char *path, const struct stat *st)
{
	if ((st->st_mode & (S_IRWXG | S_IRWXO)) == 0)
		return 0;
	fprintf(stderr,
		"tocsin: %s holds a token but its mode %04o lets other users read or change it: run chmod 600 %s\n",
		path, (unsigned)(st->st_mode & 07777), path);
	return -EPERM;
}

int cli_private_file(const char *path)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		fprintf(stderr, "tocsin: cannot read %s: %s\n", path, strerror(errno));
		return -errno;
	}
	return check_private(path, &st);
}

int cli_token_check(const char *token, size_t len, const char *source)
{
	if (len == 0) {
		fprintf(stderr, "tocsin: the token from %s is empty\n", source);
		return -EINVAL;
	}
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)token[i];

		if (ch >= 0x20 && ch != 0x7f)
			continue;
		fprintf(stderr,
			"tocsin: the token from %s holds a control character (byte 0x%02x at offset %zu): a token is one line of printable characters\n",
			source, ch, i);
		return -EINVAL;
	}
	return 0;
}

int cli_token_read(const char *path, char **ret_token)
{
	char buf[TOKEN_FILE_MAX + 2];
	size_t len = 0;
	struct stat st;
	ssize_t n;
	int fd, r;

	fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0 || fstat(fd, &st) < 0) {
		r = -errno;
		fprintf(stderr, "tocsin: cannot read the token file %s: %s\n", path,
			strerror(errno));
		goto out;
	}
	r = check_private(path, &st);
	if (r < 0)
		goto out;
	while (len < sizeof(buf) - 1 &&
	       (n = read(fd, buf + len, sizeof(buf) - 1 - len)) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			r = -errno;
			fprintf(stderr, "tocsin: cannot read the token file %s: %s\n",
				path, strerror(errno));
			goto out;
		}
		len += (size_t)n;
	}
	if (len > TOKEN_FILE_MAX) {
		fprintf(stderr, "tocsin: the token file %s is larger than %d bytes: not a token\n",
			path, TOKEN_FILE_MAX);
		r = -EFBIG;
		goto out;
	}
	/* An editor ends the file with a newline; it is not the token's. */
	if (len > 0 && buf[len - 1] == '\n')
		len--;
	r = cli_token_check(buf, len, path);
	if (r == 0) {
		buf[len] = '\0';
		*ret_token = xstrdup(buf);
	}
out:
	explicit_bzero(buf, sizeof(buf));
	if (fd >= 0)
		close(fd);
	return r;
}
