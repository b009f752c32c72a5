/*
 * trap_sender: replay SNMP traps at a fixed rate, for the trap benchmark.
 *
 * snmptrap forks a process per trap and cannot make load, so this encodes
 * a set of distinct traps once with net-snmp (v2c linkDown and linkUp for
 * every interface of every device; devices are told apart by a sysName.0
 * varbind, as behind NAT), then sends them with sendmmsg() in slices of
 * one millisecond for a fixed duration: --repeat rounds of every
 * interface's linkDown (one opens a ticket, the others are occurrences),
 * then one round of linkUps (which resolve them), and again.  It prints
 * what it sent.
 *
 *   trap_sender --port P [--host 127.0.0.1] [--rate 20000] [--duration 10]
 *               [--devices 10] [--interfaces 50] [--repeat 9]
 *               [--community bench-community]
 */
#include <net-snmp/net-snmp-config.h>
#include <net-snmp/net-snmp-includes.h>

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define SLICE_NS 1000000L
#define BATCH_MAX 1024

struct packet {
	u_char *data;
	size_t len;
};

static void add_int(netsnmp_pdu *pdu, const oid *o, size_t len, long v)
{
	snmp_pdu_add_variable(pdu, o, len, ASN_INTEGER, &v, sizeof(v));
}

/* One v2c link trap of device dev for interface ifindex, encoded. */
static struct packet encode(netsnmp_session *s, int dev, int ifindex, bool up)
{
	static const oid uptime[] = { 1, 3, 6, 1, 2, 1, 1, 3, 0 };
	static const oid trapoid[] = { 1, 3, 6, 1, 6, 3, 1, 1, 4, 1, 0 };
	static const oid sysname[] = { 1, 3, 6, 1, 2, 1, 1, 5, 0 };
	oid link[] = { 1, 3, 6, 1, 6, 3, 1, 1, 5, up ? 4 : 3 };
	oid ifidx[] = { 1, 3, 6, 1, 2, 1, 2, 2, 1, 1, (oid)ifindex };
	oid admin[] = { 1, 3, 6, 1, 2, 1, 2, 2, 1, 7, (oid)ifindex };
	oid oper[] = { 1, 3, 6, 1, 2, 1, 2, 2, 1, 8, (oid)ifindex };
	oid ifname[] = { 1, 3, 6, 1, 2, 1, 31, 1, 1, 1, 1, (oid)ifindex };
	netsnmp_pdu *pdu = snmp_pdu_create(SNMP_MSG_TRAP2);
	u_char *buf = malloc(2048);
	size_t buf_len = 2048, off = 0;
	char name[32], ifn[32];
	u_long ticks = 100;
	struct packet p;

	snprintf(name, sizeof(name), "bench-sw%d", dev);
	snprintf(ifn, sizeof(ifn), "ge-0/0/%d", ifindex);
	pdu->version = SNMP_VERSION_2c;
	pdu->community = (u_char *)strdup((const char *)s->community);
	pdu->community_len = s->community_len;
	snmp_pdu_add_variable(pdu, uptime, OID_LENGTH(uptime), ASN_TIMETICKS,
			      &ticks, sizeof(ticks));
	snmp_pdu_add_variable(pdu, trapoid, OID_LENGTH(trapoid), ASN_OBJECT_ID,
			      link, sizeof(link));
	snmp_pdu_add_variable(pdu, sysname, OID_LENGTH(sysname), ASN_OCTET_STR,
			      name, strlen(name));
	add_int(pdu, ifidx, OID_LENGTH(ifidx), ifindex);
	add_int(pdu, admin, OID_LENGTH(admin), 1);
	add_int(pdu, oper, OID_LENGTH(oper), up ? 1 : 2);
	snmp_pdu_add_variable(pdu, ifname, OID_LENGTH(ifname), ASN_OCTET_STR,
			      ifn, strlen(ifn));
	if (snmp_build(&buf, &buf_len, &off, s, pdu) != 0) {
		fprintf(stderr, "trap_sender: cannot encode a trap\n");
		exit(1);
	}
	snmp_free_pdu(pdu);
	/* Reverse encoding: the message is the tail of the buffer. */
	p.len = off;
	p.data = malloc(off);
	memcpy(p.data, buf + buf_len - off, off);
	free(buf);
	return p;
}

