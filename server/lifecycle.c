#include "lifecycle.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/config.h"
#include "../common/util.h"
#include "flap.h"
#include "inventory.h"

#define MINUTE_MS (60 * 1000LL)
#define HOUR_MS (60 * MINUTE_MS)
#define DAY_MS (24 * HOUR_MS)

/*
 * Today's behaviour, kept sensible: a problem is a ticket from its first
 * non-ok result, a recovery resolves it, a recurrence within the hour
 * reopens it, and six changes within the hour make it one flapping ticket.
 */
static const struct lifecycle_params builtin_params = {
	.confirm_after = 1,
	.confirm_for_ms = 0,
	.flap_window_ms = HOUR_MS,
	.flap_threshold = 6,
	.reopen_within_ms = HOUR_MS,
	.on_recovery = RECOVERY_RESOLVE,
};

static void defaults_init(struct lifecycle_config *lc)
{
	lc->defaults = builtin_params;
	lc->topology.attach_window_ms = 5 * MINUTE_MS;
	lc->silences.max_duration_ms = 30 * DAY_MS;
	lc->silences.keep_expired_ms = 7 * DAY_MS;
	lc->silences.max_silences = 10000;
	lc->tick_ms = 1000;
	lc->max_clock_ahead_ms = 0;
	lc->max_keys_per_host = 10000;
}

/* A host that stopped reporting, and a link-down trap on a device. */
static void default_down_checks(struct topology_config *t)
{
	static const char *const builtin[][2] = {
		{ "heartbeat", "alive" },
		{ "link", "*" },
	};

	t->down_checks = xcalloc(ARRAY_SIZE(builtin), sizeof(*t->down_checks));
	for (size_t i = 0; i < ARRAY_SIZE(builtin); i++) {
		t->down_checks[i].check = xstrdup(builtin[i][0]);
		t->down_checks[i].item = xstrdup(builtin[i][1]);
		t->down_checks[i].host = xstrdup("*");
	}
	t->ndown_checks = ARRAY_SIZE(builtin);
}

struct lifecycle_config *lifecycle_config_default(void)
{
	struct lifecycle_config *lc = xcalloc(1, sizeof(*lc));

	defaults_init(lc);
	default_down_checks(&lc->topology);
	return lc;
}

static void match_free(struct lifecycle_match *m)
{
	free(m->check);
	free(m->host);
	free(m->item);
	free(m->customer);
	cfg_string_list_free(m->tags);
}

static void down_checks_free(struct topology_config *t)
{
	for (size_t i = 0; i < t->ndown_checks; i++) {
		free(t->down_checks[i].check);
		free(t->down_checks[i].item);
		free(t->down_checks[i].host);
	}
	free(t->down_checks);
	t->down_checks = NULL;
	t->ndown_checks = 0;
}

void lifecycle_config_free(struct lifecycle_config *lc)
{
	if (lc == NULL)
		return;
	for (size_t i = 0; i < lc->nrules; i++)
		match_free(&lc->rules[i].match);
	free(lc->rules);
	down_checks_free(&lc->topology);
	free(lc);
}

/* A duration key within [min, max]; out of range is an error at the key. */
static void get_duration_in(struct cfg *cfg, const struct cfg_node *map,
			    const char *key, int64_t min, int64_t max,
			    const char *range, int64_t *ret)
{
	int64_t v;

	if (cfg_get_duration(cfg, map, key, &v) <= 0)
		return;
	if (v < min || v > max) {
		cfg_error(cfg, cfg_get(cfg, map, key), "%s must be %s", key,
			  range);
		return;
	}
	*ret = v;
}

/*
 * The parameters of node (a rule or defaults:), each key not given taken
 * from base.  Combinations that would never open a ticket are errors.
 */
static void parse_params(struct cfg *cfg, const struct cfg_node *node,
			 const struct lifecycle_params *base,
			 struct lifecycle_params *out)
{
	static const char *const actions[] = { "resolve", "review", NULL };
	int action = (int)base->on_recovery;

	*out = *base;
	cfg_get_int(cfg, node, "confirm_after", 0, 1000, &out->confirm_after);
	get_duration_in(cfg, node, "confirm_for", 0, 7 * DAY_MS,
			"at most 7d", &out->confirm_for_ms);
	get_duration_in(cfg, node, "flap_window", 1000, 7 * DAY_MS,
			"between 1s and 7d", &out->flap_window_ms);
	cfg_get_int(cfg, node, "flap_threshold", 0, FLAP_HISTORY_MAX,
		    &out->flap_threshold);
	get_duration_in(cfg, node, "reopen_within", 0, 30 * DAY_MS,
			"at most 30d", &out->reopen_within_ms);
	if (cfg_get_enum(cfg, node, "on_recovery", actions, &action) > 0)
		out->on_recovery = (enum recovery_action)action;

