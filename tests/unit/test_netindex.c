/* Which trap networks hold an address (server/netindex.c). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../server/netindex.h"
#include "../../server/trapconf.h"

static struct trap_network *networks_of(const char *const *cidrs, size_t n)
{
	struct trap_network *nets = calloc(n ? n : 1, sizeof(*nets));

	for (size_t i = 0; i < n; i++)
		assert_int_equal(trapconf_parse_cidr(cidrs[i], &nets[i].cidr), 0);
	return nets;
}

/* The networks holding text, sorted, as "i,j,k" into out. */
static const char *holding(const struct netindex *ix, const char *text,
			   char *out, size_t size)
{
	struct trap_cidr a;
	struct netindex_hits hits = { 0 };
	size_t len = 0;

	assert_int_equal(trapconf_parse_cidr(text, &a), 0);
	netindex_find(ix, &a, &hits);
	netindex_hits_sort(&hits);
	out[0] = '\0';
	for (size_t i = 0; i < hits.n; i++)
		len += (size_t)snprintf(out + len, size - len, "%s%zu",
					i ? "," : "", hits.v[i]);
	netindex_hits_free(&hits);
	return out;
}

#define assert_holding(ix, addr, want)                                        \
	do {                                                                  \
		char buf_[256];                                               \
		assert_string_equal(holding(ix, addr, buf_, sizeof(buf_)),    \
				    want);                                    \
	} while (0)

/* Every network holding the address, not only the longest match. */
static void test_overlapping_networks_all_hold(void **state)
{
	static const char *const cidrs[] = {
		"10.0.0.0/8",	  /* 0 */
		"10.1.0.0/16",	  /* 1 */
		"10.1.2.0/24",	  /* 2 */
		"10.1.2.3/32",	  /* 3: one address */
		"10.1.2.77/24",	  /* 4: host bits set, the same as 2 */
		"10.1.2.0/24",	  /* 5: a duplicate of 2 */
		"10.1.240.0/20",  /* 6: not on a byte boundary */
		"192.0.2.128/25", /* 7 */
	};
	struct trap_network *nets = networks_of(cidrs, 8);
	struct netindex *ix = netindex_new(nets, 8);

	(void)state;
	assert_holding(ix, "10.1.2.3", "0,1,2,3,4,5");
	assert_holding(ix, "10.1.2.4", "0,1,2,4,5");
	assert_holding(ix, "10.1.3.4", "0,1");
	assert_holding(ix, "10.1.255.1", "0,1,6");
	assert_holding(ix, "10.1.239.255", "0,1");
	assert_holding(ix, "10.2.0.1", "0");
	assert_holding(ix, "192.0.2.200", "7");
	assert_holding(ix, "192.0.2.127", ""); /* not found */
	assert_holding(ix, "11.0.0.1", "");
	assert_holding(ix, "::ffff:10.1.2.3", ""); /* another family */
	netindex_free(ix);
	free(nets);
}

static void test_zero_and_full_prefixes(void **state)
{
	static const char *const cidrs[] = {
		"0.0.0.0/0",	       /* 0: every IPv4 address */
		"::/0",		       /* 1: every IPv6 address */
		"2001:db8::/32",       /* 2 */
		"2001:db8::1",	       /* 3: /128 */
		"2001:db8:8000::/33",  /* 4 */
		"203.0.113.9/32",      /* 5 */
	};
	struct trap_network *nets = networks_of(cidrs, 6);
	struct netindex *ix = netindex_new(nets, 6);

	(void)state;
	assert_holding(ix, "203.0.113.9", "0,5");
	assert_holding(ix, "203.0.113.8", "0");
	assert_holding(ix, "255.255.255.255", "0");
	assert_holding(ix, "2001:db8::1", "1,2,3");
	assert_holding(ix, "2001:db8::2", "1,2");
	assert_holding(ix, "2001:db8:8000::1", "1,2,4");
	assert_holding(ix, "2001:db9::1", "1");
	netindex_free(ix);
	free(nets);
}

