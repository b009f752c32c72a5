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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
