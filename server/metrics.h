/*
 * /metrics in the Prometheus text format (version 0.0.4).
 *
 * Modules do not register counters one by one: each adds a source, a
 * function that writes its current figures when /metrics is scraped.  A
 * module keeps its counters where it likes (atomics, the writer's stats,
 * a SELECT count) and stays the only one that knows them.
 */
#ifndef TOCSIN_METRICS_H
#define TOCSIN_METRICS_H

#include <stddef.h>
#include <stdint.h>

struct metrics;
struct metrics_out;

typedef void (*metrics_source)(void *arg, struct metrics_out *out);

struct metrics *metrics_new(void);
void metrics_free(struct metrics *m);
/* Add a source (before the HTTP server starts).  0 or -ENOSPC. */
int metrics_add_source(struct metrics *m, metrics_source fn, void *arg);
/* Call every source; the text is malloc'ed and owned by the caller. */
char *metrics_render(struct metrics *m);

/*
 * Write one sample.  name is a Prometheus metric name ("tocsin_traps_total"),
 * labels either NULL or label pairs already in the text form
 * ("result=\"unmatched\""), whose values the caller has made safe with
 * metrics_label_escape().  The # HELP and # TYPE lines are written before
 * the first sample of each name; samples of one name must be consecutive.
 */
void metrics_counter(struct metrics_out *out, const char *name,
		     const char *help, const char *labels, uint64_t value);
void metrics_gauge(struct metrics_out *out, const char *name,
		   const char *help, const char *labels, double value);
/* Escape a label value (\\, \", \n) into buf of size; always terminated. */
void metrics_label_escape(const char *value, char *buf, size_t size);

#endif
