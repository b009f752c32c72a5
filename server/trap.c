#include "trap.h"

#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>
#include <net-snmp/library/keytools.h>
#include <net-snmp/library/lcd_time.h>
#include <net-snmp/library/snmpusm.h>

#include <arpa/inet.h>
#include <errno.h>
#include <locale.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../common/log.h"
#include "../common/util.h"
#include "netindex.h"
#include "trapnames.h"
#include "trapuserset.h"

/*
 * net-snmp is not thread-safe.  The listener thread decodes; a SIGHUP
 * reload resolves names of the mapping files on the main thread: one lock
 * for both.  Uncontended, it costs a few nanoseconds a datagram.
 */
static pthread_mutex_t snmp_lock = PTHREAD_MUTEX_INITIALIZER;

/* Localised users beyond those configured: a bound on what peers add. */
#define DISCOVERED_MAX 4096
#define KU_MAX 64

/* A configured user with its master keys (Ku), for localising on demand. */
struct engine_user {
	const struct trap_user *conf;
	int level; /* SNMP_SEC_LEVEL_AUTHNOPRIV or _AUTHPRIV */
	u_char auth_ku[KU_MAX];
	size_t auth_ku_len;
	u_char priv_ku[KU_MAX];
	size_t priv_ku_len;
};

/*
 * net-snmp's session needs a transport; ours sends nothing on its own: a
 * Report goes out on the socket the probe came in on, and an inform's
 * Response is captured to be sent after the commit.
 */
struct engine_transport {
	netsnmp_transport t; /* first: net-snmp frees the whole struct */
	struct trap_engine *e;
};

/* The source address of the PDU being decoded (its transport_data). */
struct peer {
	struct sockaddr_storage ss;
	socklen_t len;
};

struct trap_engine {
	/* The listener thread's current one (trap_engine_reconfigure()). */
	const struct trap_config *conf;
	struct trap_engine_id engine_id; /* ours, as net-snmp was started with */
	struct engine_transport *transport;
	void *sess; /* net-snmp's struct session_list */
	netsnmp_session *session;
	netsnmp_pdu *pdu; /* decoded last, for trap_inform_response() */
	int fd;		  /* the socket the datagram came in on */
	struct trap_ack *capture;
	struct engine_user *users;
	size_t nusers;
	/*
	 * The (engine id, user) pairs in USM's user list: filled from it
	 * when the engine starts, and kept with it by localise_user(),
	 * forget_user() and drop_forgotten(), the only ones that add or
	 * remove users.
	 */
	struct trapuserset *localised;
	atomic_size_t discovered; /* read by the metrics on an HTTP thread */
	u_char *buf; /* a copy of the datagram: USM writes into it */
	size_t buf_size;
};

static const char *const auth_names[] = {
	[TRAP_AUTH_MD5] = "MD5",       [TRAP_AUTH_SHA] = "SHA",
	[TRAP_AUTH_SHA224] = "SHA-224", [TRAP_AUTH_SHA256] = "SHA-256",
	[TRAP_AUTH_SHA384] = "SHA-384", [TRAP_AUTH_SHA512] = "SHA-512",
};

static const char *const priv_names[] = {
	[TRAP_PRIV_NONE] = NULL,	[TRAP_PRIV_DES] = "DES",
	[TRAP_PRIV_AES] = "AES",	[TRAP_PRIV_AES192] = "AES-192",
	[TRAP_PRIV_AES256] = "AES-256",
};

/* net-snmp's messages (one per bad packet) are noise but for debugging. */
static int snmp_log_bridge(int major, int minor, void *serverarg,
			   void *clientarg)
{
	const struct snmp_log_message *m = serverarg;
	size_t n;

	(void)major;
	(void)minor;
	(void)clientarg;
	if (m == NULL || m->msg == NULL)
		return 0;
	n = strlen(m->msg);
	while (n > 0 && m->msg[n - 1] == '\n')
		n--;
	log_debug("net-snmp: %.*s", (int)n, m->msg);
	return 0;
}

/*
 * Set by trap_snmp_seal() before the first thread starts.  Only the main
 * thread reads and writes it (start-up and SIGHUP reloads).
 */
static bool sealed;

void trap_snmp_seal(void)
{
	sealed = true;
}

int trap_snmp_init(const struct trap_engine_id *engine_id,
		   char *const *mib_dirs)
{
	static bool done;
	static int files;
	char boots[32];

	if (done)
		return files;
	/* setenv(), setlocale() and init_snmp() are not safe beside threads. */
	if (sealed)
		return -EBUSY;
	done = true;
	/* Nothing of net-snmp's own: no snmp.conf, no /var/lib/snmp files. */
	netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID,
			       NETSNMP_DS_LIB_DONT_READ_CONFIGS, 1);
	netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID,
			       NETSNMP_DS_LIB_DISABLE_PERSISTENT_LOAD, 1);
	netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID,
			       NETSNMP_DS_LIB_DISABLE_PERSISTENT_SAVE, 1);
	netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID,
			       NETSNMP_DS_LIB_DONT_LOAD_HOST_FILES, 1);
	/* Its TLS code scans (and would create) a directory under this. */
	netsnmp_ds_set_string(NETSNMP_DS_LIBRARY_ID,
			      NETSNMP_DS_LIB_PERSISTENT_DIR, "/dev/null");
	netsnmp_ds_set_int(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_MIB_WARNINGS, 0);
	snmp_disable_log();
	netsnmp_register_loghandler(NETSNMP_LOGHANDLER_CALLBACK, LOG_DEBUG);
	snmp_register_callback(SNMP_CALLBACK_LIBRARY, SNMP_CALLBACK_LOGGING,
			       snmp_log_bridge, NULL);
	/* Our engine id must be in place before init, which caches it. */
	set_exact_engineID(engine_id->id, engine_id->len);
	/* No default directories or modules: we index ours below. */
	netsnmp_set_mib_directory("");
	setenv("MIBS", "", 1);
	init_snmp("tocsin-server");
	unsetenv("MIBS");
	/*
	 * snmpEngineBoots must grow with every start, or a captured inform
	 * could be replayed within the time window after a restart; seconds
	 * since 2020 grow without a file to keep them in (and fit 31 bits
	 * until 2088).  Set after init, which starts a new engine at 1.
	 */
	snprintf(boots, sizeof(boots), "%lld",
		 (long long)(time_now_ms() / 1000 - 1577836800));
	engineBoots_conf("engineBoots", boots);
	set_enginetime(engine_id->id, engine_id->len,
		       snmpv3_local_snmpEngineBoots(),
		       snmpv3_local_snmpEngineTime(), TRUE);
	/* init_snmp() set LC_CTYPE from the environment; keep the C locale. */
	setlocale(LC_CTYPE, "C");
	for (size_t i = 0; mib_dirs && mib_dirs[i]; i++) {
		struct stat st;
		int n;

		if (stat(mib_dirs[i], &st) < 0 || !S_ISDIR(st.st_mode))
			continue;
		n = add_mibdir(mib_dirs[i]);
		if (n > 0)
			files += n;
	}
	if (files > 0)
		read_all_mibs();
	return files;
}

