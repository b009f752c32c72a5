/*
 * Names of the standard objects traps carry, built in.
 *
 * Debian ships almost no MIB files (the IETF and IANA MIBs come with
 * snmp-mibs-downloader, which is non-free and needs the internet), so the
 * names the built-in mappings use (linkDown, ifIndex, ifName, sysName, ...)
 * and the labels of their enumerations must not depend on net-snmp's MIB
 * parser.  Names the MIB parser knows come on top of these (trap.c).
 */
#ifndef TOCSIN_TRAPNAMES_H
#define TOCSIN_TRAPNAMES_H

#include <stddef.h>
#include <stdint.h>

#include "trapmsg.h"

enum trapname_kind {
	TRAPNAME_OBJECT,       /* a value a varbind carries */
	TRAPNAME_NOTIFICATION, /* a trap */
	TRAPNAME_NODE,	       /* a branch: enterprises, snmpTraps */
};

struct trapname {
	enum trapname_kind kind;
	const char *module; /* "IF-MIB" */
	const char *name;   /* "ifAdminStatus" */
	uint32_t sub[16];
	size_t len;
	const char *const *labels; /* enumeration: labels[v] for v >= 1, NULL-ended */
};

/* "ifName", "IF-MIB::ifName" -> its entry, or NULL. */
const struct trapname *trapnames_by_name(const char *name);
/* The object that is the longest prefix of oid (a varbind), or NULL. */
const struct trapname *trapnames_by_oid(const uint32_t *sub, size_t len);
/* The entry of exactly this OID (a trap's name), or NULL. */
const struct trapname *trapnames_exact(const uint32_t *sub, size_t len);
/* The label of value v of an enumerated entry, or NULL. */
const char *trapnames_label(const struct trapname *n, int64_t v);

/* OIDs the decoder and the device identity need by value. */
extern const uint32_t trapnames_sysuptime0[9];	      /* sysUpTime.0 */
extern const uint32_t trapnames_snmptrapoid0[11];     /* snmpTrapOID.0 */
extern const uint32_t trapnames_snmptrapaddress0[10]; /* snmpTrapAddress.0 */
extern const uint32_t trapnames_sysname0[9];	      /* sysName.0 */
extern const uint32_t trapnames_snmptraps[9];	      /* snmpTraps: 1.3.6.1.6.3.1.1.5 */

#endif