	if (out->confirm_after == 0 && out->confirm_for_ms == 0)
		cfg_error(cfg, node,
			  "confirm_after and confirm_for are both 0: no problem would ever be confirmed");
	if (out->flap_threshold == 1)
		cfg_error(cfg, cfg_get(cfg, node, "flap_threshold"),
			  "flap_threshold 1 would call every change flapping: use 0 (off) or 2 to %d",
			  FLAP_HISTORY_MAX);
}

static void parse_match(struct cfg *cfg, const struct cfg_node *node,
			const struct inventory *inv, struct lifecycle_match *m)
{
	static const char *const roles[] = { "decentral", "central", NULL };

	m->role = -1;
	if (node == NULL || node->type == CFG_NULL)
		return;
	if (node->type != CFG_MAP) {
		cfg_error(cfg, node,
			  "expected a mapping of check, host, item, tags, customer, role");
		return;
	}
	cfg_get_string(cfg, node, "check", &m->check);
	cfg_get_string(cfg, node, "host", &m->host);
	cfg_get_string(cfg, node, "item", &m->item);
	cfg_get_string_list(cfg, node, "tags", &m->tags);
	cfg_get_enum(cfg, node, "role", roles, &m->role);
	if (cfg_get_string(cfg, node, "customer", &m->customer) > 0 &&
	    inv != NULL && inventory_customer(inv, m->customer) == NULL)
		cfg_error(cfg, cfg_get(cfg, node, "customer"),
			  "no customer '%s' under customers:", m->customer);
}

static void parse_rules(struct cfg *cfg, const struct cfg_node *node,
			const struct inventory *inv,
			struct lifecycle_config *lc)
{
	if (node == NULL || node->type == CFG_NULL)
		return;
	if (node->type != CFG_SEQ) {
		cfg_error(cfg, node, "expected a list of rules (- match: ...)");
		return;
	}
	lc->rules = xcalloc(node->nitems, sizeof(*lc->rules));
	for (size_t i = 0; i < node->nitems; i++) {
		const struct cfg_node *rn = node->items[i];
		struct lifecycle_rule *r = &lc->rules[lc->nrules];

		if (rn->type != CFG_MAP) {
			cfg_error(cfg, rn,
				  "expected a rule: a mapping with match: and the keys it changes");
			continue;
		}
		parse_match(cfg, cfg_get(cfg, rn, "match"), inv, &r->match);
		parse_params(cfg, rn, &lc->defaults, &r->params);
		lc->nrules++;
	}
}

static void parse_lifecycle(struct cfg *cfg, const struct cfg_node *node,
			    const struct inventory *inv,
			    struct lifecycle_config *lc)
{
	const struct cfg_node *defaults;

	if (node == NULL || cfg_expect_map(cfg, node) < 0)
		return;
	defaults = cfg_get(cfg, node, "defaults");
	if (cfg_expect_map(cfg, defaults) == 0)
		parse_params(cfg, defaults, &builtin_params, &lc->defaults);
	/* Rules inherit the defaults, so they are read after them. */
	parse_rules(cfg, cfg_get(cfg, node, "rules"), inv, lc);
	get_duration_in(cfg, node, "tick", 100, 60 * 1000,
			"between 100ms and 1m", &lc->tick_ms);
	get_duration_in(cfg, node, "max_clock_ahead", 0, HOUR_MS,
			"at most 1h", &lc->max_clock_ahead_ms);
}

static void parse_down_checks(struct cfg *cfg, const struct cfg_node *node,
			      struct topology_config *t)
{
	if (node->type != CFG_SEQ) {
		cfg_error(cfg, node,
			  "expected a list of {check, item, host} (item and host are patterns, default \"*\")");
		return;
	}
	/* Given, the list replaces the built-in one, so it can narrow it. */
	down_checks_free(t);
	t->down_checks = xcalloc(node->nitems, sizeof(*t->down_checks));
	for (size_t i = 0; i < node->nitems; i++) {
		const struct cfg_node *dn = node->items[i];
		struct down_check *d = &t->down_checks[t->ndown_checks];

		if (dn->type != CFG_MAP) {
			cfg_error(cfg, dn, "expected a mapping with check, item and host");
			continue;
		}
		cfg_get_string(cfg, dn, "check", &d->check);
		cfg_get_string(cfg, dn, "item", &d->item);
		cfg_get_string(cfg, dn, "host", &d->host);
		if (d->check == NULL) {
			cfg_error(cfg, dn, "a down check needs check:");
			free(d->item);
			free(d->host);
			*d = (struct down_check){ 0 };
			continue;
		}
		if (d->item == NULL)
			d->item = xstrdup("*");
		if (d->host == NULL)
			d->host = xstrdup("*");
		t->ndown_checks++;
	}
}