int trap_mib_resolve(void *arg, const char *name, struct trap_oid *ret)
{
	oid buf[MAX_OID_LEN];
	size_t len = MAX_OID_LEN;
	oid *found;

	(void)arg;
	pthread_mutex_lock(&snmp_lock);
	found = snmp_parse_oid(name, buf, &len);
	pthread_mutex_unlock(&snmp_lock);
	if (found == NULL || len > TRAP_OID_MAX)
		return -ENOENT;
	for (size_t i = 0; i < len; i++) {
		if (buf[i] > UINT32_MAX)
			return -ENOENT;
		ret->sub[i] = (uint32_t)buf[i];
	}
	ret->len = len;
	return 0;
}

/* --- the transport: replies go out on the socket the request came in on */

static int transport_send(netsnmp_transport *t, const void *buf, int len,
			  void **opaque, int *olength)
{
	struct trap_engine *e = ((struct engine_transport *)t)->e;
	const struct peer *to = opaque ? *opaque : NULL;
	struct trap_ack *cap = e->capture;

	(void)olength;
	if (to == NULL || len <= 0)
		return -1;
	if (cap != NULL) {
		cap->fd = e->fd;
		memcpy(&cap->to, &to->ss, to->len);
		cap->tolen = to->len;
		free(cap->data);
		cap->data = xcalloc(1, (size_t)len);
		memcpy(cap->data, buf, (size_t)len);
		cap->len = (size_t)len;
		return len;
	}
	return (int)sendto(e->fd, buf, (size_t)len, MSG_DONTWAIT,
			   (const struct sockaddr *)&to->ss, to->len);
}

static int transport_recv(netsnmp_transport *t, void *buf, int size,
			  void **opaque, int *olength)
{
	/* We read the sockets ourselves (recvmmsg) and call snmp_parse(). */
	(void)t;
	(void)buf;
	(void)size;
	(void)opaque;
	(void)olength;
	return -1;
}

static int transport_close(netsnmp_transport *t)
{
	(void)t;
	return 0; /* the listener owns the sockets */
}

static char *transport_fmtaddr(netsnmp_transport *t, const void *data,
			       int len)
{
	const struct peer *p = data;
	char host[INET6_ADDRSTRLEN] = "?";

	(void)t;
	if (p != NULL && len == (int)sizeof(*p)) {
		if (p->ss.ss_family == AF_INET)
			inet_ntop(AF_INET,
				  &((const struct sockaddr_in *)&p->ss)->sin_addr,
				  host, sizeof(host));
		else if (p->ss.ss_family == AF_INET6)
			inet_ntop(AF_INET6,
				  &((const struct sockaddr_in6 *)&p->ss)->sin6_addr,
				  host, sizeof(host));
	}
	return strdup(host);
}

/* --- users ------------------------------------------------------------- */

static void hex_encode(const u_char *data, size_t len, char *out, size_t size)
{
	static const char hex[] = "0123456789abcdef";
	size_t j = 0;

	for (size_t i = 0; i < len && j + 2 < size; i++) {
		out[j++] = hex[data[i] >> 4];
		out[j++] = hex[data[i] & 0xf];
	}
	out[j] = '\0';
}

/*
 * Add u to net-snmp's user list, localised to engine: the same line a
 * snmptrapd.conf createUser would hold, with master keys instead of pass
 * phrases so that localising again (a new engine) is cheap.  0 or -EINVAL.
 */
static int localise_user(const struct trap_engine *e,
			 const struct engine_user *u, const u_char *engine,
			 size_t engine_len)
{
	char eid[TRAP_ENGINE_ID_MAX * 2 + 1], auth[KU_MAX * 2 + 1],
		priv[KU_MAX * 2 + 1], line[1024];
	int n;

	hex_encode(engine, engine_len, eid, sizeof(eid));
	hex_encode(u->auth_ku, u->auth_ku_len, auth, sizeof(auth));
	if (u->conf->priv == TRAP_PRIV_NONE) {
		n = snprintf(line, sizeof(line), "-e %s %s %s -m %s", eid,
			     u->conf->name, auth_names[u->conf->auth], auth);
	} else {
		hex_encode(u->priv_ku, u->priv_ku_len, priv, sizeof(priv));
		n = snprintf(line, sizeof(line), "-e %s %s %s -m %s %s -m %s",
			     eid, u->conf->name, auth_names[u->conf->auth],
			     auth, priv_names[u->conf->priv], priv);
	}
	if (n > 0 && (size_t)n < sizeof(line))
		usm_parse_create_usmUser("createUser", line);
	sodium_memzero(line, sizeof(line));
	sodium_memzero(auth, sizeof(auth));
	sodium_memzero(priv, sizeof(priv));
	/* At the head, and so found at once, when localise_plan() adds. */
	if (usm_get_user(engine, engine_len, u->conf->name) == NULL)
		return -EINVAL;
	trapuserset_add(e->localised, engine, engine_len, u->conf->name);
	return 0;
}

static void forget_user(const struct trap_engine *e, const char *name,
			const u_char *engine, size_t engine_len)
{
	struct usmUser *u = usm_get_user(engine, engine_len, name);

	if (u != NULL) {
		usm_remove_user(u);
		usm_free_user(u);
	}
	trapuserset_remove(e->localised, engine, engine_len, name);
}

/* Master keys from the pass phrases (RFC 3414 A.2: a megabyte of hashing). */
static int derive_keys(const struct trap_user *conf, struct engine_user *u)
{
	const oid *proto;
	size_t proto_len;
	int type = usm_lookup_auth_type(auth_names[conf->auth]);

	u->conf = conf;
	u->level = conf->priv == TRAP_PRIV_NONE ? SNMP_SEC_LEVEL_AUTHNOPRIV
						: SNMP_SEC_LEVEL_AUTHPRIV;
	proto = type < 0 ? NULL : sc_get_auth_oid(type, &proto_len);
	if (proto == NULL)
		return -EINVAL;
	u->auth_ku_len = sizeof(u->auth_ku);
	if (generate_Ku(proto, (u_int)proto_len, (const u_char *)conf->auth_key,
			strlen(conf->auth_key), u->auth_ku,
			&u->auth_ku_len) != SNMPERR_SUCCESS)
		return -EINVAL;
	if (conf->priv == TRAP_PRIV_NONE)
		return 0;
	if (usm_lookup_priv_type(priv_names[conf->priv]) < 0)
		return -ENOTSUP;
	u->priv_ku_len = sizeof(u->priv_ku);
	if (generate_Ku(proto, (u_int)proto_len, (const u_char *)conf->priv_key,
			strlen(conf->priv_key), u->priv_ku,
			&u->priv_ku_len) != SNMPERR_SUCCESS)
		return -EINVAL;
	return 0;
}

