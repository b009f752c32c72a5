/*
 * The results table; see report.h.
 *
 *   CHECK      ITEM   STATE    SUMMARY
 *   disk       /      ok       /: 41.0% used, 12 GiB free of 20 GiB
 *                                free_bytes=12884901888 (12 GiB)  used_percent=41
 */
#include "report.h"

#include <string.h>

#include "../common/util.h"

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* "free_bytes=12884901888 (12 GiB)", "full_in_s=432000 (5 d)", "x=0.25" */
static void format_metric(const char *name, const json_t *value, char *buf,
			  size_t size)
{
	double v = json_number_value(value);
	char human[32] = "";

	if (ends_with(name, "_bytes") && v >= 1024.0)
		format_bytes((uint64_t)v, human, sizeof(human));
	else if (ends_with(name, "_bytes_per_day") && v >= 1024.0) {
		format_bytes((uint64_t)v, human, sizeof(human));
		strlcat_safe(human, "/day", sizeof(human));
	} else if (ends_with(name, "_s") && v >= 120.0)
		format_duration((int64_t)v, human, sizeof(human));

	if (json_is_integer(value))
		snprintf(buf, size, "%s=%lld", name,
			 (long long)json_integer_value(value));
	else
		snprintf(buf, size, "%s=%.6g", name, v);
	if (human[0] != '\0') {
		strlcat_safe(buf, " (", size);
		strlcat_safe(buf, human, size);
		strlcat_safe(buf, ")", size);
	}
}

/* The numeric metrics on one line after indent spaces; nothing if none. */
static void print_metrics(FILE *fp, int indent, json_t *metrics)
{
	const char *name;
	json_t *value;
	bool any = false;

	json_object_foreach(metrics, name, value) {
		char text[160];

		if (!json_is_number(value))
			continue;
		format_metric(name, value, text, sizeof(text));
		if (!any)
			fprintf(fp, "%*s%s", indent, "", text);
		else
			fprintf(fp, "  %s", text);
		any = true;
	}
	if (any)
		fputc('\n', fp);
}

void report_print(FILE *fp, const struct check_results *results)
{
	size_t wcheck = 5, witem = 4;
	int indent;

	for (size_t i = 0; i < results->n; i++) {
		size_t c = strlen(results->v[i].check);
		size_t it = strlen(results->v[i].item);

		wcheck = c > wcheck ? c : wcheck;
		witem = it > witem ? it : witem;
	}
	indent = (int)(wcheck + witem + 14);
	fprintf(fp, "%-*s  %-*s  %-8s  %s\n", (int)wcheck, "CHECK", (int)witem,
		"ITEM", "STATE", "SUMMARY");
	for (size_t i = 0; i < results->n; i++) {
		const struct check_result *r = &results->v[i];

		fprintf(fp, "%-*s  %-*s  %-8s  %s\n", (int)wcheck, r->check,
			(int)witem, r->item, check_state_name(r->state),
			r->summary);
		if (r->metrics != NULL)
			print_metrics(fp, indent, r->metrics);
	}
	fflush(fp);
}
