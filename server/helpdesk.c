#include "helpdesk.h"

#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "../common/config.h"
#include "../common/util.h"
#include "inventory.h"
#include "notify.h"

static char **list_of(const char *const *names)
{
	size_t n = 0;
	char **list;

	while (names[n])
		n++;
	list = xcalloc(n + 1, sizeof(*list));
	for (size_t i = 0; i < n; i++)
		list[i] = xstrdup(names[i]);
	return list;
}

static int list_len(char *const *list)
{
	int n = 0;

	while (list[n])
		n++;
	return n;
}

int helpdesk_index(char *const *list, const char *name)
{
	for (int i = 0; list && list[i]; i++)
		if (strcmp(list[i], name) == 0)
			return i;
	return -1;
}

/* A scale (list of names): given, non-empty, at most HELPDESK_SCALE_MAX. */
static void parse_scale(struct cfg *cfg, const struct cfg_node *node,
			const char *key, const char *const *defaults,
			char ***ret)
{
	char **list = NULL;
	int n;

	if (cfg_get_string_list(cfg, node, key, &list) <= 0) {
		*ret = list_of(defaults);
		return;
	}
	n = list_len(list);
	if (n == 0 || n > HELPDESK_SCALE_MAX) {
		cfg_error(cfg, cfg_get(cfg, node, key),
			  "expected 1 to %d names, most severe first",
			  HELPDESK_SCALE_MAX);
		cfg_string_list_free(list);
		*ret = list_of(defaults);
		return;
	}
	for (int i = 0; i < n; i++)
		for (int j = 0; j < i; j++)
			if (strcmp(list[i], list[j]) == 0)
				cfg_error(cfg, cfg_get(cfg, node, key),
					  "'%s' is listed twice", list[i]);
	*ret = list;
}

/* A name from a scale; the index, or -1 after an error (or when absent). */
static int scale_value(struct cfg *cfg, const struct cfg_node *map,
		       const char *key, char *const *scale, const char *what)
{
	char *v = NULL;
	int i = -1;

	if (cfg_get_string(cfg, map, key, &v) <= 0)
		return -1;
	i = helpdesk_index(scale, v);
	if (i < 0)
		cfg_error(cfg, cfg_get(cfg, map, key), "'%s' is not %s", v, what);
	free(v);
	return i;
}

static void default_matrix(struct helpdesk_config *hc)
{
	for (int i = 0; i < hc->nimpacts; i++) {
		for (int u = 0; u < hc->nurgencies; u++) {
			double fi = hc->nimpacts > 1 ? (double)i / (hc->nimpacts - 1) : 0;
			double fu = hc->nurgencies > 1 ? (double)u / (hc->nurgencies - 1) : 0;

			hc->matrix[i][u] = (int)floor((fi + fu) / 2 * (hc->npriorities - 1));
		}
	}
}

static void parse_matrix(struct cfg *cfg, const struct cfg_node *node,
			 struct helpdesk_config *hc)
{
	default_matrix(hc);
	if (node == NULL || node->type == CFG_NULL)
		return;
	if (node->type != CFG_MAP) {
		cfg_error(cfg, node, "expected, per impact, a list of priorities by urgency");
		return;
	}
	for (size_t k = 0; k < node->npairs; k++) {
		const struct cfg_node *row = node->pairs[k].value;
		int i = helpdesk_index(hc->impacts, node->pairs[k].key);

		node->pairs[k].used = true;
		if (i < 0) {
			cfg_error(cfg, row, "'%s' is not an impact (helpdesk.impacts)",
				  node->pairs[k].key);
			continue;
		}
		if (row->type != CFG_SEQ || row->nitems != (size_t)hc->nurgencies) {
			cfg_error(cfg, row, "expected a list of %d priorities, one per urgency",
				  hc->nurgencies);
			continue;
		}
		for (size_t u = 0; u < row->nitems; u++) {
			const struct cfg_node *it = row->items[u];
			int p = it->type == CFG_SCALAR
					? helpdesk_index(hc->priorities, it->value)
					: -1;

			if (p < 0)
				cfg_error(cfg, it, "not a priority (helpdesk.priorities)");
			else
				hc->matrix[i][u] = p;
		}
	}
}

