/*
 * Decoding SNMP notifications with net-snmp's library: v1 and v2c traps,
 * informs, and SNMPv3 USM (authNoPriv, authPriv) with the engine-id
 * handling traps need.
 *
 * net-snmp keeps process-wide state (the MIB tree, the USM user list, the
 * engine id), so there is one engine per process and, once the listener
 * runs, only its thread calls into net-snmp.  trap_snmp_init() runs once
 * while the configuration is loaded (the mappings need the MIB parser to
 * resolve names); trap_engine_new() then adds the users and the session
 * the listener decodes with.
 *
 * Engine ids: a v3 trap comes from its sender's engine (it is
 * authoritative), so a user's keys are localised to the sender's engine
 * id: to the engine_ids configured for the user and the engine ids of the
 * devices that may use it (trapdev.h), or, when the user has no engine_ids, to each
 * other engine the first time an authentic trap at the user's security
 * level arrives from it (never to a configured device's engine id, at
 * most 4096 of them).  Informs are sent to our engine (traps.engine_id):
 * the sender discovers it with a probe that net-snmp answers with a
 * Report.
 *
 * Nothing here logs per packet: outcomes are returned and counted.
 */
#ifndef TOCSIN_TRAP_H
#define TOCSIN_TRAP_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "trapconf.h"
#include "trapmsg.h"

struct trap_engine;

/*
 * Initialise net-snmp once per process: our engine id, no configuration
 * or persistent files of its own, messages to our log at debug level, and
 * the MIB files of mib_dirs (missing directories are skipped).  Later
 * calls do nothing.  Returns how many MIB modules were loaded, or -errno.
 */
int trap_snmp_init(const struct trap_engine_id *engine_id,
		   char *const *mib_dirs);
/*
 * From now on trap_snmp_init() no longer initialises (it returns -EBUSY
 * when it has not yet): called by main() before the first thread starts,
 * since init_snmp() sets the environment and the locale, which nothing
 * may do beside running threads.  A traps: section that first appears on
 * a reload therefore takes a restart.
 */
void trap_snmp_seal(void);
/* A trapmap_resolve_fn over the MIB tree ("IF-MIB::ifName", "ifName"). */
int trap_mib_resolve(void *arg, const char *name, struct trap_oid *ret);

/* The users (their master keys are computed here) and the session. */
int trap_engine_new(const struct trap_config *conf, struct trap_engine **ret);
void trap_engine_free(struct trap_engine *e);
/*
 * On the listener thread, between two datagrams: decode with conf from
 * now on (a SIGHUP reload; conf outlives the engine's use of it).  Users
 * whose name, protocols, pass phrases and engine_ids are unchanged keep
 * their keys and every engine they were localised to; the others are
 * removed from USM and added again as configured; devices' engine ids
 * get the users they may use.  Our engine id, max_packet and the MIBs
 * stay those of the start.  The keys of a new or changed user are
 * derived here (RFC 3414 A.2, a megabyte of hashing each) while traps
 * wait in the socket's buffer.  0; or how many localisations USM refused,
 * with conf applied nonetheless; or -errno with nothing changed (a
 * user's keys cannot be derived).
 */
int trap_engine_reconfigure(struct trap_engine *e,
			    const struct trap_config *conf);

/*
 * Decode one datagram that arrived on fd from `from` into m (reset by the
 * caller).  Returns TRAP_ACCEPTED with m filled, or the outcome that
 * rejects it.  Reports a v3 peer needs (discovery, clock) are sent on fd
 * at once.  The decoded PDU stays with the engine until the next call,
 * so that trap_inform_response() can answer it.
 */
enum trap_outcome trap_decode(struct trap_engine *e, int fd,
			      const uint8_t *data, size_t len,
			      const struct sockaddr *from, socklen_t fromlen,
			      struct trap_msg *m);

/* An encoded answer, to be sent once the inform is stored. */
struct trap_ack {
	int fd;
	struct sockaddr_storage to;
	socklen_t tolen;
	uint8_t *data; /* malloc'ed */
	size_t len;
};

/* Encode the Response to the inform decoded last.  0 or -errno. */
int trap_inform_response(struct trap_engine *e, struct trap_ack *ret);
/* Send it: 0 or -errno.  Safe on any thread (one sendto()). */
int trap_ack_send(const struct trap_ack *ack);
void trap_ack_clear(struct trap_ack *ack);

/* Users localised to new engines on first use, for the metrics (any thread). */
size_t trap_engine_discovered(const struct trap_engine *e);
/*
 * Tell USM a sender engine's clock from an earlier run (trapclock.h), as
 * if an authentic trap had just said it: traps older than it are then
 * refused as not in the time window.  Before the listener thread starts.
 * 0 or -errno.
 */
int trap_engine_seed_clock(struct trap_engine *e, const uint8_t *engine,
			   size_t len, uint32_t boots, uint32_t time);

#endif
