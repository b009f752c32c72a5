/* Deduplication into one ticket per problem key, on a real SQLite file. */
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

#include "../../common/util.h"
#include "../../server/dedup.h"
#include "../../server/store.h"
#include "tmpdb.h"

struct fixture {
	char path[64];
	struct store *st;
	int seq;
};

static int setup(void **state)
{
	struct fixture *f = xcalloc(1, sizeof(*f));

	if (tmpdb_make(f->path, sizeof(f->path), "dedup") < 0)
		return -1;
	if (store_open(f->path, &f->st) < 0)
		return -1;
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	struct fixture *f = *state;

	store_close(f->st);
	tmpdb_remove(f->path);
	free(f);
	return 0;
}

/* Build an event with a fresh (or given) id for host/check/item. */
static char *event_json(struct fixture *f, const char *id, const char *item,
			const char *state, int minute)
{
	char uuid[UUID_STR_LEN];

	if (id == NULL) {
		snprintf(uuid, sizeof(uuid), "00000000-0000-4000-8000-%012d", ++f->seq);
		id = uuid;
	}
	return xasprintf("{\"id\":\"%s\",\"check\":\"disk\",\"item\":\"%s\","
			 "\"state\":\"%s\",\"summary\":\"%s is %s\","
			 "\"observed_at\":\"2026-11-22T10:%02d:00Z\"}",
			 id, item, state, item, state, minute);
}

static struct dedup_stats apply(struct fixture *f, const char *host, char *e1, char *e2)
{
	char *body = xasprintf("{\"host\":\"%s\",\"events\":[%s%s%s]}", host, e1,
			       e2 ? "," : "", e2 ? e2 : "");
	struct ingest_batch *b;
	struct dedup_stats stats = { 0 };
	char err[256];

	assert_int_equal(ingest_parse(body, strlen(body), 100, &b, err, sizeof(err)), 0);
	assert_int_equal(store_begin(f->st), 0);
	/* received at 11:00, after every event here was observed */
	assert_int_equal(dedup_apply(f->st, b, 1795345200000LL, &stats), 0);
	assert_int_equal(store_commit(f->st), 0);
	ingest_batch_free(b);
	free(body);
	free(e1);
	free(e2);
	return stats;
}

static json_t *tickets(struct fixture *f, enum store_ticket_filter filter)
{
	json_t *list;

	assert_int_equal(store_tickets_list(f->st, filter, 100, 0, &list), 0);
	return list;
}

static void test_repeats_become_occurrences_of_one_ticket(void **state)
{
	struct fixture *f = *state;
	struct dedup_stats s;
	json_t *list, *t;

	s = apply(f, "web01", event_json(f, NULL, "/srv", "warning", 1), NULL);
	assert_int_equal(s.opened, 1);
	s = apply(f, "web01", event_json(f, NULL, "/srv", "critical", 2),
		  event_json(f, NULL, "/srv", "warning", 3));
	assert_int_equal(s.opened, 0);
	assert_int_equal(s.updated, 2);

	list = tickets(f, STORE_TICKETS_OPEN);
	assert_int_equal(json_array_size(list), 1);
	t = json_array_get(list, 0);
	assert_int_equal(json_integer_value(json_object_get(t, "occurrence_count")), 3);
	assert_string_equal(json_string_value(json_object_get(t, "state")), "warning");
	assert_string_equal(json_string_value(json_object_get(t, "worst_state")), "critical");
	assert_string_equal(json_string_value(json_object_get(t, "first_seen")), "2026-11-22T10:01:00.000Z");
	assert_string_equal(json_string_value(json_object_get(t, "last_seen")), "2026-11-22T10:03:00.000Z");
	assert_string_equal(json_string_value(json_object_get(t, "summary")), "/srv is warning");
	json_decref(list);
}

static void test_keys_are_host_check_item(void **state)
{
	struct fixture *f = *state;
	json_t *list;

	apply(f, "web01", event_json(f, NULL, "/srv", "warning", 1),
	      event_json(f, NULL, "/var", "warning", 1));
	apply(f, "web02", event_json(f, NULL, "/srv", "warning", 1), NULL);
	list = tickets(f, STORE_TICKETS_OPEN);
	assert_int_equal(json_array_size(list), 3);
	json_decref(list);
}

