/*
 * Flap detection: how often a problem changed between ok and not ok
 * within a sliding window.
 *
 * A problem flaps when flap_threshold changes fall within flap_window,
 * and calms down when fewer than half as many remain in the window
 * (hysteresis, as Nagios has a high and a low threshold), so that a
 * problem at the edge of the threshold does not flip in and out of
 * flapping with every change.  Only the times of the latest changes are
 * kept, so the history is small and fixed in size; it is written to the
 * database only when a change happens.
 */
#ifndef TOCSIN_FLAP_H
#define TOCSIN_FLAP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* The largest flap_threshold a rule may set. */
#define FLAP_HISTORY_MAX 64

struct flap_history {
	int64_t at[FLAP_HISTORY_MAX]; /* change times, oldest first */
	size_t n;
};

/* Record a change at at_ms, forgetting the oldest beyond the maximum. */
void flap_record(struct flap_history *h, int64_t at_ms);
/* How many recorded changes happened after now_ms - window_ms. */
size_t flap_count(const struct flap_history *h, int64_t now_ms,
		  int64_t window_ms);
/* Whether a problem with history h flaps at now_ms (threshold 0: never). */
bool flap_starts(const struct flap_history *h, int64_t now_ms,
		 int64_t window_ms, int64_t threshold);
/* Whether a flapping problem has calmed down at now_ms. */
bool flap_calmed(const struct flap_history *h, int64_t now_ms,
		 int64_t window_ms, int64_t threshold);
/*
 * When a flapping problem will have calmed down if nothing changes
 * before: the time the last change that keeps it flapping leaves the
 * window.
 */
int64_t flap_calm_at(const struct flap_history *h, int64_t window_ms,
		     int64_t threshold);

/* The history as stored (a BLOB of little-endian int64s) and back. */
size_t flap_encode(const struct flap_history *h, uint8_t *buf, size_t size);
/* -EINVAL when blob is not a history (h is then empty). */
int flap_decode(const void *blob, size_t len, struct flap_history *h);

#endif
