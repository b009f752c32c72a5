#include "rrule.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tz.h"

static const char *const weekday_codes[7] = { "SU", "MO", "TU", "WE",
					      "TH", "FR", "SA" };

void rrule_clear(struct rrule *r)
{
	if (r == NULL)
		return;
	free(r->exdates);
	r->exdates = NULL;
	r->nexdates = 0;
}

static int days_in_month(int64_t y, int m)
{
	static const int dim[12] = { 31, 28, 31, 30, 31, 30,
				     31, 31, 30, 31, 30, 31 };

	return m == 2 && tz_is_leap(y) ? 29 : dim[m - 1];
}

/* A whole number in [lo, hi] taking exactly len bytes of s. */
static int parse_bounded(const char *s, size_t len, int lo, int hi, int *ret)
{
	int sign = 1, v = 0;
	size_t i = 0;

	if (len > 0 && (s[0] == '-' || s[0] == '+')) {
		sign = s[0] == '-' ? -1 : 1;
		i = 1;
	}
	if (i == len || len - i > 6)
		return -EINVAL;
	for (; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (s[i] - '0');
	}
	v *= sign;
	if (v < lo || v > hi)
		return -EINVAL;
	*ret = v;
	return 0;
}

/* UNTIL=YYYYMMDD, or a date-time whose day is what counts for all-day events. */
static int parse_until(const char *s, size_t len, int64_t *ret)
{
	int y, m, d;
	int64_t day, yy;
	int mm, dd;

	if (len != 8 && !(len >= 15 && s[8] == 'T'))
		return -EINVAL;
	if (parse_bounded(s, 4, 1970, 9999, &y) < 0 ||
	    parse_bounded(s + 4, 2, 1, 12, &m) < 0 ||
	    parse_bounded(s + 6, 2, 1, 31, &d) < 0)
		return -EINVAL;
	day = tz_days_from_civil(y, m, d);
	tz_civil_from_days(day, &yy, &mm, &dd);
	if (dd != d)
		return -EINVAL;
	*ret = day;
	return 0;
}

/* "-1MO", "4TH", "SA" */
static int parse_byday(const char *s, size_t len, struct rrule_byday *ret)
{
	int ordinal = 0;

	if (len < 2)
		return -EINVAL;
	if (len > 2 && (parse_bounded(s, len - 2, -53, 53, &ordinal) < 0 ||
			ordinal == 0))
		return -EINVAL;
	for (int i = 0; i < 7; i++) {
		if (strncmp(s + len - 2, weekday_codes[i], 2) == 0) {
			*ret = (struct rrule_byday){ ordinal, i };
			return 0;
		}
	}
	return -EINVAL;
}

/*
 * One comma-separated list ("1,15,-1") into the rule; name says which.
 * 0, or -EINVAL with why.
 */
static int parse_list(struct rrule *r, const char *name, const char *v,
		      size_t vlen, char *why, size_t whylen)
{
	const char *p = v, *end = v + vlen;

	while (p < end) {
		const char *comma = memchr(p, ',', (size_t)(end - p));
		size_t len = (size_t)((comma ? comma : end) - p);
		int n;

		if (strcmp(name, "BYMONTH") == 0) {
			if (parse_bounded(p, len, 1, 12, &n) < 0)
				goto bad;
			r->months |= (uint16_t)(1u << n);
		} else if (strcmp(name, "BYMONTHDAY") == 0) {
			if (parse_bounded(p, len, -31, 31, &n) < 0 || n == 0)
				goto bad;
			if (n > 0)
				r->monthdays |= 1u << n;
			else
				r->monthdays_from_end |= 1u << -n;
		} else {
			if (r->nbyday == RRULE_BYDAY_MAX) {
				snprintf(why, whylen, "more than %d BYDAY values",
					 RRULE_BYDAY_MAX);
				return -EINVAL;
			}
			if (parse_byday(p, len, &r->byday[r->nbyday]) < 0)
				goto bad;
			r->nbyday++;
		}
		p = comma ? comma + 1 : end;
	}
	return 0;
bad:
	snprintf(why, whylen, "%s: '%.*s' is not a valid value", name,
		 (int)((end - p) > 20 ? 20 : (end - p)), p);
	return -EINVAL;
}

/* Does byday's ordinal hold for day of month d (1-based) or of the year? */
static bool ordinal_matches(int ordinal, int index, int length)
{
	if (ordinal > 0)
		return (index - 1) / 7 + 1 == ordinal;
	return -((length - index) / 7 + 1) == ordinal;
}

void rrule_date_of(int64_t day, struct rrule_date *ret)
{
	ret->day = day;
	tz_civil_from_days(day, &ret->year, &ret->month, &ret->mday);
	ret->weekday = tz_weekday(day);
}

