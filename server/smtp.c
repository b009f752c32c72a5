#include "smtp.h"

#include <curl/curl.h>
#include <errno.h>
#include <sodium.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/util.h"
#include "notify.h"

struct buf {
	char *p;
	size_t len, cap;
};

static void put(struct buf *b, const char *s, size_t n)
{
	if (b->len + n + 1 > b->cap) {
		b->cap = (b->len + n + 1) * 2;
		b->p = xreallocarray(b->p, b->cap, 1);
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void puts_(struct buf *b, const char *s)
{
	put(b, s, strlen(s));
}

/* A header value on one line: CR and LF become spaces. */
static void put_value(struct buf *b, const char *v)
{
	for (; *v; v++) {
		char c = (*v == '\r' || *v == '\n') ? ' ' : *v;

		put(b, &c, 1);
	}
}

static bool ascii(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s >= 0x80)
			return false;
	return true;
}

/* RFC 2047: =?UTF-8?B?...?= words of at most 45 bytes, whole characters. */
static void put_encoded(struct buf *b, const char *v)
{
	size_t len = strlen(v), i = 0;

	while (i < len) {
		size_t n = len - i > 45 ? 45 : len - i;
		char enc[128];

		while (i + n < len && ((unsigned char)v[i + n] & 0xc0) == 0x80)
			n--;
		sodium_bin2base64(enc, sizeof(enc), (const unsigned char *)v + i, n,
				  sodium_base64_VARIANT_ORIGINAL);
		if (i > 0)
			puts_(b, "\r\n ");
		puts_(b, "=?UTF-8?B?");
		puts_(b, enc);
		puts_(b, "?=");
		i += n;
	}
}

/*
 * An ASCII subject folded at its spaces into lines of at most 78
 * characters where it can be (RFC 5322 2.1.1), so no line comes near the
 * 998 that servers may cut or refuse.  A word too long for any line makes
 * it go as encoded words instead, which fold anywhere.  clean has no CR
 * or LF.
 */
static void put_subject(struct buf *b, const char *clean)
{
	size_t col = strlen("Subject: ");
	const char *p = clean;

	for (const char *w = clean; *w; w += strcspn(w, " "), w += strspn(w, " "))
		if (strcspn(w, " ") > SMTP_LINE_MAX - 2) {
			put_encoded(b, clean);
			return;
		}
	while (*p) {
		size_t spaces = strspn(p, " "), word = strcspn(p + spaces, " ");

		if (spaces > 0 && col + spaces + word > SMTP_FOLD_AT) {
			puts_(b, "\r\n");
			col = 0;
		}
		put(b, p, spaces + word);
		col += spaces + word;
		p += spaces + word;
	}
}

static void header(struct buf *b, const char *name, const char *value)
{
	puts_(b, name);
	puts_(b, ": ");
	put_value(b, value);
	puts_(b, "\r\n");
}

char *smtp_message(const struct notify_config *nc, const char *to,
		   const char *subject, const char *body, const char *key,
		   int64_t now_ms)
{
	struct buf b = { 0 };
	char date[64], id[160];
	time_t t = (time_t)(now_ms / 1000);
	struct tm tm;
	char *clean = xstrdup(subject);

	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	snprintf(id, sizeof(id), "<%s%s>", key,
		 strchr(nc->from_addr, '@') ? strchr(nc->from_addr, '@') : "@tocsin");
	header(&b, "Date", date);
	header(&b, "From", nc->from);
	header(&b, "To", to);
	for (char *p = clean; *p; p++)
		if (*p == '\r' || *p == '\n')
			*p = ' ';
	puts_(&b, "Subject: ");
	if (ascii(clean))
		put_subject(&b, clean);
	else
		put_encoded(&b, clean);
	puts_(&b, "\r\n");
	free(clean);
	header(&b, "Message-ID", id);
	header(&b, "Auto-Submitted", "auto-generated");
	header(&b, "MIME-Version", "1.0");
	header(&b, "Content-Type", "text/plain; charset=utf-8");
	header(&b, "Content-Transfer-Encoding", "8bit");
	puts_(&b, "\r\n");
	/* Body lines end in CRLF; a lone CR would be ambiguous, drop it. */
	for (const char *p = body; *p; p++) {
		if (*p == '\r')
			continue;
		if (*p == '\n')
			puts_(&b, "\r\n");
		else
			put(&b, p, 1);
	}
	if (b.len < 2 || strcmp(b.p + b.len - 2, "\r\n") != 0)
		puts_(&b, "\r\n");
	return b.p;
}

struct upload {
	const char *p;
	size_t left;
};

static size_t on_read(char *ptr, size_t size, size_t n, void *arg)
{
	struct upload *u = arg;
	size_t len = size * n;

	if (len > u->left)
		len = u->left;
	memcpy(ptr, u->p, len);
	u->p += len;
	u->left -= len;
	return len;
}

/* libcurl asks about once a second, even while nothing moves. */
static int on_progress(void *arg, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	(void)a, (void)b, (void)c, (void)d;
	return arg && atomic_load((const atomic_bool *)arg) ? 1 : 0;
}

int smtp_send(const struct notify_config *nc, const char *to,
	      const char *subject, const char *body, const char *key,
	      const atomic_bool *stop, char *err, size_t errlen)
{
	struct curl_slist *rcpts = NULL;
	char *msg = smtp_message(nc, to, subject, body, key, time_now_ms());
	char *from = xasprintf("<%s>", nc->from_addr), *list = xstrdup(to);
	char curl_err[CURL_ERROR_SIZE] = "";
	struct upload up = { msg, strlen(msg) };
	CURLcode rc;
	CURL *curl;
	int r = 0;

	for (char *save = NULL, *a = strtok_r(list, ",", &save); a;
	     a = strtok_r(NULL, ",", &save)) {
		char *rcpt = xasprintf("<%s>", a);

		rcpts = curl_slist_append(rcpts, rcpt);
		free(rcpt);
	}
	curl = curl_easy_init();
	if (curl == NULL) {
		r = -EAGAIN;
		snprintf(err, errlen, "cannot initialise libcurl");
		goto out;
	}
	curl_easy_setopt(curl, CURLOPT_URL, nc->smtp_url);
	curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "smtp,smtps");
	curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(curl, CURLOPT_ERRORBUFFER, curl_err);
	curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, (long)nc->smtp_timeout_ms);
	curl_easy_setopt(curl, CURLOPT_USE_SSL,
			 nc->smtp_tls == NOTIFY_TLS_REQUIRED ? (long)CURLUSESSL_ALL
			 : nc->smtp_tls == NOTIFY_TLS_TRY    ? (long)CURLUSESSL_TRY
							     : (long)CURLUSESSL_NONE);
	if (nc->smtp_ca_file) {
		/* the only trust anchor then: not also libcurl's system directory */
		curl_easy_setopt(curl, CURLOPT_CAINFO, nc->smtp_ca_file);
		curl_easy_setopt(curl, CURLOPT_CAPATH, NULL);
	}
	if (nc->smtp_user)
		curl_easy_setopt(curl, CURLOPT_USERNAME, nc->smtp_user);
	if (nc->smtp_password)
		curl_easy_setopt(curl, CURLOPT_PASSWORD, nc->smtp_password);
	curl_easy_setopt(curl, CURLOPT_MAIL_FROM, from);
	curl_easy_setopt(curl, CURLOPT_MAIL_RCPT, rcpts);
	curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_read);
	curl_easy_setopt(curl, CURLOPT_READDATA, &up);
	curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
	curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
	curl_easy_setopt(curl, CURLOPT_XFERINFODATA, (void *)(uintptr_t)stop);
	rc = curl_easy_perform(curl);
	if (rc == CURLE_ABORTED_BY_CALLBACK) {
		snprintf(err, errlen, "SMTP %s: abandoned, the server is stopping",
			 nc->smtp_url_shown);
		r = -ECANCELED;
	} else if (rc != CURLE_OK) {
		long code = 0;

		curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
		/* Never the configured URL itself: it may carry a password. */
		snprintf(err, errlen, "SMTP %s: %s (server code %ld)", nc->smtp_url_shown,
			 curl_err[0] ? curl_err : curl_easy_strerror(rc), code);
		/* 5xx is the server's final word on this mail (RFC 5321 4.2.1). */
		r = code >= 500 && code < 600 ? -EINVAL : -EAGAIN;
	}
	curl_easy_cleanup(curl);
out:
	curl_slist_free_all(rcpts);
	free(list);
	free(from);
	free(msg);
	return r;
}
