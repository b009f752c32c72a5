/*
 * Lifecycle rules: how a problem key becomes, stays and stops being a
 * ticket, per check type and host.
 *
 *   lifecycle:
 *     defaults: {confirm_after: 1, reopen_within: 1h, ...}
 *     rules:
 *       - match: {check: disk, host: "web*", tags: [backup]}
 *         confirm_after: 3
 *         on_recovery: review
 *
 * The first rule whose match fits decides; keys a rule leaves out come
 * from defaults.  The configuration also carries the topology: and
 * silences: sections, which dedup needs alongside the rules.  It is
 * immutable once parsed, so any thread may read it.
 */
#ifndef TOCSIN_LIFECYCLE_H
#define TOCSIN_LIFECYCLE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cfg;
struct cfg_node;
struct host;
struct inventory;

enum recovery_action {
	RECOVERY_RESOLVE, /* the ticket is resolved when the problem goes away */
	RECOVERY_REVIEW,  /* status recovered: a technician resolves or closes it */
};

struct lifecycle_params {
	int64_t confirm_after;	  /* consecutive non-ok results; 0: not by count */
	int64_t confirm_for_ms;	  /* or lasting this long; 0: not by duration */
	int64_t flap_window_ms;
	int64_t flap_threshold;	  /* changes within the window; 0: no detection */
	int64_t reopen_within_ms; /* after a recovery; 0: never reopen */
	enum recovery_action on_recovery;
};

/* Every field set must fit; NULL (or role -1) matches anything. */
struct lifecycle_match {
	char *check; /* shell patterns */
	char *host;
	char *item;
	char **tags;	/* the host must carry all of these (inventory tags) */
	char *customer; /* inventory customer id */
	int role;	/* enum host_role, or -1 */
};

struct lifecycle_rule {
	struct lifecycle_match match;
	struct lifecycle_params params;
};

/* What makes a device "down" for the hosts behind it (topology:). */
struct down_check {
	char *check; /* shell patterns */
	char *item;
	char *host;
};

struct topology_config {
	struct down_check *down_checks;
	size_t ndown_checks;
	/* A child's ticket opened this long before its parent went down is
	 * attached to the parent's ticket after all. */
	int64_t attach_window_ms;
};

struct silence_config {
	int64_t max_duration_ms; /* the longest silence one may create */
	int64_t keep_expired_ms; /* expired silences stay listed this long */
	int64_t max_silences;	 /* active and pending at once */
};

struct lifecycle_config {
	struct lifecycle_params defaults;
	struct lifecycle_rule *rules;
	size_t nrules;
	struct topology_config topology;
	struct silence_config silences;
	int64_t tick_ms; /* how often timers (confirm_for, silence ends) run */
	/*
	 * How far ahead of the collector's clock an agent's observed_at may
	 * be: beyond it, the lifecycle and the ticket take received + this
	 * (the stored event keeps the agent's time).  Default 0: a result
	 * is never dated after it arrived.  More keeps a slightly fast
	 * agent's own times, at a price: once its clock is put right, its
	 * results stay "late" for up to this long.
	 */
	int64_t max_clock_ahead_ms;
	/*
	 * ingest.max_keys_per_host: the problem keys (rows of problems, which
	 * are never deleted) one host's agent may create; a batch that would
	 * go beyond is refused whole (dedup.h).  0: no limit.
	 */
	size_t max_keys_per_host;
};

/*
 * Parse lifecycle:, topology: and silences: of root into *ret (never
 * NULL, defaults where absent); errors are recorded in cfg with their
 * location.
 */
int lifecycle_config_parse(struct cfg *cfg, const struct cfg_node *root,
			   const struct inventory *inv,
			   struct lifecycle_config **ret);
/* The defaults alone, as if the configuration said nothing. */
struct lifecycle_config *lifecycle_config_default(void);
void lifecycle_config_free(struct lifecycle_config *lc);

/*
 * The parameters for a problem: the first rule that fits, else the
 * defaults.  h is the inventory entry of host, or NULL.
 */
const struct lifecycle_params *
lifecycle_params_for(const struct lifecycle_config *lc, const struct host *h,
		     const char *host, const char *check, const char *item);

/* The problem key silence detection raises (liveness.h says the same). */
#define LIFECYCLE_SILENCE_CHECK "heartbeat"
#define LIFECYCLE_SILENCE_ITEM "alive"

/*
 * What --check-config warns about (not errors: the server runs): rules
 * whose confirm_after cannot apply to the events the collector raises
 * once per problem.  A NULL-terminated list the caller frees with
 * cfg_string_list_free().
 */
char **lifecycle_warnings(const struct lifecycle_config *lc);

/* Whether (host, check, item) is one of the down checks. */
bool lifecycle_is_down_check(const struct lifecycle_config *lc,
			     const char *host, const char *check,
			     const char *item);

#endif
