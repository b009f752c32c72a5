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
#include <sys/signalfd.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "../common/config.h"
#include "../common/util.h"
#include "api.h"
#include "desk.h"
#include "http.h"
#include "metrics.h"
#include "server.h"
#include "store.h"
#include "writer.h"

/*
 * Jobs waiting for the writer, and jobs sharing one commit.  A group of
 * 256 agent batches of 100 events commits in a few tens of milliseconds.
 */
#define WRITER_QUEUE_MAX 4096
#define WRITER_GROUP_MAX 256

static void usage(FILE *fp)
{
	fprintf(fp,
		"usage: tocsin-server [--config FILE] [--conf-dir DIR] [--port-file FILE] [--check-config]\n"
		"\n"
		"  -c, --config FILE     main configuration (default %s)\n"
		"      --conf-dir DIR    drop-in directory (default: FILE without .yaml, plus .d)\n"
		"      --port-file FILE  write the HTTP port actually bound to FILE\n"
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

/* Serve until SIGTERM or SIGINT. */
static void serve(void)
{
	sigset_t mask;
	int sfd;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (sfd < 0)
		fatal("signalfd");
	for (;;) {
		struct signalfd_siginfo si;

		if (read(sfd, &si, sizeof(si)) != sizeof(si))
			continue;
		if (si.ssi_signo == SIGHUP) {
			log_notice("SIGHUP: reloading is not supported yet; restart the server to apply changes");
			continue;
		}
		log_info("received signal %u, stopping", si.ssi_signo);
		break;
	}
	close(sfd);
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "conf-dir", required_argument, NULL, 'd' },
		{ "port-file", required_argument, NULL, 'p' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config_path = SERVER_DEFAULT_CONFIG, *port_file = NULL;
	char *dropin_dir = NULL;
	bool check_only = false, verbose = false;
	struct server_config *conf;
	struct http_server *http;
	struct api api = { 0 };
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
	free(dropin_dir);
	if (r < 0)
		fatalx("cannot load the configuration: %s", strerror(-r));
	if (cfg_print_errors(cfg) > 0) {
		fprintf(stderr, "%s: %zu configuration error%s\n", config_path,
			cfg->nerrors, cfg->nerrors == 1 ? "" : "s");
		cfg_free(cfg);
		server_config_free(conf);
		return 2;
	}
	cfg_free(cfg);
	if (check_only) {
		printf("configuration OK\n");
		server_config_free(conf);
		return 0;
	}
	if (!verbose)
		log_set_level(conf->log_level);

	/* Block the signals before any thread starts, so all inherit it. */
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	signal(SIGPIPE, SIG_IGN);

	api.conf = conf;
	r = store_open(conf->database, &api.store);
	if (r < 0)
		fatalx("cannot open the database %s: %s", conf->database,
		       r == -EPROTO ? "it was written by a newer tocsin-server"
				    : strerror(-r));
	api.metrics = metrics_new();
	metrics_add_source(api.metrics, api_metrics, &api);
	/*
	 * Modules that listen to ticket changes (store_listen()) or add
	 * metrics sources start here, before the writer runs any job.
	 */
	r = desk_open(conf->helpdesk, conf->inventory, api.store, &api.desk);
	if (r < 0)
		fatalx("cannot start the helpdesk: %s", strerror(-r));
	metrics_add_source(api.metrics, desk_metrics, api.desk);

	r = writer_start(api.store, WRITER_QUEUE_MAX, WRITER_GROUP_MAX,
			 &api.writer);
	if (r < 0)
		fatalx("cannot start the writer thread: %s", strerror(-r));
	/*
	 * Modules that produce changes (listeners on sockets, timers) start
	 * here, after the writer and before the HTTP server.
	 */
	r = desk_start(api.desk, api.writer);
	if (r < 0)
		fatalx("cannot start the helpdesk threads: %s", strerror(-r));
	r = http_server_start(conf, api_routes, &api, api_authenticate,
			      &http);
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
	log_info("listening on %s:%u, database %s",
		 conf->listen_host ? conf->listen_host : "*",
		 http_server_port(http), conf->database);
	sd_notify(0, "READY=1");

	serve();

	sd_notify(0, "STOPPING=1");
	/*
	 * First the producers (HTTP, then the modules, in reverse order of
	 * their start), then the writer drains what they queued.
	 */
	http_server_stop(http);
	desk_stop(api.desk);
	writer_stop(api.writer);
	desk_free(api.desk);
	metrics_free(api.metrics);
	store_close(api.store);
	server_config_free(conf);
	return status;
}
