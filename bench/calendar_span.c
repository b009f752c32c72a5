/*
 * What recurring holidays cost the calendar arithmetic of SLA clocks:
 * calendar_business_ms() over one-year and ten-year spans, and
 * calendar_add_ms() of 100 business hours, on the same business calendar
 * (Europe/Berlin, Mon-Fri 08:00-17:00) with five dated holidays only and
 * with the German public holidays as recurring rules besides (eight
 * fixed dates inline, and an iCalendar file with weekday rules and a
 * three-day closure each year).  Also what parsing such a calendar
 * costs, and one with the most recurring holidays allowed.  Prints the
 * figures; asserts nothing about time.
 *
 *   build/rel/bench/calendar_span [CALLS]
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/config.h"
#include "../common/util.h"
#include "../server/calendar.h"
#include "clock.h"

#define HOUR_MS (3600 * 1000LL)
#define DAY_MS (24 * HOUR_MS)

static const char dated[] =
	"calendar:\n"
	"  timezone: Europe/Berlin\n"
	"  hours: {mon-fri: 08:00-17:00}\n"
	"  holidays: [2026-12-24, 2026-12-25, 2026-12-26, 2026-12-31, 2027-01-01]\n";

static const char ics[] =
	"BEGIN:VCALENDAR\r\n"
	"BEGIN:VEVENT\r\nSUMMARY:Thanksgiving\r\nDTSTART;VALUE=DATE:20201126\r\n"
	"RRULE:FREQ=YEARLY;BYMONTH=11;BYDAY=4TH\r\nEND:VEVENT\r\n"
	"BEGIN:VEVENT\r\nSUMMARY:Memorial Day\r\nDTSTART;VALUE=DATE:20200525\r\n"
	"RRULE:FREQ=YEARLY;BYMONTH=5;BYDAY=-1MO\r\nEND:VEVENT\r\n"
	"BEGIN:VEVENT\r\nSUMMARY:Inventur\r\nDTSTART;VALUE=DATE:20200106\r\n"
	"RRULE:FREQ=MONTHLY;INTERVAL=3;BYDAY=1MO\r\nEND:VEVENT\r\n"
	"BEGIN:VEVENT\r\nSUMMARY:Betriebsferien\r\nDTSTART;VALUE=DATE:20200727\r\n"
	"DTEND;VALUE=DATE:20200730\r\nRRULE:FREQ=YEARLY;BYMONTH=7;BYDAY=-1MO\r\n"
	"END:VEVENT\r\n"
	"END:VCALENDAR\r\n";

static struct calendar *load(const char *yaml)
{
	struct calendar *c = NULL;
	struct cfg *cfg;

	if (cfg_load_string("bench.yaml", yaml, &cfg) < 0 || cfg->nerrors > 0 ||
	    calendar_parse(cfg, cfg_get(cfg, cfg->root, "calendar"), &c) < 0) {
		for (size_t i = 0; cfg && i < cfg->nerrors; i++)
			fprintf(stderr, "calendar_span: %s\n", cfg->errors[i]);
		exit(1);
	}
	cfg_free(cfg);
	return c;
}

/* Microseconds per calendar_business_ms() over spans of span_ms. */
static double span_us(const struct calendar *c, int64_t base, int64_t span_ms,
		      int calls, int64_t *ret_sum)
{
	unsigned seed = 7;
	int64_t sum = 0;
	double t0 = bench_cpu_s();

	for (int i = 0; i < calls; i++) {
		int64_t from = base + (int64_t)(rand_r(&seed) % (3 * 365)) * DAY_MS +
			       (int64_t)(rand_r(&seed) % 86400) * 1000;

		sum += calendar_business_ms(c, from, from + span_ms);
	}
	*ret_sum += sum;
	return (bench_cpu_s() - t0) * 1e6 / calls;
}

/* Microseconds per calendar_add_ms() of 100 business hours. */
static double add_us(const struct calendar *c, int64_t base, int calls,
		     int64_t *ret_sum)
{
	unsigned seed = 11;
	int64_t sum = 0;
	double t0 = bench_cpu_s();

	for (int i = 0; i < calls; i++) {
		int64_t from = base + (int64_t)(rand_r(&seed) % (3 * 365)) * DAY_MS +
			       (int64_t)(rand_r(&seed) % 86400) * 1000;

		sum += calendar_add_ms(c, from, 100 * HOUR_MS) - from;
	}
	*ret_sum += sum;
	return (bench_cpu_s() - t0) * 1e6 / calls;
}

