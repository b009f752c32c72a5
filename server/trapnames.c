#include "trapnames.h"

#include <string.h>

#include "../common/util.h"

const uint32_t trapnames_sysuptime0[9] = { 1, 3, 6, 1, 2, 1, 1, 3, 0 };
const uint32_t trapnames_snmptrapoid0[11] = { 1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0 };
const uint32_t trapnames_snmptrapaddress0[10] = { 1, 3, 6, 1, 6, 3,
						  18, 1, 3, 0 };
const uint32_t trapnames_sysname0[9] = { 1, 3, 6, 1, 2, 1, 1, 5, 0 };
const uint32_t trapnames_snmptraps[9] = { 1, 3, 6, 1, 6, 3, 1, 1, 5 };

static const char *const admin_status[] = { "up", "down", "testing", NULL };
static const char *const oper_status[] = { "up",	  "down",
					   "testing",	  "unknown",
					   "dormant",	  "notPresent",
					   "lowerLayerDown", NULL };

#define LEN(...) (sizeof((uint32_t[]){ __VA_ARGS__ }) / sizeof(uint32_t))
#define N(mod, nm, ...)                                                   \
	{ .kind = TRAPNAME_OBJECT, .module = mod, .name = nm,             \
	  .sub = { __VA_ARGS__ }, .len = LEN(__VA_ARGS__) }
#define E(mod, nm, lab, ...)                                              \
	{ .kind = TRAPNAME_OBJECT, .module = mod, .name = nm,             \
	  .sub = { __VA_ARGS__ }, .len = LEN(__VA_ARGS__), .labels = lab }
#define T(mod, nm, ...)                                                   \
	{ .kind = TRAPNAME_NOTIFICATION, .module = mod, .name = nm,       \
	  .sub = { __VA_ARGS__ }, .len = LEN(__VA_ARGS__) }
#define B(mod, nm, ...)                                                   \
	{ .kind = TRAPNAME_NODE, .module = mod, .name = nm,               \
	  .sub = { __VA_ARGS__ }, .len = LEN(__VA_ARGS__) }

/* SNMPv2-MIB (RFC 3418), IF-MIB (RFC 2863), SNMP-COMMUNITY-MIB (RFC 3584). */
static const struct trapname names[] = {
	B("SNMPv2-SMI", "enterprises", 1, 3, 6, 1, 4, 1),
	N("SNMPv2-MIB", "sysDescr", 1, 3, 6, 1, 2, 1, 1, 1),
	N("SNMPv2-MIB", "sysObjectID", 1, 3, 6, 1, 2, 1, 1, 2),
	N("SNMPv2-MIB", "sysUpTime", 1, 3, 6, 1, 2, 1, 1, 3),
	N("SNMPv2-MIB", "sysContact", 1, 3, 6, 1, 2, 1, 1, 4),
	N("SNMPv2-MIB", "sysName", 1, 3, 6, 1, 2, 1, 1, 5),
	N("SNMPv2-MIB", "sysLocation", 1, 3, 6, 1, 2, 1, 1, 6),
	N("SNMPv2-MIB", "snmpTrapOID", 1, 3, 6, 1, 6, 3, 1, 1, 4, 1),
	N("SNMPv2-MIB", "snmpTrapEnterprise", 1, 3, 6, 1, 6, 3, 1, 1, 4, 3),
	B("SNMPv2-MIB", "snmpTraps", 1, 3, 6, 1, 6, 3, 1, 1, 5),
	T("SNMPv2-MIB", "coldStart", 1, 3, 6, 1, 6, 3, 1, 1, 5, 1),
	T("SNMPv2-MIB", "warmStart", 1, 3, 6, 1, 6, 3, 1, 1, 5, 2),
	T("IF-MIB", "linkDown", 1, 3, 6, 1, 6, 3, 1, 1, 5, 3),
	T("IF-MIB", "linkUp", 1, 3, 6, 1, 6, 3, 1, 1, 5, 4),
	T("SNMPv2-MIB", "authenticationFailure", 1, 3, 6, 1, 6, 3, 1, 1, 5, 5),
	T("RFC1213-MIB", "egpNeighborLoss", 1, 3, 6, 1, 6, 3, 1, 1, 5, 6),
	N("IF-MIB", "ifIndex", 1, 3, 6, 1, 2, 1, 2, 2, 1, 1),
	N("IF-MIB", "ifDescr", 1, 3, 6, 1, 2, 1, 2, 2, 1, 2),
	N("IF-MIB", "ifType", 1, 3, 6, 1, 2, 1, 2, 2, 1, 3),
	N("IF-MIB", "ifMtu", 1, 3, 6, 1, 2, 1, 2, 2, 1, 4),
	N("IF-MIB", "ifSpeed", 1, 3, 6, 1, 2, 1, 2, 2, 1, 5),
	N("IF-MIB", "ifPhysAddress", 1, 3, 6, 1, 2, 1, 2, 2, 1, 6),
	E("IF-MIB", "ifAdminStatus", admin_status, 1, 3, 6, 1, 2, 1, 2, 2, 1, 7),
	E("IF-MIB", "ifOperStatus", oper_status, 1, 3, 6, 1, 2, 1, 2, 2, 1, 8),
	N("IF-MIB", "ifLastChange", 1, 3, 6, 1, 2, 1, 2, 2, 1, 9),
	N("IF-MIB", "ifName", 1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 1),
	N("IF-MIB", "ifHighSpeed", 1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 15),
	N("IF-MIB", "ifAlias", 1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 18),
	N("SNMP-COMMUNITY-MIB", "snmpTrapAddress", 1, 3, 6, 1, 6, 3, 18, 1, 3),
	N("SNMP-COMMUNITY-MIB", "snmpTrapCommunity", 1, 3, 6, 1, 6, 3, 18, 1, 4),
};

const struct trapname *trapnames_by_name(const char *name)
{
	const char *sep = strstr(name, "::");
	size_t modlen = 0;

	if (sep != NULL) {
		modlen = (size_t)(sep - name);
		name = sep + 2;
	}
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		if (strcmp(names[i].name, name) != 0)
			continue;
		/* A module given must be the right one; IF-MIB vs RFC1213-MIB. */
		if (sep != NULL && (strlen(names[i].module) != modlen ||
				    strncmp(names[i].module, sep - modlen,
					    modlen) != 0))
			continue;
		return &names[i];
	}
	return NULL;
}

const struct trapname *trapnames_by_oid(const uint32_t *sub, size_t len)
{
	const struct trapname *best = NULL;

	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (names[i].kind == TRAPNAME_OBJECT &&
		    trap_oid_has_prefix(sub, len, names[i].sub, names[i].len) &&
		    (best == NULL || names[i].len > best->len))
			best = &names[i];
	return best;
}

const struct trapname *trapnames_exact(const uint32_t *sub, size_t len)
{
	for (size_t i = 0; i < ARRAY_SIZE(names); i++)
		if (trap_oid_equal(sub, len, names[i].sub, names[i].len))
			return &names[i];
	return NULL;
}

const char *trapnames_label(const struct trapname *n, int64_t v)
{
	if (n == NULL || n->labels == NULL || v < 1)
		return NULL;
	for (int64_t i = 0; n->labels[i]; i++)
		if (i == v - 1)
			return n->labels[i];
	return NULL;
}
