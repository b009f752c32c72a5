#include "calendar.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../common/config.h"
#include "../common/util.h"

static const char *const day_names[7] = { "sun", "mon", "tue", "wed",
					  "thu", "fri", "sat" };

#define CALENDAR_YEARS (CALENDAR_YEARS_LAST - CALENDAR_YEARS_FIRST + 1)
/* Years around the load time that calendar_parse() expands at once. */
#define CALENDAR_YEARS_AHEAD 2
#define CALENDAR_YEARS_BEHIND 1

/* The days of one year that the recurring holidays cover. */
struct calendar_year {
	atomic_bool ready; /* days[] is complete (release/acquire) */
	uint64_t days[6];  /* bit i: day i of the year, 0 = 1 January */
};

/*
 * The recurring holidays expanded once per year, so that a day is one
 * bit and a span walks the set bits only; bounded to CALENDAR_YEARS
 * years (about 14 KiB).  Calendars are shared by the threads that
 * compute SLA clocks (the desk, the escalation timer, API requests), so
 * a year not expanded at load time is expanded on first use under lock
 * and published with a release store: once ready, readers take no lock.
 */
struct calendar_years {
	pthread_mutex_t lock; /* held while a year is expanded */
	int32_t first[CALENDAR_YEARS + 1]; /* day number of each year's 1 January */
	struct calendar_year year[CALENDAR_YEARS];
};

static void years_init(struct calendar *c);

static void years_free(struct calendar_years *y)
{
	if (y == NULL)
		return;
	pthread_mutex_destroy(&y->lock);
	free(y);
}

void calendar_free(struct calendar *c)
{
	if (c == NULL)
		return;
	years_free(c->years);
	tz_free(c->zone);
	free(c->holidays);
	for (size_t i = 0; i < c->nrules; i++)
		rrule_clear(&c->rules[i]);
	free(c->rules);
	free(c);
}

static int day_index(const char *name, size_t len)
{
	for (int i = 0; i < 7; i++)
		if (strlen(day_names[i]) == len &&
		    strncmp(day_names[i], name, len) == 0)
			return i;
	return -1;
}

/* "mon", "mon-fri", "sat-sun", "daily" -> a set of weekday bits. */
static int parse_days(const char *key, unsigned *ret)
{
	const char *dash = strchr(key, '-');
	int a, b;
	unsigned set = 0;

	if (strcmp(key, "daily") == 0) {
		*ret = 0x7f;
		return 0;
	}
	if (dash == NULL) {
		a = day_index(key, strlen(key));
		if (a < 0)
			return -EINVAL;
		*ret = 1u << a;
		return 0;
	}
	a = day_index(key, (size_t)(dash - key));
	b = day_index(dash + 1, strlen(dash + 1));
	if (a < 0 || b < 0)
		return -EINVAL;
	/* Weeks run Monday to Sunday here: mon-sun, fri-mon wraps. */
	for (int d = a;; d = (d + 1) % 7) {
		set |= 1u << d;
		if (d == b)
			break;
	}
	*ret = set;
	return 0;
}

/* "HH:MM" (00:00 to 24:00) -> seconds after midnight. */
static int parse_clock(const char *s, size_t len, int32_t *ret)
{
	int h, m;

	if (len != 5 || s[2] != ':')
		return -EINVAL;
	for (size_t i = 0; i < 5; i++)
		if (i != 2 && (s[i] < '0' || s[i] > '9'))
			return -EINVAL;
	h = (s[0] - '0') * 10 + (s[1] - '0');
	m = (s[3] - '0') * 10 + (s[4] - '0');
	if (m > 59 || h > 24 || (h == 24 && m != 0))
		return -EINVAL;
	*ret = h * 3600 + m * 60;
	return 0;
}

static const char *trim(const char *s, const char *end, size_t *ret_len)
{
	while (s < end && (*s == ' ' || *s == '\t'))
		s++;
	while (end > s && (end[-1] == ' ' || end[-1] == '\t'))
		end--;
	*ret_len = (size_t)(end - s);
	return s;
}

/*
 * "08:00-12:00, 13:00-17:00" or "closed" into ranges (sorted, disjoint).
 * 0 and the count, or -EINVAL with why.
 */
static int parse_ranges(const char *text, struct calendar_range *out,
			int *ret_n, char *why, size_t whylen)
{
	const char *p = text;
	int n = 0;

	if (strcmp(text, "closed") == 0) {
		*ret_n = 0;
		return 0;
	}
	while (*p) {
		const char *comma = strchr(p, ',');
		const char *end = comma ? comma : p + strlen(p);
		const char *dash, *s;
		size_t len;
		struct calendar_range r;

		s = trim(p, end, &len);
		dash = memchr(s, '-', len);
		if (dash == NULL ||
		    parse_clock(s, (size_t)(dash - s), &r.start) < 0 ||
		    parse_clock(dash + 1, len - (size_t)(dash - s) - 1,
				&r.end) < 0) {
			snprintf(why, whylen,
				 "'%.*s' is not a range like 08:00-17:00",
				 (int)len, s);
			return -EINVAL;
		}
		if (r.end <= r.start) {
			snprintf(why, whylen, "'%.*s' ends before it starts",
				 (int)len, s);
			return -EINVAL;
		}
		if (n > 0 && r.start < out[n - 1].end) {
			snprintf(why, whylen,
				 "'%.*s' overlaps or precedes the range before it",
				 (int)len, s);
			return -EINVAL;
		}
		if (n == CALENDAR_RANGES_MAX) {
			snprintf(why, whylen, "more than %d ranges in one day",
				 CALENDAR_RANGES_MAX);
			return -EINVAL;
		}
		out[n++] = r;
		p = comma ? comma + 1 : end;
	}
	if (n == 0) {
		snprintf(why, whylen, "no hours given (write 'closed' for none)");
		return -EINVAL;
	}
	*ret_n = n;
	return 0;
}

