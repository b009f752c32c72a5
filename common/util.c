#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static _Noreturn void out_of_memory(void)
{
	static const char msg[] = "tocsin: out of memory\n";

	(void)!write(STDERR_FILENO, msg, sizeof(msg) - 1);
	abort();
}

void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n ? n : 1, size ? size : 1);

	if (p == NULL)
		out_of_memory();
	return p;
}

void *xreallocarray(void *p, size_t n, size_t size)
{
	void *q = reallocarray(p, n ? n : 1, size ? size : 1);

	if (q == NULL)
		out_of_memory();
	return q;
}

char *xstrdup(const char *s)
{
	char *p = strdup(s);

	if (p == NULL)
		out_of_memory();
	return p;
}

char *xasprintf(const char *fmt, ...)
{
	va_list ap;
	char *p;
	int r;

	va_start(ap, fmt);
	r = vasprintf(&p, fmt, ap);
	va_end(ap);
	if (r < 0)
		out_of_memory();
	return p;
}

void strlcat_safe(char *dst, const char *src, size_t size)
{
	size_t len = strnlen(dst, size);

	if (len + 1 >= size)
		return;
	strlcpy_safe(dst + len, src, size - len);
}

bool str_differs(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a != b;
	return strcmp(a, b) != 0;
}

void strlcpy_safe(char *dst, const char *src, size_t size)
{
	size_t n = strlen(src);

	if (size == 0)
		return;
	if (n >= size) {
		n = size - 1;
		/* never half a UTF-8 character: JSON could not carry it */
		while (n > 0 && ((unsigned char)src[n] & 0xc0) == 0x80)
			n--;
	}
	memcpy(dst, src, n);
	dst[n] = '\0';
}

int parse_int64(const char *text, int64_t *ret)
{
	char *end;
	long long v;

	if (*text == '\0')
		return -EINVAL;
	errno = 0;
	v = strtoll(text, &end, 10);
	if (errno == ERANGE)
		return -ERANGE;
	if (errno != 0 || *end != '\0')
		return -EINVAL;
	*ret = v;
	return 0;
}

int parse_double(const char *text, double *ret)
{
	char *end;
	double v;

	if (*text == '\0')
		return -EINVAL;
	errno = 0;
	v = strtod(text, &end);
	if (errno != 0 || *end != '\0' || !isfinite(v))
		return -EINVAL;
	*ret = v;
	return 0;
}

int64_t time_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t time_mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void cond_init_monotonic(pthread_cond_t *cond)
{
	pthread_condattr_t attr;

	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(cond, &attr);
	pthread_condattr_destroy(&attr);
}

struct timespec time_mono_deadline(int64_t ms)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	ts.tv_sec += ms / 1000;
	ts.tv_nsec += (ms % 1000) * 1000000L;
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

void time_format_rfc3339(int64_t ms, char *buf)
{
	time_t secs = (time_t)(ms >= 0 ? ms / 1000 : (ms - 999) / 1000);
	int frac = (int)(ms - (int64_t)secs * 1000);
	struct tm tm;

	gmtime_r(&secs, &tm);
	snprintf(buf, TIME_RFC3339_LEN, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ",
		 (tm.tm_year + 1900) % 10000, (tm.tm_mon + 1) % 100,
		 tm.tm_mday % 100, tm.tm_hour % 100, tm.tm_min % 100,
		 tm.tm_sec % 100, frac % 1000);
}

static int parse_digits(const char **p, int n, int *ret)
{
	int v = 0;

	for (int i = 0; i < n; i++) {
		if ((*p)[i] < '0' || (*p)[i] > '9')
			return -EINVAL;
		v = v * 10 + ((*p)[i] - '0');
	}
	*p += n;
	*ret = v;
	return 0;
}

static int expect_char(const char **p, char c)
{
	if (**p != c)
		return -EINVAL;
	(*p)++;
	return 0;
}

int time_parse_rfc3339(const char *text, int64_t *ret_ms)
{
	const char *p = text;
	int year, mon, day, hour, min, sec, ms = 0, off = 0;
	struct tm tm = { 0 };
	time_t t;

	if (parse_digits(&p, 4, &year) || expect_char(&p, '-') ||
	    parse_digits(&p, 2, &mon) || expect_char(&p, '-') ||
	    parse_digits(&p, 2, &day))
		return -EINVAL;
	if (*p != 'T' && *p != 't' && *p != ' ')
		return -EINVAL;
	p++;
	if (parse_digits(&p, 2, &hour) || expect_char(&p, ':') ||
	    parse_digits(&p, 2, &min) || expect_char(&p, ':') ||
	    parse_digits(&p, 2, &sec))
		return -EINVAL;
	if (*p == '.') {
		int scale = 100;

		p++;
		if (*p < '0' || *p > '9')
			return -EINVAL;
		while (*p >= '0' && *p <= '9') {
			ms += (*p - '0') * scale;
			scale /= 10;
			p++;
		}
	}
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1, oh, om;

		p++;
		if (parse_digits(&p, 2, &oh) || expect_char(&p, ':') ||
		    parse_digits(&p, 2, &om) || oh > 23 || om > 59)
			return -EINVAL;
		off = sign * (oh * 3600 + om * 60);
	} else {
		return -EINVAL;
	}
	if (*p != '\0' || mon < 1 || mon > 12 || day < 1 || day > 31 ||
	    hour > 23 || min > 59 || sec > 60)
		return -EINVAL;
	tm.tm_year = year - 1900;
	tm.tm_mon = mon - 1;
	tm.tm_mday = day;
	tm.tm_hour = hour;
	tm.tm_min = min;
	tm.tm_sec = sec;
	t = timegm(&tm);
	if (tm.tm_mday != day) /* 2026-02-31 normalised into March */
		return -EINVAL;
	*ret_ms = ((int64_t)t - off) * 1000 + ms;
	return 0;
}

