#include "store.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/db.h"
#include "../common/util.h"
#include "dedup_metrics.h"
#include "desk.h"
#include "hostclaim.h"
#include "account.h"
#include "audit.h"
#include "credentials.h"
#include "ingest.h"
#include "trapreview.h"
#include "liveness.h"
#include "problem.h"
#include "retention.h"
#include "session.h"
#include "silence.h"
#include "ticket_cache.h"
#include "topology.h"

/*
 * The core schema: hosts, tickets, events, journal.  Steps run in order;
 * the schema_versions table records how many have run per module.  Never
 * edit a released step: append a new one.
 */
static const char *const core_steps[] = {
	/* 1: hosts, tickets, events, journal */
	"CREATE TABLE hosts ("
	"  id INTEGER PRIMARY KEY,"
	"  name TEXT NOT NULL UNIQUE,"
	"  first_seen INTEGER NOT NULL,"
	"  last_seen INTEGER NOT NULL);"
	"CREATE TABLE tickets ("
	"  id INTEGER PRIMARY KEY,"
	"  host_id INTEGER NOT NULL REFERENCES hosts(id),"
	"  check_name TEXT NOT NULL,"
	"  item TEXT NOT NULL,"
	/*
	 * new -> acknowledged -> in_progress -> waiting -> resolved -> closed;
	 * recovered: the problem went away, a technician should review it.
	 * A ticket is open until it is resolved or closed.
	 */
	"  status TEXT NOT NULL CHECK (status IN ('new', 'acknowledged',"
	"    'in_progress', 'waiting', 'recovered', 'resolved', 'closed')),"
	"  title TEXT NOT NULL,"
	"  state TEXT NOT NULL,"
	"  worst_state TEXT NOT NULL,"
	"  summary TEXT NOT NULL,"
	"  occurrences INTEGER NOT NULL,"
	"  first_seen INTEGER NOT NULL,"
	"  last_seen INTEGER NOT NULL,"
	"  opened_at INTEGER NOT NULL,"
	"  resolved_at INTEGER,"
	"  parent_id INTEGER REFERENCES tickets(id),"
	"  flapping INTEGER NOT NULL DEFAULT 0);"
	/* The deduplication invariant: one open ticket per problem key. */
	"CREATE UNIQUE INDEX tickets_open_key ON tickets(host_id, check_name, item)"
	"  WHERE status NOT IN ('resolved', 'closed');"
	"CREATE INDEX tickets_status ON tickets(status, id);"
	/*
	 * Rows are appended in arrival order; the random event ids live in
	 * their own narrow index.  (A WITHOUT ROWID table keyed by id put
	 * every fat row on a random page: five times the pages written per
	 * commit.)
	 */
	"CREATE TABLE events ("
	"  seq INTEGER PRIMARY KEY,"
	"  id BLOB NOT NULL UNIQUE,"
	"  host_id INTEGER NOT NULL,"
	"  check_name TEXT NOT NULL,"
	"  item TEXT NOT NULL,"
	"  state TEXT NOT NULL,"
	"  summary TEXT NOT NULL,"
	"  metrics TEXT NOT NULL,"
	"  context TEXT,"
	"  observed_at INTEGER NOT NULL,"
	"  received_at INTEGER NOT NULL,"
	"  ticket_id INTEGER);"
	"CREATE INDEX events_ticket ON events(ticket_id, observed_at)"
	"  WHERE ticket_id IS NOT NULL;"
	"CREATE TABLE journal ("
	"  id INTEGER PRIMARY KEY,"
	"  ticket_id INTEGER NOT NULL REFERENCES tickets(id),"
	"  at INTEGER NOT NULL,"
	"  actor TEXT NOT NULL,"
	"  action TEXT NOT NULL,"
	"  old_value TEXT,"
	"  new_value TEXT,"
	"  text TEXT);"
	"CREATE INDEX journal_ticket ON journal(ticket_id, id);",
};

static const struct db_schema core_schema = {
	.module = "core",
	.steps = core_steps,
	.nsteps = ARRAY_SIZE(core_steps),
};

/*
 * Every module's schema, in the order they are migrated: a module may
 * alter the tables of the modules before it.  One line per module.
 */
static const struct db_schema *const schemas[] = {
	&core_schema,
	&trapreview_schema,
	&desk_schema,
	&problem_schema,
	&silence_schema,
	&topology_schema,
	&dedup_metrics_schema,
	&audit_schema,
	&credentials_schema,
	&liveness_schema,
	&hostclaim_schema,
	&account_schema,
	&session_schema, /* after accounts: its purge joins them */
	&ticket_retention_schema,
	NULL,
};

enum stmt {
	STMT_BEGIN,
	STMT_COMMIT,
	STMT_ROLLBACK,
	STMT_SAVEPOINT,
	STMT_RELEASE,
	STMT_ROLLBACK_TO,
	STMT_HOST_UPSERT,
	STMT_EVENT_INSERT,
	STMT_EVENT_LINK,
	STMT_TICKET_FIND_OPEN,
	STMT_TICKET_OPEN,
	STMT_TICKET_OCCURRENCE,
	STMT_TICKET_RESOLVE,
	STMT_JOURNAL_ADD,
	STMT_TICKETS_OPEN,
	STMT_TICKETS_RESOLVED,
	STMT_TICKETS_ALL,
	STMT_TICKET_GET,
	STMT_TICKET_OCCURRENCES,
	STMT_TICKET_JOURNAL,
	STMT_TICKET_LOOKUP,
	STMT_TICKET_RECOVER,
	STMT_TICKET_REOPEN,
	STMT_TICKET_SET_PARENT,
	STMT_TICKET_SET_FLAPPING,
	STMT_TICKET_SET_HISTORY,
	STMT_COUNT,
};

