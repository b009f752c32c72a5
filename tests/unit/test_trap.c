/*
 * Decoding with net-snmp: packets encoded by net-snmp itself (as a device
 * would send them) through trap_decode(), and what it makes of bad ones.
 * SNMPv3 is covered by the integration tests with the real snmptrap,
 * but for the count of engines localised by discovery.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>

#include <arpa/inet.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../common/config.h"
#include "../../common/util.h"
#include "../../server/trap.h"
#include "../../server/trapconf.h"
#include "../../server/trapmsg.h"

static const char config[] =
	"traps:\n"
	"  mappings_dir: /nonexistent\n"
	"  mib_dirs: []\n"
	"  max_value: 100\n"
	"  max_varbinds: 8\n"
	"  max_packet: 2KiB\n";

struct fixture {
	struct cfg *cfg;
	struct trap_config *conf;
	struct trap_engine *engine;
	struct trap_msg m;
	struct sockaddr_in from;
	int fd;
	uint8_t pkt[4096];
	size_t len;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));

	if (cfg_load_string("server.yaml", config, &f->cfg) < 0)
		return -1;
	trapconf_parse(f->cfg, f->cfg->root, &f->conf);
	if (f->cfg->nerrors > 0 || f->conf == NULL)
		return -1;
	if (trap_engine_new(f->conf, &f->engine) < 0)
		return -1;
	trapmsg_init(&f->m);
	f->from.sin_family = AF_INET;
	f->from.sin_port = htons(40000);
	inet_pton(AF_INET, "192.0.2.1", &f->from.sin_addr);
	/* Replies (inform responses) go somewhere harmless. */
	f->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	close(f->fd);
	trapmsg_free(&f->m);
	trap_engine_free(f->engine);
	trapconf_free(f->conf);
	cfg_free(f->cfg);
	free(f);
	return 0;
}

/* pdu encoded for session s into f's packet; frees pdu. */
static void build_packet(struct fixture *f, netsnmp_session *s, netsnmp_pdu *pdu)
{
	u_char *buf = malloc(sizeof(f->pkt)), *start;
	size_t buf_len = sizeof(f->pkt), off = 0;

	assert_int_equal(snmp_build(&buf, &buf_len, &off, s, pdu), 0);
	/* Reverse encoding: the message ends at the end of the buffer. */
	start = buf + buf_len - off;
	memcpy(f->pkt, start, off);
	f->len = off;
	free(buf);
	snmp_free_pdu(pdu);
}

/* Encode pdu as a device would, with community "public". */
static void encode(struct fixture *f, netsnmp_pdu *pdu, long version)
{
	netsnmp_session s;

	snmp_sess_init(&s);
	s.version = version;
	s.community = (u_char *)"public";
	s.community_len = 6;
	pdu->version = version;
	pdu->community = (u_char *)strdup("public");
	pdu->community_len = 6;
	build_packet(f, &s, pdu);
}

static void add_int(netsnmp_pdu *pdu, const char *oidtext, long v)
{
	oid o[MAX_OID_LEN];
	size_t len = MAX_OID_LEN;

	assert_non_null(read_objid(oidtext, o, &len));
	snmp_pdu_add_variable(pdu, o, len, ASN_INTEGER, &v, sizeof(v));
}

static void add_str(netsnmp_pdu *pdu, const char *oidtext, const void *s,
		    size_t n)
{
	oid o[MAX_OID_LEN];
	size_t len = MAX_OID_LEN;

	assert_non_null(read_objid(oidtext, o, &len));
	snmp_pdu_add_variable(pdu, o, len, ASN_OCTET_STR, s, n);
}

/* A v2c notification: sysUpTime.0, snmpTrapOID.0, then the varbinds. */
static netsnmp_pdu *v2(int command, const char *trap)
{
	netsnmp_pdu *pdu = snmp_pdu_create(command);
	oid up[] = { 1, 3, 6, 1, 2, 1, 1, 3, 0 };
	oid to[] = { 1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0 };
	oid t[MAX_OID_LEN];
	size_t tlen = MAX_OID_LEN;
	u_long ticks = 4242;

	assert_non_null(read_objid(trap, t, &tlen));
	snmp_pdu_add_variable(pdu, up, OID_LENGTH(up), ASN_TIMETICKS, &ticks,
			      sizeof(ticks));
	snmp_pdu_add_variable(pdu, to, OID_LENGTH(to), ASN_OBJECT_ID, t,
			      tlen * sizeof(oid));
	return pdu;
}

