/*
 * Fuzz target for a datagram on the trap port, the whole untrusted path:
 * net-snmp's decoder (v1, v2c, v3 USM), our conversion of what it parsed,
 * device identity and authorisation, and the mappings.
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
#include "../../server/trapmap.h"
#include "../../server/trapmsg.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char config[] =
	"hosts:\n"
	"  sw1:\n"
	"    snmp: {addresses: [192.0.2.1], community: public}\n"
	"  v3dev:\n"
	"    snmp: {engine_id: 0x8000000001020304}\n"
	"traps:\n"
	"  mappings_dir: /nonexistent\n"
	"  mib_dirs: []\n"
	"  users:\n"
	"    - {name: netops, auth: sha256, auth_key: auth-pass-123, priv: aes,"
	"       priv_key: priv-pass-123, engine_ids: [0x8000000001020304]}\n";

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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct sockaddr_in from = { .sin_family = AF_INET, .sin_port = htons(9) };
	const struct trap_device *d;
	struct trapmap_result r;
	struct trap_msg m;
	uint8_t *copy;

	init();
	inet_pton(AF_INET, "127.0.0.2", &from.sin_addr);
	copy = malloc(size ? size : 1);
	memcpy(copy, data, size);
	trapmsg_init(&m);
	if (trap_decode(engine, fd, copy, size, (struct sockaddr *)&from,
			sizeof(from), &m) == TRAP_ACCEPTED) {
		struct trap_ack ack = { .fd = -1 };

		d = trapdev_identify(conf, &m);
		trapdev_authorise(conf, &m, d);
		trapmap_apply(conf->map, &m, d ? d->host : "unknown", &r);
		if (m.inform)
			trap_inform_response(engine, &ack);
		trap_ack_clear(&ack);
	}
	trapmsg_free(&m);
	free(copy);
	return 0;
}
