/*
 * The shape every agent check has.
 *
 * A check is a value: checks/<name>.c exports one `const struct check`,
 * and checks/checks.c lists them all in one table.  The agent calls
 * configure() once per configuration load with the check's own YAML node
 * (which may be NULL when the check runs on defaults), collect() on every
 * interval, and free() when the configuration goes away.  All per-instance
 * state lives behind the context pointer the check returns.
 *
 * collect() appends one result per item (a mount point, a unit, ...) and
 * returns 0; a check that cannot look at all reports a single result in
 * state unknown with the reason, rather than failing silently.
 */
#ifndef TOCSIN_CHECK_H
#define TOCSIN_CHECK_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cfg;
struct cfg_node;
struct claims;

enum check_state {
	CHECK_OK = 0,
	CHECK_WARNING = 1,
	CHECK_CRITICAL = 2,
	CHECK_UNKNOWN = 3,
};

const char *check_state_name(enum check_state state);
int check_state_parse(const char *name, enum check_state *ret_state);
/* The more serious of two states: critical > warning > unknown > ok. */
enum check_state check_state_worst(enum check_state a, enum check_state b);
int check_state_severity(enum check_state state);

struct check_result {
	char *check;
	char *item;
	enum check_state state;
	char *summary;
	json_t *metrics; /* object of name -> number, may be NULL */
	json_t *context; /* free-form details for technicians, may be NULL */
};

struct check_results {
	struct check_result *v;
	size_t n;
	size_t cap;
};

/*
 * What the collector takes (server/ingest.h allows more for summaries):
 * longer items and summaries are cut on a character boundary and end in
 * "…".  Sizes in bytes, the terminating NUL included.
 */
#define CHECK_ITEM_MAX 512
#define CHECK_SUMMARY_MAX 1024

/*
 * Append a result.  metrics and context are stolen (may be NULL); the
 * summary is formatted.  item and summary are made valid UTF-8 without
 * control characters (common/utf8.h), so that every result can become an
 * event, whatever bytes a mount point or a program gave us.  The check
 * name is filled in by the runner.
 */
struct check_result *check_results_add(struct check_results *results,
				       const char *item,
				       enum check_state state, json_t *metrics,
				       const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
void check_results_clear(struct check_results *results);

/*
 * "a, b, c and 4 more": a list of names in a summary, at most max of
 * them shown.  add() counts every name and shows the first max; end()
 * appends what was left out.  The text is cut at the buffer's size.
 */
struct check_names {
	char *buf;
	size_t size;
	size_t max;
	size_t shown;
	size_t total;
};

void check_names_init(struct check_names *names, char *buf, size_t size,
		      size_t max);
void check_names_add(struct check_names *names, const char *text);
void check_names_end(struct check_names *names);

/* The host's place in the customer's setup (agent.yaml `role`). */
enum check_role {
	CHECK_ROLE_DECENTRAL = 0, /* PCs, printers: the shop handles them */
	CHECK_ROLE_CENTRAL = 1,   /* servers, core services: tickets, SLA */
};

/* One entry of the agent's check inventory (see check_env). */
struct check_info {
	const char *name;
	int64_t interval_ms;
};

/*
 * What the agent tells every check about its surroundings.  The pointer a
 * check gets in configure() stays valid until its free(); db is filled in
 * before the first collect() and is NULL when the state directory cannot
 * be used (a check then works without history and says so).
 */
struct check_env {
	const char *host;
	const char *state_dir;
	struct sqlite3 *db; /* state_dir/agent.db, see agent/statedb.h */
	enum check_role role;
	/*
	 * Every check this configuration runs, in table order, filled in
	 * once all are configured: valid from the first collect() on, not
	 * in configure().  The heartbeat reports it as the inventory.
	 */
	const struct check_info *inventory;
	size_t ninventory;
	/*
	 * True when the agent runs each check once and exits (--once,
	 * --dry-run, check): an event-driven check then finishes what its
	 * collect() started and starts nothing new on its own.
	 */
	bool one_shot;
	/*
	 * True when the run delivers nothing (--dry-run, check): a check
	 * writes nothing about what it reported (the services check's units
	 * reported bad), for nothing was, and the next real run must still
	 * say it.  What it measured of the host it keeps as any run does
	 * (disk and backup samples, the apt snapshot): true whoever looked,
	 * and how tests build a history (agent/oneshot.h's time hook).
	 */
	bool read_only;
	/*
	 * Set just before the checks are freed for a configuration reloaded
	 * (SIGHUP), so that one that abandons work (a plugin running) can
	 * say why.
	 */
	bool reloading;
	/*
	 * Which check reports which systemd unit's failure (claims.h): the
	 * backup check claims its jobs' units in configure(), the services
	 * check leaves them to it.  NULL where nobody keeps claims.
	 */
	struct claims *claims;
	/*
	 * The longest the agent keeps results that repeat their key's state
	 * before it delivers them (server.hold_repeats; 0: at once).  A
	 * check that tells the collector how often to expect it (the
	 * heartbeat) promises no less than this.
	 */
	int64_t report_every_ms;
	/*
	 * Updated by the agent before every collect(), on_ready() and
	 * free(): true while results it took from the checks are held in
	 * memory only, because the outbox cannot be written (a full disk),
	 * and would be lost if the agent stopped.  A check that forgets what
	 * it reported once its results are queued (the services check's
	 * units reported bad) keeps it while this is true.
	 */
	bool results_unstored;
};

struct check {
	const char *name;
	int64_t default_interval_ms;
	bool enabled_by_default;
	/* Parse node (NULL: defaults), record errors in cfg.  0 or -errno. */
	int (*configure)(struct cfg *cfg, const struct cfg_node *node,
			 const struct check_env *env, void **ret_ctx);
	int (*collect)(void *ctx, int64_t now_ms, struct check_results *out);
	void (*free)(void *ctx);
	/*
	 * Optional, for checks that learn of changes as they happen (a unit
	 * failing): watch_fd() returns a file descriptor to poll (or -1), and
	 * when it is readable the agent calls on_ready(), which may append
	 * results that are delivered at once.
	 */
	int (*watch_fd)(void *ctx);
	int (*on_ready)(void *ctx, int64_t now_ms, struct check_results *out);
	/*
	 * What collect() or on_ready() returned is in the outbox (or, in a
	 * one-shot run, delivered or not) before the agent calls the check
	 * again or frees it, unless env->results_unstored says then that
	 * the outbox could not take it; the services check counts on it to
	 * forget a unit it reported bad only once the ok is queued.  Not so
	 * for checks with busy() in a one-shot run: their round is queued
	 * whole.
	 */
	/*
	 * Optional, for checks whose collect() starts work that reports
	 * later through on_ready() (plugins run as child processes): true
	 * while such results are still to come.  One-shot runs keep polling
	 * watch_fd() until it is false, so that every result is printed.
	 */
	bool (*busy)(void *ctx);
};

/* NULL-terminated, in the order checks run and print. */
extern const struct check *const checks_table[];
const struct check *checks_find(const char *name);

#endif
