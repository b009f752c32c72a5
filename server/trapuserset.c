#include "trapuserset.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "trapmsg.h"

struct pair {
	struct pair *next;
	uint64_t hash;
	size_t engine_len;
	uint8_t engine[TRAP_ENGINE_ID_MAX];
	char name[TRAP_USER_MAX + 1];
};

struct trapuserset {
	struct pair **buckets;
	size_t nbuckets; /* a power of two */
	size_t n;
	uint8_t key[crypto_shorthash_KEYBYTES];
};

struct trapuserset *trapuserset_new(void)
{
	struct trapuserset *s = xcalloc(1, sizeof(*s));

	s->nbuckets = 64;
	s->buckets = xcalloc(s->nbuckets, sizeof(*s->buckets));
	randombytes_buf(s->key, sizeof(s->key));
	return s;
}

void trapuserset_free(struct trapuserset *s)
{
	if (s == NULL)
		return;
	for (size_t i = 0; i < s->nbuckets; i++)
		for (struct pair *p = s->buckets[i], *next; p != NULL; p = next) {
			next = p->next;
			free(p);
		}
	free(s->buckets);
	free(s);
}

/* False for a pair that cannot be held; else *ret_hash is its hash. */
static bool pair_hash(const struct trapuserset *s, const uint8_t *engine,
		      size_t engine_len, const char *name, uint64_t *ret_hash)
{
	uint8_t buf[1 + TRAP_ENGINE_ID_MAX + TRAP_USER_MAX];
	size_t name_len = strlen(name);
	unsigned char out[crypto_shorthash_BYTES];

	if (engine_len > TRAP_ENGINE_ID_MAX || name_len > TRAP_USER_MAX)
		return false;
	/* The length first, so that no two pairs hash the same bytes. */
	buf[0] = (uint8_t)engine_len;
	memcpy(buf + 1, engine, engine_len);
	memcpy(buf + 1 + engine_len, name, name_len);
	crypto_shorthash(out, buf, 1 + engine_len + name_len, s->key);
	memcpy(ret_hash, out, sizeof(*ret_hash));
	return true;
}

static struct pair **find(const struct trapuserset *s, uint64_t hash,
			  const uint8_t *engine, size_t engine_len,
			  const char *name)
{
	struct pair **at = &s->buckets[hash & (s->nbuckets - 1)];

	for (; *at != NULL; at = &(*at)->next)
		if ((*at)->hash == hash && (*at)->engine_len == engine_len &&
		    memcmp((*at)->engine, engine, engine_len) == 0 &&
		    strcmp((*at)->name, name) == 0)
			return at;
	return at;
}

bool trapuserset_has(const struct trapuserset *s, const uint8_t *engine,
		     size_t engine_len, const char *name)
{
	uint64_t hash;

	return pair_hash(s, engine, engine_len, name, &hash) &&
	       *find(s, hash, engine, engine_len, name) != NULL;
}

/* Twice the buckets once there are more pairs than buckets. */
static void grow(struct trapuserset *s)
{
	size_t n = s->nbuckets * 2;
	struct pair **buckets = xcalloc(n, sizeof(*buckets));

	for (size_t i = 0; i < s->nbuckets; i++)
		for (struct pair *p = s->buckets[i], *next; p != NULL; p = next) {
			next = p->next;
			p->next = buckets[p->hash & (n - 1)];
			buckets[p->hash & (n - 1)] = p;
		}
	free(s->buckets);
	s->buckets = buckets;
	s->nbuckets = n;
}

void trapuserset_add(struct trapuserset *s, const uint8_t *engine,
		     size_t engine_len, const char *name)
{
	struct pair **at, *p;
	uint64_t hash;

	if (!pair_hash(s, engine, engine_len, name, &hash))
		return;
	at = find(s, hash, engine, engine_len, name);
	if (*at != NULL)
		return;
	p = xcalloc(1, sizeof(*p));
	p->hash = hash;
	p->engine_len = engine_len;
	memcpy(p->engine, engine, engine_len);
	memcpy(p->name, name, strlen(name) + 1);
	*at = p;
	if (++s->n > s->nbuckets)
		grow(s);
}

void trapuserset_remove(struct trapuserset *s, const uint8_t *engine,
			size_t engine_len, const char *name)
{
	struct pair **at, *p;
	uint64_t hash;

	if (!pair_hash(s, engine, engine_len, name, &hash))
		return;
	at = find(s, hash, engine, engine_len, name);
	if (*at == NULL)
		return;
	p = *at;
	*at = p->next;
	free(p);
	s->n--;
}

size_t trapuserset_count(const struct trapuserset *s)
{
	return s->n;
}
