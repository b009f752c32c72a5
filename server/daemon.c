#include "daemon.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "../common/config.h"
#include "../common/log.h"
#include "../common/util.h"
#include "api.h"
#include "inventory.h"
#include "liveness.h"
#include "server.h"
#include "tls.h"
#include "trapconf.h"
#include "writer.h"

void config_history_add(struct config_history *h, struct server_config *conf)
{
	h->v = xreallocarray(h->v, h->n + 1, sizeof(*h->v));
	h->v[h->n++] = conf;
}

void config_history_free(struct config_history *h)
{
	for (size_t i = 0; i < h->n; i++)
		server_config_free(h->v[i]);
	free(h->v);
	*h = (struct config_history){ 0 };
}

static bool str_differs(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		return a != b;
	return strcmp(a, b) != 0;
}

static bool tls_differs(const struct tls_config *a, const struct tls_config *b)
{
	if (a == NULL || b == NULL)
		return a != b;
	return str_differs(a->cert_pem, b->cert_pem) ||
	       str_differs(a->key_pem, b->key_pem) ||
	       str_differs(a->client_ca_pem, b->client_ca_pem) ||
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
	if (tls_differs(old->tls, new->tls))
		log_warnx(fmt, "tls");
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
	/* The trap listener keeps the configuration it was started with. */
	if (new->traps != NULL || old->traps != NULL)
		log_notice("SIGHUP: traps:, the hosts' snmp: keys and the trap mappings apply after a restart");
	if (new->traps != NULL && new->traps->mappings_unread)
		log_warnx("SIGHUP: the traps: section is new: the trap listener starts, and its mapping files are read and checked, only with a restart (check them first with tocsin-server --check-config)");
}

/*
 * Load the configuration again and, when it has no errors, make it the
 * one requests see.  Returns 0 or -EINVAL (errors logged, old one kept).
 */
static int reload(struct api *api, struct config_history *history,
		  const char *config_path, const char *dropin_dir)
{
	struct server_config *conf;
	struct cfg *cfg;
	int r;

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
	warn_restart_only(api->conf, conf);
	config_history_add(history, conf);
	api->conf = conf;
	log_set_level(conf->log_level);
	if (api->liveness != NULL)
		liveness_configure(api->liveness, &conf->liveness);
	log_notice("SIGHUP: configuration reloaded from %s (%zu tokens, %zu hosts in the inventory)",
		   config_path, conf->ntokens, conf->inventory->nhosts);
	return 0;
}

/*
 * The watchdog's view of the writer: a no-op job posted each tick; its
 * completion says the writer thread still runs jobs.
 */
struct writer_probe {
	atomic_bool pending;
};

static int probe_apply(struct store *st, void *arg)
{
	(void)st;
	(void)arg;
	return 0;
}

static void probe_done(void *arg, int result)
{
	struct writer_probe *p = arg;

	(void)result;
	atomic_store(&p->pending, false);
}

/* One watchdog tick: ping when the last probe came back, then probe again. */
static void watchdog_tick(struct api *api, struct writer_probe *probe)
{
	if (atomic_load(&probe->pending))
		return; /* the writer has not run it yet: no ping */
	sd_notify(0, "WATCHDOG=1");
	atomic_store(&probe->pending, true);
	if (writer_post(api->writer, probe_apply, probe, probe_done) < 0)
		atomic_store(&probe->pending, false); /* full: busy, not stuck */
}

void daemon_serve(struct api *api, struct config_history *history,
		  const char *config_path, const char *dropin_dir)
{
	struct writer_probe probe = { .pending = false };
	struct pollfd pfd = { .events = POLLIN };
	uint64_t watchdog_usec = 0;
	int tick_ms = -1;
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	pfd.fd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (pfd.fd < 0)
		fatal("signalfd");
	if (sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec > 0) {
		/* Four pings per period leave room for a slow commit. */
		tick_ms = (int)(watchdog_usec / 4000);
		if (tick_ms < 1)
			tick_ms = 1;
		watchdog_tick(api, &probe);
	}
	for (;;) {
		struct signalfd_siginfo si;
		int n = poll(&pfd, 1, tick_ms);

		if (n == 0) {
			watchdog_tick(api, &probe);
			continue;
		}
		if (n < 0 || read(pfd.fd, &si, sizeof(si)) != sizeof(si))
			continue;
		if (si.ssi_signo == SIGHUP) {
			sd_notify(0, "RELOADING=1");
			reload(api, history, config_path, dropin_dir);
			sd_notify(0, "READY=1");
			continue;
		}
		log_info("received signal %u, stopping", si.ssi_signo);
		break;
	}
	close(pfd.fd);
	/* The writer still owns a probe in flight: let it finish first. */
	while (atomic_load(&probe.pending) && tick_ms > 0)
		usleep(1000);
}
