/*
 * The collector's life under systemd: the signal loop, the watchdog and
 * configuration reloads.
 *
 * SIGTERM and SIGINT end daemon_serve(); main.c then stops the producers
 * and lets the writer drain.  SIGHUP reloads the configuration (reload.h
 * says what applies at once and what needs a restart).
 *
 * With WatchdogSec= (WATCHDOG_USEC), the watchdog is fed only while the
 * writer thread is seen committing (watchdog.h): a stuck writer stops the
 * pings and lets systemd restart the collector.
 */
#ifndef TOCSIN_DAEMON_H
#define TOCSIN_DAEMON_H

#include <stddef.h>

struct api;
struct reload_history;

/* Serve until SIGTERM or SIGINT (the signals must be blocked already). */
void daemon_serve(struct api *api, struct reload_history *history,
		  const char *config_path, const char *dropin_dir);

#endif
