/*
 * Which device sent a trap, and whether it may.
 *
 * The UDP source alone is not enough: devices behind NAT share one, and a
 * router sends from whichever interface is up.  A trap is tied to a device
 * by, in this order: the SNMPv3 engine id of its sender, the SNMPv1
 * agent-addr field, an snmpTrapAddress.0 varbind (set by proxies), a
 * sysName.0 varbind (matched against snmp.sys_name, else the host name,
 * ignoring case), and last the UDP source among the device's addresses.
 *
 * Authorisation: a v1/v2c trap needs the device's community, or one of a
 * network's (traps.networks) that holds the UDP source; a v3 trap has
 * already been authenticated by USM and needs, when the device or its
 * network lists users, one of them.  A trap from no known device is kept
 * for review unless a network holding its source names a community it
 * does not have.
 */
#ifndef TOCSIN_TRAPDEV_H
#define TOCSIN_TRAPDEV_H

#include "trapconf.h"
#include "trapmsg.h"

/* The device m comes from, or NULL when none is configured for it. */
const struct trap_device *trapdev_identify(const struct trap_config *conf,
					   const struct trap_msg *m);
/* TRAP_ACCEPTED, TRAP_BAD_COMMUNITY or TRAP_UNAUTHORISED; d may be NULL. */
enum trap_outcome trapdev_authorise(const struct trap_config *conf,
				    const struct trap_msg *m,
				    const struct trap_device *d);

#endif
