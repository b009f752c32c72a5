/*
 * Claims on systemd units between checks; see claims.h.  A handful of
 * entries (one per backup target with a unit), so a plain array.
 */
#include "claims.h"

#include <stdlib.h>
#include <string.h>

#include "../common/util.h"

struct claim {
	const void *owner;
	char *unit;
	char *label;
};

struct claims {
	struct claim *v;
	size_t n;
};

struct claims *claims_new(void)
{
	return xcalloc(1, sizeof(struct claims));
}

void claims_free(struct claims *c)
{
	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n; i++) {
		free(c->v[i].unit);
		free(c->v[i].label);
	}
	free(c->v);
	free(c);
}

void claims_add(struct claims *c, const void *owner, const char *unit,
		const char *label)
{
	if (c == NULL)
		return;
	c->v = xreallocarray(c->v, c->n + 1, sizeof(*c->v));
	c->v[c->n++] = (struct claim){
		.owner = owner,
		.unit = xstrdup(unit),
		.label = xstrdup(label),
	};
}

void claims_drop(struct claims *c, const void *owner)
{
	size_t kept = 0;

	if (c == NULL)
		return;
	for (size_t i = 0; i < c->n; i++) {
		if (c->v[i].owner == owner) {
			free(c->v[i].unit);
			free(c->v[i].label);
		} else {
			c->v[kept++] = c->v[i];
		}
	}
	c->n = kept;
}

const char *claims_find(const struct claims *c, const char *unit)
{
	for (size_t i = 0; c != NULL && i < c->n; i++)
		if (strcmp(c->v[i].unit, unit) == 0)
			return c->v[i].label;
	return NULL;
}

const char *claims_unit(const struct claims *c, size_t i)
{
	return c != NULL && i < c->n ? c->v[i].unit : NULL;
}