static const struct engine_user *find_user(const struct trap_engine *e,
					   const char *name)
{
	for (size_t i = 0; i < e->nusers; i++)
		if (strcmp(e->users[i].conf->name, name) == 0)
			return &e->users[i];
	return NULL;
}

/* The configured device with this engine id, or NULL. */
static const struct trap_device *device_of_engine(const struct trap_engine *e,
						  const u_char *engine,
						  size_t len)
{
	return trapconf_device_by_engine(e->conf, engine, len);
}

/* One user to localise to one engine: the work of a start or a reload. */
struct localisation {
	const struct engine_user *u;
	const struct trap_engine_id *engine;
};

struct localise_plan {
	struct localisation *items;
	size_t n, size;
};

static void plan_add(struct localise_plan *p, const struct engine_user *u,
		     const struct trap_engine_id *engine)
{
	if (p->n == p->size) {
		p->size = p->size ? 2 * p->size : 64;
		p->items = xreallocarray(p->items, p->size, sizeof(*p->items));
	}
	p->items[p->n++] = (struct localisation){ .u = u, .engine = engine };
}

/* Each of users (NULL-terminated) to d's engine id. */
static void plan_listed(struct localise_plan *p, const struct trap_engine *e,
			const struct trap_device *d, char *const *users)
{
	for (size_t k = 0; users[k]; k++) {
		const struct engine_user *u = find_user(e, users[k]);

		if (u != NULL)
			plan_add(p, u, &d->engine_id);
	}
}

/*
 * A device with an engine id gets the users it may use (its own, those of
 * networks holding one of its addresses) localised to that engine at
 * start: its traps never need discovery, and discovery never localises a
 * user to a configured device's engine id (and again after a reload,
 * for the users a device gained).  The networks come from the index
 * (netindex.h), each once and in the configuration's order, as a scan of
 * them would give.
 */
static void plan_device_users(struct localise_plan *p,
			      const struct trap_engine *e)
{
	const struct trap_config *conf = e->conf;
	struct netindex_hits hits = { 0 };

	for (size_t i = 0; i < conf->ndevices; i++) {
		const struct trap_device *d = &conf->devices[i];

		if (!d->has_engine_id)
			continue;
		plan_listed(p, e, d, d->users);
		hits.n = 0;
		for (size_t a = 0; a < d->naddresses; a++)
			netindex_find(conf->network_index, &d->addresses[a], &hits);
		netindex_hits_sort(&hits);
		for (size_t k = 0; k < hits.n; k++)
			plan_listed(p, e, d, conf->networks[hits.v[k]].users);
	}
	netindex_hits_free(&hits);
}

/* u localised to our engine (informs) and to the engines configured for it. */
static void plan_configured(struct localise_plan *p,
			    const struct trap_engine *e,
			    const struct engine_user *u)
{
	plan_add(p, u, &e->engine_id);
	for (size_t k = 0; k < u->conf->nengine_ids; k++)
		plan_add(p, u, &u->conf->engine_ids[k]);
}

/*
 * The order of USM's user list (usm_add_user_to_list()): engine id
 * length, engine id, name length, name.
 */
static int usm_order(const u_char *a_engine, size_t a_len, const char *a_name,
		     const u_char *b_engine, size_t b_len, const char *b_name)
{
	size_t a_name_len = strlen(a_name), b_name_len = strlen(b_name);
	int c;

	if (a_len != b_len)
		return a_len < b_len ? -1 : 1;
	c = memcmp(a_engine, b_engine, a_len);
	if (c != 0)
		return c;
	if (a_name_len != b_name_len)
		return a_name_len < b_name_len ? -1 : 1;
	return strcmp(a_name, b_name);
}

static int usm_user_order(const struct usmUser *a, const struct usmUser *b)
{
	return usm_order(a->engineID, a->engineIDLen, a->name ? a->name : "",
			 b->engineID, b->engineIDLen, b->name ? b->name : "");
}

/*
 * USM's order reversed, from the greatest: usm_add_user() walks the list
 * from its head to the first greater user, so adding in this order to an
 * empty list puts each at the head at once, where usm_get_user() finds
 * it at once too.
 */
static int localisation_order(const void *pa, const void *pb)
{
	const struct localisation *a = pa, *b = pb;

	return -usm_order(a->engine->id, a->engine->len, a->u->conf->name,
			  b->engine->id, b->engine->len, b->u->conf->name);
}

/*
 * USM's users, off its list.  net-snmp inserts into and removes from its
 * sorted list by walking it from the head, so that adding or removing
 * thousands of localisations one by one (a start, a reload that changes
 * a user every device lists) was quadratic.  Instead the list is taken
 * off whole (from the head: O(1) each), worked on, and put back merged,
 * the greatest first (to the head: O(1) each).  Only under snmp_lock,
 * or before the threads start: nothing may look at USM meanwhile.
 */
struct usm_users {
	struct usmUser **items;
	size_t n, size;
};

/* Everything on USM's list into *ret, in its order; the list is empty after. */
static void usm_take_all(struct usm_users *ret)
{
	struct usmUser *u;

	while ((u = usm_get_userList()) != NULL) {
		usm_remove_user(u);
		if (ret->n == ret->size) {
			ret->size = ret->size ? 2 * ret->size : 64;
			ret->items = xreallocarray(ret->items, ret->size,
						   sizeof(*ret->items));
		}
		ret->items[ret->n++] = u;
	}
}

/* a and b (each in USM's order) back onto USM's empty list; frees both arrays. */
static void usm_put_back(struct usm_users *a, struct usm_users *b)
{
	size_t i = a->n, k = b->n;

	while (i > 0 || k > 0) {
		if (k == 0 || (i > 0 && usm_user_order(a->items[i - 1],
						       b->items[k - 1]) >= 0))
			usm_add_user(a->items[--i]);
		else
			usm_add_user(b->items[--k]);
	}
	free(a->items);
	free(b->items);
	*a = *b = (struct usm_users){ 0 };
}

/*
 * Localise what p holds, each pair once and only when USM does not hold
 * it yet (e->localised), with held, USM's list as usm_take_all() took
 * it, put back after.  Returns the localisations USM refused: with stop,
 * it stops at the first.  Frees p's items.
 */