static void parse_queues(struct cfg *cfg, const struct cfg_node *node,
			 struct helpdesk_config *hc)
{
	if (node == NULL || node->type == CFG_NULL || cfg_expect_map(cfg, node) < 0) {
		hc->queues = xcalloc(1, sizeof(*hc->queues));
		hc->queues[0].id = xstrdup("support");
		hc->nqueues = 1;
		return;
	}
	hc->queues = xcalloc(node->npairs + 1, sizeof(*hc->queues));
	for (size_t i = 0; i < node->npairs; i++) {
		struct helpdesk_queue *q = &hc->queues[hc->nqueues++];
		const struct cfg_node *v = node->pairs[i].value;
		const struct cfg_node *email;

		node->pairs[i].used = true;
		q->id = xstrdup(node->pairs[i].key);
		if (cfg_expect_map(cfg, v) < 0)
			continue;
		if (cfg_get_string(cfg, v, "email", &q->email) > 0 &&
		    !inventory_email_valid(q->email)) {
			email = cfg_get(cfg, v, "email");
			cfg_error(cfg, email, "'%s' is not an e-mail address", q->email);
		}
		cfg_get_string(cfg, v, "lead", &q->lead);
	}
	if (hc->nqueues == 0) {
		hc->queues[0].id = xstrdup("support");
		hc->nqueues = 1;
	}
}

static void parse_people(struct cfg *cfg, const struct cfg_node *node,
			 struct helpdesk_config *hc)
{
	if (node == NULL || node->type == CFG_NULL || cfg_expect_map(cfg, node) < 0)
		return;
	hc->people = xcalloc(node->npairs, sizeof(*hc->people));
	for (size_t i = 0; i < node->npairs; i++) {
		struct helpdesk_person *p = &hc->people[hc->npeople++];
		const struct cfg_node *v = node->pairs[i].value;
		int64_t level = 1;

		node->pairs[i].used = true;
		p->id = xstrdup(node->pairs[i].key);
		p->level = 1;
		p->queues = xcalloc(1, sizeof(*p->queues));
		if (cfg_expect_map(cfg, v) < 0)
			continue;
		cfg_get_string(cfg, v, "name", &p->name);
		if (cfg_get_string(cfg, v, "email", &p->email) > 0 &&
		    !inventory_email_valid(p->email))
			cfg_error(cfg, cfg_get(cfg, v, "email"),
				  "'%s' is not an e-mail address", p->email);
		if (cfg_get_int(cfg, v, "level", 1, HELPDESK_LEVELS, &level) > 0)
			p->level = (int)level;
		cfg_get_string_list(cfg, v, "queues", &p->queues);
		for (size_t q = 0; p->queues[q]; q++)
			if (helpdesk_queue(hc, p->queues[q]) == NULL)
				cfg_error(cfg, cfg_get(cfg, v, "queues"),
					  "no queue '%s' under helpdesk.queues", p->queues[q]);
		if (p->name == NULL)
			p->name = xstrdup(p->id);
	}
}

static void parse_rule(struct cfg *cfg, const struct cfg_node *node,
		       struct helpdesk_config *hc, struct helpdesk_rule *r)
{
	static const char *const roles[] = { "decentral", "central", NULL };
	const struct cfg_node *match, *set;
	int64_t level;

	r->role = -1;
	r->impact = r->urgency = -1;
	if (node->type != CFG_MAP) {
		cfg_error(cfg, node, "expected a rule with match: and set:");
		return;
	}
	match = cfg_get(cfg, node, "match");
	set = cfg_get(cfg, node, "set");
	if (cfg_expect_map(cfg, match) < 0 || cfg_expect_map(cfg, set) < 0)
		return;
	if (set == NULL)
		cfg_error(cfg, node, "a routing rule needs set:");
	cfg_get_string(cfg, match, "check", &r->check);
	cfg_get_string(cfg, match, "tag", &r->tag);
	cfg_get_string(cfg, match, "customer", &r->customer);
	cfg_get_enum(cfg, match, "role", roles, &r->role);
	if (cfg_get_string(cfg, set, "category", &r->category) > 0 &&
	    helpdesk_index(hc->categories, r->category) < 0)
		cfg_error(cfg, cfg_get(cfg, set, "category"),
			  "'%s' is not a category (helpdesk.categories)", r->category);
	if (cfg_get_string(cfg, set, "queue", &r->queue) > 0 &&
	    helpdesk_queue(hc, r->queue) == NULL)
		cfg_error(cfg, cfg_get(cfg, set, "queue"),
			  "no queue '%s' under helpdesk.queues", r->queue);
	if (cfg_get_int(cfg, set, "level", 1, HELPDESK_LEVELS, &level) > 0)
		r->level = (int)level;
	r->impact = scale_value(cfg, set, "impact", hc->impacts,
				"an impact (helpdesk.impacts)");
	r->urgency = scale_value(cfg, set, "urgency", hc->urgencies,
				 "an urgency (helpdesk.urgencies)");
}

