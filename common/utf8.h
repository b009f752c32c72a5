/*
 * Text from outside (plugin output, log files, mount points, journal
 * fields) made fit for JSON, which carries valid UTF-8 only: jansson
 * refuses anything else, and a check result that cannot be encoded is an
 * event lost.  One policy for every such string: an invalid byte or a
 * control character becomes '?', a line break a space (or stays, when
 * asked), tabs stay; a string is cut only on a character boundary.
 */
#ifndef TOCSIN_UTF8_H
#define TOCSIN_UTF8_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

/* Keep '\n' (a '\r' still becomes a space). */
#define UTF8_KEEP_NEWLINES 0x1u
/* When src does not fit, end dst with "…" (U+2026, 3 bytes). */
#define UTF8_ELLIPSIS 0x2u
/* src was cut by a limit of ours (a read, a buffer): a character that
 * the cut split at its very end is dropped, not shown as '?'. */
#define UTF8_TRUNCATED 0x4u
/* A C1 control (U+0080 to U+009F) becomes '?' too: for text shown on a
 * terminal, some of which take U+009B for "ESC [" and U+009D for "ESC ]". */
#define UTF8_NO_C1 0x8u

/*
 * Copy len bytes of src into dst (size bytes, size > 0) as valid UTF-8
 * under the policy above, always NUL-terminated.  Returns the length
 * written.  With UTF8_ELLIPSIS and size of at least 4, a text that had to
 * be cut ends in "…" within size.
 */
size_t utf8_sanitize(char *dst, size_t size, const char *src, size_t len,
		     unsigned flags);

/* A new string: the sanitized copy of n bytes of s (xcalloc'd). */
char *utf8_dup(const char *s, size_t n);

/* True when the NUL-terminated s is valid UTF-8. */
bool utf8_valid(const char *s);

/*
 * A JSON string of s, sanitized first when it is not valid UTF-8: never
 * NULL for a non-NULL s (jansson's json_string() is, for invalid text).
 * New reference.
 */
json_t *utf8_json_string(const char *s);

#endif
