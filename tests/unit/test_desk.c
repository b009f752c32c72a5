/*
 * The helpdesk's ticket-change listeners on a real SQLite file: routing
 * fills the fields in the opening's transaction, notifications go to the
 * outbox in the same transaction (and vanish with a rollback), and
 * children and flapping tickets mail nothing per change, while a flapping
 * or reopened problem cancels the customer's pending "solved" mail.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../common/config.h"
#include "../../common/util.h"
#include "../../server/dedup.h"
#include "../../server/desk.h"
#include "../../server/escalate.h"
#include "../../server/inventory.h"
#include "../../server/store.h"

static const char yaml[] =
	"customers:\n"
	"  acme: {contract: fast, contacts: [it@acme.example]}\n"
	"hosts:\n"
	"  web01: {customer: acme, role: central}\n"
	"contracts:\n"
	"  fast:\n"
	"    calendar: {timezone: UTC, hours: {daily: 00:00-24:00}}\n"
	"    targets: {P1: {response: 1h, resolution: 4h}}\n"
	"people:\n"
	"  alice: {email: alice@shop.example, level: 1, queues: [support]}\n"
	"helpdesk:\n"
	"  status_updates: 0s\n"
	"notify:\n"
	"  smtp: {url: 'smtp://127.0.0.1:1'}\n"
	"  webhooks: [{name: hook, url: 'http://127.0.0.1:1/', events: [opened, updated, action]}]\n";

/* Status updates every hour, a customer without contacts, a small outbox. */
static char yaml_small[] =
	"customers:\n"
	"  acme: {contract: fast, contacts: [it@acme.example]}\n"
	"  solo: {contract: fast}\n"
	"hosts:\n"
	"  web01: {customer: acme, role: central}\n"
	"  lone01: {customer: solo, role: central}\n"
	"contracts:\n"
	"  fast:\n"
	"    calendar: {timezone: UTC, hours: {daily: 00:00-24:00}}\n"
	"    targets: {P1: {response: 1h, resolution: 4h}}\n"
	"people:\n"
	"  alice: {email: alice@shop.example, level: 1, queues: [support]}\n"
	"helpdesk:\n"
	"  status_updates: 1h\n"
	"notify:\n"
	"  smtp: {url: 'smtp://127.0.0.1:1'}\n"
	"  max_pending: 100\n";

/* No person, queue or customer with an address. */
#define NO_ADDRESS_YAML                                                        \
	"customers:\n"                                                           \
	"  solo: {contract: fast}\n"                                             \
	"hosts:\n"                                                               \
	"  web01: {customer: solo, role: central}\n"                             \
	"contracts:\n"                                                           \
	"  fast:\n"                                                              \
	"    calendar: {timezone: UTC, hours: {daily: 00:00-24:00}}\n"           \
	"    targets: {P1: {response: 1h, resolution: 4h}}\n"                    \
	"people:\n"                                                              \
	"  alice: {level: 1, queues: [support]}\n"

/* Mail on, but nobody to send it to. */
static char yaml_nobody[] = NO_ADDRESS_YAML "notify:\n"
					    "  smtp: {url: 'smtp://127.0.0.1:1'}\n";
/* The same without mail: what the tickets cost without notifications. */
static char yaml_no_mail[] = NO_ADDRESS_YAML;

/* Bob has an address but works another queue than the tickets'. */
static char yaml_other_queue[] =
	"hosts:\n"
	"  web01: {role: central}\n"
	"people:\n"
	"  bob: {email: bob@shop.example, level: 1, queues: [network]}\n"
	"helpdesk:\n"
	"  queues: {support: {}, network: {}}\n"
	"notify:\n"
	"  smtp: {url: 'smtp://127.0.0.1:1'}\n";

/* An opening mail that shows neither the hint nor the history. */
static char yaml_terse[] =
	"hosts:\n"
	"  web01: {role: central}\n"
	"people:\n"
	"  alice: {email: alice@shop.example, level: 1, queues: [support]}\n"
	"notify:\n"
	"  smtp: {url: 'smtp://127.0.0.1:1'}\n"
	"  templates:\n"
	"    opened: {subject: 'new #{id}', body: '{title} on {host}'}\n";