static void parse_routing(struct cfg *cfg, const struct cfg_node *node,
			  struct helpdesk_config *hc)
{
	if (node == NULL || node->type == CFG_NULL)
		return;
	if (node->type != CFG_SEQ) {
		cfg_error(cfg, node, "expected a list of rules");
		return;
	}
	hc->rules = xcalloc(node->nitems, sizeof(*hc->rules));
	for (size_t i = 0; i < node->nitems; i++)
		parse_rule(cfg, node->items[i], hc, &hc->rules[hc->nrules++]);
}

static void parse_hints(struct cfg *cfg, const struct cfg_node *node,
			struct helpdesk_config *hc)
{
	if (node == NULL || node->type == CFG_NULL || cfg_expect_map(cfg, node) < 0)
		return;
	hc->hints = xcalloc(node->npairs, sizeof(*hc->hints));
	for (size_t i = 0; i < node->npairs; i++) {
		struct helpdesk_hint *h = &hc->hints[hc->nhints];

		if (cfg_get_string(cfg, node, node->pairs[i].key, &h->text) > 0) {
			h->check = xstrdup(node->pairs[i].key);
			hc->nhints++;
		}
	}
}

/* urgency_by_state: {critical: high, warning: medium, unknown: medium} */
static void parse_state_urgency(struct cfg *cfg, const struct cfg_node *node,
				struct helpdesk_config *hc)
{
	static const char *const states[] = { "warning", "critical", "unknown" };
	static const enum check_state ids[] = { CHECK_WARNING, CHECK_CRITICAL,
						CHECK_UNKNOWN };
	int n = hc->nurgencies;

	hc->urgency_by_state[CHECK_OK] = n - 1;
	hc->urgency_by_state[CHECK_CRITICAL] = n > 1 ? 1 : 0;
	hc->urgency_by_state[CHECK_WARNING] = n > 2 ? 2 : n - 1;
	hc->urgency_by_state[CHECK_UNKNOWN] = hc->urgency_by_state[CHECK_WARNING];
	if (cfg_expect_map(cfg, node) < 0 || node == NULL)
		return;
	for (size_t i = 0; i < ARRAY_SIZE(states); i++) {
		int u = scale_value(cfg, node, states[i], hc->urgencies,
				    "an urgency (helpdesk.urgencies)");

		if (u >= 0)
			hc->urgency_by_state[ids[i]] = u;
	}
}

static void parse_role_impact(struct cfg *cfg, const struct cfg_node *node,
			      struct helpdesk_config *hc)
{
	int v;

	/* Central hosts outrank decentral ones (seed 001). */
	hc->impact_central = 0;
	hc->impact_decentral = hc->nimpacts - 1;
	if (cfg_expect_map(cfg, node) < 0 || node == NULL)
		return;
	v = scale_value(cfg, node, "central", hc->impacts, "an impact (helpdesk.impacts)");
	if (v >= 0)
		hc->impact_central = v;
	v = scale_value(cfg, node, "decentral", hc->impacts, "an impact (helpdesk.impacts)");
	if (v >= 0)
		hc->impact_decentral = v;
}

static void parse_section(struct cfg *cfg, const struct cfg_node *node,
			  struct helpdesk_config *hc)
{
	static const char *const categories[] = { "telephony", "data-centre",
						  "managed-it", NULL };
	static const char *const impacts[] = { "high", "medium", "low", NULL };
	static const char *const urgencies[] = { "critical", "high", "medium",
						 "low", NULL };
	static const char *const priorities[] = { "P1", "P2", "P3", "P4", NULL };
	int64_t v;

