/*
 * Valid UTF-8 for JSON; see utf8.h.
 */
#include "utf8.h"

#include <stdlib.h>
#include <string.h>

#include "util.h"

enum scan {
	SCAN_INVALID,
	SCAN_VALID,
	SCAN_PARTIAL, /* a valid start of a character that the end cuts off */
};

/*
 * The character at s (n > 0 bytes left): its length in *ret_len when
 * valid.  Follows RFC 3629's table, so overlong forms, surrogates and
 * code points past U+10FFFF are invalid from their second byte on.
 */
static enum scan scan(const unsigned char *s, size_t n, size_t *ret_len)
{
	unsigned char lo = 0x80, hi = 0xbf;
	size_t need;

	if (s[0] < 0x80) {
		*ret_len = 1;
		return SCAN_VALID;
	}
	if (s[0] >= 0xc2 && s[0] <= 0xdf)
		need = 2;
	else if (s[0] >= 0xe0 && s[0] <= 0xef)
		need = 3;
	else if (s[0] >= 0xf0 && s[0] <= 0xf4)
		need = 4;
	else
		return SCAN_INVALID;
	if (s[0] == 0xe0)
		lo = 0xa0;
	else if (s[0] == 0xed)
		hi = 0x9f;
	else if (s[0] == 0xf0)
		lo = 0x90;
	else if (s[0] == 0xf4)
		hi = 0x8f;
	for (size_t i = 1; i < need; i++) {
		if (i == n)
			return SCAN_PARTIAL;
		if (s[i] < (i == 1 ? lo : 0x80) || s[i] > (i == 1 ? hi : 0xbf))
			return SCAN_INVALID;
	}
	*ret_len = need;
	return SCAN_VALID;
}

/* Back o up to the start of the character dst[o] is in (dst is valid). */
static size_t char_start(const char *dst, size_t o)
{
	while (o > 0 && ((unsigned char)dst[o] & 0xc0) == 0x80)
		o--;
	return o;
}

size_t utf8_sanitize(char *dst, size_t size, const char *src, size_t len,
		     unsigned flags)
{
	const unsigned char *s = (const unsigned char *)src;
	size_t i = 0, o = 0;

	if (size == 0)
		return 0;
	while (i < len) {
		size_t n = 1;
		enum scan sc = scan(s + i, len - i, &n);

		if (sc == SCAN_PARTIAL && (flags & UTF8_TRUNCATED)) {
			i = len; /* cut off before it reached us */
			break;
		}
		if (sc != SCAN_VALID ||
		    (n == 1 && (s[i] < 0x20 || s[i] == 0x7f) && s[i] != '\t' &&
		     !(s[i] == '\n' && (flags & UTF8_KEEP_NEWLINES))) ||
		    (n == 2 && (flags & UTF8_NO_C1) && s[i] == 0xc2 &&
		     s[i + 1] < 0xa0)) {
			if (o + 1 >= size)
				break;
			dst[o++] = s[i] == '\r' || s[i] == '\n' ? ' ' : '?';
			i += sc == SCAN_VALID ? n : 1;
			continue;
		}
		if (o + n >= size)
			break;
		memcpy(dst + o, s + i, n);
		o += n;
		i += n;
	}
	if (i < len && (flags & UTF8_ELLIPSIS) && size >= 4) {
		/* make room for the three bytes of U+2026 */
		if (o + 3 >= size)
			o = char_start(dst, size - 4);
		memcpy(dst + o, "\xe2\x80\xa6", 3);
		o += 3;
	}
	dst[o] = '\0';
	return o;
}

char *utf8_dup(const char *s, size_t n)
{
	/* a byte becomes at most one byte: '?' for one, or itself */
	char *d = xcalloc(1, n + 1);

	utf8_sanitize(d, n + 1, s, n, UTF8_KEEP_NEWLINES);
	return d;
}

bool utf8_valid(const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t left = strlen(s);

	while (left > 0) {
		size_t n = 1;

		if (scan(p, left, &n) != SCAN_VALID)
			return false;
		p += n;
		left -= n;
	}
	return true;
}

json_t *utf8_json_string(const char *s)
{
	json_t *j;
	char *clean;

	if (s == NULL)
		return NULL;
	if (utf8_valid(s))
		return json_string(s);
	clean = utf8_dup(s, strlen(s));
	j = json_string(clean);
	free(clean);
	return j;
}
