#include "tz.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../common/util.h"

#define TZIF_HEADER_LEN 44
#define TZ_TYPES_MAX 256

static void seterr(char *err, size_t errlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void seterr(char *err, size_t errlen, const char *fmt, ...)
{
	va_list ap;

	if (err == NULL || errlen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(err, errlen, fmt, ap);
	va_end(ap);
}

int64_t tz_days_from_civil(int64_t y, int m, int d)
{
	int64_t era, yoe, doy, doe;

	y -= m <= 2;
	era = (y >= 0 ? y : y - 399) / 400;
	yoe = y - era * 400;
	doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

void tz_civil_from_days(int64_t z, int64_t *ret_year, int *ret_month,
			int *ret_day)
{
	int64_t era, doe, yoe, doy, mp, y;
	int m;

	z += 719468;
	era = (z >= 0 ? z : z - 146096) / 146097;
	doe = z - era * 146097;
	yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
	y = yoe + era * 400;
	doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
	mp = (5 * doy + 2) / 153;
	*ret_day = (int)(doy - (153 * mp + 2) / 5 + 1);
	m = (int)(mp < 10 ? mp + 3 : mp - 9);
	*ret_month = m;
	*ret_year = y + (m <= 2);
}

int tz_weekday(int64_t days)
{
	/* 1970-01-01 was a Thursday. */
	return (int)(((days % 7) + 7 + 4) % 7);
}

static bool zone_name_valid(const char *name)
{
	size_t len = strlen(name);

	if (len == 0 || len >= TZ_NAME_MAX || name[0] == '/' || name[0] == '.')
		return false;
	if (strstr(name, "..") != NULL || strstr(name, "//") != NULL)
		return false;
	for (const char *p = name; *p; p++) {
		char c = *p;

		if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
		      (c >= '0' && c <= '9') || c == '/' || c == '_' ||
		      c == '-' || c == '+'))
			return false;
	}
	return true;
}

/* A bounded reader over the file image. */
struct cursor {
	const uint8_t *p, *end;
};

static bool take(struct cursor *c, size_t n, const uint8_t **ret)
{
	if ((size_t)(c->end - c->p) < n)
		return false;
	*ret = c->p;
	c->p += n;
	return true;
}

static uint32_t be32(const uint8_t *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	       (uint32_t)p[2] << 8 | p[3];
}

static int64_t be64(const uint8_t *p)
{
	return (int64_t)((uint64_t)be32(p) << 32 | be32(p + 4));
}

struct tzif_header {
	char version;
	uint32_t isutcnt, isstdcnt, leapcnt, timecnt, typecnt, charcnt;
};

static int read_header(struct cursor *c, struct tzif_header *h)
{
	const uint8_t *p;

	if (!take(c, TZIF_HEADER_LEN, &p) || memcmp(p, "TZif", 4) != 0)
		return -EINVAL;
	h->version = (char)p[4];
	h->isutcnt = be32(p + 20);
	h->isstdcnt = be32(p + 24);
	h->leapcnt = be32(p + 28);
	h->timecnt = be32(p + 32);
	h->typecnt = be32(p + 36);
	h->charcnt = be32(p + 40);
	if (h->typecnt == 0 || h->typecnt > TZ_TYPES_MAX ||
	    h->timecnt > TZ_TRANSITIONS_MAX || h->charcnt > 4096 ||
	    h->leapcnt > 4096 ||
	    (h->isutcnt != 0 && h->isutcnt != h->typecnt) ||
	    (h->isstdcnt != 0 && h->isstdcnt != h->typecnt))
		return -EINVAL;
	return 0;
}

/* The data block after a header; tsize is 4 (v1) or 8 (v2+). */
static int read_block(struct cursor *c, const struct tzif_header *h,
		      size_t tsize, struct tz_zone *z)
{
	const uint8_t *times, *idx, *types, *skip;
	int32_t offsets[TZ_TYPES_MAX];

	if (!take(c, h->timecnt * tsize, &times) ||
	    !take(c, h->timecnt, &idx) || !take(c, h->typecnt * 6, &types) ||
	    !take(c, h->charcnt, &skip) ||
	    !take(c, h->leapcnt * (tsize + 4), &skip) ||
	    !take(c, h->isstdcnt, &skip) || !take(c, h->isutcnt, &skip))
		return -EINVAL;
	for (uint32_t i = 0; i < h->typecnt; i++) {
		offsets[i] = (int32_t)be32(types + 6 * i);
		if (offsets[i] < -25 * 3600 || offsets[i] > 26 * 3600)
			return -EINVAL;
	}
	z->at = xcalloc(h->timecnt + 1, sizeof(*z->at));
	z->offset = xcalloc(h->timecnt + 1, sizeof(*z->offset));
	/* RFC 8536: before the first transition, time type 0 applies. */
	z->first_offset = offsets[0];
	z->n = 0;
	for (uint32_t i = 0; i < h->timecnt; i++) {
		int64_t t = tsize == 8 ? be64(times + 8 * i)
				       : (int32_t)be32(times + 4 * i);

		if (idx[i] >= h->typecnt ||
		    (z->n > 0 && t <= z->at[z->n - 1]))
			return -EINVAL;
		z->at[z->n] = t;
		z->offset[z->n] = offsets[idx[i]];
		z->n++;
	}
	return 0;
}

/* A POSIX TZ string ("CET-1CEST,M3.5.0,M10.5.0/3"), parsed. */
struct posix_rule {
	char kind; /* 'J' (1..365, no Feb 29), 'N' (0..365), 'M' */
	int day, week, month;
	int32_t time; /* seconds after local midnight, may be negative */
};

struct posix_tz {
	int32_t std_offset, dst_offset; /* seconds east of UTC */
	bool has_dst;
	struct posix_rule start, end;
};

static bool parse_name(const char **p)
{
	const char *s = *p;

	if (*s == '<') {
		s = strchr(s, '>');
		if (s == NULL)
			return false;
		*p = s + 1;
		return true;
	}
	while ((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z'))
		s++;
	if (s - *p < 3)
		return false;
	*p = s;
	return true;
}

static bool parse_num(const char **p, int min, int max, int *ret)
{
	int v = 0, digits = 0;

	while (**p >= '0' && **p <= '9' && digits < 4) {
		v = v * 10 + (**p - '0');
		(*p)++;
		digits++;
	}
	if (digits == 0 || v < min || v > max)
		return false;
	*ret = v;
	return true;
}

/* [+-]hh[:mm[:ss]] with hours up to max_hours; seconds, sign applied. */
static bool parse_hms(const char **p, int max_hours, int32_t *ret)
{
	int sign = 1, h, m = 0, s = 0;

	if (**p == '+' || **p == '-') {
		sign = **p == '-' ? -1 : 1;
		(*p)++;
	}
	if (!parse_num(p, 0, max_hours, &h))
		return false;
	if (**p == ':') {
		(*p)++;
		if (!parse_num(p, 0, 59, &m))
			return false;
		if (**p == ':') {
			(*p)++;
			if (!parse_num(p, 0, 59, &s))
				return false;
		}
	}
	*ret = sign * (h * 3600 + m * 60 + s);
	return true;
}

static bool parse_rule(const char **p, struct posix_rule *r)
{
	r->time = 2 * 3600;
	if (**p == 'M') {
		(*p)++;
		r->kind = 'M';
		if (!parse_num(p, 1, 12, &r->month) || *(*p)++ != '.' ||
		    !parse_num(p, 1, 5, &r->week) || *(*p)++ != '.' ||
		    !parse_num(p, 0, 6, &r->day))
			return false;
	} else if (**p == 'J') {
		(*p)++;
		r->kind = 'J';
		if (!parse_num(p, 1, 365, &r->day))
			return false;
	} else {
		r->kind = 'N';
		if (!parse_num(p, 0, 365, &r->day))
			return false;
	}
	if (**p == '/') {
		(*p)++;
		/* RFC 8536 extends the time to -167..167 hours. */
		if (!parse_hms(p, 167, &r->time))
			return false;
	}
	return true;
}

static int parse_posix(const char *s, struct posix_tz *tz)
{
	int32_t v;

	memset(tz, 0, sizeof(*tz));
	if (!parse_name(&s) || !parse_hms(&s, 24, &v))
		return -EINVAL;
	tz->std_offset = -v; /* POSIX counts west of UTC */
	if (*s == '\0')
		return 0;
	if (!parse_name(&s))
		return -EINVAL;
	tz->has_dst = true;
	tz->dst_offset = tz->std_offset + 3600;
	if (*s != ',' && *s != '\0') {
		if (!parse_hms(&s, 24, &v))
			return -EINVAL;
		tz->dst_offset = -v;
	}
	/* Without rules POSIX leaves it to the implementation: refuse. */
	if (*s++ != ',' || !parse_rule(&s, &tz->start) || *s++ != ',' ||
	    !parse_rule(&s, &tz->end) || *s != '\0')
		return -EINVAL;
	return 0;
}

bool tz_is_leap(int64_t y)
{
	return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

/* Local seconds since the epoch at which rule r fires in year y. */
static int64_t rule_local(const struct posix_rule *r, int64_t y)
{
	int64_t jan1 = tz_days_from_civil(y, 1, 1), day;

	if (r->kind == 'J')
		day = jan1 + r->day - 1 + (tz_is_leap(y) && r->day >= 60);
	else if (r->kind == 'N')
		day = jan1 + r->day;
	else {
		int64_t first = tz_days_from_civil(y, r->month, 1);
		int64_t next = r->month == 12 ? tz_days_from_civil(y + 1, 1, 1)
					      : tz_days_from_civil(y, r->month + 1, 1);

		day = first + (r->day - tz_weekday(first) + 7) % 7 +
		      7 * (r->week - 1);
		while (day >= next)
			day -= 7; /* week 5 means the last one */
	}
	return day * 86400 + r->time;
}

static void zone_append(struct tz_zone *z, size_t *cap, int64_t at,
			int32_t offset)
{
	if (z->n > 0 && at <= z->at[z->n - 1])
		return;
	if (z->n == *cap) {
		*cap = *cap * 2 + 8;
		z->at = xreallocarray(z->at, *cap, sizeof(*z->at));
		z->offset = xreallocarray(z->offset, *cap, sizeof(*z->offset));
	}
	z->at[z->n] = at;
	z->offset[z->n] = offset;
	z->n++;
}

/* Extend the table with the footer's rule up to TZ_EXPAND_UNTIL_YEAR. */
static void expand_footer(struct tz_zone *z, const struct posix_tz *tz)
{
	size_t cap = z->n + 1;
	int64_t year = 1970, m;
	int mo, d;

	if (!tz->has_dst) {
		if (z->n == 0)
			z->first_offset = tz->std_offset;
		else if (z->offset[z->n - 1] != tz->std_offset)
			zone_append(z, &cap, z->at[z->n - 1] + 1, tz->std_offset);
		return;
	}
	if (z->n > 0)
		tz_civil_from_days((z->at[z->n - 1] + z->offset[z->n - 1]) /
					   86400,
				   &year, &mo, &d);
	else
		z->first_offset = tz->std_offset;
	for (int64_t y = year; y <= TZ_EXPAND_UNTIL_YEAR; y++) {
		/* Start is given in standard time, end in daylight time. */
		int64_t start = rule_local(&tz->start, y) - tz->std_offset;
		int64_t end = rule_local(&tz->end, y) - tz->dst_offset;

		if (start > end) { /* southern hemisphere */
			m = start;
			start = end;
			end = m;
			zone_append(z, &cap, start, tz->std_offset);
			zone_append(z, &cap, end, tz->dst_offset);
		} else {
			zone_append(z, &cap, start, tz->dst_offset);
			zone_append(z, &cap, end, tz->std_offset);
		}
	}
}

int tz_parse(const char *name, const uint8_t *data, size_t len,
	     struct tz_zone **ret, char *err, size_t errlen)
{
	struct cursor c = { data, data + len };
	struct tz_zone *z = xcalloc(1, sizeof(*z));
	struct tzif_header h;
	struct posix_tz posix;
	char footer[256];
	const uint8_t *nl;
	int r = -EINVAL;

	strlcpy_safe(z->name, name, sizeof(z->name));
	if (read_header(&c, &h) < 0) {
		seterr(err, errlen, "not a TZif file or counts out of range");
		goto fail;
	}
	if (h.version == '\0') {
		if (read_block(&c, &h, 4, z) < 0)
			goto truncated;
		*ret = z;
		return 0;
	}
	/* Version 2+: skip the 32-bit block, use the 64-bit one and footer. */
	{
		struct tz_zone skip = { 0 };

		r = read_block(&c, &h, 4, &skip);
		free(skip.at);
		free(skip.offset);
		if (r < 0)
			goto truncated;
	}
	if (read_header(&c, &h) < 0) {
		seterr(err, errlen, "bad second TZif header");
		r = -EINVAL;
		goto fail;
	}
	free(z->at);
	free(z->offset);
	if (read_block(&c, &h, 8, z) < 0)
		goto truncated;
	if (c.p < c.end && *c.p == '\n') {
		c.p++;
		nl = memchr(c.p, '\n', (size_t)(c.end - c.p));
		if (nl == NULL || (size_t)(nl - c.p) >= sizeof(footer)) {
			seterr(err, errlen, "unterminated TZ footer");
			r = -EINVAL;
			goto fail;
		}
		memcpy(footer, c.p, (size_t)(nl - c.p));
		footer[nl - c.p] = '\0';
		if (footer[0] != '\0') {
			if (parse_posix(footer, &posix) < 0) {
				seterr(err, errlen,
				       "unsupported TZ footer '%s'", footer);
				r = -EINVAL;
				goto fail;
			}
			expand_footer(z, &posix);
		}
	}
	*ret = z;
	return 0;
truncated:
	seterr(err, errlen, "truncated or inconsistent TZif data");
	r = -EINVAL;
fail:
	tz_free(z);
	return r;
}

int tz_load(const char *dir, const char *name, struct tz_zone **ret,
	    char *err, size_t errlen)
{
	uint8_t *data = NULL;
	size_t len = 0;
	char *path;
	ssize_t n;
	int fd, r;

	if (!zone_name_valid(name)) {
		seterr(err, errlen, "'%s' is not a time zone name", name);
		return -EINVAL;
	}
	path = xasprintf("%s/%s", dir ? dir : TZ_DIR, name);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		r = -errno;
		seterr(err, errlen, "unknown time zone '%s' (%s: %s)", name,
		       path, strerror(errno));
		free(path);
		return r == -ENOENT || r == -ENOTDIR ? -ENOENT : r;
	}
	/*
	 * Not zeroed: tz_parse() reads the len bytes read only, and zeroing
	 * 256 KiB for a zone file of a few KiB was most of what the
	 * configuration's load cost with a contract calendar each for
	 * thousands of customers (bench/server_scale.sh).
	 */
	data = xreallocarray(NULL, TZ_FILE_MAX + 1, 1);
	while (len <= TZ_FILE_MAX &&
	       (n = read(fd, data + len, TZ_FILE_MAX + 1 - len)) > 0)
		len += (size_t)n;
	close(fd);
	if (len > TZ_FILE_MAX) {
		seterr(err, errlen, "%s is larger than %d bytes", path,
		       TZ_FILE_MAX);
		r = -EINVAL;
	} else {
		r = tz_parse(name, data, len, ret, err, errlen);
		if (r == -EINVAL && err != NULL && errlen > 0) {
			char why[256];

			strlcpy_safe(why, err, sizeof(why));
			seterr(err, errlen, "%s: %s", path, why);
		}
	}
	free(data);
	free(path);
	return r;
}

void tz_free(struct tz_zone *z)
{
	if (z == NULL)
		return;
	free(z->at);
	free(z->offset);
	free(z);
}

/* Index of the last transition at or before t, or -1. */
static ptrdiff_t find(const struct tz_zone *z, int64_t t)
{
	size_t lo = 0, hi = z->n;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (z->at[mid] <= t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return (ptrdiff_t)lo - 1;
}

int32_t tz_offset_at(const struct tz_zone *z, int64_t t)
{
	ptrdiff_t i = find(z, t);

	return i < 0 ? z->first_offset : z->offset[i];
}

int64_t tz_next_transition(const struct tz_zone *z, int64_t t)
{
	ptrdiff_t i = find(z, t);

	return (size_t)(i + 1) < z->n ? z->at[i + 1] : INT64_MAX;
}

int64_t tz_local_to_utc(const struct tz_zone *z, int64_t local)
{
	/* Offsets never differ by a day: the candidates are around local. */
	int32_t before = tz_offset_at(z, local - 86400);
	int32_t after = tz_offset_at(z, local + 86400);
	int64_t u1 = local - before, u2 = local - after;
	bool ok1 = tz_offset_at(z, u1) == before;
	bool ok2 = tz_offset_at(z, u2) == after;
	ptrdiff_t i;

	if (ok1 && ok2)
		return u1 < u2 ? u1 : u2;
	if (ok1)
		return u1;
	if (ok2)
		return u2;
	/* In a gap: the first instant after it is the transition itself. */
	i = find(z, u1 > u2 ? u1 : u2);
	return i < 0 ? u1 : z->at[i];
}