static int localise_plan(const struct trap_engine *e, struct localise_plan *p,
			 struct usm_users *held, bool stop)
{
	struct usm_users added = { 0 };
	int failed = 0;

	if (p->n > 0)
		qsort(p->items, p->n, sizeof(*p->items), localisation_order);
	for (size_t i = 0; i < p->n && !(stop && failed); i++) {
		const struct localisation *l = &p->items[i];

		if (i > 0 && localisation_order(&p->items[i - 1], l) == 0)
			continue;
		if (trapuserset_has(e->localised, l->engine->id, l->engine->len,
				    l->u->conf->name))
			continue;
		if (localise_user(e, l->u, l->engine->id, l->engine->len) < 0)
			failed++;
	}
	usm_take_all(&added);
	usm_put_back(held, &added);
	free(p->items);
	*p = (struct localise_plan){ 0 };
	return failed;
}

/*
 * Every user for our engine (informs), the engines configured for it,
 * and the engines of the devices that list it.
 */
static int add_users(struct trap_engine *e)
{
	const struct trap_config *conf = e->conf;
	struct localise_plan plan = { 0 };
	struct usm_users held = { 0 };
	int r;

	e->users = xcalloc(conf->nusers ? conf->nusers : 1, sizeof(*e->users));
	for (size_t i = 0; i < conf->nusers; i++) {
		struct engine_user *u = &e->users[e->nusers++];

		r = derive_keys(&conf->users[i], u);
		if (r < 0) {
			free(plan.items);
			return r;
		}
		plan_configured(&plan, e, u);
	}
	plan_device_users(&plan, e);
	usm_take_all(&held);
	return localise_plan(e, &plan, &held, true) > 0 ? -EINVAL : 0;
}

/* Whether a and b are one user: name, protocols, pass phrases, engines. */
static bool user_same(const struct trap_user *a, const struct trap_user *b)
{
	if (strcmp(a->name, b->name) != 0 || a->auth != b->auth ||
	    a->priv != b->priv || str_differs(a->auth_key, b->auth_key) ||
	    str_differs(a->priv_key, b->priv_key) ||
	    a->nengine_ids != b->nengine_ids)
		return false;
	for (size_t i = 0; i < a->nengine_ids; i++)
		if (a->engine_ids[i].len != b->engine_ids[i].len ||
		    memcmp(a->engine_ids[i].id, b->engine_ids[i].id,
			   a->engine_ids[i].len) != 0)
			return false;
	return true;
}

/*
 * Out of held (USM's list, taken off), every localisation of a user of e
 * that a reload does not keep (gone, or changed: keep[i] false for
 * e->users[i]), to any engine, discovered ones too.
 */
static void drop_forgotten(const struct trap_engine *e, const bool *keep,
			   struct usm_users *held)
{
	size_t n = 0;

	for (size_t i = 0; i < held->n; i++) {
		struct usmUser *u = held->items[i];
		bool forget = false;

		for (size_t k = 0; !forget && u->secName && k < e->nusers; k++)
			forget = !keep[k] &&
				 strcmp(e->users[k].conf->name, u->secName) == 0;
		if (!forget) {
			held->items[n++] = u;
			continue;
		}
		trapuserset_remove(e->localised, u->engineID, u->engineIDLen,
				   u->secName);
		usm_free_user(u);
	}
	held->n = n;
}

/*
 * The localisations discovery made, counted from USM's list: those of
 * users without engine_ids to an engine neither ours nor a configured
 * device's (the ones discovery may add, see try_discover()).  Called
 * after a reload forgot some, so that the count towards DISCOVERED_MAX
 * is what is held.  Under snmp_lock.
 */
static size_t count_discovered(const struct trap_engine *e)
{
	size_t n = 0;

	for (struct usmUser *u = usm_get_userList(); u != NULL; u = u->next) {
		const struct engine_user *eu;

		if (u->secName == NULL || u->engineIDLen == 0)
			continue;
		eu = find_user(e, u->secName);
		if (eu == NULL || eu->conf->nengine_ids > 0)
			continue;
		if (u->engineIDLen == e->engine_id.len &&
		    memcmp(u->engineID, e->engine_id.id, u->engineIDLen) == 0)
			continue;
		if (device_of_engine(e, u->engineID, u->engineIDLen) == NULL)
			n++;
	}
	return n;
}

static void wipe_users(struct engine_user *users, size_t n)
{
	if (users != NULL)
		sodium_memzero(users, n * sizeof(*users));
	free(users);
}

int trap_engine_reconfigure(struct trap_engine *e,
			    const struct trap_config *conf)
{
	size_t n = conf->nusers;
	struct engine_user *users = xcalloc(n ? n : 1, sizeof(*users));
	bool *fresh = xcalloc(n ? n : 1, sizeof(*fresh)), *keep = NULL;
	struct localise_plan plan = { 0 };
	struct usm_users held = { 0 };
	int r = 0;

	/* The keys first, before USM changes: a failure here changes nothing. */
	for (size_t i = 0; r == 0 && i < n; i++) {
		const struct engine_user *old = find_user(e, conf->users[i].name);

		if (old != NULL && user_same(old->conf, &conf->users[i])) {
			users[i] = *old;
			users[i].conf = &conf->users[i];
		} else {
			fresh[i] = true;
			r = derive_keys(&conf->users[i], &users[i]);
		}
	}
	if (r < 0)
		goto out;
	keep = xcalloc(e->nusers ? e->nusers : 1, sizeof(*keep));
	for (size_t i = 0; i < e->nusers; i++)
		for (size_t k = 0; !keep[i] && k < n; k++)
			keep[i] = !fresh[k] &&
				  strcmp(conf->users[k].name, e->users[i].conf->name) == 0;
	pthread_mutex_lock(&snmp_lock);
	usm_take_all(&held);
	drop_forgotten(e, keep, &held);
	wipe_users(e->users, e->nusers);
	e->users = users;
	e->nusers = n;
	e->conf = conf;
	users = NULL;
	/* Applied now: what USM refuses is counted, the rest goes on. */
	for (size_t i = 0; i < n; i++)
		if (fresh[i])
			plan_configured(&plan, e, &e->users[i]);
	plan_device_users(&plan, e);
	r = localise_plan(e, &plan, &held, false);
	atomic_store(&e->discovered, count_discovered(e));
	pthread_mutex_unlock(&snmp_lock);
out:
	wipe_users(users, n);
	free(fresh);
	free(keep);
	return r;
}

