/*
 * auth_lookup: what authenticating a per-host credential costs, with the
 * in-memory index the collector uses and with the alternative, an indexed
 * SELECT by hash on a read connection of the same database.
 *
 *   auth_lookup [CREDENTIALS]
 *
 * Enrolls CREDENTIALS hosts (default 10,000) through the real module,
 * then authenticates random ones of them a million times both ways and
 * prints nanoseconds per lookup (hashing the secret included in both).
 */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../common/util.h"
#include "../server/account.h"
#include "../server/audit.h"
#include "../server/credentials.h"
#include "../server/enrollment.h"
#include "../server/server.h"
#include "../server/store.h"
#include "../server/writer.h"

#define LOOKUPS 1000000

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	char path[] = "/tmp/tocsin-auth-lookup-XXXXXX", err[384], host[32];
	int64_t n = 10000, now = time_now_ms();
	struct credential_issued tok, *creds;
	struct credentials *c;
	struct audit *audit;
	struct principal p;
	struct writer *w;
	struct store *st;
	sqlite3_stmt *sel;
	sqlite3 *ro;
	double t0, mem_ns, sql_ns;
	long found = 0;
	int fd;

	if ((argc > 1 && parse_int64(argv[1], &n) < 0) || n < 1) {
		fprintf(stderr, "usage: auth_lookup [CREDENTIALS]\n");
		return 2;
	}
	if (sodium_init() < 0 || (fd = mkstemp(path)) < 0)
		return 1;
	close(fd);
	unlink(path);
	if (store_open(path, &st) < 0 || audit_open(st, &audit) < 0 ||
	    credentials_open(st, audit, &c) < 0 ||
	    writer_start(st, 64, 64, &w) < 0)
		return 1;
	credentials_attach_writer(c, w);
	if (credentials_token_create(c, "acme", now + 3600000, 0,
				     ACTOR_UNCHECKED("bench"), now, &tok, err,
				     sizeof(err)) < 0)
		return 1;
	memset(&p, 0, sizeof(p));
	credentials_authenticate(c, tok.secret, now, &p);
	creds = xcalloc((size_t)n, sizeof(*creds));
	for (int64_t i = 0; i < n; i++) {
		snprintf(host, sizeof(host), "host%06lld", (long long)i);
		if (enrollment_enroll(c, &p, host, NULL, now, &creds[i], err,
				       sizeof(err)) < 0) {
			fprintf(stderr, "%s\n", err);
			return 1;
		}
	}

	t0 = now_s();
	for (long i = 0; i < LOOKUPS; i++) {
		struct principal q;

		found += credentials_authenticate(c, creds[random() % n].secret,
						  now, &q) == 0;
	}
	mem_ns = (now_s() - t0) * 1e9 / LOOKUPS;

	if (sqlite3_open_v2(path, &ro, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
	    sqlite3_prepare_v2(ro,
			       "SELECT id, host, customer, revoked_at, expires_at"
			       " FROM credentials WHERE hash = ?1",
			       -1, &sel, NULL) != SQLITE_OK)
		return 1;
	t0 = now_s();
	for (long i = 0; i < LOOKUPS; i++) {
		uint8_t hash[TOKEN_HASH_LEN];

		token_hash(creds[random() % n].secret, hash);
		sqlite3_bind_blob(sel, 1, hash, TOKEN_HASH_LEN, SQLITE_STATIC);
		found += sqlite3_step(sel) == SQLITE_ROW;
		sqlite3_reset(sel);
	}
	sql_ns = (now_s() - t0) * 1e9 / LOOKUPS;
	sqlite3_finalize(sel);
	sqlite3_close(ro);

	printf("auth_lookup: %lld credentials: in-memory index %.0f ns/lookup, "
	       "indexed SELECT by hash %.0f ns/lookup (%ld found of %d)\n",
	       (long long)n, mem_ns, sql_ns, found, 2 * LOOKUPS);
	writer_stop(w);
	credentials_close(c);
	audit_close(audit);
	store_close(st);
	free(creds);
	for (const char *suffix = ""; suffix; suffix = *suffix ? NULL : "-wal") {
		char *f = xasprintf("%s%s", path, suffix);

		unlink(f);
		free(f);
	}
	return 0;
}
