/*
 * The agent's delivery settings and helpers: server.* and outbox.* keys
 * with their errors (file:line:column), the credential file, the
 * backoff's jitter bounds, and the names a host goes by, checked in one
 * place (name_check()) for the two ways they reach the agent: host in
 * agent.yaml and the host and customer a collector grants at enrollment
 * (from a real HTTP peer on loopback through the real transport).
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../../agent/agent.h"
#include "../../agent/credential.h"
#include "../../agent/delivery.h"
#include "../../agent/grant.h"
#include "../../agent/transport.h"
#include "../../common/config.h"
#include "../../common/util.h"

static char dir[64];

static char *tpath(const char *name)
{
	static char buf[256];

	snprintf(buf, sizeof(buf), "%s/%s", dir, name);
	return buf;
}

static void write_text(const char *name, const char *text)
{
	FILE *fp = fopen(tpath(name), "w");

	assert_non_null(fp);
	fputs(text, fp);
	fclose(fp);
}

static int setup(void **state)
{
	(void)state;
	strlcpy_safe(dir, "/tmp/tocsin-test-delivery-XXXXXX", sizeof(dir));
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	char *cmd = xasprintf("rm -rf '%s'", dir);

	(void)state;
	(void)!system(cmd);
	free(cmd);
	return 0;
}

/* Load agent.yaml (no drop-ins); the errors stay in *ret_cfg. */
static struct agent_config *load(const char *text, struct cfg **ret_cfg)
{
	struct agent_config *conf;

	write_text("agent.yaml", text);
	assert_int_equal(agent_config_load(tpath("agent.yaml"), NULL, &conf,
					   ret_cfg), 0);
	for (size_t i = 0; i < (*ret_cfg)->nerrors; i++)
		fprintf(stderr, "  %s\n", (*ret_cfg)->errors[i]);
	return conf;
}

static bool has_error(const struct cfg *cfg, const char *where, const char *what)
{
	for (size_t i = 0; i < cfg->nerrors; i++)
		if (strstr(cfg->errors[i], where) && strstr(cfg->errors[i], what))
			return true;
	return false;
}

static void test_url_list_and_defaults(void **state)
{
	struct agent_config *conf;
	struct cfg *cfg;

	(void)state;
	conf = load("server:\n"
		    "  url: [https://a.example:8443, https://b.example:8443/]\n"
		    "  token: 0123456789abcdef0123\n",
		    &cfg);
	assert_int_equal(cfg->nerrors, 0);
	assert_string_equal(conf->server_urls[0], "https://a.example:8443");
	assert_string_equal(conf->server_urls[1], "https://b.example:8443/");
	assert_null(conf->server_urls[2]);
	assert_int_equal(conf->retry_primary_ms, 300000);
	assert_int_equal(conf->backoff_max_ms, 300000);
	assert_int_equal(conf->rotate_every_ms, 0);
	assert_int_equal(conf->outbox.max_events, OUTBOX_DEFAULT_MAX_EVENTS);
	assert_int_equal(conf->outbox.batch_events, 500);
	assert_int_equal(conf->outbox.batch_bytes, 512 * 1024);
	assert_false(conf->allow_plain_http);
	cfg_free(cfg);
	agent_config_free(conf);
}

static void test_plain_http_needs_allow_plain_http(void **state)
{
	struct agent_config *conf;
	struct cfg *cfg;

	(void)state;
	conf = load("server:\n"
		    "  url:\n"
		    "    - https://a.example\n"
		    "    - http://b.example\n"
		    "  token: t\n",
		    &cfg);
	assert_int_equal(cfg->nerrors, 1);
	assert_true(has_error(cfg, "agent.yaml:4:7: server.url[1]:",
			      "'http://b.example' is plain HTTP"));
	cfg_free(cfg);
	agent_config_free(conf);

	conf = load("server:\n  url: http://b.example\n  token: t\n"
		    "  allow_plain_http: true\n",
		    &cfg);
	assert_int_equal(cfg->nerrors, 0);
	assert_true(conf->allow_plain_http);
	cfg_free(cfg);
	agent_config_free(conf);
}

