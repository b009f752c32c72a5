#include "trapconf.h"

#include <arpa/inet.h>
#include <errno.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "../common/config.h"
#include "../common/util.h"
#include "server.h"
#include "trap.h"
#include "netindex.h"
#include "trapmap.h"

/* net-snmp's enterprise number and format 4 (text), RFC 3411. */
static const uint8_t engine_id_prefix[] = { 0x80, 0x00, 0x1f, 0x88, 0x04 };

/* USM refuses shorter pass phrases (RFC 3414 section 11.2). */
#define PASSPHRASE_MIN 8

static const char *const default_mib_dirs[] = {
	"/usr/share/snmp/mibs",
	"/usr/share/snmp/mibs/iana",
	"/usr/share/snmp/mibs/ietf",
	"/usr/share/mibs/site",
	"/usr/share/mibs/iana",
	"/usr/share/mibs/ietf",
	"/usr/share/mibs/netsnmp",
	"/var/lib/mibs/iana",
	"/var/lib/mibs/ietf",
	"/etc/tocsin/mibs",
	NULL,
};

void trapconf_hash_secret(const uint8_t *secret, size_t len,
			  uint8_t out[TRAP_SECRET_HASH_LEN])
{
	crypto_generichash(out, TRAP_SECRET_HASH_LEN, secret, len, NULL, 0);
}

int trapconf_parse_cidr(const char *text, struct trap_cidr *ret)
{
	struct trap_cidr c = { 0 };
	char addr[INET6_ADDRSTRLEN + 1];
	const char *slash = strchr(text, '/');
	size_t alen = slash ? (size_t)(slash - text) : strlen(text);
	int64_t prefix;

	if (alen == 0 || alen >= sizeof(addr))
		return -EINVAL;
	memcpy(addr, text, alen);
	addr[alen] = '\0';
	if (inet_pton(AF_INET, addr, c.addr) == 1)
		c.family = AF_INET;
	else if (inet_pton(AF_INET6, addr, c.addr) == 1)
		c.family = AF_INET6;
	else
		return -EINVAL;
	c.prefix = c.family == AF_INET ? 32 : 128;
	if (slash != NULL) {
		if (parse_int64(slash + 1, &prefix) < 0 || prefix < 0 ||
		    prefix > (int64_t)c.prefix)
			return -EINVAL;
		c.prefix = (unsigned)prefix;
	}
	*ret = c;
	return 0;
}

