/*
 * Business calendars: opening hours per weekday (several ranges a day),
 * an IANA time zone and public holidays, and the arithmetic SLA clocks
 * need on them: how much business time lies between two instants, and
 * when a given amount of business time has passed.
 *
 * All instants are UTC milliseconds; business time is real elapsed time
 * inside opening hours, so a day on which the clocks change still counts
 * the hours it really had.  A calendar is immutable once parsed and safe
 * to use from any thread: the one thing that changes later is its cache of
 * recurring holidays, filled a year at a time under its own lock.
 */
#ifndef TOCSIN_CALENDAR_H
#define TOCSIN_CALENDAR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rrule.h"
#include "tz.h"

struct cfg;
struct cfg_node;
struct calendar_years;

#define CALENDAR_RANGES_MAX 8
#define CALENDAR_HOLIDAYS_MAX 10000
#define CALENDAR_ICAL_MAX (1024 * 1024)
#define CALENDAR_ICAL_LINE_MAX 4096
/* Recurring holidays (RRULE events, `every:` entries) of one calendar. */
#define CALENDAR_RULES_MAX 500
/* Days one recurring event may last (each occurrence is checked that far back). */
#define CALENDAR_RULE_SPAN_MAX 31
/* How far calendar_add_ms() looks for opening hours before giving up. */
#define CALENDAR_SEARCH_DAYS 3660
/* "Never": the calendar has no business time left within the search. */
#define CALENDAR_NEVER INT64_MAX
/*
 * The years whose recurring holidays are expanded into a bitmap of days,
 * once per year: 231 years of 366 bits (about 14 KiB per calendar that has
 * recurring holidays, none for the others).  Days outside are asked of the
 * rules one by one.
 */
#define CALENDAR_YEARS_FIRST 1970
#define CALENDAR_YEARS_LAST 2200

struct calendar_range {
	int32_t start, end; /* seconds after local midnight; end <= 86400 */
};

struct calendar {
	struct tz_zone *zone;
	struct calendar_range ranges[7][CALENDAR_RANGES_MAX]; /* [0] = Sunday */
	int nranges[7];
	int64_t day_ms[7];  /* nominal business ms per weekday (no clock change) */
	int64_t week_ms;
	int64_t *holidays; /* local day numbers (days since 1970-01-01), sorted */
	size_t nholidays;
	struct rrule *rules; /* recurring holidays, matched day by day */
	size_t nrules;
	int64_t rules_first, rules_last; /* the days any rule can cover */
	int rules_span; /* the longest occurrence, in days */
	struct calendar_years *years; /* the rules per year; NULL without rules */
};

/* What an iCalendar file makes holidays: dates and recurring rules. */
struct calendar_holidays {
	int64_t *days; /* sorted, no repeats */
	size_t ndays;
	struct rrule *rules;
	size_t nrules;
};

/*
 * Parse a calendar mapping (timezone, hours, holidays, holidays_file).
 * 0 and *ret, or -EINVAL after recording every error in cfg with its
 * file:line:column.  A relative holidays_file is taken relative to the
 * configuration file that names it.
 */
int calendar_parse(struct cfg *cfg, const struct cfg_node *node,
		   struct calendar **ret);
void calendar_free(struct calendar *c);

/*
 * Read the all-day events of an iCalendar file: each day from DTSTART
 * (;VALUE=DATE:YYYYMMDD) up to DTEND, which is exclusive (the day after
 * the last), or for DURATION:PnD / PnW, else the one day.  A
 * STATUS:CANCELLED event is no holiday.  An event with an RRULE (the
 * subset rrule.h reads) and its EXDATEs becomes a rule, not dates.  What
 * would change the dates in ways not supported (RDATE, EXRULE,
 * RECURRENCE-ID, timed events, an RRULE outside the subset) is refused
 * rather than ignored.  0 and *ret (the caller owns it: see
 * calendar_holidays_clear()); -errno with "path:line: reason" in err.
 */
int calendar_read_ical(const char *path, struct calendar_holidays *ret,
		       char *err, size_t errlen);
void calendar_holidays_clear(struct calendar_holidays *h);

/*
 * A calendar open round the clock, every day, without holidays (UTC): the
 * clocks of a ticket whose contract is gone and whose customer has no
 * other run on it.  Static: never calendar_free() it.
 */
const struct calendar *calendar_always(void);

/* Business milliseconds in [from_ms, to_ms) (0 when to <= from). */
int64_t calendar_business_ms(const struct calendar *c, int64_t from_ms,
			     int64_t to_ms);
/*
 * The instant at which business_ms of business time after from_ms have
 * passed (from_ms itself for 0), or CALENDAR_NEVER.
 */
int64_t calendar_add_ms(const struct calendar *c, int64_t from_ms,
			int64_t business_ms);
/*
 * "Within n business days": from the first business instant at or after
 * from_ms, the same time of day on the nth following business day, moved
 * into that day's hours (its opening or next range when earlier, its
 * close when later).  CALENDAR_NEVER when there is no such day.
 */
int64_t calendar_add_days(const struct calendar *c, int64_t from_ms, int n);
bool calendar_is_business_day(const struct calendar *c, int64_t day);
/*
 * Is day inside an occurrence of one of the calendar's recurring holidays,
 * asked of every rule (not the per-year cache)?  What days beyond
 * CALENDAR_YEARS_LAST cost; the tests compare the cache with it.
 */
bool calendar_rules_cover(const struct calendar *c, int64_t day);

#endif