/* Which of two tokens would it use?  Neither: it says where it was told both. */
static void test_token_and_token_file_exclude_each_other(void **state)
{
	struct agent_config *conf;
	struct cfg *cfg;
	char *text;

	(void)state;
	write_text("token", "from-the-file-0123456789\n");
	text = xasprintf("server:\n"
			 "  url: https://a.example\n"
			 "  token: inline-0123456789abcdef\n"
			 "  token_file: %s\n",
			 tpath("token"));
	conf = load(text, &cfg);
	free(text);
	assert_int_equal(cfg->nerrors, 1);
	assert_true(has_error(cfg, "agent.yaml:4:15: server.token_file:",
			      "token and token_file are mutually exclusive"));
	cfg_free(cfg);
	agent_config_free(conf);

	text = xasprintf("server:\n"
			 "  url: https://a.example\n"
			 "  token_file: %s\n",
			 tpath("token"));
	conf = load(text, &cfg);
	free(text);
	assert_int_equal(cfg->nerrors, 0);
	assert_string_equal(conf->token, "from-the-file-0123456789");
	cfg_free(cfg);
	agent_config_free(conf);
}

static void test_tls_keys_are_checked(void **state)
{
	struct agent_config *conf;
	struct cfg *cfg;
	char *text;

	(void)state;
	write_text("ca.pem", "not really a CA, but readable\n");
	text = xasprintf("server:\n"
			 "  url: https://a.example\n"
			 "  token: t\n"
			 "  ca_file: %s\n"
			 "  pin_sha256:\n"
			 "    - sha256//YhKJKSzoTt2b5FP18fvpHo7fJYqQCjAa3HWY3tvRMwE=\n"
			 "    - YhKJKSzoTt2b5FP18fvpHo7fJYqQCjAa3HWY3tvRMwE=\n"
			 "  client_cert: %s\n",
			 tpath("ca.pem"), tpath("ca.pem"));
	conf = load(text, &cfg);
	free(text);
	assert_string_equal(conf->ca_file, tpath("ca.pem"));
	/* both forms become curl's list */
	assert_string_equal(conf->pin_sha256,
			    "sha256//YhKJKSzoTt2b5FP18fvpHo7fJYqQCjAa3HWY3tvRMwE=;"
			    "sha256//YhKJKSzoTt2b5FP18fvpHo7fJYqQCjAa3HWY3tvRMwE=");
	assert_int_equal(cfg->nerrors, 1);
	assert_true(has_error(cfg, "agent.yaml:2:3: server:",
			      "client_cert and client_key go together"));
	cfg_free(cfg);
	agent_config_free(conf);

	conf = load("server:\n"
		    "  url: https://a.example\n"
		    "  token: t\n"
		    "  ca_file: /nonexistent/ca.pem\n"
		    "  pin_sha256: sha256//tooshort\n",
		    &cfg);
	assert_int_equal(cfg->nerrors, 2);
	assert_true(has_error(cfg, "agent.yaml:4:12: server.ca_file:",
			      "cannot read /nonexistent/ca.pem: No such file"));
	assert_true(has_error(cfg, "agent.yaml:5:15: server.pin_sha256:",
			      "'sha256//tooshort' is not a SHA-256 pin"));
	cfg_free(cfg);
	agent_config_free(conf);
}

