/*
 * Mail rendering without header injection, template placeholders, and the
 * helpdesk configuration's errors with their place.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/config.h"
#include "../../common/util.h"
#include "../../server/helpdesk.h"
#include "../../server/inventory.h"
#include "../../server/notify.h"
#include "../../server/smtp.h"

static struct notify_config *config_from(const char *yaml, struct cfg **ret_cfg)
{
	struct notify_config *nc;
	struct cfg *cfg;

	assert_int_equal(cfg_load_string("t.yaml", yaml, &cfg), 0);
	notify_config_parse(cfg, cfg_get(cfg, cfg->root, "notify"), &nc);
	*ret_cfg = cfg;
	return nc;
}

static void test_no_header_injection(void **state)
{
	struct cfg *cfg;
	struct notify_config *nc = config_from("notify:\n  from: Tocsin <tocsin@shop.example>\n", &cfg);
	char *msg;
	const char *body;

	(void)state;
	assert_int_equal(cfg->nerrors, 0);
	msg = smtp_message(nc, "a@x.example,b@y.example",
			   "disk full\r\nBcc: victim@evil.example\nX-Evil: 1",
			   "line one\n.\nline three", "key-1", 1764547200000LL);
	/* The subject stays on its line: no header starts after it. */
	assert_null(strstr(msg, "\r\nBcc:"));
	assert_null(strstr(msg, "\nX-Evil"));
	assert_non_null(strstr(msg, "Subject: disk full  Bcc: victim@evil.example X-Evil: 1\r\n"));
	assert_non_null(strstr(msg, "From: Tocsin <tocsin@shop.example>\r\n"));
	assert_non_null(strstr(msg, "To: a@x.example,b@y.example\r\n"));
	assert_non_null(strstr(msg, "Message-ID: <key-1@shop.example>\r\n"));
	assert_non_null(strstr(msg, "Auto-Submitted: auto-generated\r\n"));
	body = strstr(msg, "\r\n\r\n");
	assert_non_null(body);
	assert_string_equal(body + 4, "line one\r\n.\r\nline three\r\n");
	free(msg);
	/* A subject that is not ASCII is sent as encoded words. */
	msg = smtp_message(nc, "a@x.example", "Sicherung läuft über", "x", "k", 0);
	assert_non_null(strstr(msg, "Subject: =?UTF-8?B?U2ljaGVydW5nIGzDpHVmdCDDvGJlcg==?=\r\n"));
	free(msg);
	notify_config_free(nc);
	cfg_free(cfg);
}

static void test_render(void **state)
{
	const char *fields[] = { "id", "42", "title", "disk /srv on web01", "text", NULL, NULL };
	char *s;

	(void)state;
	s = notify_render("#{id} {title}: {text} {unknown} {", fields, 1000);
	assert_string_equal(s, "#42 disk /srv on web01: - {unknown} {");
	free(s);
	s = notify_render("{title}{title}{title}", fields, 20);
	assert_int_equal(strlen(s), 20);
	assert_string_equal(s + 17, "...");
	free(s);
	assert_true(notify_field_known("summary", 7));
	assert_false(notify_field_known("password", 8));
}

/* Whether s is valid UTF-8 (enough of it for these tests). */
static bool utf8_valid(const char *s)
{
	for (const unsigned char *p = (const unsigned char *)s; *p;) {
		int n = *p < 0x80 ? 1 : (*p & 0xe0) == 0xc0 ? 2 : (*p & 0xf0) == 0xe0 ? 3 : 4;

		p++;
		while (--n > 0)
			if ((*p++ & 0xc0) != 0x80)
				return false;
	}
	return true;
}

/* A cut never falls inside a character, wherever the limit is. */
static void test_render_cuts_between_characters(void **state)
{
	const char *fields[] = { "summary", "x\xc3\xa4\xc3\xa4\xe2\x82\xac\xf0\x9f\x94\xa5tail", NULL };

	(void)state;
	for (size_t max = 4; max < 20; max++) {
		char *s = notify_render("{summary}", fields, max);

		assert_true(strlen(s) <= max);
		assert_true(utf8_valid(s));
		free(s);
	}
	assert_int_equal(notify_utf8_cut("\xc3\xa4", 1), 0);
	assert_int_equal(notify_utf8_cut("a\xe2\x82\xac", 3), 1);
	assert_int_equal(notify_utf8_cut("ab", 2), 2);
}

