#include "credential.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../common/util.h"

void credential_grant_clear(struct credential_grant *g)
{
	if (g == NULL)
		return;
	free(g->host);
	free(g->customer);
	if (g->secret)
		explicit_bzero(g->secret, strlen(g->secret));
	free(g->secret);
	*g = (struct credential_grant){ 0 };
}

char *credential_path(const char *state_dir)
{
	return xasprintf("%s/%s", state_dir, CREDENTIAL_FILE);
}

bool credential_secret_chars_ok(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

int credential_read(const char *path, char **ret_secret)
{
	char buf[CREDENTIAL_MAX + 2];
	FILE *fp = fopen(path, "re");
	size_t n, start = 0;
	int r = 0;

	if (fp == NULL)
		return -errno;
	n = fread(buf, 1, sizeof(buf) - 1, fp);
	if (ferror(fp))
		r = -EIO;
	fclose(fp);
	if (r < 0)
		return r;
	buf[n] = '\0';
	buf[strcspn(buf, "\r\n")] = '\0';
	n = strlen(buf);
	while (n > 0 && (buf[n - 1] == ' ' || buf[n - 1] == '\t'))
		buf[--n] = '\0';
	while (buf[start] == ' ' || buf[start] == '\t')
		start++;
	if (buf[start] == '\0')
		r = -ENODATA;
	else if (n - start > CREDENTIAL_MAX)
		r = -EFBIG;
	else if (!credential_secret_chars_ok(buf + start))
		r = -EINVAL;
	else
		*ret_secret = xstrdup(buf + start);
	explicit_bzero(buf, sizeof(buf));
	return r;
}

int credential_store(const char *path, const struct credential_grant *g,
		     const char *server_url)
{
	char at[TIME_RFC3339_LEN], *text, *dir, *slash;
	struct stat st;
	int r;

	time_format_rfc3339(time_now_ms(), at);
	if (g->host != NULL)
		text = xasprintf("%s\n# tocsin-agent credential %lld of host %s (customer %s) from %s, %s\n",
				 g->secret, (long long)g->id, g->host,
				 g->customer ? g->customer : "-", server_url, at);
	else
		text = xasprintf("%s\n# tocsin-agent credential %lld from %s, rotated %s\n",
				 g->secret, (long long)g->id, server_url, at);
	r = write_file_atomic(path, text, 0600);
	explicit_bzero(text, strlen(text));
	free(text);
	if (r < 0 || geteuid() != 0)
		return r;
	/* root enrolled for a daemon that runs as its own user */
	dir = xstrdup(path);
	slash = strrchr(dir, '/');
	if (slash == NULL)
		strlcpy_safe(dir, ".", strlen(dir) + 1);
	else
		slash[slash == dir ? 1 : 0] = '\0';
	if (stat(dir, &st) == 0 &&
	    (st.st_uid != 0 || st.st_gid != 0) &&
	    chown(path, st.st_uid, st.st_gid) < 0)
		r = -errno;
	free(dir);
	return r;
}

