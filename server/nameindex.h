/*
 * A sorted index of the names of an array of structs: the inventory's
 * customers and hosts, the helpdesk's
 * people, queues and contracts, looked up by name for every person's
 * queues, every queue's lead and every customer's contract as the
 * configuration loads (and reloads), and for every ticket the desk routes
 * or recomputes.  A scan per lookup made loading an MSP's thousands of
 * each quadratic.  O(log n) per lookup; built once over an array that
 * does not change after (the configuration is immutable once loaded), so
 * any thread may look up without a lock.
 */
#ifndef TOCSIN_NAMEINDEX_H
#define TOCSIN_NAMEINDEX_H

#include <stddef.h>

struct nameindex_entry {
	const char *name; /* the item's own string, not a copy */
	size_t item;
};

struct nameindex {
	struct nameindex_entry *v; /* by name, then by item */
	size_t n;
};

/*
 * Index items[0..n), each of size bytes with its name, a char * (NULL:
 * left out), name_offset bytes in (offsetof()).  Replaces what ix held.
 */
void nameindex_build(struct nameindex *ix, const void *items, size_t n,
		     size_t size, size_t name_offset);
void nameindex_free(struct nameindex *ix);

/*
 * The position of the item called name (the first in the array when
 * several are), or -1 when none is or name is NULL.
 */
long nameindex_find(const struct nameindex *ix, const char *name);

#endif