#define TICKET_COLUMNS                                                     \
	"t.id, h.name, t.check_name, t.item, t.status, t.title, t.state, " \
	"t.worst_state, t.summary, t.occurrences, t.first_seen, "          \
	"t.last_seen, t.opened_at, t.resolved_at, t.parent_id, t.flapping, " \
	"(SELECT count(*) FROM tickets c WHERE c.parent_id = t.id)"

static const char *const stmt_sql[STMT_COUNT] = {
	[STMT_BEGIN] = "BEGIN IMMEDIATE",
	[STMT_COMMIT] = "COMMIT",
	[STMT_ROLLBACK] = "ROLLBACK",
	[STMT_SAVEPOINT] = "SAVEPOINT job",
	[STMT_RELEASE] = "RELEASE job",
	[STMT_ROLLBACK_TO] = "ROLLBACK TO job",
	[STMT_HOST_UPSERT] =
		"INSERT INTO hosts(name, first_seen, last_seen) VALUES (?1, ?2, ?2)"
		" ON CONFLICT(name) DO UPDATE SET last_seen = max(last_seen, ?2)"
		" RETURNING id",
	[STMT_EVENT_INSERT] =
		"INSERT INTO events(id, host_id, check_name, item, state, summary,"
		" metrics, context, observed_at, received_at, ticket_id)"
		" VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, nullif(?11, 0))"
		" ON CONFLICT(id) DO NOTHING",
	[STMT_EVENT_LINK] =
		"UPDATE events SET ticket_id = nullif(?2, 0) WHERE id = ?1",
	[STMT_TICKET_FIND_OPEN] =
		"SELECT " STORE_TICKET_COLUMNS
		" FROM tickets WHERE host_id = ?1 AND check_name = ?2"
		" AND item = ?3 AND status NOT IN ('resolved', 'closed')",
	[STMT_TICKET_OPEN] =
		"INSERT INTO tickets(host_id, check_name, item, status, title,"
		" state, worst_state, summary, occurrences, first_seen,"
		" last_seen, opened_at)"
		" VALUES (?1, ?2, ?3, 'new', ?4, ?5, ?5, ?6, 1, ?7, ?7, ?8)",
	[STMT_TICKET_OCCURRENCE] =
		"UPDATE tickets SET occurrences = occurrences + 1,"
		" state = CASE WHEN ?4 >= last_seen THEN ?2 ELSE state END,"
		" summary = CASE WHEN ?4 >= last_seen THEN ?5 ELSE summary END,"
		" worst_state = ?3,"
		" first_seen = min(first_seen, ?4),"
		" last_seen = max(last_seen, ?4)"
		" WHERE id = ?1",
	[STMT_TICKET_RESOLVE] =
		"UPDATE tickets SET status = 'resolved', state = 'ok',"
		" resolved_at = ?2 WHERE id = ?1",
	[STMT_JOURNAL_ADD] =
		"INSERT INTO journal(ticket_id, at, actor, action, old_value,"
		" new_value, text) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
	[STMT_TICKETS_OPEN] = "SELECT " TICKET_COLUMNS
			      " FROM tickets t JOIN hosts h ON h.id = t.host_id"
			      " WHERE t.status NOT IN ('resolved', 'closed')"
			      " AND (?3 OR t.parent_id IS NULL)"
			      " ORDER BY t.id DESC LIMIT ?1 OFFSET ?2",
	[STMT_TICKETS_RESOLVED] =
		"SELECT " TICKET_COLUMNS
		" FROM tickets t JOIN hosts h ON h.id = t.host_id"
		" WHERE t.status IN ('resolved', 'closed')"
		" AND (?3 OR t.parent_id IS NULL)"
		" ORDER BY t.id DESC LIMIT ?1 OFFSET ?2",
	[STMT_TICKETS_ALL] = "SELECT " TICKET_COLUMNS
			     " FROM tickets t JOIN hosts h ON h.id = t.host_id"
			     " WHERE (?3 OR t.parent_id IS NULL)"
			     " ORDER BY t.id DESC LIMIT ?1 OFFSET ?2",
	[STMT_TICKET_GET] = "SELECT " TICKET_COLUMNS
			    " FROM tickets t JOIN hosts h ON h.id = t.host_id"
			    " WHERE t.id = ?1",
	[STMT_TICKET_OCCURRENCES] =
		"SELECT id, state, summary, metrics, context, observed_at,"
		" received_at FROM events WHERE ticket_id = ?1"
		" ORDER BY observed_at DESC LIMIT ?2",
	[STMT_TICKET_JOURNAL] =
		"SELECT at, actor, action, old_value, new_value, text"
		" FROM journal WHERE ticket_id = ?1 ORDER BY id",
	[STMT_TICKET_LOOKUP] = "SELECT " STORE_TICKET_COLUMNS
			       " FROM tickets WHERE id = ?1",
	[STMT_TICKET_RECOVER] =
		"UPDATE tickets SET status = 'recovered', state = 'ok' WHERE id = ?1",
	[STMT_TICKET_REOPEN] =
		"UPDATE tickets SET status = ?2, resolved_at = NULL WHERE id = ?1",
	[STMT_TICKET_SET_PARENT] =
		"UPDATE tickets SET parent_id = nullif(?2, 0) WHERE id = ?1",
	[STMT_TICKET_SET_FLAPPING] =
		"UPDATE tickets SET flapping = ?2 WHERE id = ?1",
	[STMT_TICKET_SET_HISTORY] =
		"UPDATE tickets SET occurrences = ?2,"
		" first_seen = min(first_seen, ?3) WHERE id = ?1",
};

#define LISTENERS_MAX 16
#define TXN_HOOKS_MAX 8

/*
 * Events are inserted many rows per statement: a statement's fixed cost
 * (binding, starting, halting, its journal) is half of a one-row INSERT.
 * A batch is cut into chunks of these sizes, largest first.
 */
