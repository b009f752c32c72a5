/*
 * Nagios plugin output (the Monitoring Plugins Development Guidelines):
 *
 *   TEXT OUTPUT | OPTIONAL PERFDATA
 *   LONG TEXT LINE 1
 *   LONG TEXT LINE 2 | PERFDATA CONTINUED
 *   PERFDATA CONTINUED ...
 *
 * The first line's text is the summary; everything after the first "|"
 * in the lines that follow is more performance data.  A perfdata item is
 *
 *   'label'=value[UOM];[warn];[crit];[min];[max]
 *
 * where the label is quoted when it holds spaces (a quote inside is
 * written twice) and trailing fields may be left out.  Output comes from
 * a program we do not trust to be well-behaved: the parser never fails on
 * content, turns what is not valid UTF-8 or is a control character into
 * '?' (common/utf8.h), bounds every piece, and counts the perfdata items it could not read
 * (naming the first) instead of rejecting the output.
 */
#ifndef TOCSIN_NAGIOS_H
#define TOCSIN_NAGIOS_H

#include <stdbool.h>
#include <stddef.h>

#define NAGIOS_SUMMARY_MAX 512
#define NAGIOS_LONG_MAX 8192
#define NAGIOS_LABEL_MAX 64
#define NAGIOS_PERF_MAX 64 /* what the collector takes as metrics */

struct nagios_perf {
	char label[NAGIOS_LABEL_MAX + 1];
	double value;
	char uom[8];    /* "", "s", "ms", "%", "B", "KB", "c", ... */
	char warn[32];  /* ranges as written ("10:20", "@5"); "" when absent */
	char crit[32];
	double min, max;
	bool has_min, has_max;
};

struct nagios_output {
	char summary[NAGIOS_SUMMARY_MAX]; /* first line's text, trimmed */
	char *long_output; /* the other lines' text or NULL; owned */
	struct nagios_perf *perf; /* owned */
	size_t nperf;
	size_t perf_skipped; /* items that did not parse, or past the limit;
			      * "U" (undetermined) values are left out quietly */
	char first_bad[48];  /* the first of those, as written */
};

/*
 * Parse len bytes of plugin output (need not be NUL-terminated) into
 * *ret.  Always succeeds; free with nagios_output_free().
 */
void nagios_output_parse(const char *text, size_t len,
			 struct nagios_output *ret);
void nagios_output_free(struct nagios_output *o);

#endif