static void test_outbox_and_retry_keys(void **state)
{
	struct agent_config *conf;
	struct cfg *cfg;

	(void)state;
	conf = load("server:\n"
		    "  url: https://a.example\n"
		    "  token: t\n"
		    "  backoff_max: 1m\n"
		    "  retry_primary: 30s\n"
		    "  rotate_every: 30d\n"
		    "outbox:\n"
		    "  max_events: 5000\n"
		    "  max_bytes: 8MiB\n"
		    "  max_age: 2d\n"
		    "  batch_events: 100\n"
		    "  batch_bytes: 64KiB\n",
		    &cfg);
	assert_int_equal(cfg->nerrors, 0);
	assert_int_equal(conf->backoff_max_ms, 60000);
	assert_int_equal(conf->retry_primary_ms, 30000);
	assert_int_equal(conf->rotate_every_ms, 30LL * 86400 * 1000);
	assert_int_equal(conf->outbox.max_events, 5000);
	assert_int_equal(conf->outbox.max_bytes, 8 * 1024 * 1024);
	assert_int_equal(conf->outbox.max_age_ms, 2 * 86400 * 1000);
	assert_int_equal(conf->outbox.batch_events, 100);
	assert_int_equal(conf->outbox.batch_bytes, 64 * 1024);
	cfg_free(cfg);
	agent_config_free(conf);

	conf = load("server:\n"
		    "  url: https://a.example\n"
		    "  token: t\n"
		    "  backoff_max: 10ms\n"
		    "outbox:\n"
		    "  max_events: 3\n"
		    "  max_bytes: lots\n"
		    "  max_age: 5s\n"
		    "  batch_bytes: 1GiB\n"
		    "  batches: 2\n",
		    &cfg);
	assert_int_equal(cfg->nerrors, 6);
	assert_true(has_error(cfg, "agent.yaml:4:16: server.backoff_max:",
			      "backoff_max must be at least 1000 ms"));
	assert_true(has_error(cfg, "agent.yaml:6:15: outbox.max_events:", ""));
	assert_true(has_error(cfg, "agent.yaml:7:14: outbox.max_bytes:", "expected a size"));
	assert_true(has_error(cfg, "agent.yaml:8:12: outbox.max_age:",
			      "max_age must be 0 (off) or at least 1m"));
	assert_true(has_error(cfg, "agent.yaml:9:16: outbox.batch_bytes:",
			      "batch_bytes must be between"));
	assert_true(has_error(cfg, "agent.yaml:10:3: outbox.batches:",
			      "unknown key 'batches'"));
	cfg_free(cfg);
	agent_config_free(conf);
}

static void test_deliverer_and_hold_keys(void **state)
{
	struct agent_config *conf;
	struct cfg *cfg;

	(void)state;
	conf = load("server:\n"
		    "  url: https://a.example\n"
		    "  token: t\n",
		    &cfg);
	assert_int_equal(cfg->nerrors, 0);
	assert_int_equal(conf->hold_repeats_ms, 300000);
	assert_int_equal(conf->env.report_every_ms, 300000); /* the heartbeat's promise */
	assert_int_equal(conf->deliverer_linger_ms, 2000);
	assert_null(conf->deliverer_path); /* next to tocsin-agent, or libexec */
	cfg_free(cfg);
	agent_config_free(conf);

	conf = load("server:\n"
		    "  url: https://a.example\n"
		    "  token: t\n"
		    "  hold_repeats: 0s\n"
		    "deliverer:\n"
		    "  path: /bin/true\n"
		    "  linger: 0s\n",
		    &cfg);
	assert_int_equal(cfg->nerrors, 0);
	assert_int_equal(conf->hold_repeats_ms, 0);
	assert_int_equal(conf->deliverer_linger_ms, 0);
	assert_string_equal(conf->deliverer_path, "/bin/true");
	cfg_free(cfg);
	agent_config_free(conf);

	conf = load("server:\n"
		    "  url: https://a.example\n"
		    "  token: t\n"
		    "  hold_repeats: 2h\n"
		    "deliverer:\n"
		    "  path: /etc/passwd\n"
		    "  linger: 1d\n"
		    "  lingering: 1s\n",
		    &cfg);
	assert_int_equal(cfg->nerrors, 4);
	assert_true(has_error(cfg, "agent.yaml:4:17: server.hold_repeats:",
			      "hold_repeats must be at most 1h"));
	assert_true(has_error(cfg, "agent.yaml:6:9: deliverer.path:",
			      "cannot run /etc/passwd: Permission denied"));
	assert_true(has_error(cfg, "agent.yaml:7:11: deliverer.linger:",
			      "linger must be at most 1h"));
	assert_true(has_error(cfg, "agent.yaml:8:3: deliverer.lingering:",
			      "unknown key 'lingering'"));
	cfg_free(cfg);
	agent_config_free(conf);
}