int trap_engine_new(const struct trap_config *conf, struct trap_engine **ret)
{
	struct trap_engine *e = xcalloc(1, sizeof(*e));
	struct engine_transport *et = xcalloc(1, sizeof(*et));
	netsnmp_session s;
	int r;

	e->conf = conf;
	e->engine_id = conf->engine_id;
	e->fd = -1;
	e->buf_size = conf->max_packet;
	e->buf = xcalloc(1, e->buf_size);
	e->localised = trapuserset_new();
	r = trap_snmp_init(&conf->engine_id, conf->mib_dirs);
	if (r < 0)
		goto fail;
	/* USM's list outlives an engine (another in this process made some). */
	for (struct usmUser *u = usm_get_userList(); u != NULL; u = u->next)
		if (u->secName != NULL)
			trapuserset_add(e->localised, u->engineID,
					u->engineIDLen, u->secName);
	r = add_users(e);
	if (r < 0)
		goto fail;

	et->e = e;
	et->t.sock = -1;
	et->t.flags = NETSNMP_TRANSPORT_FLAG_OPENED;
	et->t.msgMaxSize = conf->max_packet;
	et->t.domain = netsnmpUDPDomain;
	et->t.domain_length = netsnmpUDPDomain_len;
	et->t.f_send = transport_send;
	et->t.f_recv = transport_recv;
	et->t.f_close = transport_close;
	et->t.f_fmtaddr = transport_fmtaddr;
	snmp_sess_init(&s);
	s.version = SNMP_DEFAULT_VERSION;     /* any version */
	s.isAuthoritative = SNMP_SESS_UNKNOWNAUTH; /* informs yes, traps no */
	s.flags |= SNMP_FLAGS_DONT_PROBE;
	s.rcvMsgMaxSize = conf->max_packet;
	s.sndMsgMaxSize = conf->max_packet;
	e->sess = snmp_sess_add_ex(&s, &et->t, NULL, NULL, NULL, NULL, NULL,
				   NULL, NULL);
	et = NULL; /* the session owns it now, even when adding failed */
	if (e->sess == NULL) {
		r = -ENOMEM;
		goto fail;
	}
	e->session = snmp_sess_session(e->sess);
	*ret = e;
	return 0;
fail:
	free(et);
	trap_engine_free(e);
	return r;
}

void trap_engine_free(struct trap_engine *e)
{
	if (e == NULL)
		return;
	if (e->pdu != NULL)
		snmp_free_pdu(e->pdu);
	if (e->sess != NULL)
		snmp_sess_close(e->sess);
	wipe_users(e->users, e->nusers);
	trapuserset_free(e->localised);
	free(e->buf);
	free(e);
}

size_t trap_engine_discovered(const struct trap_engine *e)
{
	return atomic_load(&e->discovered);
}

int trap_engine_seed_clock(struct trap_engine *e, const uint8_t *engine,
			   size_t len, uint32_t boots, uint32_t time)
{
	int r;

	if (len == 0 || len > TRAP_ENGINE_ID_MAX)
		return -EINVAL;
	/* Our own engine keeps its own clock. */
	if (len == e->engine_id.len &&
	    memcmp(engine, e->engine_id.id, len) == 0)
		return 0;
	pthread_mutex_lock(&snmp_lock);
	r = set_enginetime(engine, (u_int)len, boots, time, TRUE);
	pthread_mutex_unlock(&snmp_lock);
	return r == SNMPERR_SUCCESS ? 0 : -ENOMEM;
}

/* --- decoding -------------------------------------------------------- */

/* What a parse failure means for the counters. */
static enum trap_outcome parse_failure(const netsnmp_pdu *pdu, int rc)
{
	bool reportable = pdu->flags & SNMP_MSG_FLAG_RPRT_BIT;

	switch (rc) {
	case SNMPERR_JUST_A_CONTEXT_PROBE:
		return TRAP_DISCOVERY;
	case SNMPERR_USM_UNKNOWNENGINEID:
		/*
		 * A probe (no engine id at all) is a sender learning ours for
		 * informs; any other engine id is just not ours, Report or not.
		 */
		return reportable && pdu->securityEngineIDLen == 0
			       ? TRAP_DISCOVERY
			       : TRAP_UNKNOWN_ENGINE_ID;
	case SNMPERR_USM_NOTINTIMEWINDOW:
		/*
		 * Refused, even though the Report with our boots and time lets
		 * an honest sender resync and send again.
		 */
		return TRAP_NOT_IN_TIME_WINDOW;
	case SNMPERR_USM_UNKNOWNSECURITYNAME:
		return TRAP_UNKNOWN_USER;
	case SNMPERR_USM_AUTHENTICATIONFAILURE:
		return TRAP_AUTH_FAILURE;
	case SNMPERR_USM_DECRYPTIONERROR:
		return TRAP_DECRYPTION_FAILURE;
	case SNMPERR_USM_UNSUPPORTEDSECURITYLEVEL:
		return TRAP_SECURITY_LEVEL;
	default:
		/*
		 * The digest is checked before decryption: an authPriv
		 * message that authenticated and then does not parse was
		 * encrypted with another privacy key.
		 */
		if (pdu->version == SNMP_VERSION_3 &&
		    pdu->securityLevel == SNMP_SEC_LEVEL_AUTHPRIV &&
		    pdu->securityName != NULL && pdu->securityName[0] != '\0')
			return TRAP_DECRYPTION_FAILURE;
		return TRAP_MALFORMED;
	}
}

/* One parse of the datagram into a fresh PDU; rc as snmp_parse(). */
static int parse_once(struct trap_engine *e, const uint8_t *data, size_t len,
		      const struct sockaddr *from, socklen_t fromlen)
{
	struct peer *p = xcalloc(1, sizeof(*p));

	if (e->pdu != NULL)
		snmp_free_pdu(e->pdu);
	e->pdu = snmp_pdu_create(0);
	memcpy(&p->ss, from, fromlen > sizeof(p->ss) ? sizeof(p->ss) : fromlen);
	p->len = fromlen > sizeof(p->ss) ? sizeof(p->ss) : fromlen;
	e->pdu->transport_data = p;
	e->pdu->transport_data_length = sizeof(*p);
	e->pdu->tDomain = netsnmpUDPDomain;
	e->pdu->tDomainLen = netsnmpUDPDomain_len;
	/* USM zeroes the digest in the message it checks: parse a copy. */
	memcpy(e->buf, data, len);
	return snmp_parse(e->sess, e->session, e->pdu, e->buf, len);
}

/*
 * An authentic-looking v3 trap from an engine we have no keys for: when
 * its user is configured without engine_ids, localise the user to that
 * engine and parse again.  The user stays only if the trap authenticates
 * at the user's security level, so a stream of forged engine ids, or of
 * keyless (noAuthNoPriv) traps naming the user, leaves nothing behind.
 * Never onto a configured device's engine id: the users a device lists
 * are localised to it at start, any other user is not its to use.
 */
