#include "reload.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "../common/config.h"
#include "../common/log.h"
#include "../common/util.h"
#include "api.h"
#include "credentials.h"
#include "dedup.h"
#include "desk.h"
#include "dispatch.h"
#include "helpdesk.h"
#include "inventory.h"
#include "lifecycle.h"
#include "liveness.h"
#include "notify.h"
#include "retention.h"
#include "server.h"
#include "tls.h"
#include "trapconf.h"
#include "traplisten.h"
#include "writer.h"

void reload_keep(struct reload_history *h, struct server_config *conf)
{
	h->v = xreallocarray(h->v, h->n + 1, sizeof(*h->v));
	h->v[h->n++] = conf;
}

void reload_history_free(struct reload_history *h)
{
	for (size_t i = 0; i < h->n; i++)
		server_config_free(h->v[i]);
	free(h->v);
	*h = (struct reload_history){ 0 };
}

/* --- what changed ------------------------------------------------------ */

/* What of tls: only a restart applies: turning it on or off, the client CA. */
static bool tls_bound_differs(const struct tls_config *a,
			      const struct tls_config *b)
{
	if (a == NULL || b == NULL)
		return a != b;
	return str_differs(a->client_ca_pem, b->client_ca_pem) ||
	       a->require_client_cert != b->require_client_cert;
}

/* Name every setting that changed but only applies after a restart. */
static void warn_restart_only(const struct server_config *old,
			      const struct server_config *new)
{
	static const char fmt[] =
		"SIGHUP: %s changed; restart the server to apply it";

	if (str_differs(old->listen_host, new->listen_host) ||
	    old->listen_port != new->listen_port)
		log_warnx(fmt, "listen");
	if (str_differs(old->database, new->database))
		log_warnx(fmt, "database");
	if ((old->tls == NULL) != (new->tls == NULL))
		log_warnx(fmt, "tls (turning HTTPS on or off)");
	else if (tls_bound_differs(old->tls, new->tls))
		log_warnx(fmt, "tls.client_ca or tls.require_client_cert");
	if (old->allow_plain_http != new->allow_plain_http)
		log_warnx(fmt, "allow_plain_http");
	if (old->max_body != new->max_body)
		log_warnx(fmt, "http.max_body");
	if (old->threads != new->threads ||
	    old->max_connections != new->max_connections ||
	    old->connection_timeout_ms != new->connection_timeout_ms)
		log_warnx(fmt, "http.threads, max_connections or connection_timeout");
	if (old->writer_queue != new->writer_queue ||
	    old->writer_group != new->writer_group)
		log_warnx(fmt, "writer.max_queue or max_group");
	if (old->lifecycle->tick_ms != new->lifecycle->tick_ms)
		log_warnx(fmt, "lifecycle.tick");
}

static bool listen_differs(const struct trap_config *a,
			   const struct trap_config *b)
{
	if (a->nlisten != b->nlisten)
		return true;
	for (size_t i = 0; i < a->nlisten; i++)
		if (str_differs(a->listen[i].host, b->listen[i].host) ||
		    a->listen[i].port != b->listen[i].port)
			return true;
	return false;
}

static bool string_lists_differ(char *const *a, char *const *b)
{
	size_t i = 0;

	if (a == NULL || b == NULL)
		return a != b;
	for (; a[i] && b[i]; i++)
		if (strcmp(a[i], b[i]) != 0)
			return true;
	return a[i] != b[i];
}

/*
 * What of traps: only a restart applies, against what the listener runs
 * with (running: NULL when there is none): the sockets, what net-snmp
 * was started with, and the size of the receive buffers.
 */
