/*
 * Silences on a real SQLite file: request validation, matching, no new
 * ticket while silenced, the ticket once the silence ends (or is
 * removed) with the problem still there, recovery during a silence, and
 * expiry.
 */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <cmocka.h>

#include "lifecycle_fixture.h"

#define W(c) CHECK_##c

static const struct silence_config conf = {
	.max_duration_ms = 30 * 86400000LL,
	.keep_expired_ms = 86400000LL,
	.max_silences = 3,
};

/* Parse a request body; the error text when it is refused, else NULL. */
static const char *request(const char *body, struct silence *ret)
{
	static char err[512];
	json_t *doc = json_loads(body, 0, NULL);
	struct silence s = { 0 };
	int r;

	assert_non_null(doc);
	r = silence_parse_request(doc, MIN(0), &conf, &s, err, sizeof(err));
	json_decref(doc);
	if (ret)
		*ret = s;
	else
		silence_clear(&s);
	return r < 0 ? err : NULL;
}

static void test_requests_are_validated_with_clear_errors(void **state)
{
	struct silence s;

	(void)state;
	assert_null(request("{\"host\": \"web*\", \"check\": \"disk\", \"duration\": \"2h\","
			    " \"comment\": \"kernel update\"}", &s));
	assert_string_equal(s.host, "web*");
	assert_string_equal(s.check, "disk");
	assert_null(s.item);
	assert_int_equal(s.starts_ms, MIN(0));
	assert_int_equal(s.ends_ms, MIN(120));
	silence_clear(&s);
	assert_null(request("{\"host\": \"db01\", \"start\": \"2026-11-22T11:00:00Z\","
			    " \"end\": \"2026-11-22T13:00:00+01:00\", \"comment\": \"x\"}", &s));
	assert_int_equal(s.starts_ms, MIN(60));
	assert_int_equal(s.ends_ms, MIN(120));
	silence_clear(&s);

	static const struct {
		const char *body, *error;
	} refused[] = {
		{ "{\"host\": \"a\", \"duration\": \"5x\", \"comment\": \"c\"}",
		  "duration: '5x' is not a duration such as 30m, 2h or 7d" },
		{ "{\"host\": \"a\", \"start\": \"2026-11-22T12:00:00Z\","
		  " \"end\": \"2026-11-22T11:00:00Z\", \"comment\": \"c\"}",
		  "end 2026-11-22T11:00:00.000Z is not after start 2026-11-22T12:00:00.000Z" },
		{ "{\"host\": \"a\", \"end\": \"2026-11-22T09:00:00Z\", \"comment\": \"c\"}",
		  "end 2026-11-22T09:00:00.000Z is not after start 2026-11-22T10:00:00.000Z" },
		{ "{\"host\": \"a\", \"start\": \"2026-11-21T08:00:00Z\","
		  " \"end\": \"2026-11-22T09:00:00Z\", \"comment\": \"c\"}",
		  "end 2026-11-22T09:00:00.000Z is in the past: the silence would never apply" },
		{ "{\"host\": \"a\", \"duration\": \"31d\", \"comment\": \"c\"}",
		  "from 2026-11-22T10:00:00.000Z to 2026-12-23T10:00:00.000Z is longer than the longest silence allowed (30 d, silences.max_duration)" },
		{ "{\"host\": \"a\", \"duration\": \"1h\", \"end\": \"2026-11-22T12:00:00Z\", \"comment\": \"c\"}",
		  "give end or duration, not both" },
		{ "{\"host\": \"a\", \"comment\": \"c\"}",
		  "end or duration: required (for example \"duration\": \"2h\")" },
		{ "{\"duration\": \"1h\", \"comment\": \"c\"}",
		  "host: required (a host name or a shell pattern such as web*)" },
		{ "{\"host\": \"a\", \"duration\": \"1h\"}",
		  "comment: required (say why: a change number, the maintenance planned, ...)" },
		{ "{\"host\": 7, \"duration\": \"1h\", \"comment\": \"c\"}",
		  "host: expected a string" },
		{ "{\"host\": \"a\", \"duration\": \"1h\", \"comment\": \"c\", \"author\": \"mallory\"}",
		  "unknown key 'author' (expected host, check, item, start, end or duration, comment)" },
		{ "{\"host\": \"a\", \"start\": \"tomorrow\", \"duration\": \"1h\", \"comment\": \"c\"}",
		  "start: 'tomorrow' is not an RFC 3339 time such as 2026-11-22T10:00:00Z" },
		{ "{\"host\": \"a\", \"duration\": \"1h\", \"comment\": \"\"}",
		  "comment: must not be empty" },
		{ "[]", "expected a JSON object with host, end or duration, and comment" },
	};

	for (size_t i = 0; i < ARRAY_SIZE(refused); i++) {
		const char *err = request(refused[i].body, NULL);

		assert_non_null(err);
		assert_string_equal(err, refused[i].error);
	}
}

