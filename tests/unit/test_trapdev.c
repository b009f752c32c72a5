/* Device identity and authorisation of traps, from a real configuration. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/config.h"
#include "../../common/util.h"
#include "../../server/trapconf.h"
#include "../../server/trapdev.h"
#include "../../server/trapmsg.h"

static const char config[] =
	"hosts:\n"
	"  rtr-nat:\n"
	"    snmp:\n"
	"      addresses: [192.0.2.1, 2001:db8::1]\n"
	"      community: rtr-community\n"
	"      sys_name: Edge.Example\n"
	"  rtr-v3:\n"
	"    snmp:\n"
	"      engine_id: 0x80001f8803aabbccddeeff\n"
	"      addresses: [192.0.2.2]\n"
	"      users: [ops]\n"
	"  sw-branch:\n"
	"    snmp:\n"
	"      addresses: [10.20.0.5]\n"
	"  plain-name:\n"
	"    snmp:\n"
	"      addresses: [198.51.100.9]\n"
	"traps:\n"
	"  mappings_dir: /nonexistent\n"
	"  mib_dirs: []\n"
	"  users:\n"
	"    - {name: ops, auth: sha, auth_key: ops-auth-123}\n"
	"    - {name: other, auth: sha, auth_key: other-auth-123}\n"
	"    - {name: bound, auth: sha, auth_key: bound-auth-123,\n"
	"       engine_ids: [0x80001f8803aabbccddeeff]}\n"
	"  networks:\n"
	"    - {cidr: 10.20.0.0/16, community: branch-community, users: [other]}\n"
	"    - {cidr: 203.0.113.0/24, community: guarded}\n";

static const uint8_t rtr_v3_engine[] = { 0x80, 0x00, 0x1f, 0x88, 0x03, 0xaa,
					 0xbb, 0xcc, 0xdd, 0xee, 0xff };

struct fixture {
	struct cfg *cfg;
	struct trap_config *conf;
	struct trap_msg m;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));

	if (cfg_load_string("server.yaml", config, &f->cfg) < 0)
		return -1;
	trapconf_parse(f->cfg, f->cfg->root, &f->conf);
	for (size_t i = 0; i < f->cfg->nerrors; i++)
		fprintf(stderr, "%s\n", f->cfg->errors[i]);
	if (f->cfg->nerrors > 0 || f->conf == NULL)
		return -1;
	trapmsg_init(&f->m);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	trapmsg_free(&f->m);
	trapconf_free(f->conf);
	cfg_free(f->cfg);
	free(f);
	return 0;
}

/* A v2c message from source with community. */
static struct trap_msg *msg(struct fixture *f, const char *source,
			    const char *community)
{
	struct trap_msg *m = &f->m;

	trapmsg_reset(m);
	m->version = TRAP_V2C;
	if (strchr(source, ':')) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&m->source;

		s6->sin6_family = AF_INET6;
		inet_pton(AF_INET6, source, &s6->sin6_addr);
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&m->source;

		s4->sin_family = AF_INET;
		inet_pton(AF_INET, source, &s4->sin_addr);
	}
	strlcpy_safe(m->source_text, source, sizeof(m->source_text));
	m->community_len = strlen(community);
	memcpy(m->community, community, m->community_len);
	return m;
}

static void add_string_vb(struct trap_msg *m, const char *oid, const char *text,
			  enum trap_value_type type)
{
	struct trap_varbind *v = trapmsg_add_varbind(m, 64);

	trap_oid_parse(oid, &v->oid);
	v->type = type;
	v->text = trapmsg_store(m, text, strlen(text));
}

static const char *who(struct fixture *f)
{
	const struct trap_device *d = trapdev_identify(f->conf, &f->m);

	return d ? d->host : "(unknown)";
}

static void test_identity_by_source_address_v4_and_v6(void **state)
{
	struct fixture *f = *state;

	msg(f, "192.0.2.1", "x");
	assert_string_equal(who(f), "rtr-nat");
	msg(f, "2001:db8::1", "x");
	assert_string_equal(who(f), "rtr-nat");
	msg(f, "192.0.2.99", "x");
	assert_string_equal(who(f), "(unknown)");
}

