/*
 * Time zones from the real TZif files and business-calendar arithmetic:
 * weekends, holidays, Mon-Sat contracts, both DST changes of
 * Europe/Berlin, tickets opened outside business hours, pauses across
 * nights and outside hours, and configuration errors with their place.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/config.h"
#include "../../common/util.h"
#include "../../server/calendar.h"
#include "../../server/tz.h"

#define H (3600 * 1000LL)
#define MIN (60 * 1000LL)

/* UTC milliseconds of a local Berlin wall-clock time given as RFC 3339. */
static int64_t at(const char *rfc3339)
{
	int64_t ms;

	assert_int_equal(time_parse_rfc3339(rfc3339, &ms), 0);
	return ms;
}

static struct tz_zone *berlin(void)
{
	struct tz_zone *z;
	char err[256];

	assert_int_equal(tz_load(NULL, "Europe/Berlin", &z, err, sizeof(err)), 0);
	return z;
}

static void test_berlin_offsets(void **state)
{
	struct tz_zone *z = berlin();

	(void)state;
	/* Spring: 2026-03-29 01:00 UTC, 02:00 CET becomes 03:00 CEST. */
	assert_int_equal(tz_offset_at(z, at("2026-03-29T00:59:59Z") / 1000), 3600);
	assert_int_equal(tz_offset_at(z, at("2026-03-29T01:00:00Z") / 1000), 7200);
	/* Autumn: 2026-10-25 01:00 UTC, 03:00 CEST becomes 02:00 CET. */
	assert_int_equal(tz_offset_at(z, at("2026-10-25T00:59:59Z") / 1000), 7200);
	assert_int_equal(tz_offset_at(z, at("2026-10-25T01:00:00Z") / 1000), 3600);
	/* Beyond the file's table (2037): the footer rule, expanded. */
	assert_int_equal(tz_offset_at(z, at("2100-07-01T12:00:00Z") / 1000), 7200);
	assert_int_equal(tz_offset_at(z, at("2100-12-01T12:00:00Z") / 1000), 3600);
	assert_int_equal(tz_offset_at(z, at("2099-03-29T00:59:59Z") / 1000), 3600);
	assert_int_equal(tz_offset_at(z, at("2099-03-29T01:00:00Z") / 1000), 7200);
	tz_free(z);
}

static void test_local_to_utc(void **state)
{
	struct tz_zone *z = berlin();
	int64_t local;

	(void)state;
	/* An ordinary winter time. */
	local = tz_days_from_civil(2026, 11, 20) * 86400 + 8 * 3600;
	assert_int_equal(tz_local_to_utc(z, local) * 1000, at("2026-11-20T07:00:00Z"));
	/* 02:30 does not exist on 2026-03-29: the gap ends at 01:00 UTC. */
	local = tz_days_from_civil(2026, 3, 29) * 86400 + 2 * 3600 + 1800;
	assert_int_equal(tz_local_to_utc(z, local) * 1000, at("2026-03-29T01:00:00Z"));
	/* 02:30 happens twice on 2026-10-25: the first one, in CEST. */
	local = tz_days_from_civil(2026, 10, 25) * 86400 + 2 * 3600 + 1800;
	assert_int_equal(tz_local_to_utc(z, local) * 1000, at("2026-10-25T00:30:00Z"));
	tz_free(z);
}

static void test_zone_errors(void **state)
{
	struct tz_zone *z = NULL;
	char err[256];
	static const uint8_t junk[] = "TZif2 but not really";

	(void)state;
	assert_int_equal(tz_load(NULL, "Europe/Atlantis", &z, err, sizeof(err)), -ENOENT);
	assert_non_null(strstr(err, "unknown time zone 'Europe/Atlantis'"));
	assert_int_equal(tz_load(NULL, "../../etc/passwd", &z, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, "is not a time zone name"));
	assert_int_equal(tz_parse("junk", junk, sizeof(junk), &z, err, sizeof(err)), -EINVAL);
	assert_null(z);
	/* UTC has no transitions at all. */
	assert_int_equal(tz_load(NULL, "UTC", &z, err, sizeof(err)), 0);
	assert_int_equal(tz_offset_at(z, 0), 0);
	assert_int_equal(tz_offset_at(z, at("2026-07-01T00:00:00Z") / 1000), 0);
	tz_free(z);
}

static void test_civil_dates(void **state)
{
	int64_t y;
	int m, d;

	(void)state;
	assert_int_equal(tz_days_from_civil(1970, 1, 1), 0);
	assert_int_equal(tz_weekday(tz_days_from_civil(2026, 12, 1)), 2); /* Tuesday */
	tz_civil_from_days(tz_days_from_civil(2028, 2, 29), &y, &m, &d);
	assert_int_equal(y, 2028);
	assert_int_equal(m, 2);
	assert_int_equal(d, 29);
}

/* Parse a calendar from YAML; NULL when it has errors (left in *ret_cfg). */
static struct calendar *calendar_from(const char *yaml, struct cfg **ret_cfg)
{
	struct calendar *c = NULL;
	struct cfg *cfg;