/*
 * Long subjects are folded at spaces into lines of at most 78, and a
 * word no line could hold makes the subject go as encoded words; no
 * header line ever reaches 998.
 */
static void test_long_subjects_are_folded(void **state)
{
	struct cfg *cfg;
	struct notify_config *nc = config_from("notify:\n  from: tocsin@shop.example\n", &cfg);
	char subject[1400], unfolded[1400], *msg;
	const char *start;
	size_t k = 0;

	(void)state;
	for (size_t i = 0; i + 1 < sizeof(subject); i++)
		subject[i] = i % 10 == 9 ? ' ' : 'a' + (char)(i % 10);
	subject[sizeof(subject) - 1] = '\0';
	msg = smtp_message(nc, "a@x.example", subject, "b", "k", 0);
	for (char *line = msg; line && *line;) {
		char *end = strstr(line, "\r\n");

		assert_non_null(end);
		assert_true(end - line <= SMTP_FOLD_AT);
		if (end == line)
			break; /* the body starts */
		line = end + 2;
	}
	/* Unfolded (each CRLF taken out), the subject is what was given. */
	start = strstr(msg, "Subject: ") + strlen("Subject: ");
	for (const char *p = start; strncmp(p, "\r\nMessage-ID", 12) != 0; p++)
		if (!(p[0] == '\r' && p[1] == '\n') && !(p[0] == '\n' && p[-1] == '\r'))
			unfolded[k++] = *p;
	unfolded[k] = '\0';
	assert_string_equal(unfolded, subject);
	free(msg);
	memset(subject, 'w', 1200);
	subject[1200] = '\0';
	msg = smtp_message(nc, "a@x.example", subject, "b", "k", 0);
	assert_non_null(strstr(msg, "Subject: =?UTF-8?B?"));
	for (char *line = msg, *end; (end = strstr(line, "\r\n")) && end != line; line = end + 2)
		assert_true(end - line < SMTP_LINE_MAX);
	free(msg);
	notify_config_free(nc);
	cfg_free(cfg);
}

/* A password in notify.smtp.url never shows in errors (nor the log). */
static void test_smtp_errors_hide_credentials(void **state)
{
	struct cfg *cfg;
	struct notify_config *nc = config_from(
		"notify:\n  from: tocsin@shop.example\n"
		"  smtp: {url: 'smtp://mailer:s3cr3t@127.0.0.1:1', starttls: none, timeout: 2s}\n",
		&cfg);
	char err[512] = "";

	(void)state;
	assert_int_equal(cfg->nerrors, 0);
	assert_string_equal(nc->smtp_url_shown, "smtp://127.0.0.1:1/");
	/* Nothing listens on port 1: refused at once, and retried later. */
	assert_int_equal(smtp_send(nc, "a@x.example", "s", "b", "k", NULL, err, sizeof(err)), -EAGAIN);
	assert_non_null(strstr(err, "smtp://127.0.0.1:1/"));
	assert_null(strstr(err, "s3cr3t"));
	assert_null(strstr(err, "mailer"));
	notify_config_free(nc);
	cfg_free(cfg);
}

static void assert_error(struct cfg *cfg, const char *expected)
{
	bool found = false;

	for (size_t i = 0; i < cfg->nerrors; i++)
		if (strstr(cfg->errors[i], expected) != NULL)
			found = true;
	if (!found)
		for (size_t i = 0; i < cfg->nerrors; i++)
			print_message("error: %s\n", cfg->errors[i]);
	assert_true(found);
}

