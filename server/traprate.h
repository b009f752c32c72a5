/*
 * Trap rate limits: a token bucket per UDP source address and one per
 * configured device (traps.rate_limit), so that one chatty or hostile
 * sender cannot fill the listener's backlog, which all devices share.
 *
 * A bucket holds up to `burst` traps and refills at `rate` traps per
 * second; a trap passes when both its source's and its device's buckets
 * hold one, and then takes one from each.  Only traps about to be stored
 * are charged: a forger who may not send for a device cannot spend that
 * device's budget.
 *
 * The sources live in a fixed table (TRAPRATE_SOURCES slots, found by a
 * keyed hash): a flood of spoofed addresses evicts the least recently
 * seen, which at worst gives an evicted sender a full bucket again, and
 * never costs memory.  Not thread-safe: the listener thread's own.
 */
#ifndef TOCSIN_TRAPRATE_H
#define TOCSIN_TRAPRATE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define TRAPRATE_SOURCES 4096

struct trap_config;
struct traprate;

enum traprate_verdict {
	TRAPRATE_PASS,
	TRAPRATE_SOURCE, /* the source's bucket is empty */
	TRAPRATE_DEVICE, /* the device's bucket is empty */
};

/* Buckets for conf's limits and devices, full. */
struct traprate *traprate_new(const struct trap_config *conf);
void traprate_free(struct traprate *r);
/*
 * A reload: conf's limits from now on.  The sources keep their buckets,
 * a device of old (r's) that conf still has keeps its own, whatever its
 * index in conf; a new device starts full.  A bucket above a lower new
 * burst is cut to it when next used.
 */
void traprate_reconfigure(struct traprate *r, const struct trap_config *old,
			  const struct trap_config *conf);

/*
 * May a trap from source, of the device with index device in
 * conf->devices (SIZE_MAX: an unknown device), pass at now_ms (a
 * monotonic clock)?  TRAPRATE_PASS takes a token from each bucket;
 * otherwise nothing is taken.
 */
enum traprate_verdict traprate_take(struct traprate *r,
				    const struct sockaddr *source,
				    size_t device, int64_t now_ms);

#endif
