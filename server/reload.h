/*
 * SIGHUP: load the configuration again and apply what can be applied
 * while the collector runs.
 *
 * A file with errors is refused (every error is logged) and the running
 * configuration kept.  Otherwise, at once: auth.tokens, http.max_batch,
 * writer.max_queue_bytes, log_level, enrollment:, liveness: and silences:
 * (the next request or round reads them), and, through a writer job that
 * swaps the deduplication's context between two commits, lifecycle:
 * rules, topology: and the inventory (customers, hosts) for the alert
 * lifecycle, enrollment and the API, and in the same job the helpdesk
 * (contracts:, people:, helpdesk: and the customers' contract, contacts
 * and notify: desk_reconfigure()), after which the open tickets' SLA
 * clocks are recomputed from their journals with the new calendars (the
 * read side's desk follows under store_lock()), with the notify: section
 * the new notifications are rendered with, which the sender's lanes then
 * take up between two rounds (dispatch_reconfigure(): rates and backoff
 * kept, lanes of removed channels retired, their pending rows failed);
 * the TLS certificate and key (tls.c hands the new pair to the next
 * handshakes); and the trap
 * listener's configuration but for its sockets and net-snmp's start-up
 * settings (traplisten_reconfigure()).  What is bound at start is named
 * in the log with "restart the server to apply it": listen,
 * database, allow_plain_http, tls.client_ca and require_client_cert,
 * http.max_body/threads/max_connections/connection_timeout,
 * writer.max_queue/max_group, lifecycle.tick, and traps.listen, user,
 * engine_id, mib_dirs, receive_buffer and max_packet.
 *
 * Replaced configurations are kept until exit, since modules may still
 * hold pointers into them (a helpdesk job or API read of the previous
 * helpdesk, a sender lane's notify: until its next round, a token, the
 * trap listener's batches at the writer and its SNMPv3 users), and
 * reloads are rare: this is how a replaced trap configuration is retired safely,
 * without a reference count on the listener's per-trap path.
 */
#ifndef TOCSIN_RELOAD_H
#define TOCSIN_RELOAD_H

#include <stddef.h>

struct api;
struct server_config;

/* Every configuration loaded, the first one as well. */
struct reload_history {
	struct server_config **v;
	size_t n;
};

void reload_keep(struct reload_history *h, struct server_config *conf);
void reload_history_free(struct reload_history *h);

/*
 * Load config_path (and dropin_dir) and apply it to api.  0, or -errno
 * with the running configuration kept (the reasons are logged).
 */
int reload_apply(struct api *api, struct reload_history *h,
		 const char *config_path, const char *dropin_dir);

#endif
