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

#include "../common/config.h"
#include "../common/util.h"
#include "agent.h"
#include "event.h"
#include "oneshot.h"
#include "report.h"
#include "statedb.h"
#include "transport.h"

/* Events kept in memory while the collector is unreachable. */
#define PENDING_MAX 10000

enum mode {
	MODE_DAEMON,
	MODE_ONCE,
	MODE_DRY_RUN,
	MODE_CHECK_CONFIG,
	MODE_CHECK, /* tocsin-agent check [NAME...] */
};

struct agent {
	struct agent_config *conf;
	sqlite3 *db; /* state_dir/agent.db; NULL when unusable */
	struct transport *transport;
	json_t *pending; /* events not yet acknowledged */
	size_t dropped;
};

static void usage(FILE *fp)
{
	fprintf(fp,
		"usage: tocsin-agent [--config FILE] [--conf-dir DIR] [--once | --dry-run | --check-config]\n"
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
		"      --version       print the version\n",
		AGENT_DEFAULT_CONFIG);
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

static void queue_results(struct agent *a, const struct check_results *results)
{
	int64_t now = time_now_ms();

	for (size_t i = 0; i < results->n; i++) {
		json_t *ev = event_from_result(&results->v[i], now);

		if (ev == NULL)
			continue;
		if (json_array_size(a->pending) >= PENDING_MAX) {
			/* Keep the newest state: the oldest sample is stale. */
			json_array_remove(a->pending, 0);
			a->dropped++;
		}
		json_array_append_new(a->pending, ev);
	}
}

/* Send everything pending; returns 0 when the collector took it all. */
static int deliver(struct agent *a, char *why, size_t whylen)
{
	struct transport_reply reply;
	json_t *batch;
	char *body;
	int r;

	if (json_array_size(a->pending) == 0)
		return 0;
	batch = event_batch(a->conf->host, a->pending);
	body = batch ? json_dumps(batch, JSON_COMPACT | JSON_REAL_PRECISION(15)) : NULL;
	json_decref(batch);
	if (body == NULL) {
		snprintf(why, whylen, "cannot encode the events");
		return -ENOMEM;
	}
	r = transport_post_events(a->transport, body, strlen(body), &reply);
	free(body);
	if (r < 0) {
		strlcpy_safe(why, reply.error, whylen);
		return r;
	}
	log_debug("delivered %zu events", json_array_size(a->pending));
	json_array_clear(a->pending);
	return 0;
}

static int agent_start(struct agent *a, struct agent_config *conf)
{
	int r;

	a->conf = conf;
	a->pending = json_array();
	r = statedb_open(conf->state_dir, &a->db);
	if (r < 0)
		log_warnx("cannot use the state directory %s: %s; checks run without history",
			  conf->state_dir, strerror(-r));
	conf->env.db = a->db;
	r = transport_new(conf->server_url, conf->token, conf->timeout_ms,
			  &a->transport);
	if (r < 0)
		return r;
	return 0;
}

static void agent_stop(struct agent *a)
{
	transport_free(a->transport);
	json_decref(a->pending);
	/* The checks may hold statements on the database: free them first. */
	agent_config_free(a->conf);
	statedb_close(a->db);
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
	char why[512];
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
		queue_results(a, &results);
		r = deliver(a, why, sizeof(why));
		if (r < 0)
			fprintf(stderr, "tocsin-agent: not delivered: %s\n", why);
		else
			printf("delivered %zu events to %s\n", results.n,
			       a->conf->server_url);
	}
	check_results_clear(&results);
	return r < 0 ? 1 : 0;
}

