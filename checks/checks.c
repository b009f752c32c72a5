/*
 * The table of agent checks, and the result list they fill.
 */
#include "check.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/utf8.h"
#include "../common/util.h"

extern const struct check check_disk;
extern const struct check check_backup;
extern const struct check check_updates;
extern const struct check check_services;
extern const struct check check_plugin;
extern const struct check check_heartbeat;

const struct check *const checks_table[] = {
	&check_disk,
	&check_backup,
	&check_updates,
	&check_services,
	&check_plugin,
	&check_heartbeat,
	NULL,
};

const struct check *checks_find(const char *name)
{
	for (size_t i = 0; checks_table[i]; i++)
		if (strcmp(checks_table[i]->name, name) == 0)
			return checks_table[i];
	return NULL;
}

static const char *const state_names[] = {
	[CHECK_OK] = "ok",
	[CHECK_WARNING] = "warning",
	[CHECK_CRITICAL] = "critical",
	[CHECK_UNKNOWN] = "unknown",
};

const char *check_state_name(enum check_state state)
{
	if ((unsigned)state >= ARRAY_SIZE(state_names))
		return "unknown";
	return state_names[state];
}

int check_state_parse(const char *name, enum check_state *ret_state)
{
	for (size_t i = 0; i < ARRAY_SIZE(state_names); i++) {
		if (strcmp(name, state_names[i]) == 0) {
			*ret_state = (enum check_state)i;
			return 0;
		}
	}
	return -EINVAL;
}

int check_state_severity(enum check_state state)
{
	/* unknown is worse than ok but not as bad as a real warning */
	static const int severity[] = {
		[CHECK_OK] = 0,
		[CHECK_UNKNOWN] = 1,
		[CHECK_WARNING] = 2,
		[CHECK_CRITICAL] = 3,
	};
	if ((unsigned)state >= ARRAY_SIZE(severity))
		return 1;
	return severity[state];
}

enum check_state check_state_worst(enum check_state a, enum check_state b)
{
	return check_state_severity(a) >= check_state_severity(b) ? a : b;
}

struct check_result *check_results_add(struct check_results *results,
				       const char *item,
				       enum check_state state, json_t *metrics,
				       const char *fmt, ...)
{
	char raw[4 * CHECK_SUMMARY_MAX], summary[CHECK_SUMMARY_MAX];
	char clean_item[CHECK_ITEM_MAX];
	struct check_result *r;
	unsigned flags = UTF8_ELLIPSIS;
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	if (n < 0)
		raw[0] = '\0';
	else if ((size_t)n >= sizeof(raw))
		flags |= UTF8_TRUNCATED; /* vsnprintf may have split a character */
	utf8_sanitize(summary, sizeof(summary), raw, strlen(raw), flags);
	utf8_sanitize(clean_item, sizeof(clean_item), item, strlen(item),
		      UTF8_ELLIPSIS);

	if (results->n == results->cap) {
		results->cap = results->cap ? results->cap * 2 : 8;
		results->v = xreallocarray(results->v, results->cap,
					   sizeof(*results->v));
	}
	r = &results->v[results->n++];
	*r = (struct check_result){
		.item = xstrdup(clean_item),
		.state = state,
		.summary = xstrdup(summary),
		.metrics = metrics,
	};
	return r;
}

void check_results_clear(struct check_results *results)
{
	for (size_t i = 0; i < results->n; i++) {
		struct check_result *r = &results->v[i];

		free(r->check);
		free(r->item);
		free(r->summary);
		json_decref(r->metrics);
		json_decref(r->context);
	}
	free(results->v);
	*results = (struct check_results){ 0 };
}

void check_names_init(struct check_names *names, char *buf, size_t size,
		      size_t max)
{
	*names = (struct check_names){ .buf = buf, .size = size, .max = max };
	if (size > 0)
		buf[0] = '\0';
}

void check_names_add(struct check_names *names, const char *text)
{
	names->total++;
	if (names->shown == names->max)
		return;
	if (names->shown > 0)
		strlcat_safe(names->buf, ", ", names->size);
	strlcat_safe(names->buf, text, names->size);
	names->shown++;
}

void check_names_end(struct check_names *names)
{
	char more[48];

	if (names->total <= names->shown)
		return;
	snprintf(more, sizeof(more), " and %zu more", names->total - names->shown);
	strlcat_safe(names->buf, more, names->size);
}
