/*
 * tocsin-server: the collector.  Receives events from agents, keeps one
 * deduplicated ticket per problem and serves them over a JSON API.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "../common/config.h"
#include "../common/util.h"
#include "account.h"
#include "api.h"
#include "console_api.h"
#include "audit.h"
#include "checkpoint.h"
#include "credentials.h"
#include "credlist.h"
#include "daemon.h"
#include "dedup.h"
#include "dedup_metrics.h"
#include "desk.h"
#include "http.h"
#include "lifecycle.h"
#include "liveness.h"
#include "metrics.h"
#include "privdrop.h"
#include "reload.h"
#include "retention.h"
#include "server.h"
#include "session.h"
#include "store.h"
#include "trap.h"
#include "trapconf.h"
#include "traplisten.h"
#include "trapmap.h"
#include "writer.h"

static void usage(FILE *fp)
{
	fprintf(fp,
		"usage: tocsin-server [--config FILE] [--conf-dir DIR] [--port-file FILE] [--check-config]\n"
		"\n"
		"  -c, --config FILE     main configuration (default %s)\n"
		"      --conf-dir DIR    drop-in directory (default: FILE without .yaml, plus .d)\n"
		"      --port-file FILE  write the HTTP port actually bound to FILE\n"
		"      --trap-port-file FILE  write the SNMP trap port actually bound to FILE\n"
		"      --check-config    validate the configuration and exit (0 OK, 2 errors)\n"
		"  -v, --verbose         log debug messages\n"
		"      --version         print the version\n",
		SERVER_DEFAULT_CONFIG);
}

static int write_port_file(const char *path, uint16_t port)
{
	char text[16];

	snprintf(text, sizeof(text), "%u\n", port);
	return write_file_atomic(path, text, 0644);
}

/*
 * Bind the trap sockets and report the port; then, as root with a port
 * below 1024, become traps.user (default tocsin) before anything else
 * runs, and without root give up the capabilities that allowed binding.
 * Failures are fatal: this runs at start-up.
 */
