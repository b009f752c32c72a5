/*
 * tocsin-agent: runs the checks on their intervals and delivers their
 * results as events to the collector.
 */
#include <errno.h>
#include <getopt.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "../common/children.h"
#include "../common/config.h"
#include "../common/util.h"
#include "agent.h"
#include "deliverer.h"
#include "delivery.h"
#include "enroll.h"
#include "oneshot.h"
#include "report.h"
#include "service.h"
#include "statedb.h"

enum mode {
	MODE_DAEMON,
	MODE_ONCE,
	MODE_DRY_RUN,
	MODE_CHECK_CONFIG,
	MODE_CHECK, /* tocsin-agent check [NAME...] */
};

struct agent {
	struct agent_config *conf;
	sqlite3 *db;	    /* state_dir/agent.db; NULL when unusable */
	sqlite3 *spare_db;  /* in-memory outbox when db is NULL */
	struct delivery *delivery; /* NULL for --dry-run */
};

/* tocsin-agent COMMAND ...: each parses its own options. */
struct subcommand {
	const char *name;
	int (*run)(int argc, char **argv);
	const char *summary;
};

static const struct subcommand subcommands[] = {
	{ "enroll", enroll_main,
	  "obtain this host's credential with an enrollment token" },
	{ "rotate-credential", enroll_rotate_main,
	  "replace this host's credential with a new one" },
	{ NULL, NULL, NULL },
};

static void usage(FILE *fp)
{
	fprintf(fp,
		"usage: tocsin-agent [--config FILE] [--conf-dir DIR] [--once | --dry-run | --check-config]\n"
		"       tocsin-agent COMMAND [--help | options]\n"
		"       tocsin-agent [--config FILE] check [NAME...]\n"
		"\n"
		"  check [NAME...]     run the named checks (default: all) once and print\n"
		"                      their results; deliver nothing\n"
		"  -c, --config FILE   main configuration (default %s)\n"
		"      --conf-dir DIR  drop-in directory (default: FILE without .yaml, plus .d)\n"
		"      --once          run every check once, deliver, print the results\n"
		"      --dry-run       run every check once and print the results, deliver nothing\n"
		"      --check-config  validate the configuration and exit (0 OK, 2 errors)\n"
		"  -v, --verbose       log debug messages\n"
		"      --version       print the version\n"
		"\n"
		"commands:\n",
		AGENT_DEFAULT_CONFIG);
	for (size_t i = 0; subcommands[i].name; i++)
		fprintf(fp, "  %-19s %s\n", subcommands[i].name,
			subcommands[i].summary);
}

/* Name the results a check produced (from index first on) after it. */
static void tag_results(struct check_results *results, size_t first,
			const struct check *ck)
{
	for (size_t j = first; j < results->n; j++)
		if (results->v[j].check == NULL)
			results->v[j].check = xstrdup(ck->name);
}

/* Run the checks that are due (all of them when force) into results. */
static void run_checks(struct agent_config *conf, bool force,
		       struct check_results *results)
{
	int64_t now = time_mono_ms();

	for (size_t i = 0; i < conf->nchecks; i++) {
		struct agent_check *ac = &conf->checks[i];
		size_t first = results->n;

		if (!force && ac->next_due_ms > now)
			continue;
		ac->next_due_ms = now + ac->interval_ms;
		if (ac->check->collect(ac->ctx, time_now_ms(), results) < 0)
			check_results_add(results, ac->check->name,
					  CHECK_UNKNOWN, NULL,
					  "the %s check failed to run",
					  ac->check->name);
		tag_results(results, first, ac->check);
	}
}

/* Is one of these signals waiting (blocked, so pending until read)? */
static bool signal_waits(bool or_hup)
{
	sigset_t pending;

	if (sigpending(&pending) < 0)
		return false;
	return sigismember(&pending, SIGTERM) == 1 ||
	       sigismember(&pending, SIGINT) == 1 ||
	       (or_hup && sigismember(&pending, SIGHUP) == 1);
}

/*
 * Called while --once waits for the deliverer: keep the watchdog fed, and
 * give up when SIGTERM, SIGINT or SIGHUP waits (blocked, so pending until
 * the main loop reads it).  The daemon never waits for the deliverer: its
 * answers come through the main loop's poll().
 */
static bool should_abort(void *arg)
{
	(void)arg;
	service_watchdog();
	return signal_waits(true);
}

/* Block SIGTERM, SIGINT and SIGHUP (the set in *ret_mask, may be NULL). */
static void block_stop_signals(sigset_t *ret_mask)
{
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	if (ret_mask)
		*ret_mask = mask;
}

