/*
 * Webhooks to a ticket system the shop already runs: an HTTP POST of a
 * JSON payload built when the change was queued (generic, or shaped for
 * Zammad's ticket API), with the change's idempotency key both in the
 * payload ("idempotency_key") and as the Idempotency-Key header, so the
 * receiver can drop a delivery it has seen.  That is what makes the one
 * repeat our outbox can produce harmless: a crash after the receiver
 * accepted but before we marked the row sent.
 */
#ifndef TOCSIN_WEBHOOK_H
#define TOCSIN_WEBHOOK_H

#include <stddef.h>
#include <stdint.h>

struct notify_webhook;

#define WEBHOOK_REPLY_MAX 65536

/* 0 when the receiver answered 2xx, or -errno with err set. */
int webhook_send(const struct notify_webhook *w, const char *body,
		 const char *key, int64_t timeout_ms, char *err, size_t errlen);

#endif
