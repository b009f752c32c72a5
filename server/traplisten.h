/*
 * The native SNMP trap listener: UDP sockets, a receiving thread of its
 * own, and traps handed to the writer as events, many per job.
 *
 * The thread reads datagrams in batches (recvmmsg) from sockets with a
 * large receive buffer, decodes them (trap.c), finds and authorises their
 * device (trapdev.c), maps them (trapmap.c) and collects the events.
 * Whenever fewer than two of its jobs are with the writer it posts what it
 * has collected, one job for up to traps.batch traps, where dedup applies
 * each device's events in order: while the writer commits one job, the
 * next one fills, so a commit covers as many traps as arrived meanwhile.
 * Informs are acknowledged only after their job committed, so an
 * acknowledged inform is on disk; their event ids derive from the inform,
 * so a retransmission is recognised as a duplicate.
 *
 * A job the store refuses (busy beyond SQLite's timeout, disk full) is
 * rolled back whole and put back at the head of the queue, to be tried
 * again after 0.1 s, 0.2 s, ... (at most 5 s between, 8 attempts in all)
 * before its traps count as lost; stopping waits for that too.
 *
 * A trap about to be stored passes the rate limits of its source and its
 * device first (traprate.h), else it is refused as rate_limited.  When the
 * writer falls behind by traps.backlog traps, new traps are dropped,
 * counted, and logged at most every ten seconds.  Every datagram read is
 * counted under exactly one outcome (see /metrics).
 */
#ifndef TOCSIN_TRAPLISTEN_H
#define TOCSIN_TRAPLISTEN_H

#include <stdbool.h>
#include <stdint.h>

struct metrics;
struct store;
struct trap_config;
struct traplisten;
struct writer;

/*
 * Bind every traps.listen address (port 0: a free one).  Runs before
 * privileges are dropped, so that port 162 can be bound as root.
 */
int traplisten_bind(const struct trap_config *conf, struct traplisten **ret);
/* The port the first address was bound to (for --trap-port-file). */
uint16_t traplisten_port(const struct traplisten *l);
/* Whether a port below 1024 was bound (then root is dropped). */
bool traplisten_privileged(const struct traplisten *l);
/* "[::]:162, 127.0.0.1:1162" for the log; static buffer. */
const char *traplisten_describe(const struct traplisten *l);

/*
 * Set up the SNMP engine and start the thread: traps go to w, the review
 * of unknown devices to st, counters to metrics.  Call after the writer
 * started and before the HTTP server.  0 or -errno.
 */
int traplisten_start(struct traplisten *l, struct store *st,
		     struct writer *w, struct metrics *metrics);
/*
 * SIGHUP: the listener thread decodes, identifies, authorises, limits and
 * maps with conf from its next datagram on, without stopping: the hosts'
 * snmp: keys, traps.networks, traps.users, rate_limit, batch, backlog,
 * unknown_keep, fallback_max, max_varbinds, max_value and the mappings.
 * What was bound or set up at start stays (listen, user, engine_id,
 * mib_dirs, receive_buffer, max_packet).  conf must stay valid until
 * traplisten_stop() (reload.h keeps every configuration until exit);
 * NULL l or conf does nothing.  Any thread; the last offer wins.
 */
void traplisten_reconfigure(struct traplisten *l,
			    const struct trap_config *conf);
/* The configuration offered last (at start: the bound one), or NULL. */
const struct trap_config *traplisten_config(const struct traplisten *l);
/*
 * Stop the thread, hand the writer what it still holds, wait until the
 * writer is done with our jobs, and free everything.  Call before
 * writer_stop().  NULL is fine; so is a listener that never started.
 */
void traplisten_stop(struct traplisten *l);

#endif