static void test_matching_by_patterns(void **state)
{
	const struct silence_scope any_check = { .host = "web*" };
	const struct silence_scope disk = { .host = "web0?", .check = "disk", .item = "/srv*" };

	(void)state;
	assert_true(silence_matches(&any_check, "web01", "heartbeat", "alive"));
	assert_false(silence_matches(&any_check, "db01", "disk", "/"));
	assert_true(silence_matches(&disk, "web01", "disk", "/srv/data"));
	assert_false(silence_matches(&disk, "web01", "disk", "/var"));
	assert_false(silence_matches(&disk, "web10", "disk", "/srv"));
	assert_false(silence_matches(&disk, "web01", "backup", "/srv"));
}

/* Create a silence as the API's writer job does. */
static int64_t add_silence(struct fx *f, const char *host, const char *check,
			   int64_t starts, int64_t ends, int64_t now)
{
	struct silence s = { .host = xstrdup(host), .check = check ? xstrdup(check) : NULL,
			     .starts_ms = starts, .ends_ms = ends,
			     .author = xstrdup("alice"), .comment = xstrdup("maintenance") };
	int64_t id;

	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(silence_create(dedup_get(f->st)->silences, &s, now, &conf, &id), 0);
	assert_int_equal(store_commit(f->st), 0);
	silence_clear(&s);
	return id;
}

/* One "host silent" event, as silence detection raises it, committed. */
static struct dedup_stats raise_silent(struct fx *f, const char *host, int64_t now)
{
	struct ingest_event ev = { .check = "heartbeat", .item = "alive",
				   .summary = "silent", .state = CHECK_CRITICAL,
				   .observed_ms = now, .metrics = "{}" };
	struct dedup_stats stats;

	f->seq++;
	memcpy(ev.id, &f->seq, sizeof(f->seq));
	ev.id[15] = 0xa5;
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(dedup_apply_raised(f->st, host, &ev, 1, now, &stats), 0);
	assert_int_equal(store_commit(f->st), 0);
	return stats;
}

/*
 * The collector raises "host silent" once per silence: confirm_after: 3
 * cannot count it, so it opens at once, or when a silence holding it
 * back ends; with a confirm_for the timer still makes it wait.
 */
static void test_raised_once_is_not_held_back_by_confirm_after(void **state)
{
	struct fx *f = fx_open("lifecycle:\n"
			       "  defaults: {confirm_after: 3}\n"
			       "  rules:\n"
			       "    - match: {host: slow*}\n"
			       "      confirm_for: 5m\n");
	struct dedup_stats s;

	(void)state;
	s = raise_silent(f, "web01", MIN(0));
	assert_int_equal(s.opened, 1);
	/* the same from an agent still needs three results */
	s = fx_at(f, "web02", "heartbeat", "alive", CHECK_CRITICAL, MIN(0));
	assert_int_equal(s.opened, 0);

	add_silence(f, "db01", NULL, MIN(0), MIN(30), MIN(0));
	s = raise_silent(f, "db01", MIN(1));
	assert_int_equal(s.suppressed, 1);
	fx_tick(f, MIN(31));
	assert_true(fx_ticket_id(f, "db01", "heartbeat", "alive") > 0);

	s = raise_silent(f, "slow01", MIN(0));
	assert_int_equal(s.opened, 0);
	fx_tick(f, MIN(4));
	assert_int_equal(fx_ticket_id(f, "slow01", "heartbeat", "alive"), 0);
	fx_tick(f, MIN(5));
	assert_true(fx_ticket_id(f, "slow01", "heartbeat", "alive") > 0);
	fx_close(f);
}

