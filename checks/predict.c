/*
 * Fill-rate prediction; the rule is described in predict.h.
 */
#include "predict.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/config.h"
#include "../common/util.h"

#define MAX_PAIRS (PREDICT_BUCKETS * (PREDICT_BUCKETS - 1) / 2)

void predict_config_defaults(struct predict_config *pc)
{
	*pc = (struct predict_config){
		.enabled = true,
		.short_window_ms = 6 * 3600 * 1000LL,
		.long_window_ms = 3 * 86400 * 1000LL,
		.warning_ms = 7 * 86400 * 1000LL,
		.critical_ms = 24 * 3600 * 1000LL,
	};
}

/* A window key, read and bounded; out of range is an error at the key. */
static void parse_window(struct cfg *cfg, const struct cfg_node *map,
			 const char *key, int64_t *ret_ms)
{
	int64_t v;

	if (cfg_get_duration(cfg, map, key, &v) <= 0)
		return;
	if (v < PREDICT_WINDOW_MIN_MS || v > PREDICT_WINDOW_MAX_MS) {
		cfg_error(cfg, cfg_get(cfg, map, key),
			  "%s must be between 10m and 30d", key);
		return;
	}
	*ret_ms = v;
}

void predict_config_parse(struct cfg *cfg, const struct cfg_node *map,
			  struct predict_config *pc)
{
	cfg_get_bool(cfg, map, "predict", &pc->enabled);
	cfg_get_duration(cfg, map, "predict_warning", &pc->warning_ms);
	cfg_get_duration(cfg, map, "predict_critical", &pc->critical_ms);
	parse_window(cfg, map, "predict_short_window", &pc->short_window_ms);
	parse_window(cfg, map, "predict_long_window", &pc->long_window_ms);

	if (pc->critical_ms > pc->warning_ms)
		cfg_error(cfg, map,
			  "predict_critical must not be longer than predict_warning");
	if (pc->short_window_ms >= pc->long_window_ms)
		cfg_error(cfg, map,
			  "predict_short_window must be shorter than predict_long_window");
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

/* Median of v[0..n), n > 0; reorders v. */
static double median(double *v, size_t n)
{
	qsort(v, n, sizeof(*v), cmp_double);
	if (n % 2 == 1)
		return v[n / 2];
	return (v[n / 2 - 1] + v[n / 2]) / 2.0;
}

/* One bucket of a window: median time (seconds from the window's start)
 * and median usage of the samples that fell into it. */
struct bucket {
	double t;
	double used;
};

/*
 * Reduce the samples of [start, start + window) to at most PREDICT_BUCKETS
 * buckets; returns how many hold samples.  scratch holds n doubles.
 */
static size_t make_buckets(const struct predict_sample *s, size_t n,
			   int64_t start, int64_t window, double *scratch,
			   struct bucket *out)
{
	size_t nb = 0, i = 0;

	while (i < n && s[i].t_ms < start)
		i++;
	for (int b = 0; b < PREDICT_BUCKETS && i < n; b++) {
		int64_t end = start + window * (b + 1) / PREDICT_BUCKETS;
		size_t first = i, k = 0;

		if (b == PREDICT_BUCKETS - 1)
			end++; /* the last bucket includes now itself */
		while (i < n && s[i].t_ms < end)
			scratch[k++] = s[i++].used;
		if (k == 0)
			continue;
		/* samples are sorted: the middle one has the median time */
		out[nb].t = (double)(s[first + (k - 1) / 2].t_ms - start) / 1000.0;
		if (k % 2 == 0)
			out[nb].t = (out[nb].t +
				     (double)(s[first + k / 2].t_ms - start) /
					     1000.0) / 2.0;
		out[nb].used = median(scratch, k);
		nb++;
	}
	return nb;
}

int predict_window_rate(const struct predict_sample *samples, size_t n,
			int64_t now_ms, int64_t window_ms, double *ret_rate)
{
	struct bucket b[PREDICT_BUCKETS];
	double slopes[MAX_PAIRS];
	size_t nb, np = 0, upto = n;
	double *scratch;

	/* ignore samples from the future (a clock set back) */
	while (upto > 0 && samples[upto - 1].t_ms > now_ms)
		upto--;
	if (upto == 0 || window_ms <= 0)
		return -ENODATA;
	scratch = xcalloc(upto, sizeof(*scratch));
	nb = make_buckets(samples, upto, now_ms - window_ms, window_ms,
			  scratch, b);
	free(scratch);
	if (nb < PREDICT_MIN_BUCKETS ||
	    (b[nb - 1].t - b[0].t) * 1000.0 < (double)window_ms * 2.0 / 3.0)
		return -ENODATA;
	for (size_t i = 0; i < nb; i++)
		for (size_t j = i + 1; j < nb; j++)
			if (b[j].t > b[i].t)
				slopes[np++] = (b[j].used - b[i].used) /
					       (b[j].t - b[i].t);
	if (np == 0)
		return -ENODATA;
	*ret_rate = median(slopes, np);
	return 0;
}

void predict_judge(const struct predict_config *pc, uint64_t avail,
		   struct prediction *p)
{
	p->full_in_s = INFINITY;
	p->state = CHECK_OK;
	if (!p->usable || p->rate <= 0.0)
		return;
	p->full_in_s = (double)avail / p->rate;
	if (p->full_in_s * 1000.0 <= (double)pc->critical_ms)
		p->state = CHECK_CRITICAL;
	else if (p->full_in_s * 1000.0 <= (double)pc->warning_ms)
		p->state = CHECK_WARNING;
}

void predict_evaluate(const struct predict_config *pc,
		      const struct predict_sample *samples, size_t n,
		      int64_t now_ms, uint64_t avail, struct prediction *ret)
{
	struct prediction p = { .full_in_s = INFINITY, .state = CHECK_OK };

	if (n > 0 && samples[0].t_ms <= now_ms)
		p.history_ms = now_ms - samples[0].t_ms;
	p.usable = predict_window_rate(samples, n, now_ms, pc->short_window_ms,
				       &p.short_rate) == 0 &&
		   predict_window_rate(samples, n, now_ms, pc->long_window_ms,
				       &p.long_rate) == 0;
	if (p.usable)
		p.rate = fmin(p.short_rate, p.long_rate);
	predict_judge(pc, avail, &p);
	*ret = p;
}

void predict_format(const struct prediction *p, char *buf, size_t size)
{
	char rate[32], when[32];

	buf[0] = '\0';
	if (!p->usable || p->rate <= 0.0 || !isfinite(p->full_in_s))
		return;
	format_bytes((uint64_t)llround(p->rate * 86400.0), rate, sizeof(rate));
	if (p->full_in_s < 1.0) {
		snprintf(buf, size, "full now, growing %s/day", rate);
		return;
	}
	if (p->full_in_s > 365.0 * 86400.0) {
		snprintf(buf, size, "full in over a year at %s/day", rate);
		return;
	}
	format_duration((int64_t)p->full_in_s, when, sizeof(when));
	snprintf(buf, size, "full in ~%s at %s/day", when, rate);
}
