/*
 * Mail over SMTP with libcurl: smtp:// with STARTTLS (required, tried or
 * off: notify.smtp.starttls), smtps:// with TLS from the start, and
 * authentication.  The message is plain UTF-8 text from the system's own
 * address (notify.from).
 *
 * Header injection is impossible by construction: every header value has
 * its CR and LF replaced by spaces before it is written, and a subject
 * that is not ASCII is sent as RFC 2047 encoded words.  Subjects are
 * folded, so no header line exceeds 998 characters.
 */
#ifndef TOCSIN_SMTP_H
#define TOCSIN_SMTP_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

struct notify_config;

/*
 * The full message (headers and CRLF body), malloc'ed.  to is a comma-
 * separated list of addresses; key makes the Message-ID, so a resent
 * message has the same one.
 */
char *smtp_message(const struct notify_config *nc, const char *to,
		   const char *subject, const char *body, const char *key,
		   int64_t now_ms);
/* Header lines: folded at 78 where possible, never beyond 998 (RFC 5322). */
#define SMTP_FOLD_AT 78
#define SMTP_LINE_MAX 998

/*
 * Send it.  0 once the server accepted it; -EINVAL when the server
 * refused it for good (5xx: retrying cannot help); -EAGAIN when it could
 * not be reached or asked us to come back (the whole mail lane waits).
 * err says why, with the URL shown without its credentials.  Once *stop
 * is set (NULL: never) the send is abandoned within about a second
 * (-ECANCELED).
 */
int smtp_send(const struct notify_config *nc, const char *to,
	      const char *subject, const char *body, const char *key,
	      const atomic_bool *stop, char *err, size_t errlen);

#endif
