#include "netindex.h"

#include <netinet/in.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"

/* A network's address masked to its prefix, and its place in the array. */
struct netindex_key {
	uint8_t addr[16];
	size_t network;
};

/* The networks of one family and prefix length, sorted by address. */
struct netindex_level {
	int family;
	unsigned prefix;
	struct netindex_key *keys;
	size_t nkeys;
};

struct netindex {
	struct netindex_level *levels; /* longest prefix first */
	size_t nlevels;
	struct netindex_key *keys;     /* all levels' keys, one allocation */
};

/* An entry while building: the level's key and the key. */
struct build_key {
	int family;
	unsigned prefix;
	struct netindex_key key;
};

static size_t family_len(int family)
{
	return family == AF_INET ? 4 : 16;
}

/* addr's first prefix bits, the rest zero, into out (16 bytes). */
static void mask_to(const uint8_t *addr, int family, unsigned prefix,
		    uint8_t out[16])
{
	unsigned full = prefix / 8, rest = prefix % 8;

	memset(out, 0, 16);
	memcpy(out, addr, full);
	if (rest != 0 && full < family_len(family))
		out[full] = addr[full] & (uint8_t)(0xff << (8 - rest));
}

static int build_key_cmp(const void *pa, const void *pb)
{
	const struct build_key *a = pa, *b = pb;
	int c;

	if (a->family != b->family)
		return a->family < b->family ? -1 : 1;
	if (a->prefix != b->prefix)
		return a->prefix > b->prefix ? -1 : 1;
	c = memcmp(a->key.addr, b->key.addr, sizeof(a->key.addr));
	if (c != 0)
		return c;
	return a->key.network < b->key.network ? -1 : a->key.network > b->key.network;
}

struct netindex *netindex_new(const struct trap_network *nets, size_t n)
{
	struct netindex *ix = xcalloc(1, sizeof(*ix));
	struct build_key *b = xcalloc(n ? n : 1, sizeof(*b));

	for (size_t i = 0; i < n; i++) {
		const struct trap_cidr *c = &nets[i].cidr;

		b[i].family = c->family;
		b[i].prefix = c->prefix;
		mask_to(c->addr, c->family, c->prefix, b[i].key.addr);
		b[i].key.network = i;
	}
	qsort(b, n, sizeof(*b), build_key_cmp);
	ix->keys = xcalloc(n ? n : 1, sizeof(*ix->keys));
	/* At most 33 + 129 levels; one per run of equal (family, prefix). */
	ix->levels = xcalloc(n ? n : 1, sizeof(*ix->levels));
	for (size_t i = 0; i < n; i++) {
		struct netindex_level *l =
			ix->nlevels ? &ix->levels[ix->nlevels - 1] : NULL;

		if (l == NULL || l->family != b[i].family ||
		    l->prefix != b[i].prefix) {
			l = &ix->levels[ix->nlevels++];
			l->family = b[i].family;
			l->prefix = b[i].prefix;
			l->keys = &ix->keys[i];
		}
		ix->keys[i] = b[i].key;
		l->nkeys++;
	}
	free(b);
	return ix;
}

void netindex_free(struct netindex *ix)
{
	if (ix == NULL)
		return;
	free(ix->keys);
	free(ix->levels);
	free(ix);
}

static void hits_add(struct netindex_hits *hits, size_t network)
{
	if (hits->n == hits->cap) {
		hits->cap = hits->cap ? 2 * hits->cap : 8;
		hits->v = xreallocarray(hits->v, hits->cap, sizeof(*hits->v));
	}
	hits->v[hits->n++] = network;
}

/* The first key of l not below want. */
static size_t level_lower_bound(const struct netindex_level *l,
				const uint8_t want[16])
{
	size_t lo = 0, hi = l->nkeys;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (memcmp(l->keys[mid].addr, want, 16) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

static void find_bytes(const struct netindex *ix, int family,
		       const uint8_t *addr, struct netindex_hits *hits)
{
	for (size_t i = 0; ix != NULL && i < ix->nlevels; i++) {
		const struct netindex_level *l = &ix->levels[i];
		uint8_t want[16];

		if (l->family != family)
			continue;
		mask_to(addr, family, l->prefix, want);
		for (size_t k = level_lower_bound(l, want);
		     k < l->nkeys && memcmp(l->keys[k].addr, want, 16) == 0; k++)
			hits_add(hits, l->keys[k].network);
	}
}

void netindex_find(const struct netindex *ix, const struct trap_cidr *addr,
		   struct netindex_hits *hits)
{
	find_bytes(ix, addr->family, addr->addr, hits);
}

void netindex_find_sockaddr(const struct netindex *ix,
			    const struct sockaddr *sa,
			    struct netindex_hits *hits)
{
	if (sa->sa_family == AF_INET)
		find_bytes(ix, AF_INET,
			   (const uint8_t *)&((const struct sockaddr_in *)sa)->sin_addr,
			   hits);
	else if (sa->sa_family == AF_INET6)
		find_bytes(ix, AF_INET6,
			   ((const struct sockaddr_in6 *)sa)->sin6_addr.s6_addr, hits);
}

static int size_cmp(const void *pa, const void *pb)
{
	size_t a = *(const size_t *)pa, b = *(const size_t *)pb;

	return a < b ? -1 : a > b;
}

void netindex_hits_sort(struct netindex_hits *hits)
{
	size_t n = 0;

	if (hits->n == 0)
		return;
	qsort(hits->v, hits->n, sizeof(*hits->v), size_cmp);
	for (size_t i = 0; i < hits->n; i++)
		if (n == 0 || hits->v[n - 1] != hits->v[i])
			hits->v[n++] = hits->v[i];
	hits->n = n;
}

void netindex_hits_free(struct netindex_hits *hits)
{
	free(hits->v);
	*hits = (struct netindex_hits){ 0 };
}