/* A v3 trap (or inform) of user from source, with engine (NULL: none). */
static struct trap_msg *v3(struct fixture *f, const char *source,
			   const char *user, const uint8_t *engine, size_t len)
{
	struct trap_msg *m = msg(f, source, "");

	m->version = TRAP_V3;
	strlcpy_safe(m->user, user, sizeof(m->user));
	if (engine != NULL)
		memcpy(m->engine_id, engine, len);
	m->engine_id_len = engine ? len : 0;
	return m;
}

static void set_agent_addr(struct trap_msg *m, const char *addr)
{
	m->version = TRAP_V1;
	m->has_agent_addr = true;
	strlcpy_safe(m->agent_addr_text, addr, sizeof(m->agent_addr_text));
	inet_pton(AF_INET, addr, &m->agent_addr);
}

/* What a sender writes about itself never overrides a configured source. */
static void test_a_configured_source_beats_every_claim(void **state)
{
	struct fixture *f = *state;
	struct trap_msg *m;

	set_agent_addr(msg(f, "192.0.2.1", "x"), "10.20.0.5");
	assert_string_equal(who(f), "rtr-nat");
	m = msg(f, "192.0.2.1", "x");
	add_string_vb(m, "1.3.6.1.6.3.18.1.3.0", "198.51.100.9",
		      TRAP_VALUE_IPADDRESS);
	assert_string_equal(who(f), "rtr-nat");
	/* Its sysName naming another host: still its own, and accepted. */
	m = msg(f, "192.0.2.1", "rtr-community");
	add_string_vb(m, "1.3.6.1.2.1.1.5.0", "plain-name", TRAP_VALUE_STRING);
	assert_string_equal(who(f), "rtr-nat");
	assert_int_equal(trapdev_authorise(f->conf, m,
					   trapdev_identify(f->conf, m)),
			 TRAP_ACCEPTED);
	v3(f, "192.0.2.1", "ops", rtr_v3_engine, sizeof(rtr_v3_engine));
	assert_string_equal(who(f), "rtr-nat");
}

static void test_claims_identify_only_from_an_unconfigured_source(void **state)
{
	struct fixture *f = *state;
	struct trap_msg *m;

	set_agent_addr(msg(f, "192.0.2.200", "x"), "10.20.0.5");
	assert_string_equal(who(f), "sw-branch");
	m = msg(f, "192.0.2.200", "x");
	add_string_vb(m, "1.3.6.1.6.3.18.1.3.0", "198.51.100.9",
		      TRAP_VALUE_IPADDRESS);
	assert_string_equal(who(f), "plain-name");
	m = msg(f, "192.0.2.200", "x");
	add_string_vb(m, "1.3.6.1.2.1.1.5.0", "edge.example", TRAP_VALUE_STRING);
	assert_string_equal(who(f), "rtr-nat"); /* its sys_name, any case */
	m = msg(f, "192.0.2.200", "x");
	add_string_vb(m, "1.3.6.1.2.1.1.5.0", "PLAIN-NAME", TRAP_VALUE_STRING);
	assert_string_equal(who(f), "plain-name"); /* no sys_name: the host name */
	m = v3(f, "192.0.2.200", "ops", rtr_v3_engine, sizeof(rtr_v3_engine));
	assert_string_equal(who(f), "rtr-v3");
	/* An inform carries our engine id, not the sender's. */
	m->inform = true;
	assert_string_equal(who(f), "(unknown)");
}

static void test_community_of_the_device_or_its_network(void **state)
{
	struct fixture *f = *state;
	const struct trap_device *d;

	msg(f, "192.0.2.1", "rtr-community");
	d = trapdev_identify(f->conf, &f->m);
	assert_int_equal(trapdev_authorise(f->conf, &f->m, d), TRAP_ACCEPTED);
	msg(f, "192.0.2.1", "rtr-communit");
	assert_int_equal(trapdev_authorise(f->conf, &f->m, d), TRAP_BAD_COMMUNITY);
	/* sw-branch has none of its own: its network's. */
	msg(f, "10.20.0.5", "branch-community");
	d = trapdev_identify(f->conf, &f->m);
	assert_string_equal(d->host, "sw-branch");
	assert_int_equal(trapdev_authorise(f->conf, &f->m, d), TRAP_ACCEPTED);
	msg(f, "10.20.0.5", "public");
	assert_int_equal(trapdev_authorise(f->conf, &f->m, d), TRAP_BAD_COMMUNITY);
	/* A known device without any credential configured is refused. */
	msg(f, "198.51.100.9", "public");
	d = trapdev_identify(f->conf, &f->m);
	assert_int_equal(trapdev_authorise(f->conf, &f->m, d), TRAP_BAD_COMMUNITY);
}