static int parse_hours(struct cfg *cfg, const struct cfg_node *node,
		       struct calendar *c)
{
	unsigned seen = 0;
	int errors = 0;

	if (node == NULL || node->type != CFG_MAP) {
		cfg_error(cfg, node ? node : cfg->root,
			  "hours: expected a mapping of days to opening hours, e.g. mon-fri: 08:00-17:00");
		return -EINVAL;
	}
	for (size_t i = 0; i < node->npairs; i++) {
		const struct cfg_pair *pr = &node->pairs[i];
		struct calendar_range ranges[CALENDAR_RANGES_MAX];
		char why[160];
		unsigned days;
		int n;

		node->pairs[i].used = true;
		if (parse_days(pr->key, &days) < 0) {
			cfg_error(cfg, pr->value,
				  "'%s' is not a day or range of days (mon, mon-fri, daily)",
				  pr->key);
			errors++;
			continue;
		}
		if (days & seen) {
			cfg_error(cfg, pr->value,
				  "'%s' names a day that an earlier key already gave",
				  pr->key);
			errors++;
			continue;
		}
		seen |= days;
		if (pr->value->type != CFG_SCALAR ||
		    parse_ranges(pr->value->value, ranges, &n, why,
				 sizeof(why)) < 0) {
			cfg_error(cfg, pr->value, "%s",
				  pr->value->type == CFG_SCALAR
					  ? why
					  : "expected hours such as 08:00-17:00");
			errors++;
			continue;
		}
		for (int d = 0; d < 7; d++) {
			if (!(days & (1u << d)))
				continue;
			memcpy(c->ranges[d], ranges, sizeof(ranges));
			c->nranges[d] = n;
		}
	}
	if (errors == 0) {
		int total = 0;

		for (int d = 0; d < 7; d++)
			total += c->nranges[d];
		if (total == 0) {
			cfg_error(cfg, node, "the calendar has no opening hours at all");
			errors++;
		}
	}
	return errors ? -EINVAL : 0;
}

static int compare_days(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

/* Sort and drop repeats. */
static size_t days_normalise(int64_t *days, size_t n)
{
	size_t j = 0;

	if (n == 0) /* a calendar of recurring holidays only has no array */
		return 0;
	qsort(days, n, sizeof(*days), compare_days);
	for (size_t i = 0; i < n; i++)
		if (j == 0 || days[j - 1] != days[i])
			days[j++] = days[i];
	return j;
}

/* "2026-12-25" -> day number. */
static int parse_date(const char *s, int64_t *ret)
{
	int64_t y, d64;
	int m, d, yy, mm, dd;

	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-' ||
	    sscanf(s, "%4d-%2d-%2d", &yy, &mm, &dd) != 3)
		return -EINVAL;
	if (mm < 1 || mm > 12 || dd < 1 || dd > 31 || yy < 1970)
		return -EINVAL;
	d64 = tz_days_from_civil(yy, mm, dd);
	tz_civil_from_days(d64, &y, &m, &d);
	if (d != dd) /* 2026-02-30 */
		return -EINVAL;
	*ret = d64;
	return 0;
}

/* "20261225" (an iCalendar DATE) -> day number. */
static int parse_ical_date(const char *s, size_t len, int64_t *ret)
{
	char iso[11];

	if (len != 8)
		return -EINVAL;
	for (size_t i = 0; i < 8; i++)
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
	snprintf(iso, sizeof(iso), "%.4s-%.2s-%.2s", s, s + 4, s + 6);
	return parse_date(iso, ret);
}

/* The VEVENT being read: what makes it a span of holidays. */
struct ical_event {
	int line;		 /* its BEGIN:VEVENT */
	int64_t start, end;	 /* days; end exclusive, -1 when not given */
	int64_t days;		 /* from DURATION:PnD / PnW, 0 when not given */
	int start_line, end_line;
	bool cancelled;
	char *rrule; /* its value, owned; NULL when the event is not recurring */
	int rrule_line;
	int64_t *exdates; /* owned, up to RRULE_EXDATES_MAX */
	size_t nexdates;
	int exdate_line;
};

struct ical_reader {
	const char *path;
	int64_t *days;
	size_t n;
	struct rrule *rules;
	size_t nrules;
	bool in_event;
	struct ical_event ev;
	char *err;
	size_t errlen;
};

