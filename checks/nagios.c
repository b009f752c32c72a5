/*
 * Nagios plugin output and performance data; see nagios.h.
 */
#include "nagios.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "../common/utf8.h"
#include "../common/util.h"

/* Trim spaces and tabs at both ends of [*s, *s + *n). */
static void trim(const char **s, size_t *n)
{
	while (*n > 0 && (**s == ' ' || **s == '\t')) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && ((*s)[*n - 1] == ' ' || (*s)[*n - 1] == '\t' ||
			  (*s)[*n - 1] == '\r'))
		(*n)--;
}

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* A number at [s, end) as a whole; false when it is not one. */
static bool parse_number(const char *s, const char *end, double *ret)
{
	char buf[64], *stop;
	size_t n = (size_t)(end - s);
	double v;

	if (n == 0 || n >= sizeof(buf))
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	errno = 0;
	v = strtod(buf, &stop);
	if (errno != 0 || *stop != '\0' || !isfinite(v))
		return false;
	*ret = v;
	return true;
}

/* Read the quoted or plain label at *p up to '='; false on bad syntax. */
static bool parse_label(const char **p, const char *end,
			struct nagios_perf *pd)
{
	const char *s = *p;
	size_t n = 0;

	if (s < end && *s == '\'') {
		for (s++;; s++) {
			if (s >= end)
				return false;
			if (*s == '\'') {
				if (s + 1 < end && s[1] == '\'') {
					s++; /* '' is a quote in the label */
				} else {
					s++;
					break;
				}
			}
			if (n < NAGIOS_LABEL_MAX)
				pd->label[n++] = *s;
			else
				return false;
		}
	} else {
		while (s < end && *s != '=' && !is_space(*s)) {
			if (n >= NAGIOS_LABEL_MAX)
				return false;
			pd->label[n++] = *s++;
		}
	}
	pd->label[n] = '\0';
	if (n == 0 || s >= end || *s != '=')
		return false;
	*p = s + 1;
	return true;
}

/* Copy field [s, e) into buf (size) when it fits; false otherwise. */
static bool copy_field(const char *s, const char *e, char *buf, size_t size)
{
	size_t n = (size_t)(e - s);

	if (n >= size)
		return false;
	memcpy(buf, s, n);
	buf[n] = '\0';
	return true;
}

enum item_parse {
	ITEM_BAD,
	ITEM_UNDETERMINED, /* value "U": valid, but no number to keep */
	ITEM_OK,
};

/*
 * One perfdata item in [s, end) (no unquoted spaces in it, bar inside
 * the label).
 */
static enum item_parse parse_item(const char *s, const char *end,
				  struct nagios_perf *pd)
{
	const char *p = s, *f;
	char field[32];

	*pd = (struct nagios_perf){ 0 };
	if (!parse_label(&p, end, pd))
		return ITEM_BAD;
	if (p < end && *p == 'U' && (p + 1 == end || p[1] == ';'))
		return ITEM_UNDETERMINED;
	for (f = p; f < end && (strchr("0123456789.-+eE", *f) != NULL); f++)
		;
	/* "e" may start a unit only after the number proper: back up */
	while (f > p && (f[-1] == 'e' || f[-1] == 'E'))
		f--;
	if (!parse_number(p, f, &pd->value))
		return ITEM_BAD;
	for (p = f; p < end && *p != ';'; p++)
		;
	if (!copy_field(f, p, pd->uom, sizeof(pd->uom)))
		return ITEM_BAD;
	for (int i = 0; i < 4 && p < end; i++) {
		const char *e;

		p++; /* the ';' */
		for (e = p; e < end && *e != ';'; e++)
			;
		switch (i) {
		case 0:
			if (!copy_field(p, e, pd->warn, sizeof(pd->warn)))
				return ITEM_BAD;
			break;
		case 1:
			if (!copy_field(p, e, pd->crit, sizeof(pd->crit)))
				return ITEM_BAD;
			break;
		default:
			if (!copy_field(p, e, field, sizeof(field)))
				return ITEM_BAD;
			if (field[0] == '\0')
				break;
			if (!parse_number(p, e, i == 2 ? &pd->min : &pd->max))
				return ITEM_BAD;
			*(i == 2 ? &pd->has_min : &pd->has_max) = true;
			break;
		}
		p = e;
	}
	return p >= end ? ITEM_OK : ITEM_BAD;
}

