/*
 * The clocks of the SNMPv3 engines that send us traps, kept across
 * restarts.
 *
 * USM refuses a v3 trap older than the newest (snmpEngineBoots,
 * snmpEngineTime) it has seen from the sender's engine, which is what
 * stops a captured trap from being replayed.  net-snmp keeps that only in
 * memory: after a restart any old trap would pass once.  So each writer
 * job of traps saves the clocks its v3 traps left in USM (in the traps
 * schema module's table trap_engine_clocks), and the listener tells USM
 * the saved ones at start (trap.h, trap_engine_seed_clock()).
 *
 * The saved time is seeded as it was saved, not advanced by the time we
 * were down: a clock that jumped while we were stopped must never make a
 * genuine trap look old.  (A trap captured between the last save and the
 * restart can pass then: at most one job's worth of time.)
 */
#ifndef TOCSIN_TRAPCLOCK_H
#define TOCSIN_TRAPCLOCK_H

#include <stddef.h>
#include <stdint.h>

#include "trapmsg.h"

/* Engines kept: beyond, the least recently saved go. */
#define TRAPCLOCK_KEEP 8192

struct store;
struct trapclock;

struct trapclock_entry {
	uint8_t engine[TRAP_ENGINE_ID_MAX];
	size_t len;
	uint32_t boots, time;
};

/* The statements; call with store_lock() held (or before the writer runs). */
int trapclock_open(struct store *st, struct trapclock **ret);
void trapclock_close(struct trapclock *c);

/*
 * Inside a writer job: keep e's clock as of now_ms, unless a higher one
 * (more boots, or as many and a later time) is kept already.  0 or -errno.
 */
int trapclock_save(struct trapclock *c, const struct trapclock_entry *e,
		   int64_t now_ms);
/* Inside a writer job: keep the TRAPCLOCK_KEEP most recently saved. */
int trapclock_trim(struct store *st, void *arg);

/*
 * Call fn for each kept clock, most recently saved first, with
 * store_lock() held.  0, fn's first error, or -errno.
 */
int trapclock_each(struct trapclock *c,
		   int (*fn)(void *arg, const struct trapclock_entry *e),
		   void *arg);

#endif