static const size_t insert_chunks[] = { 64, 16, 4, 1 };
#define INSERT_CHUNKS ARRAY_SIZE(insert_chunks)

struct store {
	sqlite3 *db;
	sqlite3_stmt *stmt[STMT_COUNT];
	pthread_mutex_t lock;
	struct ticket_cache *tickets; /* every open ticket, in memory */
	sqlite3_stmt *insert[INSERT_CHUNKS]; /* INSERT of insert_chunks[i] events */
	sqlite3_stmt *max_seq, *seq_of;
	struct {
		store_txn_hook fn;
		void *arg;
	} txn_hooks[TXN_HOOKS_MAX];
	size_t ntxn_hooks;
	bool reader;		/* store_open_reader(): query_only, a read
				 * transaction per store_lock() */
	char journal_mode[16];	/* as SQLite reports them after store_open() */
	char synchronous[16];
	sqlite3_stmt *read_begin, *read_end;
	struct {
		const char *module;
		void *ctx;
		void (*free_fn)(void *ctx);
	} attached[STORE_ATTACH_MAX];
	size_t nattached;
	struct {
		ticket_listener fn;
		void *arg;
	} listeners[LISTENERS_MAX];
	size_t nlisteners;
};

int store_listen(struct store *st, ticket_listener fn, void *arg)
{
	if (st->nlisteners == LISTENERS_MAX)
		return -ENOSPC;
	st->listeners[st->nlisteners].fn = fn;
	st->listeners[st->nlisteners].arg = arg;
	st->nlisteners++;
	return 0;
}

int store_txn_hook_add(struct store *st, store_txn_hook fn, void *arg)
{
	if (st->ntxn_hooks == TXN_HOOKS_MAX)
		return -ENOSPC;
	st->txn_hooks[st->ntxn_hooks].fn = fn;
	st->txn_hooks[st->ntxn_hooks].arg = arg;
	st->ntxn_hooks++;
	return 0;
}

void store_txn_hook_remove(struct store *st, store_txn_hook fn, void *arg)
{
	for (size_t i = 0; i < st->ntxn_hooks; i++) {
		if (st->txn_hooks[i].fn != fn || st->txn_hooks[i].arg != arg)
			continue;
		memmove(&st->txn_hooks[i], &st->txn_hooks[i + 1],
			(st->ntxn_hooks - i - 1) * sizeof(st->txn_hooks[0]));
		st->ntxn_hooks--;
		return;
	}
}

static void txn_event(struct store *st, enum store_txn_event event)
{
	for (size_t i = 0; i < st->ntxn_hooks; i++)
		st->txn_hooks[i].fn(st->txn_hooks[i].arg, event);
}

/*
 * SQLite's update hook: every row a statement on this connection
 * inserts, updates or deletes.  It may not run statements itself; the
 * ticket cache only notes the ticket for later.
 */
static void on_row_change(void *arg, int op, const char *dbname,
			  const char *table, sqlite3_int64 rowid)
{
	struct store *st = arg;

	(void)op;
	(void)dbname;
	if (st->tickets != NULL && strcmp(table, "tickets") == 0)
		ticket_cache_row_changed(st->tickets, rowid);
}

int store_ticket_changed(struct store *st, const struct ticket_change *c)
{
	for (size_t i = 0; i < st->nlisteners; i++) {
		int r = st->listeners[i].fn(st->listeners[i].arg, st, c);

		if (r < 0)
			return r;
	}
	return 0;
}

const char *ticket_change_name(enum ticket_change_kind kind)
{
	static const char *const names[] = {
		[TICKET_OPENED] = "opened",
		[TICKET_UPDATED] = "updated",
		[TICKET_RECOVERED] = "recovered",
		[TICKET_RESOLVED] = "resolved",
		[TICKET_REOPENED] = "reopened",
		[TICKET_CLOSED] = "closed",
		[TICKET_ACTION] = "action",
	};

	if ((unsigned)kind >= ARRAY_SIZE(names) || names[kind] == NULL)
		return "unknown";
	return names[kind];
}

int store_attach(struct store *st, const char *module, void *ctx,
		 void (*free_fn)(void *ctx))
{
	for (size_t i = 0; i < st->nattached; i++) {
		if (strcmp(st->attached[i].module, module) == 0) {
			if (st->attached[i].free_fn)
				st->attached[i].free_fn(st->attached[i].ctx);
			st->attached[i].ctx = ctx;
			st->attached[i].free_fn = free_fn;
			return 0;
		}
	}
	if (st->nattached == STORE_ATTACH_MAX) {
		if (free_fn)
			free_fn(ctx);
		return -ENOSPC;
	}
	st->attached[st->nattached].module = module;
	st->attached[st->nattached].ctx = ctx;
	st->attached[st->nattached].free_fn = free_fn;
	st->nattached++;
	return 0;
}

void *store_attached(struct store *st, const char *module)
{
	for (size_t i = 0; i < st->nattached; i++)
		if (strcmp(st->attached[i].module, module) == 0)
			return st->attached[i].ctx;
	return NULL;
}

sqlite3 *store_db(struct store *st)
{
	return st->db;
}

const char *store_errmsg(struct store *st)
{
	return sqlite3_errmsg(st->db);
}

void store_lock(struct store *st)
{
	pthread_mutex_lock(&st->lock);
	/* One snapshot for everything read under the lock. */
	if (st->reader)
		db_step_done(st->read_begin);
}

void store_unlock(struct store *st)
{
	/* Ends the snapshot, so that checkpoints are not held back. */
	if (st->reader && !sqlite3_get_autocommit(st->db))
		db_step_done(st->read_end);
	pthread_mutex_unlock(&st->lock);
}