static void test_unknown_devices_go_to_review_unless_their_network_says_no(void **state)
{
	struct fixture *f = *state;

	msg(f, "192.0.2.250", "whatever");
	assert_null(trapdev_identify(f->conf, &f->m));
	assert_int_equal(trapdev_authorise(f->conf, &f->m, NULL), TRAP_ACCEPTED);
	msg(f, "203.0.113.7", "wrong");
	assert_int_equal(trapdev_authorise(f->conf, &f->m, NULL), TRAP_BAD_COMMUNITY);
	msg(f, "203.0.113.7", "guarded");
	assert_int_equal(trapdev_authorise(f->conf, &f->m, NULL), TRAP_ACCEPTED);
}

/*
 * The reviewer's case: a community valid for one network, sent from there
 * with the sysName of a device in another network, opened its tickets.
 */
static void test_a_network_credential_vouches_only_for_its_own_devices(void **state)
{
	struct fixture *f = *state;
	const struct trap_device *d;
	struct trap_msg *m;

	m = msg(f, "203.0.113.7", "guarded");
	add_string_vb(m, "1.3.6.1.2.1.1.5.0", "sw-branch", TRAP_VALUE_STRING);
	d = trapdev_identify(f->conf, m);
	assert_string_equal(d->host, "sw-branch");
	assert_int_equal(trapdev_authorise(f->conf, m, d), TRAP_UNAUTHORISED);
	/* sw-branch's own network's community, but not from that network. */
	m = msg(f, "203.0.113.7", "branch-community");
	add_string_vb(m, "1.3.6.1.2.1.1.5.0", "sw-branch", TRAP_VALUE_STRING);
	assert_int_equal(trapdev_authorise(f->conf, m, d), TRAP_BAD_COMMUNITY);
	/* From the device's network, behind a NAT address of it: fine. */
	m = msg(f, "10.20.9.9", "branch-community");
	add_string_vb(m, "1.3.6.1.2.1.1.5.0", "sw-branch", TRAP_VALUE_STRING);
	assert_int_equal(trapdev_authorise(f->conf, m,
					   trapdev_identify(f->conf, m)),
			 TRAP_ACCEPTED);
	/* A device with a community of its own needs that one. */
	m = msg(f, "10.20.9.9", "branch-community");
	add_string_vb(m, "1.3.6.1.2.1.1.5.0", "edge.example", TRAP_VALUE_STRING);
	assert_int_equal(trapdev_authorise(f->conf, m,
					   trapdev_identify(f->conf, m)),
			 TRAP_BAD_COMMUNITY);
	/* A claimed device with no address is vouched for by no network. */
	m = v3(f, "10.20.9.9", "other", rtr_v3_engine, sizeof(rtr_v3_engine));
	d = trapdev_identify(f->conf, m);
	assert_string_equal(d->host, "rtr-v3");
	assert_int_equal(trapdev_authorise(f->conf, m, d), TRAP_UNAUTHORISED);
}

static void test_v3_users_per_device_and_network(void **state)
{
	struct fixture *f = *state;
	const struct trap_device *d;
	struct trap_msg *m;

	m = v3(f, "192.0.2.2", "ops", rtr_v3_engine, sizeof(rtr_v3_engine));
	d = trapdev_identify(f->conf, m);
	assert_string_equal(d->host, "rtr-v3");
	assert_int_equal(trapdev_authorise(f->conf, m, d), TRAP_ACCEPTED);
	strlcpy_safe(m->user, "other", sizeof(m->user));
	assert_int_equal(trapdev_authorise(f->conf, m, d), TRAP_UNAUTHORISED);
	/* The branch network allows other only. */
	m = v3(f, "10.20.0.5", "ops", NULL, 0);
	d = trapdev_identify(f->conf, m);
	assert_int_equal(trapdev_authorise(f->conf, m, d), TRAP_UNAUTHORISED);
	strlcpy_safe(m->user, "other", sizeof(m->user));
	assert_int_equal(trapdev_authorise(f->conf, m, d), TRAP_ACCEPTED);
	/* No list anywhere: no user at all (it used to be any user). */
	m = v3(f, "192.0.2.1", "other", NULL, 0);
	d = trapdev_identify(f->conf, m);
	assert_string_equal(d->host, "rtr-nat");
	assert_int_equal(trapdev_authorise(f->conf, m, d), TRAP_UNAUTHORISED);
}

