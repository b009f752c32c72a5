/* The configured API tokens, found by their secret (token_find()). */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/config.h"
#include "../../common/util.h"
#include "../../server/server.h"

enum { MANY = 3000 };

static char tmpdir[] = "/tmp/tocsin-test-tokens-XXXXXX";

/* A server.yaml with text under auth.tokens, loaded without errors. */
static struct server_config *load(const char *tokens, struct cfg **ret_cfg)
{
	char *path = xasprintf("%s/server.yaml", tmpdir);
	FILE *fp = fopen(path, "w");
	struct server_config *conf = NULL;

	assert_non_null(fp);
	fprintf(fp, "listen: 127.0.0.1:0\nallow_plain_http: true\n"
		    "auth:\n  tokens:\n%s", tokens);
	fclose(fp);
	assert_int_equal(server_config_load(path, NULL, &conf, ret_cfg), 0);
	for (size_t i = 0; i < (*ret_cfg)->nerrors; i++)
		print_message("  error: %s\n", (*ret_cfg)->errors[i]);
	assert_int_equal((*ret_cfg)->nerrors, 0);
	free(path);
	return conf;
}

static const char *name_of(const struct server_config *conf, const char *secret)
{
	const struct server_token *t = token_find(conf, secret);

	return t ? t->name : "(none)";
}

static void test_many_tokens_are_each_found(void **state)
{
	char *text = xstrdup(""), *more, secret[64], name[32];
	struct cfg *cfg;
	struct server_config *conf;

	(void)state;
	for (int i = 0; i < MANY; i++) {
		more = xasprintf("%s    - {name: tech%d, token: secret-of-tech-%08d, role: %s}\n",
				 text, i, i, i % 2 ? "technician" : "viewer");
		free(text);
		text = more;
	}
	conf = load(text, &cfg);
	assert_int_equal(conf->ntokens, MANY);
	for (int i = 0; i < MANY; i++) {
		snprintf(secret, sizeof(secret), "secret-of-tech-%08d", i);
		snprintf(name, sizeof(name), "tech%d", i);
		assert_string_equal(name_of(conf, secret), name);
		assert_int_equal(token_find(conf, secret)->perms,
				 i % 2 ? conf->tokens[1].perms : conf->tokens[0].perms);
	}
	/* Not found: unknown, a prefix, one character more, empty. */
	assert_string_equal(name_of(conf, "secret-of-tech-99999999"), "(none)");
	assert_string_equal(name_of(conf, "secret-of-tech-0000000"), "(none)");
	assert_string_equal(name_of(conf, "secret-of-tech-000000001"), "(none)");
	assert_string_equal(name_of(conf, ""), "(none)");
	server_config_free(conf);
	cfg_free(cfg);
	free(text);
}

/* One secret under two names: the later one, as a scan of all found. */
static void test_a_repeated_secret_is_the_last_tokens(void **state)
{
	struct cfg *cfg;
	struct server_config *conf = load(
		"    - {name: first, token: one-shared-secret-0001, role: viewer}\n"
		"    - {name: other, token: another-secret-000001, role: admin}\n"
		"    - {name: second, token: one-shared-secret-0001, role: technician}\n",
		&cfg);

	(void)state;
	assert_string_equal(name_of(conf, "one-shared-secret-0001"), "second");
	assert_string_equal(name_of(conf, "another-secret-000001"), "other");
	server_config_free(conf);
	cfg_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_many_tokens_are_each_found),
		cmocka_unit_test(test_a_repeated_secret_is_the_last_tokens),
	};
	char *cmd;
	int r;

	if (sodium_init() < 0 || mkdtemp(tmpdir) == NULL)
		return 1;
	r = cmocka_run_group_tests(tests, NULL, NULL);
	cmd = xasprintf("rm -rf '%s'", tmpdir);
	if (system(cmd) != 0)
		r = 1;
	free(cmd);
	return r;
}
