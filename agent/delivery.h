/*
 * Delivery: the outbox's events to the collector, and what the agent does
 * with each kind of answer (PROTOCOL.md, "Transport"):
 *
 *   2xx      acknowledged after the collector's commit: delete, go on;
 *   400/413  this batch can never be accepted: halve the batch until the
 *            offending event is alone, then drop it and count it, so one
 *            bad event never blocks the queue (the batch size grows back
 *            by doubling after each success);
 *   401/403  the credential is wrong: keep every event, take a new
 *            credential file (a rotation by hand may have replaced it),
 *            else log what to do and back off;
 *   429/503  retry later, honouring Retry-After;
 *   no answer or another status: back off and retry.
 *
 * Backoff is "decorrelated jitter": each delay is uniform between 1 s and
 * three times the previous one, capped at server.backoff_max, so agents
 * that lost the collector together do not come back together.
 *
 * The network is the deliverer's (agent/deliverer.h): this module decides
 * what to send and when, and keeps everything that must outlive one
 * deliverer (the outbox, the backoff, the failover state, the rotation
 * schedule).  It starts a deliverer when there is something to send, one
 * request at a time, without blocking the agent's loop: the answer comes
 * through delivery_pollfds()/delivery_on_ready().  A deliverer idle for
 * deliverer.linger is asked to exit; one that does not answer within its
 * time limit (server.timeout for each URL, plus DELIVERER_SLACK_MS) is
 * killed, the failure logged, and its events are sent again.
 *
 * This is part of the agent's top level: it logs what it decides.
 */
#ifndef TOCSIN_DELIVERY_H
#define TOCSIN_DELIVERY_H

#include <poll.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../checks/check.h"

struct agent_config;
struct delivery;

#define DELIVERY_BACKOFF_BASE_MS 1000

/*
 * Open the outbox in db (owned by the caller, must outlive the delivery)
 * and the table of the wait kept across restarts (a failure there is
 * logged: the delivery goes on without it), check that there is a
 * credential (conf->token or the credential file in conf->state_dir) and
 * find the deliverer.  should_abort is polled while delivery_flush()
 * waits.  0, or -errno with why saying what is wrong
 * (e.g. no credential yet).
 */
int delivery_new(sqlite3 *db, const struct agent_config *conf,
		 bool (*should_abort)(void *), void *abort_arg,
		 struct delivery **ret, char *why, size_t whylen);
/* Stop the deliverer (a request in flight is abandoned; its events stay). */
void delivery_free(struct delivery *d);

/*
 * Take a reloaded configuration (conf must outlive d or the next call):
 * the deliverer is stopped and the next one gets the new settings; with
 * the same collector URLs the backoff and a Retry-After stand.  On an
 * error the old configuration stays.
 */
int delivery_reconfigure(struct delivery *d, const struct agent_config *conf,
			 char *why, size_t whylen);

/*
 * Write results to the outbox, logging what had to be dropped.  A state
 * change among them is sent at once, and when urgent (seen as it
 * happened) even before the backoff would allow, though never before
 * a collector's Retry-After has passed; results that repeat
 * their key's state wait until server.hold_repeats after the outbox was
 * last emptied.  When the outbox cannot be written (a full disk) the
 * results are held in memory (agent/held.h: bounded, repeats dropped
 * first and counted), sent directly as the backoff allows, and written
 * to the outbox, with the ids they were made with, once it can take
 * them again (tried at every call and every HELD_RETRY_MS).
 */
void delivery_queue(struct delivery *d, const struct check_results *results,
		    bool urgent);

/*
 * True while results are held in memory only (neither in the outbox nor
 * acknowledged by the collector): lost if the agent stops now.  The
 * agent tells the checks so (check_env.results_unstored).
 */
bool delivery_unstored(const struct delivery *d);

/* Start what is due (a batch, a rotation), end a deliverer idle or hung. */
void delivery_run(struct delivery *d);
/* Milliseconds until delivery_run() has work; INT64_MAX when none. */
int64_t delivery_wait_ms(const struct delivery *d);

/* Fill at most max pollfds (POLLIN) for the deliverers; returns the count. */
size_t delivery_pollfds(const struct delivery *d, struct pollfd *pfds,
			size_t max);
/* Act on what poll() found on the descriptors of delivery_pollfds(). */
void delivery_on_ready(struct delivery *d, const struct pollfd *pfds,
		       size_t n);

/*
 * Send everything queued now, ignoring the backoff (for --once), and wait
 * for the deliverer to exit.  0 when the outbox is empty at the end, else
 * -errno and why; *ret_sent counts the events the collector took.
 */
int delivery_flush(struct delivery *d, size_t *ret_sent, char *why,
		   size_t whylen);

/* The collector URL in use, for messages. */
const char *delivery_url(const struct delivery *d);

/* Decorrelated jitter: min(cap, uniform(base, 3 * prev)). */
int64_t delivery_backoff_next(int64_t prev_ms, int64_t base_ms,
			      int64_t cap_ms, uint32_t random);

#endif
