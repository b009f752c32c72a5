/*
 * Logging for the daemons and the CLI.
 *
 * Messages go to stderr.  When stderr is connected to the journal (systemd
 * sets JOURNAL_STREAM) each line carries a "<N>" syslog priority prefix so
 * that journald files it at the right level; otherwise lines look like
 * "tocsin-agent: warning: ...".
 *
 * log_warn() and fatal() append strerror(errno); the *x variants do not.
 * Only top-level code logs: helpers return errors to their callers.
 */
#ifndef TOCSIN_LOG_H
#define TOCSIN_LOG_H

#include <stdarg.h>
#include <stdbool.h>

enum log_level {
	LOG_LEVEL_ERROR = 3,
	LOG_LEVEL_WARNING = 4,
	LOG_LEVEL_NOTICE = 5,
	LOG_LEVEL_INFO = 6,
	LOG_LEVEL_DEBUG = 7,
};

void log_init(const char *progname, enum log_level max_level);
void log_set_level(enum log_level max_level);
int log_level_parse(const char *name, enum log_level *ret_level);
bool log_to_journal(void);

void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_notice(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warnx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_errorx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void fatal(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
_Noreturn void fatalx(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