/*
 * Knowing some user's pass phrase is not being the device: from anywhere,
 * only a user the device lists or one bound to its engine id lands there.
 */
static void test_v3_engine_id_claims_need_a_user_of_that_device(void **state)
{
	struct fixture *f = *state;
	const struct trap_device *d;
	struct trap_msg *m;

	m = v3(f, "192.0.2.200", "other", rtr_v3_engine, sizeof(rtr_v3_engine));
	d = trapdev_identify(f->conf, m);
	assert_string_equal(d->host, "rtr-v3");
	assert_int_equal(trapdev_authorise(f->conf, m, d), TRAP_UNAUTHORISED);
	strlcpy_safe(m->user, "bound", sizeof(m->user));
	assert_int_equal(trapdev_authorise(f->conf, m, d), TRAP_ACCEPTED);
	/* Bound to that engine, but the trap came from another one. */
	m = v3(f, "192.0.2.2", "bound", rtr_v3_engine, 5);
	d = trapdev_identify(f->conf, m);
	assert_string_equal(d->host, "rtr-v3");
	assert_int_equal(trapdev_authorise(f->conf, m, d), TRAP_UNAUTHORISED);
	/* An inform's engine is ours: binding says nothing about the sender. */
	m = v3(f, "192.0.2.2", "bound", rtr_v3_engine, sizeof(rtr_v3_engine));
	m->inform = true;
	assert_int_equal(trapdev_authorise(f->conf, m, d), TRAP_UNAUTHORISED);
	strlcpy_safe(m->user, "ops", sizeof(m->user));
	assert_int_equal(trapdev_authorise(f->conf, m, d), TRAP_ACCEPTED);
}

static void test_cidr_and_engine_id_parsing(void **state)
{
	struct trap_engine_id e;
	struct trap_cidr c;
	struct sockaddr_in sin = { .sin_family = AF_INET };

	(void)state;
	assert_int_equal(trapconf_parse_cidr("10.0.0.0/9", &c), 0);
	inet_pton(AF_INET, "10.127.255.255", &sin.sin_addr);
	assert_true(trapconf_cidr_contains(&c, (struct sockaddr *)&sin));
	inet_pton(AF_INET, "10.128.0.0", &sin.sin_addr);
	assert_false(trapconf_cidr_contains(&c, (struct sockaddr *)&sin));
	assert_int_equal(trapconf_parse_cidr("10.0.0.0/33", &c), -EINVAL);
	assert_int_equal(trapconf_parse_cidr("2001:db8::/129", &c), -EINVAL);
	assert_int_equal(trapconf_parse_cidr("::/0", &c), 0);
	assert_int_equal(trapconf_parse_engine_id("0x80:00:1f:88:04:41", &e), 0);
	assert_int_equal(e.len, 6);
	assert_int_equal(trapconf_parse_engine_id("0x8000", &e), -EINVAL);
	assert_int_equal(trapconf_parse_engine_id("80001f8804zz", &e), -EINVAL);
}


/* --- the lookup indices, with many devices ----------------------------- */

#define MANY 5000

/* hosts.dev<i>: addresses 10.0.i/256.i%256 and 2001:db8::<i>, engine id ..<i>. */
static char *many_devices_config(void)
{
	size_t size = 256 * MANY + 1024, n = 0;
	char *text = xcalloc(1, size);

	n += (size_t)snprintf(text + n, size - n,
			      "traps:\n  mappings_dir: /nonexistent\n  mib_dirs: []\nhosts:\n");
	for (int i = 0; i < MANY; i++) {
		n += (size_t)snprintf(text + n, size - n,
				      "  dev%d:\n    snmp:\n"
				      "      addresses: [10.0.%d.%d, '2001:db8::%x']\n"
				      "      engine_id: 0x80000009030000%08x\n",
				      i, i / 256, i % 256, i + 1, i);
		/* Every third one has a sys_name; the rest are known by host name. */
		if (i % 3 == 0)
			n += (size_t)snprintf(text + n, size - n,
					      "      sys_name: Router-%d.Example\n", i);
	}
	return text;
}