	assert_int_equal(cfg_load_string("test.yaml", yaml, &cfg), 0);
	if (cfg->nerrors == 0 &&
	    calendar_parse(cfg, cfg_get(cfg, cfg->root, "calendar"), &c) < 0)
		c = NULL;
	if (ret_cfg)
		*ret_cfg = cfg;
	else
		cfg_free(cfg);
	return c;
}

static const char maintenance[] =
	"calendar:\n"
	"  timezone: Europe/Berlin\n"
	"  hours:\n"
	"    mon-fri: 08:00-17:00\n"
	"  holidays: [2026-12-25, 2026-12-26, 2027-01-01]\n";

static const char standard[] =
	"calendar:\n"
	"  timezone: Europe/Berlin\n"
	"  hours:\n"
	"    mon-fri: 08:00-12:00, 13:00-17:00\n"
	"    sat: 09:00-13:00\n";

static const char always[] =
	"calendar:\n"
	"  timezone: Europe/Berlin\n"
	"  hours:\n"
	"    daily: 00:00-24:00\n";

static void test_weekend_and_outside_hours(void **state)
{
	struct calendar *c = calendar_from(maintenance, NULL);

	(void)state;
	assert_non_null(c);
	/* Friday 16:00 CET plus 9 business hours: Monday 16:00. */
	assert_int_equal(calendar_add_ms(c, at("2026-11-20T16:00:00+01:00"), 9 * H),
			 at("2026-11-23T16:00:00+01:00"));
	/* Opened on Saturday: the clock starts on Monday at 08:00. */
	assert_int_equal(calendar_add_ms(c, at("2026-11-21T10:00:00+01:00"), 1 * H),
			 at("2026-11-23T09:00:00+01:00"));
	/* Opened at 06:00 on a Tuesday: nothing counts before 08:00. */
	assert_int_equal(calendar_business_ms(c, at("2026-11-24T06:00:00+01:00"),
					      at("2026-11-24T08:30:00+01:00")),
			 30 * MIN);
	/* A whole weekend is worth nothing. */
	assert_int_equal(calendar_business_ms(c, at("2026-11-20T17:00:00+01:00"),
					      at("2026-11-23T08:00:00+01:00")),
			 0);
	/* A full week is 45 hours. */
	assert_int_equal(calendar_business_ms(c, at("2026-11-16T00:00:00+01:00"),
					      at("2026-11-23T00:00:00+01:00")),
			 45 * H);
	calendar_free(c);
}

static void test_holidays(void **state)
{
	struct calendar *c = calendar_from(maintenance, NULL);

	(void)state;
	assert_non_null(c);
	assert_false(calendar_is_business_day(c, tz_days_from_civil(2026, 12, 25)));
	assert_true(calendar_is_business_day(c, tz_days_from_civil(2026, 12, 24)));
	/* Thursday 24 Dec 16:00 + 9h: 1h, then Christmas and the weekend. */
	assert_int_equal(calendar_add_ms(c, at("2026-12-24T16:00:00+01:00"), 9 * H),
			 at("2026-12-28T16:00:00+01:00"));
	/* New Year's Day (a Friday) is skipped too. */
	assert_int_equal(calendar_add_days(c, at("2026-12-31T10:00:00+01:00"), 1),
			 at("2027-01-04T10:00:00+01:00"));
	calendar_free(c);
}

static void test_mon_sat_contract(void **state)
{
	struct calendar *c = calendar_from(standard, NULL);

	(void)state;
	assert_non_null(c);
	/* Friday 16:00 + 3h: 1h on Friday, 2h on Saturday morning. */
	assert_int_equal(calendar_add_ms(c, at("2026-11-20T16:00:00+01:00"), 3 * H),
			 at("2026-11-21T11:00:00+01:00"));
	/* The lunch break does not count. */
	assert_int_equal(calendar_business_ms(c, at("2026-11-23T11:00:00+01:00"),
					      at("2026-11-23T14:00:00+01:00")),
			 2 * H);
	/* Three business days from Thursday 15:00: Fri, Sat, Mon 15:00. */
	assert_int_equal(calendar_add_days(c, at("2026-11-19T15:00:00+01:00"), 3),
			 at("2026-11-23T15:00:00+01:00"));
	/* From Wednesday 15:00 the third day is a Saturday closing at 13:00. */
	assert_int_equal(calendar_add_days(c, at("2026-11-18T15:00:00+01:00"), 3),
			 at("2026-11-21T13:00:00+01:00"));
	/* Sunday counts for nothing, Saturday for 4 hours. */
	assert_int_equal(calendar_business_ms(c, at("2026-11-21T00:00:00+01:00"),
					      at("2026-11-23T00:00:00+01:00")),
			 4 * H);
	calendar_free(c);
}

