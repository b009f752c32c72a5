/*
 * Which device sent a trap, and whether it may.
 *
 * The UDP source is the only thing a sender cannot simply write: a trap
 * from an address configured for a device is that device's.  Only when
 * the source belongs to no device (devices behind NAT share one; a proxy
 * forwards) does the trap's own word count, in this order: the SNMPv3
 * engine id of a trap, the SNMPv1 agent-addr field, an snmpTrapAddress.0
 * varbind, a sysName.0 varbind (matched against snmp.sys_name, else the
 * host name, ignoring case).
 *
 * Authorisation: a v1/v2c trap needs the device's community when it has
 * one; otherwise that of a network (traps.networks) that holds the UDP
 * source and, since a claimed identity proves nothing, one of the
 * device's configured addresses.  A v3 trap has already been
 * authenticated by USM and needs a user the device lists, a user whose
 * engine_ids hold the device's engine id (for a trap from that engine),
 * or a user of a network covering the device as above.  A trap from no
 * known device is kept for review unless a network holding its source
 * names a community it does not have, or users it is not one of.
 */
#ifndef TOCSIN_TRAPDEV_H
#define TOCSIN_TRAPDEV_H

#include "trapconf.h"
#include "trapmsg.h"

/* The device m comes from (see above), or NULL when none is configured for it. */
const struct trap_device *trapdev_identify(const struct trap_config *conf,
					   const struct trap_msg *m);
/* TRAP_ACCEPTED, TRAP_BAD_COMMUNITY or TRAP_UNAUTHORISED; d may be NULL. */
enum trap_outcome trapdev_authorise(const struct trap_config *conf,
				    const struct trap_msg *m,
				    const struct trap_device *d);

#endif
