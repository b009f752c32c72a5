#include "traprate.h"

#include <netinet/in.h>
#include <sodium.h>
#include <stdbool.h>
#include <string.h>

#include "../common/util.h"
#include "trapconf.h"

/* Slots tried for a source before the least recently seen is taken over. */
#define PROBES 8
/* Tokens in thousandths: a rate in traps per second is thousandths per ms. */
#define MILLI 1000

struct bucket {
	int64_t tokens;	 /* thousandths of a trap */
	int64_t last_ms; /* when it was last refilled */
};

struct source {
	bool used;
	uint8_t family;
	uint8_t addr[16];
	struct bucket b;
};

struct limit {
	int64_t rate;  /* traps per second; 0: none */
	int64_t burst; /* traps */
};

struct traprate {
	struct limit source_limit, device_limit;
	struct source *sources; /* TRAPRATE_SOURCES */
	struct bucket *devices;
	size_t ndevices;
	uint8_t key[crypto_shorthash_KEYBYTES];
};

static void bucket_fill(struct bucket *b, const struct limit *l, int64_t now_ms)
{
	b->tokens = l->burst * MILLI;
	b->last_ms = now_ms;
}

struct traprate *traprate_new(const struct trap_config *conf)
{
	struct traprate *r = xcalloc(1, sizeof(*r));

	r->source_limit = (struct limit){ conf->source_rate, conf->source_burst };
	r->device_limit = (struct limit){ conf->device_rate, conf->device_burst };
	r->sources = xcalloc(TRAPRATE_SOURCES, sizeof(*r->sources));
	r->ndevices = conf->ndevices;
	r->devices = xcalloc(r->ndevices ? r->ndevices : 1, sizeof(*r->devices));
	/* Last refilled "never": the first trap finds a full bucket. */
	for (size_t i = 0; i < r->ndevices; i++)
		r->devices[i] = (struct bucket){ .tokens = r->device_limit.burst * MILLI,
						 .last_ms = INT64_MIN };
	/* Keyed, so that nobody can choose addresses that collide. */
	crypto_shorthash_keygen(r->key);
	return r;
}

/* Orders indices into the old device table by host name (qsort_r). */
static int by_host(const void *a, const void *b, void *arg)
{
	const struct trap_device *d = arg;

	return strcmp(d[*(const size_t *)a].host, d[*(const size_t *)b].host);
}

/*
 * A device is its host name: its bucket moves to its new index.  The old
 * indices are sorted by name once, so that a reload of n devices costs
 * n log n comparisons, not n x n (the listener thread takes it up between
 * two datagrams).
 */
void traprate_reconfigure(struct traprate *r, const struct trap_config *old,
			  const struct trap_config *conf)
{
	size_t n = conf->ndevices;
	size_t nold = old->ndevices < r->ndevices ? old->ndevices : r->ndevices;
	struct bucket *devices = xcalloc(n ? n : 1, sizeof(*devices));
	size_t *sorted = xcalloc(nold ? nold : 1, sizeof(*sorted));

	r->source_limit = (struct limit){ conf->source_rate, conf->source_burst };
	r->device_limit = (struct limit){ conf->device_rate, conf->device_burst };
	for (size_t k = 0; k < nold; k++)
		sorted[k] = k;
	qsort_r(sorted, nold, sizeof(*sorted), by_host, old->devices);
	for (size_t i = 0; i < n; i++) {
		const char *host = conf->devices[i].host;
		size_t lo = 0, hi = nold;

		devices[i] = (struct bucket){ .tokens = r->device_limit.burst * MILLI,
					      .last_ms = INT64_MIN };
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;
			int c = strcmp(old->devices[sorted[mid]].host, host);

			if (c == 0) {
				devices[i] = r->devices[sorted[mid]];
				break;
			}
			if (c < 0)
				lo = mid + 1;
			else
				hi = mid;
		}
	}
	free(sorted);
	free(r->devices);
	r->devices = devices;
	r->ndevices = n;
}

void traprate_free(struct traprate *r)
{
	if (r == NULL)
		return;
	free(r->sources);
	free(r->devices);
	free(r);
}

/* Refill b for the time since it was last refilled; its tokens after. */
static int64_t bucket_refill(struct bucket *b, const struct limit *l,
			     int64_t now_ms)
{
	int64_t cap = l->burst * MILLI, elapsed;

	if (b->last_ms == INT64_MIN) {
		bucket_fill(b, l, now_ms);
		return b->tokens;
	}
	/* The burst was lowered by a reload. */
	if (b->tokens > cap)
		b->tokens = cap;
	elapsed = now_ms - b->last_ms;
	if (elapsed <= 0)
		return b->tokens;
	/* Idle long enough to be full: no long time times the rate. */
	if (elapsed > (cap - b->tokens) / l->rate)
		b->tokens = cap;
	else
		b->tokens += elapsed * l->rate;
	b->last_ms = now_ms;
	return b->tokens;
}

static void source_key(const struct sockaddr *sa, uint8_t *family,
		       uint8_t addr[16])
{
	memset(addr, 0, 16);
	*family = (uint8_t)sa->sa_family;
	if (sa->sa_family == AF_INET)
		memcpy(addr, &((const struct sockaddr_in *)sa)->sin_addr, 4);
	else if (sa->sa_family == AF_INET6)
		memcpy(addr, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
}

/* The bucket of source: its slot, a free one, or the stalest one taken over. */
static struct bucket *source_bucket(struct traprate *r,
				    const struct sockaddr *sa, int64_t now_ms)
{
	uint8_t key[17], hash[crypto_shorthash_BYTES];
	struct source *victim = NULL;
	uint64_t h;

	source_key(sa, &key[16], key);
	crypto_shorthash(hash, key, sizeof(key), r->key);
	memcpy(&h, hash, sizeof(h));
	for (size_t i = 0; i < PROBES; i++) {
		struct source *s = &r->sources[(h + i) % TRAPRATE_SOURCES];

		if (s->used && s->family == key[16] &&
		    memcmp(s->addr, key, 16) == 0)
			return &s->b;
		if (!s->used) {
			if (victim == NULL || victim->used)
				victim = s;
		} else if (victim == NULL ||
			   (victim->used && s->b.last_ms < victim->b.last_ms)) {
			victim = s;
		}
	}
	victim->used = true;
	victim->family = key[16];
	memcpy(victim->addr, key, 16);
	bucket_fill(&victim->b, &r->source_limit, now_ms);
	return &victim->b;
}

enum traprate_verdict traprate_take(struct traprate *r,
				    const struct sockaddr *source,
				    size_t device, int64_t now_ms)
{
	struct bucket *s = NULL, *d = NULL;

	if (r->source_limit.rate > 0) {
		s = source_bucket(r, source, now_ms);
		if (bucket_refill(s, &r->source_limit, now_ms) < MILLI)
			return TRAPRATE_SOURCE;
	}
	if (r->device_limit.rate > 0 && device < r->ndevices) {
		d = &r->devices[device];
		if (bucket_refill(d, &r->device_limit, now_ms) < MILLI)
			return TRAPRATE_DEVICE;
	}
	if (s != NULL)
		s->tokens -= MILLI;
	if (d != NULL)
		d->tokens -= MILLI;
	return TRAPRATE_PASS;
}
