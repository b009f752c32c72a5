/*
 * Time zones for business calendars, read from the system's TZif files
 * (RFC 8536, /usr/share/zoneinfo), and civil date arithmetic.
 *
 * Why not localtime_r() with setenv("TZ")?  glibc has no per-zone API: the
 * zone is process-wide state that every thread (libcurl, SQLite, the log)
 * may read, so switching it per contract would race.  A zone here is an
 * immutable value: a sorted table of UTC instants and the UTC offset that
 * starts at each, so any thread converts with a binary search and no lock.
 * Times beyond the file's last transition follow its POSIX TZ footer
 * ("CET-1CEST,M3.5.0,M10.5.0/3"), expanded into the table up to
 * TZ_EXPAND_UNTIL_YEAR at load time.
 */
#ifndef TOCSIN_TZ_H
#define TOCSIN_TZ_H

#include <stddef.h>
#include <stdbool.h>
#include <stdint.h>

#define TZ_DIR "/usr/share/zoneinfo"
#define TZ_NAME_MAX 128
#define TZ_FILE_MAX (256 * 1024)
#define TZ_TRANSITIONS_MAX 4096
#define TZ_EXPAND_UNTIL_YEAR 2200

struct tz_zone {
	char name[TZ_NAME_MAX];
	int32_t first_offset; /* seconds east of UTC before the first transition */
	size_t n;
	int64_t *at;	 /* UTC seconds, increasing */
	int32_t *offset; /* offset in force from at[i] on */
};

/*
 * Load the zone called name ("Europe/Berlin", "UTC") from dir (NULL: TZ_DIR).
 * 0 and *ret (free with tz_free()), -ENOENT for an unknown zone, -EINVAL
 * for a name that is not a zone name or a file that is not valid TZif;
 * err (may be NULL) then says why.
 */
int tz_load(const char *dir, const char *name, struct tz_zone **ret,
	    char *err, size_t errlen);
/* Parse a TZif image (exported for tests).  Same returns as tz_load(). */
int tz_parse(const char *name, const uint8_t *data, size_t len,
	     struct tz_zone **ret, char *err, size_t errlen);
void tz_free(struct tz_zone *z);

/* The UTC offset in seconds in force at UTC second t. */
int32_t tz_offset_at(const struct tz_zone *z, int64_t t);
/*
 * The UTC second at which the local wall clock shows local (seconds since
 * 1970-01-01 00:00 local).  A time shown twice (autumn) maps to the
 * first; a time that does not exist (the spring gap) maps to the instant
 * the gap ends.
 */
int64_t tz_local_to_utc(const struct tz_zone *z, int64_t local);

/* The first transition after UTC second t, or INT64_MAX. */
int64_t tz_next_transition(const struct tz_zone *z, int64_t t);

/* Civil dates: days since 1970-01-01 (proleptic Gregorian). */
int64_t tz_days_from_civil(int64_t year, int month, int day);

/* Whether year (proleptic Gregorian) has a 29 February. */
bool tz_is_leap(int64_t year);
void tz_civil_from_days(int64_t days, int64_t *ret_year, int *ret_month,
			int *ret_day);
/* 0 = Sunday ... 6 = Saturday. */
int tz_weekday(int64_t days);

#endif
