#include "contract.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../common/config.h"
#include "../common/util.h"

void contract_free_all(struct contract *contracts, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(contracts[i].id);
		free(contracts[i].name);
		calendar_free(contracts[i].calendar);
	}
	free(contracts);
}

/* "4h", "30m" (business time) or "1bd", "3bd" (business days). */
static int parse_target(struct cfg *cfg, const struct cfg_node *n,
			struct contract_target *ret)
{
	size_t len;
	int64_t v;

	if (n->type != CFG_SCALAR) {
		cfg_error(cfg, n, "expected a target such as 4h or 1bd");
		return -EINVAL;
	}
	len = strlen(n->value);
	if (len > 2 && strcmp(n->value + len - 2, "bd") == 0) {
		char *num = xasprintf("%.*s", (int)(len - 2), n->value);
		int r = parse_int64(num, &v);

		free(num);
		if (r < 0 || v < 1 || v > 365) {
			cfg_error(cfg, n, "'%s': business days must be a whole number from 1 to 365",
				  n->value);
			return -EINVAL;
		}
		*ret = (struct contract_target){ .days = (int)v };
		return 0;
	}
	if (parse_duration_ms(n->value, &v) < 0 || v <= 0) {
		cfg_error(cfg, n,
			  "expected business time such as 4h or business days such as 1bd, got '%s'",
			  n->value);
		return -EINVAL;
	}
	*ret = (struct contract_target){ .ms = v };
	return 0;
}

static int priority_index(char *const *priorities, const char *name)
{
	for (int i = 0; priorities[i]; i++)
		if (strcmp(priorities[i], name) == 0)
			return i;
	return -1;
}

static int parse_targets(struct cfg *cfg, const struct cfg_node *node,
			 char *const *priorities, struct contract *c)
{
	int errors = 0;

	if (node == NULL || node->type == CFG_NULL)
		return 0;
	if (node->type != CFG_MAP) {
		cfg_error(cfg, node, "expected targets per priority, e.g. P1: {response: 1h, resolution: 1bd}");
		return -EINVAL;
	}
	for (size_t i = 0; i < node->npairs; i++) {
		const struct cfg_node *v = node->pairs[i].value, *t;
		int p = priority_index(priorities, node->pairs[i].key);

		node->pairs[i].used = true;
		if (p < 0) {
			cfg_error(cfg, v, "'%s' is not a priority (helpdesk.priorities)",
				  node->pairs[i].key);
			errors++;
			continue;
		}
		if (v->type != CFG_MAP) {
			cfg_error(cfg, v, "expected response and/or resolution targets");
			errors++;
			continue;
		}
		t = cfg_get(cfg, v, "response");
		if (t != NULL && t->type != CFG_NULL &&
		    parse_target(cfg, t, &c->response[p]) < 0)
			errors++;
		t = cfg_get(cfg, v, "resolution");
		if (t != NULL && t->type != CFG_NULL &&
		    parse_target(cfg, t, &c->resolution[p]) < 0)
			errors++;
	}
	return errors ? -EINVAL : 0;
}

void contract_parse_all(struct cfg *cfg, const struct cfg_node *root,
			char *const *priorities, struct contract **ret,
			size_t *ret_n)
{
	const struct cfg_node *node = cfg_get(cfg, root, "contracts");
	struct contract *list;
	size_t n = 0;

	*ret = NULL;
	*ret_n = 0;
	if (node == NULL || node->type == CFG_NULL)
		return;
	if (node->type != CFG_MAP) {
		cfg_error(cfg, node, "expected a mapping of contract ids");
		return;
	}
	list = xcalloc(node->npairs, sizeof(*list));
	for (size_t i = 0; i < node->npairs; i++) {
		const struct cfg_node *v = node->pairs[i].value;
		struct contract *c = &list[n];
		int bad = 0;

		node->pairs[i].used = true;
		if (v->type != CFG_MAP) {
			cfg_error(cfg, v, "expected a contract: name, calendar, targets");
			continue;
		}
		c->id = xstrdup(node->pairs[i].key);
		cfg_get_string(cfg, v, "name", &c->name);
		if (c->name == NULL)
			c->name = xstrdup(c->id);
		if (calendar_parse(cfg, cfg_get(cfg, v, "calendar"), &c->calendar) < 0)
			bad = 1;
		if (parse_targets(cfg, cfg_get(cfg, v, "targets"), priorities, c) < 0)
			bad = 1;
		if (bad) {
			free(c->id);
			free(c->name);
			calendar_free(c->calendar);
			memset(c, 0, sizeof(*c));
			continue;
		}
		n++;
	}
	*ret = list;
	*ret_n = n;
}

int64_t contract_target_ms(const struct contract *c,
			   const struct contract_target *t, int64_t opened_ms)
{
	int64_t due;

	if (t->ms > 0)
		return t->ms;
	if (t->days <= 0)
		return -1;
	due = calendar_add_days(c->calendar, opened_ms, t->days);
	if (due == CALENDAR_NEVER)
		return -1;
	return calendar_business_ms(c->calendar, opened_ms, due);
}