static void test_name_check(void **state)
{
	char longest[AGENT_HOST_MAX + 2];

	(void)state;
	memset(longest, 'a', AGENT_HOST_MAX);
	longest[AGENT_HOST_MAX] = '\0';
	assert_int_equal(name_check("web01", AGENT_HOST_MAX, false), 0);
	assert_int_equal(name_check("w\xc3\xa9" "b01", AGENT_HOST_MAX, false), 0);
	assert_int_equal(name_check(longest, AGENT_HOST_MAX, false), 0);
	assert_int_equal(name_check("ACME GmbH", AGENT_CUSTOMER_MAX, true), 0);
	assert_int_equal(name_check("", AGENT_HOST_MAX, false), -ENODATA);
	longest[AGENT_HOST_MAX] = 'a';
	longest[AGENT_HOST_MAX + 1] = '\0';
	assert_int_equal(name_check(longest, AGENT_HOST_MAX, false), -ENAMETOOLONG);
	assert_int_equal(name_check("web 01", AGENT_HOST_MAX, false), -EILSEQ);
	assert_int_equal(name_check("web\t01", AGENT_HOST_MAX, true), -EILSEQ);
	assert_int_equal(name_check("web\x7f", AGENT_HOST_MAX, true), -EILSEQ);
	assert_int_equal(name_check("ac\nme", AGENT_CUSTOMER_MAX, true), -EILSEQ);
}

/* host: yaml_host (a YAML scalar) is accepted (error NULL), or refused at 1:7. */
static void expect_host(const char *yaml_host, const char *error)
{
	char *text = xasprintf("host: %s\nserver:\n  url: https://a.example\n  token: t\n",
			       yaml_host);
	struct agent_config *conf;
	struct cfg *cfg;

	conf = load(text, &cfg);
	free(text);
	if (error == NULL)
		assert_int_equal(cfg->nerrors, 0);
	else if (cfg->nerrors != 1 || !has_error(cfg, "agent.yaml:1:7: host:", error))
		fail_msg("host %s: %zu errors, expected '%s'", yaml_host,
			 cfg->nerrors, error);
	cfg_free(cfg);
	agent_config_free(conf);
}

static void test_host_must_be_fileable(void **state)
{
	char longest[AGENT_HOST_MAX + 2];

	(void)state;
	memset(longest, 'a', AGENT_HOST_MAX);
	longest[AGENT_HOST_MAX] = '\0';
	expect_host("web01", NULL);
	expect_host("w\xc3\xa9" "b01", NULL);
	expect_host(longest, NULL);
	expect_host("\"\"", "host is empty and the host name is unknown");
	expect_host("web 01", "host 'web 01' contains a space or control character");
	expect_host("\"web\\t01\"", "contains a space or control character");
	expect_host("\"web\\x7f\"", "contains a space or control character");
	longest[AGENT_HOST_MAX] = 'a';
	longest[AGENT_HOST_MAX + 1] = '\0';
	expect_host(longest, "host name longer than 253 characters");
}

/* --- host and customer in an enrollment grant --------------------------- */

/* A one-request HTTP peer: answers 201 with body, then closes. */
struct peer {
	int fd;
	char url[64];
	const char *body;
	pthread_t thread;
};

static void *peer_serve(void *arg)
{
	struct peer *p = arg;
	char req[8192], *end, *cl, *answer;
	size_t have = 0, want = 0;
	int c = accept(p->fd, NULL, NULL);
	ssize_t n;

	if (c < 0)
		return NULL;
	/* the headers, then as many body bytes as Content-Length says */
	while (have < sizeof(req) - 1) {
		n = read(c, req + have, sizeof(req) - 1 - have);
		if (n <= 0)
			break;
		have += (size_t)n;
		req[have] = '\0';
		end = strstr(req, "\r\n\r\n");
		if (end == NULL)
			continue;
		cl = strcasestr(req, "Content-Length:");
		want = (size_t)(end + 4 - req) + (cl ? strtoul(cl + 15, NULL, 10) : 0);
		if (have >= want)
			break;
	}
	answer = xasprintf("HTTP/1.1 201 Created\r\n"
			   "Content-Type: application/json\r\n"
			   "Content-Length: %zu\r\n"
			   "Connection: close\r\n\r\n%s",
			   strlen(p->body), p->body);
	(void)!write(c, answer, strlen(answer));
	free(answer);
	close(c);
	return NULL;
}