/* The rule's pattern, without its start, end and EXDATEs. */
static bool pattern_matches_on(const struct rrule *r, const struct rrule_date *date)
{
	int64_t y = date->year, y0 = r->start_year, day = date->day;
	int m = date->month, d = date->mday, m0 = r->start_month, wd = date->weekday;
	bool ok;

	switch (r->freq) {
	case RRULE_YEARLY:
		if ((y - y0) % r->interval != 0)
			return false;
		break;
	case RRULE_MONTHLY:
		if (((y - y0) * 12 + (m - m0)) % r->interval != 0)
			return false;
		break;
	case RRULE_WEEKLY: {
		/* Weeks start on Monday (WKST=MO). */
		int64_t w0 = r->start - (tz_weekday(r->start) + 6) % 7;

		if (((day - w0) / 7) % r->interval != 0)
			return false;
		break;
	}
	}
	if (r->months != 0 && !(r->months & (1u << m)))
		return false;
	if ((r->monthdays | r->monthdays_from_end) != 0 &&
	    !(r->monthdays & (1u << d)) &&
	    !(r->monthdays_from_end & (1u << (days_in_month(y, m) - d + 1))))
		return false;
	if (r->nbyday == 0)
		return true;
	ok = false;
	for (int i = 0; i < r->nbyday && !ok; i++) {
		const struct rrule_byday *b = &r->byday[i];

		if (b->weekday != wd)
			continue;
		if (b->ordinal == 0)
			ok = true;
		else if (r->byday_in_month)
			ok = ordinal_matches(b->ordinal, d, days_in_month(y, m));
		else
			ok = ordinal_matches(b->ordinal,
					     (int)(day - tz_days_from_civil(y, 1, 1)) + 1,
					     tz_is_leap(y) ? 366 : 365);
	}
	return ok;
}

static bool pattern_matches(const struct rrule *r, int64_t day)
{
	struct rrule_date date;

	rrule_date_of(day, &date);
	return pattern_matches_on(r, &date);
}

static int compare_days(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;

	return (x > y) - (x < y);
}

bool rrule_occurs_on(const struct rrule *r, const struct rrule_date *date)
{
	if (date->day < r->start || date->day > r->until ||
	    !pattern_matches_on(r, date))
		return false;
	return r->nexdates == 0 ||
	       bsearch(&date->day, r->exdates, r->nexdates, sizeof(*r->exdates),
		       compare_days) == NULL;
}

bool rrule_occurs(const struct rrule *r, int64_t day)
{
	struct rrule_date date;

	rrule_date_of(day, &date);
	return rrule_occurs_on(r, &date);
}

bool rrule_covers(const struct rrule *r, int64_t day)
{
	for (int k = 0; k < r->span; k++)
		if (rrule_occurs(r, day - k))
			return true;
	return false;
}

int64_t rrule_last_day(const struct rrule *r)
{
	return r->until == RRULE_UNTIL_NONE ? RRULE_UNTIL_NONE : r->until + r->span - 1;
}

/* Defaults RFC 5545 takes from DTSTART when a rule leaves them out. */
static void take_defaults(struct rrule *r, bool bymonth)
{
	int64_t y0;
	int m0, d0;
	bool bydays = (r->monthdays | r->monthdays_from_end) != 0 || r->nbyday > 0;

	tz_civil_from_days(r->start, &y0, &m0, &d0);
	switch (r->freq) {
	case RRULE_YEARLY:
		if (!bymonth && !bydays)
			r->months = (uint16_t)(1u << m0);
		if (!bydays)
			r->monthdays = 1u << d0;
		r->byday_in_month = bymonth;
		break;
	case RRULE_MONTHLY:
		if (!bydays)
			r->monthdays = 1u << d0;
		r->byday_in_month = true;
		break;
	case RRULE_WEEKLY:
		if (r->nbyday == 0)
			r->byday[r->nbyday++] =
				(struct rrule_byday){ 0, tz_weekday(r->start) };
		break;
	}
}

/* COUNT=n -> the day the nth occurrence starts on. */
static int count_to_until(struct rrule *r, int count, char *why, size_t whylen)
{
	int seen = 0;

	for (int64_t day = r->start; day < r->start + RRULE_COUNT_SCAN_DAYS; day++) {
		if (pattern_matches(r, day) && ++seen == count) {
			r->until = day;
			return 0;
		}
	}
	snprintf(why, whylen, "COUNT=%d is not reached within 400 years", count);
	return -EINVAL;
}

