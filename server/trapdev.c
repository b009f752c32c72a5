#include "trapdev.h"

#include <arpa/inet.h>
#include <sodium.h>
#include <string.h>
#include <strings.h>

#include "../common/util.h"
#include "trapnames.h"

static bool device_has_address(const struct trap_device *d,
			       const struct sockaddr *sa)
{
	for (size_t i = 0; i < d->naddresses; i++)
		if (trapconf_cidr_contains(&d->addresses[i], sa))
			return true;
	return false;
}

static const struct trap_device *by_address(const struct trap_config *conf,
					    const struct sockaddr *sa)
{
	for (size_t i = 0; i < conf->ndevices; i++)
		if (device_has_address(&conf->devices[i], sa))
			return &conf->devices[i];
	return NULL;
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
	for (size_t i = 0; i < conf->ndevices; i++) {
		const struct trap_device *d = &conf->devices[i];

		if (d->has_engine_id && d->engine_id.len == m->engine_id_len &&
		    memcmp(d->engine_id.id, m->engine_id, m->engine_id_len) == 0)
			return d;
	}
	return NULL;
}

static const struct trap_device *by_sys_name(const struct trap_config *conf,
					     const char *name)
{
	for (size_t i = 0; i < conf->ndevices; i++) {
		const struct trap_device *d = &conf->devices[i];
		const char *want = d->sys_name ? d->sys_name : d->host;

		if (strcasecmp(want, name) == 0)
			return d;
	}
	return NULL;
}

const struct trap_device *trapdev_identify(const struct trap_config *conf,
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
	if (d == NULL)
		d = by_address(conf, (const struct sockaddr *)&m->source);
	return d;
}

static bool user_listed(char *const *users, const char *user)
{
	for (size_t i = 0; users[i]; i++)
		if (strcmp(users[i], user) == 0)
			return true;
	return false;
}

/* v3: USM authenticated the user; is it one this device may use? */
static enum trap_outcome authorise_user(const struct trap_config *conf,
					const struct trap_msg *m,
					const struct trap_device *d)
{
	bool restricted = false;

	if (d != NULL && d->users[0] != NULL)
		return user_listed(d->users, m->user) ? TRAP_ACCEPTED
						      : TRAP_UNAUTHORISED;
	for (size_t i = 0; i < conf->nnetworks; i++) {
		const struct trap_network *n = &conf->networks[i];

		if (n->users[0] == NULL ||
		    !trapconf_cidr_contains(&n->cidr,
					    (const struct sockaddr *)&m->source))
			continue;
		if (user_listed(n->users, m->user))
			return TRAP_ACCEPTED;
		restricted = true;
	}
	return restricted ? TRAP_UNAUTHORISED : TRAP_ACCEPTED;
}

/* v1/v2c: the device's community, else one of its networks'. */
static enum trap_outcome authorise_community(const struct trap_config *conf,
					     const struct trap_msg *m,
					     const struct trap_device *d)
{
	uint8_t hash[TRAP_SECRET_HASH_LEN];
	bool covered = false, ok = false;

	trapconf_hash_secret(m->community, m->community_len, hash);
	if (d != NULL && d->has_community)
		return sodium_memcmp(hash, d->community_hash, sizeof(hash)) == 0
			       ? TRAP_ACCEPTED
			       : TRAP_BAD_COMMUNITY;
	for (size_t i = 0; i < conf->nnetworks; i++) {
		const struct trap_network *n = &conf->networks[i];

		if (!n->has_community ||
		    !trapconf_cidr_contains(&n->cidr,
					    (const struct sockaddr *)&m->source))
			continue;
		covered = true;
		/* Compare with every one, so timing tells nothing. */
		if (sodium_memcmp(hash, n->community_hash, sizeof(hash)) == 0)
			ok = true;
	}
	if (ok)
		return TRAP_ACCEPTED;
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