static void start_trap_sockets(const struct trap_config *tc,
			       const char *port_file, struct traplisten **ret)
{
	const char *user = tc->user ? tc->user : "tocsin";
	int r = traplisten_bind(tc, ret);

	if (r < 0)
		fatalx("cannot listen for SNMP traps (traps.listen): %s",
		       strerror(-r));
	if (port_file != NULL) {
		r = write_port_file(port_file, traplisten_port(*ret));
		if (r < 0)
			fatalx("cannot write the trap port file %s: %s",
			       port_file, strerror(-r));
	}
	if (geteuid() != 0) {
		/* Not root: a capability to bind, if any, is no longer needed. */
		r = privdrop_capabilities();
		if (r < 0)
			fatalx("cannot give up capabilities after binding %s: %s",
			       traplisten_describe(*ret), strerror(-r));
		return;
	}
	if (!traplisten_privileged(*ret) || strcmp(user, "root") == 0)
		return;
	r = privdrop_to_user(user);
	if (r == -ENOENT)
		fatalx("traps.user: there is no user '%s' to run as after binding %s; create it, or set traps.user",
		       user, traplisten_describe(*ret));
	if (r < 0)
		fatalx("cannot become user %s: %s", user, strerror(-r));
	log_info("bound %s as root, now running as %s", traplisten_describe(*ret),
		 user);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "conf-dir", required_argument, NULL, 'd' },
		{ "port-file", required_argument, NULL, 'p' },
		{ "trap-port-file", required_argument, NULL, 'T' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config_path = SERVER_DEFAULT_CONFIG, *port_file = NULL;
	const char *trap_port_file = NULL;
	struct traplisten *traps = NULL;
	char *dropin_dir = NULL;
	bool check_only = false, verbose = false;
	struct server_config *conf;
	struct reload_history history = { 0 };
	struct http_server *http;
	struct api api = { 0 };
	struct dedup_timer *dedup_timer = NULL;
	struct checkpointer *checkpointer = NULL;
	struct cfg *cfg;
	sigset_t mask;
	int c, r, status = 0;

	while ((c = getopt_long(argc, argv, "c:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config_path = optarg;
			break;
		case 'd':
			free(dropin_dir);
			dropin_dir = xstrdup(optarg);
			break;
		case 'p':
			port_file = optarg;
			break;
		case 'T':
			trap_port_file = optarg;
			break;
		case 'C':
			check_only = true;
			break;
		case 'v':
			verbose = true;
			break;
		case 'V':
			printf("tocsin-server %s\n", TOCSIN_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	log_init("tocsin-server", verbose ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
	if (sodium_init() < 0)
		fatalx("libsodium cannot be initialised");
	if (dropin_dir == NULL)
		dropin_dir = cfg_dropin_dir_for(config_path);

	r = server_config_load(config_path, dropin_dir, &conf, &cfg);
	if (r < 0)
		fatalx("cannot load the configuration: %s", strerror(-r));
	if (cfg_print_errors(cfg) > 0) {
		fprintf(stderr, "%s: %zu configuration error%s\n", config_path,
			cfg->nerrors, cfg->nerrors == 1 ? "" : "s");
		cfg_free(cfg);
		server_config_free(conf);
		free(dropin_dir);
		return 2;
	}
	cfg_free(cfg);
	/* net-snmp is initialised now or never: threads start below. */
	trap_snmp_seal();
	if (check_only) {
		char **warnings = lifecycle_warnings(conf->lifecycle);

		for (size_t i = 0; warnings[i]; i++)
			fprintf(stderr, "%s: warning: %s\n", config_path,
				warnings[i]);
		cfg_string_list_free(warnings);
		printf("configuration OK\n");
		server_config_free(conf);
		free(dropin_dir);
		return 0;
	}
	reload_keep(&history, conf);
	if (!verbose)
		log_set_level(conf->log_level);

	/* Block the signals before any thread starts, so all inherit it. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* Privileged sockets first: root is dropped before anything else. */
	if (conf->traps != NULL)
		start_trap_sockets(conf->traps, trap_port_file, &traps);

	api.conf = conf;
	r = store_open(conf->database, &api.store);
	if (r < 0)
		fatalx("cannot open the database %s: %s", conf->database,
		       r == -EPROTO ? "it was written by a newer tocsin-server"
				    : strerror(-r));
	r = audit_open(api.store, &api.audit);
	if (r == 0)
		r = credentials_open(api.store, api.audit, &api.credentials);
	if (r == 0)
		r = accounts_open(api.store, api.audit, &api.accounts);
	if (r == 0)
		r = sessions_open(api.store, api.accounts, &conf->console,
				  time_now_ms(), &api.sessions);
	if (r < 0)
		fatalx("cannot load the credentials from %s: %s",
		       conf->database, strerror(-r));
	credentials_configure(api.credentials, &conf->enrollment);
	/* The read side's connection, with the read contexts over it. */
	r = store_open_reader(conf->database, &api.reader);
	if (r == 0)
		r = credlist_open(api.reader, &api.credlist);
	if (r == 0)
		r = dedup_configure(api.reader, conf->lifecycle, conf->inventory);
	if (r == 0)
		r = desk_open(conf->helpdesk, conf->inventory, api.reader,
			      &api.desk_reader);
	if (r < 0)
		fatalx("cannot open a read connection to %s: %s",
		       conf->database, strerror(-r));
	api.metrics = metrics_new();
	metrics_add_source(api.metrics, api_metrics, &api);
	metrics_add_source(api.metrics, console_api_metrics, &api);
	r = dedup_configure(api.store, conf->lifecycle, conf->inventory);
	if (r < 0)
		fatalx("cannot prepare deduplication: %s", strerror(-r));
	metrics_add_source(api.metrics, dedup_metrics_source, api.reader);
	/*
	 * Modules that listen to ticket changes (store_listen()) or add
	 * metrics sources start here, before the writer runs any job.
	 */
	r = desk_open(conf->helpdesk, conf->inventory, api.store, &api.desk);
	if (r < 0)
		fatalx("cannot start the helpdesk: %s", strerror(-r));
	metrics_add_source(api.metrics, desk_metrics, api.desk);

	r = retention_open(api.store, &conf->retention, &api.retention);
	if (r < 0)
		fatalx("cannot prepare event retention: %s", strerror(-r));
	metrics_add_source(api.metrics, retention_metrics, api.retention);
	r = checkpoint_start(api.store, conf->database, &checkpointer);
	if (r < 0)
		fatalx("cannot start the WAL checkpointer: %s", strerror(-r));
	metrics_add_source(api.metrics, checkpoint_metrics, checkpointer);
	r = writer_start(api.store, conf->writer_queue, conf->writer_group,
			 &api.writer);
	if (r < 0)
		fatalx("cannot start the writer thread: %s", strerror(-r));
	credentials_attach_writer(api.credentials, api.writer);
	accounts_attach_writer(api.accounts, api.writer);
	sessions_attach_writer(api.sessions, api.writer);
	/*
	 * Modules that produce changes (listeners on sockets, timers) start
	 * here, after the writer and before the HTTP server.
	 */
	r = dedup_timer_start(api.writer, conf->lifecycle->tick_ms, &dedup_timer);
	if (r < 0)
		fatalx("cannot start the lifecycle timer: %s", strerror(-r));
	r = desk_start(api.desk, api.writer);
	if (r < 0)
		fatalx("cannot start the helpdesk threads: %s", strerror(-r));
	r = liveness_start(api.store, api.writer, &conf->liveness, time_now_ms(),
			   &api.liveness);
	if (r == 0)
		r = liveness_attach_reader(api.liveness, api.reader);
	if (r < 0)
		fatalx("cannot start silence detection: %s", strerror(-r));
	metrics_add_source(api.metrics, liveness_metrics, api.liveness);
	r = retention_start(api.retention, api.writer);
	if (r < 0)
		fatalx("cannot start event retention: %s", strerror(-r));
	if (traps != NULL) {
		r = traplisten_start(traps, api.store, api.writer, api.metrics);
		if (r < 0)
			fatalx("cannot start the trap listener: %s", strerror(-r));
		api.traps = traps;
		log_info("listening for SNMP traps on %s (udp): %zu devices, %zu mappings besides the fallback",
			 traplisten_describe(traps), conf->traps->ndevices,
			 trapmap_count(conf->traps->map));
	}
	r = http_server_start_sessions(conf, api_routes, &api, api_authenticate,
				       console_api_session_auth, &http);
	if (r < 0)
		fatalx("cannot listen on %s:%u: %s",
		       conf->listen_host ? conf->listen_host : "*",
		       conf->listen_port, strerror(-r));
	if (port_file != NULL) {
		r = write_port_file(port_file, http_server_port(http));
		if (r < 0)
			fatalx("cannot write the port file %s: %s", port_file,
			       strerror(-r));
	}
	{
		const char *journal, *sync;

		store_durability(api.store, &journal, &sync);
		log_info("listening on %s:%u (%s), database %s (journal_mode=%s, synchronous=%s)",
			 conf->listen_host ? conf->listen_host : "*",
			 http_server_port(http), conf->tls ? "HTTPS" : "plain HTTP",
			 conf->database, journal, sync);
		if (strcmp(journal, "wal") != 0 || strcmp(sync, "full") != 0)
			log_warnx("the database does not commit as designed (WAL, synchronous=FULL): an acknowledgement may not survive a power cut");
	}
	if (conf->tls == NULL)
		log_warnx("serving plain HTTP (allow_plain_http: true): bearer tokens and events cross the network unencrypted; configure tls: beyond loopback");
	sd_notify(0, "READY=1");

	daemon_serve(&api, &history, config_path, dropin_dir);

	sd_notify(0, "STOPPING=1");
	/*
	 * First the producers (HTTP, then the modules, in reverse order of
	 * their start), then the writer drains what they queued.
	 */
	http_server_stop(http);
	traplisten_stop(traps);
	retention_close(api.retention);
	liveness_stop(api.liveness);
	desk_stop(api.desk);
	dedup_timer_stop(dedup_timer);
	writer_stop(api.writer);
	checkpoint_stop(checkpointer);
	desk_free(api.desk);
	desk_free(api.desk_reader);
	credlist_close(api.credlist);
	store_close(api.reader);
	credentials_close(api.credentials);
	accounts_close(api.accounts);
	sessions_free(api.sessions);
	audit_close(api.audit);
	metrics_free(api.metrics);
	store_close(api.store);
	reload_history_free(&history);
	free(dropin_dir);
	return status;
}
