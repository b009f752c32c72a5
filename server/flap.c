#include "flap.h"

#include <errno.h>
#include <string.h>

void flap_record(struct flap_history *h, int64_t at_ms)
{
	if (h->n == FLAP_HISTORY_MAX) {
		memmove(h->at, h->at + 1, (FLAP_HISTORY_MAX - 1) * sizeof(h->at[0]));
		h->n--;
	}
	h->at[h->n++] = at_ms;
}

size_t flap_count(const struct flap_history *h, int64_t now_ms,
		  int64_t window_ms)
{
	size_t n = 0;

	/* Newest last: count back until one falls out of the window. */
	for (size_t i = h->n; i > 0 && h->at[i - 1] > now_ms - window_ms; i--)
		n++;
	return n;
}

/* Below this many changes in the window a flapping problem is calm. */
static size_t calm_below(int64_t threshold)
{
	return (size_t)(threshold + 1) / 2;
}

bool flap_starts(const struct flap_history *h, int64_t now_ms,
		 int64_t window_ms, int64_t threshold)
{
	if (threshold <= 0 || window_ms <= 0)
		return false;
	return flap_count(h, now_ms, window_ms) >= (size_t)threshold;
}

bool flap_calmed(const struct flap_history *h, int64_t now_ms,
		 int64_t window_ms, int64_t threshold)
{
	if (threshold <= 0 || window_ms <= 0)
		return true;
	return flap_count(h, now_ms, window_ms) < calm_below(threshold);
}

int64_t flap_calm_at(const struct flap_history *h, int64_t window_ms,
		     int64_t threshold)
{
	size_t keep = calm_below(threshold);

	/*
	 * Calm once fewer than keep changes are in the window, i.e. when the
	 * keep-th newest change leaves it.
	 */
	if (threshold <= 0 || h->n < keep || keep == 0)
		return 0;
	return h->at[h->n - keep] + window_ms;
}

size_t flap_encode(const struct flap_history *h, uint8_t *buf, size_t size)
{
	size_t len = h->n * 8;

	if (len > size)
		return 0;
	for (size_t i = 0; i < h->n; i++) {
		uint64_t v = (uint64_t)h->at[i];

		for (int b = 0; b < 8; b++)
			buf[i * 8 + (size_t)b] = (uint8_t)(v >> (8 * b));
	}
	return len;
}

int flap_decode(const void *blob, size_t len, struct flap_history *h)
{
	const uint8_t *p = blob;

	h->n = 0;
	if (len % 8 != 0 || len / 8 > FLAP_HISTORY_MAX)
		return -EINVAL;
	for (size_t i = 0; i < len / 8; i++) {
		uint64_t v = 0;

		for (int b = 0; b < 8; b++)
			v |= (uint64_t)p[i * 8 + (size_t)b] << (8 * b);
		h->at[i] = (int64_t)v;
	}
	h->n = len / 8;
	return 0;
}
