/*
 * Webhooks to a ticket system the shop already runs: an HTTP request with
 * a JSON payload built when the change was queued (generic, or shaped for
 * Zammad's ticket API), with the change's idempotency key both in the
 * payload ("idempotency_key") and as the Idempotency-Key header, so the
 * receiver can drop a delivery it has seen.  That is what makes the one
 * repeat our outbox can produce harmless: a crash after the receiver
 * accepted but before we marked the row sent.
 */
#ifndef TOCSIN_WEBHOOK_H
#define TOCSIN_WEBHOOK_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct notify_webhook;

#define WEBHOOK_REPLY_MAX 65536

/*
 * POST (or, with put, PUT) body to url for w (its headers and timeout).
 * 0 when the receiver answered 2xx, with its reply (at most
 * WEBHOOK_REPLY_MAX bytes, malloc'ed) in *ret_reply when that is not
 * NULL.  -EAGAIN when the receiver is unreachable or overloaded (no
 * answer in time, 5xx, 408, 429): the whole target should wait;
 * -EIO when it refused this one request (another 4xx).  err says why.
 * Once *stop is set (the server is stopping) the request is abandoned
 * within about a second (-ECANCELED).
 */
int webhook_send(const struct notify_webhook *w, const char *url, bool put,
		 const char *body, const char *key, char **ret_reply,
		 const atomic_bool *stop, char *err, size_t errlen);

#endif
