/*
 * The inventory: customers and the hosts and devices that belong to them,
 * from the server configuration (customers:, hosts:).
 *
 * Hosts not in the inventory may still report; they simply have no
 * customer, role or parent until someone adds them.  The inventory is
 * immutable once loaded, so worker threads read it without locks.
 */
#ifndef TOCSIN_INVENTORY_H
#define TOCSIN_INVENTORY_H

#include <stdbool.h>
#include <stddef.h>

#include "nameindex.h"

struct cfg;
struct cfg_node;

enum host_role {
	HOST_ROLE_DECENTRAL = 0, /* PCs, printers: the shop handles them */
	HOST_ROLE_CENTRAL = 1,	 /* servers, core services, network */
};

struct contract;

struct customer {
	char *id;   /* the key under customers: */
	char *name; /* display name */
	/* The helpdesk's part (helpdesk.c resolves the contract). */
	char *contract_id;	/* customers.<id>.contract, or NULL */
	const struct contract *contract;
	char **contacts;	/* e-mail addresses, NULL-terminated, never NULL */
	bool notify_resolved;	/* mail the contacts when a ticket is solved */
	bool notify_updates;	/* and status updates while it takes long */
};

struct host {
	char *name;		  /* the key under hosts:, as agents report it */
	const struct customer *customer; /* NULL when none */
	enum host_role role;
	char **tags;		  /* NULL-terminated, never NULL */
	const struct host *parent; /* the device it depends on, or NULL */
};

struct inventory {
	struct customer *customers;
	size_t ncustomers;
	struct host *hosts;
	size_t nhosts;
	/* The same by id and by name: lookups are binary searches. */
	struct nameindex customers_by_id;
	struct nameindex hosts_by_name;
};

/*
 * Parse the customers: and hosts: sections of root into *ret (never
 * NULL).  Errors (unknown customer, unknown or cyclic parent, ...) are
 * recorded in cfg with their location.
 */
int inventory_parse(struct cfg *cfg, const struct cfg_node *root,
		    struct inventory **ret);
void inventory_free(struct inventory *inv);

const struct customer *inventory_customer(const struct inventory *inv,
					  const char *id);
const struct host *inventory_host(const struct inventory *inv,
				  const char *name);
bool host_has_tag(const struct host *h, const char *tag);
const char *host_role_name(enum host_role role);
/* A plausible mail address that cannot break a mail header. */
bool inventory_email_valid(const char *s);

#endif
