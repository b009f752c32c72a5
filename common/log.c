#include "log.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *log_progname = "tocsin";
/* Set by a reload while other threads log: atomic, relaxed is enough. */
static _Atomic int log_max = LOG_LEVEL_INFO;
static bool log_journal;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {
	[LOG_LEVEL_ERROR] = "error",   [LOG_LEVEL_WARNING] = "warning",
	[LOG_LEVEL_NOTICE] = "notice", [LOG_LEVEL_INFO] = "info",
	[LOG_LEVEL_DEBUG] = "debug",
};

void log_init(const char *progname, enum log_level max_level)
{
	const char *stream = getenv("JOURNAL_STREAM");

	log_progname = progname;
	atomic_store_explicit(&log_max, (int)max_level, memory_order_relaxed);
	/* systemd connects stderr to journald and says so in JOURNAL_STREAM. */
	log_journal = stream != NULL && *stream != '\0';
}

void log_set_level(enum log_level max_level)
{
	atomic_store_explicit(&log_max, (int)max_level, memory_order_relaxed);
}

bool log_to_journal(void)
{
	return log_journal;
}

int log_level_parse(const char *name, enum log_level *ret_level)
{
	for (int i = LOG_LEVEL_ERROR; i <= LOG_LEVEL_DEBUG; i++) {
		if (strcmp(name, level_names[i]) == 0) {
			*ret_level = (enum log_level)i;
			return 0;
		}
	}
	return -EINVAL;
}

static void log_emit(enum log_level level, int errnum, const char *fmt,
		     va_list ap)
{
	char msg[2048];

	if ((int)level > atomic_load_explicit(&log_max, memory_order_relaxed))
		return;
	vsnprintf(msg, sizeof(msg), fmt, ap);

	/* One fprintf per line so that threads do not interleave. */
	pthread_mutex_lock(&log_lock);
	if (log_journal) {
		if (errnum)
			fprintf(stderr, "<%d>%s: %s\n", level, msg,
				strerror(errnum));
		else
			fprintf(stderr, "<%d>%s\n", level, msg);
	} else {
		if (errnum)
			fprintf(stderr, "%s: %s: %s: %s\n", log_progname,
				level_names[level], msg, strerror(errnum));
		else
			fprintf(stderr, "%s: %s: %s\n", log_progname,
				level_names[level], msg);
	}
	fflush(stderr);
	pthread_mutex_unlock(&log_lock);
}

#define LOG_FN(name, level, with_errno)                          \
	void name(const char *fmt, ...)                          \
	{                                                        \
		int saved = errno;                               \
		va_list ap;                                      \
		va_start(ap, fmt);                               \
		log_emit(level, (with_errno) ? saved : 0, fmt, ap); \
		va_end(ap);                                      \
		errno = saved;                                   \
	}

LOG_FN(log_debug, LOG_LEVEL_DEBUG, 0)
LOG_FN(log_info, LOG_LEVEL_INFO, 0)
LOG_FN(log_notice, LOG_LEVEL_NOTICE, 0)
LOG_FN(log_warn, LOG_LEVEL_WARNING, 1)
LOG_FN(log_warnx, LOG_LEVEL_WARNING, 0)
LOG_FN(log_errorx, LOG_LEVEL_ERROR, 0)

void fatal(const char *fmt, ...)
{
	int saved = errno;
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_LEVEL_ERROR, saved, fmt, ap);
	va_end(ap);
	exit(1);
}

void fatalx(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_emit(LOG_LEVEL_ERROR, 0, fmt, ap);
	va_end(ap);
	exit(1);
}