static void test_dst_changes(void **state)
{
	struct calendar *m = calendar_from(maintenance, NULL);
	struct calendar *a = calendar_from(always, NULL);

	(void)state;
	assert_non_null(m);
	assert_non_null(a);
	/* Last Sunday of March: Fri 12:00 CET to Mon 12:00 CEST is 9h. */
	assert_int_equal(calendar_business_ms(m, at("2026-03-27T12:00:00+01:00"),
					      at("2026-03-30T12:00:00+02:00")),
			 9 * H);
	assert_int_equal(calendar_add_ms(m, at("2026-03-27T12:00:00+01:00"), 9 * H),
			 at("2026-03-30T12:00:00+02:00"));
	/* Last Sunday of October, the other way round. */
	assert_int_equal(calendar_add_ms(m, at("2026-10-23T12:00:00+02:00"), 9 * H),
			 at("2026-10-26T12:00:00+01:00"));
	/* Round the clock: the spring Sunday has 23 hours, the autumn one 25. */
	assert_int_equal(calendar_business_ms(a, at("2026-03-29T00:00:00+01:00"),
					      at("2026-03-30T00:00:00+02:00")),
			 23 * H);
	assert_int_equal(calendar_business_ms(a, at("2026-10-25T00:00:00+02:00"),
					      at("2026-10-26T00:00:00+01:00")),
			 25 * H);
	/* One business day from Saturday before the change: Monday 08:00 CEST
	 * is the first instant, so the deadline is Tuesday 08:00 CEST. */
	assert_int_equal(calendar_add_days(m, at("2026-03-28T10:00:00+01:00"), 1),
			 at("2026-03-31T08:00:00+02:00"));
	calendar_free(m);
	calendar_free(a);
}

static void test_pauses(void **state)
{
	struct calendar *c = calendar_from(maintenance, NULL);

	(void)state;
	assert_non_null(c);
	/* A pause across the night: Mon 16:00 to Tue 10:00 is 1h + 2h. */
	assert_int_equal(calendar_business_ms(c, at("2026-11-23T16:00:00+01:00"),
					      at("2026-11-24T10:00:00+01:00")),
			 3 * H);
	/* A pause that starts and ends outside hours costs nothing. */
	assert_int_equal(calendar_business_ms(c, at("2026-11-23T20:00:00+01:00"),
					      at("2026-11-24T07:00:00+01:00")),
			 0);
	/* Adding zero is the identity, also outside hours. */
	assert_int_equal(calendar_add_ms(c, at("2026-11-22T03:00:00+01:00"), 0),
			 at("2026-11-22T03:00:00+01:00"));
	calendar_free(c);
}

static void assert_config_error(const char *yaml, const char *expected)
{
	struct cfg *cfg;
	struct calendar *c = calendar_from(yaml, &cfg);
	bool found = false;

	assert_null(c);
	for (size_t i = 0; i < cfg->nerrors; i++)
		if (strstr(cfg->errors[i], expected) != NULL)
			found = true;
	if (!found)
		for (size_t i = 0; i < cfg->nerrors; i++)
			print_message("error: %s\n", cfg->errors[i]);
	assert_true(found);
	cfg_free(cfg);
}

static void test_config_errors(void **state)
{
	(void)state;
	assert_config_error("calendar:\n  timezone: Europe/Atlantis\n"
			    "  hours:\n    mon: 08:00-17:00\n",
			    "test.yaml:2:13: calendar.timezone: unknown time zone 'Europe/Atlantis'");
	assert_config_error("calendar:\n  timezone: Europe/Berlin\n"
			    "  hours:\n    mon: 17:00-08:00\n",
			    "test.yaml:4:10: calendar.hours.mon: '17:00-08:00' ends before it starts");
	assert_config_error("calendar:\n  timezone: Europe/Berlin\n"
			    "  hours:\n    mon: 08:00-25:00\n",
			    "'08:00-25:00' is not a range like 08:00-17:00");
	assert_config_error("calendar:\n  timezone: Europe/Berlin\n"
			    "  hours:\n    mon-fry: 08:00-17:00\n",
			    "'mon-fry' is not a day or range of days");
	assert_config_error("calendar:\n  timezone: Europe/Berlin\n"
			    "  hours:\n    mon-fri: 08:00-17:00\n    fri: 09:00-10:00\n",
			    "'fri' names a day that an earlier key already gave");
	assert_config_error("calendar:\n  timezone: Europe/Berlin\n"
			    "  hours:\n    mon: 08:00-12:00, 11:00-17:00\n",
			    "overlaps");
	assert_config_error("calendar:\n  timezone: Europe/Berlin\n"
			    "  hours:\n    daily: closed\n",
			    "the calendar has no opening hours at all");
	assert_config_error("calendar:\n  timezone: Europe/Berlin\n"
			    "  hours:\n    mon: 08:00-17:00\n  holidays: [2026-02-30]\n",
			    "test.yaml:5:14: calendar.holidays[0]: '2026-02-30' is not a date");
	assert_config_error("calendar:\n  hours:\n    mon: 08:00-17:00\n",
			    "a calendar needs a timezone");
}

