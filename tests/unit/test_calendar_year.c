/*
 * The per-year cache of recurring holidays: a calendar answers exactly
 * as if every rule were asked about every day.  Year boundaries (spans
 * from 31 December into January, occurrences that start in one year and
 * end in the next), leap years and 29 February, COUNT and UNTIL ending in
 * another year than they start, ten-year spans, the end of the cached
 * window (2200), several threads filling the cache at once (their
 * answers; the locking itself is for ThreadSanitizer), and random
 * rules and spans compared with a reference that asks the rules
 * (rrule_covers()) day by day and measures the days on the same calendar
 * without its rules.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/config.h"
#include "../../common/util.h"
#include "../../server/calendar.h"
#include "../../server/rrule.h"
#include "../../server/tz.h"

#define H (3600 * 1000LL)
#define DAY(y, m, d) tz_days_from_civil((y), (m), (d))

/* A calendar and the same one without its recurring holidays. */
struct pair {
	struct calendar *full;
	struct calendar *plain;
	char *ics;
};

static char *write_temp(const char *text)
{
	char *path = xstrdup("/tmp/tocsin-test-year-XXXXXX");
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static struct calendar *parse(const char *yaml)
{
	struct calendar *c = NULL;
	struct cfg *cfg;

	assert_int_equal(cfg_load_string("test.yaml", yaml, &cfg), 0);
	if (cfg->nerrors == 0)
		calendar_parse(cfg, cfg_get(cfg, cfg->root, "calendar"), &c);
	for (size_t i = 0; i < cfg->nerrors; i++)
		print_message("error: %s\n", cfg->errors[i]);
	cfg_free(cfg);
	assert_non_null(c);
	return c;
}

/*
 * hours, dated and inline holidays (YAML list items "    - 2030-06-03\n",
 * inline may be "") and an iCalendar body of VEVENTs (may be NULL).
 */
static struct pair pair_of(const char *hours, const char *dated, const char *inline_rules,
			   const char *events)
{
	struct pair p = { 0 };
	char *yaml;

	if (events != NULL) {
		char *text = xasprintf("BEGIN:VCALENDAR\r\n%sEND:VCALENDAR\r\n", events);

		p.ics = write_temp(text);
		free(text);
	}
	yaml = xasprintf("calendar:\n  timezone: Europe/Berlin\n  hours: {%s}\n"
			 "  holidays:\n%s%s%s%s%s",
			 hours, dated, inline_rules, p.ics ? "  holidays_file: " : "",
			 p.ics ? p.ics : "", p.ics ? "\n" : "");
	p.full = parse(yaml);
	free(yaml);
	yaml = xasprintf("calendar:\n  timezone: Europe/Berlin\n  hours: {%s}\n"
			 "  holidays:\n%s", hours, dated);
	p.plain = parse(yaml);
	free(yaml);
	assert_int_equal(p.plain->nrules, 0);
	return p;
}

static void pair_free(struct pair *p)
{
	calendar_free(p->full);
	calendar_free(p->plain);
	if (p->ics) {
		unlink(p->ics);
		free(p->ics);
	}
}

/* The reference: is day inside an occurrence of any rule, asked one by one? */
static bool ref_recurring(const struct calendar *c, int64_t day)
{
	for (size_t i = 0; i < c->nrules; i++)
		if (rrule_covers(&c->rules[i], day))
			return true;
	return false;
}

static int64_t local_midnight_ms(const struct calendar *c, int64_t day)
{
	return tz_local_to_utc(c->zone, day * 86400) * 1000;
}

/*
 * The reference business time of [from, to): day by day, the plain
 * calendar's business time of the part of each day, unless a rule
 * covers the day.
 */
static int64_t ref_business_ms(const struct pair *p, int64_t from, int64_t to)
{
	int64_t total = 0;
	/* A day before from's local day: the zone is less than a day off UTC. */
	int64_t day = (from >= 0 ? from / 86400000 : (from - 86399999) / 86400000) - 1;

	for (; local_midnight_ms(p->plain, day) < to; day++) {
		int64_t a = local_midnight_ms(p->plain, day);
		int64_t b = local_midnight_ms(p->plain, day + 1);

		if (b <= from || ref_recurring(p->full, day))
			continue;
		total += calendar_business_ms(p->plain, a > from ? a : from, b < to ? b : to);
	}
	return total;
}

/* Every day of [d1, d2): the cache, the slow path and the reference agree. */
static void assert_days_agree(const struct pair *p, int64_t d1, int64_t d2)
{
	for (int64_t d = d1; d < d2; d++) {
		bool want = calendar_is_business_day(p->plain, d) && !ref_recurring(p->full, d);

		if (calendar_is_business_day(p->full, d) != want ||
		    calendar_rules_cover(p->full, d) != ref_recurring(p->full, d)) {
			int64_t y;
			int m, dd;

			tz_civil_from_days(d, &y, &m, &dd);
			print_message("day %04d-%02d-%02d: business %d, want %d\n", (int)y, m, dd,
				      calendar_is_business_day(p->full, d), want);
		}
		assert_int_equal(calendar_is_business_day(p->full, d), want);
		assert_int_equal(calendar_rules_cover(p->full, d), ref_recurring(p->full, d));
	}
}

/* [from, to) and what calendar_add_ms() gives for its business time. */
static void assert_span_agrees(const struct pair *p, int64_t from, int64_t to)
{
	int64_t want = ref_business_ms(p, from, to), got = calendar_business_ms(p->full, from, to);
	int64_t due;

	if (got != want)
		print_message("span [%lld, %lld): %lld ms, want %lld\n", (long long)from,
			      (long long)to, (long long)got, (long long)want);
	assert_int_equal(got, want);
	if (want == 0)
		return;
	due = calendar_add_ms(p->full, from, want);
	assert_true(due != CALENDAR_NEVER);
	assert_int_equal(ref_business_ms(p, from, due), want);
	assert_true(ref_business_ms(p, from, due - 1) < want);
}

/* UTC milliseconds of a local wall-clock hour of the calendar's zone. */
static int64_t at(const struct pair *p, int y, int m, int d, int hour)
{
	return tz_local_to_utc(p->full->zone, DAY(y, m, d) * 86400 + hour * 3600) * 1000;
}

#define EVENT(start, rest) \
	"BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:" start "\r\n" rest "END:VEVENT\r\n"

static const char weekdays[] = "mon-fri: 08:00-17:00";
static const char daily[] = "daily: 08:00-17:00";

/*
 * 31 December into 1 January, and a closure from 29 December to
 * 2 January: the part in January comes from an occurrence that starts
 * in the year before; Dec 31 of a leap year is its 366th day.
 */
static void test_year_boundaries(void **state)
{
	struct pair p = pair_of(daily, "    - 2030-06-03\n", "    - {date: \"12-31\", every: year}\n", NULL);
	struct pair q;

	(void)state;
	assert_false(calendar_is_business_day(p.full, DAY(2030, 12, 31)));
	assert_false(calendar_is_business_day(p.full, DAY(2028, 12, 31))); /* day 366 */
	assert_true(calendar_is_business_day(p.full, DAY(2028, 12, 30)));
	assert_true(calendar_is_business_day(p.full, DAY(2029, 1, 1)));
	/* Dec 31 12:00 to Jan 1 12:00: only New Year's morning counts. */
	assert_int_equal(calendar_business_ms(p.full, at(&p, 2030, 12, 31, 12),
					      at(&p, 2031, 1, 1, 12)), 4 * H);
	/* Dec 30 16:00 to Jan 2 09:00: 1h + nothing + 9h + 1h. */
	assert_int_equal(calendar_business_ms(p.full, at(&p, 2030, 12, 30, 16),
					      at(&p, 2031, 1, 2, 9)), 11 * H);
	assert_int_equal(calendar_add_ms(p.full, at(&p, 2030, 12, 30, 16), 2 * H),
			 at(&p, 2031, 1, 1, 9));
	assert_days_agree(&p, DAY(2026, 12, 1), DAY(2033, 2, 1));
	pair_free(&p);

	q = pair_of(daily, "    - 2030-06-03\n", "",
		    EVENT("20261229", "DTEND;VALUE=DATE:20270103\r\nRRULE:FREQ=YEARLY\r\n"));
	assert_true(calendar_is_business_day(q.full, DAY(2026, 12, 28)));
	assert_false(calendar_is_business_day(q.full, DAY(2027, 1, 1)));
	assert_false(calendar_is_business_day(q.full, DAY(2031, 1, 2)));
	assert_true(calendar_is_business_day(q.full, DAY(2031, 1, 3)));
	assert_false(calendar_is_business_day(q.full, DAY(2031, 12, 29)));
	/* Dec 28 to Jan 4: only the 28th and the 3rd are open. */
	assert_int_equal(calendar_business_ms(q.full, at(&q, 2030, 12, 28, 0),
					      at(&q, 2031, 1, 4, 0)), 18 * H);
	assert_int_equal(calendar_add_ms(q.full, at(&q, 2030, 12, 28, 16), 90 * 60 * 1000),
			 at(&q, 2031, 1, 3, 8) + 30 * 60 * 1000);
	assert_int_equal(calendar_add_days(q.full, at(&q, 2030, 12, 28, 10), 1),
			 at(&q, 2031, 1, 3, 10));
	assert_days_agree(&q, DAY(2026, 12, 1), DAY(2032, 2, 1));
	assert_span_agrees(&q, at(&q, 2026, 12, 20, 11), at(&q, 2032, 1, 10, 15));
	/* The end of the cached years: 2201 is asked of the rules. */
	assert_false(calendar_is_business_day(q.full, DAY(2200, 12, 31)));
	assert_false(calendar_is_business_day(q.full, DAY(2201, 1, 2)));
	assert_true(calendar_is_business_day(q.full, DAY(2201, 1, 3)));
	assert_int_equal(calendar_business_ms(q.full, at(&q, 2200, 12, 20, 0),
					      at(&q, 2201, 1, 10, 0)), 16 * 9 * H);
	assert_days_agree(&q, DAY(2199, 12, 1), DAY(2202, 2, 1));
	assert_span_agrees(&q, at(&q, 2199, 12, 30, 9), at(&q, 2202, 1, 2, 13));
	pair_free(&q);
}

/* 29 February only in leap years (2100 is none), the last day of February. */
static void test_leap_years(void **state)
{
	struct pair p = pair_of(daily, "    - 2030-06-03\n", "    - {date: \"02-29\", every: year}\n",
				EVENT("20270228", "RRULE:FREQ=YEARLY;BYMONTH=2;BYMONTHDAY=-1\r\n"));

	(void)state;
	assert_false(calendar_is_business_day(p.full, DAY(2028, 2, 29)));
	assert_true(calendar_is_business_day(p.full, DAY(2028, 2, 28)));
	assert_true(calendar_is_business_day(p.full, DAY(2028, 3, 1)));
	assert_false(calendar_is_business_day(p.full, DAY(2027, 2, 28)));
	assert_false(calendar_is_business_day(p.full, DAY(2100, 2, 28)));
	assert_true(calendar_is_business_day(p.full, DAY(2100, 3, 1)));
	assert_false(calendar_is_business_day(p.full, DAY(2000 + 96, 2, 29)));
	assert_false(calendar_is_business_day(p.full, DAY(1972, 2, 29)));
	assert_true(calendar_is_business_day(p.full, DAY(1972, 2, 28)));
	/* February 2028: 29 days, one a holiday; February 2100: 28, one. */
	assert_int_equal(calendar_business_ms(p.full, at(&p, 2028, 2, 1, 0),
					      at(&p, 2028, 3, 1, 0)), 28 * 9 * H);
	assert_int_equal(calendar_business_ms(p.full, at(&p, 2100, 2, 1, 0),
					      at(&p, 2100, 3, 1, 0)), 27 * 9 * H);
	assert_days_agree(&p, DAY(1970, 1, 1), DAY(1977, 1, 1));
	assert_days_agree(&p, DAY(2095, 1, 1), DAY(2105, 1, 1));
	assert_span_agrees(&p, at(&p, 2027, 2, 27, 12), at(&p, 2029, 3, 2, 12));
	assert_span_agrees(&p, at(&p, 2096, 1, 1, 0), at(&p, 2104, 12, 31, 23));
	pair_free(&p);
}

/* COUNT and UNTIL reached in another year than the rule starts in. */
static void test_count_and_until_across_years(void **state)
{
	struct pair p = pair_of(
		daily, "    - 2030-06-03\n", "",
		EVENT("20261031", "RRULE:FREQ=MONTHLY;BYMONTHDAY=31;COUNT=4\r\n")
		EVENT("20241231", "DTEND;VALUE=DATE:20250103\r\nRRULE:FREQ=YEARLY;UNTIL=20261231\r\n")
		EVENT("20271216", "RRULE:FREQ=WEEKLY;INTERVAL=2;BYDAY=TH;COUNT=3\r\n"));

	(void)state;
	/* 31 Oct, 31 Dec 2026, 31 Jan, 31 Mar 2027; no 31 May. */
	assert_false(calendar_is_business_day(p.full, DAY(2026, 12, 31)));
	assert_false(calendar_is_business_day(p.full, DAY(2027, 1, 31)));
	assert_false(calendar_is_business_day(p.full, DAY(2027, 3, 31)));
	assert_true(calendar_is_business_day(p.full, DAY(2027, 5, 31)));
	/* The last occurrence starts 31 Dec 2026 and ends in 2027. */
	assert_false(calendar_is_business_day(p.full, DAY(2027, 1, 2)));
	assert_true(calendar_is_business_day(p.full, DAY(2027, 1, 3)));
	assert_true(calendar_is_business_day(p.full, DAY(2027, 12, 31)));
	assert_true(calendar_is_business_day(p.full, DAY(2028, 1, 1)));
	/* Thursdays 16 and 30 Dec 2027, 13 Jan 2028, not 27 Jan. */
	assert_false(calendar_is_business_day(p.full, DAY(2027, 12, 30)));
	assert_false(calendar_is_business_day(p.full, DAY(2028, 1, 13)));
	assert_true(calendar_is_business_day(p.full, DAY(2028, 1, 27)));
	assert_true(calendar_is_business_day(p.full, DAY(2028, 1, 6)));
	assert_days_agree(&p, DAY(2024, 1, 1), DAY(2030, 1, 1));
	assert_span_agrees(&p, at(&p, 2024, 12, 30, 10), at(&p, 2028, 2, 1, 10));
	assert_span_agrees(&p, at(&p, 2026, 12, 31, 10), at(&p, 2027, 1, 3, 10));
	pair_free(&p);
}

static const char german[] =
	"    - {date: \"01-01\", every: year}\n"
	"    - {date: \"05-01\", every: year}\n"
	"    - {date: \"10-03\", every: year}\n"
	"    - {date: \"12-25\", every: year}\n"
	"    - {date: \"12-26\", every: year}\n";

/* Ten years at once: the whole-week fast path with the rules of every year. */
static void test_ten_year_spans(void **state)
{
	struct pair p = pair_of(
		weekdays, "    - 2031-12-24\n    - 2030-12-25\n    - 2031-11-27\n", german,
		EVENT("20261126", "RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=4TH\r\n")
		EVENT("20260727", "DTEND;VALUE=DATE:20260801\r\nRRULE:FREQ=YEARLY;BYMONTH=7;BYDAY=-1MO\r\n")
		EVENT("20260105", "RRULE:FREQ=MONTHLY;INTERVAL=3;BYDAY=1MO\r\n"
				  "EXDATE;VALUE=DATE:20310106\r\n"));
	int64_t from = at(&p, 2026, 3, 15, 10), to = at(&p, 2036, 3, 15, 10), sum = 0;

	(void)state;
	/* Dated holidays that a rule covers too count once. */
	assert_false(calendar_is_business_day(p.full, DAY(2030, 12, 25)));
	assert_int_equal(calendar_business_ms(p.full, at(&p, 2030, 12, 16, 0),
					      at(&p, 2031, 1, 6, 0)), 12 * 9 * H);
	assert_span_agrees(&p, from, to);
	for (int y = 2026; y < 2036; y++)
		sum += calendar_business_ms(p.full, at(&p, y, 3, 15, 10), at(&p, y + 1, 3, 15, 10));
	assert_int_equal(calendar_business_ms(p.full, from, to), sum);
	/* Across the end of the cached years. */
	assert_span_agrees(&p, at(&p, 2195, 6, 1, 12), at(&p, 2205, 6, 1, 12));
	pair_free(&p);
}

struct spans_job {
	const struct calendar *c;
	const int64_t (*spans)[2];
	int n, first;
	int64_t *out;
	pthread_barrier_t *start;
};

static void *spans_thread(void *arg)
{
	struct spans_job *j = arg;

	pthread_barrier_wait(j->start);
	for (int k = 0; k < j->n; k++) {
		int i = (j->first + k) % j->n;

		j->out[i] = calendar_business_ms(j->c, j->spans[i][0], j->spans[i][1]);
	}
	return NULL;
}

/*
 * Threads share a calendar: years nobody asked for yet (the 2100s) are
 * expanded by whichever thread comes first, and every thread sees the
 * same answers as one thread on a calendar of its own.
 *
 * What this checks is those answers, with threads released together on
 * years not yet expanded.  It does not show that year_get() needs its
 * lock: threads expanding one year at once OR the same bits into it, so
 * the answers come out right nearly always without it, and the race in
 * between is what ThreadSanitizer (-fsanitize=thread, not one of the
 * Makefile's builds) would report on this test, not an assertion here.
 */
static void test_threads_share_the_cache(void **state)
{
	enum { THREADS = 4, SPANS = 60 };
	struct pair p = pair_of(weekdays, "    - 2150-06-03\n", german,
				EVENT("20261126", "RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=4TH\r\n"));
	struct pair q = pair_of(weekdays, "    - 2150-06-03\n", german,
				EVENT("20261126", "RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=4TH\r\n"));
	int64_t spans[SPANS][2], want[SPANS], out[THREADS][SPANS];
	struct spans_job jobs[THREADS];
	pthread_t tid[THREADS];
	pthread_barrier_t start;
	unsigned seed = 99;

	(void)state;
	for (int i = 0; i < SPANS; i++) {
		spans[i][0] = at(&p, 2100 + rand_r(&seed) % 95, 1, 1, 0) +
			      (int64_t)(rand_r(&seed) % (365 * 24)) * H;
		spans[i][1] = spans[i][0] + (int64_t)(rand_r(&seed) % (5 * 365 * 24)) * H;
	}
	pthread_barrier_init(&start, NULL, THREADS);
	for (int t = 0; t < THREADS; t++) {
		jobs[t] = (struct spans_job){ p.full, (const int64_t(*)[2])spans, SPANS,
					      t * SPANS / THREADS, out[t], &start };
		assert_int_equal(pthread_create(&tid[t], NULL, spans_thread, &jobs[t]), 0);
	}
	for (int t = 0; t < THREADS; t++)
		pthread_join(tid[t], NULL);
	pthread_barrier_destroy(&start);
	for (int i = 0; i < SPANS; i++) {
		want[i] = ref_business_ms(&q, spans[i][0], spans[i][1]);
		for (int t = 0; t < THREADS; t++)
			assert_int_equal(out[t][i], want[i]);
	}
	pair_free(&p);
	pair_free(&q);
}

static const char *const weekday_codes[7] = { "SU", "MO", "TU", "WE", "TH", "FR", "SA" };

static int64_t random_day(unsigned *seed)
{
	switch (rand_r(seed) % 4) {
	case 0:
		return DAY(1970, 1, 1) + rand_r(seed) % (DAY(2205, 1, 1) - DAY(1970, 1, 1));
	case 1:
		return DAY(2190, 1, 1) + rand_r(seed) % (15 * 366);
	default:
		return DAY(2015, 1, 1) + rand_r(seed) % (30 * 366);
	}
}

/* The iCalendar DATE of day. */
static void ical_date(int64_t day, char *buf, size_t len)
{
	int64_t y;
	int m, d;

	tz_civil_from_days(day, &y, &m, &d);
	snprintf(buf, len, "%04d%02d%02d", (int)y, m, d);
}

/*
 * A random RRULE of the subset whose DTSTART is one of its occurrences
 * (its parts are taken from DTSTART), as a VEVENT appended to buf;
 * returns DTSTART.
 */
static int64_t random_event(unsigned *seed, char *buf, size_t cap)
{
	for (;;) {
		int64_t start = random_day(seed), y;
		int span = rand_r(seed) % 8 == 0 ? 1 + rand_r(seed) % 31 : 1 + rand_r(seed) % 3;
		int m, d, wd = tz_weekday(start), dim, doy, ylen, n = 0;
		char rule[256], date[16], end[16], exdate[16], exline[64] = "", why[200];
		const char *w = weekday_codes[wd];
		struct rrule r;

		tz_civil_from_days(start, &y, &m, &d);
		dim = (int)(m == 12 ? DAY(y + 1, 1, 1) - DAY(y, 12, 1) : DAY(y, m + 1, 1) - DAY(y, m, 1));
		doy = (int)(start - DAY(y, 1, 1)) + 1;
		ylen = (int)(DAY(y + 1, 1, 1) - DAY(y, 1, 1));
		switch (rand_r(seed) % 9) {
		case 0:
			n = snprintf(rule, sizeof(rule),
				     "FREQ=YEARLY");
			break;
		case 1:
			n = snprintf(rule, sizeof(rule),
				     "FREQ=YEARLY;BYMONTH=%d;BYDAY=%d%s", m, (d - 1) / 7 + 1, w);
			break;
		case 2:
			n = snprintf(rule, sizeof(rule),
				     "FREQ=YEARLY;BYMONTH=%d;BYDAY=-%d%s", m, (dim - d) / 7 + 1, w);
			break;
		case 3:
			n = snprintf(rule, sizeof(rule),
				     "FREQ=YEARLY;BYDAY=%d%s", (doy - 1) / 7 + 1, w);
			break;
		case 4:
			n = snprintf(rule, sizeof(rule),
				     "FREQ=YEARLY;BYDAY=-%d%s", (ylen - doy) / 7 + 1, w);
			break;
		case 5:
			n = snprintf(rule, sizeof(rule),
				     "FREQ=MONTHLY;BYMONTHDAY=%d", d);
			break;
		case 6:
			n = snprintf(rule, sizeof(rule),
				     "FREQ=MONTHLY;BYMONTHDAY=-%d", dim - d + 1);
			break;
		case 7:
			n = snprintf(rule, sizeof(rule),
				     "FREQ=MONTHLY;BYDAY=%d%s", (d - 1) / 7 + 1, w);
			break;
		default:
			n = snprintf(rule, sizeof(rule),
				     "FREQ=WEEKLY;BYDAY=%s,%s", w, weekday_codes[rand_r(seed) % 7]);
			break;
		}
		if (rand_r(seed) % 3 == 0)
			n += snprintf(rule + n, sizeof(rule) - (size_t)n, ";INTERVAL=%d", 2 + rand_r(seed) % 3);
		if (rand_r(seed) % 3 == 0) {
			n += snprintf(rule + n, sizeof(rule) - (size_t)n, ";COUNT=%d", 1 + rand_r(seed) % 40);
		} else if (rand_r(seed) % 2 == 0) {
			ical_date(start + rand_r(seed) % (20 * 366), date, sizeof(date));
			n += snprintf(rule + n, sizeof(rule) - (size_t)n, ";UNTIL=%s", date);
		}
		if (rrule_parse(rule, start, span, &r, why, sizeof(why)) < 0)
			continue; /* COUNT not reached within 400 years, ... */
		rrule_clear(&r);
		ical_date(start, date, sizeof(date));
		ical_date(start + span, end, sizeof(end));
		ical_date(start + 7 * (rand_r(seed) % 60), exdate, sizeof(exdate));
		if (rand_r(seed) % 3 == 0)
			snprintf(exline, sizeof(exline), "EXDATE;VALUE=DATE:%s\r\n", exdate);
		n = (int)strlen(buf);
		snprintf(buf + n, cap - (size_t)n,
			 "BEGIN:VEVENT\r\nDTSTART;VALUE=DATE:%s\r\nDTEND;VALUE=DATE:%s\r\n"
			 "RRULE:%s\r\n%sEND:VEVENT\r\n", date, end, rule, exline);
		return start;
	}
}

/* A random span mostly around now, some at the ends of the cached years. */
static void random_span(const struct pair *p, unsigned *seed, int64_t *ret_from, int64_t *ret_to)
{
	int64_t day = random_day(seed);
	int64_t len = rand_r(seed) % 10 == 0 ? 3652 : rand_r(seed) % 800;

	*ret_from = local_midnight_ms(p->plain, day) + (int64_t)(rand_r(seed) % 86400) * 1000;
	*ret_to = *ret_from + len * 86400000 + (int64_t)(rand_r(seed) % 86400) * 1000;
}

/*
 * Random calendars of random rules (multi-day, COUNT, UNTIL, EXDATE,
 * intervals, ordinals in the month and the year) and dated holidays:
 * every day, and random spans (also ten years, also across 2200),
 * agree with the reference.
 */
static void test_random_rules_agree_with_reference(void **state)
{
	static const char *const hours[] = { "mon-fri: 08:00-17:00", "daily: 00:00-24:00",
					     "mon-fri: \"08:00-12:00, 13:00-17:00\", sat: 09:00-13:00" };
	unsigned seed = 20261202;

	(void)state;
	for (int round = 0; round < 40; round++) {
		size_t cap = 16384;
		char *events = xcalloc(1, cap), dated[128];
		int nrules = 1 + rand_r(&seed) % 8;
		int64_t days[2], y;
		int m, d, n = 0;
		struct pair p;

		/* Dated holidays: a random day and one a rule covers as well. */
		days[0] = random_day(&seed);
		for (int i = 0; i < nrules; i++)
			days[1] = random_event(&seed, events, cap);
		for (int i = 0; i < 2; i++) {
			tz_civil_from_days(days[i], &y, &m, &d);
			n += snprintf(dated + n, sizeof(dated) - (size_t)n, "    - %04d-%02d-%02d\n",
				      (int)y, m, d);
		}
		p = pair_of(hours[round % 3], dated,
			    round % 2 ? "    - {date: \"12-31\", every: year}\n" : "", events);
		assert_days_agree(&p, DAY(1970, 1, 1), DAY(1971, 3, 1));
		assert_days_agree(&p, DAY(2025, 11, 1), DAY(2028, 2, 1));
		assert_days_agree(&p, DAY(2199, 11, 1), DAY(2201, 3, 1));
		for (int i = 0; i < 100; i++) {
			int64_t day = random_day(&seed);

			assert_days_agree(&p, day, day + 1);
		}
		for (int i = 0; i < 12; i++) {
			int64_t from, to;

			random_span(&p, &seed, &from, &to);
			assert_span_agrees(&p, from, to);
		}
		pair_free(&p);
		free(events);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_year_boundaries),
		cmocka_unit_test(test_leap_years),
		cmocka_unit_test(test_count_and_until_across_years),
		cmocka_unit_test(test_ten_year_spans),
		cmocka_unit_test(test_threads_share_the_cache),
		cmocka_unit_test(test_random_rules_agree_with_reference),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
