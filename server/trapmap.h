/*
 * Trap mappings: which trap becomes which event.
 *
 * A mapping is a value: a name, the trap OID it answers (exact, or a
 * prefix written "OID.*"), optional conditions on varbinds (equals, prefix,
 * regex), and what the event is: check, item, state and summary, where
 * item and summary are templates ("{ifName|ifDescr} on {device} is down").
 * A mapping with `clears: other` is the paired clear trap: it produces an
 * ok event for other's check and item, which resolves other's ticket.
 *
 * The built-in mappings (link-down, link-up, cold-start, warm-start,
 * authentication-failure and the generic fallback) are C values in one
 * table, like checks; the YAML files of the mappings directory (one per
 * vendor) add more in the same form, and a file's mapping with the name of
 * a built-in replaces it (`enabled: false` switches it off, and the clears
 * of it with it).  Mappings are tried in order: the files in name order,
 * each top to bottom, then the built-ins; the first that matches wins.  A
 * trap nothing matches goes to the fallback.  When the first that matches
 * is a clear, every later clear that matches resolves its own mapping's
 * problem too: a file's clear of a narrow mapping ("linkUp of an uplink")
 * must not keep the built-in link-up from resolving every other port.
 *
 * Templates are plain text: rendering escapes nothing and interprets
 * nothing, the result is only ever bound as an SQL parameter or put into
 * JSON by jansson.  Values from the device are already readable text
 * (trapmsg.h); they are cut, never overflowed, at the ingest limits.
 *
 * A struct trapmap is immutable once trapmap_finish() has run, so the
 * listener reads it without locks.
 */
#ifndef TOCSIN_TRAPMAP_H
#define TOCSIN_TRAPMAP_H

#include <stdbool.h>
#include <stddef.h>

#include "../checks/check.h"
#include "ingest.h"
#include "trapmsg.h"

struct cfg;
struct trapmap;

/*
 * Resolve a name that is neither numeric, nor built in, nor an alias of
 * the file (a MIB object such as "CISCO-ENVMON-MIB::ciscoEnvMonFanState")
 * into *ret: 0, or -ENOENT.
 */
typedef int (*trapmap_resolve_fn)(void *arg, const char *name,
				  struct trap_oid *ret);

struct trapmap *trapmap_new(void);
void trapmap_free(struct trapmap *m);

/*
 * Add the mappings of one parsed file (its root holds `names:` and
 * `mappings:`).  Errors go into file_cfg with file:line:column; the caller
 * runs cfg_finish(file_cfg) for unknown keys.  resolve may be NULL.
 */
void trapmap_add_file(struct trapmap *m, struct cfg *file_cfg,
		      trapmap_resolve_fn resolve, void *arg);
/*
 * Read every *.yaml file of dir in name order (a missing directory has
 * none) and add it; every error goes into errors, already located.
 */
void trapmap_load_dir(struct trapmap *m, const char *dir,
		      trapmap_resolve_fn resolve, void *arg,
		      struct cfg *errors);
/*
 * Add the built-ins that no file replaced and resolve `clears:`.  Errors
 * (a clears naming no mapping) go into errors.  Call once, last.
 */
void trapmap_finish(struct trapmap *m, struct cfg *errors);

/* Mappings in the table, without the fallback. */
size_t trapmap_count(const struct trapmap *m);

struct trapmap_result {
	const char *mapping; /* the name of the mapping used */
	bool fallback;	     /* nothing matched; the fallback produced it */
	bool clear;	     /* a clear: trapmap_next_clear() may find more */
	size_t next;	     /* where trapmap_next_clear() goes on */
	char check[INGEST_CHECK_MAX + 1];
	char item[INGEST_ITEM_MAX + 1];
	enum check_state state;
	char summary[INGEST_SUMMARY_MAX + 1];
};

/*
 * Find the mapping for msg from device (the host name, for {device}) and
 * render its event into *ret.  1 when a mapping matched, 0 when the
 * fallback was used, -ENOENT when nothing matched and the fallback is off.
 */
int trapmap_apply(const struct trapmap *m, const struct trap_msg *msg,
		  const char *device, struct trapmap_result *ret);
/*
 * After trapmap_apply() found a clear: render the next clear that
 * matches msg too into *ret (1), or 0 when there is none (or *ret was
 * no clear).
 */
int trapmap_next_clear(const struct trapmap *m, const struct trap_msg *msg,
		       const char *device, struct trapmap_result *ret);

#endif
