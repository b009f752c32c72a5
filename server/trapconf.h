/*
 * The trap listener's configuration: the traps: section of server.yaml
 * and the snmp: keys of the inventory's hosts.
 *
 *   traps:
 *     listen: "[::]:162"          # or a list; port 0 binds a free port
 *     users: [{name, auth, auth_key, priv, priv_key, engine_ids}]
 *     networks: [{cidr, community, users}]
 *     mappings_dir: /etc/tocsin/traps
 *     mib_dirs: [...]
 *     rate_limit: {source, source_burst, device, device_burst}
 *     fallback_max: 50
 *   hosts:
 *     core-sw1:
 *       snmp: {addresses, community, users, engine_id, sys_name}
 *
 * Devices are the inventory's hosts: a router is a host like any other,
 * with a customer, a role and children behind it, and its traps open
 * tickets under its host name.  Without a traps: section there is no
 * listener at all, so a server that does not want traps binds no port.
 */
#ifndef TOCSIN_TRAPCONF_H
#define TOCSIN_TRAPCONF_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "trapmsg.h"

#define TRAP_SECRET_HASH_LEN 32

struct cfg;
struct cfg_node;
struct netindex;
struct trapmap;

enum trap_auth {
	TRAP_AUTH_MD5,
	TRAP_AUTH_SHA,
	TRAP_AUTH_SHA224,
	TRAP_AUTH_SHA256,
	TRAP_AUTH_SHA384,
	TRAP_AUTH_SHA512,
};

enum trap_priv {
	TRAP_PRIV_NONE,
	TRAP_PRIV_DES,
	TRAP_PRIV_AES,	  /* AES-128, RFC 3826 */
	TRAP_PRIV_AES192, /* draft-blumenthal-aes-usm-04 */
	TRAP_PRIV_AES256,
};

struct trap_engine_id {
	uint8_t id[TRAP_ENGINE_ID_MAX];
	size_t len;
};

/* An SNMPv3 USM user. */
struct trap_user {
	char *name;
	enum trap_auth auth;
	char *auth_key; /* pass phrases, wiped when freed */
	enum trap_priv priv;
	char *priv_key;
	/*
	 * Engines the user's traps come from (devices with one of them as
	 * engine_id may use the user); none: any engine but a configured
	 * device's, localised on the first authentic trap from it.
	 */
	struct trap_engine_id *engine_ids;
	size_t nengine_ids;
};

/* An address or a network: 192.0.2.0/24, 2001:db8::/32, 192.0.2.7. */
struct trap_cidr {
	int family; /* AF_INET or AF_INET6 */
	uint8_t addr[16];
	unsigned prefix;
};

/* Credentials for every device in a range. */
struct trap_network {
	struct trap_cidr cidr;
	bool has_community;
	uint8_t community_hash[TRAP_SECRET_HASH_LEN];
	char **users; /* NULL-terminated, never NULL */
};

/* A device that sends traps: an inventory host with snmp: keys. */
struct trap_device {
	char *host; /* the inventory's host name */
	struct trap_cidr *addresses;
	size_t naddresses;
	bool has_community;
	uint8_t community_hash[TRAP_SECRET_HASH_LEN];
	char **users; /* v3 users it may use (trapdev.h); NULL-terminated, never NULL */
	bool has_engine_id;
	struct trap_engine_id engine_id;
	char *sys_name; /* as the device sends sysName.0, or NULL */
};

/* A device's address in the lookup index (trapconf_device_by_address()). */
struct trap_address_key {
	int family;
	uint8_t addr[16];
	const struct trap_device *device;
};

struct trap_listen {
	char *host; /* NULL: every address, IPv6 and IPv4 */
	uint16_t port;
};

struct trap_config {
	struct trap_listen *listen;
	size_t nlisten;
	char *user;	     /* drop root to this user after binding */
	struct trap_engine_id engine_id; /* ours, for informs */
	char **mib_dirs;     /* NULL-terminated */
	char *mappings_dir;
	size_t receive_buffer;
	size_t max_packet;
	size_t max_varbinds;
	size_t max_value;
	size_t batch_max;    /* traps per writer job */
	size_t backlog_max;  /* traps waiting for the writer before we drop */
	size_t unknown_keep; /* traps from unknown devices kept for review */
	/*
	 * Token buckets (traps.rate_limit): traps per second and the burst
	 * allowed beyond it, per UDP source address and per device; a rate
	 * of 0 is no limit.
	 */
	uint32_t source_rate, source_burst;
	uint32_t device_rate, device_burst;
	size_t fallback_max; /* open fallback tickets per device, then one for "too many" */
	/*
	 * A reload after trap_snmp_seal() found a traps: section that was not
	 * there at start: net-snmp is not initialised, the mapping files are
	 * not read (they apply, and are checked, with the next start).
	 */
	bool mappings_unread;
	struct trap_user *users;
	size_t nusers;
	struct trap_network *networks;
	size_t nnetworks;
	struct netindex *network_index; /* which networks hold an address */
	struct trap_device *devices;
	size_t ndevices;
	/*
	 * Indices over devices for trapconf_device_by_*(), built once at the
	 * end of trapconf_parse() (the configuration never changes after;
	 * a reload parses a new one): sorted, and with one entry per key,
	 * that of the first device in the configuration with it.
	 */
	struct trap_address_key *address_index;
	size_t naddress_index;
	const struct trap_device **engine_index; /* by engine id */
	size_t nengine_index;
	const struct trap_device **name_index; /* by sys_name, else host, ignoring case */
	size_t nname_index;
	struct trapmap *map;
};

/*
 * Parse root's traps: section and the hosts' snmp: keys, load the MIBs
 * and the mappings.  *ret is NULL when there is no traps: section.
 * Errors are recorded in cfg with their location.
 */
int trapconf_parse(struct cfg *cfg, const struct cfg_node *root,
		   struct trap_config **ret);
void trapconf_free(struct trap_config *conf);

/*
 * The device of conf with an address that is sa's, engine id id, or
 * sys_name (else host name) name ignoring case; the first in the
 * configuration if several are; or NULL.  O(log devices).
 */
const struct trap_device *trapconf_device_by_address(const struct trap_config *conf,
						     const struct sockaddr *sa);
const struct trap_device *trapconf_device_by_engine(const struct trap_config *conf,
						    const uint8_t *id, size_t len);
const struct trap_device *trapconf_device_by_name(const struct trap_config *conf,
						  const char *name);

/* Hash a community the way the configuration keeps it. */
void trapconf_hash_secret(const uint8_t *secret, size_t len,
			  uint8_t out[TRAP_SECRET_HASH_LEN]);
/* "192.0.2.0/24", "2001:db8::1" into *ret: 0 or -EINVAL. */
int trapconf_parse_cidr(const char *text, struct trap_cidr *ret);
bool trapconf_cidr_contains(const struct trap_cidr *c,
			    const struct sockaddr *sa);
/* Whether network net holds the address addr (of a device). */
bool trapconf_cidr_holds(const struct trap_cidr *net,
			 const struct trap_cidr *addr);
/* "0x8000...", "80:00:..." or plain hex into *ret: 0 or -EINVAL. */
int trapconf_parse_engine_id(const char *text, struct trap_engine_id *ret);

#endif