static int try_discover(struct trap_engine *e, int rc, const uint8_t *data,
			size_t len, const struct sockaddr *from,
			socklen_t fromlen)
{
	const netsnmp_pdu *pdu = e->pdu;
	const struct engine_user *u;
	u_char engine[TRAP_ENGINE_ID_MAX];
	size_t engine_len;

	if (rc != SNMPERR_USM_UNKNOWNSECURITYNAME ||
	    pdu->version != SNMP_VERSION_3 ||
	    (pdu->flags & SNMP_MSG_FLAG_RPRT_BIT) || pdu->securityName == NULL ||
	    pdu->securityEngineIDLen == 0 ||
	    pdu->securityEngineIDLen > sizeof(engine) ||
	    atomic_load(&e->discovered) >= DISCOVERED_MAX)
		return rc;
	u = find_user(e, pdu->securityName);
	if (u == NULL || u->conf->nengine_ids > 0)
		return rc;
	/* Checked before localising: the header says what the PDU claims. */
	if (pdu->securityLevel < SNMP_SEC_LEVEL_AUTHNOPRIV ||
	    pdu->securityLevel < u->level)
		return SNMPERR_USM_UNSUPPORTEDSECURITYLEVEL;
	engine_len = pdu->securityEngineIDLen;
	memcpy(engine, pdu->securityEngineID, engine_len);
	if (device_of_engine(e, engine, engine_len) != NULL)
		return rc;
	if (localise_user(e, u, engine, engine_len) < 0)
		return rc;
	rc = parse_once(e, data, len, from, fromlen);
	/* What was parsed counts, not what the header said. */
	if (rc == 0 && e->pdu->securityLevel < u->level)
		rc = SNMPERR_USM_UNSUPPORTEDSECURITYLEVEL;
	if (rc != 0)
		forget_user(e, u->conf->name, engine, engine_len);
	else
		atomic_fetch_add(&e->discovered, 1);
	return rc;
}

/*
 * USM records the clock of every engine a v3 trap names before it looks
 * for the user, so forged traps with ever new engine ids would grow that
 * list without end.  After a failure, forget an engine no user of ours is
 * localised to: its record only served timeliness checks we never reached.
 */
static void forget_engine(const struct trap_engine *e)
{
	const netsnmp_pdu *pdu = e->pdu;
	u_char engine[TRAP_ENGINE_ID_MAX];
	size_t len = pdu->securityEngineIDLen;
	Enginetime t;

	if (pdu->version != SNMP_VERSION_3 ||
	    (pdu->flags & SNMP_MSG_FLAG_RPRT_BIT) || len == 0 ||
	    len > sizeof(engine) || pdu->securityEngineID == NULL)
		return;
	memcpy(engine, pdu->securityEngineID, len);
	if (len == e->engine_id.len &&
	    memcmp(engine, e->engine_id.id, len) == 0)
		return;
	for (size_t i = 0; i < e->nusers; i++)
		if (trapuserset_has(e->localised, engine, len,
				    e->users[i].conf->name))
			return;
	/*
	 * A clock that an authentic trap set, or that was kept from an
	 * earlier run (trapclock.h), stays: forgetting it would let an old
	 * trap of that engine be replayed.
	 */
	t = search_enginetime_list(engine, (u_int)len);
	if (t != NULL && t->authenticatedFlag)
		return;
	free_enginetime(engine, len);
}

static void name_varbind(struct trap_msg *m, struct trap_varbind *v)
{
	const struct trapname *n = trapnames_by_oid(v->oid.sub, v->oid.len);
	char index[TRAP_OID_TEXT_MAX];
	oid buf[TRAP_OID_MAX];
	struct tree *t;
	size_t depth = 0;

	if (n != NULL) {
		v->name = n->name;
		trap_oid_format(v->oid.sub + n->len, v->oid.len - n->len,
				index, sizeof(index));
		v->index = trapmsg_store(m, index, strlen(index));
		if (v->type == TRAP_VALUE_INTEGER)
			v->label = trapnames_label(n, v->num);
		return;
	}
	for (size_t i = 0; i < v->oid.len; i++)
		buf[i] = v->oid.sub[i];
	t = get_tree(buf, v->oid.len, get_tree_head());
	/* Only objects have a syntax; plain OID assignments ("enterprises") do not. */
	if (t == NULL || t->type == TYPE_OTHER || t->type > TYPE_SIMPLE_LAST)
		return;
	for (struct tree *p = t; p; p = p->parent)
		depth++;
	if (depth > v->oid.len)
		return;
	v->name = trapmsg_store(m, t->label, strlen(t->label));
	trap_oid_format(v->oid.sub + depth, v->oid.len - depth, index,
			sizeof(index));
	v->index = trapmsg_store(m, index, strlen(index));
	if (v->type == TRAP_VALUE_INTEGER)
		for (struct enum_list *el = t->enums; el; el = el->next)
			if (el->value == v->num && el->label)
				v->label = trapmsg_store(m, el->label,
							 strlen(el->label));
}

/* The trap's name: built in, or a NOTIFICATION-TYPE from a MIB, or dotted. */
static void name_trap(struct trap_msg *m)
{
	const struct trapname *n =
		trapnames_exact(m->trap_oid.sub, m->trap_oid.len);
	char text[TRAP_OID_TEXT_MAX];
	oid buf[TRAP_OID_MAX];
	struct tree *t;
	size_t depth = 0;

	if (n != NULL) {
		m->trap_name = n->name;
		return;
	}
	for (size_t i = 0; i < m->trap_oid.len; i++)
		buf[i] = m->trap_oid.sub[i];
	t = get_tree(buf, m->trap_oid.len, get_tree_head());
	for (struct tree *p = t; p; p = p->parent)
		depth++;
	if (t != NULL && depth == m->trap_oid.len &&
	    (t->type == TYPE_NOTIFTYPE || t->type == TYPE_TRAPTYPE)) {
		m->trap_name = trapmsg_store(m, t->label, strlen(t->label));
		return;
	}
	trap_oid_format(m->trap_oid.sub, m->trap_oid.len, text, sizeof(text));
	m->trap_name = trapmsg_store(m, text, strlen(text));
}

static int copy_oid(const oid *src, size_t len, struct trap_oid *dst)
{
	if (len > TRAP_OID_MAX)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (src[i] > UINT32_MAX)
			return -EINVAL;
		dst->sub[i] = (uint32_t)src[i];
	}
	dst->len = len;
	return 0;
}

