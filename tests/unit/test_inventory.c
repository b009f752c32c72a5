/* Customers and hosts from the server configuration. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/config.h"
#include "../../server/inventory.h"

static struct inventory *parse(const char *yaml, struct cfg **ret_cfg)
{
	struct inventory *inv = NULL;
	struct cfg *cfg;

	assert_int_equal(cfg_load_string("inv.yaml", yaml, &cfg), 0);
	assert_int_equal(inventory_parse(cfg, cfg->root, &inv), 0);
	cfg_finish(cfg);
	for (size_t i = 0; i < cfg->nerrors; i++)
		print_message("  error: %s\n", cfg->errors[i]);
	*ret_cfg = cfg;
	return inv;
}

static void test_hosts_customers_parents(void **state)
{
	struct cfg *cfg;
	struct inventory *inv = parse("customers:\n"
				      "  acme: {name: ACME GmbH}\n"
				      "  shop: {}\n"
				      "hosts:\n"
				      "  acme-router: {customer: acme, role: central, tags: [network]}\n"
				      "  web01:\n"
				      "    customer: acme\n"
				      "    role: central\n"
				      "    parent: acme-router\n"
				      "  pc7: {customer: shop}\n",
				      &cfg);
	const struct host *web, *pc;

	(void)state;
	assert_int_equal(cfg->nerrors, 0);
	web = inventory_host(inv, "web01");
	assert_non_null(web);
	assert_string_equal(web->customer->name, "ACME GmbH");
	assert_int_equal(web->role, HOST_ROLE_CENTRAL);
	assert_string_equal(web->parent->name, "acme-router");
	assert_true(host_has_tag(web->parent, "network"));
	assert_false(host_has_tag(web, "network"));
	pc = inventory_host(inv, "pc7");
	assert_int_equal(pc->role, HOST_ROLE_DECENTRAL);
	assert_string_equal(pc->customer->name, "shop"); /* name defaults to id */
	assert_null(pc->parent);
	assert_null(inventory_host(inv, "unknown"));
	inventory_free(inv);
	cfg_free(cfg);
}

static void test_errors_name_the_place(void **state)
{
	struct cfg *cfg;
	struct inventory *inv = parse("customers:\n"
				      "  acme: {}\n"
				      "hosts:\n"
				      "  a: {customer: nobody, parent: b}\n"
				      "  b: {parent: a, role: boss}\n"
				      "  c: {parent: ghost, colour: red}\n",
				      &cfg);

	(void)state;
	assert_int_equal(cfg->nerrors, 5); /* one cycle, reported once */
	assert_non_null(strstr(cfg->errors[0], "inv.yaml:4:17: hosts.a.customer: no customer 'nobody'"));
	assert_non_null(strstr(cfg->errors[1], "hosts.b.role: 'boss' is not one of: decentral, central"));
	assert_non_null(strstr(cfg->errors[2], "hosts.c.parent: no host 'ghost' under hosts:"));
	assert_non_null(strstr(cfg->errors[3], "the parents of 'a' form a cycle"));
	assert_non_null(strstr(cfg->errors[4], "hosts.c.colour: unknown key 'colour'"));
	inventory_free(inv);
	cfg_free(cfg);
}

/*
 * Many customers and hosts, not in name order: each is found by its key,
 * with its own fields (the lookups are binary searches over a sorted
 * index), and keys that sort between or around them are not.
 */
static void test_many_hosts_are_each_found(void **state)
{
	enum { CUSTOMERS = 50, HOSTS = 3000 };
	size_t cap = 64 * (CUSTOMERS + HOSTS), len = 0;
	char *yaml = malloc(cap), key[32];
	struct cfg *cfg;
	struct inventory *inv;

	(void)state;
	assert_non_null(yaml);
	len += (size_t)snprintf(yaml + len, cap - len, "customers:\n");
	for (size_t i = 0; i < CUSTOMERS; i++)
		len += (size_t)snprintf(yaml + len, cap - len, "  c%03zu: {name: C%zu}\n",
					i * 37 % CUSTOMERS, i * 37 % CUSTOMERS);
	len += (size_t)snprintf(yaml + len, cap - len, "hosts:\n");
	for (size_t i = 0; i < HOSTS; i++) {
		size_t n = i * 7 % HOSTS; /* 7 and 3000 are coprime: every name once */

		len += (size_t)snprintf(yaml + len, cap - len, "  h%05zu: {customer: c%03zu%s}\n",
					n, n % CUSTOMERS, n % 2 ? ", role: central" : "");
	}
	inv = parse(yaml, &cfg);
	assert_int_equal(cfg->nerrors, 0);
	for (size_t n = 0; n < HOSTS; n++) {
		const struct host *h;
		char want[16];

		snprintf(key, sizeof(key), "h%05zu", n);
		h = inventory_host(inv, key);
		assert_non_null(h);
		assert_string_equal(h->name, key);
		assert_int_equal(h->role, n % 2 ? HOST_ROLE_CENTRAL : HOST_ROLE_DECENTRAL);
		snprintf(want, sizeof(want), "C%zu", n % CUSTOMERS);
		assert_string_equal(h->customer->name, want);
		snprintf(key, sizeof(key), "h%05zu-", n);
		assert_null(inventory_host(inv, key));
	}
	assert_null(inventory_host(inv, ""));
	assert_null(inventory_host(inv, "h"));
	assert_null(inventory_host(inv, "zzz"));
	for (size_t n = 0; n < CUSTOMERS; n++) {
		snprintf(key, sizeof(key), "c%03zu", n);
		assert_string_equal(inventory_customer(inv, key)->id, key);
	}
	assert_null(inventory_customer(inv, "c"));
	assert_null(inventory_customer(inv, "c999"));
	inventory_free(inv);
	cfg_free(cfg);
	free(yaml);
}

static void test_an_empty_inventory_finds_nothing(void **state)
{
	struct cfg *cfg;
	struct inventory *inv = parse("{}\n", &cfg);

	(void)state;
	assert_int_equal(cfg->nerrors, 0);
	assert_null(inventory_host(inv, "web01"));
	assert_null(inventory_customer(inv, "acme"));
	assert_null(inventory_host(NULL, "web01"));
	inventory_free(inv);
	cfg_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hosts_customers_parents),
		cmocka_unit_test(test_errors_name_the_place),
		cmocka_unit_test(test_many_hosts_are_each_found),
		cmocka_unit_test(test_an_empty_inventory_finds_nothing),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
