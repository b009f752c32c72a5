#include "inventory.h"

#include <stdlib.h>
#include <string.h>

#include "../common/config.h"
#include "../common/util.h"

void inventory_free(struct inventory *inv)
{
	if (inv == NULL)
		return;
	for (size_t i = 0; i < inv->ncustomers; i++) {
		free(inv->customers[i].id);
		free(inv->customers[i].name);
		free(inv->customers[i].contract_id);
		cfg_string_list_free(inv->customers[i].contacts);
	}
	for (size_t i = 0; i < inv->nhosts; i++) {
		free(inv->hosts[i].name);
		cfg_string_list_free(inv->hosts[i].tags);
	}
	free(inv->customers);
	free(inv->hosts);
	nameindex_free(&inv->customers_by_id);
	nameindex_free(&inv->hosts_by_name);
	free(inv);
}

const struct customer *inventory_customer(const struct inventory *inv,
					  const char *id)
{
	long i = inv ? nameindex_find(&inv->customers_by_id, id) : -1;

	return i < 0 ? NULL : &inv->customers[i];
}

const struct host *inventory_host(const struct inventory *inv,
				  const char *name)
{
	long i = inv ? nameindex_find(&inv->hosts_by_name, name) : -1;

	return i < 0 ? NULL : &inv->hosts[i];
}

bool host_has_tag(const struct host *h, const char *tag)
{
	for (size_t i = 0; h->tags[i]; i++)
		if (strcmp(h->tags[i], tag) == 0)
			return true;
	return false;
}

const char *host_role_name(enum host_role role)
{
	return role == HOST_ROLE_CENTRAL ? "central" : "decentral";
}

/* A plausible mail address: something@domain, nothing that could break a header. */
bool inventory_email_valid(const char *s)
{
	const char *at = strchr(s, '@');

	if (at == NULL || at == s || at[1] == '\0' || strchr(at + 1, '@') ||
	    strlen(s) > 254)
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || strchr("<>()[],;:\\\"", *s))
			return false;
	return true;
}

/* The helpdesk keys of a customer: contract, contacts, notify. */
static void parse_customer_helpdesk(struct cfg *cfg, const struct cfg_node *node,
				    struct customer *c)
{
	const struct cfg_node *contacts, *notify;

	c->notify_resolved = true;
	c->notify_updates = true;
	cfg_get_string(cfg, node, "contract", &c->contract_id);
	if (cfg_get_string_list(cfg, node, "contacts", &c->contacts) > 0) {
		contacts = cfg_get(cfg, node, "contacts");
		for (size_t i = 0; c->contacts[i]; i++)
			if (!inventory_email_valid(c->contacts[i]))
				cfg_error(cfg, contacts->type == CFG_SEQ ? contacts->items[i] : contacts,
					  "'%s' is not an e-mail address", c->contacts[i]);
	}
	notify = cfg_get(cfg, node, "notify");
	if (cfg_expect_map(cfg, notify) == 0) {
		cfg_get_bool(cfg, notify, "resolved", &c->notify_resolved);
		cfg_get_bool(cfg, notify, "status_updates", &c->notify_updates);
	}
}

/* One customer; more keys (contract, contacts, ...) are parsed here too. */
static void parse_customer(struct cfg *cfg, const char *id,
			   const struct cfg_node *node, struct customer *c)
{
	c->id = xstrdup(id);
	c->contacts = xcalloc(1, sizeof(*c->contacts));
	if (cfg_expect_map(cfg, node) < 0)
		return;
	cfg_get_string(cfg, node, "name", &c->name);
	if (c->name == NULL)
		c->name = xstrdup(id);
	parse_customer_helpdesk(cfg, node, c);
}

static void parse_customers(struct cfg *cfg, const struct cfg_node *node,
			    struct inventory *inv)
{
	if (node == NULL || node->type == CFG_NULL)
		return;
	if (node->type != CFG_MAP) {
		cfg_error(cfg, node, "expected a mapping of customer ids");
		return;
	}
	inv->customers = xcalloc(node->npairs, sizeof(*inv->customers));
	for (size_t i = 0; i < node->npairs; i++) {
		node->pairs[i].used = true;
		parse_customer(cfg, node->pairs[i].key, node->pairs[i].value,
			       &inv->customers[inv->ncustomers++]);
	}
	nameindex_build(&inv->customers_by_id, inv->customers, inv->ncustomers,
			sizeof(*inv->customers), offsetof(struct customer, id));
}

