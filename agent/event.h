/*
 * Check results become events: each gets a fresh random id (the
 * collector's idempotency key) and the time it was observed.
 */
#ifndef TOCSIN_EVENT_H
#define TOCSIN_EVENT_H

#include <jansson.h>
#include <stdint.h>

#include "../checks/check.h"

/* One event object for result r, observed at observed_ms.  New reference. */
json_t *event_from_result(const struct check_result *r, int64_t observed_ms);
/* {"host": host, "events": events}; takes a reference to events. */
json_t *event_batch(const char *host, json_t *events);

#endif