static void test_silenced_problem_opens_when_the_silence_ends(void **state)
{
	struct fx *f = fx_open("");
	struct dedup_stats s;
	int64_t id;

	(void)state;
	add_silence(f, "web*", NULL, MIN(0), MIN(60), MIN(0));
	s = fx_at(f, "web01", "heartbeat", "alive", W(CRITICAL), MIN(5));
	assert_int_equal(s.accepted, 1); /* stored all the same */
	assert_int_equal(s.suppressed, 1);
	assert_int_equal(s.opened, 0);
	s = fx_at(f, "web01", "heartbeat", "alive", W(CRITICAL), MIN(10));
	assert_int_equal(s.suppressed, 1);
	assert_int_equal(fx_count(f, STORE_TICKETS_ALL, true), 0);
	assert_int_equal(fx_counter(f, DEDUP_SUPPRESSED), 2);
	/* a host the silence does not cover opens its ticket */
	s = fx_at(f, "db01", "heartbeat", "alive", W(CRITICAL), MIN(10));
	assert_int_equal(s.opened, 1);

	/* still down when the silence ends: not forgotten */
	assert_int_equal(fx_tick(f, MIN(59)), 0);
	fx_restart(f);
	assert_int_equal(fx_tick(f, MIN(60)), 1);
	id = fx_ticket_id(f, "web01", "heartbeat", "alive");
	assert_true(id > 0);
	assert_int_equal(fx_journal_count(f, id, "silence"), 1);
	json_t *t = fx_ticket(f, id);
	/* the occurrences held back are part of the ticket */
	assert_int_equal(fx_int(t, "occurrence_count"), 2);
	assert_int_equal(json_array_size(json_object_get(t, "occurrences")), 2);
	assert_string_equal(fx_str(t, "first_seen"), "2026-11-22T10:05:00.000Z");
	json_decref(t);
	fx_close(f);
}

static void test_recovery_during_a_silence_still_resolves(void **state)
{
	struct fx *f = fx_open("");
	int64_t before;

	(void)state;
	fx_at(f, "web01", "disk", "/", W(CRITICAL), MIN(0));
	before = fx_ticket_id(f, "web01", "disk", "/");
	add_silence(f, "web01", NULL, MIN(1), MIN(60), MIN(1));
	/* the open ticket goes on receiving occurrences */
	fx_at(f, "web01", "disk", "/", W(CRITICAL), MIN(2));
	/* and the recovery resolves it, silence or not */
	fx_at(f, "web01", "disk", "/", W(OK), MIN(3));
	assert_string_equal(fx_status(f, before), "resolved");
	assert_int_equal(fx_changes(f, TICKET_RESOLVED, before), 1);

	/* a silenced problem that went away is no ticket at the end */
	fx_at(f, "web01", "swap", "total", W(WARNING), MIN(4));
	fx_at(f, "web01", "swap", "total", W(OK), MIN(5));
	fx_tick(f, MIN(61));
	assert_int_equal(fx_ticket_id(f, "web01", "swap", "total"), 0);
	fx_close(f);
}

