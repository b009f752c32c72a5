#include "metrics.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"

#define SOURCES_MAX 32

struct metrics {
	struct {
		metrics_source fn;
		void *arg;
	} sources[SOURCES_MAX];
	size_t nsources;
};

struct metrics_out {
	char *buf;
	size_t len, cap;
	char last_name[128]; /* the name whose HELP/TYPE went out last */
};

struct metrics *metrics_new(void)
{
	return xcalloc(1, sizeof(struct metrics));
}

void metrics_free(struct metrics *m)
{
	free(m);
}

int metrics_add_source(struct metrics *m, metrics_source fn, void *arg)
{
	if (m->nsources == SOURCES_MAX)
		return -ENOSPC;
	m->sources[m->nsources].fn = fn;
	m->sources[m->nsources].arg = arg;
	m->nsources++;
	return 0;
}

static void out_printf(struct metrics_out *o, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void out_printf(struct metrics_out *o, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(o->buf + o->len, o->cap - o->len, fmt, ap);
		va_end(ap);
		if (n < 0)
			return;
		if ((size_t)n < o->cap - o->len) {
			o->len += (size_t)n;
			return;
		}
		o->cap = o->cap * 2 + (size_t)n;
		o->buf = xreallocarray(o->buf, o->cap, 1);
	}
}

static void header(struct metrics_out *o, const char *name, const char *help,
		   const char *type)
{
	if (strcmp(o->last_name, name) == 0)
		return;
	strlcpy_safe(o->last_name, name, sizeof(o->last_name));
	out_printf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help ? help : "",
		   name, type);
}

void metrics_counter(struct metrics_out *o, const char *name,
		     const char *help, const char *labels, uint64_t value)
{
	header(o, name, help, "counter");
	if (labels != NULL && *labels != '\0')
		out_printf(o, "%s{%s} %llu\n", name, labels,
			   (unsigned long long)value);
	else
		out_printf(o, "%s %llu\n", name, (unsigned long long)value);
}

void metrics_gauge(struct metrics_out *o, const char *name, const char *help,
		   const char *labels, double value)
{
	header(o, name, help, "gauge");
	if (labels != NULL && *labels != '\0')
		out_printf(o, "%s{%s} %.17g\n", name, labels, value);
	else
		out_printf(o, "%s %.17g\n", name, value);
}

void metrics_label_escape(const char *value, char *buf, size_t size)
{
	size_t j = 0;

	if (size == 0)
		return;
	for (; *value && j + 2 < size; value++) {
		char c = *value;

		if (c == '\\' || c == '"' || c == '\n') {
			buf[j++] = '\\';
			c = c == '\n' ? 'n' : c;
		}
		buf[j++] = c;
	}
	buf[j] = '\0';
}

char *metrics_render(struct metrics *m)
{
	struct metrics_out o = { .cap = 4096 };

	o.buf = xcalloc(1, o.cap);
	for (size_t i = 0; i < m->nsources; i++)
		m->sources[i].fn(m->sources[i].arg, &o);
	return o.buf;
}
