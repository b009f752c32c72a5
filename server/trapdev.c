#include "trapdev.h"

#include <arpa/inet.h>
#include <sodium.h>
#include <string.h>
#include <strings.h>

#include "../common/util.h"
#include "netindex.h"
#include "trapnames.h"

/* The lookups are trapconf's indices: a trap costs O(log devices). */
static const struct trap_device *by_address(const struct trap_config *conf,
					    const struct sockaddr *sa)
{
	return trapconf_device_by_address(conf, sa);
}

static const struct trap_device *by_ipv4(const struct trap_config *conf,
					 const char *text)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };

	if (inet_pton(AF_INET, text, &sin.sin_addr) != 1)
		return NULL;
	return by_address(conf, (const struct sockaddr *)&sin);
}

static const struct trap_device *by_engine(const struct trap_config *conf,
					   const struct trap_msg *m)
{
	return trapconf_device_by_engine(conf, m->engine_id, m->engine_id_len);
}

static const struct trap_device *by_sys_name(const struct trap_config *conf,
					     const char *name)
{
	return trapconf_device_by_name(conf, name);
}

/*
 * What the sender wrote about itself, in the order of how hard it is to
 * get wrong by accident: the v3 engine id (of a trap; an inform carries
 * ours), the v1 agent-addr, snmpTrapAddress.0 (proxies), sysName.0.
 */
static const struct trap_device *by_claim(const struct trap_config *conf,
					  const struct trap_msg *m)
{
	const struct trap_varbind *v;
	const struct trap_device *d = NULL;

	if (m->version == TRAP_V3 && !m->inform)
		d = by_engine(conf, m);
	if (d == NULL && m->has_agent_addr)
		d = by_ipv4(conf, m->agent_addr_text);
	if (d == NULL) {
		v = trapmsg_find(m, trapnames_snmptrapaddress0,
				 ARRAY_SIZE(trapnames_snmptrapaddress0));
		if (v != NULL && v->type == TRAP_VALUE_IPADDRESS)
			d = by_ipv4(conf, v->text);
	}
	if (d == NULL) {
		v = trapmsg_find(m, trapnames_sysname0,
				 ARRAY_SIZE(trapnames_sysname0));
		if (v != NULL && v->type == TRAP_VALUE_STRING && v->text[0])
			d = by_sys_name(conf, v->text);
	}
	return d;
}

const struct trap_device *trapdev_identify(const struct trap_config *conf,
					   const struct trap_msg *m)
{
	const struct trap_device *d =
		by_address(conf, (const struct sockaddr *)&m->source);

	return d != NULL ? d : by_claim(conf, m);
}

static bool user_listed(char *const *users, const char *user)
{
	for (size_t i = 0; users[i]; i++)
		if (strcmp(users[i], user) == 0)
			return true;
	return false;
}

/*
 * Whether network n may vouch for a trap of device d (NULL: unknown): it
 * must hold the UDP source, and for a device one of the device's own
 * addresses too.  A device found by its source passes with that address;
 * one that only claimed to be d (sysName.0 from behind NAT, say) passes
 * only when d belongs to the network, so that a credential of one network
 * never speaks for a device of another.
 */
static bool network_covers(const struct trap_network *n,
			   const struct trap_msg *m, const struct trap_device *d)
{
	if (!trapconf_cidr_contains(&n->cidr, (const struct sockaddr *)&m->source))
		return false;
	if (d == NULL)
		return true;
	for (size_t i = 0; i < d->naddresses; i++)
		if (trapconf_cidr_holds(&n->cidr, &d->addresses[i]))
			return true;
	return false;
}

