/*
 * Recurrence rules (RFC 5545 RRULE) of all-day events, the subset that
 * holiday calendars use: FREQ=YEARLY, MONTHLY or WEEKLY with INTERVAL,
 * COUNT or UNTIL, BYMONTH, BYMONTHDAY and BYDAY (with an ordinal such as
 * 4TH or -1MO), and EXDATE.  A rule is never expanded into a list: it
 * answers "does an occurrence start on this day?" in constant time, so
 * a rule without end costs nothing and cannot make us loop or allocate.
 * Days are local day numbers (days since 1970-01-01).
 */
#ifndef TOCSIN_RRULE_H
#define TOCSIN_RRULE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define RRULE_BYDAY_MAX 14
#define RRULE_EXDATES_MAX 1000
#define RRULE_COUNT_MAX 10000
/* COUNT is turned into a last day by walking at most this far. */
#define RRULE_COUNT_SCAN_DAYS 146097 /* one Gregorian cycle, 400 years */
#define RRULE_UNTIL_NONE INT64_MAX

enum rrule_freq { RRULE_YEARLY, RRULE_MONTHLY, RRULE_WEEKLY };

struct rrule_byday {
	int ordinal; /* 0: every such weekday; 1..53 from the start, -1.. from the end */
	int weekday; /* 0 = Sunday */
};

struct rrule {
	enum rrule_freq freq;
	int interval;
	int64_t start;	    /* DTSTART, the first occurrence */
	int64_t start_year; /* its civil date, kept: every day asked needs it */
	int start_month;
	int64_t until;	    /* the last day an occurrence may start on */
	int span;	    /* days each occurrence lasts (DTEND - DTSTART) */
	uint16_t months;    /* bit m for month m (1..12); 0 = every month */
	uint32_t monthdays; /* bit d for day d of the month (1..31) */
	uint32_t monthdays_from_end; /* bit d for day -d */
	bool byday_in_month;	     /* ordinals count in the month, else the year */
	struct rrule_byday byday[RRULE_BYDAY_MAX];
	int nbyday;
	int64_t *exdates; /* sorted, owned */
	size_t nexdates;
};

/*
 * Parse the value of an RRULE ("FREQ=YEARLY;BYMONTH=5;BYDAY=-1MO") of an
 * event starting on day start and lasting span days.  What is not in the
 * subset above (FREQ=DAILY and shorter, BYSETPOS, BYYEARDAY, BYWEEKNO,
 * WKST other than MO, RSCALE...) is refused, as is a DTSTART that is not
 * an occurrence of its own rule.  0 and *ret (without exdates), or
 * -EINVAL with why.
 */
int rrule_parse(const char *value, int64_t start, int span, struct rrule *ret,
		char *why, size_t whylen);
/* A day with its civil date, worked out once for all the rules asked. */
struct rrule_date {
	int64_t day, year;
	int month, mday, weekday;
};

void rrule_date_of(int64_t day, struct rrule_date *ret);
/* Does an occurrence of r start on day (EXDATEs taken out)? */
bool rrule_occurs(const struct rrule *r, int64_t day);
bool rrule_occurs_on(const struct rrule *r, const struct rrule_date *date);
/* Does day fall inside one of r's occurrences (each span days long)? */
bool rrule_covers(const struct rrule *r, int64_t day);
/* The last day r covers, RRULE_UNTIL_NONE when it has no end. */
int64_t rrule_last_day(const struct rrule *r);
void rrule_clear(struct rrule *r);

#endif
