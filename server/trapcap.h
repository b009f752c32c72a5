/*
 * A cap on the problems the trap fallback opens per device.
 *
 * The fallback makes one problem per device and trap OID, so that an
 * unmapped vendor trap is seen once; a device (or someone with its
 * community) sending ever new trap OIDs would open a ticket for each.
 * Beyond traps.fallback_max open fallback problems of a device (tickets
 * not resolved or closed, and problems pending confirmation or held by a
 * silence), a trap of a new OID goes to the device's one ticket with item
 * TRAPCAP_ITEM instead, which says that there are too many.
 *
 * Reads the core tickets and the lifecycle's problems tables, inside the
 * writer job that stores the traps, so that what it counts is exactly
 * what that transaction sees.
 */
#ifndef TOCSIN_TRAPCAP_H
#define TOCSIN_TRAPCAP_H

#include <stddef.h>

#define TRAPCAP_ITEM "too-many-unmapped-traps"

struct store;
struct trapcap;

/* The statements; call with store_lock() held (or before the writer runs). */
int trapcap_open(struct store *st, struct trapcap **ret);
void trapcap_close(struct trapcap *c);

/*
 * Inside a writer job: must a fallback event (host, check, item) go to the
 * overflow ticket?  1 when its key is not an open problem yet and host
 * has max open ones of check already, 0 when it may stay, or -errno.
 */
int trapcap_over(struct trapcap *c, const char *host, const char *check,
		 const char *item, size_t max);

#endif