	if (cfg_expect_map(cfg, node) < 0)
		node = NULL;
	parse_scale(cfg, node, "categories", categories, &hc->categories);
	parse_scale(cfg, node, "impacts", impacts, &hc->impacts);
	parse_scale(cfg, node, "urgencies", urgencies, &hc->urgencies);
	parse_scale(cfg, node, "priorities", priorities, &hc->priorities);
	hc->nimpacts = list_len(hc->impacts);
	hc->nurgencies = list_len(hc->urgencies);
	hc->npriorities = list_len(hc->priorities);
	parse_matrix(cfg, cfg_get(cfg, node, "priority_matrix"), hc);
	parse_state_urgency(cfg, cfg_get(cfg, node, "urgency_by_state"), hc);
	parse_role_impact(cfg, cfg_get(cfg, node, "impact_by_role"), hc);
	parse_queues(cfg, cfg_get(cfg, node, "queues"), hc);
	nameindex_build(&hc->queue_index, hc->queues, hc->nqueues,
			sizeof(*hc->queues), offsetof(struct helpdesk_queue, id));
	if (cfg_get_string(cfg, node, "default_queue", &hc->default_queue) > 0 &&
	    helpdesk_queue(hc, hc->default_queue) == NULL)
		cfg_error(cfg, cfg_get(cfg, node, "default_queue"),
			  "no queue '%s' under helpdesk.queues", hc->default_queue);
	if (hc->default_queue == NULL)
		hc->default_queue = xstrdup(hc->queues[0].id);
	if (cfg_get_string(cfg, node, "default_category", &hc->default_category) > 0 &&
	    helpdesk_index(hc->categories, hc->default_category) < 0)
		cfg_error(cfg, cfg_get(cfg, node, "default_category"),
			  "'%s' is not a category (helpdesk.categories)",
			  hc->default_category);
	if (hc->default_category == NULL)
		hc->default_category =
			xstrdup(hc->categories[list_len(hc->categories) - 1]);
	parse_routing(cfg, cfg_get(cfg, node, "routing"), hc);
	parse_hints(cfg, cfg_get(cfg, node, "knowledge"), hc);
	hc->warn_share = 0.75;
	if (cfg_get_percent(cfg, node, "warn_at", &hc->warn_share) > 0)
		hc->warn_share /= 100.0;
	hc->close_after_ms = 7 * 86400000LL;
	cfg_get_duration(cfg, node, "close_after", &hc->close_after_ms);
	hc->status_every_ms = 2 * 86400000LL;
	cfg_get_duration(cfg, node, "status_updates", &hc->status_every_ms);
	hc->tick_ms = 1000;
	if (cfg_get_duration(cfg, node, "tick", &hc->tick_ms) > 0 &&
	    hc->tick_ms < 10) {
		cfg_error(cfg, cfg_get(cfg, node, "tick"), "the tick must be at least 10ms");
		hc->tick_ms = 1000;
	}
	hc->history_max = 5;
	if (cfg_get_int(cfg, node, "history", 0, 50, &v) > 0)
		hc->history_max = (int)v;
}

/*
 * A queue's lead is told of breaches: a lead who is not a person would
 * leave them unheard, so it is an error.  Needs people: parsed.
 */
static void check_leads(struct cfg *cfg, const struct cfg_node *node,
			struct helpdesk_config *hc)
{
	const struct cfg_node *queues = cfg_get(cfg, node, "queues");

	for (size_t i = 0; i < hc->nqueues; i++) {
		const struct helpdesk_queue *q = &hc->queues[i];
		const struct helpdesk_person *p = helpdesk_person(hc, q->lead);
		const struct cfg_node *at;

		if (q->lead == NULL || p != NULL)
			continue;
		at = cfg_get(cfg, cfg_get(cfg, queues, q->id), "lead");
		cfg_error(cfg, at, "no person '%s' under people:", q->lead);
	}
}

/* Every customer's contract: names resolved, unknown ones reported. */
static void resolve_contracts(struct cfg *cfg, const struct cfg_node *root,
			      struct inventory *inv,
			      struct helpdesk_config *hc)
{
	const struct cfg_node *customers = cfg_get(cfg, root, "customers");

	for (size_t i = 0; i < inv->ncustomers; i++) {
		struct customer *c = &inv->customers[i];

		if (c->contract_id == NULL)
			continue;
		c->contract = helpdesk_contract(hc, c->contract_id);
		if (c->contract == NULL)
			cfg_error(cfg,
				  cfg_get(cfg, cfg_get(cfg, customers, c->id), "contract"),
				  "no contract '%s' under contracts:", c->contract_id);
	}
}

int helpdesk_config_parse(struct cfg *cfg, const struct cfg_node *root,
			  struct inventory *inv, struct helpdesk_config **ret)
{
	struct helpdesk_config *hc = xcalloc(1, sizeof(*hc));
	const struct cfg_node *node = cfg_get(cfg, root, "helpdesk");
	char *def = NULL;

