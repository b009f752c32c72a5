/*
 * A set of (engine id, user name) pairs: which SNMPv3 users the trap
 * engine has localised to which engines, so that it need not ask
 * net-snmp's usm_get_user(), a walk of USM's whole user list, with one
 * entry per device and user (thousands of devices at an MSP).  A keyed
 * hash table with chains; an engine id longer than TRAP_ENGINE_ID_MAX or
 * a name longer than TRAP_USER_MAX is never held.  Not thread-safe: the
 * trap engine's, under its lock.
 */
#ifndef TOCSIN_TRAPUSERSET_H
#define TOCSIN_TRAPUSERSET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct trapuserset;

struct trapuserset *trapuserset_new(void);
void trapuserset_free(struct trapuserset *s);
bool trapuserset_has(const struct trapuserset *s, const uint8_t *engine,
		     size_t engine_len, const char *name);
/* Add the pair (nothing when held already, or too long to be held). */
void trapuserset_add(struct trapuserset *s, const uint8_t *engine,
		     size_t engine_len, const char *name);
void trapuserset_remove(struct trapuserset *s, const uint8_t *engine,
			size_t engine_len, const char *name);
size_t trapuserset_count(const struct trapuserset *s);

#endif