static void peer_start(struct peer *p, const char *body)
{
	struct sockaddr_in a = { .sin_family = AF_INET,
				 .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
	socklen_t len = sizeof(a);

	p->body = body;
	p->fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	assert_true(p->fd >= 0);
	assert_int_equal(bind(p->fd, (struct sockaddr *)&a, sizeof(a)), 0);
	assert_int_equal(listen(p->fd, 1), 0);
	assert_int_equal(getsockname(p->fd, (struct sockaddr *)&a, &len), 0);
	snprintf(p->url, sizeof(p->url), "http://127.0.0.1:%u", ntohs(a.sin_port));
	assert_int_equal(pthread_create(&p->thread, NULL, peer_serve, p), 0);
}

static void peer_stop(struct peer *p)
{
	pthread_join(p->thread, NULL);
	close(p->fd);
}

/* Enroll against a peer that grants host and customer (NULL: absent). */
static int enroll_granted(const char *host, const char *customer,
			  struct credential_grant *ret, char *err, size_t errlen)
{
	json_t *j = json_pack("{s:s, s:s, s:i}", "host", host, "credential",
			      "s0123456789abcdef0123", "credential_id", 7);
	char *body, *urls[2] = { NULL, NULL };
	struct transport *t = NULL;
	struct peer p;
	int r;

	if (customer != NULL)
		json_object_set_new(j, "customer", json_string(customer));
	body = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	peer_start(&p, body);
	urls[0] = p.url;
	assert_int_equal(transport_new(&(struct transport_options){
					       .urls = urls,
					       .token = "enrollment-token-0123456789",
					       .timeout_ms = 5000,
					       .allow_plain_http = true,
				       },
				       &t),
			 0);
	r = grant_enroll(t, "web01", ret, err, errlen);
	transport_free(t);
	peer_stop(&p);
	free(body);
	return r;
}

static void expect_grant(const char *host, const char *customer, bool accepted)
{
	struct credential_grant g = { 0 };
	char err[1024] = "";
	int r = enroll_granted(host, customer, &g, err, sizeof(err));

	if (accepted) {
		if (r != 0)
			fail_msg("host '%s' customer '%s' refused: %s", host,
				 customer ? customer : "(none)", err);
		assert_string_equal(g.host, host);
		if (customer)
			assert_string_equal(g.customer, customer);
		credential_grant_clear(&g);
		return;
	}
	if (r != -EBADMSG)
		fail_msg("host '%s' customer '%s' accepted (%d)", host,
			 customer ? customer : "(none)", r);
	assert_non_null(strstr(err, "the collector sent a host or customer name that is empty, longer than 253/255 characters or has control characters (or a space in the host)"));
}

static void test_granted_names(void **state)
{
	char host[AGENT_HOST_MAX + 2], customer[AGENT_CUSTOMER_MAX + 2];

	(void)state;
	memset(host, 'h', AGENT_HOST_MAX);
	host[AGENT_HOST_MAX] = '\0';
	memset(customer, 'c', AGENT_CUSTOMER_MAX);
	customer[AGENT_CUSTOMER_MAX] = '\0';
	expect_grant("web01", NULL, true);
	expect_grant("web01", "ACME GmbH", true); /* a customer may have spaces */
	expect_grant(host, customer, true);
	expect_grant("", "acme", false);
	expect_grant("web 01", "acme", false);
	expect_grant("web\x7f", "acme", false);
	expect_grant("web01", "ac\nme", false);
	expect_grant("web01", "", false);
	host[AGENT_HOST_MAX] = 'h';
	host[AGENT_HOST_MAX + 1] = '\0';
	expect_grant(host, "acme", false);
	host[AGENT_HOST_MAX] = '\0';
	customer[AGENT_CUSTOMER_MAX] = 'c';
	customer[AGENT_CUSTOMER_MAX + 1] = '\0';
	expect_grant(host, customer, false);
}

static void test_enroll_may_run_without_config_or_url(void **state)
{
	struct agent_config *conf;
	struct cfg *cfg;

	(void)state;
	assert_int_equal(agent_config_load_flags(tpath("missing.yaml"), NULL,
						 AGENT_CONFIG_NO_SERVER_URL |
							 AGENT_CONFIG_MAY_BE_MISSING,
						 &conf, &cfg),
			 0);
	assert_int_equal(cfg->nerrors, 0);
	assert_null(conf->server_urls);
	assert_string_equal(conf->state_dir, AGENT_DEFAULT_STATE_DIR);
	cfg_free(cfg);
	agent_config_free(conf);

	/* the daemon still insists */
	assert_int_equal(agent_config_load(tpath("missing.yaml"), NULL, &conf, &cfg), 0);
	assert_true(cfg->nerrors >= 1);
	cfg_free(cfg);
	agent_config_free(conf);
}

static void test_credential_read(void **state)
{
	char *secret = NULL, *longer;

	(void)state;
	write_text("c1", "  s3cr3t-0123456789abcdef \n# a comment\n");
	assert_int_equal(credential_read(tpath("c1"), &secret), 0);
	assert_string_equal(secret, "s3cr3t-0123456789abcdef");
	free(secret);
	secret = NULL;

	write_text("c2", "\n");
	assert_int_equal(credential_read(tpath("c2"), &secret), -ENODATA);
	write_text("c3", "abc\001def\n");
	assert_int_equal(credential_read(tpath("c3"), &secret), -EINVAL);
	longer = xcalloc(CREDENTIAL_MAX + 2, 1);
	memset(longer, 'x', CREDENTIAL_MAX + 1);
	write_text("c4", longer);
	free(longer);
	assert_int_equal(credential_read(tpath("c4"), &secret), -EFBIG);
	assert_int_equal(credential_read(tpath("none"), &secret), -ENOENT);
	assert_null(secret);
}

static void test_credential_store_is_private_and_replaces(void **state)
{
	struct credential_grant g = { .host = xstrdup("web01"),
				      .customer = xstrdup("acme"),
				      .id = 17,
				      .secret = xstrdup("first-secret-0123456789") };
	char *path = xstrdup(tpath("credential")), *tmp, *secret = NULL;
	struct stat st;

	(void)state;
	/* a temporary file left by a crash, readable by all */
	tmp = xasprintf("%s.tmp.%ld", path, (long)getpid());
	write_text("credential.tmp.x", "");
	assert_int_equal(rename(tpath("credential.tmp.x"), tmp), 0);
	assert_int_equal(chmod(tmp, 0644), 0);
	assert_int_equal(credential_store(path, &g, "https://c.example"), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(credential_read(path, &secret), 0);
	assert_string_equal(secret, "first-secret-0123456789");
	free(secret);

	free(g.secret);
	g.secret = xstrdup("second-secret-0123456789");
	g.id = 18;
	assert_int_equal(credential_store(path, &g, "https://c.example"), 0);
	assert_int_equal(credential_read(path, &secret), 0);
	assert_string_equal(secret, "second-secret-0123456789");
	assert_int_equal(access(tmp, F_OK), -1);
	free(secret);
	free(tmp);
	free(path);
	credential_grant_clear(&g);
}

static void test_backoff_is_jittered_growing_and_capped(void **state)
{
	int64_t d = 0, max_seen = 0;

	(void)state;
	/* the first delay is the base, whatever the dice say */
	assert_int_equal(delivery_backoff_next(0, 1000, 300000, 0), 1000);
	assert_int_equal(delivery_backoff_next(0, 1000, 300000, UINT32_MAX), 1000);
	/* then uniform in [base, 3 * previous] */
	assert_int_equal(delivery_backoff_next(1000, 1000, 300000, 0), 1000);
	assert_int_equal(delivery_backoff_next(1000, 1000, 300000, 2000), 3000);
	assert_int_equal(delivery_backoff_next(1000, 1000, 300000, 2001), 1000);
	/* and never above the cap */
	assert_int_equal(delivery_backoff_next(200000, 1000, 300000, 500000), 300000);
	for (int i = 0; i < 200; i++) {
		d = delivery_backoff_next(d, 1000, 300000, arc4random());
		assert_true(d >= 1000 && d <= 300000);
		max_seen = d > max_seen ? d : max_seen;
	}
	assert_true(max_seen > 100000); /* it does grow towards the cap */
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_url_list_and_defaults),
		cmocka_unit_test(test_plain_http_needs_allow_plain_http),
		cmocka_unit_test(test_token_and_token_file_exclude_each_other),
		cmocka_unit_test(test_tls_keys_are_checked),
		cmocka_unit_test(test_outbox_and_retry_keys),
		cmocka_unit_test(test_deliverer_and_hold_keys),
		cmocka_unit_test(test_name_check),
		cmocka_unit_test(test_host_must_be_fileable),
		cmocka_unit_test(test_granted_names),
		cmocka_unit_test(test_enroll_may_run_without_config_or_url),
		cmocka_unit_test(test_credential_read),
		cmocka_unit_test(test_credential_store_is_private_and_replaces),
		cmocka_unit_test(test_backoff_is_jittered_growing_and_capped),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
