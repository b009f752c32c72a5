#include "nameindex.h"

#include <stdlib.h>
#include <string.h>

#include "../common/util.h"

static int entry_order(const void *pa, const void *pb)
{
	const struct nameindex_entry *a = pa, *b = pb;
	int c = strcmp(a->name, b->name);

	if (c != 0)
		return c;
	return a->item < b->item ? -1 : a->item > b->item;
}

void nameindex_build(struct nameindex *ix, const void *items, size_t n,
		     size_t size, size_t name_offset)
{
	const char *base = items;

	nameindex_free(ix);
	ix->v = xcalloc(n ? n : 1, sizeof(*ix->v));
	for (size_t i = 0; i < n; i++) {
		const char *name;

		memcpy(&name, base + i * size + name_offset, sizeof(name));
		if (name != NULL)
			ix->v[ix->n++] = (struct nameindex_entry){ name, i };
	}
	if (ix->n > 0)
		qsort(ix->v, ix->n, sizeof(*ix->v), entry_order);
}

void nameindex_free(struct nameindex *ix)
{
	free(ix->v);
	*ix = (struct nameindex){ 0 };
}

long nameindex_find(const struct nameindex *ix, const char *name)
{
	size_t lo = 0, hi = ix->n;

	if (name == NULL)
		return -1;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (strcmp(ix->v[mid].name, name) < 0)
			lo = mid + 1;
		else
			hi = mid;
	}
	if (lo < ix->n && strcmp(ix->v[lo].name, name) == 0)
		return (long)ix->v[lo].item;
	return -1;
}