/* Bring every module's schema up to date, one transaction per step. */
static int migrate(sqlite3 *db)
{
	for (size_t i = 0; schemas[i]; i++) {
		int r = db_migrate(db, schemas[i]);
		if (r < 0)
			return r;
	}
	return 0;
}

/* A PRAGMA's value as text, into buf of size. */
static int pragma_text(sqlite3 *db, const char *sql, char *buf, size_t size)
{
	sqlite3_stmt *s;
	int rc = sqlite3_prepare_v2(db, sql, -1, &s, NULL);

	if (rc != SQLITE_OK)
		return sqlite_to_errno(rc);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		strlcpy_safe(buf, (const char *)sqlite3_column_text(s, 0)
				      ? (const char *)sqlite3_column_text(s, 0)
				      : "",
			     size);
	sqlite3_finalize(s);
	return rc == SQLITE_ROW ? 0 : sqlite_to_errno(rc);
}

/*
 * What the connection really does, read back: a PRAGMA that cannot apply
 * (WAL on a file system without shared memory) does not fail, it is just
 * not in effect.  synchronous is a setting of this connection alone, so
 * only the server itself can report it.
 */
static int read_durability(struct store *st)
{
	static const char *const levels[] = { "off", "normal", "full", "extra" };
	char level[16];
	int64_t n;
	int r;

	r = pragma_text(st->db, "PRAGMA journal_mode", st->journal_mode,
			sizeof(st->journal_mode));
	if (r == 0)
		r = pragma_text(st->db, "PRAGMA synchronous", level, sizeof(level));
	if (r < 0)
		return r;
	if (parse_int64(level, &n) == 0 && n >= 0 && n < 4)
		strlcpy_safe(st->synchronous, levels[n], sizeof(st->synchronous));
	else
		strlcpy_safe(st->synchronous, level, sizeof(st->synchronous));
	return 0;
}

void store_durability(const struct store *st, const char **ret_journal_mode,
		      const char **ret_synchronous)
{
	*ret_journal_mode = st->journal_mode;
	*ret_synchronous = st->synchronous;
}

int store_prepare(struct store *st, const char *sql, sqlite3_stmt **ret)
{
	return db_prepare(st->db, sql, ret);
}

/* The multi-row INSERTs of insert_chunks[], and the statements around them. */
static int prepare_event_inserts(struct store *st)
{
	int r = 0;

	for (size_t i = 0; r == 0 && i < INSERT_CHUNKS; i++) {
		size_t size = 256 + insert_chunks[i] * 96, len;
		char *sql = xcalloc(1, size);

		len = (size_t)snprintf(sql, size, "%s",
				       "INSERT INTO events(id, host_id, check_name,"
				       " item, state, summary, metrics, context,"
				       " observed_at, received_at, ticket_id) VALUES ");
		for (size_t row = 0; row < insert_chunks[i]; row++) {
			size_t p = row * 11;

			len += (size_t)snprintf(sql + len, size - len,
				"%s(?%zu, ?%zu, ?%zu, ?%zu, ?%zu, ?%zu, ?%zu, ?%zu,"
				" ?%zu, ?%zu, nullif(?%zu, 0))",
				row ? ", " : "", p + 1, p + 2, p + 3, p + 4, p + 5,
				p + 6, p + 7, p + 8, p + 9, p + 10, p + 11);
		}
		strlcat_safe(sql, " ON CONFLICT(id) DO NOTHING", size);
		r = store_prepare(st, sql, &st->insert[i]);
		free(sql);
	}
	if (r == 0)
		r = store_prepare(st, "SELECT coalesce(max(seq), 0) FROM events",
				  &st->max_seq);
	if (r == 0)
		r = store_prepare(st, "SELECT seq FROM events WHERE id = ?1",
				  &st->seq_of);
	return r;
}

int store_open(const char *path, struct store **ret_store)
{
	struct store *st = xcalloc(1, sizeof(*st));
	int rc, r;

	pthread_mutex_init(&st->lock, NULL);
	/*
	 * SQLite's memory statistics take a global mutex on every malloc;
	 * nothing reads them.  Only possible before SQLite initialises, so
	 * the first store_open() of the process decides (later calls fail
	 * harmlessly with SQLITE_MISUSE).
	 */
	sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0);
	rc = sqlite3_open_v2(path, &st->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
				     SQLITE_OPEN_NOMUTEX,
			     NULL);
	if (rc != SQLITE_OK) {
		r = sqlite_to_errno(rc);
		goto fail;
	}
	sqlite3_busy_timeout(st->db, 5000);
	/*
	 * WAL lets readers run beside the writer; synchronous=FULL makes a
	 * commit durable before the collector acknowledges it to an agent.
	 */
	rc = sqlite3_exec(st->db,
			  "PRAGMA journal_mode = WAL;"
			  "PRAGMA synchronous = FULL;"
			  "PRAGMA foreign_keys = ON;"
			  /*
			   * Event ids are random, so every insert lands on a
			   * random page of their index: a page cache that
			   * holds the index saves a read from the kernel per
			   * event.  64 MiB, allocated as it fills.
			   */
			  "PRAGMA cache_size = -65536;"
			  /* Savepoint journals of big group commits stay in memory. */
			  "PRAGMA temp_store = MEMORY;",
			  NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		r = sqlite_to_errno(rc);
		goto fail;
	}
	r = read_durability(st);
	if (r == 0)
		r = migrate(st->db);
	if (r < 0)
		goto fail;
	for (int i = 0; i < STMT_COUNT; i++) {
		r = store_prepare(st, stmt_sql[i], &st->stmt[i]);
		if (r < 0)
			goto fail;
	}
	r = prepare_event_inserts(st);
	if (r == 0)
		r = ticket_cache_open(st, &st->tickets);
	if (r < 0)
		goto fail;
	sqlite3_update_hook(st->db, on_row_change, st);
	*ret_store = st;
	return 0;
