/*
 * Topology: a dead router yields one ticket, not one per host behind it.
 *
 * Hosts name the device they depend on (hosts.<name>.parent in the
 * inventory).  A device is *down* while it has an open ticket that is
 * not ok (or flapping) on one of topology.down_checks, by default
 * (heartbeat, alive) -- the device went silent -- and (snmp-link, *) -- a
 * link-down trap.  Recovered, resolved and closed tickets do not make a
 * device down.
 *
 * A ticket opened for a host whose parent, grandparent, ... is down
 * becomes a child of the nearest down ancestor's down ticket (parent_id),
 * announced with parent_id set so that notifiers stay quiet; a parent
 * going down also adopts the tickets its descendants opened within
 * topology.attach_window before (hosts often go silent before the
 * router's trap arrives).  When the parent's ticket recovers, resolves or
 * closes, its children that are ok again are resolved with it and the
 * others move to the next down ancestor or become tickets of their own,
 * announced as opened then.  A device whose down problem a silence holds
 * back holds back the problems of the hosts behind it with the same
 * silence, until its end.
 */
#ifndef TOCSIN_TOPOLOGY_H
#define TOCSIN_TOPOLOGY_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "../common/db.h"
#include "ingest.h"

struct store;
struct host;
struct inventory;
struct lifecycle_config;
struct ticket_change;
struct dedup_metrics;
struct topology;

/* The down ticket a child attaches to. */
struct topology_parent {
	int64_t ticket_id;
	char host[INGEST_HOST_MAX + 1];
	char check[INGEST_CHECK_MAX + 1];
	char item[INGEST_ITEM_MAX + 1];
};

extern const struct db_schema topology_schema;

/*
 * Index inv (may be NULL) for st.  lc, inv and m are borrowed and must
 * outlive the topology.
 */
int topology_open(struct store *st, const struct lifecycle_config *lc,
		  const struct inventory *inv, struct dedup_metrics *m,
		  struct topology **ret);
void topology_close(struct topology *t);

/* The inventory entry for a host name, or NULL (a binary search). */
const struct host *topology_host(const struct topology *t, const char *name);

/*
 * The down ticket of host's nearest down ancestor: 1 and *ret, or 0 when
 * no ancestor is down (or host is not in the inventory).
 */
int topology_find_parent(struct topology *t, const char *host,
			 struct topology_parent *ret);
/*
 * Whether a silence on a device holds back host's problems at now_ms: the
 * nearest ancestor that is down or held back decides.  1 with the
 * silence's id and end when that ancestor's down problem is held back by
 * a silence (maintenance on the router: no tickets for the hosts behind
 * it either), 0 otherwise.
 */
int topology_held_back(struct topology *t, const char *host, int64_t now_ms,
		       int64_t *ret_silence_id, int64_t *ret_ends_ms);
/*
 * Make ticket_id a child of p's ticket at at_ms, with a journal line;
 * the caller announces.  why says what changed ("moved from #3"), or NULL.
 */
int topology_attach(struct topology *t, int64_t ticket_id,
		    const struct topology_parent *p, int64_t at_ms,
		    const char *why);

/*
 * React to a ticket change (the dedup listener calls this): a down ticket
 * that opens adopts recent tickets of the hosts behind it; a ticket that
 * recovers, resolves or closes releases its children.
 */
int topology_on_change(struct topology *t, const struct ticket_change *c);

/* The children of a ticket as the API shows them. */
int topology_children_json(struct topology *t, int64_t ticket_id,
			   json_t **ret);

#endif