/* Socket addresses, and several addresses' hits gathered: each once. */
static void test_sockaddr_and_gathered_hits(void **state)
{
	static const char *const cidrs[] = { "198.51.100.0/24", "198.51.0.0/16",
					     "2001:db8::/64" };
	struct trap_network *nets = networks_of(cidrs, 3);
	struct netindex *ix = netindex_new(nets, 3);
	struct sockaddr_in sin = { .sin_family = AF_INET };
	struct sockaddr_in6 sin6 = { .sin6_family = AF_INET6 };
	struct sockaddr sun = { .sa_family = AF_UNIX };
	struct netindex_hits hits = { 0 };

	(void)state;
	assert_int_equal(inet_pton(AF_INET, "198.51.100.7", &sin.sin_addr), 1);
	netindex_find_sockaddr(ix, (const struct sockaddr *)&sin, &hits);
	assert_int_equal(hits.n, 2);
	assert_int_equal(inet_pton(AF_INET, "198.51.100.8", &sin.sin_addr), 1);
	netindex_find_sockaddr(ix, (const struct sockaddr *)&sin, &hits);
	assert_int_equal(inet_pton(AF_INET6, "2001:db8::5", &sin6.sin6_addr), 1);
	netindex_find_sockaddr(ix, (const struct sockaddr *)&sin6, &hits);
	netindex_find_sockaddr(ix, &sun, &hits);
	assert_int_equal(hits.n, 5);
	netindex_hits_sort(&hits);
	assert_int_equal(hits.n, 3);
	assert_int_equal(hits.v[0], 0);
	assert_int_equal(hits.v[1], 1);
	assert_int_equal(hits.v[2], 2);
	netindex_hits_free(&hits);
	assert_null(hits.v);
	netindex_free(ix);
	free(nets);
}

static void test_empty_index_holds_nothing(void **state)
{
	struct netindex *ix = netindex_new(NULL, 0);
	struct netindex_hits hits = { 0 };

	(void)state;
	assert_holding(ix, "10.0.0.1", "");
	assert_holding(ix, "::1", "");
	netindex_hits_sort(&hits);
	assert_int_equal(hits.n, 0);
	netindex_free(ix);
	netindex_free(NULL);
}

/*
 * Thousands of random networks of random lengths, many overlapping: the
 * index finds exactly what trapconf_cidr_holds() over all of them finds.
 */
static void test_agrees_with_a_scan(void **state)
{
	enum { N = 3000, PROBES = 3000 };
	struct trap_network *nets = calloc(N, sizeof(*nets));
	struct netindex *ix;
	struct netindex_hits hits = { 0 };
	unsigned seed = 12345;

	(void)state;
	for (size_t i = 0; i < N; i++) {
		struct trap_cidr *c = &nets[i].cidr;

		c->family = i % 3 == 0 ? AF_INET6 : AF_INET;
		for (size_t k = 0; k < 16; k++)
			/* Few distinct bytes, so that networks overlap. */
			c->addr[k] = (uint8_t)(rand_r(&seed) % 4);
		c->prefix = (unsigned)rand_r(&seed) %
			    (c->family == AF_INET ? 33 : 129);
	}
	ix = netindex_new(nets, N);
	for (size_t p = 0; p < PROBES; p++) {
		struct trap_cidr a = { .family = p % 3 == 0 ? AF_INET6 : AF_INET };
		size_t want = 0, k = 0;

		for (size_t b = 0; b < 16; b++)
			a.addr[b] = (uint8_t)(rand_r(&seed) % 4);
		hits.n = 0;
		netindex_find(ix, &a, &hits);
		netindex_hits_sort(&hits);
		for (size_t i = 0; i < N; i++) {
			if (!trapconf_cidr_holds(&nets[i].cidr, &a))
				continue;
			want++;
			assert_true(k < hits.n);
			assert_int_equal(hits.v[k], i);
			k++;
		}
		assert_int_equal(hits.n, want);
	}
	netindex_hits_free(&hits);
	netindex_free(ix);
	free(nets);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_overlapping_networks_all_hold),
		cmocka_unit_test(test_zero_and_full_prefixes),
		cmocka_unit_test(test_sockaddr_and_gathered_hits),
		cmocka_unit_test(test_empty_index_holds_nothing),
		cmocka_unit_test(test_agrees_with_a_scan),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
