/*
 * Fill-rate prediction: when will a volume be full at the rate it has been
 * filling?  Pure functions over a series of (time, used bytes) samples, so
 * that they can be tested on synthetic series; checks/fillrate.c keeps the
 * samples and calls them.
 *
 * The rule, chosen so that one burst alone never alerts:
 *
 *  - Each of two windows ending now (short, default 6 h, and long, default
 *    3 d) is cut into PREDICT_BUCKETS equal buckets.  A bucket stands for
 *    its samples by their median time and median usage, so a spike shorter
 *    than a bucket (a 10-minute apt download in a 15-minute bucket) is gone
 *    before any fitting.
 *  - The rate of a window is the Theil-Sen slope over its buckets: the
 *    median of the slopes between every pair of buckets.  Unlike least
 *    squares it ignores a minority of outliers (a nightly backup spike, a
 *    log rotation drop) and reads a daily rotate-and-regrow saw tooth as
 *    the flat line it is.
 *  - A window is usable when at least PREDICT_MIN_BUCKETS buckets hold
 *    samples and they span at least two thirds of the window: a daily
 *    pattern needs two periods in sight before its slope means anything
 *    (with 1.5 days of a rotate-and-regrow saw tooth, most pairs of
 *    buckets lie on one rising edge).  Until both windows are usable there
 *    is no prediction (and no alert): 2 days after the first sample with
 *    the defaults.
 *  - The prediction rests on the slower of the two rates: both windows must
 *    agree that the volume fills.  A burst lifts the short window only; a
 *    step long past lifts the long window only.
 *  - Full in = free bytes now / rate.  Critical when full within
 *    predict_critical, warning within predict_warning; a projection beyond
 *    predict_warning never alerts, whatever the rate: that is the
 *    "ample free space" rule.  Fast fills are the percentage thresholds'
 *    job, not this one's.
 */
#ifndef TOCSIN_PREDICT_H
#define TOCSIN_PREDICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "check.h"

struct cfg;
struct cfg_node;

#define PREDICT_BUCKETS 24
#define PREDICT_MIN_BUCKETS 6
/* Limits on the windows, so that a typo cannot keep months of samples. */
#define PREDICT_WINDOW_MIN_MS (10 * 60 * 1000LL)
#define PREDICT_WINDOW_MAX_MS (30 * 86400 * 1000LL)

struct predict_config {
	bool enabled;
	int64_t short_window_ms;
	int64_t long_window_ms;
	int64_t warning_ms;  /* warning when full within this */
	int64_t critical_ms; /* critical when full within this */
};

struct predict_sample {
	int64_t t_ms;  /* wall clock, milliseconds since the epoch */
	double used;   /* bytes in use */
};

struct prediction {
	bool usable;       /* both windows had enough history */
	double short_rate; /* bytes per second over each window */
	double long_rate;
	double rate;       /* the slower of both: what the state rests on */
	double full_in_s;  /* INFINITY when not growing or not usable */
	enum check_state state; /* ok unless full within a horizon */
	int64_t history_ms; /* from the oldest sample to now */
};

/* The defaults: on, 6 h and 3 d windows, warning 7 d, critical 24 h. */
void predict_config_defaults(struct predict_config *pc);
/*
 * Read the predict* keys present in map (predict, predict_warning,
 * predict_critical, predict_short_window, predict_long_window) into pc;
 * errors are recorded in cfg with their location.
 */
void predict_config_parse(struct cfg *cfg, const struct cfg_node *map,
			  struct predict_config *pc);

/*
 * The Theil-Sen rate (bytes per second) over the window of window_ms
 * ending at now_ms.  samples must be sorted by time; samples after now_ms
 * are ignored.  0, or -ENODATA when the window has too little history.
 */
int predict_window_rate(const struct predict_sample *samples, size_t n,
			int64_t now_ms, int64_t window_ms, double *ret_rate);

/*
 * Fit both windows of pc and judge them against avail (free bytes now).
 * Fills *ret completely; never fails.
 */
void predict_evaluate(const struct predict_config *pc,
		      const struct predict_sample *samples, size_t n,
		      int64_t now_ms, uint64_t avail, struct prediction *ret);
/*
 * Judge an already fitted prediction against the free bytes now: sets
 * full_in_s and state.  Lets a caller fit when a sample arrives and judge
 * on every round.
 */
void predict_judge(const struct predict_config *pc, uint64_t avail,
		   struct prediction *p);

/* "full in ~5 d at 3.1 GiB/day"; "" when not usable or not growing. */
void predict_format(const struct prediction *p, char *buf, size_t size);

#endif
