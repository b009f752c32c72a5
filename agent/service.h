/*
 * The agent as a systemd service: readiness, reload and stop
 * notifications, a status line, and the watchdog keep-alive.
 *
 * Outside systemd (no NOTIFY_SOCKET) every call is a cheap no-op.  The
 * watchdog is pinged at half of WATCHDOG_USEC, from the main loop and from
 * inside long requests, so a hung agent is restarted but a slow collector
 * is not mistaken for one.  Process-wide state, like the log's.
 */
#ifndef TOCSIN_SERVICE_H
#define TOCSIN_SERVICE_H

#include <stdint.h>

/* Read WATCHDOG_USEC (via sd_watchdog_enabled) once, at start. */
void service_init(void);
void service_ready(void);
void service_reloading(void);
void service_stopping(void);
/* STATUS= for systemctl status. */
void service_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Send WATCHDOG=1 when half the interval has passed since the last one. */
void service_watchdog(void);
/* Milliseconds until the next keep-alive is due; INT64_MAX when off. */
int64_t service_watchdog_wait_ms(void);

#endif
