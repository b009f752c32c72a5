/*
 * The simulated agents both ingest benchmarks send (ingest_load.c over
 * HTTP, store_apply.c straight to the writer): the mixes, and a batch's
 * JSON body.  See ingest_load.c for what the mixes mean.
 */
#ifndef TOCSIN_BENCH_WORKLOAD_H
#define TOCSIN_BENCH_WORKLOAD_H

#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <time.h>

#define WORKLOAD_EVENT_MAX 512 /* bytes one event takes in a body, at most */
#define WORKLOAD_INTERVAL_MS 60000 /* simulated time between two rounds */

enum workload_mix { MIX_REALISTIC, MIX_CHURN };

struct workload {
	enum workload_mix mix;
	bool v4;	    /* random version-4 ids instead of UUIDv7 */
	int items_per_host;
	int batch;
	int64_t base_ms;    /* the simulated time of round 0 */
};

/* One simulated agent: which item comes next and in which round. */
struct workload_agent {
	int index;
	int next_item;
	int64_t round;
	uint64_t rng; /* xorshift64 state for its event ids */
};

static inline uint64_t workload_random(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* The state of key (agent, item) in round. */
static inline const char *workload_state(const struct workload *w, int agent,
					 int item, int64_t round)
{
	static const char *const churn[] = { "critical", "critical", "warning",
					     "critical", "ok" };
	uint64_t key = (uint64_t)agent * (uint64_t)w->items_per_host + (uint64_t)item;
	uint64_t h = key * 0x9e3779b97f4a7c15ULL;

	if (w->mix == MIX_CHURN)
		return churn[(uint64_t)(round + (int64_t)key) % 5];
	if ((h >> 32) % 100 < 4)
		return "critical";
	return (uint64_t)(round + (int64_t)(key * 7)) % 50 == 0 ? "critical" : "ok";
}

static inline char *workload_put(char *p, const char *s)
{
	size_t n = strlen(s);

	memcpy(p, s, n);
	return p + n;
}

static inline char *workload_hex(char *p, uint64_t v, int digits)
{
	static const char hex[] = "0123456789abcdef";

	for (int i = digits - 1; i >= 0; i--) {
		p[i] = hex[v & 15];
		v >>= 4;
	}
	return p + digits;
}

static inline char *workload_4digits(char *p, int v)
{
	p[0] = (char)('0' + v / 1000 % 10);
	p[1] = (char)('0' + v / 100 % 10);
	p[2] = (char)('0' + v / 10 % 10);
	p[3] = (char)('0' + v % 10);
	return p + 4;
}

/* A UUIDv7 (RFC 9562: 48-bit Unix ms, version, random) or a UUIDv4. */
static inline char *workload_uuid(char *p, uint64_t *rng, bool v4, int64_t ms)
{
	uint64_t a = workload_random(rng), b = workload_random(rng);
	uint64_t hi = v4 ? a : (uint64_t)ms << 16 | (a & 0xffff);

	hi = (hi & ~0xf000ULL) | (v4 ? 0x4000ULL : 0x7000ULL);
	b = (b & ~(3ULL << 62)) | (2ULL << 62);
	p = workload_hex(p, hi >> 32, 8);
	*p++ = '-';
	p = workload_hex(p, hi >> 16, 4);
	*p++ = '-';
	p = workload_hex(p, hi, 4);
	*p++ = '-';
	p = workload_hex(p, b >> 48, 4);
	*p++ = '-';
	return workload_hex(p, b, 12);
}

/*
 * Agent a's next batch as JSON at p (room for w->batch *
 * WORKLOAD_EVENT_MAX + 64 bytes), ids dated now_ms; returns its end.
 */
static inline char *workload_batch(const struct workload *w,
				   struct workload_agent *a, int64_t now_ms,
				   char *p)
{
	time_t secs = (time_t)((w->base_ms + a->round * WORKLOAD_INTERVAL_MS) / 1000);
	char at[32];
	struct tm tm;

	gmtime_r(&secs, &tm);
	strftime(at, sizeof(at), "%Y-%m-%dT%H:%M:%SZ", &tm);
	p = workload_put(p, "{\"host\":\"bench");
	p = workload_4digits(p, a->index);
	p = workload_put(p, "\",\"events\":[");
	for (int i = 0; i < w->batch; i++) {
		int item = a->next_item;

		if (i)
			*p++ = ',';
		p = workload_put(p, "{\"id\":\"");
		p = workload_uuid(p, &a->rng, w->v4, now_ms);
		p = workload_put(p, "\",\"check\":\"disk\",\"item\":\"/srv/vol");
		p = workload_4digits(p, item);
		p = workload_put(p, "\",\"state\":\"");
		p = workload_put(p, workload_state(w, a->index, item, a->round));
		p = workload_put(p, "\",\"summary\":\"/srv/vol");
		p = workload_4digits(p, item);
		p = workload_put(p, ": 93.1% used, 6.2 GiB free of 90.0 GiB (warning at 90%)\","
				    "\"metrics\":{\"used_percent\":93.1,\"free_bytes\":6657199308},"
				    "\"observed_at\":\"");
		p = workload_put(p, at);
		p = workload_put(p, "\"}");
		if (++a->next_item == w->items_per_host) {
			a->next_item = 0;
			a->round++;
		}
	}
	return workload_put(p, "]}");
}

#endif