static struct trap_config *load_many(struct cfg **ret_cfg)
{
	char *text = many_devices_config();
	struct trap_config *conf = NULL;

	assert_int_equal(cfg_load_string("server.yaml", text, ret_cfg), 0);
	free(text);
	trapconf_parse(*ret_cfg, (*ret_cfg)->root, &conf);
	for (size_t i = 0; i < (*ret_cfg)->nerrors; i++)
		fprintf(stderr, "%s\n", (*ret_cfg)->errors[i]);
	assert_int_equal((*ret_cfg)->nerrors, 0);
	assert_non_null(conf);
	assert_int_equal(conf->ndevices, MANY);
	return conf;
}

static const char *host_of(const struct trap_device *d)
{
	return d ? d->host : "(unknown)";
}

static void test_many_devices_are_found_by_each_key(void **state)
{
	struct cfg *cfg;
	struct trap_config *conf = load_many(&cfg);
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
	char text[64], want[32];

	(void)state;
	for (int i = 0; i < MANY; i++) {
		uint8_t engine[] = { 0x80, 0x00, 0x00, 0x09, 0x03, 0x00, 0x00,
				     (uint8_t)(i >> 24), (uint8_t)(i >> 16),
				     (uint8_t)(i >> 8), (uint8_t)i };

		snprintf(want, sizeof(want), "dev%d", i);
		snprintf(text, sizeof(text), "10.0.%d.%d", i / 256, i % 256);
		inet_pton(AF_INET, text, &sin.sin_addr);
		assert_string_equal(host_of(trapconf_device_by_address(
					    conf, (struct sockaddr *)&sin)),
				    want);
		snprintf(text, sizeof(text), "2001:db8::%x", i + 1);
		inet_pton(AF_INET6, text, &sin6.sin6_addr);
		assert_string_equal(host_of(trapconf_device_by_address(
					    conf, (struct sockaddr *)&sin6)),
				    want);
		assert_string_equal(host_of(trapconf_device_by_engine(
					    conf, engine, sizeof(engine))),
				    want);
		/* The sys_name when there is one, else the host name: any case. */
		if (i % 3 == 0)
			snprintf(text, sizeof(text), "ROUTER-%d.example", i);
		else
			snprintf(text, sizeof(text), "DeV%d", i);
		assert_string_equal(host_of(trapconf_device_by_name(conf, text)),
				    want);
	}
	/* Keys no device has, next to ones that exist. */
	inet_pton(AF_INET, "10.0.19.136", &sin.sin_addr); /* device 5000 */
	assert_null(trapconf_device_by_address(conf, (struct sockaddr *)&sin));
	inet_pton(AF_INET, "10.0.0.0", &sin.sin_addr);
	sin.sin_addr.s_addr = htonl(ntohl(sin.sin_addr.s_addr) - 1);
	assert_null(trapconf_device_by_address(conf, (struct sockaddr *)&sin));
	inet_pton(AF_INET6, "2001:db8::", &sin6.sin6_addr);
	assert_null(trapconf_device_by_address(conf, (struct sockaddr *)&sin6));
	assert_null(trapconf_device_by_engine(conf, (const uint8_t *)"\x80\0\0\x09\x03", 5));
	assert_null(trapconf_device_by_name(conf, "dev3")); /* has a sys_name */
	assert_null(trapconf_device_by_name(conf, "dev5000"));
	assert_null(trapconf_device_by_name(conf, ""));
	trapconf_free(conf);
	cfg_free(cfg);
}

