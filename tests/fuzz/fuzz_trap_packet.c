/*
 * Fuzz target for a datagram on the trap port, the whole untrusted path:
 * net-snmp's decoder (v1, v2c, v3 USM, with discovery: one user has no
 * engine_ids, so any engine id a packet names is tried), our conversion
 * of what it parsed, device identity and authorisation, the mappings
 * (with every further clear), the event and review rows the listener
 * would store (trapevent.h), and the answer to an inform.
 *
 * The source is a device's address for inputs of even length and an
 * address of no device for odd ones, so that both identity paths run.
 *
 *   make fuzz && build/fuzz/fuzz_trap_packet -max_total_time=60 corpus-dir
 */
#include <arpa/inet.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "../../common/config.h"
#include "../../server/trap.h"
#include "../../server/trapconf.h"
#include "../../server/trapdev.h"
#include "../../server/trapevent.h"
#include "../../server/trapmap.h"
#include "../../server/trapmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char config[] =
	"hosts:\n"
	"  sw1:\n"
	"    snmp: {addresses: [192.0.2.1], community: public, users: [roaming]}\n"
	"  v3dev:\n"
	"    snmp: {engine_id: 0x8000000001020304, users: [netops]}\n"
	"  named:\n"
	"    snmp: {sys_name: fuzz-name, community: named-community}\n"
	"traps:\n"
	"  mappings_dir: /nonexistent\n"
	"  mib_dirs: []\n"
	"  engine_id: 0x80001f880466757a7a\n"
	"  users:\n"
	"    - {name: netops, auth: sha256, auth_key: auth-pass-123, priv: aes,"
	"       priv_key: priv-pass-123, engine_ids: [0x8000000001020304]}\n"
	"    - {name: roaming, auth: sha, auth_key: roam-auth-123, priv: aes,"
	"       priv_key: roam-priv-123}\n"
	"  networks:\n"
	"    - {cidr: 127.0.0.0/8, community: net-community, users: [roaming]}\n";

static struct trap_config *conf;
static struct trap_engine *engine;
static struct cfg *cfg;
static int fd = -1;

static int init(void)
{
	if (engine != NULL)
		return 0;
	if (cfg_load_string("fuzz.yaml", config, &cfg) < 0)
		return -1;
	trapconf_parse(cfg, cfg->root, &conf);
	if (cfg->nerrors > 0 || conf == NULL || trap_engine_new(conf, &engine) < 0) {
		for (size_t i = 0; i < cfg->nerrors; i++)
			fprintf(stderr, "%s\n", cfg->errors[i]);
		abort();
	}
	/* Reports go nowhere: a socket never bound to a peer that listens. */
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	return 0;
}

/* What the listener makes of an accepted trap, all of it, then thrown away. */
static void build_events(const struct trap_msg *m, const struct trap_device *d)
{
	struct trapreview_row row;
	struct trapmap_result r;
	uint8_t id[16];
	char *ctx;

	if (d == NULL) {
		trapevent_review_row(m, 0, &row);
		trapreview_row_clear(&row);
		return;
	}
	if (trapmap_apply(conf->map, m, d->host, &r) < 0)
		return;
	do {
		ctx = trapevent_context(m, r.mapping);
		free(ctx);
		trapevent_inform_id(m, d->host, r.mapping, id);
	} while (trapmap_next_clear(conf->map, m, d->host, &r) == 1);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_in from = { .sin_family = AF_INET, .sin_port = htons(9) };
	const struct trap_device *d;
	struct trap_msg m;
	uint8_t *copy;

	init();
	inet_pton(AF_INET, size % 2 ? "127.0.0.2" : "192.0.2.1", &from.sin_addr);
	copy = malloc(size ? size : 1);
	memcpy(copy, data, size);
	trapmsg_init(&m);
	if (trap_decode(engine, fd, copy, size, (struct sockaddr *)&from,
			sizeof(from), &m) == TRAP_ACCEPTED) {
		struct trap_ack ack = { .fd = -1 };

		d = trapdev_identify(conf, &m);
		if (trapdev_authorise(conf, &m, d) == TRAP_ACCEPTED)
			build_events(&m, d);
		if (m.inform)
			trap_inform_response(engine, &ack);
		trap_ack_clear(&ack);
	}
	trapmsg_free(&m);
	free(copy);
	return 0;
}