static void parse_topology(struct cfg *cfg, const struct cfg_node *node,
			   struct topology_config *t)
{
	const struct cfg_node *dc;

	if (node == NULL || cfg_expect_map(cfg, node) < 0)
		return;
	dc = cfg_get(cfg, node, "down_checks");
	if (dc != NULL && dc->type != CFG_NULL)
		parse_down_checks(cfg, dc, t);
	get_duration_in(cfg, node, "attach_window", 0, DAY_MS, "at most 1d",
			&t->attach_window_ms);
}

static void parse_silences(struct cfg *cfg, const struct cfg_node *node,
			   struct silence_config *s)
{
	if (node == NULL || cfg_expect_map(cfg, node) < 0)
		return;
	get_duration_in(cfg, node, "max_duration", MINUTE_MS, 365 * DAY_MS,
			"between 1m and 365d", &s->max_duration_ms);
	get_duration_in(cfg, node, "keep_expired", 0, 365 * DAY_MS,
			"at most 365d", &s->keep_expired_ms);
	cfg_get_int(cfg, node, "max_silences", 1, 1000000, &s->max_silences);
}

int lifecycle_config_parse(struct cfg *cfg, const struct cfg_node *root,
			   const struct inventory *inv,
			   struct lifecycle_config **ret)
{
	struct lifecycle_config *lc = lifecycle_config_default();

	parse_lifecycle(cfg, cfg_get(cfg, root, "lifecycle"), inv, lc);
	parse_topology(cfg, cfg_get(cfg, root, "topology"), &lc->topology);
	parse_silences(cfg, cfg_get(cfg, root, "silences"), &lc->silences);
	*ret = lc;
	return 0;
}

static bool glob_fits(const char *pattern, const char *text)
{
	return pattern == NULL || fnmatch(pattern, text, 0) == 0;
}

static bool match_fits(const struct lifecycle_match *m, const struct host *h,
		       const char *host, const char *check, const char *item)
{
	if (!glob_fits(m->check, check) || !glob_fits(m->host, host) ||
	    !glob_fits(m->item, item))
		return false;
	/* Inventory facts about a host the inventory does not know: no fit. */
	if ((m->tags || m->customer || m->role >= 0) && h == NULL)
		return false;
	if (m->role >= 0 && (int)h->role != m->role)
		return false;
	if (m->customer &&
	    (h->customer == NULL || strcmp(h->customer->id, m->customer) != 0))
		return false;
	for (size_t i = 0; m->tags && m->tags[i]; i++)
		if (!host_has_tag(h, m->tags[i]))
			return false;
	return true;
}

const struct lifecycle_params *
lifecycle_params_for(const struct lifecycle_config *lc, const struct host *h,
		     const char *host, const char *check, const char *item)
{
	for (size_t i = 0; i < lc->nrules; i++)
		if (match_fits(&lc->rules[i].match, h, host, check, item))
			return &lc->rules[i].params;
	return &lc->defaults;
}

bool lifecycle_is_down_check(const struct lifecycle_config *lc,
			     const char *host, const char *check,
			     const char *item)
{
	for (size_t i = 0; i < lc->topology.ndown_checks; i++) {
		const struct down_check *d = &lc->topology.down_checks[i];

		if (glob_fits(d->check, check) && glob_fits(d->item, item) &&
		    glob_fits(d->host, host))
			return true;
	}
	return false;
}

/* Why confirm_after cannot hold back host silence under these params. */
static char *silence_warning(const char *where,
			     const struct lifecycle_params *p)
{
	if (p->confirm_after <= 1 || p->confirm_for_ms > 0)
		return NULL;
	return xasprintf("%s: confirm_after: %lld does not apply to host silence (heartbeat alive) or to traps, which the collector raises once per problem: their tickets open at once; add confirm_for to make them wait",
			 where, (long long)p->confirm_after);
}

char **lifecycle_warnings(const struct lifecycle_config *lc)
{
	char **list = xcalloc(lc->nrules + 2, sizeof(*list));
	size_t n = 0;
	char where[48];

	for (size_t i = 0; i < lc->nrules; i++) {
		const struct lifecycle_match *m = &lc->rules[i].match;

		if (!glob_fits(m->check, LIFECYCLE_SILENCE_CHECK) ||
		    !glob_fits(m->item, LIFECYCLE_SILENCE_ITEM))
			continue;
		snprintf(where, sizeof(where), "lifecycle.rules[%zu]", i);
		if ((list[n] = silence_warning(where, &lc->rules[i].params)))
			n++;
	}
	if ((list[n] = silence_warning("lifecycle.defaults", &lc->defaults)))
		n++;
	return list;
}