static void warn_plain_http(const struct agent_config *conf)
{
	for (size_t i = 0; conf->server_urls[i]; i++)
		if (strncmp(conf->server_urls[i], "http://", 7) == 0)
			log_warnx("delivering over plain HTTP to %s (server.allow_plain_http): events and the credential travel unencrypted",
				  conf->server_urls[i]);
}

static int agent_start(struct agent *a, struct agent_config *conf, bool send)
{
	char why[1024];
	int r;

	a->conf = conf;
	r = statedb_open(conf->state_dir, &a->db);
	if (r < 0)
		log_warnx("cannot use the state directory %s: %s; checks run without history",
			  conf->state_dir, strerror(-r));
	conf->env.db = a->db;
	conf->env.read_only = !send;
	if (!send)
		return 0;
	if (a->db == NULL) {
		log_errorx("the outbox is kept in memory only: events not yet delivered are lost when the agent stops");
		if (sqlite3_open(":memory:", &a->spare_db) != SQLITE_OK)
			fatalx("cannot open an in-memory outbox");
	}
	r = delivery_new(a->db ? a->db : a->spare_db, conf, should_abort, a,
			 &a->delivery, why, sizeof(why));
	if (r < 0) {
		log_errorx("%s", why);
		return r;
	}
	warn_plain_http(conf);
	return 0;
}

/*
 * Before the checks are called or freed: whether what they returned so
 * far is stored (check_env.results_unstored).
 */
static void tell_checks(struct agent *a)
{
	if (a->conf != NULL)
		a->conf->env.results_unstored = delivery_unstored(a->delivery);
}

static void agent_stop(struct agent *a)
{
	tell_checks(a);
	delivery_free(a->delivery);
	/* The checks may hold statements on the database: free them first. */
	agent_config_free(a->conf);
	statedb_close(a->db);
	sqlite3_close(a->spare_db);
}

/*
 * --once, --dry-run and check: one round of the named checks (all when
 * nnames is 0), printed, and delivered when send.
 */
static int run_once(struct agent *a, bool send, char *const *names,
		    size_t nnames)
{
	struct check_results results = { 0 };
	bool hooked;
	int64_t now;
	char why[1024];
	size_t sent = 0;
	int r = 0;

	if (oneshot_clock(&now, &hooked) < 0) {
		fprintf(stderr, "tocsin-agent: %s: '%s' is not an RFC 3339 time or seconds since the epoch\n",
			ONESHOT_TEST_NOW_ENV, getenv(ONESHOT_TEST_NOW_ENV));
		return 2;
	}
	if (hooked)
		log_warnx("test hook %s is set: the checks see that time, not the real one",
			  ONESHOT_TEST_NOW_ENV);
	oneshot_run(a->conf, names, nnames, now, &results);
	report_print(stdout, &results);
	if (send) {
		/*
		 * Blocked from here to the exit, so that should_abort() sees
		 * them: a stop abandons the request in flight and is said,
		 * instead of killing us with the results still in stdout's
		 * buffer.
		 */
		block_stop_signals(NULL);
		delivery_queue(a->delivery, &results, true);
		r = delivery_flush(a->delivery, &sent, why, sizeof(why));
		if (r < 0)
			fprintf(stderr, "tocsin-agent: not delivered: %s\n", why);
		else
			printf("delivered %zu events to %s\n", sent,
			       delivery_url(a->delivery));
	}
	check_results_clear(&results);
	return r < 0 ? 1 : 0;
}

static int reload(struct agent *a, const char *config_path,
		  const char *dropin_dir)
{
	struct agent_config *conf;
	struct cfg *cfg;
	char why[1024];
	int r;

	r = agent_config_load(config_path, dropin_dir, &conf, &cfg);
	if (r < 0)
		return r;
	if (cfg->nerrors > 0) {
		for (size_t i = 0; i < cfg->nerrors; i++)
			log_warnx("reload: %s", cfg->errors[i]);
		log_warnx("configuration not reloaded: %zu error%s",
			  cfg->nerrors, cfg->nerrors == 1 ? "" : "s");
		cfg_free(cfg);
		agent_config_free(conf);
		return -EINVAL;
	}
	cfg_free(cfg);
	conf->env.db = a->db;
	r = delivery_reconfigure(a->delivery, conf, why, sizeof(why));
	if (r < 0) {
		log_warnx("configuration not reloaded: %s", why);
		agent_config_free(conf);
		return r;
	}
	if (strcmp(conf->state_dir, a->conf->state_dir) != 0)
		log_warnx("state_dir %s takes effect at the next start; the outbox stays in %s until then",
			  conf->state_dir, a->conf->state_dir);
	a->conf->env.reloading = true;
	tell_checks(a);
	agent_config_free(a->conf);
	a->conf = conf;
	log_set_level(conf->log_level);
	warn_plain_http(conf);
	log_info("configuration reloaded: %zu checks", conf->nchecks);
	return 0;
}