fail:
	store_close(st);
	return r;
}

int store_open_reader(const char *path, struct store **ret_store)
{
	struct store *st = xcalloc(1, sizeof(*st));
	int rc, r;

	pthread_mutex_init(&st->lock, NULL);
	st->reader = true;
	/*
	 * Read-write but query_only: a read-only connection to a WAL
	 * database fails in odd ways when the -shm file must be created;
	 * query_only refuses every write all the same.
	 */
	rc = sqlite3_open_v2(path, &st->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc != SQLITE_OK) {
		r = sqlite_to_errno(rc);
		goto fail;
	}
	sqlite3_busy_timeout(st->db, 5000);
	rc = sqlite3_exec(st->db,
			  "PRAGMA query_only = ON;"
			  "PRAGMA foreign_keys = ON;"
			  "PRAGMA cache_size = -16384;"
			  "PRAGMA temp_store = MEMORY;",
			  NULL, NULL, NULL);
	if (rc != SQLITE_OK) {
		r = sqlite_to_errno(rc);
		goto fail;
	}
	r = store_prepare(st, "BEGIN", &st->read_begin);
	if (r == 0)
		r = store_prepare(st, "COMMIT", &st->read_end);
	for (int i = 0; r == 0 && i < STMT_COUNT; i++)
		r = store_prepare(st, stmt_sql[i], &st->stmt[i]);
	if (r < 0)
		goto fail;
	*ret_store = st;
	return 0;
fail:
	store_close(st);
	return r;
}

bool store_is_reader(const struct store *st)
{
	return st->reader;
}

void store_close(struct store *st)
{
	if (st == NULL)
		return;
	/* Modules finalize their statements before the database closes. */
	while (st->nattached > 0) {
		st->nattached--;
		if (st->attached[st->nattached].free_fn)
			st->attached[st->nattached].free_fn(
				st->attached[st->nattached].ctx);
	}
	sqlite3_update_hook(st->db, NULL, NULL);
	ticket_cache_close(st->tickets);
	for (size_t i = 0; i < INSERT_CHUNKS; i++)
		sqlite3_finalize(st->insert[i]);
	sqlite3_finalize(st->max_seq);
	sqlite3_finalize(st->seq_of);
	for (int i = 0; i < STMT_COUNT; i++)
		sqlite3_finalize(st->stmt[i]);
	sqlite3_finalize(st->read_begin);
	sqlite3_finalize(st->read_end);
	sqlite3_close(st->db);
	pthread_mutex_destroy(&st->lock);
	free(st);
}

int store_begin(struct store *st)
{
	return db_step_done(st->stmt[STMT_BEGIN]);
}

int store_commit(struct store *st)
{
	int r = db_step_done(st->stmt[STMT_COMMIT]);

	/* A failed COMMIT leaves the transaction open for store_rollback(). */
	if (r == 0)
		txn_event(st, STORE_TXN_COMMITTED);
	return r;
}

int store_savepoint(struct store *st)
{
	return db_step_done(st->stmt[STMT_SAVEPOINT]);
}

int store_release_savepoint(struct store *st)
{
	int r = db_step_done(st->stmt[STMT_RELEASE]);

	if (r == 0)
		txn_event(st, STORE_JOB_DONE);
	return r;
}

void store_rollback_to_savepoint(struct store *st)
{
	/* ROLLBACK TO keeps the savepoint open; release it as well. */
	int r = db_step_done(st->stmt[STMT_ROLLBACK_TO]);

	db_step_done(st->stmt[STMT_RELEASE]);
	/* Without the rollback, nobody knows what is left: start over. */
	txn_event(st, r == 0 ? STORE_JOB_UNDONE : STORE_TXN_ROLLED_BACK);
}

void store_rollback(struct store *st)
{
	if (!sqlite3_get_autocommit(st->db))
		db_step_done(st->stmt[STMT_ROLLBACK]);
	txn_event(st, STORE_TXN_ROLLED_BACK);
}

int store_host_touch(struct store *st, const char *name, int64_t now_ms,
		     int64_t *ret_host_id)
{
	sqlite3_stmt *s = st->stmt[STMT_HOST_UPSERT];
	int rc;

	db_bind_text(s, 1, name);
	sqlite3_bind_int64(s, 2, now_ms);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		*ret_host_id = sqlite3_column_int64(s, 0);
	/* RETURNING rows must be stepped to the end before reset. */
	while (rc == SQLITE_ROW)
		rc = sqlite3_step(s);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_DONE ? 0 : sqlite_to_errno(rc);
}

int store_event_insert(struct store *st, const struct store_event *ev)
{
	sqlite3_stmt *s = st->stmt[STMT_EVENT_INSERT];
	int r;

	sqlite3_bind_blob(s, 1, ev->id, 16, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, ev->host_id);
	db_bind_text(s, 3, ev->check);
	db_bind_text(s, 4, ev->item);
	db_bind_text(s, 5, check_state_name(ev->state));
	db_bind_text(s, 6, ev->summary);
	db_bind_text(s, 7, ev->metrics);
	db_bind_text(s, 8, ev->context);
	sqlite3_bind_int64(s, 9, ev->observed_ms);
	sqlite3_bind_int64(s, 10, ev->received_ms);
	sqlite3_bind_int64(s, 11, ev->ticket_id);
	r = db_step_done(s);
	if (r < 0)
		return r;
	return sqlite3_changes(st->db) > 0 ? 1 : 0;
}