static void test_helpdesk_config_errors(void **state)
{
	static const char yaml[] =
		"customers:\n"
		"  acme: {contract: gold, contacts: [it@acme.example, 'not an address']}\n"
		"contracts:\n"
		"  fast:\n"
		"    calendar: {timezone: Europe/Berlin, hours: {mon: 08:00-17:00}}\n"
		"    targets:\n"
		"      P7: {response: 1h}\n"
		"      P1: {response: soon, resolution: 0bd}\n"
		"people:\n"
		"  alice: {email: alice, level: 4, queues: [nowhere]}\n"
		"helpdesk:\n"
		"  default_contract: platinum\n"
		"  priority_matrix:\n"
		"    high: [P1, P2]\n"
		"    huge: [P1, P1, P1, P1]\n"
		"  queues:\n"
		"    support: {lead: nobody}\n"
		"  routing:\n"
		"    - match: {role: central}\n"
		"      set: {queue: nowhere, urgency: extreme}\n"
		"notify:\n"
		"  from: \"no address\"\n";
	struct helpdesk_config *hc;
	struct inventory *inv;
	struct cfg *cfg;

	(void)state;
	assert_int_equal(cfg_load_string("t.yaml", yaml, &cfg), 0);
	inventory_parse(cfg, cfg->root, &inv);
	helpdesk_config_parse(cfg, cfg->root, inv, &hc);
	assert_error(cfg, "t.yaml:2:54: customers.acme.contacts[1]: 'not an address' is not an e-mail address");
	assert_error(cfg, "t.yaml:2:20: customers.acme.contract: no contract 'gold' under contracts:");
	assert_error(cfg, "contracts.fast.targets.P7: 'P7' is not a priority");
	assert_error(cfg, "contracts.fast.targets.P1.response: expected business time such as 4h");
	assert_error(cfg, "contracts.fast.targets.P1.resolution: '0bd': business days must be");
	assert_error(cfg, "people.alice.email: 'alice' is not an e-mail address");
	assert_error(cfg, "people.alice.level: 4 is out of range 1..3");
	assert_error(cfg, "people.alice.queues: no queue 'nowhere' under helpdesk.queues");
	assert_error(cfg, "helpdesk.queues.support.lead: no person 'nobody' under people:");
	assert_error(cfg, "helpdesk.default_contract: no contract 'platinum' under contracts:");
	assert_error(cfg, "helpdesk.priority_matrix.high: expected a list of 4 priorities, one per urgency");
	assert_error(cfg, "helpdesk.priority_matrix.huge: 'huge' is not an impact");
	assert_error(cfg, "helpdesk.routing[0].set.queue: no queue 'nowhere'");
	assert_error(cfg, "helpdesk.routing[0].set.urgency: 'extreme' is not an urgency");
	assert_error(cfg, "notify.from: notify.from must be an address");
	helpdesk_config_free(hc);
	inventory_free(inv);
	cfg_free(cfg);
}

static void test_helpdesk_defaults(void **state)
{
	struct helpdesk_config *hc;
	struct inventory *inv;
	struct cfg *cfg;

	(void)state;
	assert_int_equal(cfg_load_string("t.yaml", "hosts: {web01: {role: central}}\n", &cfg), 0);
	inventory_parse(cfg, cfg->root, &inv);
	helpdesk_config_parse(cfg, cfg->root, inv, &hc);
	assert_int_equal(cfg_finish(cfg), 0);
	assert_string_equal(hc->default_queue, "support");
	assert_string_equal(hc->default_category, "managed-it");
	assert_true(hc->warn_share > 0.749 && hc->warn_share < 0.751);
	/* The default matrix: high impact and critical urgency are P1, low
	 * and low P4, and it never inverts along either scale. */
	assert_int_equal(helpdesk_priority(hc, 0, 0), 0);
	assert_int_equal(helpdesk_priority(hc, 2, 3), 3);
	for (int i = 0; i < hc->nimpacts; i++)
		for (int u = 1; u < hc->nurgencies; u++)
			assert_true(hc->matrix[i][u] >= hc->matrix[i][u - 1]);
	assert_null(helpdesk_contract_for(hc, inventory_host(inv, "web01")));
	helpdesk_config_free(hc);
	inventory_free(inv);
	cfg_free(cfg);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_no_header_injection),
		cmocka_unit_test(test_render),
		cmocka_unit_test(test_render_cuts_between_characters),
		cmocka_unit_test(test_long_subjects_are_folded),
		cmocka_unit_test(test_smtp_errors_hide_credentials),
		cmocka_unit_test(test_helpdesk_config_errors),
		cmocka_unit_test(test_helpdesk_defaults),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