static char *write_temp(const char *text)
{
	char *path = xstrdup("/tmp/tocsin-test-ical-XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static void test_ical(void **state)
{
	char *good = write_temp(
		"BEGIN:VCALENDAR\r\nVERSION:2.0\r\n"
		"BEGIN:VEVENT\r\nSUMMARY:Tag der Deutschen\r\n  Einheit\r\n"
		"DTSTART;VALUE=DATE:20261003\r\nEND:VEVENT\r\n"
		"BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:\r\n 20261225\r\nEND:VEVENT\r\n"
		"BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:20261003\r\nEND:VEVENT\r\n"
		"END:VCALENDAR\r\n");
	char *bad = write_temp("BEGIN:VCALENDAR\nBEGIN:VEVENT\n"
			       "DTSTART;VALUE=DATE:2026-12-25\nEND:VEVENT\n");
	char *timed = write_temp("BEGIN:VEVENT\nDTSTART:20261225T100000Z\nEND:VEVENT\n");
	char *rrule = write_temp("BEGIN:VEVENT\nDTSTART;VALUE=DATE:20261225\n"
				 "RRULE:FREQ=DAILY\nEND:VEVENT\n");
	char err[512], *yaml, *expected;
	struct calendar_holidays h;
	struct calendar *c;

	(void)state;
	assert_int_equal(calendar_read_ical(good, &h, err, sizeof(err)), 0);
	assert_int_equal(h.ndays, 2); /* the repeat is dropped */
	assert_int_equal(h.nrules, 0);
	assert_int_equal(h.days[0], tz_days_from_civil(2026, 10, 3));
	assert_int_equal(h.days[1], tz_days_from_civil(2026, 12, 25));
	calendar_holidays_clear(&h);

	assert_int_equal(calendar_read_ical(bad, &h, err, sizeof(err)), -EINVAL);
	expected = xasprintf("%s:3: '2026-12-25' is not a date", bad);
	assert_non_null(strstr(err, expected));
	free(expected);
	assert_int_equal(calendar_read_ical(timed, &h, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ":2: only all-day events"));
	assert_int_equal(calendar_read_ical(rrule, &h, err, sizeof(err)), -EINVAL);
	assert_non_null(strstr(err, ":3: RRULE: FREQ=DAILY is not supported"));
	assert_int_equal(calendar_read_ical("/nonexistent.ics", &h, err, sizeof(err)),
			 -ENOENT);

	/* Through the configuration, next to dates given inline. */
	yaml = xasprintf("calendar:\n  timezone: Europe/Berlin\n  hours:\n"
			 "    mon-fri: 08:00-17:00\n  holidays: [2026-12-24]\n"
			 "  holidays_file: %s\n", good);
	c = calendar_from(yaml, NULL);
	assert_non_null(c);
	assert_int_equal(c->nholidays, 3);
	assert_false(calendar_is_business_day(c, tz_days_from_civil(2026, 10, 3)));
	calendar_free(c);
	free(yaml);
	yaml = xasprintf("calendar:\n  timezone: Europe/Berlin\n  hours:\n"
			 "    mon-fri: 08:00-17:00\n  holidays_file: %s\n", bad);
	expected = xasprintf("test.yaml:5:18: calendar.holidays_file: %s:3:", bad);
	assert_config_error(yaml, expected);
	free(expected);
	free(yaml);

	unlink(good);
	unlink(bad);
	unlink(timed);
	unlink(rrule);
	free(good);
	free(bad);
	free(timed);
	free(rrule);
}

/* The error calendar_read_ical() gives for text, which must contain want. */
static void assert_ical_error(const char *text, int r, const char *want)
{
	char *path = write_temp(text), err[512];
	struct calendar_holidays h;

	assert_int_equal(calendar_read_ical(path, &h, err, sizeof(err)), r);
	if (strstr(err, want) == NULL)
		print_message("error: %s\n", err);
	assert_non_null(strstr(err, want));
	unlink(path);
	free(path);
}

/*
 * Closures over several days count every day (DTEND is exclusive, as in
 * RFC 5545), DURATION in days or weeks too, a cancelled event is no
 * holiday, and what would change the dates in ways not supported is
 * refused with its line instead of being ignored.
 */
static void test_ical_spans_and_refusals(void **state)
{
	char *spans = write_temp(
		"BEGIN:VCALENDAR\n"
		"BEGIN:VEVENT\nSUMMARY:Betriebsferien\nDTSTART;VALUE=DATE:20261228\n"
		"DTEND;VALUE=DATE:20270102\nEND:VEVENT\n"
		"BEGIN:VEVENT\nDTSTART;VALUE=DATE:20260601\nDURATION:P1W\nEND:VEVENT\n"
		"BEGIN:VEVENT\nDTSTART;VALUE=DATE:20260901\nDURATION:P2D\nEND:VEVENT\n"
		"BEGIN:VEVENT\nDTSTART;VALUE=DATE:20261124\nSTATUS:CANCELLED\nEND:VEVENT\n"
		"BEGIN:VEVENT\nDTSTART;VALUE=DATE:20261125\nSTATUS:CONFIRMED\nEND:VEVENT\n"
		"END:VCALENDAR\n");
	char err[512], *yaml, *big;
	struct calendar_holidays h;
	int64_t *days;
	size_t len = 0;
	struct calendar *c;

	(void)state;
	assert_int_equal(calendar_read_ical(spans, &h, err, sizeof(err)), 0);
	days = h.days;
	assert_int_equal(h.ndays, 5 + 7 + 2 + 1);
	assert_int_equal(days[0], tz_days_from_civil(2026, 6, 1));
	assert_int_equal(days[6], tz_days_from_civil(2026, 6, 7));
	assert_int_equal(days[7], tz_days_from_civil(2026, 9, 1));
	assert_int_equal(days[8], tz_days_from_civil(2026, 9, 2));
	assert_int_equal(days[9], tz_days_from_civil(2026, 11, 25));
	assert_int_equal(days[10], tz_days_from_civil(2026, 12, 28));
	assert_int_equal(days[14], tz_days_from_civil(2027, 1, 1));
	calendar_holidays_clear(&h);
	/* Through a calendar: the whole closure has no business hours. */
	yaml = xasprintf("calendar:\n  timezone: Europe/Berlin\n  hours:\n"
			 "    mon-fri: 08:00-17:00\n  holidays_file: %s\n", spans);
	c = calendar_from(yaml, NULL);
	assert_non_null(c);
	assert_int_equal(calendar_business_ms(c, at("2026-12-28T00:00:00+01:00"),
					      at("2027-01-02T00:00:00+01:00")), 0);
	assert_true(calendar_is_business_day(c, tz_days_from_civil(2026, 11, 24)));
	calendar_free(c);
	free(yaml);

	assert_ical_error("BEGIN:VEVENT\nDTSTART;VALUE=DATE:20261225\n"
			  "RDATE;VALUE=DATE:20261226\nEND:VEVENT\n", -EINVAL,
			  ":3: RDATE is not supported");
	assert_ical_error("BEGIN:VEVENT\nDTSTART;VALUE=DATE:20261225\n"
			  "EXDATE;VALUE=DATE:20261226\nEND:VEVENT\n", -EINVAL,
			  ":3: EXDATE in an event without RRULE");
	assert_ical_error("BEGIN:VEVENT\nDTSTART;VALUE=DATE:20261225\n"
			  "DTEND:20261226T120000Z\nEND:VEVENT\n", -EINVAL,
			  ":3: only all-day events (DTEND;VALUE=DATE:YYYYMMDD)");
	assert_ical_error("BEGIN:VEVENT\nDTSTART;VALUE=DATE:20261225\n"
			  "DTEND;VALUE=DATE:20261225\nEND:VEVENT\n", -EINVAL,
			  ":3: DTEND is not after DTSTART");
	assert_ical_error("BEGIN:VEVENT\nDTSTART;VALUE=DATE:20261225\n"
			  "DURATION:PT4H\nEND:VEVENT\n", -EINVAL,
			  ":3: only whole days or weeks");
	assert_ical_error("BEGIN:VEVENT\nSUMMARY:x\nEND:VEVENT\n", -EINVAL,
			  ":1: an event without DTSTART");
	assert_ical_error("BEGIN:VEVENT\nDTSTART;VALUE=DATE:20261225\n", -EINVAL,
			  ":1: the event has no END:VEVENT");
	assert_ical_error("BEGIN:VEVENT\nDTSTART;VALUE=DATE:19700101\n"
			  "DURATION:P10001D\nEND:VEVENT\n", -EINVAL,
			  ":3: 'P10001D' is not a duration of days");
	assert_ical_error("BEGIN:VEVENT\nDTSTART;VALUE=DATE:19700101\n"
			  "DTEND;VALUE=DATE:19980101\nEND:VEVENT\n", -E2BIG,
			  ":4: more than 10000 holidays");

	/* Inline holidays beyond the limit are an error, not dropped. */
	size_t cap = 20 * (CALENDAR_HOLIDAYS_MAX + 2) + 200;

	big = xcalloc(1, cap);
	len = (size_t)snprintf(big, cap, "calendar:\n  timezone: UTC\n"
				    "  hours: {daily: 08:00-17:00}\n  holidays:\n");
	for (int i = 0; i <= CALENDAR_HOLIDAYS_MAX; i++) {
		int64_t y;
		int m, d;

		tz_civil_from_days(tz_days_from_civil(2000, 1, 1) + i, &y, &m, &d);
		len += (size_t)snprintf(big + len, cap - len, "    - %04d-%02d-%02d\n", (int)y, m, d);
	}
	assert_config_error(big, "calendar.holidays[10000]: more than 10000 holidays");
	free(big);
	unlink(spans);
	free(spans);
}

/*
 * Long spans take a fast path (whole weeks, holidays and clock changes
 * corrected); it must agree with the exact day-by-day path that short
 * spans take, for random spans over two years with both DST changes.
 */
static void fast_path_agrees(const char *yaml)
{
	struct calendar *c = calendar_from(yaml, NULL);
	int64_t base = at("2026-01-01T00:00:00+01:00");
	unsigned seed = 12345;

	assert_non_null(c);
	c->holidays = xcalloc(3, sizeof(*c->holidays));
	c->holidays[0] = tz_days_from_civil(2026, 3, 27);
	c->holidays[1] = tz_days_from_civil(2026, 10, 24);
	c->holidays[2] = tz_days_from_civil(2026, 12, 25);
	c->nholidays = 3;
	for (int i = 0; i < 300; i++) {
		int64_t from = base + (int64_t)(rand_r(&seed) % (700 * 24)) * 3600 * 1000 +
			       (rand_r(&seed) % 3600) * 1000;
		int64_t to = from + (int64_t)(rand_r(&seed) % (60 * 24)) * 3600 * 1000 +
			     rand_r(&seed) % 3600000;
		int64_t sum = 0, want, due;

		for (int64_t t = from; t < to; t += 12 * H)
			sum += calendar_business_ms(c, t, t + 12 * H < to ? t + 12 * H : to);
		assert_int_equal(calendar_business_ms(c, from, to), sum);
		want = sum > 0 ? sum : 1 * H;
		due = calendar_add_ms(c, from, want);
		assert_int_equal(calendar_business_ms(c, from, due), want);
		assert_true(calendar_business_ms(c, from, due - 1) < want);
	}
	calendar_free(c);
}

static void test_fast_path_agrees_with_exact(void **state)
{
	(void)state;
	fast_path_agrees(standard);
	/* Round the clock: here the clock changes fall inside opening hours. */
	fast_path_agrees(always);
}

/* The one rule an .ics text with one recurring event gives. */
static void read_rule(const char *text, struct calendar_holidays *ret)
{
	char *path = write_temp(text), err[512];

	if (calendar_read_ical(path, ret, err, sizeof(err)) < 0)
		print_message("error: %s\n", err);
	assert_int_equal(ret->nrules, 1);
	assert_int_equal(ret->ndays, 0);
	unlink(path);
	free(path);
}

static bool occurs(const struct calendar_holidays *h, int y, int m, int d)
{
	return rrule_covers(&h->rules[0], tz_days_from_civil(y, m, d));
}

#define EVENT(start, rest) \
	"BEGIN:VCALENDAR\r\nBEGIN:VEVENT\r\nDTSTART;VALUE=DATE:" start "\r\n" \
	rest "END:VEVENT\r\nEND:VCALENDAR\r\n"

/* Fixed dates, weekdays counted from the start or end, intervals. */
static void test_rrule_yearly(void **state)
{
	struct calendar_holidays h;

	(void)state;
	read_rule(EVENT("20261225", "SUMMARY:1. Weihnachtstag\r\nRRULE:FREQ=YEARLY\r\n"), &h);
	assert_true(occurs(&h, 2026, 12, 25));
	assert_true(occurs(&h, 2031, 12, 25));
	assert_true(occurs(&h, 2400, 12, 25));
	assert_false(occurs(&h, 2025, 12, 25)); /* before DTSTART */
	assert_false(occurs(&h, 2027, 12, 24));
	assert_false(occurs(&h, 2027, 11, 25));
	calendar_holidays_clear(&h);

	read_rule(EVENT("20261126", "SUMMARY:Thanksgiving\r\n"
			"RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=4TH\r\n"), &h);
	assert_true(occurs(&h, 2027, 11, 25));
	assert_true(occurs(&h, 2028, 11, 23));
	assert_false(occurs(&h, 2027, 11, 18));
	assert_false(occurs(&h, 2028, 11, 30));
	calendar_holidays_clear(&h);

	read_rule(EVENT("20260525", "SUMMARY:Memorial Day\r\n"
			"RRULE:FREQ=YEARLY;BYDAY=-1MO;BYMONTH=5\r\n"), &h);
	assert_true(occurs(&h, 2027, 5, 31));
	assert_true(occurs(&h, 2028, 5, 29));
	assert_false(occurs(&h, 2027, 5, 24));
	assert_false(occurs(&h, 2028, 5, 22));
	calendar_holidays_clear(&h);

	read_rule(EVENT("20261224", "RRULE:FREQ=YEARLY;INTERVAL=2\r\n"), &h);
	assert_true(occurs(&h, 2028, 12, 24));
	assert_false(occurs(&h, 2027, 12, 24));
	calendar_holidays_clear(&h);

	/* Several days each year: 24 to 26 December (DTEND exclusive). */
	read_rule(EVENT("20261224", "DTEND;VALUE=DATE:20261227\r\nRRULE:FREQ=YEARLY\r\n"), &h);
	assert_true(occurs(&h, 2030, 12, 26));
	assert_false(occurs(&h, 2030, 12, 27));
	assert_false(occurs(&h, 2030, 12, 23));
	calendar_holidays_clear(&h);
}

/* COUNT, UNTIL and EXDATE end or thin out a rule; 29 February only in leap years. */
static void test_rrule_ends_and_exceptions(void **state)
{
	struct calendar_holidays h;

	(void)state;
	read_rule(EVENT("20261224", "RRULE:FREQ=YEARLY;COUNT=3\r\n"), &h);
	assert_true(occurs(&h, 2028, 12, 24));
	assert_false(occurs(&h, 2029, 12, 24));
	calendar_holidays_clear(&h);

	read_rule(EVENT("20261224", "RRULE:FREQ=YEARLY;UNTIL=20281224\r\n"), &h);
	assert_true(occurs(&h, 2028, 12, 24));
	assert_false(occurs(&h, 2029, 12, 24));
	calendar_holidays_clear(&h);
	read_rule(EVENT("20261224", "RRULE:FREQ=YEARLY;UNTIL=20281224T235959Z\r\n"), &h);
	assert_true(occurs(&h, 2028, 12, 24));
	assert_false(occurs(&h, 2029, 12, 24));
	calendar_holidays_clear(&h);

	/* An excluded date still counts towards COUNT (RFC 5545). */
	read_rule(EVENT("20261224", "RRULE:FREQ=YEARLY;COUNT=4\r\n"
			"EXDATE;VALUE=DATE:20271224,20291224\r\n"), &h);
	assert_true(occurs(&h, 2026, 12, 24));
	assert_false(occurs(&h, 2027, 12, 24));
	assert_true(occurs(&h, 2028, 12, 24));
	assert_false(occurs(&h, 2029, 12, 24));
	assert_false(occurs(&h, 2030, 12, 24));
	calendar_holidays_clear(&h);

	read_rule(EVENT("20240229", "RRULE:FREQ=YEARLY\r\n"), &h);
	assert_true(occurs(&h, 2028, 2, 29));
	assert_true(occurs(&h, 2400, 2, 29));
	assert_false(occurs(&h, 2025, 2, 28));
	assert_false(occurs(&h, 2025, 3, 1));
	assert_false(occurs(&h, 2100, 3, 1)); /* 2100 is no leap year */
	assert_false(occurs(&h, 2100, 2, 28));
	calendar_holidays_clear(&h);
	read_rule(EVENT("20240229", "RRULE:FREQ=YEARLY;COUNT=3\r\n"), &h);
	assert_true(occurs(&h, 2032, 2, 29));
	assert_false(occurs(&h, 2036, 2, 29));
	calendar_holidays_clear(&h);

	/* The cheap frequencies: first Monday of each month, every other Friday. */
	read_rule(EVENT("20260105", "RRULE:FREQ=MONTHLY;BYDAY=1MO\r\n"), &h);
	assert_true(occurs(&h, 2026, 2, 2));
	assert_false(occurs(&h, 2026, 2, 9));
	calendar_holidays_clear(&h);
	read_rule(EVENT("20260102", "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=FR\r\n"), &h);
	assert_true(occurs(&h, 2026, 1, 16));
	assert_false(occurs(&h, 2026, 1, 9));
	calendar_holidays_clear(&h);
}

/* What the subset does not cover is refused with the line, never ignored. */
static void test_rrule_refusals(void **state)
{
	(void)state;
	assert_ical_error(EVENT("20261224", "SUMMARY:x\r\nRRULE:FREQ=SECONDLY\r\n"),
			  -EINVAL, ":5: RRULE: FREQ=SECONDLY is not supported");
	assert_ical_error(EVENT("20261123", "RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=MO;BYSETPOS=-1\r\n"),
			  -EINVAL, ":4: RRULE: BYSETPOS is not supported");
	assert_ical_error(EVENT("20261224", "RRULE:FREQ=YEARLY;COUNT=2;UNTIL=20301224\r\n"),
			  -EINVAL, ":4: RRULE: COUNT and UNTIL together");
	assert_ical_error(EVENT("20261224", "RRULE:FREQ=YEARLY;INTERVAL=0\r\n"),
			  -EINVAL, ":4: RRULE: INTERVAL must be");
	assert_ical_error(EVENT("20261224", "RRULE:FREQ=YEARLY;BYMONTH=13\r\n"),
			  -EINVAL, ":4: RRULE: BYMONTH: '13' is not a valid value");
	/* Never occurs: 30 February is no DTSTART either. */
	assert_ical_error(EVENT("20261224", "RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=30\r\n"),
			  -EINVAL, ":4: RRULE: DTSTART is not an occurrence");
	/* 10,000 leap days take 40,000 years: the walk stops after 400. */
	assert_ical_error(EVENT("20240229", "RRULE:FREQ=YEARLY;COUNT=10000\r\n"),
			  -EINVAL, ":4: RRULE: COUNT=10000 is not reached within 400 years");
	assert_ical_error(EVENT("20261224", "RRULE:FREQ=WEEKLY;BYDAY=2MO\r\n"),
			  -EINVAL, ":4: RRULE: BYDAY=2MO cannot occur");
	assert_ical_error(EVENT("20261224", "RRULE:FREQ=YEARLY\r\nRDATE;VALUE=DATE:20261231\r\n"),
			  -EINVAL, ":5: RDATE is not supported");
	assert_ical_error(EVENT("20261224", "RECURRENCE-ID;VALUE=DATE:20271224\r\n"),
			  -EINVAL, ":4: RECURRENCE-ID (a changed occurrence) is not supported");
	assert_ical_error(EVENT("20261224", "RRULE:FREQ=YEARLY\r\nEXDATE:20271224T000000Z\r\n"),
			  -EINVAL, ":5: only dates (EXDATE;VALUE=DATE:YYYYMMDD)");
	assert_ical_error(EVENT("20261201", "DTEND;VALUE=DATE:20270102\r\nRRULE:FREQ=YEARLY\r\n"),
			  -EINVAL, ":4: a recurring event may last at most 31 days");
}

/*
 * Recurring holidays in a calendar, from a file and inline: no business
 * hours on them, and long spans (the fast path) agree with day by day.
 */
static void test_rrule_in_calendar(void **state)
{
	char *ics = write_temp(EVENT("20261224", "DTEND;VALUE=DATE:20261227\r\n"
				     "RRULE:FREQ=YEARLY\r\n"));
	char *yaml = xasprintf("calendar:\n  timezone: Europe/Berlin\n  hours:\n"
			       "    mon-fri: 08:00-17:00\n  holidays:\n"
			       "    - {date: \"12-31\", every: year}\n"
			       "    - {date: \"2027-05-01\", every: year}\n"
			       "    - 2030-12-24\n"
			       "  holidays_file: %s\n", ics);
	struct calendar *c = calendar_from(yaml, NULL);
	int64_t from = at("2030-01-01T00:00:00+01:00"), to = at("2032-01-01T00:00:00+01:00");
	int64_t sum = 0;

	(void)state;
	assert_non_null(c);
	assert_int_equal(c->nrules, 3);
	assert_false(calendar_is_business_day(c, tz_days_from_civil(2031, 12, 24)));
	assert_false(calendar_is_business_day(c, tz_days_from_civil(2031, 12, 31)));
	assert_true(calendar_is_business_day(c, tz_days_from_civil(2031, 12, 30)));
	assert_true(calendar_is_business_day(c, tz_days_from_civil(2026, 5, 1)));
	assert_false(calendar_is_business_day(c, tz_days_from_civil(2028, 5, 1)));
	/* Mon 23 Dec 2030 to Fri 27: only Monday and Friday are open. */
	assert_int_equal(calendar_business_ms(c, at("2030-12-23T08:00:00+01:00"),
					      at("2030-12-27T17:00:00+01:00")), 18 * H);
	for (int64_t t = from; t < to; t += 24 * H)
		sum += calendar_business_ms(c, t, t + 24 * H < to ? t + 24 * H : to);
	assert_int_equal(calendar_business_ms(c, from, to), sum);
	/* 2 business hours from Mon 23 Dec 16:00: Fri 27 Dec 09:00. */
	assert_int_equal(calendar_add_ms(c, at("2030-12-23T16:00:00+01:00"), 2 * H),
			 at("2030-12-27T09:00:00+01:00"));
	assert_int_equal(calendar_add_days(c, at("2030-12-23T10:00:00+01:00"), 1),
			 at("2030-12-27T10:00:00+01:00"));
	calendar_free(c);
	free(yaml);
	unlink(ics);
	free(ics);

	assert_config_error("calendar:\n  timezone: UTC\n  hours: {daily: 08:00-17:00}\n"
			    "  holidays:\n    - {date: \"02-30\", every: year}\n",
			    "test.yaml:5:14: calendar.holidays[0].date: '02-30' is not a day of the year");
	assert_config_error("calendar:\n  timezone: UTC\n  hours: {daily: 08:00-17:00}\n"
			    "  holidays:\n    - {date: \"12-24\", every: month}\n",
			    "calendar.holidays[0].every: expected every: year");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_berlin_offsets),
		cmocka_unit_test(test_local_to_utc),
		cmocka_unit_test(test_zone_errors),
		cmocka_unit_test(test_civil_dates),
		cmocka_unit_test(test_weekend_and_outside_hours),
		cmocka_unit_test(test_holidays),
		cmocka_unit_test(test_mon_sat_contract),
		cmocka_unit_test(test_dst_changes),
		cmocka_unit_test(test_pauses),
		cmocka_unit_test(test_config_errors),
		cmocka_unit_test(test_ical),
		cmocka_unit_test(test_ical_spans_and_refusals),
		cmocka_unit_test(test_rrule_yearly),
		cmocka_unit_test(test_rrule_ends_and_exceptions),
		cmocka_unit_test(test_rrule_refusals),
		cmocka_unit_test(test_rrule_in_calendar),
		cmocka_unit_test(test_fast_path_agrees_with_exact),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