static int reload(struct agent *a, const char *config_path,
		  const char *dropin_dir)
{
	struct agent_config *conf;
	struct transport *t;
	struct cfg *cfg;
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
	r = transport_new(conf->server_url, conf->token, conf->timeout_ms, &t);
	if (r < 0) {
		agent_config_free(conf);
		return r;
	}
	transport_free(a->transport);
	agent_config_free(a->conf);
	a->transport = t;
	a->conf = conf;
	conf->env.db = a->db;
	log_set_level(conf->log_level);
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
 * Fill pfds with the signal fd and every event-driven check's fd; owners
 * maps pfds[i] to the check it belongs to.  Returns the count.
 */
static size_t build_pollset(const struct agent_config *conf, int sfd,
			    struct pollfd *pfds, struct agent_check **owners,
			    size_t max)
{
	size_t n = 0;

	pfds[n] = (struct pollfd){ .fd = sfd, .events = POLLIN };
	owners[n++] = NULL;
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

		if (!(pfds[i].revents & (POLLIN | POLLHUP | POLLERR)))
			continue;
		ac->check->on_ready(ac->ctx, time_now_ms(), results);
		tag_results(results, first, ac->check);
	}
}

/* One delivery attempt when something is pending and the backoff allows. */
static void deliver_pending(struct agent *a, int64_t *retry_at,
			    int64_t *backoff)
{
	int64_t now = time_mono_ms();
	char why[512];

	if (json_array_size(a->pending) == 0 || now < *retry_at)
		return;
	if (deliver(a, why, sizeof(why)) < 0) {
		log_warnx("%s; %zu events kept, retry in %llds", why,
			  json_array_size(a->pending),
			  (long long)(*backoff / 1000));
		*retry_at = now + *backoff;
		*backoff = *backoff * 2 > 300000 ? 300000 : *backoff * 2;
	} else {
		*backoff = 1000;
		*retry_at = 0;
	}
}

#define POLL_MAX 64

static int run_daemon(struct agent *a, const char *config_path,
		      const char *dropin_dir)
{
	int64_t retry_at = 0, backoff = 1000;
	sigset_t mask;
	int sfd;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	sigprocmask(SIG_BLOCK, &mask, NULL);
	sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0)
		fatal("signalfd");

	log_info("started for host %s with %zu checks, delivering to %s",
		 a->conf->host, a->conf->nchecks, a->conf->server_url);
	sd_notify(0, "READY=1");
	for (;;) {
		struct check_results results = { 0 };
		struct pollfd pfds[POLL_MAX];
		struct agent_check *owners[POLL_MAX];
		struct signalfd_siginfo si;
		int64_t wait;
		size_t n;

		run_checks(a->conf, false, &results);
		queue_results(a, &results);
		check_results_clear(&results);
		deliver_pending(a, &retry_at, &backoff);

		wait = next_due(a->conf) - time_mono_ms();
		if (json_array_size(a->pending) > 0 &&
		    retry_at - time_mono_ms() < wait)
			wait = retry_at - time_mono_ms();
		if (wait < 0)
			wait = 0;
		if (wait > 60000)
			wait = 60000;
		n = build_pollset(a->conf, sfd, pfds, owners, POLL_MAX);
		if (poll(pfds, n, (int)wait) <= 0)
			continue;
		run_ready_checks(pfds, owners, n, &results);
		if (results.n > 0) {
			/* A change seen as it happens goes out at once. */
			queue_results(a, &results);
			retry_at = 0;
			deliver_pending(a, &retry_at, &backoff);
		}
		check_results_clear(&results);
		if (!(pfds[0].revents & POLLIN) ||
		    read(sfd, &si, sizeof(si)) != sizeof(si))
			continue;
		if (si.ssi_signo == SIGHUP) {
			sd_notify(0, "RELOADING=1");
			reload(a, config_path, dropin_dir);
			sd_notify(0, "READY=1");
			continue;
		}
		log_info("received signal %u, stopping", si.ssi_signo);
		sd_notify(0, "STOPPING=1");
		break;
	}
	close(sfd);
	return 0;
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

	r = agent_start(&a, conf);
	if (r < 0)
		fatalx("cannot start: %s", strerror(-r));
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