/* The end of the item starting at s: the first space outside quotes. */
static const char *item_end(const char *s, const char *end)
{
	bool quoted = false;

	for (; s < end; s++) {
		if (*s == '\'')
			quoted = !quoted;
		else if (!quoted && is_space(*s))
			break;
	}
	return s;
}

/* A perfdata field as valid UTF-8 without control characters, in place. */
static void clean_field(char *field, size_t size)
{
	char clean[NAGIOS_LABEL_MAX + 1];

	utf8_sanitize(clean, sizeof(clean), field, strlen(field), 0);
	strlcpy_safe(field, clean, size);
}

static void add_perfdata(struct nagios_output *o, const char *s,
			 const char *end)
{
	while (s < end) {
		struct nagios_perf pd;
		enum item_parse r;
		const char *e;

		while (s < end && is_space(*s))
			s++;
		if (s >= end)
			break;
		e = item_end(s, end);
		r = parse_item(s, e, &pd);
		if (r == ITEM_UNDETERMINED) {
			s = e;
			continue;
		}
		if (o->nperf < NAGIOS_PERF_MAX && r == ITEM_OK) {
			/* labels become JSON keys, the rest JSON strings:
			 * valid UTF-8 only */
			clean_field(pd.label, sizeof(pd.label));
			clean_field(pd.uom, sizeof(pd.uom));
			clean_field(pd.warn, sizeof(pd.warn));
			clean_field(pd.crit, sizeof(pd.crit));
			if (o->perf == NULL)
				o->perf = xcalloc(NAGIOS_PERF_MAX, sizeof(*o->perf));
			o->perf[o->nperf++] = pd;
		} else {
			if (o->perf_skipped++ == 0)
				utf8_sanitize(o->first_bad, sizeof(o->first_bad),
					      s, (size_t)(e - s), 0);
		}
		s = e;
	}
}

void nagios_output_parse(const char *text, size_t len,
			 struct nagios_output *ret)
{
	const char *end = text + len;
	const char *nl = memchr(text, '\n', len);
	const char *line_end = nl ? nl : end;
	const char *bar = memchr(text, '|', (size_t)(line_end - text));
	const char *s = text;
	size_t n = (size_t)((bar ? bar : line_end) - text);
	struct nagios_output o = { 0 };

	trim(&s, &n);
	utf8_sanitize(o.summary, sizeof(o.summary), s, n, 0);
	if (bar != NULL)
		add_perfdata(&o, bar + 1, line_end);
	if (nl != NULL && nl + 1 < end) {
		const char *rest = nl + 1;
		const char *bar2 = memchr(rest, '|', (size_t)(end - rest));
		const char *text_end = bar2 ? bar2 : end;
		size_t m = (size_t)(text_end - rest);

		while (m > 0 && is_space(rest[m - 1]))
			m--;
		if (m > 0) {
			o.long_output = xcalloc(1, NAGIOS_LONG_MAX);
			utf8_sanitize(o.long_output, NAGIOS_LONG_MAX, rest, m,
				      UTF8_KEEP_NEWLINES);
		}
		if (bar2 != NULL)
			add_perfdata(&o, bar2 + 1, end);
	}
	*ret = o;
}

void nagios_output_free(struct nagios_output *o)
{
	if (o == NULL)
		return;
	free(o->long_output);
	free(o->perf);
	*o = (struct nagios_output){ 0 };
}
