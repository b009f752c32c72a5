/*
 * Which of the trap networks (traps.networks) hold an address: at start
 * every device's addresses are looked up (its networks' users are
 * localised to its engine id), and then every trap's source.  A scan of
 * every network per device grew with networks x devices (an MSP with
 * thousands of each took seconds to start and to reload).
 *
 * The index keeps one sorted array per (family, prefix length): an
 * address is masked to each length present and searched for, so a lookup
 * costs O(lengths x log networks), at most 33 lengths for IPv4 and 129
 * for IPv6, usually a handful.  Every network holding the address is
 * found, overlapping ones and duplicates included, not only the longest
 * match: a trap may use the credentials of any network that holds it.
 * Built once over a parsed configuration and read-only after, so any
 * thread may look up without a lock.
 */
#ifndef TOCSIN_NETINDEX_H
#define TOCSIN_NETINDEX_H

#include <stddef.h>
#include <sys/socket.h>

#include "trapconf.h"

struct netindex;

/* Indices into a network array, as netindex_find() appends them. */
struct netindex_hits {
	size_t *v;
	size_t n, cap;
};

/* An index over nets[0..n) (not kept: the index holds copies). */
struct netindex *netindex_new(const struct trap_network *nets, size_t n);
void netindex_free(struct netindex *ix);

/*
 * Append to hits the index of every network holding the address addr
 * (its prefix is ignored: an address of a device), by prefix length,
 * longest first.  Several addresses' hits may be gathered in one hits
 * and then put in order by netindex_hits_sort().
 */
void netindex_find(const struct netindex *ix, const struct trap_cidr *addr,
		   struct netindex_hits *hits);
/* The same for an AF_INET or AF_INET6 socket address (others hold none). */
void netindex_find_sockaddr(const struct netindex *ix,
			    const struct sockaddr *sa,
			    struct netindex_hits *hits);
/* Sort hits ascending, the configuration's order, each index once. */
void netindex_hits_sort(struct netindex_hits *hits);
void netindex_hits_free(struct netindex_hits *hits);

#endif