/* Whether user has d's engine id among its engine_ids, and the trap came from it. */
static bool user_bound_to_device(const struct trap_config *conf,
				 const struct trap_msg *m,
				 const struct trap_device *d)
{
	if (m->inform || !d->has_engine_id || d->engine_id.len != m->engine_id_len ||
	    memcmp(d->engine_id.id, m->engine_id, m->engine_id_len) != 0)
		return false;
	for (size_t i = 0; i < conf->nusers; i++) {
		const struct trap_user *u = &conf->users[i];

		if (strcmp(u->name, m->user) != 0)
			continue;
		for (size_t k = 0; k < u->nengine_ids; k++)
			if (u->engine_ids[k].len == d->engine_id.len &&
			    memcmp(u->engine_ids[k].id, d->engine_id.id,
				   d->engine_id.len) == 0)
				return true;
	}
	return false;
}

/*
 * v3: USM authenticated the user; is it one this device may use?  One the
 * device lists, one bound to the device's engine id, or one of a network
 * that covers the device.  Knowing a user's pass phrase proves nothing
 * about which device one is: it localises to any engine id.
 */
static enum trap_outcome authorise_user(const struct trap_config *conf,
					const struct trap_msg *m,
					const struct trap_device *d)
{
	struct netindex_hits hits = { 0 };
	bool restricted = false, accepted = false;

	if (d != NULL && (user_listed(d->users, m->user) ||
			  user_bound_to_device(conf, m, d)))
		return TRAP_ACCEPTED;
	netindex_find_sockaddr(conf->network_index,
			       (const struct sockaddr *)&m->source, &hits);
	for (size_t i = 0; i < hits.n && !accepted; i++) {
		const struct trap_network *n = &conf->networks[hits.v[i]];

		if (n->users[0] == NULL || !network_covers(n, m, d))
			continue;
		accepted = user_listed(n->users, m->user);
		restricted = true;
	}
	netindex_hits_free(&hits);
	if (accepted)
		return TRAP_ACCEPTED;
	/* An unknown device is kept for review unless its network says no. */
	return d == NULL && !restricted ? TRAP_ACCEPTED : TRAP_UNAUTHORISED;
}

/*
 * v1/v2c: the device's own community when it has one (then nothing
 * else), else that of a network covering it.  A community that is right
 * for a network holding the source, but not one covering the device, is
 * unauthorised rather than bad.
 */
static enum trap_outcome authorise_community(const struct trap_config *conf,
					     const struct trap_msg *m,
					     const struct trap_device *d)
{
	uint8_t hash[TRAP_SECRET_HASH_LEN];
	struct netindex_hits hits = { 0 };
	bool covered = false, ok = false, elsewhere = false;

	trapconf_hash_secret(m->community, m->community_len, hash);
	if (d != NULL && d->has_community)
		return sodium_memcmp(hash, d->community_hash, sizeof(hash)) == 0
			       ? TRAP_ACCEPTED
			       : TRAP_BAD_COMMUNITY;
	netindex_find_sockaddr(conf->network_index,
			       (const struct sockaddr *)&m->source, &hits);
	for (size_t i = 0; i < hits.n; i++) {
		const struct trap_network *n = &conf->networks[hits.v[i]];
		/*
		 * Compare with every network holding the source, without
		 * stopping at a match, so timing tells nothing of which.
		 */
		bool match = n->has_community &&
			     sodium_memcmp(hash, n->community_hash,
					   sizeof(hash)) == 0;

		if (!n->has_community)
			continue;
		if (network_covers(n, m, d)) {
			covered = true;
			ok = ok || match;
		} else if (match) {
			elsewhere = true;
		}
	}
	netindex_hits_free(&hits);
	if (ok)
		return TRAP_ACCEPTED;
	if (elsewhere)
		return TRAP_UNAUTHORISED;
	/*
	 * A known device must present a credential.  An unknown one is kept
	 * for review unless a network says what its community should be.
	 */
	return d == NULL && !covered ? TRAP_ACCEPTED : TRAP_BAD_COMMUNITY;
}

enum trap_outcome trapdev_authorise(const struct trap_config *conf,
				    const struct trap_msg *m,
				    const struct trap_device *d)
{
	if (m->version == TRAP_V3)
		return authorise_user(conf, m, d);
	return authorise_community(conf, m, d);
}