	parse_section(cfg, node, hc);
	parse_people(cfg, cfg_get(cfg, root, "people"), hc);
	nameindex_build(&hc->people_index, hc->people, hc->npeople,
			sizeof(*hc->people), offsetof(struct helpdesk_person, id));
	check_leads(cfg, node, hc);
	contract_parse_all(cfg, root, hc->priorities, &hc->contracts,
			   &hc->ncontracts);
	nameindex_build(&hc->contract_index, hc->contracts, hc->ncontracts,
			sizeof(*hc->contracts), offsetof(struct contract, id));
	if (cfg_get_string(cfg, node, "default_contract", &def) > 0) {
		hc->default_contract = helpdesk_contract(hc, def);
		if (hc->default_contract == NULL)
			cfg_error(cfg, cfg_get(cfg, node, "default_contract"),
				  "no contract '%s' under contracts:", def);
	}
	free(def);
	resolve_contracts(cfg, root, inv, hc);
	notify_config_parse(cfg, cfg_get(cfg, root, "notify"), &hc->notify);
	*ret = hc;
	return 0;
}

void helpdesk_config_free(struct helpdesk_config *hc)
{
	if (hc == NULL)
		return;
	cfg_string_list_free(hc->categories);
	cfg_string_list_free(hc->impacts);
	cfg_string_list_free(hc->urgencies);
	cfg_string_list_free(hc->priorities);
	for (size_t i = 0; i < hc->nqueues; i++) {
		free(hc->queues[i].id);
		free(hc->queues[i].email);
		free(hc->queues[i].lead);
	}
	free(hc->queues);
	for (size_t i = 0; i < hc->npeople; i++) {
		free(hc->people[i].id);
		free(hc->people[i].name);
		free(hc->people[i].email);
		cfg_string_list_free(hc->people[i].queues);
	}
	free(hc->people);
	for (size_t i = 0; i < hc->nrules; i++) {
		struct helpdesk_rule *r = &hc->rules[i];

		free(r->check);
		free(r->tag);
		free(r->customer);
		free(r->category);
		free(r->queue);
	}
	free(hc->rules);
	for (size_t i = 0; i < hc->nhints; i++) {
		free(hc->hints[i].check);
		free(hc->hints[i].text);
	}
	free(hc->hints);
	free(hc->default_queue);
	free(hc->default_category);
	contract_free_all(hc->contracts, hc->ncontracts);
	nameindex_free(&hc->people_index);
	nameindex_free(&hc->queue_index);
	nameindex_free(&hc->contract_index);
	notify_config_free(hc->notify);
	free(hc);
}

const struct helpdesk_person *helpdesk_person(const struct helpdesk_config *hc,
					      const char *id)
{
	long i = nameindex_find(&hc->people_index, id);

	return i >= 0 ? &hc->people[i] : NULL;
}

const struct helpdesk_queue *helpdesk_queue(const struct helpdesk_config *hc,
					    const char *id)
{
	long i = nameindex_find(&hc->queue_index, id);

	return i >= 0 ? &hc->queues[i] : NULL;
}

const struct contract *helpdesk_contract(const struct helpdesk_config *hc,
					 const char *id)
{
	long i = nameindex_find(&hc->contract_index, id);

	return i >= 0 ? &hc->contracts[i] : NULL;
}

const struct contract *helpdesk_contract_for(const struct helpdesk_config *hc,
					     const struct host *h)
{
	if (h != NULL && h->customer != NULL && h->customer->contract != NULL)
		return h->customer->contract;
	return hc->default_contract;
}

void helpdesk_clock_for(const struct helpdesk_config *hc,
			const struct inventory *inv, const char *contract_id,
			const char *customer_id, struct helpdesk_clock *ret)
{
	const struct customer *cu = NULL;

	*ret = (struct helpdesk_clock){ .contract = helpdesk_contract(hc, contract_id) };
	if (ret->contract != NULL) {
		ret->calendar = ret->contract->calendar;
		return;
	}
	if (customer_id != NULL && customer_id[0] != '\0')
		cu = inventory_customer(inv, customer_id);
	ret->instead = cu != NULL && cu->contract != NULL ? cu->contract
							   : hc->default_contract;
	ret->calendar = ret->instead ? ret->instead->calendar : calendar_always();
}

const char *helpdesk_hint(const struct helpdesk_config *hc, const char *check)
{
	for (size_t i = 0; check && i < hc->nhints; i++)
		if (strcmp(hc->hints[i].check, check) == 0)
			return hc->hints[i].text;
	return NULL;
}

int helpdesk_priority(const struct helpdesk_config *hc, int impact, int urgency)
{
	if (impact < 0 || impact >= hc->nimpacts)
		impact = hc->nimpacts - 1;
	if (urgency < 0 || urgency >= hc->nurgencies)
		urgency = hc->nurgencies - 1;
	return hc->matrix[impact][urgency];
}