/* One host; the parent is resolved once every host is known. */
static void parse_host(struct cfg *cfg, struct inventory *inv,
		       const char *name, const struct cfg_node *node,
		       struct host *h, char **ret_parent)
{
	static const char *const roles[] = { "decentral", "central", NULL };
	char *customer = NULL;
	int role = HOST_ROLE_DECENTRAL;

	h->name = xstrdup(name);
	h->tags = xcalloc(1, sizeof(*h->tags));
	if (cfg_expect_map(cfg, node) < 0)
		return;
	if (cfg_get_string(cfg, node, "customer", &customer) > 0) {
		h->customer = inventory_customer(inv, customer);
		if (h->customer == NULL)
			cfg_error(cfg, cfg_get(cfg, node, "customer"),
				  "no customer '%s' under customers:", customer);
	}
	free(customer);
	cfg_get_enum(cfg, node, "role", roles, &role);
	h->role = (enum host_role)role;
	cfg_get_string_list(cfg, node, "tags", &h->tags);
	cfg_get_string(cfg, node, "parent", ret_parent);
}

static void resolve_parents(struct cfg *cfg, const struct cfg_node *node,
			    struct inventory *inv, char **parents)
{
	for (size_t i = 0; i < inv->nhosts; i++) {
		struct host *h = &inv->hosts[i];
		const struct host *p;

		if (parents[i] == NULL)
			continue;
		p = inventory_host(inv, parents[i]);
		if (p == NULL || p == h)
			cfg_error(cfg, cfg_get(cfg, node->pairs[i].value, "parent"),
				  p ? "a host cannot be its own parent"
				    : "no host '%s' under hosts:",
				  parents[i]);
		else
			h->parent = p;
	}
	/* A cycle would make topology walks loop: refuse it. */
	for (size_t i = 0; i < inv->nhosts; i++) {
		struct host *h = &inv->hosts[i];
		size_t steps = 0;

		for (const struct host *p = h->parent; p; p = p->parent) {
			if (p == h || ++steps > inv->nhosts) {
				cfg_error(cfg, node->pairs[i].value,
					  "the parents of '%s' form a cycle",
					  h->name);
				h->parent = NULL;
				break;
			}
		}
	}
}

int inventory_parse(struct cfg *cfg, const struct cfg_node *root,
		    struct inventory **ret)
{
	struct inventory *inv = xcalloc(1, sizeof(*inv));
	const struct cfg_node *hosts;
	char **parents;

	parse_customers(cfg, cfg_get(cfg, root, "customers"), inv);
	hosts = cfg_get(cfg, root, "hosts");
	if (hosts != NULL && hosts->type != CFG_NULL &&
	    hosts->type != CFG_MAP) {
		cfg_error(cfg, hosts, "expected a mapping of host names");
		hosts = NULL;
	}
	if (hosts != NULL && hosts->type == CFG_MAP) {
		inv->hosts = xcalloc(hosts->npairs, sizeof(*inv->hosts));
		parents = xcalloc(hosts->npairs, sizeof(*parents));
		for (size_t i = 0; i < hosts->npairs; i++) {
			hosts->pairs[i].used = true;
			parse_host(cfg, inv, hosts->pairs[i].key,
				   hosts->pairs[i].value,
				   &inv->hosts[inv->nhosts++], &parents[i]);
		}
		nameindex_build(&inv->hosts_by_name, inv->hosts, inv->nhosts,
				sizeof(*inv->hosts), offsetof(struct host, name));
		resolve_parents(cfg, hosts, inv, parents);
		for (size_t i = 0; i < hosts->npairs; i++)
			free(parents[i]);
		free(parents);
	}
	*ret = inv;
	return 0;
}
