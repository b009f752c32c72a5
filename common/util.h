/*
 * Small helpers both daemons and the CLI use: allocation that aborts on
 * exhaustion (x*), checked number parsing, time stamps, event ids, names
 * and human-readable sizes.
 */
#ifndef TOCSIN_UTIL_H
#define TOCSIN_UTIL_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

void *xcalloc(size_t n, size_t size);
void *xreallocarray(void *p, size_t n, size_t size);
char *xstrdup(const char *s);
char *xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Appends src to dst (of total size) and always NUL-terminates. */
void strlcat_safe(char *dst, const char *src, size_t size);
/* Copies src into dst (of size) and always NUL-terminates. */
void strlcpy_safe(char *dst, const char *src, size_t size);
/* Whether two strings, either of them NULL, differ: NULL equals only NULL. */
bool str_differs(const char *a, const char *b);

/* Whole-string number parsing: 0 or -EINVAL/-ERANGE, result untouched. */
int parse_int64(const char *text, int64_t *ret);
int parse_double(const char *text, double *ret);

/* Wall clock in milliseconds since the epoch; monotonic in milliseconds. */
int64_t time_now_ms(void);
int64_t time_mono_ms(void);
/*
 * Timed waits on the monotonic clock, so that a wall clock stepped back
 * stalls no timer: cond_init_monotonic() makes a condition variable whose
 * pthread_cond_timedwait() takes CLOCK_MONOTONIC deadlines, and
 * time_mono_deadline() the deadline ms milliseconds from now.
 */
void cond_init_monotonic(pthread_cond_t *cond);
struct timespec time_mono_deadline(int64_t ms);
/* "2026-11-22T21:53:07.123Z"; buf must hold TIME_RFC3339_LEN bytes. */
#define TIME_RFC3339_LEN 32
void time_format_rfc3339(int64_t ms, char *buf);
/* Parses RFC 3339 with 'Z' or a numeric offset, fractional seconds allowed. */
int time_parse_rfc3339(const char *text, int64_t *ret_ms);

/*
 * A time-ordered version-7 UUID (RFC 9562: the Unix time in ms, then 74
 * random bits) in its 36-character text form (+ NUL).  Event ids are
 * made this way: ids of one time sort together, so the collector's index
 * of them grows at one end instead of taking a random page per event
 * (an eighth of the cost on a table of ten million rows); any UUID is
 * still accepted from agents.
 */
#define UUID_STR_LEN 37
int uuid_generate(char *buf);
bool uuid_valid(const char *text);

/*
 * Whether text may stand as a name the collector files things under (a
 * host, a customer): 1 to max bytes, no control character (DEL
 * included), no space unless spaces.  Such a name goes as it is into
 * one-line files and log lines.  0, -ENODATA when empty, -ENAMETOOLONG
 * when longer than max, -EILSEQ at a control character or a refused
 * space.
 */
int name_check(const char *text, size_t max, bool spaces);

/* "6.2 GiB", "512 MiB", "900 B"; buf of at least 16 bytes. */
void format_bytes(uint64_t bytes, char *buf, size_t size);
/* "3 d", "5 h", "12 min", "40 s". */
void format_duration(int64_t seconds, char *buf, size_t size);

/*
 * Write text to path atomically and durably: temporary file (mode set even
 * when one was left behind), fsync, rename, fsync of the directory.
 */
int write_file_atomic(const char *path, const char *text, unsigned mode);

#endif