/* Bind ev as row (0-based) of a multi-row INSERT of events. */
static void bind_event(sqlite3_stmt *s, size_t row, const struct store_event *ev)
{
	int p = (int)(row * 11);

	sqlite3_bind_blob(s, p + 1, ev->id, 16, SQLITE_STATIC);
	sqlite3_bind_int64(s, p + 2, ev->host_id);
	db_bind_text(s, p + 3, ev->check);
	db_bind_text(s, p + 4, ev->item);
	db_bind_text(s, p + 5, check_state_name(ev->state));
	db_bind_text(s, p + 6, ev->summary);
	db_bind_text(s, p + 7, ev->metrics);
	db_bind_text(s, p + 8, ev->context);
	sqlite3_bind_int64(s, p + 9, ev->observed_ms);
	sqlite3_bind_int64(s, p + 10, ev->received_ms);
	sqlite3_bind_int64(s, p + 11, ev->ticket_id);
}

/* The highest seq now, or -errno. */
static int64_t max_seq(struct store *st)
{
	sqlite3_stmt *s = st->max_seq;
	int64_t seq = 0;
	int rc = sqlite3_step(s);

	if (rc == SQLITE_ROW)
		seq = sqlite3_column_int64(s, 0);
	sqlite3_reset(s);
	return rc == SQLITE_ROW ? seq : sqlite_to_errno(rc);
}

/*
 * Some events of evs[0..n) were stored before (or twice in evs): which?
 * The rows this INSERT made are first..first+stored-1, in the events'
 * order (rowids are handed out one past the highest), so an event is new
 * when its id's row is the next of them.
 */
static int sort_out_duplicates(struct store *st, const struct store_event *evs,
			       size_t n, int64_t first, bool *ret_stored)
{
	sqlite3_stmt *s = st->seq_of;
	int64_t next = first;

	for (size_t i = 0; i < n; i++) {
		int rc;

		sqlite3_bind_blob(s, 1, evs[i].id, 16, SQLITE_STATIC);
		rc = sqlite3_step(s);
		ret_stored[i] = rc == SQLITE_ROW && sqlite3_column_int64(s, 0) == next;
		sqlite3_reset(s);
		sqlite3_clear_bindings(s);
		if (rc != SQLITE_ROW && rc != SQLITE_DONE)
			return sqlite_to_errno(rc);
		if (ret_stored[i])
			next++;
	}
	return 0;
}

int store_events_insert(struct store *st, const struct store_event *evs,
			size_t n, bool *ret_stored)
{
	int64_t first = max_seq(st) + 1, stored = 0;
	size_t done = 0;
	int r;

	if (first <= 0)
		return (int)(first - 1);
	while (done < n) {
		size_t c = 0, size;
		sqlite3_stmt *s;

		while (insert_chunks[c] > n - done)
			c++;
		size = insert_chunks[c];
		s = st->insert[c];
		for (size_t row = 0; row < size; row++)
			bind_event(s, row, &evs[done + row]);
		r = db_step_done(s);
		if (r < 0)
			return r;
		stored += sqlite3_changes(st->db);
		done += size;
	}
	if ((size_t)stored == n) {
		for (size_t i = 0; i < n; i++)
			ret_stored[i] = true;
		return (int)n;
	}
	/* Resent events: rare, and worth a lookup each. */
	r = sort_out_duplicates(st, evs, n, first, ret_stored);
	return r < 0 ? r : (int)stored;
}

int store_event_link(struct store *st, const uint8_t *id, int64_t ticket_id)
{
	sqlite3_stmt *s = st->stmt[STMT_EVENT_LINK];

	sqlite3_bind_blob(s, 1, id, 16, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, ticket_id);
	return db_step_done(s);
}

static enum check_state column_state(sqlite3_stmt *s, int col)
{
	enum check_state state = CHECK_UNKNOWN;
	const char *text = (const char *)sqlite3_column_text(s, col);

	if (text != NULL)
		check_state_parse(text, &state);
	return state;
}

void store_ticket_row(sqlite3_stmt *s, int col, struct store_ticket *ret)
{
	const char *status = (const char *)sqlite3_column_text(s, col + 6);

	*ret = (struct store_ticket){
		.id = sqlite3_column_int64(s, col),
		.state = column_state(s, col + 1),
		.worst_state = column_state(s, col + 2),
		.occurrences = sqlite3_column_int64(s, col + 3),
		.first_seen_ms = sqlite3_column_int64(s, col + 4),
		.last_seen_ms = sqlite3_column_int64(s, col + 5),
		.parent_id = sqlite3_column_int64(s, col + 7),
		.flapping = sqlite3_column_int(s, col + 8) != 0,
		.resolved_ms = sqlite3_column_int64(s, col + 9),
	};
	strlcpy_safe(ret->status, status ? status : "", sizeof(ret->status));
}