static enum trap_outcome decode(struct fixture *f)
{
	trapmsg_reset(&f->m);
	return trap_decode(f->engine, f->fd, f->pkt, f->len,
			   (struct sockaddr *)&f->from, sizeof(f->from), &f->m);
}

static void test_v2c_link_down(void **state)
{
	struct fixture *f = *state;
	netsnmp_pdu *pdu = v2(SNMP_MSG_TRAP2, ".1.3.6.1.6.3.1.1.5.3");

	add_int(pdu, ".1.3.6.1.2.1.2.2.1.1.7", 7);
	add_int(pdu, ".1.3.6.1.2.1.2.2.1.7.7", 2);
	add_int(pdu, ".1.3.6.1.2.1.2.2.1.8.7", 7);
	add_str(pdu, ".1.3.6.1.2.1.31.1.1.1.1.7", "Gi0/7", 5);
	encode(f, pdu, SNMP_VERSION_2c);
	assert_int_equal(decode(f), TRAP_ACCEPTED);
	assert_int_equal(f->m.version, TRAP_V2C);
	assert_false(f->m.inform);
	assert_int_equal(f->m.community_len, 6);
	assert_memory_equal(f->m.community, "public", 6);
	assert_string_equal(f->m.trap_name, "linkDown");
	assert_string_equal(f->m.source_text, "192.0.2.1");
	/* sysUpTime.0 and snmpTrapOID.0 are not varbinds of the trap. */
	assert_int_equal(f->m.nvb, 4);
	/* But sysUpTime.0 is kept: it tells a restarted device's informs apart. */
	assert_true(f->m.has_uptime);
	assert_int_equal(f->m.uptime, 4242);
	assert_string_equal(f->m.vb[1].name, "ifAdminStatus");
	assert_string_equal(f->m.vb[1].index, "7");
	assert_string_equal(f->m.vb[1].text, "2");
	assert_string_equal(f->m.vb[1].label, "down");
	assert_string_equal(f->m.vb[2].label, "lowerLayerDown");
	assert_string_equal(f->m.vb[3].name, "ifName");
	assert_string_equal(f->m.vb[3].text, "Gi0/7");
}

static void test_v1_traps_get_rfc3584_trap_oids_and_agent_addr(void **state)
{
	struct fixture *f = *state;
	netsnmp_pdu *pdu = snmp_pdu_create(SNMP_MSG_TRAP);
	oid ent[] = { 1, 3, 6, 1, 4, 1, 9, 1, 1 };

	pdu->enterprise = snmp_duplicate_objid(ent, OID_LENGTH(ent));
	pdu->enterprise_length = OID_LENGTH(ent);
	pdu->trap_type = 6;
	pdu->specific_type = 17;
	inet_pton(AF_INET, "198.51.100.7", pdu->agent_addr);
	add_int(pdu, ".1.3.6.1.4.1.9.2.1.1.0", 5);
	encode(f, pdu, SNMP_VERSION_1);
	assert_int_equal(decode(f), TRAP_ACCEPTED);
	assert_int_equal(f->m.version, TRAP_V1);
	assert_string_equal(f->m.trap_name, "1.3.6.1.4.1.9.1.1.0.17");
	assert_true(f->m.has_agent_addr);
	assert_string_equal(f->m.agent_addr_text, "198.51.100.7");
	/* Enterprise-specific: the enterprise is in the trap OID already. */
	assert_int_equal(f->m.nvb, 1);

	pdu = snmp_pdu_create(SNMP_MSG_TRAP);
	pdu->enterprise = snmp_duplicate_objid(ent, OID_LENGTH(ent));
	pdu->enterprise_length = OID_LENGTH(ent);
	pdu->trap_type = 2; /* linkDown */
	pdu->time = 123456;
	encode(f, pdu, SNMP_VERSION_1);
	assert_int_equal(decode(f), TRAP_ACCEPTED);
	assert_string_equal(f->m.trap_name, "linkDown");
	assert_false(f->m.has_agent_addr); /* 0.0.0.0 says nothing */
	assert_true(f->m.has_uptime);
	assert_int_equal(f->m.uptime, 123456);
	/*
	 * RFC 3584 3.1 (3): a generic trap keeps its enterprise as the last
	 * varbind, so that one vendor's linkDown or coldStart is told from
	 * another's.
	 */
	assert_int_equal(f->m.nvb, 1);
	assert_string_equal(f->m.vb[0].name, "snmpTrapEnterprise");
	assert_string_equal(f->m.vb[0].index, "0");
	assert_int_equal(f->m.vb[0].type, TRAP_VALUE_OID);
	assert_string_equal(f->m.vb[0].text, "1.3.6.1.4.1.9.1.1");
}