/* The value of vars into v; -E2BIG over max_value, -EINVAL when odd. */
static int convert_value(struct trap_msg *m, const netsnmp_variable_list *vars,
			 struct trap_varbind *v, size_t max_value)
{
	char text[TRAP_OID_TEXT_MAX];
	struct trap_oid o;

	switch (vars->type) {
	case ASN_INTEGER:
		v->type = TRAP_VALUE_INTEGER;
		v->num = *vars->val.integer;
		snprintf(text, sizeof(text), "%lld", (long long)v->num);
		break;
	case ASN_COUNTER:
	case ASN_GAUGE:
	case ASN_TIMETICKS:
	case ASN_UINTEGER:
		v->type = TRAP_VALUE_UNSIGNED;
		v->num = (int64_t)(*vars->val.integer & 0xffffffffUL);
		snprintf(text, sizeof(text), "%lld", (long long)v->num);
		break;
	case ASN_COUNTER64:
		v->type = TRAP_VALUE_COUNTER64;
		snprintf(text, sizeof(text), "%llu",
			 (unsigned long long)vars->val.counter64->high << 32 |
				 (vars->val.counter64->low & 0xffffffffUL));
		break;
	case ASN_OCTET_STR:
	case ASN_OPAQUE:
	case ASN_BIT_STR:
		if (vars->val_len > max_value)
			return -E2BIG;
		v->type = TRAP_VALUE_STRING;
		v->text = trapmsg_store_bytes(m, vars->val.string, vars->val_len);
		return 0;
	case ASN_OBJECT_ID:
		if (copy_oid(vars->val.objid, vars->val_len / sizeof(oid), &o) < 0)
			return -EINVAL;
		v->type = TRAP_VALUE_OID;
		trap_oid_format(o.sub, o.len, text, sizeof(text));
		break;
	case ASN_IPADDRESS:
		if (vars->val_len != 4)
			return -EINVAL;
		v->type = TRAP_VALUE_IPADDRESS;
		inet_ntop(AF_INET, vars->val.string, text, sizeof(text));
		break;
	default: /* NULL and the v2 exceptions */
		v->type = TRAP_VALUE_NULL;
		text[0] = '\0';
		break;
	}
	v->text = trapmsg_store(m, text, strlen(text));
	return 0;
}

static enum trap_outcome convert_varbinds(struct trap_engine *e,
					  struct trap_msg *m)
{
	bool have_trap_oid = e->pdu->command == SNMP_MSG_TRAP;

	for (netsnmp_variable_list *vars = e->pdu->variables; vars;
	     vars = vars->next_variable) {
		struct trap_varbind *v;
		struct trap_oid name;

		if (copy_oid(vars->name, vars->name_length, &name) < 0)
			return TRAP_MALFORMED;
		if (trap_oid_equal(name.sub, name.len, trapnames_sysuptime0,
				   ARRAY_SIZE(trapnames_sysuptime0))) {
			/* Not a varbind of the trap, but part of an inform's id. */
			if (vars->type == ASN_TIMETICKS) {
				m->uptime = (uint32_t)(*vars->val.integer &
						       0xffffffffUL);
				m->has_uptime = true;
			}
			continue;
		}
		if (trap_oid_equal(name.sub, name.len, trapnames_snmptrapoid0,
				   ARRAY_SIZE(trapnames_snmptrapoid0))) {
			if (vars->type != ASN_OBJECT_ID ||
			    copy_oid(vars->val.objid, vars->val_len / sizeof(oid),
				     &m->trap_oid) < 0 || m->trap_oid.len == 0)
				return TRAP_MALFORMED;
			have_trap_oid = true;
			continue;
		}
		v = trapmsg_add_varbind(m, e->conf->max_varbinds);
		if (v == NULL)
			return TRAP_OVERSIZED;
		v->oid = name;
		switch (convert_value(m, vars, v, e->conf->max_value)) {
		case -E2BIG:
			return TRAP_OVERSIZED;
		case 0:
			break;
		default:
			return TRAP_MALFORMED;
		}
		name_varbind(m, v);
	}
	return have_trap_oid ? TRAP_ACCEPTED : TRAP_MALFORMED;
}

/*
 * RFC 3584 3.1 (3): a generic v1 trap keeps its enterprise as a last
 * varbind, snmpTrapEnterprise.0, so that one vendor's coldStart can be
 * told from another's.  Added beyond traps.max_varbinds: it is ours.
 */
static enum trap_outcome add_trap_enterprise(const struct trap_engine *e,
					     const netsnmp_pdu *pdu,
					     struct trap_msg *m)
{
	static const uint32_t enterprise0[] = { 1, 3, 6, 1, 6, 3, 1, 1, 4, 3, 0 };
	char text[TRAP_OID_TEXT_MAX];
	struct trap_varbind *v;
	struct trap_oid o;

	if (pdu->command != SNMP_MSG_TRAP || pdu->trap_type == 6 ||
	    pdu->enterprise_length == 0)
		return TRAP_ACCEPTED;
	if (copy_oid(pdu->enterprise, pdu->enterprise_length, &o) < 0)
		return TRAP_MALFORMED;
	v = trapmsg_add_varbind(m, e->conf->max_varbinds + 1);
	if (v == NULL)
		return TRAP_OVERSIZED;
	memcpy(v->oid.sub, enterprise0, sizeof(enterprise0));
	v->oid.len = ARRAY_SIZE(enterprise0);
	v->type = TRAP_VALUE_OID;
	trap_oid_format(o.sub, o.len, text, sizeof(text));
	v->text = trapmsg_store(m, text, strlen(text));
	name_varbind(m, v);
	return TRAP_ACCEPTED;
}

/* RFC 3584 3.1: a v1 trap's OID, from its enterprise and trap numbers. */
static enum trap_outcome convert_v1(const netsnmp_pdu *pdu, struct trap_msg *m)
{
	if (pdu->trap_type < 0 || pdu->trap_type > 6)
		return TRAP_MALFORMED;
	if (pdu->trap_type != 6) {
		memcpy(m->trap_oid.sub, trapnames_snmptraps,
		       sizeof(trapnames_snmptraps));
		m->trap_oid.len = ARRAY_SIZE(trapnames_snmptraps);
		m->trap_oid.sub[m->trap_oid.len++] = (uint32_t)pdu->trap_type + 1;
	} else {
		if (copy_oid(pdu->enterprise, pdu->enterprise_length,
			     &m->trap_oid) < 0 ||
		    m->trap_oid.len + 2 > TRAP_OID_MAX ||
		    pdu->specific_type < 0 || pdu->specific_type > UINT32_MAX)
			return TRAP_MALFORMED;
		m->trap_oid.sub[m->trap_oid.len++] = 0;
		m->trap_oid.sub[m->trap_oid.len++] = (uint32_t)pdu->specific_type;
	}
	m->uptime = (uint32_t)(pdu->time & 0xffffffffUL);
	m->has_uptime = true;
	memcpy(&m->agent_addr, pdu->agent_addr, 4);
	m->has_agent_addr = m->agent_addr.s_addr != INADDR_ANY;
	if (m->has_agent_addr)
		inet_ntop(AF_INET, &m->agent_addr, m->agent_addr_text,
			  sizeof(m->agent_addr_text));
	return TRAP_ACCEPTED;
}

