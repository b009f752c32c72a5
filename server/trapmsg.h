/*
 * A decoded SNMP notification, independent of net-snmp: what trap.c makes
 * of a datagram and what device identity (trapdev.c) and the mappings
 * (trapmap.c) look at.
 *
 * One struct trap_msg is reused for every datagram on the listener thread:
 * trapmsg_reset() forgets the last one without freeing, so decoding a trap
 * allocates nothing once the buffers have grown to the largest trap seen.
 * Every text in it (varbind values, names) is valid UTF-8 without control
 * characters, safe to put in a summary, a JSON document or a log line.
 */
#ifndef TOCSIN_TRAPMSG_H
#define TOCSIN_TRAPMSG_H

#include <netinet/in.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

/* SNMP allows 128 sub-identifiers per OID (RFC 2578 section 3.5). */
#define TRAP_OID_MAX 128
/* Longest OID in dotted text: 128 sub-ids of up to 10 digits and a dot. */
#define TRAP_OID_TEXT_MAX (TRAP_OID_MAX * 11 + 1)
#define TRAP_ENGINE_ID_MAX 32
#define TRAP_USER_MAX 32
#define TRAP_COMMUNITY_MAX 255

enum trap_version {
	TRAP_V1,
	TRAP_V2C,
	TRAP_V3,
};

enum trap_value_type {
	TRAP_VALUE_INTEGER,  /* INTEGER, Integer32 */
	TRAP_VALUE_UNSIGNED, /* Gauge32, Counter32, TimeTicks, Unsigned32 */
	TRAP_VALUE_COUNTER64,
	TRAP_VALUE_STRING,   /* OCTET STRING, Opaque, BITS */
	TRAP_VALUE_OID,
	TRAP_VALUE_IPADDRESS,
	TRAP_VALUE_NULL,     /* NULL, noSuchObject, noSuchInstance, endOfMibView */
};

/*
 * What became of a datagram.  Every datagram read has exactly one outcome;
 * the listener counts them, so that received = the sum of the outcomes.
 */
enum trap_outcome {
	TRAP_ACCEPTED,		  /* decoded and authorised */
	TRAP_DISCOVERY,		  /* a v3 engine-id or clock probe, answered with a Report */
	TRAP_MALFORMED,		  /* not SNMP, or not valid BER */
	TRAP_OVERSIZED,		  /* over traps.max_packet, max_varbinds or max_value */
	TRAP_NOT_A_NOTIFICATION,  /* a Get, Set, Response, ... sent to the trap port */
	TRAP_BAD_COMMUNITY,
	TRAP_UNKNOWN_USER,
	TRAP_AUTH_FAILURE,
	TRAP_DECRYPTION_FAILURE,
	TRAP_NOT_IN_TIME_WINDOW,
	TRAP_SECURITY_LEVEL,	  /* below what the user is configured for */
	TRAP_UNAUTHORISED,	  /* a valid user or community, but not this device's */
	TRAP_UNKNOWN_ENGINE_ID,	  /* v3 to an engine id that is not ours (a Report says so) */
	TRAP_RATE_LIMITED,	  /* over traps.rate_limit for its source or device */
	TRAP_OUTCOME_COUNT,
};

/* "bad_community", ... (metric label values). */
const char *trap_outcome_name(enum trap_outcome o);

struct trap_oid {
	uint32_t sub[TRAP_OID_MAX];
	size_t len;
};

struct trap_varbind {
	struct trap_oid oid;
	enum trap_value_type type;
	int64_t num;	     /* INTEGER and the unsigned types */
	const char *text;    /* the value as a technician reads it */
	const char *label;   /* enumeration label ("down"), or NULL */
	const char *name;    /* "ifAdminStatus" from a MIB or the built-ins, or NULL */
	const char *index;   /* the instance after the named object ("7"), or "" */
};

/* Texts live in blocks that never move, so pointers into them stay valid. */
struct trapmsg_block {
	struct trapmsg_block *next;
	size_t len, cap;
	char data[];
};

struct trap_msg {
	enum trap_version version;
	bool version_known;	/* false when the datagram is not SNMP at all */
	bool inform;		/* an InformRequest: the sender waits for our answer */
	int64_t request_id;
	struct sockaddr_storage source;	/* IPv4-mapped IPv6 is turned into IPv4 */
	socklen_t source_len;
	char source_text[INET6_ADDRSTRLEN];
	bool has_agent_addr;	/* SNMPv1 agent-addr, when not 0.0.0.0 */
	struct in_addr agent_addr;
	char agent_addr_text[INET_ADDRSTRLEN];
	uint8_t community[TRAP_COMMUNITY_MAX]; /* v1 and v2c */
	size_t community_len;
	uint8_t engine_id[TRAP_ENGINE_ID_MAX]; /* v3: the authoritative engine */
	size_t engine_id_len;
	char user[TRAP_USER_MAX + 1];	       /* v3 security name */
	int security_level;		       /* 1 noAuthNoPriv, 2 authNoPriv, 3 authPriv */
	/*
	 * v3 traps: the sender's engine boots and time as USM knows them
	 * once the trap authenticated (kept across restarts, so that an
	 * old trap cannot be replayed then).
	 */
	bool has_engine_time;
	uint32_t engine_boots, engine_time;
	bool has_uptime;		       /* sysUpTime.0, or a v1 trap's time-stamp */
	uint32_t uptime;		       /* in hundredths of a second */
	struct trap_oid trap_oid;	       /* snmpTrapOID, v1 traps converted (RFC 3584) */
	const char *trap_name;		       /* "linkDown", or the dotted OID */
	struct trap_varbind *vb;	       /* without sysUpTime.0 and snmpTrapOID.0 */
	size_t nvb, vb_cap;
	struct trapmsg_block *arena;	       /* texts of this message */
	struct trapmsg_block *arena_cur;
};

void trapmsg_init(struct trap_msg *m);
void trapmsg_reset(struct trap_msg *m);
void trapmsg_free(struct trap_msg *m);

/* The sender; an IPv4-mapped IPv6 address becomes IPv4. */
void trapmsg_set_source(struct trap_msg *m, const struct sockaddr *from,
			socklen_t fromlen);
/* Room for one more varbind, zeroed; NULL when max varbinds are there. */
struct trap_varbind *trapmsg_add_varbind(struct trap_msg *m, size_t max);
/* Copy len bytes of text into the message's arena; the copy is terminated. */
const char *trapmsg_store(struct trap_msg *m, const char *text, size_t len);
/*
 * Render raw bytes as text: printable UTF-8 stays as it is; anything else
 * (binary, control characters) becomes hex pairs "00 1a 2b", as net-snmp
 * prints a Hex-STRING.  The result lives in the arena.
 */
const char *trapmsg_store_bytes(struct trap_msg *m, const uint8_t *data,
				size_t len);

/* The first varbind whose OID starts with prefix, or NULL. */
const struct trap_varbind *trapmsg_find(const struct trap_msg *m,
					const uint32_t *prefix, size_t len);

/* Dotted text of an OID into buf (TRAP_OID_TEXT_MAX is always enough). */
void trap_oid_format(const uint32_t *sub, size_t len, char *buf, size_t size);
/* "1.3.6.1.2" or ".1.3.6.1.2" into *ret; -EINVAL when not an OID. */
int trap_oid_parse(const char *text, struct trap_oid *ret);
bool trap_oid_has_prefix(const uint32_t *sub, size_t len,
			 const uint32_t *prefix, size_t prefix_len);
bool trap_oid_equal(const uint32_t *a, size_t alen, const uint32_t *b,
		    size_t blen);

const char *trap_version_name(enum trap_version v);

#endif