bool trapconf_cidr_contains(const struct trap_cidr *c,
			    const struct sockaddr *sa)
{
	const uint8_t *a;
	unsigned full, rest;

	if (sa->sa_family != c->family)
		return false;
	a = c->family == AF_INET
		    ? (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr
		    : ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr;
	full = c->prefix / 8;
	rest = c->prefix % 8;
	if (memcmp(a, c->addr, full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((a[full] ^ c->addr[full]) & (uint8_t)(0xff << (8 - rest))) == 0;
}

bool trapconf_cidr_holds(const struct trap_cidr *net,
			 const struct trap_cidr *addr)
{
	struct sockaddr_storage ss = { .ss_family = (sa_family_t)addr->family };

	if (addr->family == AF_INET)
		memcpy(&((struct sockaddr_in *)&ss)->sin_addr, addr->addr, 4);
	else
		memcpy(&((struct sockaddr_in6 *)&ss)->sin6_addr, addr->addr, 16);
	return trapconf_cidr_contains(net, (const struct sockaddr *)&ss);
}

static int hexval(char ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	if (ch >= 'A' && ch <= 'F')
		return ch - 'A' + 10;
	return -1;
}

int trapconf_parse_engine_id(const char *text, struct trap_engine_id *ret)
{
	struct trap_engine_id e = { .len = 0 };
	const char *p = text;

	if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X'))
		p += 2;
	while (*p) {
		int hi, lo;

		if (*p == ':' || *p == ' ') {
			p++;
			continue;
		}
		hi = hexval(p[0]);
		lo = hi < 0 ? -1 : hexval(p[1]);
		if (lo < 0 || e.len == sizeof(e.id))
			return -EINVAL;
		e.id[e.len++] = (uint8_t)(hi << 4 | lo);
		p += 2;
	}
	/* RFC 3411: 5 to 32 octets. */
	if (e.len < 5)
		return -EINVAL;
	*ret = e;
	return 0;
}

static void free_users(struct trap_config *conf)
{
	for (size_t i = 0; i < conf->nusers; i++) {
		struct trap_user *u = &conf->users[i];

		free(u->name);
		if (u->auth_key)
			sodium_memzero(u->auth_key, strlen(u->auth_key));
		if (u->priv_key)
			sodium_memzero(u->priv_key, strlen(u->priv_key));
		free(u->auth_key);
		free(u->priv_key);
		free(u->engine_ids);
	}
	free(conf->users);
}

void trapconf_free(struct trap_config *conf)
{
	if (conf == NULL)
		return;
	for (size_t i = 0; i < conf->nlisten; i++)
		free(conf->listen[i].host);
	free(conf->listen);
	free(conf->user);
	cfg_string_list_free(conf->mib_dirs);
	free(conf->mappings_dir);
	free_users(conf);
	for (size_t i = 0; i < conf->nnetworks; i++)
		cfg_string_list_free(conf->networks[i].users);
	free(conf->networks);
	netindex_free(conf->network_index);
	for (size_t i = 0; i < conf->ndevices; i++) {
		free(conf->devices[i].host);
		free(conf->devices[i].addresses);
		cfg_string_list_free(conf->devices[i].users);
		free(conf->devices[i].sys_name);
	}
	free(conf->devices);
	free(conf->address_index);
	free(conf->engine_index);
	free(conf->name_index);
	trapmap_free(conf->map);
	free(conf);
}

/* Ours when none is configured: stable per host, so senders keep it. */
static void default_engine_id(struct trap_engine_id *e)
{
	char host[64] = "localhost";
	char text[sizeof(host) + 8];
	size_t n;

	gethostname(host, sizeof(host) - 1);
	host[sizeof(host) - 1] = '\0';
	snprintf(text, sizeof(text), "tocsin:%s", host);
	n = strlen(text);
	if (n > sizeof(e->id) - sizeof(engine_id_prefix))
		n = sizeof(e->id) - sizeof(engine_id_prefix);
	memcpy(e->id, engine_id_prefix, sizeof(engine_id_prefix));
	memcpy(e->id + sizeof(engine_id_prefix), text, n);
	e->len = sizeof(engine_id_prefix) + n;
}

static void parse_listen_node(struct cfg *cfg, const struct cfg_node *node,
			      struct trap_config *conf)
{
	struct trap_listen *l;
	char *text = NULL;

	if (cfg_node_string(cfg, node, &text) < 0)
		return;
	l = &conf->listen[conf->nlisten];
	if (parse_listen(text, &l->host, &l->port) < 0)
		cfg_error(cfg, node,
			  "'%s' is not host:port (use [addr]:port for IPv6, :port for every address)",
			  text);
	else
		conf->nlisten++;
	free(text);
}

static void parse_listen_list(struct cfg *cfg, const struct cfg_node *node,
			      struct trap_config *conf)
{
	size_t n = node && node->type == CFG_SEQ ? node->nitems : 1;

	conf->listen = xcalloc(n, sizeof(*conf->listen));
	if (node == NULL || node->type == CFG_NULL) {
		conf->listen[conf->nlisten++].port = 162;
		return;
	}
	if (node->type == CFG_SCALAR) {
		parse_listen_node(cfg, node, conf);
		return;
	}
	if (node->type != CFG_SEQ || node->nitems == 0) {
		cfg_error(cfg, node, "expected host:port or a list of them");
		return;
	}
	for (size_t i = 0; i < node->nitems; i++)
		parse_listen_node(cfg, node->items[i], conf);
}

static void parse_user(struct cfg *cfg, const struct cfg_node *node,
		       struct trap_config *conf)
{
	static const char *const auths[] = { "md5",    "sha",	 "sha224",
					     "sha256", "sha384", "sha512",
					     NULL };
	static const char *const privs[] = { "none",   "des",	 "aes",
					     "aes192", "aes256", NULL };
	struct trap_user *u = &conf->users[conf->nusers];
	int auth = TRAP_AUTH_SHA256, priv = TRAP_PRIV_NONE;
	const struct cfg_node *ids;

	if (node->type != CFG_MAP) {
		cfg_error(cfg, node, "expected a mapping with name, auth, auth_key, priv, priv_key");
		return;
	}
	cfg_get_string(cfg, node, "name", &u->name);
	cfg_get_enum(cfg, node, "auth", auths, &auth);
	cfg_get_string(cfg, node, "auth_key", &u->auth_key);
	cfg_get_enum(cfg, node, "priv", privs, &priv);
	cfg_get_string(cfg, node, "priv_key", &u->priv_key);
	u->auth = (enum trap_auth)auth;
	u->priv = (enum trap_priv)priv;
	if (u->name == NULL || u->name[0] == '\0' ||
	    strlen(u->name) > TRAP_USER_MAX || strpbrk(u->name, " \t\"'") != NULL)
		cfg_error(cfg, node, "a user needs a name of 1 to %d characters without spaces or quotes",
			  TRAP_USER_MAX);
	if (u->auth_key == NULL || strlen(u->auth_key) < PASSPHRASE_MIN)
		cfg_error(cfg, cfg_get(cfg, node, "auth_key") ? cfg_get(cfg, node, "auth_key") : node,
			  "auth_key: a pass phrase of at least %d characters is required",
			  PASSPHRASE_MIN);
	if (u->priv != TRAP_PRIV_NONE &&
	    (u->priv_key == NULL || strlen(u->priv_key) < PASSPHRASE_MIN))
		cfg_error(cfg, cfg_get(cfg, node, "priv_key") ? cfg_get(cfg, node, "priv_key") : node,
			  "priv_key: a pass phrase of at least %d characters is required with priv %s",
			  PASSPHRASE_MIN, privs[priv]);
	if (u->priv == TRAP_PRIV_NONE && u->priv_key != NULL)
		cfg_error(cfg, cfg_get(cfg, node, "priv_key"),
			  "priv_key is set but priv is none: say which cipher (aes, aes192, aes256, des)");
	ids = cfg_get(cfg, node, "engine_ids");
	if (ids != NULL && ids->type == CFG_SEQ) {
		u->engine_ids = xcalloc(ids->nitems ? ids->nitems : 1,
					sizeof(*u->engine_ids));
		for (size_t i = 0; i < ids->nitems; i++) {
			char *text = NULL;

			if (cfg_node_string(cfg, ids->items[i], &text) > 0 &&
			    trapconf_parse_engine_id(text, &u->engine_ids[u->nengine_ids]) == 0)
				u->nengine_ids++;
			else if (text != NULL)
				cfg_error(cfg, ids->items[i],
					  "'%s' is not an engine id (5 to 32 bytes in hex, 0x8000...)",
					  text);
			free(text);
		}
	} else if (ids != NULL && ids->type != CFG_NULL) {
		cfg_error(cfg, ids, "expected a list of engine ids");
	}
	for (size_t i = 0; u->name && i < conf->nusers; i++)
		if (strcmp(conf->users[i].name, u->name) == 0)
			cfg_error(cfg, node, "user '%s' is defined twice", u->name);
	conf->nusers++;
}

static const struct trap_user *find_user(const struct trap_config *conf,
					 const char *name)
{
	for (size_t i = 0; i < conf->nusers; i++)
		if (conf->users[i].name && strcmp(conf->users[i].name, name) == 0)
			return &conf->users[i];
	return NULL;
}

/* users: [a, b]; each must be one of traps.users. */
static char **parse_user_refs(struct cfg *cfg, const struct cfg_node *map,
			      const struct trap_config *conf)
{
	char **list = NULL;

	if (cfg_get_string_list(cfg, map, "users", &list) <= 0)
		return xcalloc(1, sizeof(char *));
	for (size_t i = 0; list[i]; i++)
		if (find_user(conf, list[i]) == NULL)
			cfg_error(cfg, cfg_get(cfg, map, "users"),
				  "no user '%s' under traps.users", list[i]);
	return list;
}

static void parse_community(struct cfg *cfg, const struct cfg_node *map,
			    bool *ret_has, uint8_t hash[TRAP_SECRET_HASH_LEN])
{
	char *community = NULL;

	if (cfg_get_string(cfg, map, "community", &community) <= 0)
		return;
	if (community[0] == '\0' || strlen(community) > TRAP_COMMUNITY_MAX)
		cfg_error(cfg, cfg_get(cfg, map, "community"),
			  "a community has 1 to %d characters", TRAP_COMMUNITY_MAX);
	trapconf_hash_secret((const uint8_t *)community, strlen(community), hash);
	sodium_memzero(community, strlen(community));
	free(community);
	*ret_has = true;
}

static void parse_network(struct cfg *cfg, const struct cfg_node *node,
			  struct trap_config *conf)
{
	struct trap_network *n = &conf->networks[conf->nnetworks];
	char *cidr = NULL;

	if (node->type != CFG_MAP) {
		cfg_error(cfg, node, "expected a mapping with cidr, community, users");
		return;
	}
	if (cfg_get_string(cfg, node, "cidr", &cidr) <= 0 ||
	    trapconf_parse_cidr(cidr, &n->cidr) < 0) {
		cfg_error(cfg, cfg_get(cfg, node, "cidr") ? cfg_get(cfg, node, "cidr") : node,
			  "cidr: expected a network such as 192.0.2.0/24 or 2001:db8::/32");
		free(cidr);
		return;
	}
	free(cidr);
	parse_community(cfg, node, &n->has_community, n->community_hash);
	n->users = parse_user_refs(cfg, node, conf);
	if (!n->has_community && n->users[0] == NULL)
		cfg_error(cfg, node, "a network needs a community or users");
	conf->nnetworks++;
}

/* The items of a list node (0 when absent or after an error). */
static size_t list_items(struct cfg *cfg, const struct cfg_node *node,
			 const char *what)
{
	if (node == NULL || node->type == CFG_NULL)
		return 0;
	if (node->type != CFG_SEQ) {
		cfg_error(cfg, node, "expected a list of %s", what);
		return 0;
	}
	return node->nitems;
}

/*
 * The addresses and engine ids of the devices as parsed, with where they
 * were written.  Checked for duplicates once every device is read, by
 * sorting (comparing each device with every earlier one was quadratic),
 * and then kept as the lookup indices.
 */
struct seen_key {
	struct trap_address_key key; /* engine ids: only key.device */
	size_t seq;		     /* order of appearance in the file */
	const struct cfg_node *node;
	char *text; /* as written */
	const struct trap_device *owner; /* the first device with the key, when not this one */
};

struct seen_keys {
	struct seen_key *items;
	size_t n, size;
};

/* k (of which key and node) as written in text. */
static void seen_add(struct seen_keys *s, const struct seen_key *k,
		     const char *text)
{
	if (s->n == s->size) {
		s->size = s->size ? 2 * s->size : 64;
		s->items = xreallocarray(s->items, s->size, sizeof(*s->items));
	}
	s->items[s->n] = *k;
	s->items[s->n].seq = s->n;
	s->items[s->n].text = xstrdup(text);
	s->n++;
}

static void seen_free(struct seen_keys *s)
{
	for (size_t i = 0; i < s->n; i++)
		free(s->items[i].text);
	free(s->items);
}

/* An address, kept for the duplicate check and the index. */
static void add_address(struct cfg *cfg, const struct cfg_node *node,
			const char *text, struct seen_keys *seen,
			struct trap_device *d)
{
	struct trap_cidr c;
	struct seen_key k = { .key.device = d, .node = node };

	if (trapconf_parse_cidr(text, &c) < 0 ||
	    c.prefix != (c.family == AF_INET ? 32u : 128u)) {
		cfg_error(cfg, node, "'%s' is not an IPv4 or IPv6 address", text);
		return;
	}
	k.key.family = c.family;
	memcpy(k.key.addr, c.addr, sizeof(k.key.addr));
	seen_add(seen, &k, text);
	d->addresses[d->naddresses++] = c;
}

static void parse_device_identity(struct cfg *cfg, const struct cfg_node *node,
				  struct seen_keys *seen_addresses,
				  struct seen_keys *seen_engines,
				  struct trap_device *d)
{
	char **addresses = NULL, *engine = NULL;

	if (cfg_get_string_list(cfg, node, "addresses", &addresses) > 0) {
		size_t n = 0;

		while (addresses[n])
			n++;
		d->addresses = xcalloc(n ? n : 1, sizeof(*d->addresses));
		for (size_t i = 0; i < n; i++)
			add_address(cfg, cfg_get(cfg, node, "addresses"),
				    addresses[i], seen_addresses, d);
	}
	cfg_string_list_free(addresses);
	if (cfg_get_string(cfg, node, "engine_id", &engine) > 0) {
		const struct cfg_node *at = cfg_get(cfg, node, "engine_id");

		if (trapconf_parse_engine_id(engine, &d->engine_id) < 0) {
			cfg_error(cfg, at,
				  "'%s' is not an engine id (5 to 32 bytes in hex, 0x8000...)",
				  engine);
		} else {
			d->has_engine_id = true;
			seen_add(seen_engines,
				 &(struct seen_key){ .key.device = d, .node = at },
				 engine);
		}
	}
	free(engine);
	cfg_get_string(cfg, node, "sys_name", &d->sys_name);
}

/* hosts.<name>.snmp: how a device is recognised and what it may use. */
static void parse_device(struct cfg *cfg, const char *host,
			 const struct cfg_node *node, struct trap_config *conf,
			 struct seen_keys *seen_addresses,
			 struct seen_keys *seen_engines)
{
	struct trap_device *d = &conf->devices[conf->ndevices];

	if (node->type != CFG_MAP) {
		cfg_error(cfg, node, "expected a mapping with addresses, community, users, engine_id, sys_name");
		return;
	}
	d->host = xstrdup(host);
	parse_device_identity(cfg, node, seen_addresses, seen_engines, d);
	parse_community(cfg, node, &d->has_community, d->community_hash);
	d->users = parse_user_refs(cfg, node, conf);
	if (d->naddresses == 0 && !d->has_engine_id && d->sys_name == NULL)
		cfg_error(cfg, node,
			  "a device needs addresses, engine_id or sys_name to be recognised by");
	conf->ndevices++;
}

static int address_cmp(const struct trap_address_key *a,
		       const struct trap_address_key *b)
{
	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	return memcmp(a->addr, b->addr, sizeof(a->addr));
}

static int engine_id_cmp(const struct trap_engine_id *a,
			 const struct trap_engine_id *b)
{
	if (a->len != b->len)
		return a->len < b->len ? -1 : 1;
	return memcmp(a->id, b->id, a->len);
}

/* What trapconf_device_by_name() compares. */
static const char *device_name(const struct trap_device *d)
{
	return d->sys_name ? d->sys_name : d->host;
}

static int seq_cmp(size_t a, size_t b)
{
	return a < b ? -1 : a > b;
}

/* qsort() orders of seen keys: by key, equal ones in order of appearance. */
static int seen_address_order(const void *pa, const void *pb)
{
	const struct seen_key *a = pa, *b = pb;
	int c = address_cmp(&a->key, &b->key);

	return c != 0 ? c : seq_cmp(a->seq, b->seq);
}

static int seen_engine_order(const void *pa, const void *pb)
{
	const struct seen_key *a = pa, *b = pb;
	int c = engine_id_cmp(&a->key.device->engine_id, &b->key.device->engine_id);

	return c != 0 ? c : seq_cmp(a->seq, b->seq);
}

static int seen_seq_order(const void *pa, const void *pb)
{
	const struct seen_key *const *a = pa, *const *b = pb;

	return seq_cmp((*a)->seq, (*b)->seq);
}

/*
 * Sort seen by order (key, then appearance) and report each key that an
 * earlier one has: "<what> X is already D's" at where the later one was
 * written, D the first device with it, in the order of the file.  The
 * duplicates are left with their owner set.
 */
static void report_duplicates(struct cfg *cfg, struct seen_keys *seen,
			      int (*order)(const void *, const void *),
			      const char *what)
{
	struct seen_key **dups;
	size_t ndups = 0, first = 0;

	if (seen->n == 0)
		return;
	qsort(seen->items, seen->n, sizeof(*seen->items), order);
	for (size_t i = 1; i < seen->n; i++) {
		struct seen_key a = seen->items[first], b = seen->items[i];

		/* Equal keys but for the order of appearance. */
		a.seq = b.seq = 0;
		if (order(&a, &b) != 0) {
			first = i;
			continue;
		}
		seen->items[i].owner = seen->items[first].key.device;
		ndups++;
	}
	if (ndups == 0)
		return;
	dups = xcalloc(ndups, sizeof(*dups));
	ndups = 0;
	for (size_t i = 0; i < seen->n; i++)
		if (seen->items[i].owner != NULL)
			dups[ndups++] = &seen->items[i];
	qsort(dups, ndups, sizeof(*dups), seen_seq_order);
	for (size_t i = 0; i < ndups; i++)
		cfg_error(cfg, dups[i]->node, "%s %s is already %s's", what,
			  dups[i]->text, dups[i]->owner->host);
	free(dups);
}

/* The address index: the sorted seen addresses, the first device's of each. */
static void index_addresses(struct trap_config *conf,
			    const struct seen_keys *seen)
{
	conf->address_index = xcalloc(seen->n ? seen->n : 1,
				      sizeof(*conf->address_index));
	for (size_t i = 0; i < seen->n; i++)
		if (seen->items[i].owner == NULL)
			conf->address_index[conf->naddress_index++] =
				seen->items[i].key;
}

static void index_engines(struct trap_config *conf,
			  const struct seen_keys *seen)
{
	conf->engine_index = xcalloc(seen->n ? seen->n : 1,
				     sizeof(*conf->engine_index));
	for (size_t i = 0; i < seen->n; i++)
		if (seen->items[i].owner == NULL)
			conf->engine_index[conf->nengine_index++] =
				seen->items[i].key.device;
}

/* By name ignoring case, equal names in the order of the configuration. */
static int device_name_order(const void *pa, const void *pb)
{
	const struct trap_device *const *a = pa, *const *b = pb;
	int c = strcasecmp(device_name(*a), device_name(*b));

	if (c != 0)
		return c;
	return *a < *b ? -1 : *a > *b;
}

/* Names may repeat: a sys_name is only a claim.  The first device keeps it. */
static void index_names(struct trap_config *conf)
{
	size_t n = 0;

	conf->name_index = xcalloc(conf->ndevices ? conf->ndevices : 1,
				   sizeof(*conf->name_index));
	for (size_t i = 0; i < conf->ndevices; i++)
		conf->name_index[i] = &conf->devices[i];
	qsort(conf->name_index, conf->ndevices, sizeof(*conf->name_index),
	      device_name_order);
	for (size_t i = 0; i < conf->ndevices; i++)
		if (n == 0 || strcasecmp(device_name(conf->name_index[n - 1]),
					 device_name(conf->name_index[i])) != 0)
			conf->name_index[n++] = conf->name_index[i];
	conf->nname_index = n;
}

static void parse_devices(struct cfg *cfg, const struct cfg_node *root,
			  struct trap_config *conf)
{
	const struct cfg_node *hosts = cfg_get(cfg, root, "hosts");
	struct seen_keys addresses = { 0 }, engines = { 0 };

	if (hosts == NULL || hosts->type != CFG_MAP)
		return;
	conf->devices = xcalloc(hosts->npairs + 1, sizeof(*conf->devices));
	for (size_t i = 0; i < hosts->npairs; i++) {
		const struct cfg_node *snmp =
			cfg_get(cfg, hosts->pairs[i].value, "snmp");

		if (snmp != NULL && snmp->type != CFG_NULL)
			parse_device(cfg, hosts->pairs[i].key, snmp, conf,
				     &addresses, &engines);
	}
	report_duplicates(cfg, &addresses, seen_address_order, "address");
	report_duplicates(cfg, &engines, seen_engine_order, "engine id");
	index_addresses(conf, &addresses);
	index_engines(conf, &engines);
	index_names(conf);
	seen_free(&addresses);
	seen_free(&engines);
}

static int address_key_order(const void *key, const void *member)
{
	return address_cmp(key, member);
}

const struct trap_device *trapconf_device_by_address(const struct trap_config *conf,
						     const struct sockaddr *sa)
{
	struct trap_address_key want = { .family = sa->sa_family };
	const struct trap_address_key *hit;

	if (sa->sa_family == AF_INET)
		memcpy(want.addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	else if (sa->sa_family == AF_INET6)
		memcpy(want.addr, ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr, 16);
	else
		return NULL;
	if (conf->naddress_index == 0)
		return NULL;
	hit = bsearch(&want, conf->address_index, conf->naddress_index,
		      sizeof(*conf->address_index), address_key_order);
	return hit != NULL ? hit->device : NULL;
}

static int engine_key_order(const void *key, const void *member)
{
	const struct trap_device *const *d = member;

	return engine_id_cmp(key, &(*d)->engine_id);
}

const struct trap_device *trapconf_device_by_engine(const struct trap_config *conf,
						    const uint8_t *id, size_t len)
{
	struct trap_engine_id want = { .len = len };
	const struct trap_device *const *hit;

	if (len == 0 || len > sizeof(want.id) || conf->nengine_index == 0)
		return NULL;
	memcpy(want.id, id, len);
	hit = bsearch(&want, conf->engine_index, conf->nengine_index,
		      sizeof(*conf->engine_index), engine_key_order);
	return hit != NULL ? *hit : NULL;
}

static int name_key_order(const void *key, const void *member)
{
	const struct trap_device *const *d = member;

	return strcasecmp(key, device_name(*d));
}

const struct trap_device *trapconf_device_by_name(const struct trap_config *conf,
						  const char *name)
{
	const struct trap_device *const *hit;

	if (conf->nname_index == 0)
		return NULL;
	hit = bsearch(name, conf->name_index, conf->nname_index,
		      sizeof(*conf->name_index), name_key_order);
	return hit != NULL ? *hit : NULL;
}

static void parse_sizes(struct cfg *cfg, const struct cfg_node *node,
			struct trap_config *conf)
{
	uint64_t size;
	int64_t v;

	if (cfg_get_size(cfg, node, "receive_buffer", &size) > 0) {
		if (size < 64 * 1024 || size > 1024ull * 1024 * 1024)
			cfg_error(cfg, cfg_get(cfg, node, "receive_buffer"),
				  "receive_buffer must be between 64KiB and 1GiB");
		else
			conf->receive_buffer = (size_t)size;
	}
	if (cfg_get_size(cfg, node, "max_packet", &size) > 0) {
		if (size < 484 || size > 65535)
			cfg_error(cfg, cfg_get(cfg, node, "max_packet"),
				  "max_packet must be between 484 (RFC 3417) and 65535 bytes");
		else
			conf->max_packet = (size_t)size;
	}
	if (cfg_get_size(cfg, node, "max_value", &size) > 0) {
		if (size < 16 || size > 65535)
			cfg_error(cfg, cfg_get(cfg, node, "max_value"),
				  "max_value must be between 16 and 65535 bytes");
		else
			conf->max_value = (size_t)size;
	}
	if (cfg_get_int(cfg, node, "max_varbinds", 1, 1024, &v) > 0)
		conf->max_varbinds = (size_t)v;
	if (cfg_get_int(cfg, node, "batch", 1, 100000, &v) > 0)
		conf->batch_max = (size_t)v;
	if (cfg_get_int(cfg, node, "backlog", 1000, 10000000, &v) > 0)
		conf->backlog_max = (size_t)v;
	if (cfg_get_int(cfg, node, "unknown_keep", 0, 1000000, &v) > 0)
		conf->unknown_keep = (size_t)v;
	if (cfg_get_int(cfg, node, "fallback_max", 1, 100000, &v) > 0)
		conf->fallback_max = (size_t)v;
}

/* One number of traps.rate_limit into *ret (untouched when absent). */
static void get_rate(struct cfg *cfg, const struct cfg_node *node,
		     const char *key, int64_t min, uint32_t *ret)
{
	int64_t v;

	if (cfg_get_int(cfg, node, key, min, 10000000, &v) > 0)
		*ret = (uint32_t)v;
}

/* traps.rate_limit: per source and per device, traps per second and burst. */
static void parse_rate_limit(struct cfg *cfg, const struct cfg_node *node,
			     struct trap_config *conf)
{
	if (cfg_expect_map(cfg, node) < 0)
		return;
	get_rate(cfg, node, "source", 0, &conf->source_rate);
	get_rate(cfg, node, "source_burst", 1, &conf->source_burst);
	get_rate(cfg, node, "device", 0, &conf->device_rate);
	get_rate(cfg, node, "device_burst", 1, &conf->device_burst);
}

static void parse_traps(struct cfg *cfg, const struct cfg_node *node,
			struct trap_config *conf)
{
	const struct cfg_node *list;
	char *engine = NULL;
	size_t n;

	parse_listen_list(cfg, cfg_get(cfg, node, "listen"), conf);
	cfg_get_string(cfg, node, "user", &conf->user);
	if (cfg_get_string(cfg, node, "engine_id", &engine) > 0 &&
	    trapconf_parse_engine_id(engine, &conf->engine_id) < 0)
		cfg_error(cfg, cfg_get(cfg, node, "engine_id"),
			  "'%s' is not an engine id (5 to 32 bytes in hex, 0x8000...)",
			  engine);
	free(engine);
	cfg_get_string_list(cfg, node, "mib_dirs", &conf->mib_dirs);
	cfg_get_string(cfg, node, "mappings_dir", &conf->mappings_dir);
	parse_sizes(cfg, node, conf);
	parse_rate_limit(cfg, cfg_get(cfg, node, "rate_limit"), conf);
	list = cfg_get(cfg, node, "users");
	n = list_items(cfg, list, "users");
	conf->users = xcalloc(n + 1, sizeof(*conf->users));
	for (size_t i = 0; i < n; i++)
		parse_user(cfg, list->items[i], conf);
	list = cfg_get(cfg, node, "networks");
	n = list_items(cfg, list, "networks");
	conf->networks = xcalloc(n + 1, sizeof(*conf->networks));
	for (size_t i = 0; i < n; i++)
		parse_network(cfg, list->items[i], conf);
	conf->network_index = netindex_new(conf->networks, conf->nnetworks);
}

static char **default_dirs(void)
{
	size_t n = ARRAY_SIZE(default_mib_dirs);
	char **list = xcalloc(n, sizeof(*list));

	for (size_t i = 0; default_mib_dirs[i]; i++)
		list[i] = xstrdup(default_mib_dirs[i]);
	return list;
}

int trapconf_parse(struct cfg *cfg, const struct cfg_node *root,
		   struct trap_config **ret)
{
	const struct cfg_node *node = cfg_get(cfg, root, "traps");
	struct trap_config *conf;
	int r;

	*ret = NULL;
	if (node == NULL)
		return 0;
	if (cfg_expect_map(cfg, node) < 0)
		return 0;
	conf = xcalloc(1, sizeof(*conf));
	conf->receive_buffer = 8 * 1024 * 1024;
	conf->max_packet = 16 * 1024;
	conf->max_varbinds = 64;
	conf->max_value = 2048;
	conf->batch_max = 5000;
	conf->backlog_max = 100000;
	conf->unknown_keep = 1000;
	/*
	 * Below what the writer sustains (20,000 traps/s and more), so that
	 * no one sender can build up the backlog alone; far above what a
	 * device sends in a link storm.
	 */
	conf->source_rate = 5000;
	conf->source_burst = 20000;
	conf->device_rate = 2000;
	conf->device_burst = 10000;
	conf->fallback_max = 50;
	conf->mappings_dir = xstrdup("/etc/tocsin/traps");
	default_engine_id(&conf->engine_id);
	parse_traps(cfg, node, conf);
	if (conf->mib_dirs == NULL)
		conf->mib_dirs = default_dirs();
	parse_devices(cfg, root, conf);

	/* The mappings need the MIB parser to resolve names. */
	r = trap_snmp_init(&conf->engine_id, conf->mib_dirs);
	if (r == -EBUSY)
		conf->mappings_unread = true; /* a reload: see trapconf.h */
	else if (r < 0)
		cfg_error(cfg, node, "net-snmp cannot be initialised: %s",
			  strerror(-r));
	conf->map = trapmap_new();
	if (!conf->mappings_unread)
		trapmap_load_dir(conf->map, conf->mappings_dir,
				 trap_mib_resolve, NULL, cfg);
	trapmap_finish(conf->map, cfg);
	*ret = conf;
	return 0;
}