/* Step s for one row of STORE_TICKET_COLUMNS: 1 and *ret, or 0; s is reset. */
static int ticket_row_step(sqlite3_stmt *s, struct store_ticket *ret)
{
	int rc = sqlite3_step(s), found = 0;

	if (rc == SQLITE_ROW) {
		store_ticket_row(s, 0, ret);
		found = 1;
		rc = SQLITE_DONE;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_DONE ? found : sqlite_to_errno(rc);
}

int store_ticket_find_open(struct store *st, int64_t host_id,
			   const char *check, const char *item,
			   struct store_ticket *ret)
{
	sqlite3_stmt *s = st->stmt[STMT_TICKET_FIND_OPEN];
	int r = st->tickets ? ticket_cache_find(st->tickets, host_id, check,
						item, ret)
			    : -ENOENT;

	if (r != -ENOENT)
		return r;
	/*
	 * A reader's connection has no cache (it would not see the writer's
	 * changes), and the writer's is off with too many open tickets: ask
	 * the database.
	 */
	sqlite3_bind_int64(s, 1, host_id);
	db_bind_text(s, 2, check);
	db_bind_text(s, 3, item);
	return ticket_row_step(s, ret);
}

int store_ticket_open(struct store *st, int64_t host_id, const char *check,
		      const char *item, const char *title,
		      const struct store_event *ev, int64_t *ret_ticket_id)
{
	sqlite3_stmt *s = st->stmt[STMT_TICKET_OPEN];
	int r;

	sqlite3_bind_int64(s, 1, host_id);
	db_bind_text(s, 2, check);
	db_bind_text(s, 3, item);
	db_bind_text(s, 4, title);
	db_bind_text(s, 5, check_state_name(ev->state));
	db_bind_text(s, 6, ev->summary);
	sqlite3_bind_int64(s, 7, ev->observed_ms);
	sqlite3_bind_int64(s, 8, ev->received_ms);
	r = db_step_done(s);
	if (r < 0)
		return r;
	*ret_ticket_id = sqlite3_last_insert_rowid(st->db);
	return 0;
}

int store_ticket_occurrence(struct store *st, const struct store_ticket *t,
			    const struct store_event *ev)
{
	sqlite3_stmt *s = st->stmt[STMT_TICKET_OCCURRENCE];
	int r;

	sqlite3_bind_int64(s, 1, t->id);
	db_bind_text(s, 2, check_state_name(ev->state));
	db_bind_text(s, 3,
		  check_state_name(check_state_worst(t->worst_state, ev->state)));
	sqlite3_bind_int64(s, 4, ev->observed_ms);
	db_bind_text(s, 5, ev->summary);
	/* The hot path: the cache applies the change itself, no re-read. */
	if (st->tickets == NULL)
		return db_step_done(s);
	ticket_cache_mirror_begin(st->tickets, t->id);
	r = db_step_done(s);
	ticket_cache_mirror_end(st->tickets, t, ev, r == 0);
	return r;
}

/* Run an UPDATE of one ticket: ?1 the ticket's id, ?2 value. */
static int ticket_update(struct store *st, enum stmt which, int64_t ticket_id,
			 int64_t value)
{
	sqlite3_stmt *s = st->stmt[which];

	sqlite3_bind_int64(s, 1, ticket_id);
	sqlite3_bind_int64(s, 2, value);
	return db_step_done(s);
}

int store_ticket_resolve(struct store *st, int64_t ticket_id,
			 int64_t resolved_ms)
{
	return ticket_update(st, STMT_TICKET_RESOLVE, ticket_id, resolved_ms);
}

int store_journal_add(struct store *st, int64_t ticket_id, int64_t at_ms,
		      const char *actor, const char *action,
		      const char *old_value, const char *new_value,
		      const char *text)
{
	sqlite3_stmt *s = st->stmt[STMT_JOURNAL_ADD];

	sqlite3_bind_int64(s, 1, ticket_id);
	sqlite3_bind_int64(s, 2, at_ms);
	db_bind_text(s, 3, actor);
	db_bind_text(s, 4, action);
	db_bind_text(s, 5, old_value);
	db_bind_text(s, 6, new_value);
	db_bind_text(s, 7, text);
	return db_step_done(s);
}

static json_t *json_time(int64_t ms)
{
	char buf[TIME_RFC3339_LEN];

	time_format_rfc3339(ms, buf);
	return json_string(buf);
}

json_t *store_json_time(int64_t ms)
{
	return json_time(ms);
}

static json_t *column_json_text(sqlite3_stmt *s, int col)
{
	const char *text = (const char *)sqlite3_column_text(s, col);

	return text ? json_string(text) : json_null();
}

/* Decode a column holding JSON text; null when absent or unparsable. */
static json_t *column_json_doc(sqlite3_stmt *s, int col)
{
	const char *text = (const char *)sqlite3_column_text(s, col);
	json_t *doc = text ? json_loads(text, 0, NULL) : NULL;

	return doc ? doc : json_null();
}

/* One row of TICKET_COLUMNS as the API shows a ticket. */
static json_t *ticket_row_json(sqlite3_stmt *s)
{
	json_t *t = json_object();

	json_object_set_new(t, "id", json_integer(sqlite3_column_int64(s, 0)));
	json_object_set_new(t, "host", column_json_text(s, 1));
	json_object_set_new(t, "check", column_json_text(s, 2));
	json_object_set_new(t, "item", column_json_text(s, 3));
	json_object_set_new(t, "status", column_json_text(s, 4));
	json_object_set_new(t, "title", column_json_text(s, 5));
	json_object_set_new(t, "state", column_json_text(s, 6));
	json_object_set_new(t, "worst_state", column_json_text(s, 7));
	json_object_set_new(t, "summary", column_json_text(s, 8));
	json_object_set_new(t, "occurrence_count",
			    json_integer(sqlite3_column_int64(s, 9)));
	json_object_set_new(t, "first_seen",
			    json_time(sqlite3_column_int64(s, 10)));
	json_object_set_new(t, "last_seen",
			    json_time(sqlite3_column_int64(s, 11)));
	json_object_set_new(t, "opened_at",
			    json_time(sqlite3_column_int64(s, 12)));
	json_object_set_new(t, "resolved_at",
			    sqlite3_column_type(s, 13) == SQLITE_NULL
				    ? json_null()
				    : json_time(sqlite3_column_int64(s, 13)));
	json_object_set_new(t, "parent_id",
			    sqlite3_column_type(s, 14) == SQLITE_NULL
				    ? json_null()
				    : json_integer(sqlite3_column_int64(s, 14)));
	json_object_set_new(t, "flapping",
			    json_boolean(sqlite3_column_int(s, 15)));
	json_object_set_new(t, "children_count",
			    json_integer(sqlite3_column_int64(s, 16)));
	return t;
}

static int tickets_list(struct store *st, enum store_ticket_filter filter,
			bool with_children, int64_t limit, int64_t offset,
			json_t **ret)
{
	static const enum stmt which[] = {
		[STORE_TICKETS_OPEN] = STMT_TICKETS_OPEN,
		[STORE_TICKETS_RESOLVED] = STMT_TICKETS_RESOLVED,
		[STORE_TICKETS_ALL] = STMT_TICKETS_ALL,
	};
	sqlite3_stmt *s = st->stmt[which[filter]];
	json_t *list = json_array();
	int rc;

	sqlite3_bind_int64(s, 1, limit);
	sqlite3_bind_int64(s, 2, offset);
	sqlite3_bind_int(s, 3, with_children);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		json_array_append_new(list, ticket_row_json(s));
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc != SQLITE_DONE) {
		json_decref(list);
		return sqlite_to_errno(rc);
	}
	*ret = list;
	return 0;
}

