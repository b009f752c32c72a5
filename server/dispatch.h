/*
 * The sender of the notification outbox (hd_outbox): a thread that takes
 * the rows that are due, sends each (mail or webhook) and then marks it,
 * in a writer job, sent, or due again later with exponential backoff
 * (notify.retry: initial, doubling up to max, failed after attempts).
 *
 * A row is marked sent only after the peer accepted it, and a row stays
 * pending across restarts, so nothing queued is lost.  A crash between
 * the peer's acceptance and our mark repeats that one delivery after the
 * restart; the idempotency key (Message-ID, Idempotency-Key) lets the
 * receiver drop it.
 */
#ifndef TOCSIN_DISPATCH_H
#define TOCSIN_DISPATCH_H

struct desk;
struct dispatch;

#define DISPATCH_BATCH_MAX 16
/* Rows that are done are forgotten after notify.keep, looked at hourly. */
#define DISPATCH_PURGE_EVERY_MS (3600 * 1000LL)

int dispatch_start(struct desk *d, struct dispatch **ret);
void dispatch_stop(struct dispatch *p);
/* Something was queued: look now rather than at the next poll. */
void dispatch_kick(struct dispatch *p);

#endif