static long parse_long(const char *what, const char *text, long min, long max)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(text, &end, 10);
	if (errno || *end || v < min || v > max) {
		fprintf(stderr, "trap_sender: --%s: '%s' is not a number from %ld to %ld\n",
			what, text, min, max);
		exit(2);
	}
	return v;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "host", required_argument, NULL, 'h' },
		{ "port", required_argument, NULL, 'p' },
		{ "rate", required_argument, NULL, 'r' },
		{ "duration", required_argument, NULL, 'd' },
		{ "devices", required_argument, NULL, 'D' },
		{ "interfaces", required_argument, NULL, 'i' },
		{ "community", required_argument, NULL, 'c' },
		{ "repeat", required_argument, NULL, 'R' },
		{ NULL, 0, NULL, 0 },
	};
	const char *host = "127.0.0.1", *community = "bench-community";
	long port = 0, rate = 20000, duration = 10, devices = 10, interfaces = 50;
	long repeat = 9;
	struct sockaddr_in to = { .sin_family = AF_INET };
	struct mmsghdr *msgs;
	struct iovec *iov;
	struct packet *pk;
	struct timespec start, next, end;
	netsnmp_session s;
	long npk, sent = 0, errors = 0, slices, due = 0, c;
	size_t k = 0;
	int fd, sndbuf = 8 * 1024 * 1024;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'h': host = optarg; break;
		case 'p': port = parse_long("port", optarg, 1, 65535); break;
		case 'r': rate = parse_long("rate", optarg, 1, 10000000); break;
		case 'd': duration = parse_long("duration", optarg, 1, 3600); break;
		case 'D': devices = parse_long("devices", optarg, 1, 1000); break;
		case 'i': interfaces = parse_long("interfaces", optarg, 1, 10000); break;
		case 'c': community = optarg; break;
		case 'R': repeat = parse_long("repeat", optarg, 0, 1000); break;
		default:
			fprintf(stderr, "usage: trap_sender --port P [--host H] [--rate N/s] [--duration S] [--devices N] [--interfaces N] [--community C]\n");
			return 2;
		}
	}
	if (port == 0 || inet_pton(AF_INET, host, &to.sin_addr) != 1) {
		fprintf(stderr, "trap_sender: need --port and an IPv4 --host\n");
		return 2;
	}
	to.sin_port = htons((uint16_t)port);
	netsnmp_ds_set_boolean(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_DONT_READ_CONFIGS, 1);
	netsnmp_ds_set_string(NETSNMP_DS_LIBRARY_ID, NETSNMP_DS_LIB_PERSISTENT_DIR, "/dev/null");
	setenv("MIBS", "", 1);
	init_snmp("trap_sender");
	snmp_sess_init(&s);
	s.version = SNMP_VERSION_2c;
	s.community = (u_char *)strdup(community);
	s.community_len = strlen(community);

	/* Every interface's linkDown, then their linkUps: encoded once. */
	npk = devices * interfaces;
	pk = calloc((size_t)npk * 2, sizeof(*pk));
	for (long d = 0, n = 0; d < devices; d++)
		for (long i = 1; i <= interfaces; i++, n++) {
			pk[n] = encode(&s, (int)d, (int)i, false);
			pk[npk + n] = encode(&s, (int)d, (int)i, true);
		}
	fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof(sndbuf));
	msgs = calloc(BATCH_MAX, sizeof(*msgs));
	iov = calloc(BATCH_MAX, sizeof(*iov));

	slices = duration * 1000;
	clock_gettime(CLOCK_MONOTONIC, &start);
	next = start;
	for (long t = 1; t <= slices; t++) {
		long target = rate * t / 1000, n;

		/* What is due by the end of this millisecond, in sendmmsg batches. */
		while (due < target) {
			n = target - due > BATCH_MAX ? BATCH_MAX : target - due;
			for (long j = 0; j < n; j++) {
				/* repeat rounds of downs, then a round of ups. */
				size_t round = k / (size_t)npk, i = k % (size_t)npk;
				const struct packet *p = &pk[(round < (size_t)repeat ? 0 : (size_t)npk) + i];

				k = (k + 1) % ((size_t)npk * (size_t)(repeat + 1));
				iov[j] = (struct iovec){ .iov_base = p->data, .iov_len = p->len };
				msgs[j].msg_hdr = (struct msghdr){ .msg_name = &to,
								   .msg_namelen = sizeof(to),
								   .msg_iov = &iov[j],
								   .msg_iovlen = 1 };
			}
			int r = sendmmsg(fd, msgs, (unsigned)n, 0);

			if (r < 0) {
				errors += n;
				r = (int)n;
			}
			sent += r;
			due += n;
		}
		next.tv_nsec += SLICE_NS;
		if (next.tv_nsec >= 1000000000L) {
			next.tv_sec++;
			next.tv_nsec -= 1000000000L;
		}
		clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &next, NULL);
	}
	clock_gettime(CLOCK_MONOTONIC, &end);
	double secs = (double)(end.tv_sec - start.tv_sec) +
		      (double)(end.tv_nsec - start.tv_nsec) / 1e9;
	printf("sent=%ld errors=%ld seconds=%.3f rate=%.0f distinct=%ld\n",
	       sent - errors, errors, secs, (double)(sent - errors) / secs, npk * 2);
	return 0;
}