/*
 * The most a calendar may have: 500 recurring holidays.  Milliseconds to
 * parse it (which expands the years around now) and for the first
 * ten-year span in the 2100s on it (which expands those ten years).
 */
static void expansion_ms(double *ret_parse, double *ret_first_span)
{
	size_t cap = 64 * CALENDAR_RULES_MAX + 256, len;
	char *yaml = xcalloc(1, cap);
	struct calendar *c;
	int64_t from;
	double t0;

	len = (size_t)snprintf(yaml, cap, "calendar:\n  timezone: Europe/Berlin\n"
			       "  hours: {mon-fri: 08:00-17:00}\n  holidays:\n");
	for (int i = 0; i < CALENDAR_RULES_MAX; i++)
		len += (size_t)snprintf(yaml + len, cap - len,
					"    - {date: \"%02d-%02d\", every: year}\n",
					1 + i % 12, 1 + (i / 12) % 28);
	t0 = bench_cpu_s();
	c = load(yaml);
	*ret_parse = (bench_cpu_s() - t0) * 1e3;
	from = tz_local_to_utc(c->zone, tz_days_from_civil(2150, 1, 1) * 86400) * 1000;
	t0 = bench_cpu_s();
	(void)calendar_business_ms(c, from, from + 3652 * DAY_MS);
	*ret_first_span = (bench_cpu_s() - t0) * 1e3;
	calendar_free(c);
	free(yaml);
}

int main(int argc, char **argv)
{
	int calls = argc > 1 ? atoi(argv[1]) : 20000;
	char path[] = "/tmp/tocsin-bench-ics-XXXXXX";
	int fd = mkstemp(path);
	char *yaml;
	struct calendar *plain, *rules;
	int64_t base, check = 0;
	double t0, parse_ms;
	const int parses = 20;

	if (calls <= 0 || fd < 0 || write(fd, ics, strlen(ics)) != (ssize_t)strlen(ics)) {
		fprintf(stderr, "usage: calendar_span [CALLS > 0] (and a writable /tmp)\n");
		return 1;
	}
	close(fd);
	yaml = xasprintf("calendar:\n"
			 "  timezone: Europe/Berlin\n"
			 "  hours: {mon-fri: 08:00-17:00}\n"
			 "  holidays:\n"
			 "    - 2026-12-24\n    - 2026-12-31\n"
			 "    - {date: \"01-01\", every: year}\n"
			 "    - {date: \"05-01\", every: year}\n"
			 "    - {date: \"10-03\", every: year}\n"
			 "    - {date: \"10-31\", every: year}\n"
			 "    - {date: \"11-01\", every: year}\n"
			 "    - {date: \"12-24\", every: year}\n"
			 "    - {date: \"12-25\", every: year}\n"
			 "    - {date: \"12-26\", every: year}\n"
			 "  holidays_file: %s\n", path);
	plain = load(dated);
	t0 = bench_cpu_s();
	for (int i = 0; i < parses; i++)
		calendar_free(load(yaml));
	parse_ms = (bench_cpu_s() - t0) * 1e3 / parses;
	rules = load(yaml);
	base = tz_local_to_utc(plain->zone, tz_days_from_civil(2026, 1, 1) * 86400) * 1000;

	printf("calendar_span: Europe/Berlin mon-fri 08:00-17:00, %d calls each, "
	       "CPU time per call\n", calls);
	printf("  %zu recurring rules; parsing that calendar: %.3f ms\n",
	       rules->nrules, parse_ms);
	printf("  business_ms, 1-year span:  dated only %8.2f us   with rules %8.2f us\n",
	       span_us(plain, base, 365 * DAY_MS, calls, &check),
	       span_us(rules, base, 365 * DAY_MS, calls, &check));
	printf("  business_ms, 10-year span: dated only %8.2f us   with rules %8.2f us\n",
	       span_us(plain, base, 3652 * DAY_MS, calls / 10 + 1, &check),
	       span_us(rules, base, 3652 * DAY_MS, calls / 10 + 1, &check));
	printf("  add_ms, 100 business hours: dated only %7.2f us   with rules %8.2f us\n",
	       add_us(plain, base, calls, &check), add_us(rules, base, calls, &check));
	expansion_ms(&parse_ms, &t0);
	printf("  %d recurring rules: parsing %.2f ms, first 10-year span in the 2100s %.2f ms\n",
	       CALENDAR_RULES_MAX, parse_ms, t0);
	printf("  (checksum %lld)\n", (long long)check);
	calendar_free(plain);
	calendar_free(rules);
	free(yaml);
	unlink(path);
	return 0;
}