static void test_inform_gets_an_encoded_response(void **state)
{
	struct fixture *f = *state;
	netsnmp_pdu *pdu = v2(SNMP_MSG_INFORM, ".1.3.6.1.6.3.1.1.5.1");
	struct trap_ack ack = { .fd = -1 };
	long reqid;

	pdu->reqid = 31337;
	reqid = pdu->reqid;
	encode(f, pdu, SNMP_VERSION_2c);
	assert_int_equal(decode(f), TRAP_ACCEPTED);
	assert_true(f->m.inform);
	assert_int_equal(f->m.request_id, reqid);
	assert_int_equal(trap_inform_response(f->engine, &ack), 0);
	assert_non_null(ack.data);
	assert_true(ack.len > 20);
	assert_int_equal(ack.fd, f->fd);
	/* It is a Response, which decodes as "not a notification". */
	memcpy(f->pkt, ack.data, ack.len);
	f->len = ack.len;
	trap_ack_clear(&ack);
	assert_int_equal(decode(f), TRAP_NOT_A_NOTIFICATION);
	/* Nothing to answer for what is not an inform. */
	assert_int_equal(trap_inform_response(f->engine, &ack), -EINVAL);
}

static void test_limits_make_oversized(void **state)
{
	struct fixture *f = *state;
	char big[101];
	netsnmp_pdu *pdu;

	memset(big, 'x', sizeof(big));
	pdu = v2(SNMP_MSG_TRAP2, ".1.3.6.1.4.1.9.0.1");
	add_str(pdu, ".1.3.6.1.4.1.9.1.0", big, sizeof(big));
	encode(f, pdu, SNMP_VERSION_2c);
	assert_int_equal(decode(f), TRAP_OVERSIZED);

	pdu = v2(SNMP_MSG_TRAP2, ".1.3.6.1.4.1.9.0.1");
	for (int i = 0; i < 9; i++)
		add_int(pdu, ".1.3.6.1.4.1.9.1.0", i);
	encode(f, pdu, SNMP_VERSION_2c);
	assert_int_equal(decode(f), TRAP_OVERSIZED);

	f->len = 2049;
	assert_int_equal(decode(f), TRAP_OVERSIZED);
}

/*
 * A reload: the engine decodes with the new limits from the next datagram
 * on, while max_packet (the size of its buffer) stays that of the start.
 */
static void test_reconfigure_applies_new_limits_but_not_max_packet(void **state)
{
	static const char reloaded[] = "traps:\n"
				       "  mappings_dir: /nonexistent\n"
				       "  mib_dirs: []\n"
				       "  max_value: 100\n"
				       "  max_varbinds: 2\n"
				       "  max_packet: 8KiB\n";
	struct fixture *f = *state;
	struct trap_config *conf = NULL;
	struct cfg *cfg;
	netsnmp_pdu *pdu;

	assert_int_equal(cfg_load_string("server.yaml", reloaded, &cfg), 0);
	trapconf_parse(cfg, cfg->root, &conf);
	assert_int_equal(cfg->nerrors, 0);
	assert_non_null(conf);
	pdu = v2(SNMP_MSG_TRAP2, ".1.3.6.1.4.1.9.0.1");
	for (int i = 0; i < 4; i++)
		add_int(pdu, ".1.3.6.1.4.1.9.1.0", i);
	encode(f, pdu, SNMP_VERSION_2c);
	assert_int_equal(decode(f), TRAP_ACCEPTED);
	assert_int_equal(trap_engine_reconfigure(f->engine, conf), 0);
	assert_int_equal(decode(f), TRAP_OVERSIZED);
	/* Larger than the buffer of the start, whatever the reload says:
	 * one varbind, so that max_varbinds cannot be what refuses it. */
	pdu = v2(SNMP_MSG_TRAP2, ".1.3.6.1.4.1.9.0.1");
	add_int(pdu, ".1.3.6.1.4.1.9.1.0", 1);
	encode(f, pdu, SNMP_VERSION_2c);
	assert_int_equal(decode(f), TRAP_ACCEPTED);
	f->len = 2049;
	assert_int_equal(decode(f), TRAP_OVERSIZED);
	/* Back, so that the fixture's teardown frees what the engine uses. */
	assert_int_equal(trap_engine_reconfigure(f->engine, f->conf), 0);
	trapconf_free(conf);
	cfg_free(cfg);
}