/* trapdev_identify() uses the indices: the last of many devices, by each way. */
static void test_identify_the_last_of_many_devices(void **state)
{
	struct fixture f = { 0 };
	const uint8_t last_engine[] = { 0x80, 0x00, 0x00, 0x09, 0x03, 0x00, 0x00,
					0x00, 0x00, 0x13, 0x87 }; /* 4999 */
	struct trap_msg *m;

	(void)state;
	f.conf = load_many(&f.cfg);
	trapmsg_init(&f.m);
	msg(&f, "10.0.19.135", "x");
	assert_string_equal(who(&f), "dev4999");
	msg(&f, "2001:db8::1388", "x");
	assert_string_equal(who(&f), "dev4999");
	v3(&f, "192.0.2.200", "ops", last_engine, sizeof(last_engine));
	assert_string_equal(who(&f), "dev4999");
	set_agent_addr(msg(&f, "192.0.2.200", "x"), "10.0.19.135");
	assert_string_equal(who(&f), "dev4999");
	m = msg(&f, "192.0.2.200", "x");
	add_string_vb(m, "1.3.6.1.6.3.18.1.3.0", "10.0.19.134", TRAP_VALUE_IPADDRESS);
	assert_string_equal(who(&f), "dev4998");
	m = msg(&f, "192.0.2.200", "x");
	add_string_vb(m, "1.3.6.1.2.1.1.5.0", "router-4997.example", TRAP_VALUE_STRING);
	assert_string_equal(who(&f), "(unknown)"); /* 4997 has no sys_name */
	m = msg(&f, "192.0.2.200", "x");
	add_string_vb(m, "1.3.6.1.2.1.1.5.0", "DEV4997", TRAP_VALUE_STRING);
	assert_string_equal(who(&f), "dev4997");
	m = msg(&f, "192.0.2.200", "x");
	add_string_vb(m, "1.3.6.1.2.1.1.5.0", "router-4998.EXAMPLE", TRAP_VALUE_STRING);
	assert_string_equal(who(&f), "dev4998");
	trapmsg_free(&f.m);
	trapconf_free(f.conf);
	cfg_free(f.cfg);
}

/* A sys_name is only a claim and may repeat: the first device keeps it. */
static void test_a_repeated_sys_name_is_the_first_devices(void **state)
{
	static const char text[] =
		"traps:\n  mappings_dir: /nonexistent\n  mib_dirs: []\n"
		"hosts:\n"
		"  zeta:\n    snmp: {addresses: [192.0.2.9], sys_name: core}\n"
		"  alpha:\n    snmp: {addresses: [192.0.2.8], sys_name: CORE}\n"
		"  core:\n    snmp: {addresses: [192.0.2.7]}\n"
		"  Edge:\n    snmp: {addresses: [192.0.2.6]}\n"
		"  beta:\n    snmp: {addresses: [192.0.2.5], sys_name: edge}\n";
	struct cfg *cfg;
	struct trap_config *conf = NULL;

	(void)state;
	assert_int_equal(cfg_load_string("server.yaml", text, &cfg), 0);
	trapconf_parse(cfg, cfg->root, &conf);
	assert_int_equal(cfg->nerrors, 0);
	assert_string_equal(host_of(trapconf_device_by_name(conf, "Core")), "zeta");
	assert_string_equal(host_of(trapconf_device_by_name(conf, "EDGE")), "Edge");
	assert_null(trapconf_device_by_name(conf, "alpha")); /* known as CORE */
	trapconf_free(conf);
	cfg_free(cfg);
}

/* The nerrors errors of cfg as one text, for strstr(). */
static char *errors_of(const struct cfg *cfg)
{
	size_t size = 1;
	char *out;

	for (size_t i = 0; i < cfg->nerrors; i++)
		size += strlen(cfg->errors[i]) + 1;
	out = xcalloc(1, size);
	for (size_t i = 0; i < cfg->nerrors; i++) {
		strlcat_safe(out, cfg->errors[i], size);
		strlcat_safe(out, "\n", size);
	}
	return out;
}

/*
 * Duplicates are reported where the later one is written, against the
 * first device with it, in the order of the file; however far apart.
 */