/* Who sent it: community, or v3 engine, user and security level. */
static enum trap_outcome convert_security(const struct trap_engine *e,
					  const netsnmp_pdu *pdu,
					  struct trap_msg *m)
{
	const struct engine_user *u;

	if (pdu->version != SNMP_VERSION_3) {
		m->version = pdu->version == SNMP_VERSION_1 ? TRAP_V1 : TRAP_V2C;
		if (pdu->community_len > sizeof(m->community))
			return TRAP_OVERSIZED;
		if (pdu->community_len > 0)
			memcpy(m->community, pdu->community, pdu->community_len);
		m->community_len = pdu->community_len;
		return TRAP_ACCEPTED;
	}
	m->version = TRAP_V3;
	if (pdu->securityEngineIDLen > sizeof(m->engine_id) ||
	    pdu->securityNameLen > TRAP_USER_MAX)
		return TRAP_MALFORMED;
	memcpy(m->engine_id, pdu->securityEngineID, pdu->securityEngineIDLen);
	m->engine_id_len = pdu->securityEngineIDLen;
	memcpy(m->user, pdu->securityName, pdu->securityNameLen);
	m->user[pdu->securityNameLen] = '\0';
	m->security_level = pdu->securityLevel;
	/* USM takes less than a user is set up for; we do not. */
	u = find_user(e, m->user);
	if (u == NULL)
		return TRAP_UNKNOWN_USER;
	if (pdu->securityLevel < u->level)
		return TRAP_SECURITY_LEVEL;
	return TRAP_ACCEPTED;
}

/*
 * The clock USM now holds for the sender of an authentic v3 trap (an
 * inform's engine is ours): what trapclock.h keeps across restarts.
 */
static void note_engine_time(struct trap_msg *m)
{
	u_int boots, time;

	if (m->version != TRAP_V3 || m->inform || m->engine_id_len == 0)
		return;
	if (get_enginetime(m->engine_id, (u_int)m->engine_id_len, &boots,
			   &time, TRUE) != SNMPERR_SUCCESS)
		return;
	m->engine_boots = boots;
	m->engine_time = time;
	m->has_engine_time = true;
}

static enum trap_outcome decode_locked(struct trap_engine *e, int fd,
				       const uint8_t *data, size_t len,
				       const struct sockaddr *from,
				       socklen_t fromlen, struct trap_msg *m)
{
	enum trap_outcome o;
	int rc;

	if (len > e->buf_size)
		return TRAP_OVERSIZED;
	e->fd = fd;
	trapmsg_set_source(m, from, fromlen);
	rc = parse_once(e, data, len, from, fromlen);
	if (rc != 0)
		rc = try_discover(e, rc, data, len, from, fromlen);
	/* Known once the header parsed, even when the rest does not. */
	m->version_known = e->pdu->version == SNMP_VERSION_1 ||
			   e->pdu->version == SNMP_VERSION_2c ||
			   e->pdu->version == SNMP_VERSION_3;
	m->version = e->pdu->version == SNMP_VERSION_1	   ? TRAP_V1
		     : e->pdu->version == SNMP_VERSION_2c ? TRAP_V2C
							  : TRAP_V3;
	if (rc != 0) {
		forget_engine(e);
		return parse_failure(e->pdu, rc);
	}
	switch (e->pdu->command) {
	case SNMP_MSG_TRAP:
	case SNMP_MSG_TRAP2:
		break;
	case SNMP_MSG_INFORM:
		m->inform = true;
		break;
	default:
		return TRAP_NOT_A_NOTIFICATION;
	}
	m->request_id = e->pdu->reqid;
	o = convert_security(e, e->pdu, m);
	if (o == TRAP_ACCEPTED && e->pdu->command == SNMP_MSG_TRAP)
		o = convert_v1(e->pdu, m);
	if (o == TRAP_ACCEPTED)
		o = convert_varbinds(e, m);
	if (o == TRAP_ACCEPTED)
		o = add_trap_enterprise(e, e->pdu, m);
	if (o == TRAP_ACCEPTED)
		name_trap(m);
	if (o == TRAP_ACCEPTED)
		note_engine_time(m);
	return o;
}

enum trap_outcome trap_decode(struct trap_engine *e, int fd, const uint8_t *data,
			      size_t len, const struct sockaddr *from,
			      socklen_t fromlen, struct trap_msg *m)
{
	enum trap_outcome o;

	pthread_mutex_lock(&snmp_lock);
	o = decode_locked(e, fd, data, len, from, fromlen, m);
	pthread_mutex_unlock(&snmp_lock);
	return o;
}

static int respond_locked(struct trap_engine *e, struct trap_ack *ret)
{
	netsnmp_pdu *reply;
	int ok;

	if (e->pdu == NULL || e->pdu->command != SNMP_MSG_INFORM)
		return -EINVAL;
	reply = snmp_clone_pdu(e->pdu);
	if (reply == NULL)
		return -ENOMEM;
	reply->command = SNMP_MSG_RESPONSE;
	reply->errstat = 0;
	reply->errindex = 0;
	/* Encoded through the session (USM for v3), captured, not sent. */
	e->capture = ret;
	ok = snmp_sess_send(e->sess, reply);
	e->capture = NULL;
	if (!ok) {
		snmp_free_pdu(reply);
		return -EIO;
	}
	return ret->data != NULL ? 0 : -EIO;
}

int trap_inform_response(struct trap_engine *e, struct trap_ack *ret)
{
	int r;

	pthread_mutex_lock(&snmp_lock);
	r = respond_locked(e, ret);
	pthread_mutex_unlock(&snmp_lock);
	return r;
}

int trap_ack_send(const struct trap_ack *ack)
{
	ssize_t n = sendto(ack->fd, ack->data, ack->len, MSG_DONTWAIT,
			   (const struct sockaddr *)&ack->to, ack->tolen);

	return n < 0 ? -errno : 0;
}

void trap_ack_clear(struct trap_ack *ack)
{
	free(ack->data);
	memset(ack, 0, sizeof(*ack));
	ack->fd = -1;
}