static int ical_fail(struct ical_reader *rd, int line_no, int r, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

/* "path:line: why" into the reader's err; returns r. */
static int ical_fail(struct ical_reader *rd, int line_no, int r, const char *fmt, ...)
{
	char why[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	snprintf(rd->err, rd->errlen, "%s:%d: %s", rd->path, line_no, why);
	return r;
}

/* Is line the property name (followed by ':' or ';')? */
static bool ical_property(const char *line, const char *name)
{
	size_t n = strlen(name);

	return strncmp(line, name, n) == 0 && (line[n] == ':' || line[n] == ';');
}

/*
 * DTSTART or DTEND of an all-day event: "NAME;VALUE=DATE:YYYYMMDD" (or
 * "NAME:YYYYMMDD").  Timed values are refused.
 */
static int ical_date(struct ical_reader *rd, const char *line, int line_no,
		     const char *name, int64_t *ret)
{
	const char *colon = strchr(line, ':');
	size_t n = strlen(name);

	if (colon == NULL ||
	    (line[n] == ';' && strstr(line, "VALUE=DATE") == NULL) ||
	    strstr(line, "VALUE=DATE-TIME") != NULL || strchr(colon, 'T') != NULL)
		return ical_fail(rd, line_no, -EINVAL,
				 "only all-day events (%s;VALUE=DATE:YYYYMMDD) can be holidays",
				 name);
	if (parse_ical_date(colon + 1, strlen(colon + 1), ret) < 0)
		return ical_fail(rd, line_no, -EINVAL,
				 "'%.40s' is not a date of the form YYYYMMDD", colon + 1);
	return 0;
}

/* DURATION:P<n>D or P<n>W (whole days: all-day events only). */
static int ical_duration(struct ical_reader *rd, const char *line, int line_no,
			 int64_t *ret_days)
{
	const char *v = strchr(line, ':');
	int64_t n;
	char *num;
	size_t len;

	if (v == NULL || v[1] != 'P' || (len = strlen(v + 2)) < 2 ||
	    (v[len + 1] != 'D' && v[len + 1] != 'W'))
		return ical_fail(rd, line_no, -EINVAL,
				 "only whole days or weeks (DURATION:P3D, P1W) can last a holiday");
	num = xasprintf("%.*s", (int)(len - 1), v + 2);
	if (parse_int64(num, &n) < 0 || n < 1 || n > CALENDAR_HOLIDAYS_MAX) {
		free(num);
		return ical_fail(rd, line_no, -EINVAL, "'%.40s' is not a duration of days",
				 v + 1);
	}
	free(num);
	*ret_days = v[len + 1] == 'W' ? n * 7 : n;
	return 0;
}

static void ical_event_clear(struct ical_event *ev)
{
	free(ev->rrule);
	free(ev->exdates);
	ev->rrule = NULL;
	ev->exdates = NULL;
	ev->nexdates = 0;
}

/* END:VEVENT of an event with an RRULE: one more rule, span days each. */
static int ical_recurring_end(struct ical_reader *rd, int64_t span)
{
	struct ical_event *ev = &rd->ev;
	struct rrule rule;
	char why[200];

	if (ev->rrule == NULL)
		return ical_fail(rd, ev->exdate_line, -EINVAL,
				 "EXDATE in an event without RRULE");
	if (span > CALENDAR_RULE_SPAN_MAX)
		return ical_fail(rd, ev->end_line, -EINVAL,
				 "a recurring event may last at most %d days",
				 CALENDAR_RULE_SPAN_MAX);
	if (rd->nrules == CALENDAR_RULES_MAX)
		return ical_fail(rd, ev->rrule_line, -E2BIG,
				 "more than %d recurring events", CALENDAR_RULES_MAX);
	if (rrule_parse(ev->rrule, ev->start, (int)span, &rule, why, sizeof(why)) < 0)
		return ical_fail(rd, ev->rrule_line, -EINVAL, "RRULE: %s", why);
	if (ev->nexdates > 0)
		qsort(ev->exdates, ev->nexdates, sizeof(*ev->exdates), compare_days);
	rule.exdates = ev->exdates;
	rule.nexdates = ev->nexdates;
	ev->exdates = NULL;
	ev->nexdates = 0;
	rd->rules = xreallocarray(rd->rules, rd->nrules + 1, sizeof(*rd->rules));
	rd->rules[rd->nrules++] = rule;
	return 0;
}

/* EXDATE;VALUE=DATE:20261224,20271224 (all-day dates only). */
static int ical_exdate(struct ical_reader *rd, const char *line, int line_no)
{
	struct ical_event *ev = &rd->ev;
	const char *p = strchr(line, ':');

	ev->exdate_line = line_no;
	if (p == NULL || (line[6] == ';' && strstr(line, "VALUE=DATE") == NULL) ||
	    strstr(line, "VALUE=DATE-TIME") != NULL || strchr(p, 'T') != NULL)
		return ical_fail(rd, line_no, -EINVAL,
				 "only dates (EXDATE;VALUE=DATE:YYYYMMDD) can be excluded from all-day events");
	for (p++; *p;) {
		size_t len = strcspn(p, ",");
		int64_t day;

		if (parse_ical_date(p, len, &day) < 0)
			return ical_fail(rd, line_no, -EINVAL,
					 "EXDATE: '%.*s' is not a date of the form YYYYMMDD",
					 (int)(len > 20 ? 20 : len), p);
		if (ev->nexdates == RRULE_EXDATES_MAX)
			return ical_fail(rd, line_no, -E2BIG,
					 "more than %d EXDATEs in one event",
					 RRULE_EXDATES_MAX);
		if (ev->exdates == NULL)
			ev->exdates = xcalloc(RRULE_EXDATES_MAX, sizeof(*ev->exdates));
		ev->exdates[ev->nexdates++] = day;
		p += len;
		if (*p == ',')
			p++;
	}
	return 0;
}

/* END:VEVENT: its days [start, end), every one a holiday. */
static int ical_event_end(struct ical_reader *rd, int line_no)
{
	struct ical_event *ev = &rd->ev;
	int64_t end;

	rd->in_event = false;
	if (ev->cancelled)
		return 0; /* a cancelled closure is no holiday */
	if (ev->start_line == 0)
		return ical_fail(rd, ev->line, -EINVAL, "an event without DTSTART");
	if (ev->end >= 0 && ev->days > 0)
		return ical_fail(rd, ev->end_line, -EINVAL,
				 "an event with both DTEND and DURATION");
	end = ev->end >= 0 ? ev->end : ev->start + (ev->days > 0 ? ev->days : 1);
	if (end <= ev->start)
		return ical_fail(rd, ev->end_line, -EINVAL,
				 "DTEND is not after DTSTART (it is exclusive: the day after the last)");
	if (ev->rrule != NULL || ev->nexdates > 0)
		return ical_recurring_end(rd, end - ev->start);
	for (int64_t day = ev->start; day < end; day++) {
		if (rd->n == CALENDAR_HOLIDAYS_MAX)
			return ical_fail(rd, line_no, -E2BIG, "more than %d holidays",
					 CALENDAR_HOLIDAYS_MAX);
		rd->days[rd->n++] = day;
	}
	return 0;
}

/* One unfolded content line; line_no is where it started. */
static int ical_line(struct ical_reader *rd, char *line, int line_no)
{
	size_t len = strlen(line);
	struct ical_event *ev = &rd->ev;

	while (len > 0 && (line[len - 1] == '\r' || line[len - 1] == '\n'))
		line[--len] = '\0';
	if (strcmp(line, "BEGIN:VEVENT") == 0) {
		ical_event_clear(ev);
		rd->in_event = true;
		*ev = (struct ical_event){ .line = line_no, .end = -1 };
		return 0;
	}
	if (!rd->in_event)
		return 0;
	if (strcmp(line, "END:VEVENT") == 0) {
		int r = ical_event_end(rd, line_no);

		ical_event_clear(ev);
		return r;
	}
	if (ical_property(line, "RRULE")) {
		if (ev->rrule != NULL)
			return ical_fail(rd, line_no, -EINVAL,
					 "a second RRULE in one event is not supported");
		if (line[5] != ':')
			return ical_fail(rd, line_no, -EINVAL,
					 "RRULE parameters are not supported");
		ev->rrule = xstrdup(line + 6);
		ev->rrule_line = line_no;
		return 0;
	}
	if (ical_property(line, "EXDATE"))
		return ical_exdate(rd, line, line_no);
	if (ical_property(line, "RDATE") || ical_property(line, "EXRULE"))
		return ical_fail(rd, line_no, -EINVAL,
				 "%.*s is not supported: give each holiday an event of its own",
				 (int)strcspn(line, ":;"), line);
	if (ical_property(line, "RECURRENCE-ID"))
		return ical_fail(rd, line_no, -EINVAL,
				 "RECURRENCE-ID (a changed occurrence) is not supported: "
				 "use EXDATE and an event of its own");
	if (ical_property(line, "STATUS")) {
		ev->cancelled = strchr(line, ':') && strcmp(strchr(line, ':') + 1, "CANCELLED") == 0;
		return 0;
	}
	if (ical_property(line, "DTSTART")) {
		ev->start_line = line_no;
		return ical_date(rd, line, line_no, "DTSTART", &ev->start);
	}
	if (ical_property(line, "DTEND")) {
		ev->end_line = line_no;
		return ical_date(rd, line, line_no, "DTEND", &ev->end);
	}
	if (ical_property(line, "DURATION")) {
		ev->end_line = line_no;
		return ical_duration(rd, line, line_no, &ev->days);
	}
	return 0;
}

void calendar_holidays_clear(struct calendar_holidays *h)
{
	if (h == NULL)
		return;
	free(h->days);
	for (size_t i = 0; i < h->nrules; i++)
		rrule_clear(&h->rules[i]);
	free(h->rules);
	*h = (struct calendar_holidays){ 0 };
}

int calendar_read_ical(const char *path, struct calendar_holidays *ret,
		       char *err, size_t errlen)
{
	struct ical_reader rd = { .path = path, .err = err, .errlen = errlen };
	char *line = xcalloc(1, CALENDAR_ICAL_LINE_MAX);
	char buf[CALENDAR_ICAL_LINE_MAX];
	size_t total = 0, len = 0;
	int line_no = 0, start_no = 0, r = 0;
	FILE *fp = fopen(path, "re");

	if (fp == NULL) {
		r = -errno;
		snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
		free(line);
		return r;
	}
	rd.days = xcalloc(CALENDAR_HOLIDAYS_MAX, sizeof(*rd.days));
	while (r == 0 && fgets(buf, sizeof(buf), fp) != NULL) {
		size_t n = strlen(buf);

		line_no++;
		total += n;
		if (total > CALENDAR_ICAL_MAX) {
			snprintf(err, errlen, "%s:%d: larger than %d bytes", path,
				 line_no, CALENDAR_ICAL_MAX);
			r = -E2BIG;
			break;
		}
		if (n == sizeof(buf) - 1 && buf[n - 1] != '\n') {
			snprintf(err, errlen, "%s:%d: line longer than %d bytes",
				 path, line_no, CALENDAR_ICAL_LINE_MAX - 2);
			r = -EINVAL;
			break;
		}
		while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
			buf[--n] = '\0';
		/* RFC 5545 folding: a line starting with a blank continues. */
		if ((buf[0] == ' ' || buf[0] == '\t') && len > 0) {
			if (len + n > CALENDAR_ICAL_LINE_MAX - 1) {
				snprintf(err, errlen,
					 "%s:%d: folded line longer than %d bytes",
					 path, start_no, CALENDAR_ICAL_LINE_MAX - 1);
				r = -EINVAL;
				break;
			}
			memcpy(line + len, buf + 1, n);
			len += n - 1;
			line[len] = '\0';
			continue;
		}
		if (len > 0)
			r = ical_line(&rd, line, start_no);
		memcpy(line, buf, n + 1);
		len = n;
		start_no = line_no;
	}
	if (r == 0 && ferror(fp)) {
		snprintf(err, errlen, "%s: read error", path);
		r = -EIO;
	}
	if (r == 0 && len > 0)
		r = ical_line(&rd, line, start_no);
	if (r == 0 && rd.in_event)
		r = ical_fail(&rd, rd.ev.line, -EINVAL, "the event has no END:VEVENT");
	fclose(fp);
	free(line);
	ical_event_clear(&rd.ev);
	if (r < 0) {
		struct calendar_holidays h = { rd.days, rd.n, rd.rules, rd.nrules };

		calendar_holidays_clear(&h);
		return r;
	}
	rd.n = days_normalise(rd.days, rd.n);
	*ret = (struct calendar_holidays){ rd.days, rd.n, rd.rules, rd.nrules };
	return 0;
}

static char *relative_to(const char *file, const char *path)
{
	const char *slash = strrchr(file, '/');

	if (path[0] == '/' || slash == NULL)
		return xstrdup(path);
	return xasprintf("%.*s/%s", (int)(slash - file), file, path);
}

static void add_holiday(struct calendar *c, size_t *cap, int64_t day)
{
	if (c->nholidays == *cap) {
		*cap = *cap * 2 + 16;
		c->holidays = xreallocarray(c->holidays, *cap, sizeof(*c->holidays));
	}
	c->holidays[c->nholidays++] = day;
}

/* Take over rule: the calendar owns it from here on. */
static void add_rule(struct calendar *c, struct rrule *rule)
{
	int64_t last = rrule_last_day(rule);

	if (c->nrules == 0 || rule->start < c->rules_first)
		c->rules_first = rule->start;
	if (c->nrules == 0 || last > c->rules_last)
		c->rules_last = last;
	if (rule->span > c->rules_span)
		c->rules_span = rule->span;
	c->rules = xreallocarray(c->rules, c->nrules + 1, sizeof(*c->rules));
	c->rules[c->nrules++] = *rule;
}

/*
 * A recurring holiday written inline: {date: "12-24", every: year} from
 * 1970 on, or {date: "2027-12-24", every: year} from that year on.
 */
static int parse_every(struct cfg *cfg, const struct cfg_node *it,
		       struct calendar *c)
{
	const struct cfg_node *date = cfg_get(cfg, it, "date");
	const struct cfg_node *every = cfg_get(cfg, it, "every");
	int64_t start, y;
	int m, d, mm, dd;
	char text[64], why[200];
	struct rrule rule;

	if (every == NULL || every->type != CFG_SCALAR ||
	    strcmp(every->value, "year") != 0) {
		cfg_error(cfg, every ? every : it,
			  "expected every: year (a date is written YYYY-MM-DD)");
		return -EINVAL;
	}
	if (date != NULL && date->type == CFG_SCALAR && strlen(date->value) == 5 &&
	    sscanf(date->value, "%2d-%2d", &mm, &dd) == 2 && date->value[2] == '-' &&
	    mm >= 1 && mm <= 12 && dd >= 1) {
		/* 1972 is the first leap year: 02-29 exists in it. */
		start = tz_days_from_civil(mm == 2 && dd == 29 ? 1972 : 1970, mm, dd);
		tz_civil_from_days(start, &y, &m, &d);
		if (d != dd)
			start = -1;
	} else if (date == NULL || date->type != CFG_SCALAR ||
		   parse_date(date->value, &start) < 0) {
		start = -1;
	}
	if (start < 0) {
		cfg_error(cfg, date ? date : it,
			  "'%s' is not a day of the year (MM-DD) or a first date (YYYY-MM-DD)",
			  date && date->type == CFG_SCALAR ? date->value : "(none)");
		return -EINVAL;
	}
	if (c->nrules == CALENDAR_RULES_MAX) {
		cfg_error(cfg, it, "more than %d recurring holidays", CALENDAR_RULES_MAX);
		return -E2BIG;
	}
	tz_civil_from_days(start, &y, &m, &d);
	snprintf(text, sizeof(text), "FREQ=YEARLY;BYMONTH=%d;BYMONTHDAY=%d", m, d);
	if (rrule_parse(text, start, 1, &rule, why, sizeof(why)) < 0) {
		cfg_error(cfg, it, "%s", why);
		return -EINVAL;
	}
	add_rule(c, &rule);
	return 0;
}

static int parse_holidays(struct cfg *cfg, const struct cfg_node *node,
			  struct calendar *c)
{
	const struct cfg_node *list = cfg_get(cfg, node, "holidays");
	const struct cfg_node *file = cfg_get(cfg, node, "holidays_file");
	size_t cap = 0;
	int errors = 0;

	if (list != NULL && list->type != CFG_NULL && list->type != CFG_SEQ) {
		cfg_error(cfg, list,
			  "expected a list of dates (YYYY-MM-DD) or {date: MM-DD, every: year}");
		errors++;
	}
	for (size_t i = 0; list && list->type == CFG_SEQ && i < list->nitems; i++) {
		const struct cfg_node *it = list->items[i];
		int64_t day;

		if (it->type == CFG_MAP) {
			if (parse_every(cfg, it, c) < 0)
				errors++;
		} else if (it->type != CFG_SCALAR || parse_date(it->value, &day) < 0) {
			cfg_error(cfg, it, "'%s' is not a date of the form YYYY-MM-DD",
				  it->type == CFG_SCALAR ? it->value : "a structure");
			errors++;
		} else if (c->nholidays == CALENDAR_HOLIDAYS_MAX) {
			cfg_error(cfg, it, "more than %d holidays", CALENDAR_HOLIDAYS_MAX);
			errors++;
			break;
		} else {
			add_holiday(c, &cap, day);
		}
	}
	if (file != NULL && file->type == CFG_SCALAR) {
		char *path = relative_to(file->file, file->value), err[512];
		struct calendar_holidays h;

		if (calendar_read_ical(path, &h, err, sizeof(err)) < 0) {
			cfg_error(cfg, file, "%s", err);
			errors++;
		} else {
			/* Dates in both the list and the file count once. */
			for (size_t i = 0; i < h.ndays; i++)
				add_holiday(c, &cap, h.days[i]);
			if (c->nrules + h.nrules > CALENDAR_RULES_MAX) {
				cfg_error(cfg, file,
					  "%s: with holidays: more than %d recurring holidays",
					  path, CALENDAR_RULES_MAX);
				errors++;
			} else {
				for (size_t i = 0; i < h.nrules; i++)
					add_rule(c, &h.rules[i]);
				h.nrules = 0; /* the calendar owns them now */
			}
			calendar_holidays_clear(&h);
			c->nholidays = days_normalise(c->holidays, c->nholidays);
			if (c->nholidays > CALENDAR_HOLIDAYS_MAX) {
				cfg_error(cfg, file,
					  "%s: with holidays: more than %d holidays", path,
					  CALENDAR_HOLIDAYS_MAX);
				errors++;
			}
		}
		free(path);
	} else if (file != NULL && file->type != CFG_NULL) {
		cfg_error(cfg, file, "expected the path of an iCalendar file");
		errors++;
	}
	c->nholidays = c->nholidays ? days_normalise(c->holidays, c->nholidays) : 0;
	return errors ? -EINVAL : 0;
}

int calendar_parse(struct cfg *cfg, const struct cfg_node *node,
		   struct calendar **ret)
{
	struct calendar *c = xcalloc(1, sizeof(*c));
	const struct cfg_node *tzn;
	char *zone = NULL, err[512];
	int r = 0;

	if (node == NULL || node->type != CFG_MAP) {
		cfg_error(cfg, node ? node : cfg->root,
			  "expected a calendar: timezone, hours, holidays");
		free(c);
		return -EINVAL;
	}
	if (cfg_get_string(cfg, node, "timezone", &zone) <= 0) {
		if (cfg_get(cfg, node, "timezone") == NULL)
			cfg_error(cfg, node, "a calendar needs a timezone (e.g. Europe/Berlin)");
		r = -EINVAL;
	} else if (tz_load(NULL, zone, &c->zone, err, sizeof(err)) < 0) {
		tzn = cfg_get(cfg, node, "timezone");
		cfg_error(cfg, tzn, "%s", err);
		r = -EINVAL;
	}
	free(zone);
	if (parse_hours(cfg, cfg_get(cfg, node, "hours"), c) < 0)
		r = -EINVAL;
	if (parse_holidays(cfg, node, c) < 0)
		r = -EINVAL;
	if (r < 0) {
		calendar_free(c);
		return r;
	}
	for (int d = 0; d < 7; d++) {
		for (int i = 0; i < c->nranges[d]; i++)
			c->day_ms[d] += (int64_t)(c->ranges[d][i].end - c->ranges[d][i].start) * 1000;
		c->week_ms += c->day_ms[d];
	}
	years_init(c);
	*ret = c;
	return 0;
}

/*
 * UTC without transitions (tz_offset_at() of an empty table is
 * first_offset): the 24x7 calendar needs no zoneinfo file, so it exists
 * even where /usr/share/zoneinfo does not.
 */
static struct tz_zone always_zone = { .name = "UTC" };

#define ALWAYS_DAY { { 0, 86400 } }
static const struct calendar always_open = {
	.zone = &always_zone,
	.ranges = { ALWAYS_DAY, ALWAYS_DAY, ALWAYS_DAY, ALWAYS_DAY,
		    ALWAYS_DAY, ALWAYS_DAY, ALWAYS_DAY },
	.nranges = { 1, 1, 1, 1, 1, 1, 1 },
	.day_ms = { 86400000, 86400000, 86400000, 86400000, 86400000,
		    86400000, 86400000 },
	.week_ms = 7 * 86400000LL,
};
#undef ALWAYS_DAY

const struct calendar *calendar_always(void)
{
	return &always_open;
}

bool calendar_rules_cover(const struct calendar *c, int64_t day)
{
	if (c->nrules == 0 || day < c->rules_first || day > c->rules_last)
		return false;
	/* An occurrence k days back that lasts longer than k covers day. */
	for (int k = 0; k < c->rules_span; k++) {
		struct rrule_date date;

		rrule_date_of(day - k, &date);
		for (size_t i = 0; i < c->nrules; i++)
			if (c->rules[i].span > k && rrule_occurs_on(&c->rules[i], &date))
				return true;
	}
	return false;
}

/* The index of the cached year day falls in, or -1 outside the cache. */
static int year_index(const struct calendar_years *y, int64_t day)
{
	int64_t i;

	if (day < y->first[0] || day >= y->first[CALENDAR_YEARS])
		return -1;
	/* 400 Gregorian years have 146097 days: off by one year at most. */
	i = (day - y->first[0]) * 400 / 146097;
	if (i >= CALENDAR_YEARS)
		i = CALENDAR_YEARS - 1;
	while (day < y->first[i])
		i--;
	while (day >= y->first[i + 1])
		i++;
	return (int)i;
}

static void mark_day(uint64_t *bits, int64_t i)
{
	bits[i / 64] |= UINT64_C(1) << (i % 64);
}

/*
 * The days of [first, next) covered by an occurrence of a rule, also one
 * that starts in the year before: each day that could start one is asked
 * of every rule once (days x rules, once per year).  A rule's BYMONTH is
 * looked at first, as rrule_occurs_on() would: most rules of a holiday
 * calendar fall in one month and skip the other eleven cheaply.
 */
static void year_expand(const struct calendar *c, int64_t first, int64_t next,
			uint64_t *bits)
{
	for (int64_t s = first - (c->rules_span - 1); s < next; s++) {
		struct rrule_date date;

		if (s < c->rules_first || s > c->rules_last)
			continue;
		rrule_date_of(s, &date);
		for (size_t i = 0; i < c->nrules; i++) {
			const struct rrule *r = &c->rules[i];

			if (s + r->span <= first ||
			    (r->months != 0 && !(r->months & (1u << date.month))) ||
			    !rrule_occurs_on(r, &date))
				continue;
			for (int64_t d = s > first ? s : first; d < s + r->span && d < next; d++)
				mark_day(bits, d - first);
		}
	}
}

/* The bitmap of cached year i, expanded now if no thread has done it yet. */
static const struct calendar_year *year_get(struct calendar_years *y,
					    const struct calendar *c, int i)
{
	struct calendar_year *yr = &y->year[i];

	if (atomic_load_explicit(&yr->ready, memory_order_acquire))
		return yr;
	pthread_mutex_lock(&y->lock);
	if (!atomic_load_explicit(&yr->ready, memory_order_relaxed)) {
		year_expand(c, y->first[i], y->first[i + 1], yr->days);
		atomic_store_explicit(&yr->ready, true, memory_order_release);
	}
	pthread_mutex_unlock(&y->lock);
	return yr;
}

/*
 * Set up the per-year cache of a calendar with recurring holidays and
 * expand the years around now, which SLA clocks ask about most.
 */
static void years_init(struct calendar *c)
{
	struct calendar_years *y;
	int64_t now_year;
	int m, d;

	if (c->nrules == 0)
		return;
	y = xcalloc(1, sizeof(*y));
	pthread_mutex_init(&y->lock, NULL);
	for (int i = 0; i <= CALENDAR_YEARS; i++)
		y->first[i] = (int32_t)tz_days_from_civil(CALENDAR_YEARS_FIRST + i, 1, 1);
	c->years = y;
	tz_civil_from_days(time(NULL) / 86400, &now_year, &m, &d);
	for (int64_t yy = now_year - CALENDAR_YEARS_BEHIND;
	     yy <= now_year + CALENDAR_YEARS_AHEAD; yy++)
		if (yy >= CALENDAR_YEARS_FIRST && yy <= CALENDAR_YEARS_LAST)
			year_get(y, c, (int)(yy - CALENDAR_YEARS_FIRST));
}

static bool year_has(const struct calendar_year *yr, int64_t i)
{
	return (yr->days[i / 64] >> (i % 64)) & 1;
}

/* Is day covered by one of the recurring holidays? */
static bool recurring_holiday(const struct calendar *c, int64_t day)
{
	int i;

	if (c->nrules == 0 || day < c->rules_first || day > c->rules_last)
		return false;
	if (c->years == NULL || (i = year_index(c->years, day)) < 0)
		return calendar_rules_cover(c, day);
	return year_has(year_get(c->years, c, i), day - c->years->first[i]);
}

static bool dated_holiday(const struct calendar *c, int64_t day)
{
	return c->nholidays > 0 &&
	       bsearch(&day, c->holidays, c->nholidays, sizeof(*c->holidays),
		       compare_days) != NULL;
}

bool calendar_is_business_day(const struct calendar *c, int64_t day)
{
	if (c->nranges[tz_weekday(day)] == 0)
		return false;
	return !dated_holiday(c, day) && !recurring_holiday(c, day);
}

/* The local day that UTC millisecond t falls on. */
static int64_t local_day(const struct calendar *c, int64_t t_ms)
{
	int64_t s = t_ms >= 0 ? t_ms / 1000 : (t_ms - 999) / 1000;
	int64_t local = s + tz_offset_at(c->zone, s);

	return local >= 0 ? local / 86400 : (local - 86399) / 86400;
}

/* Range r of day as UTC milliseconds [*ret_from, *ret_to). */
static void range_utc(const struct calendar *c, int64_t day,
		      const struct calendar_range *r, int64_t *ret_from,
		      int64_t *ret_to)
{
	*ret_from = tz_local_to_utc(c->zone, day * 86400 + r->start) * 1000;
	*ret_to = tz_local_to_utc(c->zone, day * 86400 + r->end) * 1000;
}

/* Business ms of day's ranges that fall inside [from_ms, to_ms). */
static int64_t day_part_ms(const struct calendar *c, int64_t day, int64_t from_ms,
			   int64_t to_ms)
{
	int wd = tz_weekday(day);
	int64_t total = 0;

	if (!calendar_is_business_day(c, day))
		return 0;
	for (int i = 0; i < c->nranges[wd]; i++) {
		int64_t a, b;

		range_utc(c, day, &c->ranges[wd][i], &a, &b);
		if (a < from_ms)
			a = from_ms;
		if (b > to_ms)
			b = to_ms;
		if (b > a)
			total += b - a;
	}
	return total;
}

/*
 * Might the clocks change on this local day (or next to it)?  Such days
 * are measured exactly; the others by their nominal length, which is what
 * makes long spans cheap.  Erring towards "yes" only costs time.
 */
static bool near_transition(const struct calendar *c, int64_t day)
{
	int64_t start = day * 86400 - tz_offset_at(c->zone, day * 86400);

	return tz_next_transition(c->zone, start - 86400) < start + 2 * 86400;
}

/* Business ms of a whole business day. */
static int64_t day_ms(const struct calendar *c, int64_t day)
{
	if (!calendar_is_business_day(c, day))
		return 0;
	if (near_transition(c, day))
		return day_part_ms(c, day, INT64_MIN, INT64_MAX);
	return c->day_ms[tz_weekday(day)];
}

static size_t holiday_lower_bound(const struct calendar *c, int64_t day)
{
	size_t lo = 0, hi = c->nholidays;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (c->holidays[mid] < day)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

/* Nominal business ms of day if only a recurring holiday takes it out. */
static int64_t recurring_day_ms(const struct calendar *c, int64_t day)
{
	int64_t ms = c->day_ms[tz_weekday(day)];

	return ms != 0 && !dated_holiday(c, day) ? ms : 0;
}

/*
 * Nominal business ms of the days in [a, b) that are recurring holidays
 * but not dated ones (those are out already): in the cached years the
 * set bits of each year's bitmap, 64 days a step; beyond, day by day.
 */
static int64_t recurring_ms(const struct calendar *c, int64_t a, int64_t b)
{
	int64_t total = 0;

	for (int64_t d = a; d < b;) {
		int y = c->years ? year_index(c->years, d) : -1;
		const struct calendar_year *yr;
		int64_t first, end, lo, hi;

		if (y < 0) {
			if (calendar_rules_cover(c, d))
				total += recurring_day_ms(c, d);
			d++;
			continue;
		}
		yr = year_get(c->years, c, y);
		first = c->years->first[y];
		end = c->years->first[y + 1] < b ? c->years->first[y + 1] : b;
		lo = d - first;
		hi = end - first;
		for (int64_t w = lo / 64; w * 64 < hi; w++) {
			uint64_t bits = yr->days[w];

			if (w == lo / 64)
				bits &= ~UINT64_C(0) << (lo % 64);
			if ((w + 1) * 64 > hi)
				bits &= (UINT64_C(1) << (hi - w * 64)) - 1;
			for (; bits != 0; bits &= bits - 1)
				total += recurring_day_ms(c, first + w * 64 +
							     __builtin_ctzll(bits));
		}
		d = end;
	}
	return total;
}

/*
 * Business ms of the whole days [d1, d2): whole weeks by multiplication,
 * then holidays taken out and days next to a clock change measured
 * exactly, so the cost grows with holidays and transitions, not days.
 */
static int64_t full_days_ms(const struct calendar *c, int64_t d1, int64_t d2)
{
	int64_t n = d2 - d1, weeks = n / 7, total = weeks * c->week_ms, last = d1 - 1;
	int64_t t, end;

	for (int64_t d = d1 + weeks * 7; d < d2; d++)
		total += c->day_ms[tz_weekday(d)];
	for (size_t i = holiday_lower_bound(c, d1); i < c->nholidays && c->holidays[i] < d2; i++)
		total -= c->day_ms[tz_weekday(c->holidays[i])];
	/* Recurring holidays from the per-year bitmaps (dated ones are out already). */
	if (c->nrules > 0) {
		int64_t a = d1 > c->rules_first ? d1 : c->rules_first;
		int64_t b = c->rules_last < d2 - 1 ? c->rules_last + 1 : d2;

		total -= recurring_ms(c, a, b);
	}
	end = d2 * 86400 + 2 * 86400;
	for (t = tz_next_transition(c->zone, d1 * 86400 - 2 * 86400); t < end;
	     t = tz_next_transition(c->zone, t)) {
		int64_t ld = (t + 86400 * 2) / 86400 - 2; /* near enough: +-1 below */

		for (int64_t d = ld - 1; d <= ld + 1; d++) {
			if (d < d1 || d >= d2 || d <= last || !calendar_is_business_day(c, d))
				continue;
			total += day_part_ms(c, d, INT64_MIN, INT64_MAX) - c->day_ms[tz_weekday(d)];
			last = d;
		}
	}
	return total;
}

int64_t calendar_business_ms(const struct calendar *c, int64_t from_ms,
			     int64_t to_ms)
{
	int64_t first, last, total = 0;

	if (to_ms <= from_ms)
		return 0;
	first = local_day(c, from_ms);
	last = local_day(c, to_ms);
	if (last - first < 2) {
		for (int64_t day = first; day <= last; day++)
			total += day_part_ms(c, day, from_ms, to_ms);
		return total;
	}
	return day_part_ms(c, first, from_ms, to_ms) + full_days_ms(c, first + 1, last) +
	       day_part_ms(c, last, from_ms, to_ms);
}

int64_t calendar_add_ms(const struct calendar *c, int64_t from_ms,
			int64_t business_ms)
{
	int64_t day = local_day(c, from_ms), left = business_ms;

	if (business_ms <= 0)
		return from_ms;
	for (int n = 0; n < CALENDAR_SEARCH_DAYS; n++, day++) {
		int wd = tz_weekday(day);

		/* Whole days that do not finish the job are skipped cheaply. */
		if (n > 0) {
			int64_t m = day_ms(c, day);

			if (m < left) {
				left -= m;
				continue;
			}
		}
		if (!calendar_is_business_day(c, day))
			continue;
		for (int i = 0; i < c->nranges[wd]; i++) {
			int64_t a, b;

			range_utc(c, day, &c->ranges[wd][i], &a, &b);
			if (b <= from_ms)
				continue;
			if (a < from_ms)
				a = from_ms;
			if (left <= b - a)
				return a + left;
			left -= b - a;
		}
	}
	return CALENDAR_NEVER;
}

/* The first business instant at or after t: its day and local clock. */
static int next_open(const struct calendar *c, int64_t t_ms,
		     int64_t *ret_day, int32_t *ret_clock)
{
	int64_t day = local_day(c, t_ms) - 1;

	for (int n = 0; n < CALENDAR_SEARCH_DAYS; n++, day++) {
		int wd = tz_weekday(day);

		if (!calendar_is_business_day(c, day))
			continue;
		for (int i = 0; i < c->nranges[wd]; i++) {
			int64_t a, b, s;

			range_utc(c, day, &c->ranges[wd][i], &a, &b);
			if (b <= t_ms)
				continue;
			if (a < t_ms)
				a = t_ms;
			s = a / 1000;
			*ret_day = day;
			*ret_clock = (int32_t)(s + tz_offset_at(c->zone, s) -
					       day * 86400);
			return 0;
		}
	}
	return -ENOENT;
}

int64_t calendar_add_days(const struct calendar *c, int64_t from_ms, int n)
{
	const struct calendar_range *r;
	int64_t day;
	int32_t clock;
	int wd, k = 0;

	if (next_open(c, from_ms, &day, &clock) < 0)
		return CALENDAR_NEVER;
	for (int steps = 0; k < n; steps++) {
		if (steps > CALENDAR_SEARCH_DAYS)
			return CALENDAR_NEVER;
		day++;
		if (calendar_is_business_day(c, day))
			k++;
	}
	wd = tz_weekday(day);
	r = c->ranges[wd];
	for (int i = 0; i < c->nranges[wd]; i++) {
		if (clock < r[i].start)
			clock = r[i].start;
		if (clock <= r[i].end && (clock < r[i].end || i == c->nranges[wd] - 1))
			return tz_local_to_utc(c->zone, day * 86400 + clock) * 1000;
	}
	return tz_local_to_utc(c->zone, day * 86400 + r[c->nranges[wd] - 1].end) *
	       1000;
}