static void test_duplicate_addresses_and_engine_ids_with_their_positions(void **state)
{
	static const char head[] =
		"traps:\n  mappings_dir: /nonexistent\n  mib_dirs: []\n"
		"hosts:\n"
		"  first:\n    snmp:\n      addresses: [192.0.2.1, '2001:db8::1']\n"
		"      engine_id: 0x8000000903aa\n";
	static const char tail[] =
		"  second:\n    snmp:\n      addresses: [192.0.2.2, 192.0.2.1]\n"
		"      engine_id: 0x80:00:00:09:03:aa\n"
		"  third:\n    snmp:\n      addresses: ['2001:DB8:0::1', 192.0.2.1, 192.0.2.3, 192.0.2.3]\n"
		"      engine_id: 0x8000000903aa\n";
	size_t size = sizeof(head) + sizeof(tail) + 100 * MANY;
	char *text = xcalloc(1, size), *errors;
	struct cfg *cfg;
	struct trap_config *conf = NULL;
	/* The lines of second's and third's addresses and engine ids. */
	int line = 8 + 3 * MANY + 3;

	(void)state;
	strlcat_safe(text, head, size);
	for (int i = 0; i < MANY; i++) {
		char one[100];

		snprintf(one, sizeof(one), "  pad%d:\n    snmp:\n      addresses: [10.1.%d.%d]\n",
			 i, i / 256, i % 256);
		strlcat_safe(text, one, size);
	}
	strlcat_safe(text, tail, size);
	assert_int_equal(cfg_load_string("server.yaml", text, &cfg), 0);
	trapconf_parse(cfg, cfg->root, &conf);
	errors = errors_of(cfg);
	char want[6][160];

	snprintf(want[0], sizeof(want[0]),
		 "server.yaml:%d:18: hosts.second.snmp.addresses: address 192.0.2.1 is already first's\n",
		 line);
	snprintf(want[1], sizeof(want[1]),
		 "server.yaml:%d:18: hosts.second.snmp.engine_id: engine id 0x80:00:00:09:03:aa is already first's\n",
		 line + 1);
	snprintf(want[2], sizeof(want[2]),
		 "server.yaml:%d:18: hosts.third.snmp.addresses: address 2001:DB8:0::1 is already first's\n",
		 line + 4);
	snprintf(want[3], sizeof(want[3]),
		 "server.yaml:%d:18: hosts.third.snmp.addresses: address 192.0.2.1 is already first's\n",
		 line + 4);
	snprintf(want[4], sizeof(want[4]),
		 "server.yaml:%d:18: hosts.third.snmp.addresses: address 192.0.2.3 is already third's\n",
		 line + 4);
	snprintf(want[5], sizeof(want[5]),
		 "server.yaml:%d:18: hosts.third.snmp.engine_id: engine id 0x8000000903aa is already first's\n",
		 line + 5);
	for (size_t i = 0; i < 6; i++)
		if (strstr(errors, want[i]) == NULL)
			fail_msg("missing: %s\n%zu errors:\n%s", want[i],
				 cfg->nerrors, errors);
	assert_int_equal(cfg->nerrors, 6);
	/* In the order of the file. */
	assert_true(strstr(errors, want[0]) < strstr(errors, want[2]));
	assert_true(strstr(errors, want[2]) < strstr(errors, want[3]));
	assert_true(strstr(errors, want[3]) < strstr(errors, want[4]));
	/* Whatever the errors, a lookup finds the first device. */
	assert_string_equal(host_of(trapconf_device_by_engine(
				    conf, (const uint8_t *)"\x80\0\0\x09\x03\xaa", 6)),
			    "first");
	free(errors);
	free(text);
	trapconf_free(conf);
	cfg_free(cfg);
}

/*
 * Overlapping networks, a wide one and a narrow one inside it, each with
 * its community and users, among many others: a device in both may use
 * either's (every network holding it vouches, not only the longest
 * match); one in the wide network alone only the wide one's.
 */
static const char overlapping_config[] =
	"hosts:\n"
	"  inner:\n"
	"    snmp: {addresses: [10.1.2.5]}\n"
	"  outer:\n"
	"    snmp: {addresses: [10.9.0.1]}\n"
	"traps:\n"
	"  mappings_dir: /nonexistent\n"
	"  mib_dirs: []\n"
	"  users:\n"
	"    - {name: wide, auth: sha, auth_key: wide-auth-123}\n"
	"    - {name: narrow, auth: sha, auth_key: narrow-auth-123}\n"
	"    - {name: elsewhere, auth: sha, auth_key: elsewhere-auth-123}\n"
	"  networks:\n"
	"    - {cidr: 10.0.0.0/8, community: wide-community, users: [wide]}\n";

static char *append(char *text, const char *more)
{
	char *r = xasprintf("%s%s", text, more);

	free(text);
	return r;
}