static void test_bad_packets_are_malformed_or_not_notifications(void **state)
{
	struct fixture *f = *state;
	netsnmp_pdu *pdu;
	size_t full;

	memcpy(f->pkt, "hello", 5);
	f->len = 5;
	assert_int_equal(decode(f), TRAP_MALFORMED);
	assert_false(f->m.version_known);

	pdu = v2(SNMP_MSG_TRAP2, ".1.3.6.1.6.3.1.1.5.3");
	add_int(pdu, ".1.3.6.1.2.1.2.2.1.1.7", 7);
	encode(f, pdu, SNMP_VERSION_2c);
	full = f->len;
	for (size_t cut = 1; cut < full; cut++) {
		f->len = cut;
		assert_int_equal(decode(f), TRAP_MALFORMED);
	}

	/* A v2 trap must carry snmpTrapOID.0. */
	pdu = snmp_pdu_create(SNMP_MSG_TRAP2);
	add_int(pdu, ".1.3.6.1.2.1.2.2.1.1.7", 7);
	encode(f, pdu, SNMP_VERSION_2c);
	assert_int_equal(decode(f), TRAP_MALFORMED);

	pdu = snmp_pdu_create(SNMP_MSG_GET);
	add_int(pdu, ".1.3.6.1.2.1.1.5.0", 0);
	encode(f, pdu, SNMP_VERSION_2c);
	assert_int_equal(decode(f), TRAP_NOT_A_NOTIFICATION);
	assert_true(f->m.version_known);
}

static void test_binary_values_and_mapped_sources(void **state)
{
	struct fixture *f = *state;
	netsnmp_pdu *pdu = v2(SNMP_MSG_TRAP2, ".1.3.6.1.4.1.9.0.1");
	const uint8_t mac[] = { 0x00, 0x1b, 0x21, 0xfe, 0x00, 0x7f };
	struct sockaddr_in6 mapped = { .sin6_family = AF_INET6 };

	add_str(pdu, ".1.3.6.1.2.1.2.2.1.6.3", mac, sizeof(mac));
	encode(f, pdu, SNMP_VERSION_2c);
	inet_pton(AF_INET6, "::ffff:192.0.2.55", &mapped.sin6_addr);
	trapmsg_reset(&f->m);
	assert_int_equal(trap_decode(f->engine, f->fd, f->pkt, f->len,
				     (struct sockaddr *)&mapped, sizeof(mapped),
				     &f->m),
			 TRAP_ACCEPTED);
	assert_string_equal(f->m.vb[0].name, "ifPhysAddress");
	assert_string_equal(f->m.vb[0].text, "00 1b 21 fe 00 7f");
	assert_string_equal(f->m.source_text, "192.0.2.55");
	assert_int_equal(f->m.source.ss_family, AF_INET);
}

/* Parse a trap configuration (as a reload would) into *ret_cfg, *ret. */
static void load_conf(const char *text, struct cfg **ret_cfg,
		      struct trap_config **ret)
{
	*ret = NULL;
	assert_int_equal(cfg_load_string("server.yaml", text, ret_cfg), 0);
	trapconf_parse(*ret_cfg, (*ret_cfg)->root, ret);
	assert_int_equal((*ret_cfg)->nerrors, 0);
	assert_non_null(*ret);
}

/*
 * Encode a v3 authNoPriv linkDown as the device with engine id engine
 * would send it, user name with SHA pass phrase pass.  The sender's user
 * lives in the same USM as the engine's: unless the engine holds it
 * already, it is removed again, so that the engine must discover the
 * device's engine itself.
 */
