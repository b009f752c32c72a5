/*
 * The collector's life under systemd: the signal loop, the watchdog and
 * configuration reloads.
 *
 * SIGTERM and SIGINT end daemon_serve(); main.c then stops the producers
 * and lets the writer drain.  SIGHUP reloads the configuration: a file
 * with errors is refused (every error is logged) and the running one
 * kept; otherwise the new one replaces api->conf, which is what request
 * handlers read, so tokens, the inventory and http.max_batch apply to
 * the next request, and the silence settings
 * and log_level at once.  What is bound at start (listen, database, tls,
 * allow_plain_http, http.max_body/threads/max_connections/
 * connection_timeout, writer.max_queue/max_group) needs a restart; a
 * change there is logged as such.  Replaced configurations are kept
 * until exit, since modules may still hold pointers into them (the
 * inventory, a token), and reloads are rare.
 *
 * With WatchdogSec= (WATCHDOG_USEC), the watchdog is fed only while the
 * writer thread is seen running jobs: a stuck writer stops the pings and
 * lets systemd restart the collector.
 */
#ifndef TOCSIN_DAEMON_H
#define TOCSIN_DAEMON_H

#include <stddef.h>

struct api;
struct server_config;

/* Every configuration loaded, the first one as well. */
struct config_history {
	struct server_config **v;
	size_t n;
};

void config_history_add(struct config_history *h, struct server_config *conf);
void config_history_free(struct config_history *h);

/* Serve until SIGTERM or SIGINT (the signals must be blocked already). */
void daemon_serve(struct api *api, struct config_history *history,
		  const char *config_path, const char *dropin_dir);

#endif