static void test_ok_resolves_with_journal(void **state)
{
	struct fixture *f = *state;
	struct dedup_stats s;
	json_t *list, *t, *journal;
	int64_t id;

	apply(f, "web01", event_json(f, NULL, "/srv", "critical", 1), NULL);
	/* ok without an open ticket for the key changes nothing */
	s = apply(f, "web01", event_json(f, NULL, "/var", "ok", 2), NULL);
	assert_int_equal(s.resolved, 0);
	assert_int_equal(s.opened, 0);
	s = apply(f, "web01", event_json(f, NULL, "/srv", "ok", 5), NULL);
	assert_int_equal(s.resolved, 1);

	list = tickets(f, STORE_TICKETS_OPEN);
	assert_int_equal(json_array_size(list), 0);
	json_decref(list);
	list = tickets(f, STORE_TICKETS_RESOLVED);
	assert_int_equal(json_array_size(list), 1);
	id = json_integer_value(json_object_get(json_array_get(list, 0), "id"));
	json_decref(list);

	assert_int_equal(store_ticket_get(f->st, id, 10, &t), 0);
	journal = json_object_get(t, "journal");
	assert_int_equal(json_array_size(journal), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(journal, 0), "action")), "opened");
	assert_string_equal(json_string_value(json_object_get(json_array_get(journal, 1), "action")), "resolved");
	assert_string_equal(json_string_value(json_object_get(json_array_get(journal, 1), "text")), "/srv is ok");
	assert_int_equal(json_array_size(json_object_get(t, "occurrences")), 2);
	json_decref(t);

	/*
	 * the problem coming back within reopen_within (1h by default)
	 * reopens the same ticket, with a journal line
	 */
	s = apply(f, "web01", event_json(f, NULL, "/srv", "warning", 9), NULL);
	assert_int_equal(s.opened, 0);
	assert_int_equal(s.reopened, 1);
	assert_int_equal(store_ticket_get(f->st, id, 10, &t), 0);
	assert_string_equal(json_string_value(json_object_get(t, "status")), "new");
	journal = json_object_get(t, "journal");
	assert_int_equal(json_array_size(journal), 3);
	assert_string_equal(json_string_value(json_object_get(json_array_get(journal, 2), "action")), "reopened");
	json_decref(t);
	assert_int_equal(store_ticket_get(f->st, id + 1, 10, &t), -ENOENT);
}

static void test_stale_ok_does_not_resolve(void **state)
{
	struct fixture *f = *state;
	struct dedup_stats s;

	apply(f, "web01", event_json(f, NULL, "/srv", "critical", 10), NULL);
	/* an ok observed before the last problem report arrives late */
	s = apply(f, "web01", event_json(f, NULL, "/srv", "ok", 5), NULL);
	assert_int_equal(s.resolved, 0);
	json_t *list = tickets(f, STORE_TICKETS_OPEN);
	assert_int_equal(json_array_size(list), 1);
	json_decref(list);
}

static void test_resent_event_ids_are_ignored(void **state)
{
	struct fixture *f = *state;
	const char *id = "11111111-2222-4333-8444-555555555555";
	struct dedup_stats s;
	json_t *list;

	s = apply(f, "web01", event_json(f, id, "/srv", "critical", 1), NULL);
	assert_int_equal(s.accepted, 1);
	s = apply(f, "web01", event_json(f, id, "/srv", "critical", 1), NULL);
	assert_int_equal(s.accepted, 0);
	assert_int_equal(s.duplicates, 1);
	list = tickets(f, STORE_TICKETS_ALL);
	assert_int_equal(json_array_size(list), 1);
	assert_int_equal(json_integer_value(json_object_get(json_array_get(list, 0), "occurrence_count")), 1);
	json_decref(list);
}

static void test_store_reopens_with_schema(void **state)
{
	struct fixture *f = *state;
	json_t *list;

	apply(f, "web01", event_json(f, NULL, "/srv", "critical", 1), NULL);
	store_close(f->st);
	assert_int_equal(store_open(f->path, &f->st), 0);
	list = tickets(f, STORE_TICKETS_OPEN);
	assert_int_equal(json_array_size(list), 1);
	json_decref(list);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_repeats_become_occurrences_of_one_ticket, setup, teardown),
		cmocka_unit_test_setup_teardown(test_keys_are_host_check_item, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ok_resolves_with_journal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stale_ok_does_not_resolve, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resent_event_ids_are_ignored, setup, teardown),
		cmocka_unit_test_setup_teardown(test_store_reopens_with_schema, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
