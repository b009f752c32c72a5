/*
 * An exact in-memory map from a problem key (host id, check, item) to a
 * small fixed-size value, for the writer's caches of what the database
 * says about each key (ticket_cache.c: the open ticket; problem.c: whether
 * the lifecycle row needs reading).  Keys are compared in full, never by
 * hash alone, so a cache built on it cannot confuse two keys.
 *
 * Open addressing with linear probing and backward-shift deletion; the
 * table doubles when half full.  Not thread-safe: the writer thread (or
 * whoever holds store_lock()) owns it.
 */
#ifndef TOCSIN_KEYMAP_H
#define TOCSIN_KEYMAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct keymap;

/* The key's 64-bit hash (never 0), for callers' own quick sets. */
uint64_t keymap_hash(int64_t host_id, const char *check, const char *item);

/* A map whose values are value_size bytes (zeroed when a key is added). */
struct keymap *keymap_new(size_t value_size);
void keymap_free(struct keymap *m);

/* The value of the key, or NULL; valid until the map next changes. */
void *keymap_get(const struct keymap *m, int64_t host_id, const char *check,
		 const char *item);
/*
 * The value of the key, added (zeroed) when missing; *ret_added says
 * which, when not NULL.  Valid until the map next changes.
 */
void *keymap_put(struct keymap *m, int64_t host_id, const char *check,
		 const char *item, bool *ret_added);
/* Remove the key; false when it was not there. */
bool keymap_remove(struct keymap *m, int64_t host_id, const char *check,
		   const char *item);
size_t keymap_count(const struct keymap *m);
void keymap_clear(struct keymap *m);

/*
 * Call fn for every entry (in no particular order); fn must not change
 * the map.
 */
void keymap_foreach(struct keymap *m,
		    void (*fn)(void *arg, int64_t host_id, const char *check,
			       const char *item, void *value),
		    void *arg);

#endif