static int64_t next_due(const struct agent_config *conf)
{
	int64_t due = INT64_MAX;

	for (size_t i = 0; i < conf->nchecks; i++)
		if (conf->checks[i].next_due_ms < due)
			due = conf->checks[i].next_due_ms;
	return due;
}

/*
 * Fill pfds with the signal fd, the deliverers' fds (*ret_ndelivery of
 * them, from pfds[1] on) and every event-driven check's fd; owners maps
 * pfds[i] to the check it belongs to (NULL for the others).  Returns the
 * count.
 */
static size_t build_pollset(const struct agent *a, int sfd, struct pollfd *pfds,
			    struct agent_check **owners, size_t max,
			    size_t *ret_ndelivery)
{
	const struct agent_config *conf = a->conf;
	size_t n = 0, nd;

	pfds[n] = (struct pollfd){ .fd = sfd, .events = POLLIN };
	owners[n++] = NULL;
	nd = delivery_pollfds(a->delivery, &pfds[n], max - n);
	for (size_t i = 0; i < nd; i++)
		owners[n++] = NULL;
	*ret_ndelivery = nd;
	for (size_t i = 0; i < conf->nchecks && n < max; i++) {
		struct agent_check *ac = &conf->checks[i];
		int fd = ac->check->watch_fd ? ac->check->watch_fd(ac->ctx) : -1;

		if (fd < 0)
			continue;
		pfds[n] = (struct pollfd){ .fd = fd, .events = POLLIN };
		owners[n++] = ac;
	}
	return n;
}

