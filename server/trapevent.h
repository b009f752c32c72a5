/*
 * What a decoded trap becomes in the store: the context an event keeps
 * for the technician, the id of an inform's event, the row of a trap
 * from an unknown device.  Pure functions of the message, apart from the
 * listener's thread and batches, so that the fuzzer runs them on every
 * trap the decoder accepts.
 */
#ifndef TOCSIN_TRAPEVENT_H
#define TOCSIN_TRAPEVENT_H

#include <jansson.h>
#include <stdint.h>

#include "trapmsg.h"
#include "trapreview.h"

/* A varbind value in an event's context is cut here. */
#define TRAPEVENT_VALUE_MAX 512

/*
 * The varbinds as one object, name (or dotted OID) to value; an
 * enumeration shows its label and number, "down(2)".  New reference.
 */
json_t *trapevent_varbinds_json(const struct trap_msg *m);

/* The event's context as compact JSON (malloc'ed, never NULL). */
char *trapevent_context(const struct trap_msg *m, const char *mapping);

/*
 * The id of an inform's event made by mapping (a version-8 UUID): the
 * same for a retransmission, which repeats device, sender, request id,
 * sysUpTime.0 and content, so that storing it again adds nothing;
 * different once the device restarts and reuses a request id (its
 * sysUpTime starts again), and for each clear one inform resolves.
 */
void trapevent_inform_id(const struct trap_msg *m, const char *device,
			 const char *mapping, uint8_t id[16]);

/* A trap from no configured device as the review keeps it (row owns all). */
void trapevent_review_row(const struct trap_msg *m, int64_t now_ms,
			  struct trapreview_row *ret);

#endif