int store_tickets_list(struct store *st, enum store_ticket_filter filter,
		       int64_t limit, int64_t offset, json_t **ret)
{
	return tickets_list(st, filter, false, limit, offset, ret);
}

int store_tickets_list_with_children(struct store *st,
				     enum store_ticket_filter filter,
				     int64_t limit, int64_t offset,
				     json_t **ret)
{
	return tickets_list(st, filter, true, limit, offset, ret);
}

static int ticket_occurrences(struct store *st, int64_t id, int64_t max,
			      json_t *list)
{
	sqlite3_stmt *s = st->stmt[STMT_TICKET_OCCURRENCES];
	char uuid[UUID_STR_LEN];
	int rc;

	sqlite3_bind_int64(s, 1, id);
	sqlite3_bind_int64(s, 2, max);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		json_t *o = json_object();

		if (sqlite3_column_bytes(s, 0) == 16) {
			uuid_from_bytes(sqlite3_column_blob(s, 0), uuid);
			json_object_set_new(o, "event_id", json_string(uuid));
		}
		json_object_set_new(o, "state", column_json_text(s, 1));
		json_object_set_new(o, "summary", column_json_text(s, 2));
		json_object_set_new(o, "metrics", column_json_doc(s, 3));
		json_object_set_new(o, "context", column_json_doc(s, 4));
		json_object_set_new(o, "observed_at",
				    json_time(sqlite3_column_int64(s, 5)));
		json_object_set_new(o, "received_at",
				    json_time(sqlite3_column_int64(s, 6)));
		json_array_append_new(list, o);
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_DONE ? 0 : sqlite_to_errno(rc);
}

static int ticket_journal(struct store *st, int64_t id, json_t *list)
{
	sqlite3_stmt *s = st->stmt[STMT_TICKET_JOURNAL];
	int rc;

	sqlite3_bind_int64(s, 1, id);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		json_t *j = json_object();

		json_object_set_new(j, "at",
				    json_time(sqlite3_column_int64(s, 0)));
		json_object_set_new(j, "actor", column_json_text(s, 1));
		json_object_set_new(j, "action", column_json_text(s, 2));
		json_object_set_new(j, "old", column_json_text(s, 3));
		json_object_set_new(j, "new", column_json_text(s, 4));
		json_object_set_new(j, "text", column_json_text(s, 5));
		json_array_append_new(list, j);
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_DONE ? 0 : sqlite_to_errno(rc);
}

int store_ticket_get(struct store *st, int64_t id, int64_t max_occurrences,
		     json_t **ret)
{
	sqlite3_stmt *s = st->stmt[STMT_TICKET_GET];
	json_t *t = NULL, *occ, *journal;
	int rc, r;

	sqlite3_bind_int64(s, 1, id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW)
		t = ticket_row_json(s);
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (t == NULL)
		return rc == SQLITE_DONE ? -ENOENT : sqlite_to_errno(rc);

	occ = json_array();
	journal = json_array();
	json_object_set_new(t, "occurrences", occ);
	json_object_set_new(t, "journal", journal);
	r = ticket_occurrences(st, id, max_occurrences, occ);
	if (r == 0)
		r = ticket_journal(st, id, journal);
	if (r < 0) {
		json_decref(t);
		return r;
	}
	*ret = t;
	return 0;
}

int store_ticket_lookup(struct store *st, int64_t ticket_id,
			struct store_ticket *ret)
{
	sqlite3_stmt *s = st->stmt[STMT_TICKET_LOOKUP];
	int r;

	sqlite3_bind_int64(s, 1, ticket_id);
	r = ticket_row_step(s, ret);
	return r == 0 ? -ENOENT : r < 0 ? r : 0;
}

int store_ticket_recover(struct store *st, int64_t ticket_id)
{
	sqlite3_stmt *s = st->stmt[STMT_TICKET_RECOVER];

	sqlite3_bind_int64(s, 1, ticket_id);
	return db_step_done(s);
}

int store_ticket_reopen(struct store *st, int64_t ticket_id,
			const char *status)
{
	sqlite3_stmt *s = st->stmt[STMT_TICKET_REOPEN];

	sqlite3_bind_int64(s, 1, ticket_id);
	db_bind_text(s, 2, status);
	return db_step_done(s);
}

int store_ticket_set_parent(struct store *st, int64_t ticket_id,
			    int64_t parent_id)
{
	/* 0 is no ticket: the statement stores NULL for it. */
	return ticket_update(st, STMT_TICKET_SET_PARENT, ticket_id, parent_id);
}

int store_ticket_set_flapping(struct store *st, int64_t ticket_id,
			      bool flapping)
{
	return ticket_update(st, STMT_TICKET_SET_FLAPPING, ticket_id, flapping);
}

int store_ticket_set_history(struct store *st, int64_t ticket_id,
			     int64_t occurrences, int64_t first_seen_ms)
{
	sqlite3_stmt *s = st->stmt[STMT_TICKET_SET_HISTORY];

	sqlite3_bind_int64(s, 1, ticket_id);
	sqlite3_bind_int64(s, 2, occurrences);
	sqlite3_bind_int64(s, 3, first_seen_ms);
	return db_step_done(s);
}