/* Let every event-driven check whose fd is ready report what happened. */
static void run_ready_checks(struct pollfd *pfds, struct agent_check **owners,
			     size_t n, struct check_results *results)
{
	for (size_t i = 1; i < n; i++) {
		struct agent_check *ac = owners[i];
		size_t first = results->n;

		if (ac == NULL || !(pfds[i].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		ac->check->on_ready(ac->ctx, time_now_ms(), results);
		tag_results(results, first, ac->check);
	}
}

/* How long the main loop may sleep: until a check, a retry or the watchdog. */
static int poll_timeout(const struct agent *a)
{
	int64_t wait = next_due(a->conf) - time_mono_ms();
	int64_t other = delivery_wait_ms(a->delivery);

	if (other < wait)
		wait = other;
	other = service_watchdog_wait_ms();
	if (other < wait)
		wait = other;
	if (wait < 0)
		wait = 0;
	return wait > 60000 ? 60000 : (int)wait;
}

#define POLL_MAX 64

static int run_daemon(struct agent *a, const char *config_path,
		      const char *dropin_dir)
{
	sigset_t mask;
	int sfd;

	block_stop_signals(&mask);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		fatal("signalfd");

	log_info("started for host %s with %zu checks, delivering to %s",
		 a->conf->host, a->conf->nchecks, delivery_url(a->delivery));
	service_ready();
	service_status("%zu checks, delivering to %s", a->conf->nchecks,
		       delivery_url(a->delivery));
	for (;;) {
		struct check_results results = { 0 };
		struct pollfd pfds[POLL_MAX];
		struct agent_check *owners[POLL_MAX];
		struct signalfd_siginfo si;
		size_t n, nd;

		tell_checks(a);
		run_checks(a->conf, false, &results);
		delivery_queue(a->delivery, &results, false);
		check_results_clear(&results);
		delivery_run(a->delivery);
		service_watchdog();

		n = build_pollset(a, sfd, pfds, owners, POLL_MAX, &nd);
		if (poll(pfds, n, poll_timeout(a)) <= 0)
			continue;
		/*
		 * A stop signals the whole unit (systemd, Ctrl-C): a deliverer
		 * found dead with the stop waiting died of it, which is no
		 * failure to log and retry; the stop abandons its request.
		 */
		if (!signal_waits(false))
			delivery_on_ready(a->delivery, &pfds[1], nd);
		tell_checks(a);
		run_ready_checks(pfds, owners, n, &results);
		/* A change seen as it happens goes out at once. */
		delivery_queue(a->delivery, &results, true);
		check_results_clear(&results);
		if (!(pfds[0].revents & POLLIN) ||
		    read(sfd, &si, sizeof(si)) != sizeof(si))
			continue;
		if (si.ssi_signo == SIGHUP) {
			service_reloading();
			reload(a, config_path, dropin_dir);
			service_ready();
			continue;
		}
		log_info("received signal %u, stopping", si.ssi_signo);
		service_stopping();
		break;
	}
	close(sfd);
	return 0;
}

/* tocsin-agent COMMAND ...: the entry of a subcommand, or NULL. */
static const struct subcommand *subcommand_find(const char *name)
{
	for (size_t i = 0; subcommands[i].name; i++)
		if (strcmp(subcommands[i].name, name) == 0)
			return &subcommands[i];
	return NULL;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "conf-dir", required_argument, NULL, 'd' },
		{ "once", no_argument, NULL, 'o' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "check-config", no_argument, NULL, 'C' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "version", no_argument, NULL, 'V' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config_path = AGENT_DEFAULT_CONFIG;
	char *dropin_dir = NULL;
	enum mode mode = MODE_DAEMON;
	bool verbose = false;
	struct agent a = { 0 };
	struct agent_config *conf;
	struct cfg *cfg;
	int c, r;

	/* "check" is a mode of the runner below, parsed with its options. */
	if (argc > 1 && argv[1][0] != '-' && strcmp(argv[1], "check") != 0) {
		const struct subcommand *sc = subcommand_find(argv[1]);

		if (sc == NULL) {
			fprintf(stderr, "tocsin-agent: unknown command '%s'\n",
				argv[1]);
			usage(stderr);
			return 2;
		}
		log_init("tocsin-agent", LOG_LEVEL_INFO);
		return sc->run(argc - 1, argv + 1);
	}
	while ((c = getopt_long(argc, argv, "c:vh", opts, NULL)) != -1) {
		switch (c) {
		case 'c':
			config_path = optarg;
			break;
		case 'd':
			free(dropin_dir);
			dropin_dir = xstrdup(optarg);
			break;
		case 'o':
			mode = MODE_ONCE;
			break;
		case 'n':
			mode = MODE_DRY_RUN;
			break;
		case 'C':
			mode = MODE_CHECK_CONFIG;
			break;
		case 'v':
			verbose = true;
			break;
		case 'V':
			printf("tocsin-agent %s\n", TOCSIN_VERSION);
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind < argc && strcmp(argv[optind], "check") == 0 &&
	    mode == MODE_DAEMON) {
		mode = MODE_CHECK;
		optind++;
	}
	if (optind != argc && mode != MODE_CHECK) {
		usage(stderr);
		return 2;
	}
	log_init("tocsin-agent", verbose ? LOG_LEVEL_DEBUG : LOG_LEVEL_INFO);
	if (dropin_dir == NULL)
		dropin_dir = cfg_dropin_dir_for(config_path);

	r = agent_config_load(config_path, dropin_dir, &conf, &cfg);
	if (r < 0)
		fatalx("cannot load the configuration: %s", strerror(-r));
	if (cfg_print_errors(cfg) > 0) {
		fprintf(stderr, "%s: %zu configuration error%s\n", config_path,
			cfg->nerrors, cfg->nerrors == 1 ? "" : "s");
		cfg_free(cfg);
		agent_config_free(conf);
		free(dropin_dir);
		return 2;
	}
	cfg_free(cfg);
	if (mode == MODE_CHECK_CONFIG) {
		char *path = NULL, why[1024];

		/* a daemon that cannot deliver is not ready to start */
		if (deliverer_locate(conf->deliverer_path, &path, why,
				     sizeof(why)) < 0) {
			fprintf(stderr, "%s: %s\n", config_path, why);
			agent_config_free(conf);
			free(dropin_dir);
			return 2;
		}
		free(path);
		printf("configuration OK\n");
		agent_config_free(conf);
		free(dropin_dir);
		return 0;
	}
	if (!verbose)
		log_set_level(conf->log_level);
	if (mode == MODE_CHECK) {
		char err[512];

		if (oneshot_check_names(conf, argv + optind,
					(size_t)(argc - optind), err,
					sizeof(err)) < 0) {
			fprintf(stderr, "tocsin-agent: %s\n", err);
			agent_config_free(conf);
			free(dropin_dir);
			return 2;
		}
	}

	service_init();
	/* what a plugin leaves behind, even out of its group, is ours to kill */
	r = children_adopt_orphans();
	if (r < 0)
		log_warnx("cannot become the subreaper of plugins' leftovers: %s; "
			  "a process that leaves its plugin's group may outlive it",
			  strerror(-r));
	r = agent_start(&a, conf, mode == MODE_DAEMON || mode == MODE_ONCE);
	if (r < 0) {
		agent_stop(&a);
		free(dropin_dir);
		return 1;
	}
	switch (mode) {
	case MODE_ONCE:
		r = run_once(&a, true, NULL, 0);
		break;
	case MODE_DRY_RUN:
		r = run_once(&a, false, NULL, 0);
		break;
	case MODE_CHECK:
		r = run_once(&a, false, argv + optind, (size_t)(argc - optind));
		break;
	default:
		r = run_daemon(&a, config_path, dropin_dir);
		break;
	}
	agent_stop(&a);
	free(dropin_dir);
	return r;
}