static void warn_traps_restart_only(const struct trap_config *running,
				    const struct trap_config *new)
{
	static const char fmt[] =
		"SIGHUP: %s changed; restart the server to apply it";

	if (running == NULL) {
		if (new != NULL)
			log_warnx("SIGHUP: the traps: section is new: the trap listener starts, and its mapping files are read and checked, only with a restart (check them first with tocsin-server --check-config)");
		return;
	}
	if (new == NULL) {
		log_warnx("SIGHUP: the traps: section is gone; the trap listener goes on with its configuration until a restart");
		return;
	}
	if (listen_differs(running, new))
		log_warnx(fmt, "traps.listen");
	if (str_differs(running->user, new->user))
		log_warnx(fmt, "traps.user");
	if (running->engine_id.len != new->engine_id.len ||
	    memcmp(running->engine_id.id, new->engine_id.id,
		   new->engine_id.len) != 0)
		log_warnx(fmt, "traps.engine_id");
	if (string_lists_differ(running->mib_dirs, new->mib_dirs))
		log_warnx(fmt, "traps.mib_dirs (the mappings were read with the MIBs of the start)");
	if (running->receive_buffer != new->receive_buffer ||
	    running->max_packet != new->max_packet)
		log_warnx(fmt, "traps.receive_buffer or max_packet");
}

/* --- applying ---------------------------------------------------------- */

/* A renewed certificate or key: new handshakes get it (tls_use()). */
static void reload_certificate(const struct tls_config *old,
			       const struct tls_config *new)
{
	char why[256];

	if (old == NULL || new == NULL ||
	    (!str_differs(old->cert_pem, new->cert_pem) &&
	     !str_differs(old->key_pem, new->key_pem)))
		return;
	if (tls_use(new, why, sizeof(why)) < 0)
		log_warnx("SIGHUP: tls.cert and tls.key: %s; new connections keep the running certificate",
			  why);
	else
		log_notice("SIGHUP: new connections get the new TLS certificate");
}

/*
 * After the writer job that renders new notifications with conf's
 * notify: (desk_reconfigure()): the sender's lanes take it up too.
 */
static void reload_notify(struct dispatch *p, const struct notify_config *nc)
{
	struct dispatch_change c;
	int r = dispatch_reconfigure(p, nc, &c);

	if (r < 0)
		log_warnx("SIGHUP: notify: starting a sender lane or failing the rows of a removed one: %s; the lanes that run send, a later reload starts the missing ones",
			  strerror(-r));
	log_notice("SIGHUP: notify reloaded (mail %s%s, %zu webhooks; %zu sender lanes: %zu started, %zu retired; %d pending rows of removed channels failed)",
		   nc->smtp_url ? "via " : "off", nc->smtp_url ? nc->smtp_url_shown : "",
		   nc->nwebhooks, c.lanes, c.added, c.removed, c.failed);
}

struct reconfigure_job {
	const struct server_config *conf;
	struct desk *desk;	/* the writer's, or NULL */
	int recompute_error;	/* of the clocks' recomputation, or 0 */
	size_t nrecomputed;	/* open tickets whose clocks were recomputed */
	struct desk_orphans orphans; /* open tickets of contracts gone */
};

/*
 * Writer job: the deduplication's new rules, topology and inventory, and
 * the helpdesk's configuration with the same inventory, between two
 * commits, so that no batch and no helpdesk job sees half of each.  The
 * open tickets' clocks are then recomputed from their journals with the
 * new contracts' calendars (as at start); a failure there only leaves the
 * timer's caches as they were, so it does not refuse the reload.
 */
static int reconfigure_apply(struct store *st, void *arg)
{
	struct reconfigure_job *j = arg;
	int r;

	r = dedup_configure(st, j->conf->lifecycle, j->conf->inventory);
	if (r < 0 || j->desk == NULL)
		return r;
	desk_reconfigure(j->desk, j->conf->helpdesk, j->conf->inventory);
	j->recompute_error = desk_recompute_all(j->desk, time_now_ms(), true,
						&j->nrecomputed, &j->orphans);
	return 0;
}

/*
 * After a reconfigure job that failed: the job may have failed in its
 * commit, after the writer's deduplication and desk had taken up the new
 * configuration, so conf is kept (they may point into it) and the
 * running one is applied again: api's, not the history's last, which
 * after an earlier refusal is a refused one.  0, or the error of that
 * job too: the writer then runs with whatever the failed job left.
 */
static int reload_restore(struct api *api, struct reload_history *h,
			  struct server_config *conf)
{
	struct reconfigure_job job;
	const struct server_config *running = atomic_load(&api->conf);
	int r;