int uuid_generate(char *buf)
{
	uint64_t ms = (uint64_t)time_now_ms();
	uint8_t b[16];

	if (getrandom(b, sizeof(b), 0) != (ssize_t)sizeof(b))
		return -errno;
	/* RFC 9562 version 7: 48 bits of Unix time in ms, big-endian, first. */
	for (int i = 0; i < 6; i++)
		b[i] = (uint8_t)(ms >> (40 - 8 * i));
	b[6] = (uint8_t)((b[6] & 0x0f) | 0x70); /* version 7 */
	b[8] = (uint8_t)((b[8] & 0x3f) | 0x80); /* RFC 4122 variant */
	snprintf(buf, UUID_STR_LEN,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
		 b[10], b[11], b[12], b[13], b[14], b[15]);
	return 0;
}

bool uuid_valid(const char *text)
{
	for (int i = 0; i < 36; i++) {
		char c = text[i];

		if (i == 8 || i == 13 || i == 18 || i == 23) {
			if (c != '-')
				return false;
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') ||
			     (c >= 'A' && c <= 'F'))) {
			return false;
		}
	}
	return text[36] == '\0';
}

int name_check(const char *text, size_t max, bool spaces)
{
	size_t n = strlen(text);

	if (n == 0)
		return -ENODATA;
	if (n > max)
		return -ENAMETOOLONG;
	for (; *text; text++)
		if ((unsigned char)*text < ' ' || *text == 0x7f ||
		    (*text == ' ' && !spaces))
			return -EILSEQ;
	return 0;
}

void format_bytes(uint64_t bytes, char *buf, size_t size)
{
	static const char *const units[] = { "B",   "KiB", "MiB",
					     "GiB", "TiB", "PiB" };
	double v = (double)bytes;
	size_t u = 0;

	while (v >= 1024.0 && u + 1 < ARRAY_SIZE(units)) {
		v /= 1024.0;
		u++;
	}
	if (u == 0)
		snprintf(buf, size, "%llu B", (unsigned long long)bytes);
	else if (v >= 100.0)
		snprintf(buf, size, "%.0f %s", v, units[u]);
	else
		snprintf(buf, size, "%.1f %s", v, units[u]);
}

/*
 * A unit takes over from the smaller one at twice its size ("90 min",
 * "36 h"), and hours and days also where the smaller one would read as
 * exactly one of them: 3600 s is "1 h", not "60 min", and 86400 s "1 d",
 * not "24 h".  (Seconds stay up to 119: "60 s" reads as it is.)
 */
void format_duration(int64_t seconds, char *buf, size_t size)
{
	static const struct {
		int64_t seconds;
		const char *name;
	} units[] = { { 86400, "d" }, { 3600, "h" }, { 60, "min" } };

	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		int64_t u = units[i].seconds;
		int64_t smaller = i + 1 < ARRAY_SIZE(units) ? units[i + 1].seconds : 0;

		if (seconds >= 2 * u ||
		    (smaller > 0 && seconds >= u && seconds / smaller == u / smaller)) {
			snprintf(buf, size, "%lld %s", (long long)(seconds / u),
				 units[i].name);
			return;
		}
	}
	snprintf(buf, size, "%lld s", (long long)seconds);
}

/* Make a rename in path's directory durable. */
static void fsync_parent(const char *path)
{
	const char *slash = strrchr(path, '/');
	char *dir = slash == NULL ? xstrdup(".")
		    : slash == path ? xstrdup("/")
				    : xasprintf("%.*s", (int)(slash - path), path);
	int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0) {
		(void)fsync(fd);
		close(fd);
	}
	free(dir);
}

int write_file_atomic(const char *path, const char *text, unsigned mode)
{
	char *tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
	size_t len = strlen(text);
	int fd, r = 0;

	fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (fd < 0) {
		r = -errno;
		goto out;
	}
	/* A leftover temporary file keeps its old mode: set ours. */
	if (fchmod(fd, mode) < 0 || write(fd, text, len) != (ssize_t)len ||
	    fsync(fd) < 0) {
		r = errno ? -errno : -EIO;
		close(fd);
		unlink(tmp);
		goto out;
	}
	close(fd);
	if (rename(tmp, path) < 0) {
		r = -errno;
		unlink(tmp);
		goto out;
	}
	fsync_parent(path);
out:
	free(tmp);
	return r;
}