/* A NAME=VALUE part of a rule; 0, or -EINVAL with why. */
static int parse_part(struct rrule *r, const char *part, size_t len, int *count,
		      bool *freq_seen, bool *bymonth, char *why, size_t whylen)
{
	const char *eq = memchr(part, '=', len);
	char name[16];
	const char *v;
	size_t nlen, vlen;

	if (eq == NULL || (nlen = (size_t)(eq - part)) == 0 || nlen >= sizeof(name)) {
		snprintf(why, whylen, "'%.*s' is not NAME=VALUE", (int)(len > 30 ? 30 : len),
			 part);
		return -EINVAL;
	}
	memcpy(name, part, nlen);
	name[nlen] = '\0';
	v = eq + 1;
	vlen = len - nlen - 1;
	if (strcmp(name, "FREQ") == 0) {
		*freq_seen = true;
		if (vlen == 6 && strncmp(v, "YEARLY", 6) == 0)
			r->freq = RRULE_YEARLY;
		else if (vlen == 7 && strncmp(v, "MONTHLY", 7) == 0)
			r->freq = RRULE_MONTHLY;
		else if (vlen == 6 && strncmp(v, "WEEKLY", 6) == 0)
			r->freq = RRULE_WEEKLY;
		else {
			snprintf(why, whylen,
				 "FREQ=%.*s is not supported (YEARLY, MONTHLY or WEEKLY)",
				 (int)(vlen > 20 ? 20 : vlen), v);
			return -EINVAL;
		}
		return 0;
	}
	if (strcmp(name, "INTERVAL") == 0) {
		if (parse_bounded(v, vlen, 1, 1000, &r->interval) < 0) {
			snprintf(why, whylen, "INTERVAL must be a number from 1 to 1000");
			return -EINVAL;
		}
		return 0;
	}
	if (strcmp(name, "COUNT") == 0) {
		if (parse_bounded(v, vlen, 1, RRULE_COUNT_MAX, count) < 0) {
			snprintf(why, whylen, "COUNT must be a number from 1 to %d",
				 RRULE_COUNT_MAX);
			return -EINVAL;
		}
		return 0;
	}
	if (strcmp(name, "UNTIL") == 0) {
		if (parse_until(v, vlen, &r->until) < 0) {
			snprintf(why, whylen, "UNTIL=%.*s is not a date YYYYMMDD",
				 (int)(vlen > 20 ? 20 : vlen), v);
			return -EINVAL;
		}
		return 0;
	}
	if (strcmp(name, "WKST") == 0) {
		if (vlen == 2 && strncmp(v, "MO", 2) == 0)
			return 0;
		snprintf(why, whylen, "only WKST=MO is supported");
		return -EINVAL;
	}
	if (strcmp(name, "BYMONTH") == 0 || strcmp(name, "BYMONTHDAY") == 0 ||
	    strcmp(name, "BYDAY") == 0) {
		if (strcmp(name, "BYMONTH") == 0)
			*bymonth = true;
		return parse_list(r, name, v, vlen, why, whylen);
	}
	snprintf(why, whylen, "%s is not supported (FREQ, INTERVAL, COUNT, UNTIL, "
		 "BYMONTH, BYMONTHDAY, BYDAY are)", name);
	return -EINVAL;
}

/* Combinations RFC 5545 forbids or this subset does not give a meaning. */
static int check_combination(const struct rrule *r, int count, char *why,
			     size_t whylen)
{
	if (count > 0 && r->until != RRULE_UNTIL_NONE) {
		snprintf(why, whylen, "COUNT and UNTIL together (RFC 5545 allows one)");
		return -EINVAL;
	}
	if (r->freq == RRULE_WEEKLY && (r->monthdays | r->monthdays_from_end) != 0) {
		snprintf(why, whylen, "BYMONTHDAY with FREQ=WEEKLY");
		return -EINVAL;
	}
	for (int i = 0; i < r->nbyday; i++) {
		if (r->byday[i].ordinal != 0 &&
		    (r->freq == RRULE_WEEKLY ||
		     (r->byday_in_month && (r->byday[i].ordinal > 5 ||
					    r->byday[i].ordinal < -5)))) {
			snprintf(why, whylen, "BYDAY=%d%s cannot occur with this FREQ/BYMONTH",
				 r->byday[i].ordinal, weekday_codes[r->byday[i].weekday]);
			return -EINVAL;
		}
	}
	return 0;
}

int rrule_parse(const char *value, int64_t start, int span, struct rrule *ret,
		char *why, size_t whylen)
{
	struct rrule r = { .interval = 1, .start = start, .until = RRULE_UNTIL_NONE,
			   .span = span };
	const char *p = value;
	bool freq_seen = false, bymonth = false;
	int count = 0, start_day;

	tz_civil_from_days(start, &r.start_year, &r.start_month, &start_day);

	while (*p) {
		size_t len = strcspn(p, ";");

		if (len > 0 && parse_part(&r, p, len, &count, &freq_seen, &bymonth,
					  why, whylen) < 0)
			return -EINVAL;
		p += len;
		if (*p == ';')
			p++;
	}
	if (!freq_seen) {
		snprintf(why, whylen, "an RRULE without FREQ");
		return -EINVAL;
	}
	take_defaults(&r, bymonth);
	if (check_combination(&r, count, why, whylen) < 0)
		return -EINVAL;
	if (r.until < r.start) {
		snprintf(why, whylen, "UNTIL is before DTSTART");
		return -EINVAL;
	}
	/* RFC 5545 leaves a DTSTART outside its rule undefined: refuse it. */
	if (!pattern_matches(&r, start)) {
		snprintf(why, whylen,
			 "DTSTART is not an occurrence of its RRULE (give the first holiday)");
		return -EINVAL;
	}
	if (count > 0 && count_to_until(&r, count, why, whylen) < 0)
		return -EINVAL;
	*ret = r;
	return 0;
}