struct fixture {
	char path[64];
	struct cfg *cfg;
	struct inventory *inv;
	struct helpdesk_config *hc;
	struct store *st;
	struct desk *d;
	int seq;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));
	int fd;

	strcpy(f->path, "/tmp/tocsin-test-desk-XXXXXX");
	fd = mkstemp(f->path);
	if (fd < 0)
		return -1;
	close(fd);
	unlink(f->path);
	if (cfg_load_string("t.yaml", *state ? (const char *)*state : yaml, &f->cfg) < 0)
		return -1;
	inventory_parse(f->cfg, f->cfg->root, &f->inv);
	helpdesk_config_parse(f->cfg, f->cfg->root, f->inv, &f->hc);
	if (cfg_finish(f->cfg) > 0) {
		cfg_print_errors(f->cfg);
		return -1;
	}
	if (store_open(f->path, &f->st) < 0 || desk_open(f->hc, f->inv, f->st, &f->d) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	desk_free(f->d);
	store_close(f->st);
	helpdesk_config_free(f->hc);
	inventory_free(f->inv);
	cfg_free(f->cfg);
	for (int i = 0; i < 3; i++) {
		static const char *const sfx[] = { "", "-wal", "-shm" };
		char *p = xasprintf("%s%s", f->path, sfx[i]);

		unlink(p);
		free(p);
	}
	free(f);
	return 0;
}

/* One event for host's disk item through dedup, in its own transaction. */
static void event_on(struct fixture *f, const char *host, const char *item,
		     enum check_state state, int64_t now)
{
	struct ingest_event ev = { .check = "disk", .item = item, .state = state,
				   .summary = "/srv is full", .observed_ms = now,
				   .metrics = "{}" };
	struct dedup_stats stats;

	ev.id[0] = (uint8_t)++f->seq;
	ev.id[15] = 0x42;
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(dedup_apply_events(f->st, host, &ev, 1, now, &stats), 0);
	assert_int_equal(store_commit(f->st), 0);
}

static void event(struct fixture *f, enum check_state state, int64_t now)
{
	event_on(f, "web01", "/srv", state, now);
}

/* A change announced in a transaction of its own; the listeners' result. */
static int announce(struct fixture *f, const struct ticket_change *c)
{
	int r;

	assert_int_equal(store_begin(f->st), 0);
	r = store_ticket_changed(f->st, c);
	assert_int_equal(store_commit(f->st), 0);
	return r;
}