	reload_keep(h, conf);
	job = (struct reconfigure_job){ .conf = running, .desk = api->desk };
	r = writer_run(api->writer, reconfigure_apply, &job);
	desk_orphans_clear(&job.orphans);
	return r;
}

int reload_apply(struct api *api, struct reload_history *h,
		 const char *config_path, const char *dropin_dir)
{
	struct reconfigure_job job;
	struct server_config *conf;
	struct cfg *cfg;
	char *warning;
	int r, e;

	r = server_config_load(config_path, dropin_dir, &conf, &cfg);
	if (r < 0) {
		log_warnx("SIGHUP: cannot load %s: %s; keeping the running configuration",
			  config_path, strerror(-r));
		return r;
	}
	if (cfg->nerrors > 0) {
		for (size_t i = 0; i < cfg->nerrors; i++)
			log_warnx("SIGHUP: %s", cfg->errors[i]);
		log_warnx("SIGHUP: %zu configuration error%s; keeping the running configuration",
			  cfg->nerrors, cfg->nerrors == 1 ? "" : "s");
		cfg_free(cfg);
		server_config_free(conf);
		return -EINVAL;
	}
	cfg_free(cfg);
	job = (struct reconfigure_job){ .conf = conf, .desk = api->desk };
	r = writer_run(api->writer, reconfigure_apply, &job);
	if (r < 0) {
		desk_orphans_clear(&job.orphans);
		e = reload_restore(api, h, conf);
		if (e < 0)
			log_errorx("SIGHUP: cannot apply lifecycle:, topology:, the inventory and the helpdesk: %s, and putting the running configuration back failed too: %s; the deduplication and the helpdesk may run with parts of the refused one until the next reload",
				   strerror(-r), strerror(-e));
		else
			log_warnx("SIGHUP: cannot apply lifecycle:, topology:, the inventory and the helpdesk: %s; keeping the running configuration",
				  strerror(-r));
		return r;
	}
	/* The read side's topology and silences follow, under its lock. */
	if (api->reader != NULL) {
		store_lock(api->reader);
		r = dedup_configure(api->reader, conf->lifecycle, conf->inventory);
		if (api->desk_reader != NULL)
			desk_reconfigure(api->desk_reader, conf->helpdesk,
					 conf->inventory);
		store_unlock(api->reader);
		if (r < 0)
			log_warnx("SIGHUP: the read connection keeps the old topology: %s",
				  strerror(-r));
	}
	if (job.recompute_error < 0)
		log_warnx("SIGHUP: recomputing the open tickets' SLA clocks failed: %s; the timer's due dates catch up as tickets change",
			  strerror(-job.recompute_error));
	else if (api->desk != NULL)
		log_notice("SIGHUP: helpdesk reloaded (%zu contracts, %zu people); the SLA clocks of %zu tickets recomputed",
			   conf->helpdesk->ncontracts, conf->helpdesk->npeople,
			   job.nrecomputed);
	for (size_t pos = 0; (warning = desk_orphans_next_warning(&job.orphans, &pos));
	     free(warning))
		log_warnx("SIGHUP: %s", warning);
	desk_orphans_clear(&job.orphans);
	if (api->desk != NULL && api->desk->dispatch != NULL)
		reload_notify(api->desk->dispatch, conf->helpdesk->notify);
	warn_restart_only(api->conf, conf);
	warn_traps_restart_only(traplisten_config(api->traps), conf->traps);
	reload_certificate(api->conf->tls, conf->tls);
	reload_keep(h, conf);
	api->conf = conf;
	log_set_level(conf->log_level);
	if (api->liveness != NULL)
		liveness_configure(api->liveness, &conf->liveness);
	if (api->retention != NULL)
		retention_configure(api->retention, &conf->retention);
	if (api->credentials != NULL)
		credentials_configure(api->credentials, &conf->enrollment);
	/* The listener thread takes it up between two datagrams. */
	traplisten_reconfigure(api->traps, conf->traps);
	log_notice("SIGHUP: configuration reloaded from %s (%zu tokens, %zu hosts in the inventory, %zu lifecycle rules)",
		   config_path, conf->ntokens, conf->inventory->nhosts,
		   conf->lifecycle->nrules);
	return 0;
}
