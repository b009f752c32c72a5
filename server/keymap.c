#include "keymap.h"

#include <stdlib.h>
#include <string.h>

#include "../common/util.h"

struct slot {
	uint64_t hash; /* 0: empty */
	int64_t host_id;
	char *check; /* one allocation: check, NUL, item, NUL */
	const char *item;
};

struct keymap {
	struct slot *slot;
	unsigned char *values; /* cap * value_size */
	size_t cap;	       /* a power of two, or 0 */
	size_t n;
	size_t value_size;
};

uint64_t keymap_hash(int64_t host_id, const char *check, const char *item)
{
	uint64_t h = 0xcbf29ce484222325ULL; /* FNV-1a */
	uint64_t id = (uint64_t)host_id;

	for (int i = 0; i < 8; i++) {
		h ^= (id >> (8 * i)) & 0xff;
		h *= 0x100000001b3ULL;
	}
	for (const char *s = check; *s; s++) {
		h ^= (uint8_t)*s;
		h *= 0x100000001b3ULL;
	}
	h ^= 0xff; /* separates check and item: ("a", "bc") != ("ab", "c") */
	h *= 0x100000001b3ULL;
	for (const char *s = item; *s; s++) {
		h ^= (uint8_t)*s;
		h *= 0x100000001b3ULL;
	}
	h ^= h >> 29; /* the low bits pick the slot: mix the high ones in */
	return h ? h : 1;
}

struct keymap *keymap_new(size_t value_size)
{
	struct keymap *m = xcalloc(1, sizeof(*m));

	m->value_size = value_size;
	return m;
}

void keymap_clear(struct keymap *m)
{
	for (size_t i = 0; i < m->cap; i++) {
		free(m->slot[i].check);
		m->slot[i] = (struct slot){ 0 };
	}
	m->n = 0;
}

void keymap_free(struct keymap *m)
{
	if (m == NULL)
		return;
	keymap_clear(m);
	free(m->slot);
	free(m->values);
	free(m);
}

size_t keymap_count(const struct keymap *m)
{
	return m->n;
}

static void *value_at(const struct keymap *m, size_t i)
{
	return m->values + i * m->value_size;
}

/* The slot holding the key, or the empty slot where it would go. */
static size_t find_slot(const struct keymap *m, uint64_t h, int64_t host_id,
			const char *check, const char *item)
{
	size_t mask = m->cap - 1;

	for (size_t i = h & mask;; i = (i + 1) & mask) {
		const struct slot *s = &m->slot[i];

		if (s->hash == 0)
			return i;
		if (s->hash == h && s->host_id == host_id &&
		    strcmp(s->check, check) == 0 && strcmp(s->item, item) == 0)
			return i;
	}
}

void *keymap_get(const struct keymap *m, int64_t host_id, const char *check,
		 const char *item)
{
	size_t i;

	if (m->n == 0)
		return NULL;
	i = find_slot(m, keymap_hash(host_id, check, item), host_id, check, item);
	return m->slot[i].hash ? value_at(m, i) : NULL;
}

/* Double the table (or make the first one) and move every entry over. */
static void grow(struct keymap *m)
{
	struct keymap bigger = { .cap = m->cap ? m->cap * 2 : 256,
				 .value_size = m->value_size };

	bigger.slot = xcalloc(bigger.cap, sizeof(*bigger.slot));
	bigger.values = xcalloc(bigger.cap, m->value_size ? m->value_size : 1);
	for (size_t i = 0; i < m->cap; i++) {
		const struct slot *s = &m->slot[i];
		size_t j;

		if (s->hash == 0)
			continue;
		for (j = s->hash & (bigger.cap - 1); bigger.slot[j].hash;
		     j = (j + 1) & (bigger.cap - 1))
			;
		bigger.slot[j] = *s;
		memcpy(value_at(&bigger, j), value_at(m, i), m->value_size);
	}
	bigger.n = m->n;
	free(m->slot);
	free(m->values);
	*m = bigger;
}

void *keymap_put(struct keymap *m, int64_t host_id, const char *check,
		 const char *item, bool *ret_added)
{
	uint64_t h = keymap_hash(host_id, check, item);
	size_t i, clen, ilen;
	struct slot *s;

	if ((m->n + 1) * 2 > m->cap)
		grow(m);
	i = find_slot(m, h, host_id, check, item);
	s = &m->slot[i];
	if (ret_added)
		*ret_added = s->hash == 0;
	if (s->hash != 0)
		return value_at(m, i);
	clen = strlen(check);
	ilen = strlen(item);
	s->check = xreallocarray(NULL, clen + ilen + 2, 1);
	memcpy(s->check, check, clen + 1);
	memcpy(s->check + clen + 1, item, ilen + 1);
	s->item = s->check + clen + 1;
	s->host_id = host_id;
	s->hash = h;
	m->n++;
	memset(value_at(m, i), 0, m->value_size);
	return value_at(m, i);
}

bool keymap_remove(struct keymap *m, int64_t host_id, const char *check,
		   const char *item)
{
	size_t mask = m->cap - 1, i, j;

	if (m->n == 0)
		return false;
	i = find_slot(m, keymap_hash(host_id, check, item), host_id, check, item);
	if (m->slot[i].hash == 0)
		return false;
	free(m->slot[i].check);
	m->slot[i] = (struct slot){ 0 };
	m->n--;
	/*
	 * Backward shift: move later entries of the probe run into the hole
	 * when their home slot does not lie between the hole and them.
	 */
	for (j = (i + 1) & mask; m->slot[j].hash; j = (j + 1) & mask) {
		size_t home = m->slot[j].hash & mask;

		if (((j - home) & mask) >= ((j - i) & mask)) {
			m->slot[i] = m->slot[j];
			memcpy(value_at(m, i), value_at(m, j), m->value_size);
			m->slot[j] = (struct slot){ 0 };
			i = j;
		}
	}
	return true;
}

void keymap_foreach(struct keymap *m,
		    void (*fn)(void *arg, int64_t host_id, const char *check,
			       const char *item, void *value),
		    void *arg)
{
	for (size_t i = 0; i < m->cap; i++)
		if (m->slot[i].hash)
			fn(arg, m->slot[i].host_id, m->slot[i].check,
			   m->slot[i].item, value_at(m, i));
}