static int64_t query(struct fixture *f, const char *sql)
{
	sqlite3_stmt *s;
	int64_t n = -1;

	assert_int_equal(sqlite3_prepare_v2(store_db(f->st), sql, -1, &s, NULL), SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	return n;
}

/* One escalation job at now in its own transaction; job.failed in *ret. */
static int run_due(struct fixture *f, int64_t now, size_t *ret_failed)
{
	struct escalate_due job = { .d = f->d, .now_ms = now };
	int r;

	assert_int_equal(store_begin(f->st), 0);
	r = escalate_run_due(f->st, &job);
	assert_int_equal(store_commit(f->st), 0);
	if (ret_failed)
		*ret_failed = job.failed;
	return r;
}

static int64_t count(struct fixture *f, const char *where)
{
	char *sql = xasprintf("SELECT count(*) FROM hd_outbox WHERE %s", where);
	sqlite3_stmt *s;
	int64_t n = -1;

	assert_int_equal(sqlite3_prepare_v2(store_db(f->st), sql, -1, &s, NULL), SQLITE_OK);
	if (sqlite3_step(s) == SQLITE_ROW)
		n = sqlite3_column_int64(s, 0);
	sqlite3_finalize(s);
	free(sql);
	return n;
}

static void test_open_routes_and_queues_in_one_transaction(void **state)
{
	struct fixture *f = *state;
	struct desk_row row;

	event(f, CHECK_CRITICAL, 1000000);
	assert_int_equal(desk_row_get(f->d, 1, &row), 1);
	assert_string_equal(row.customer, "acme");
	assert_string_equal(row.priority, "P1");
	assert_int_equal(row.response_target, 3600 * 1000);
	assert_int_equal(row.response_due, 1000000 + 3600 * 1000);
	/* The timer looks again at 75% of the response target. */
	assert_int_equal(row.next_check, 1000000 + 2700 * 1000);
	assert_int_equal(count(f, "channel = 'mail' AND target = 'alice@shop.example'"), 1);
	assert_int_equal(count(f, "channel = 'webhook'"), 1);

	/* A change that rolls back leaves nothing queued. */
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(store_savepoint(f->st), 0);
	{
		struct ingest_event ev = { .check = "disk", .item = "/var", .state = CHECK_CRITICAL,
					   .summary = "x", .observed_ms = 2000000, .metrics = "{}" };
		struct dedup_stats stats;

		ev.id[0] = 0x77;
		assert_int_equal(dedup_apply_events(f->st, "web01", &ev, 1, 2000000, &stats), 0);
	}
	store_rollback_to_savepoint(f->st);
	assert_int_equal(store_commit(f->st), 0);
	assert_int_equal(count(f, "1"), 2);
}

static void test_flapping_cancels_and_stays_quiet(void **state)
{
	struct fixture *f = *state;
	struct desk_core core;
	struct ticket_change c;

	event(f, CHECK_CRITICAL, 1000000);
	event(f, CHECK_OK, 1060000);
	assert_int_equal(count(f, "target = 'it@acme.example' AND state = 'pending'"), 1);
	/* The lifecycle says the problem flaps: the "solved" mail is cancelled. */
	assert_int_equal(desk_core_get(f->d, 1, &core), 1);
	desk_core_clear(&core);
	c = (struct ticket_change){ .kind = TICKET_UPDATED, .ticket_id = 1, .at_ms = 1070000,
				    .actor = "tocsin", .host = "web01", .check = "disk",
				    .item = "/srv", .state = CHECK_CRITICAL, .summary = "again",
				    .flapping = true };
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(store_ticket_changed(f->st, &c), 0);
	assert_int_equal(store_commit(f->st), 0);
	assert_int_equal(count(f, "target = 'it@acme.example' AND state = 'cancelled'"), 1);
	/* ...and nothing new went to anyone for it. */
	assert_int_equal(count(f, "1"), 3); /* opened: mail + webhook, solved: mail */
}

/*
 * A child's automatic news (here a recovery announced with parent_id) is
 * quiet: the parent speaks for it.  A technician's visible comment on a
 * child is no automatic news and reaches the customer.
 */
static void test_children_quiet_only_for_automatic_news(void **state)
{
	struct fixture *f = *state;
	struct ticket_change c;

	event(f, CHECK_CRITICAL, 1000000);
	c = (struct ticket_change){ .kind = TICKET_RECOVERED, .ticket_id = 1, .at_ms = 1100000,
				    .actor = "tocsin", .host = "web01", .check = "disk",
				    .item = "/srv", .state = CHECK_OK, .summary = "ok again",
				    .parent_id = 9 };
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(store_ticket_changed(f->st, &c), 0);
	assert_int_equal(store_commit(f->st), 0);
	assert_int_equal(count(f, "target = 'it@acme.example'"), 0);
	assert_int_equal(count(f, "1"), 2);
	c = (struct ticket_change){ .kind = TICKET_ACTION, .ticket_id = 1, .at_ms = 1100000,
				    .actor = "alice", .host = "web01", .check = "disk",
				    .item = "/srv", .state = CHECK_CRITICAL, .summary = "hello",
				    .field = "comment", .new_value = "customer", .parent_id = 9 };
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(store_ticket_changed(f->st, &c), 0);
	assert_int_equal(store_commit(f->st), 0);
	assert_int_equal(count(f, "target = 'it@acme.example' AND kind = 'comment'"), 1);
}

static void test_timer_warns_then_marks_overdue(void **state)
{
	struct fixture *f = *state;
	struct escalate_due job = { .d = f->d };
	struct desk_row row;

	event(f, CHECK_CRITICAL, 1000000);
	/* Nothing is due yet. */
	job.now_ms = 1000000 + 2000 * 1000;
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(escalate_run_due(f->st, &job), 0);
	assert_int_equal(store_commit(f->st), 0);
	/* At 75%: a warning; the next look is at the due date. */
	job.now_ms = 1000000 + 2800 * 1000;
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(escalate_run_due(f->st, &job), 1);
	assert_int_equal(store_commit(f->st), 0);
	assert_int_equal(desk_row_get(f->d, 1, &row), 1);
	assert_int_equal(row.warned, DESK_CLOCK_RESPONSE);
	assert_int_equal(row.overdue, 0);
	assert_int_equal(row.next_check, 1000000 + 3600 * 1000);
	assert_int_equal(count(f, "subject LIKE '%reminder%'"), 1);
	/* At the due date: overdue, and the resolution warning is next. */
	job.now_ms = 1000000 + 3600 * 1000;
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(escalate_run_due(f->st, &job), 1);
	assert_int_equal(store_commit(f->st), 0);
	assert_int_equal(desk_row_get(f->d, 1, &row), 1);
	assert_int_equal(row.overdue, DESK_CLOCK_RESPONSE);
	assert_int_equal(row.next_check, 1000000 + 3 * 3600 * 1000);
	/* Nobody is at level 2 and the queue has no lead: the queue hears. */
	assert_int_equal(count(f, "subject LIKE '%OVERDUE%' AND target = 'alice@shop.example'"), 1);
	assert_int_equal(count(f, "channel = 'webhook'"), 3);	  /* opened, warning, overdue */
}

/*
 * A change whose webhook cannot be built (text that is not UTF-8, which
 * JSON cannot carry) still commits: the webhook is a failed row saying
 * why, counted, and the mail of the same change is queued as usual.
 */
static void test_unbuildable_webhook_does_not_fail_the_change(void **state)
{
	struct fixture *f = *state;
	struct ticket_change c;

	event(f, CHECK_CRITICAL, 1000000);
	c = (struct ticket_change){ .kind = TICKET_ACTION, .ticket_id = 1, .at_ms = 1100000,
				    .actor = "alice", .host = "web01", .check = "disk",
				    .item = "/srv", .state = CHECK_CRITICAL,
				    .summary = "cut in the middle: \xc3", .field = "comment",
				    .new_value = "customer" };
	assert_int_equal(announce(f, &c), 0);
	assert_int_equal(count(f, "channel = 'webhook' AND state = 'failed' AND"
				  " last_error LIKE 'the payload could not be encoded as JSON%'"),
			 1);
	assert_int_equal(count(f, "target = 'it@acme.example' AND kind = 'comment'"), 1);
	assert_int_equal(f->d->counters.unrendered, 1);
}

/*
 * The pending count the triggers keep is exact in every transaction,
 * rollbacks included; a full outbox drops its least important row (the
 * oldest of those) for one at least as important, and refuses one less
 * important than everything waiting, each kept as failed with the reason.
 */
static void test_full_outbox_drops_the_least_important(void **state)
{
	struct fixture *f = *state;
	struct desk_outbox_item it = { .ticket_id = 1, .channel = "mail", .target = "a@x.example",
				       .subject = "s", .body = "b", .kind = "warning",
				       .importance = DESK_IMPORTANCE_NORMAL };
	int64_t pending;
	char key[64];

	assert_int_equal(store_begin(f->st), 0);
	for (int i = 0; i < 100; i++) {
		snprintf(key, sizeof(key), "k%d", i);
		it.idem_key = key;
		assert_int_equal(desk_outbox_add(f->d, &it), 1);
	}
	assert_int_equal(store_commit(f->st), 0);
	/* A rolled back row leaves the count as it was. */
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(store_savepoint(f->st), 0);
	it.idem_key = "rolled-back";
	it.importance = DESK_IMPORTANCE_URGENT;
	assert_int_equal(desk_outbox_add(f->d, &it), 1);
	store_rollback_to_savepoint(f->st);
	assert_int_equal(desk_outbox_pending(f->d, &pending), 0);
	assert_int_equal(pending, 100);
	/* Full: an urgent row takes the place of the oldest normal one... */
	it.idem_key = "urgent";
	assert_int_equal(desk_outbox_add(f->d, &it), 1);
	/* ...a low one matters less than all that waits: not queued... */
	it.idem_key = "late-low";
	it.importance = DESK_IMPORTANCE_LOW;
	assert_int_equal(desk_outbox_add(f->d, &it), 0);
	/* ...and a normal one replaces the oldest normal one: fresher news. */
	it.idem_key = "late-normal";
	it.importance = DESK_IMPORTANCE_NORMAL;
	assert_int_equal(desk_outbox_add(f->d, &it), 1);
	assert_int_equal(store_commit(f->st), 0);
	assert_int_equal(query(f, "SELECT n FROM hd_outbox_pending"), 100);
	assert_int_equal(count(f, "state = 'pending'"), 100);
	assert_int_equal(count(f, "idem_key IN ('k0', 'k1') AND state = 'failed'"
				  " AND last_error LIKE 'dropped: %'"), 2);
	assert_int_equal(count(f, "idem_key IN ('urgent', 'late-normal') AND state = 'pending'"), 2);
	assert_int_equal(count(f, "idem_key = 'late-low' AND state = 'failed'"), 1);
	/* Counters count as it happens: the rolled back drop too. */
	assert_int_equal(f->d->counters.dropped, 4);
}

/* A listener that fails every change of ticket 1 the timer announces. */
static int fail_ticket_one(void *arg, struct store *st, const struct ticket_change *c)
{
	(void)arg;
	(void)st;
	return c->ticket_id == 1 && c->kind == TICKET_ACTION ? -EIO : 0;
}

/*
 * One ticket whose escalation fails is undone alone and looked at again
 * later, each failure doubling the delay; the other ticket due in the
 * same job is warned as if nothing happened.
 */
static void test_one_failing_ticket_does_not_stop_escalation(void **state)
{
	struct fixture *f = *state;
	size_t failed;
	struct desk_row row;
	int64_t now = 1000000 + 2800 * 1000;

	event_on(f, "web01", "/srv", CHECK_CRITICAL, 1000000);
	event_on(f, "web01", "/var", CHECK_CRITICAL, 1000000);
	assert_int_equal(store_listen(f->st, fail_ticket_one, NULL), 0);
	assert_int_equal(run_due(f, now, &failed), 2);
	assert_int_equal(failed, 1);
	assert_int_equal(desk_row_get(f->d, 2, &row), 1);
	assert_int_equal(row.warned, DESK_CLOCK_RESPONSE);
	assert_int_equal(desk_row_get(f->d, 1, &row), 1);
	assert_int_equal(row.warned, 0);
	assert_int_equal(row.next_check, now + 1000);
	assert_int_equal(query(f, "SELECT count(*) FROM journal WHERE ticket_id = 1"
				  " AND action = 'sla_warning'"), 0);
	/* Not due before then; after it, it fails again and waits twice as long. */
	assert_int_equal(run_due(f, now + 999, NULL), 0);
	assert_int_equal(run_due(f, now + 1000, &failed), 1);
	assert_int_equal(failed, 1);
	assert_int_equal(desk_row_get(f->d, 1, &row), 1);
	assert_int_equal(row.next_check, now + 1000 + 2000);
}

/*
 * A status update is journaled only when someone hears it: the customer
 * without contacts gets no journal line (nothing was sent), and the next
 * one is set past now at once, however long the server was away.
 */
static void test_status_update_journaled_only_when_sent(void **state)
{
	struct fixture *f = *state;
	struct desk_row row;
	int64_t opened = 1000000, hour = 3600 * 1000, now = opened + 10 * hour + 5;

	event_on(f, "web01", "/srv", CHECK_CRITICAL, opened);
	event_on(f, "lone01", "/srv", CHECK_CRITICAL, opened);
	/* routing only plans updates for customers with contacts; plan one anyway. */
	assert_int_equal(sqlite3_exec(store_db(f->st),
				      "UPDATE hd_tickets SET next_status_at = 1000000 + 3600000",
				      NULL, NULL, NULL), SQLITE_OK);
	assert_true(run_due(f, now, NULL) >= 2);
	assert_int_equal(query(f, "SELECT count(*) FROM journal WHERE action = 'status_update'"
				  " AND ticket_id = 1"), 1);
	assert_int_equal(query(f, "SELECT count(*) FROM journal WHERE action = 'status_update'"
				  " AND ticket_id = 2"), 0);
	assert_int_equal(count(f, "kind = 'status' AND target = 'it@acme.example'"), 1);
	assert_int_equal(desk_row_get(f->d, 2, &row), 1);
	assert_int_equal(row.next_status_at, opened + 11 * hour);
}

/*
 * The configuration after acme moved from fast to gold-2027 (office
 * hours, other targets), fast gone; solo has no contract.  default names
 * helpdesk.default_contract or is "".
 */
struct moved {
	struct cfg *cfg;
	struct inventory *inv;
	struct helpdesk_config *hc;
};

static void moved_load(struct moved *m, const char *default_contract)
{
	char *text = xasprintf(
		"customers:\n"
		"  acme: {contract: gold-2027, contacts: [it@acme.example]}\n"
		"  solo: {}\n"
		"hosts:\n"
		"  web01: {customer: acme, role: central}\n"
		"contracts:\n"
		"  gold-2027:\n"
		"    calendar: {timezone: UTC, hours: {mon-fri: 09:00-17:00}}\n"
		"    targets: {P1: {response: 8h, resolution: 2bd}}\n"
		"  other:\n"
		"    calendar: {timezone: UTC, hours: {daily: 00:00-24:00}}\n"
		"people:\n"
		"  alice: {email: alice@shop.example, level: 1, queues: [support]}\n"
		"helpdesk:\n"
		"  status_updates: 0s\n"
		"%s%s%s"
		"notify:\n"
		"  smtp: {url: 'smtp://127.0.0.1:1'}\n",
		default_contract[0] ? "  default_contract: " : "", default_contract,
		default_contract[0] ? "\n" : "");

	assert_int_equal(cfg_load_string("moved.yaml", text, &m->cfg), 0);
	inventory_parse(m->cfg, m->cfg->root, &m->inv);
	helpdesk_config_parse(m->cfg, m->cfg->root, m->inv, &m->hc);
	if (cfg_finish(m->cfg) > 0)
		cfg_print_errors(m->cfg);
	assert_int_equal(m->cfg->nerrors, 0);
	free(text);
}

static void moved_free(struct moved *m)
{
	helpdesk_config_free(m->hc);
	inventory_free(m->inv);
	cfg_free(m->cfg);
}

/*
 * The clocks of a ticket whose contract is gone: its customer's contract
 * now, else the default contract, else round the clock; a contract still
 * configured is the ticket's own.
 */
static void test_clock_calendar_when_the_contract_is_gone(void **state)
{
	struct fixture *f = *state;
	const struct contract *gold, *other;
	struct helpdesk_clock c;
	struct moved m, d;

	(void)f;
	moved_load(&m, "");
	gold = helpdesk_contract(m.hc, "gold-2027");
	other = helpdesk_contract(m.hc, "other");
	assert_non_null(gold);
	helpdesk_clock_for(m.hc, m.inv, "other", "acme", &c);
	assert_ptr_equal(c.contract, other);
	assert_null(c.instead);
	assert_ptr_equal(c.calendar, other->calendar);
	helpdesk_clock_for(m.hc, m.inv, "fast", "acme", &c);
	assert_null(c.contract);
	assert_ptr_equal(c.instead, gold);
	assert_ptr_equal(c.calendar, gold->calendar);
	helpdesk_clock_for(m.hc, m.inv, "fast", "solo", &c);
	assert_null(c.instead);
	assert_ptr_equal(c.calendar, calendar_always());
	helpdesk_clock_for(m.hc, m.inv, "fast", "", &c);
	assert_ptr_equal(c.calendar, calendar_always());
	helpdesk_clock_for(m.hc, m.inv, "fast", "gone-customer", &c);
	assert_ptr_equal(c.calendar, calendar_always());
	/* The 24x7 calendar counts every millisecond, weekends included. */
	assert_int_equal(calendar_business_ms(calendar_always(), 0, 7 * 86400000LL),
			 7 * 86400000LL);
	assert_int_equal(calendar_add_ms(calendar_always(), 1000, 3600000), 3601000);

	moved_load(&d, "other");
	helpdesk_clock_for(d.hc, d.inv, "fast", "solo", &c);
	assert_ptr_equal(c.instead, helpdesk_contract(d.hc, "other"));
	helpdesk_clock_for(d.hc, d.inv, "fast", NULL, &c);
	assert_ptr_equal(c.instead, helpdesk_contract(d.hc, "other"));
	helpdesk_clock_for(d.hc, d.inv, "fast", "acme", &c);
	assert_ptr_equal(c.instead, helpdesk_contract(d.hc, "gold-2027"));
	moved_free(&d);
	moved_free(&m);
}

/* One warning per contract gone, its groups' calendars counted when several. */
static void test_warnings_of_contracts_gone(void **state)
{
	struct desk_orphan v[] = {
		{ .contract = "fast", .instead = "gold-2027", .n = 2 },
		{ .contract = "old", .instead = "", .n = 1 },
		{ .contract = "fast", .instead = "", .n = 1 },
	};
	struct desk_orphans o = { .v = v, .n = 3, .cap = 3, .tickets = 4 };
	size_t pos = 0;
	char *w;

	(void)state;
	w = desk_orphans_next_warning(&o, &pos);
	assert_string_equal(w, "contract \"fast\" is no longer configured: 3 open tickets keep their targets and use the calendar of contract \"gold-2027\" (2), a 24x7 calendar (1)");
	free(w);
	w = desk_orphans_next_warning(&o, &pos);
	assert_string_equal(w, "contract \"old\" is no longer configured: 1 open ticket keeps its targets and uses a 24x7 calendar");
	free(w);
	assert_null(desk_orphans_next_warning(&o, &pos));
	assert_null(desk_orphans_next_warning(&o, &pos));
	pos = 0;
	assert_null(desk_orphans_next_warning(&(struct desk_orphans){ 0 }, &pos));
}

/*
 * A ticket opened under fast (1h response, round the clock) at 00:16:40
 * on Thursday 1 January 1970; acme then moves to gold-2027 (office hours
 * 09:00-17:00 UTC) and fast goes.  The recomputation counts the ticket
 * under fast, keeps its hour, runs it on gold-2027's hours (due at 10:00,
 * not 01:16:40) and the timer still breaches it.
 */
static void test_timer_breaches_a_ticket_whose_contract_is_gone(void **state)
{
	struct fixture *f = *state;
	struct desk_orphans orphans = { 0 };
	struct desk_row row;
	struct moved m;
	size_t n = 0;

	event(f, CHECK_CRITICAL, 1000000);
	moved_load(&m, "");
	desk_reconfigure(f->d, m.hc, m.inv);
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(desk_recompute_all(f->d, 1000000 + 1000, true, &n, &orphans), 0);
	assert_int_equal(store_commit(f->st), 0);
	assert_int_equal(n, 1);
	assert_int_equal(orphans.n, 1);
	assert_int_equal(orphans.tickets, 1);
	assert_string_equal(orphans.v[0].contract, "fast");
	assert_string_equal(orphans.v[0].instead, "gold-2027");
	assert_int_equal(orphans.v[0].n, 1);
	assert_int_equal(f->d->counters.orphaned, 1);
	desk_orphans_clear(&orphans);
	assert_int_equal(desk_row_get(f->d, 1, &row), 1);
	assert_string_equal(row.contract, "fast");
	assert_int_equal(row.response_target, 3600 * 1000);
	assert_int_equal(row.response_due, 10 * 3600 * 1000);
	/* Round the clock it would be overdue by 08:20; on office hours not. */
	run_due(f, 30000000, NULL);
	assert_int_equal(desk_row_get(f->d, 1, &row), 1);
	assert_int_equal(row.overdue, 0);
	run_due(f, 10 * 3600 * 1000, NULL);
	assert_int_equal(desk_row_get(f->d, 1, &row), 1);
	assert_int_equal(row.overdue & DESK_CLOCK_RESPONSE, DESK_CLOCK_RESPONSE);
	assert_int_equal(query(f, "SELECT count(*) FROM journal WHERE action = 'overdue'"
				  " AND new_value = 'response'"),
			 1);
	desk_reconfigure(f->d, f->hc, f->inv);
	moved_free(&m);
}

/* How often statement i of the desk has run (sqlite3_reset() counts one). */
static int runs(struct fixture *f, enum desk_stmt i)
{
	return sqlite3_stmt_status(f->d->stmt[i], SQLITE_STMTSTATUS_RUN, 0);
}

/* The reads the desk's listeners make of a ticket (both listeners). */
static int ticket_reads(struct fixture *f)
{
	return runs(f, DESK_CORE_GET) + runs(f, DESK_ROW_GET) + runs(f, DESK_TEXTS) +
	       runs(f, DESK_HISTORY) + runs(f, DESK_LAST_RESOLUTION);
}

/* Opened, recovered, resolved by the system, reopened: one of each. */
static void open_solve_reopen(struct fixture *f)
{
	struct ticket_change c;

	event(f, CHECK_CRITICAL, 1000000);
	event(f, CHECK_OK, 1060000);
	c = (struct ticket_change){ .kind = TICKET_REOPENED, .ticket_id = 1, .at_ms = 1200000,
				    .actor = "tocsin", .host = "web01", .check = "disk",
				    .item = "/srv", .state = CHECK_CRITICAL, .summary = "again" };
	assert_int_equal(announce(f, &c), 0);
}

/*
 * With mail configured but nobody to send it to, the notifications cost
 * what they cost without mail: no ticket read, nothing rendered, nothing
 * queued.
 */
static void test_nobody_to_mail_reads_and_renders_nothing(void **state)
{
	struct fixture *f = *state;
	void *off = yaml_no_mail;
	int reads_without_mail;

	open_solve_reopen(f);
	assert_int_equal(count(f, "1"), 0);
	assert_int_equal(f->d->counters.rendered, 0);
	assert_int_equal(runs(f, DESK_TEXTS) + runs(f, DESK_HISTORY), 0);
	assert_int_equal(runs(f, DESK_LAST_RESOLUTION), 0);

	assert_int_equal(setup(&off), 0);
	open_solve_reopen(off);
	reads_without_mail = ticket_reads(off);
	assert_int_equal(((struct fixture *)off)->d->counters.rendered, 0);
	teardown(&off);
	assert_int_equal(ticket_reads(f), reads_without_mail);
}

/*
 * A reopening nobody would hear of (the only technician works another
 * queue) reads nothing to decide whether it is news, renders nothing.
 */
static void test_reopen_without_recipient_reads_nothing(void **state)
{
	struct fixture *f = *state;

	open_solve_reopen(f);
	assert_int_equal(count(f, "1"), 0);
	assert_int_equal(runs(f, DESK_LAST_RESOLUTION), 0);
	assert_int_equal(runs(f, DESK_TEXTS) + runs(f, DESK_HISTORY), 0);
	assert_int_equal(f->d->counters.rendered, 0);
}

/* A template reads what it shows: the hint and history only when used. */
static void test_texts_read_only_when_the_template_shows_them(void **state)
{
	struct fixture *f = *state;

	event(f, CHECK_CRITICAL, 1000000);
	assert_int_equal(count(f, "kind = 'opened' AND subject = 'new #1'"
				  " AND body LIKE 'disk /srv% on web01'"), 1);
	assert_int_equal(f->d->counters.rendered, 1);
	assert_int_equal(runs(f, DESK_TEXTS), 0);
	assert_int_equal(runs(f, DESK_HISTORY), 0);
}

/* The default opening mail shows both: each read once, then rendered. */
static void test_default_opening_mail_reads_hint_and_history(void **state)
{
	struct fixture *f = *state;

	event(f, CHECK_CRITICAL, 1000000);
	assert_int_equal(count(f, "kind = 'opened' AND body LIKE '%Knowledge:%'"
				  " AND body LIKE '%Earlier tickets for this host and check:%(none)%'"),
			 1);
	assert_int_equal(runs(f, DESK_TEXTS), 1);
	assert_int_equal(runs(f, DESK_HISTORY), 1);
	/* The mail and the webhook's payload. */
	assert_int_equal(f->d->counters.rendered, 2);
}

/* An opening writes its planned helpdesk row once: no update after it. */
static void test_opening_writes_its_row_once(void **state)
{
	struct fixture *f = *state;
	struct desk_row row;

	event(f, CHECK_CRITICAL, 1000000);
	assert_int_equal(runs(f, DESK_ROW_INSERT), 1);
	assert_int_equal(runs(f, DESK_ROW_UPDATE), 0);
	assert_int_equal(desk_row_get(f->d, 1, &row), 1);
	assert_int_equal(row.response_due, 1000000 + 3600 * 1000);
	assert_int_equal(row.resolution_due, 1000000 + 4 * 3600 * 1000);
	assert_int_equal(row.next_check, 1000000 + 2700 * 1000);
}

/* Ticket 1's due caches and next_check as desk_refresh() would write them. */
static void assert_row_as_planned(struct fixture *f, int64_t now)
{
	struct desk_core core;
	struct desk_row row, planned;

	assert_int_equal(desk_row_get(f->d, 1, &row), 1);
	assert_int_equal(desk_core_get(f->d, 1, &core), 1);
	planned = row;
	assert_int_equal(desk_plan(f->d, &core, &planned, now), 0);
	desk_core_clear(&core);
	assert_int_equal(row.response_due, planned.response_due);
	assert_int_equal(row.resolution_due, planned.resolution_due);
	assert_int_equal(row.next_check, planned.next_check);
}

/*
 * A change other than an opening or a check state replans the row and
 * writes it only when the plan moved: a technician's comment moves
 * nothing (its action wrote the row already, action.c), a resolution
 * moves next_check to the automatic close.
 */
static void test_replanned_row_written_only_when_it_moved(void **state)
{
	struct fixture *f = *state;
	struct ticket_change c;

	event(f, CHECK_CRITICAL, 1000000);
	c = (struct ticket_change){ .kind = TICKET_ACTION, .ticket_id = 1, .at_ms = 1100000,
				    .actor = "alice", .field = "comment", .new_value = "internal",
				    .summary = "looking into it" };
	assert_int_equal(announce(f, &c), 0);
	assert_int_equal(runs(f, DESK_ROW_UPDATE), 0);
	assert_row_as_planned(f, 1100000);

	event(f, CHECK_OK, 1160000);
	assert_int_equal(query(f, "SELECT count(*) FROM tickets"
			       " WHERE status IN ('recovered', 'resolved')"), 1);
	assert_int_equal(runs(f, DESK_ROW_UPDATE), 1);
	assert_row_as_planned(f, 1160000);
}

/*
 * An opening inserts its row without reading for it first; an opening
 * announced for a ticket that has its row (a detached child) leaves the
 * row as it is.
 */
static void test_opening_reads_no_row_and_keeps_one_there(void **state)
{
	struct fixture *f = *state;
	struct ticket_change c;
	struct desk_row row;

	event(f, CHECK_CRITICAL, 1000000);
	assert_int_equal(runs(f, DESK_ROW_GET), 0);
	assert_int_equal(runs(f, DESK_ROW_INSERT), 1);
	query(f, "UPDATE hd_tickets SET level = 2, next_check = 5 WHERE ticket_id = 1");
	c = (struct ticket_change){ .kind = TICKET_OPENED, .ticket_id = 1, .at_ms = 1100000,
				    .actor = "tocsin", .field = "parent", .state = CHECK_CRITICAL };
	assert_int_equal(announce(f, &c), 0);
	assert_int_equal(desk_row_get(f->d, 1, &row), 1);
	assert_int_equal(row.level, 2);
	assert_int_equal(row.next_check, 5);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_open_routes_and_queues_in_one_transaction,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_flapping_cancels_and_stays_quiet, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_children_quiet_only_for_automatic_news, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_timer_warns_then_marks_overdue, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_unbuildable_webhook_does_not_fail_the_change,
						setup, teardown),
		cmocka_unit_test_prestate_setup_teardown(test_full_outbox_drops_the_least_important,
							 setup, teardown, (void *)yaml_small),
		cmocka_unit_test_setup_teardown(test_one_failing_ticket_does_not_stop_escalation,
						setup, teardown),
		cmocka_unit_test_prestate_setup_teardown(test_status_update_journaled_only_when_sent,
							 setup, teardown, (void *)yaml_small),
		cmocka_unit_test_setup_teardown(test_clock_calendar_when_the_contract_is_gone,
						setup, teardown),
		cmocka_unit_test(test_warnings_of_contracts_gone),
		cmocka_unit_test_setup_teardown(test_timer_breaches_a_ticket_whose_contract_is_gone,
						setup, teardown),
		cmocka_unit_test_prestate_setup_teardown(
			test_nobody_to_mail_reads_and_renders_nothing, setup, teardown,
			(void *)yaml_nobody),
		cmocka_unit_test_prestate_setup_teardown(
			test_reopen_without_recipient_reads_nothing, setup, teardown,
			(void *)yaml_other_queue),
		cmocka_unit_test_prestate_setup_teardown(
			test_texts_read_only_when_the_template_shows_them, setup, teardown,
			(void *)yaml_terse),
		cmocka_unit_test_setup_teardown(test_default_opening_mail_reads_hint_and_history,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_opening_writes_its_row_once, setup, teardown),
		cmocka_unit_test_prestate_setup_teardown(
			test_replanned_row_written_only_when_it_moved, setup, teardown,
			(void *)yaml_terse),
		cmocka_unit_test_prestate_setup_teardown(
			test_opening_reads_no_row_and_keeps_one_there, setup, teardown,
			(void *)yaml_no_mail),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
