/* Customers and hosts from the server configuration. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

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

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hosts_customers_parents),
		cmocka_unit_test(test_errors_name_the_place),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