static void test_removed_silence_releases_at_once(void **state)
{
	struct fx *f = fx_open("");
	int64_t sid;

	(void)state;
	sid = add_silence(f, "web01", "disk", MIN(0), MIN(600), MIN(0));
	fx_at(f, "web01", "disk", "/", W(CRITICAL), MIN(1));
	assert_int_equal(fx_count(f, STORE_TICKETS_ALL, true), 0);
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(silence_remove(dedup_get(f->st)->silences, sid, "bob", MIN(2)), 0);
	assert_int_equal(dedup_silence_removed(f->st, sid, MIN(2)), 0);
	/* removing twice, or what does not exist, says so */
	assert_int_equal(silence_remove(dedup_get(f->st)->silences, sid, "bob", MIN(3)), -EALREADY);
	assert_int_equal(silence_remove(dedup_get(f->st)->silences, 999, "bob", MIN(3)), -ENOENT);
	assert_int_equal(store_commit(f->st), 0);
	assert_int_equal(fx_tick(f, MIN(2)), 1);
	assert_true(fx_ticket_id(f, "web01", "disk", "/") > 0);
	fx_close(f);
}

static void test_states_expiry_and_limits(void **state)
{
	struct fx *f = fx_open("silences: {keep_expired: 1d}\n");
	struct silences *s;
	json_t *list;
	int64_t active, pending, id;

	(void)state;
	add_silence(f, "a", NULL, MIN(0), MIN(60), MIN(0));	     /* active */
	add_silence(f, "b", NULL, MIN(120), MIN(180), MIN(0));	     /* pending */
	add_silence(f, "c", NULL, MIN(0), MIN(30), MIN(0));	     /* expires */
	s = dedup_get(f->st)->silences;
	/* the limit counts active and pending ones */
	struct silence extra = { .host = (char *)"d", .starts_ms = MIN(0), .ends_ms = MIN(10),
				 .author = (char *)"alice", .comment = (char *)"x" };
	assert_int_equal(store_begin(f->st), 0);
	assert_int_equal(silence_create(s, &extra, MIN(0), &conf, &id), -EDQUOT);
	assert_int_equal(store_commit(f->st), 0);

	assert_int_equal(silence_counts(s, MIN(45), &active, &pending), 0);
	assert_int_equal(active, 1);
	assert_int_equal(pending, 1);
	assert_int_equal(silence_list_json(s, SILENCES_EXPIRED, MIN(45), conf.keep_expired_ms, 100, &list), 0);
	assert_int_equal(json_array_size(list), 1);
	assert_string_equal(fx_str(json_array_get(list, 0), "host"), "c");
	assert_string_equal(fx_str(json_array_get(list, 0), "state"), "expired");
	json_decref(list);
	assert_int_equal(silence_list_json(s, SILENCES_ALL, MIN(45), conf.keep_expired_ms, 100, &list), 0);
	assert_int_equal(json_array_size(list), 3);
	json_decref(list);
	/* expired ones stay listed for keep_expired (1 day here), then go */
	fx_tick(f, MIN(30) + 86400000LL - 60000);
	assert_int_equal(silence_list_json(s, SILENCES_EXPIRED, MIN(45), conf.keep_expired_ms, 100, &list), 0);
	assert_int_equal(json_array_size(list), 1);
	json_decref(list);
	fx_tick(f, MIN(31) + 86400000LL);
	assert_int_equal(silence_list_json(s, SILENCES_ALL, MIN(45), 1000LL * 86400000LL, 100, &list), 0);
	assert_int_equal(json_array_size(list), 2);
	json_decref(list);
	fx_close(f);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_requests_are_validated_with_clear_errors),
		cmocka_unit_test(test_matching_by_patterns),
		cmocka_unit_test(test_silenced_problem_opens_when_the_silence_ends),
		cmocka_unit_test(test_raised_once_is_not_held_back_by_confirm_after),
		cmocka_unit_test(test_recovery_during_a_silence_still_resolves),
		cmocka_unit_test(test_removed_silence_releases_at_once),
		cmocka_unit_test(test_states_expiry_and_limits),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