static void test_every_network_holding_a_device_vouches(void **state)
{
	struct fixture f = { 0 };
	char *text = xstrdup(overlapping_config), line[128];
	const struct trap_device *d;

	(void)state;
	/* Many /24s after the /8, the narrow one last. */
	for (int i = 0; i < 1000; i++) {
		snprintf(line, sizeof(line),
			 "    - {cidr: 172.%d.%d.0/24, community: c%d, users: [elsewhere]}\n",
			 16 + i / 256, i % 256, i);
		text = append(text, line);
	}
	text = append(text,
		      "    - {cidr: 10.1.2.0/24, community: narrow-community, users: [narrow]}\n");
	assert_int_equal(cfg_load_string("server.yaml", text, &f.cfg), 0);
	trapconf_parse(f.cfg, f.cfg->root, &f.conf);
	assert_int_equal(f.cfg->nerrors, 0);
	trapmsg_init(&f.m);

	d = trapdev_identify(f.conf, v3(&f, "10.1.2.5", "wide", NULL, 0));
	assert_string_equal(d->host, "inner");
	assert_int_equal(trapdev_authorise(f.conf, &f.m, d), TRAP_ACCEPTED);
	v3(&f, "10.1.2.5", "narrow", NULL, 0);
	assert_int_equal(trapdev_authorise(f.conf, &f.m, d), TRAP_ACCEPTED);
	v3(&f, "10.1.2.5", "elsewhere", NULL, 0);
	assert_int_equal(trapdev_authorise(f.conf, &f.m, d), TRAP_UNAUTHORISED);
	msg(&f, "10.1.2.5", "wide-community");
	assert_int_equal(trapdev_authorise(f.conf, &f.m, d), TRAP_ACCEPTED);
	msg(&f, "10.1.2.5", "narrow-community");
	assert_int_equal(trapdev_authorise(f.conf, &f.m, d), TRAP_ACCEPTED);
	msg(&f, "10.1.2.5", "c7");
	assert_int_equal(trapdev_authorise(f.conf, &f.m, d), TRAP_BAD_COMMUNITY);

	d = trapdev_identify(f.conf, v3(&f, "10.9.0.1", "narrow", NULL, 0));
	assert_string_equal(d->host, "outer");
	assert_int_equal(trapdev_authorise(f.conf, &f.m, d), TRAP_UNAUTHORISED);
	v3(&f, "10.9.0.1", "wide", NULL, 0);
	assert_int_equal(trapdev_authorise(f.conf, &f.m, d), TRAP_ACCEPTED);
	msg(&f, "10.9.0.1", "narrow-community");
	assert_int_equal(trapdev_authorise(f.conf, &f.m, d), TRAP_BAD_COMMUNITY);
	/* An unknown source in a /24 among the many: that network's say. */
	msg(&f, "172.19.231.9", "c999");
	assert_null(trapdev_identify(f.conf, &f.m));
	assert_int_equal(trapdev_authorise(f.conf, &f.m, NULL), TRAP_ACCEPTED);
	msg(&f, "172.19.231.9", "c998");
	assert_int_equal(trapdev_authorise(f.conf, &f.m, NULL), TRAP_BAD_COMMUNITY);

	trapmsg_free(&f.m);
	trapconf_free(f.conf);
	cfg_free(f.cfg);
	free(text);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_identity_by_source_address_v4_and_v6, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_configured_source_beats_every_claim, setup, teardown),
		cmocka_unit_test_setup_teardown(test_claims_identify_only_from_an_unconfigured_source, setup, teardown),
		cmocka_unit_test_setup_teardown(test_community_of_the_device_or_its_network, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unknown_devices_go_to_review_unless_their_network_says_no, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a_network_credential_vouches_only_for_its_own_devices, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v3_users_per_device_and_network, setup, teardown),
		cmocka_unit_test_setup_teardown(test_v3_engine_id_claims_need_a_user_of_that_device, setup, teardown),
		cmocka_unit_test(test_cidr_and_engine_id_parsing),
		cmocka_unit_test(test_many_devices_are_found_by_each_key),
		cmocka_unit_test(test_identify_the_last_of_many_devices),
		cmocka_unit_test(test_a_repeated_sys_name_is_the_first_devices),
		cmocka_unit_test(test_duplicate_addresses_and_engine_ids_with_their_positions),
		cmocka_unit_test(test_every_network_holding_a_device_vouches),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