static void encode_v3(struct fixture *f, uint8_t engine_last,
		      const char *name, const char *pass)
{
	u_char engine[] = { 0x80, 0x00, 0x1f, 0x88, 0x04, 0x42, engine_last };
	char line[256], user[32];
	netsnmp_session s;
	netsnmp_pdu *pdu = v2(SNMP_MSG_TRAP2, ".1.3.6.1.6.3.1.1.5.3");
	struct usmUser *u, *held;

	snprintf(user, sizeof(user), "%s", name); /* USM's is not const */
	/* engine[] in hex. */
	snprintf(line, sizeof(line), "-e 80001f880442%02x %s SHA %s",
		 engine_last, name, pass);
	held = usm_get_user(engine, sizeof(engine), user);
	if (held == NULL)
		usm_parse_create_usmUser("createUser", line);
	assert_non_null(usm_get_user(engine, sizeof(engine), user));
	snmp_sess_init(&s);
	s.version = SNMP_VERSION_3;
	pdu->version = SNMP_VERSION_3;
	pdu->securityModel = USM_SEC_MODEL_NUMBER;
	pdu->securityLevel = SNMP_SEC_LEVEL_AUTHNOPRIV;
	pdu->securityName = strdup(name);
	pdu->securityNameLen = strlen(name);
	pdu->securityEngineID = netsnmp_memdup(engine, sizeof(engine));
	pdu->securityEngineIDLen = sizeof(engine);
	pdu->contextEngineID = netsnmp_memdup(engine, sizeof(engine));
	pdu->contextEngineIDLen = sizeof(engine);
	pdu->contextName = strdup("");
	pdu->contextNameLen = 0;
	build_packet(f, &s, pdu);
	if (held == NULL) {
		u = usm_get_user(engine, sizeof(engine), user);
		usm_remove_user(u);
		usm_free_user(u);
	}
}

/*
 * Localisations found by discovery count towards DISCOVERED_MAX; a
 * reload that changes or removes the user forgets them, and the count
 * goes down with them (else reloads would use up the cap).
 */
static void test_reload_gives_back_what_discovery_localised(void **state)
{
	static const char roaming[] = "traps:\n"
				      "  mappings_dir: /nonexistent\n"
				      "  mib_dirs: []\n"
				      "  users:\n"
				      "    - name: roaming\n"
				      "      auth: sha\n"
				      "      auth_key: roam-pass-123\n";
	static const char rekeyed[] = "traps:\n"
				      "  mappings_dir: /nonexistent\n"
				      "  mib_dirs: []\n"
				      "  users:\n"
				      "    - name: roaming\n"
				      "      auth: sha\n"
				      "      auth_key: roam-pass-456\n";
	struct fixture *f = *state;
	struct trap_config *conf1, *conf2, *conf3;
	struct cfg *cfg1, *cfg2, *cfg3;

	load_conf(roaming, &cfg1, &conf1);
	load_conf(roaming, &cfg2, &conf2);
	load_conf(rekeyed, &cfg3, &conf3);
	assert_int_equal(trap_engine_reconfigure(f->engine, conf1), 0);
	assert_int_equal(trap_engine_discovered(f->engine), 0);
	for (uint8_t i = 1; i <= 3; i++) {
		encode_v3(f, i, "roaming", "roam-pass-123");
		assert_int_equal(decode(f), TRAP_ACCEPTED);
		assert_int_equal(trap_engine_discovered(f->engine), i);
	}
	/* The same user after a reload: its localisations stay. */
	assert_int_equal(trap_engine_reconfigure(f->engine, conf2), 0);
	assert_int_equal(trap_engine_discovered(f->engine), 3);
	encode_v3(f, 1, "roaming", "roam-pass-123");
	assert_int_equal(decode(f), TRAP_ACCEPTED);
	assert_int_equal(trap_engine_discovered(f->engine), 3);
	/* New pass phrase: the old localisations are gone, and not counted. */
	assert_int_equal(trap_engine_reconfigure(f->engine, conf3), 0);
	assert_int_equal(trap_engine_discovered(f->engine), 0);
	encode_v3(f, 1, "roaming", "roam-pass-456");
	assert_int_equal(decode(f), TRAP_ACCEPTED);
	assert_int_equal(trap_engine_discovered(f->engine), 1);
	/* The user removed: nothing held, nothing counted. */
	assert_int_equal(trap_engine_reconfigure(f->engine, f->conf), 0);
	assert_int_equal(trap_engine_discovered(f->engine), 0);
	trapconf_free(conf1);
	trapconf_free(conf2);
	trapconf_free(conf3);
	cfg_free(cfg1);
	cfg_free(cfg2);
	cfg_free(cfg3);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v2c_link_down),
		cmocka_unit_test(test_v1_traps_get_rfc3584_trap_oids_and_agent_addr),
		cmocka_unit_test(test_inform_gets_an_encoded_response),
		cmocka_unit_test(test_limits_make_oversized),
		cmocka_unit_test(test_reconfigure_applies_new_limits_but_not_max_packet),
		cmocka_unit_test(test_bad_packets_are_malformed_or_not_notifications),
		cmocka_unit_test(test_binary_values_and_mapped_sources),
		cmocka_unit_test(test_reload_gives_back_what_discovery_localised),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
