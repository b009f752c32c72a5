/*
 * The sender of the notification outbox (hd_outbox), in lanes: one thread
 * for all mail (one SMTP server) and one per webhook, so that a receiver
 * that hangs or is down delays only its own lane, never the technicians'
 * mail.  Each lane takes its rows that are due, sends each and then
 * marks it, in a writer job, sent, or due again later with exponential
 * backoff (notify.retry: initial, doubling up to max, failed after
 * attempts).  A lane whose peer is unreachable (no connection, no answer
 * in time, 5xx, SMTP 4xx) also waits as a whole, with a backoff of its
 * own that doubles while the peer stays away and resets on success, so a
 * dead receiver costs one timeout per backoff, not one per row.
 *
 * Mail is rate-limited per recipient list (notify.rate: at most `mails`
 * in `per`): rows beyond the limit wait for the window, and all rows due
 * for one list at once (a burst, or the rows that waited) go out as one
 * digest mail listing them, so 400 problems do not become 400 mails.
 *
 * Zammad webhooks create the ticket at the opening (POST url), remember
 * the id Zammad answers with (hd_external), and send every later change
 * as an update of that ticket (PUT url/{id}); an update waits for its
 * creation.
 *
 * A row is marked sent only after the peer accepted it, and a row stays
 * pending across restarts, so nothing queued is lost.  A crash between
 * the peer's acceptance and our mark repeats that one delivery after the
 * restart; the idempotency key (Message-ID, Idempotency-Key) lets the
 * receiver drop it.
 */
#ifndef TOCSIN_DISPATCH_H
#define TOCSIN_DISPATCH_H

#include <stddef.h>

struct desk;
struct dispatch;
struct notify_config;

#define DISPATCH_BATCH_MAX 16
/* Rows one digest mail carries at most; the rest go in the next. */
#define DISPATCH_DIGEST_MAX 200
/* Recipient lists whose mail rate is remembered (least recently used go). */
#define DISPATCH_RATE_TARGETS 256
/* Rows that are done are forgotten after notify.keep, looked at hourly. */
#define DISPATCH_PURGE_EVERY_MS (3600 * 1000LL)

/*
 * Start a lane per channel (after the writer started): first a writer
 * job fails the pending rows no lane will ever send (mail without
 * notify.smtp.url, a webhook no longer configured), saying so.
 */
int dispatch_start(struct desk *d, struct dispatch **ret_dispatch);

/* What a reload changed of the lanes. */
struct dispatch_change {
	size_t lanes;		/* running now */
	size_t added, removed;	/* lanes started, lanes retired */
	int failed;		/* pending rows of a channel now gone, failed */
};
/*
 * SIGHUP, from the thread that started the sender: send with nc (of a
 * configuration kept until exit) from now on.  A lane whose channel is
 * gone (notify.smtp.url removed, a webhook name no longer listed) is
 * retired: its send in flight is abandoned, the thread joined, and its
 * pending rows fail saying why, as at start.  The other lanes take nc
 * up between two rounds (a send in flight finishes with the old one),
 * keeping their rate slots and, unless their peer's URL changed, their
 * backoff; lanes for new channels start.  Rows keep what they were
 * rendered with.  0, or the first -errno (a lane that could not start,
 * or the writer job), with *ret_change filled either way.
 */
int dispatch_reconfigure(struct dispatch *p, const struct notify_config *nc,
			 struct dispatch_change *ret_change);
void dispatch_stop(struct dispatch *p);
/* Something was queued: every lane looks now rather than at its next poll. */
void dispatch_kick(struct dispatch *p);

#endif
