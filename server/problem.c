#include "problem.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "keymap.h"
#include "store.h"

static const char *const problem_steps[] = {
	/* 1: one row per problem key that was ever not ok */
	"CREATE TABLE problems ("
	"  host_id INTEGER NOT NULL,"
	"  check_name TEXT NOT NULL,"
	"  item TEXT NOT NULL,"
	"  phase TEXT NOT NULL CHECK (phase IN ('ok', 'pending', 'silenced', 'open')),"
	"  state TEXT NOT NULL,"
	"  last_at INTEGER NOT NULL,"
	"  since INTEGER NOT NULL,"
	"  streak INTEGER NOT NULL,"
	"  summary TEXT,"
	"  pending BLOB,"   /* 16-byte event ids, oldest first */
	"  changes BLOB,"   /* flap history, see flap.h */
	"  flapping INTEGER NOT NULL,"
	"  silence_id INTEGER,"
	"  ticket_id INTEGER,"
	"  prior_status TEXT,"
	"  due_at INTEGER,"
	"  PRIMARY KEY (host_id, check_name, item)) WITHOUT ROWID;"
	"CREATE INDEX problems_due ON problems(due_at) WHERE due_at IS NOT NULL;"
	"CREATE INDEX problems_waiting ON problems(phase)"
	"  WHERE phase IN ('pending', 'silenced');"
	"CREATE INDEX problems_silence ON problems(silence_id)"
	"  WHERE silence_id IS NOT NULL;",
	/* 2: since is on the collector's clock now; the agent's time of the
	 * stretch's first result, for the ticket and the journal */
	"ALTER TABLE problems ADD COLUMN first_at INTEGER;",
};

const struct db_schema problem_schema = {
	.module = "problems",
	.steps = problem_steps,
	.nsteps = ARRAY_SIZE(problem_steps),
};

enum {
	PS_KEYS,
	PS_LOAD,
	PS_SAVE,
	PS_DUE,
	PS_SILENCE_ENDED,
	PS_COUNTS,
	PS_FORGET_PRIOR,
	PS_COUNT,
};

#define PROBLEM_COLUMNS                                                 \
	"phase, state, last_at, since, streak, summary, pending, changes, " \
	"flapping, silence_id, ticket_id, prior_status, due_at, first_at"

static const char *const problem_sql[PS_COUNT] = {
	[PS_KEYS] = "SELECT host_id, check_name, item, state, flapping FROM problems",
	[PS_LOAD] = "SELECT " PROBLEM_COLUMNS " FROM problems"
		    " WHERE host_id = ?1 AND check_name = ?2 AND item = ?3",
	[PS_SAVE] = "INSERT OR REPLACE INTO problems(host_id, check_name, item, "
		    PROBLEM_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8,"
		    " ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17)",
	[PS_DUE] = "SELECT p.host_id, h.name, p.check_name, p.item"
		   " FROM problems p JOIN hosts h ON h.id = p.host_id"
		   " WHERE p.due_at IS NOT NULL AND p.due_at <= ?1"
		   " ORDER BY p.due_at LIMIT ?2",
	[PS_SILENCE_ENDED] = "UPDATE problems SET due_at = ?2"
			     " WHERE silence_id = ?1 AND phase = 'silenced'",
	[PS_COUNTS] = "SELECT phase, count(*) FROM problems"
		      " WHERE phase IN ('pending', 'silenced') GROUP BY phase",
	/* By the primary key: a technician's resolve costs one indexed write. */
	[PS_FORGET_PRIOR] = "UPDATE problems SET prior_status = NULL"
			    " WHERE host_id = (SELECT id FROM hosts WHERE name = ?1)"
			    " AND check_name = ?2 AND item = ?3 AND ticket_id = ?4"
			    " AND prior_status IS NOT NULL",
};

/* What the writer remembers of each key's row (keymap.h). */
struct key_info {
	bool quiet; /* state ok and not flapping: an ok result changes nothing */
};

/*
 * What the writer remembers of each host, in a keymap of its own under
 * (host id, "", ""): how many keys of ps->keys are the host's.
 */
struct host_info {
	size_t keys;
	bool refusing; /* its last batch went over the cap */
};

/* A key made quiet by the current job, to take back if the job fails. */
struct quieted {
	int64_t host_id;
	char *check;
	char *item;
};

struct problems {
	struct store *st;
	sqlite3_stmt *stmt[PS_COUNT];
	struct keymap *keys; /* every key with a row */
	struct keymap *hosts; /* struct host_info of each host with a key */
	struct quieted *quieted;
	size_t nquieted, capquieted;
};

bool problem_may_exist(struct problems *ps, int64_t host_id,
		       const char *check, const char *item)
{
	return keymap_get(ps->keys, host_id, check, item) != NULL;
}

/* A key joined ps->keys: one more for its host. */
static void count_key(struct problems *ps, int64_t host_id)
{
	struct host_info *h = keymap_put(ps->hosts, host_id, "", "", NULL);

	h->keys++;
}

size_t problem_host_keys(struct problems *ps, int64_t host_id)
{
	const struct host_info *h = keymap_get(ps->hosts, host_id, "", "");

	return h ? h->keys : 0;
}

bool problem_host_refusing(struct problems *ps, int64_t host_id,
			   bool refusing)
{
	struct host_info *h;
	bool was;

	if (!refusing) {
		h = keymap_get(ps->hosts, host_id, "", "");
		if (h == NULL)
			return false;
	} else {
		h = keymap_put(ps->hosts, host_id, "", "", NULL);
	}
	was = h->refusing;
	h->refusing = refusing;
	return was;
}

bool problem_quiet(struct problems *ps, int64_t host_id, const char *check,
		   const char *item)
{
	const struct key_info *k = keymap_get(ps->keys, host_id, check, item);

	return k == NULL || k->quiet;
}

static void forget_quieted(struct problems *ps)
{
	for (size_t i = 0; i < ps->nquieted; i++) {
		free(ps->quieted[i].check);
		free(ps->quieted[i].item);
	}
	ps->nquieted = 0;
}

/* The key's row now says quiet (or not); remember what to take back. */
static void set_quiet(struct problems *ps, int64_t host_id, const char *check,
		      const char *item, bool quiet)
{
	bool added;
	struct key_info *k = keymap_put(ps->keys, host_id, check, item, &added);

	if (added)
		count_key(ps, host_id);
	if (quiet && !k->quiet) {
		if (ps->nquieted == ps->capquieted) {
			ps->capquieted = ps->capquieted ? ps->capquieted * 2 : 16;
			ps->quieted = xreallocarray(ps->quieted, ps->capquieted,
						    sizeof(*ps->quieted));
		}
		ps->quieted[ps->nquieted++] = (struct quieted){
			.host_id = host_id,
			.check = xstrdup(check),
			.item = xstrdup(item),
		};
	}
	k->quiet = quiet;
}

static void unquiet(void *arg, int64_t host_id, const char *check,
		    const char *item, void *value)
{
	struct key_info *k = value;

	(void)arg;
	(void)host_id;
	(void)check;
	(void)item;
	k->quiet = false;
}

/*
 * A failed job's rows are back as they were: a key it made quiet may not
 * be, so it is read again next time (not quiet is always safe).  A failed
 * transaction does the same for every key.
 */
static void on_txn(void *arg, enum store_txn_event event)
{
	struct problems *ps = arg;

	if (event == STORE_JOB_UNDONE) {
		for (size_t i = 0; i < ps->nquieted; i++) {
			struct key_info *k = keymap_get(ps->keys,
							ps->quieted[i].host_id,
							ps->quieted[i].check,
							ps->quieted[i].item);

			if (k != NULL)
				k->quiet = false;
		}
	} else if (event == STORE_TXN_ROLLED_BACK) {
		keymap_foreach(ps->keys, unquiet, NULL);
	}
	forget_quieted(ps);
}

/* Every key with a row, once at start; a row is never deleted. */
static int load_keys(struct problems *ps)
{
	sqlite3_stmt *s = ps->stmt[PS_KEYS];
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *check = (const char *)sqlite3_column_text(s, 1);
		const char *item = (const char *)sqlite3_column_text(s, 2);
		const char *state = (const char *)sqlite3_column_text(s, 3);
		int64_t host_id = sqlite3_column_int64(s, 0);
		bool added;
		struct key_info *k = keymap_put(ps->keys, host_id,
						check ? check : "",
						item ? item : "", &added);

		if (added)
			count_key(ps, host_id);

		k->quiet = state && strcmp(state, "ok") == 0 &&
			   sqlite3_column_int(s, 4) == 0;
	}
	sqlite3_reset(s);
	return rc == SQLITE_DONE ? 0 : sqlite_to_errno(rc);
}

static const char *const phase_names[] = {
	[PROBLEM_OK] = "ok",
	[PROBLEM_PENDING] = "pending",
	[PROBLEM_SILENCED] = "silenced",
	[PROBLEM_OPEN] = "open",
};

const char *problem_phase_name(enum problem_phase phase)
{
	return (unsigned)phase < ARRAY_SIZE(phase_names) ? phase_names[phase]
							 : "ok";
}

static enum problem_phase phase_parse(const char *text)
{
	for (size_t i = 0; text && i < ARRAY_SIZE(phase_names); i++)
		if (strcmp(text, phase_names[i]) == 0)
			return (enum problem_phase)i;
	return PROBLEM_OK;
}

void problem_close(struct problems *ps)
{
	if (ps == NULL)
		return;
	/* A reload replaces the lifecycle's context: stop hearing of it. */
	store_txn_hook_remove(ps->st, on_txn, ps);
	for (int i = 0; i < PS_COUNT; i++)
		sqlite3_finalize(ps->stmt[i]);
	forget_quieted(ps);
	free(ps->quieted);
	keymap_free(ps->keys);
	keymap_free(ps->hosts);
	free(ps);
}

int problem_open(struct store *st, struct problems **ret)
{
	struct problems *ps = xcalloc(1, sizeof(*ps));
	int r;

	ps->st = st;
	ps->keys = keymap_new(sizeof(struct key_info));
	ps->hosts = keymap_new(sizeof(struct host_info));
	for (int i = 0; i < PS_COUNT; i++) {
		r = store_prepare(st, problem_sql[i], &ps->stmt[i]);

		if (r < 0) {
			problem_close(ps);
			return r;
		}
	}
	r = load_keys(ps);
	if (r == 0)
		r = store_txn_hook_add(st, on_txn, ps);
	if (r < 0) {
		problem_close(ps);
		return r;
	}
	*ret = ps;
	return 0;
}

void problem_clear(struct problem *p)
{
	if (p == NULL)
		return;
	free(p->summary);
	p->summary = NULL;
}

void problem_set_summary(struct problem *p, const char *summary)
{
	free(p->summary);
	p->summary = summary ? xstrdup(summary) : NULL;
}

void problem_add_pending(struct problem *p, const uint8_t id[16])
{
	if (id == NULL)
		return;
	if (p->npending == PROBLEM_PENDING_MAX) {
		memmove(p->pending[0], p->pending[1],
			(PROBLEM_PENDING_MAX - 1) * sizeof(p->pending[0]));
		p->npending--;
	}
	memcpy(p->pending[p->npending++], id, 16);
}

/* Read a row of PROBLEM_COLUMNS; a damaged BLOB reads as empty. */
static void problem_row(sqlite3_stmt *s, struct problem *p)
{
	const char *text;
	int len;

	p->phase = phase_parse((const char *)sqlite3_column_text(s, 0));
	text = (const char *)sqlite3_column_text(s, 1);
	if (text == NULL || check_state_parse(text, &p->state) < 0)
		p->state = CHECK_UNKNOWN;
	p->last_ms = sqlite3_column_int64(s, 2);
	p->since_ms = sqlite3_column_int64(s, 3);
	p->streak = sqlite3_column_int64(s, 4);
	text = (const char *)sqlite3_column_text(s, 5);
	p->summary = text ? xstrdup(text) : NULL;
	len = sqlite3_column_bytes(s, 6);
	if (len > 0 && len % 16 == 0 && len / 16 <= PROBLEM_PENDING_MAX) {
		memcpy(p->pending, sqlite3_column_blob(s, 6), (size_t)len);
		p->npending = (size_t)len / 16;
	}
	len = sqlite3_column_bytes(s, 7);
	if (len > 0)
		flap_decode(sqlite3_column_blob(s, 7), (size_t)len, &p->changes);
	p->flapping = sqlite3_column_int(s, 8) != 0;
	p->silence_id = sqlite3_column_int64(s, 9);
	p->ticket_id = sqlite3_column_int64(s, 10);
	text = (const char *)sqlite3_column_text(s, 11);
	strlcpy_safe(p->prior_status, text ? text : "", sizeof(p->prior_status));
	p->due_ms = sqlite3_column_int64(s, 12);
	/* A row from before first_at: the start of the stretch will do. */
	p->first_ms = sqlite3_column_type(s, 13) == SQLITE_NULL
			      ? p->since_ms
			      : sqlite3_column_int64(s, 13);
}

int problem_load(struct problems *ps, int64_t host_id, const char *check,
		 const char *item, struct problem *ret)
{
	sqlite3_stmt *s = ps->stmt[PS_LOAD];
	int rc, found = 0;

	*ret = (struct problem){ .phase = PROBLEM_OK, .state = CHECK_OK };
	if (!problem_may_exist(ps, host_id, check, item))
		return 0;
	sqlite3_bind_int64(s, 1, host_id);
	db_bind_text(s, 2, check);
	db_bind_text(s, 3, item);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		problem_row(s, ret);
		found = 1;
		rc = SQLITE_DONE;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_DONE ? found : sqlite_to_errno(rc);
}

static void bind_optional_int(sqlite3_stmt *s, int i, int64_t v)
{
	if (v != 0)
		sqlite3_bind_int64(s, i, v);
	else
		sqlite3_bind_null(s, i);
}

int problem_save(struct problems *ps, int64_t host_id, const char *check,
		 const char *item, const struct problem *p)
{
	sqlite3_stmt *s = ps->stmt[PS_SAVE];
	uint8_t changes[FLAP_HISTORY_MAX * 8];
	size_t nchanges = flap_encode(&p->changes, changes, sizeof(changes));

	/*
	 * Before the write: a rolled-back row only costs a needless read,
	 * and a quiet mark is taken back if the job fails (on_txn()).
	 */
	set_quiet(ps, host_id, check, item,
		  p->state == CHECK_OK && !p->flapping);
	sqlite3_bind_int64(s, 1, host_id);
	db_bind_text(s, 2, check);
	db_bind_text(s, 3, item);
	db_bind_text(s, 4, problem_phase_name(p->phase));
	db_bind_text(s, 5, check_state_name(p->state));
	sqlite3_bind_int64(s, 6, p->last_ms);
	sqlite3_bind_int64(s, 7, p->since_ms);
	sqlite3_bind_int64(s, 8, p->streak);
	db_bind_text(s, 9, p->summary);
	if (p->npending > 0)
		sqlite3_bind_blob(s, 10, p->pending, (int)(p->npending * 16),
				  SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(s, 10);
	if (nchanges > 0)
		sqlite3_bind_blob(s, 11, changes, (int)nchanges, SQLITE_TRANSIENT);
	else
		sqlite3_bind_null(s, 11);
	sqlite3_bind_int(s, 12, p->flapping);
	bind_optional_int(s, 13, p->silence_id);
	bind_optional_int(s, 14, p->ticket_id);
	db_bind_text(s, 15, p->prior_status[0] ? p->prior_status : NULL);
	bind_optional_int(s, 16, p->due_ms);
	sqlite3_bind_int64(s, 17, p->first_ms);
	return db_step_done(s);
}

void problem_keys_free(struct problem_key *keys, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		free(keys[i].host);
		free(keys[i].check);
		free(keys[i].item);
	}
}

static char *column_strdup(sqlite3_stmt *s, int col)
{
	const char *text = (const char *)sqlite3_column_text(s, col);

	return xstrdup(text ? text : "");
}

int problem_due(struct problems *ps, int64_t now_ms,
		struct problem_key *ret_keys, size_t max)
{
	sqlite3_stmt *s = ps->stmt[PS_DUE];
	size_t n = 0;
	int rc = SQLITE_DONE;

	sqlite3_bind_int64(s, 1, now_ms);
	sqlite3_bind_int64(s, 2, (int64_t)max);
	while (n < max && (rc = sqlite3_step(s)) == SQLITE_ROW) {
		ret_keys[n++] = (struct problem_key){
			.host_id = sqlite3_column_int64(s, 0),
			.host = column_strdup(s, 1),
			.check = column_strdup(s, 2),
			.item = column_strdup(s, 3),
		};
	}
	if (n == max)
		rc = SQLITE_DONE;
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc != SQLITE_DONE) {
		problem_keys_free(ret_keys, n);
		return sqlite_to_errno(rc);
	}
	return (int)n;
}

int problem_silence_ended(struct problems *ps, int64_t silence_id,
			  int64_t now_ms)
{
	sqlite3_stmt *s = ps->stmt[PS_SILENCE_ENDED];

	sqlite3_bind_int64(s, 1, silence_id);
	sqlite3_bind_int64(s, 2, now_ms);
	return db_step_done(s);
}

int problem_counts(struct problems *ps, int64_t *ret_pending,
		   int64_t *ret_silenced)
{
	sqlite3_stmt *s = ps->stmt[PS_COUNTS];
	int64_t pending = 0, silenced = 0;
	int rc;

	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		const char *phase = (const char *)sqlite3_column_text(s, 0);

		if (phase && strcmp(phase, "pending") == 0)
			pending = sqlite3_column_int64(s, 1);
		else
			silenced = sqlite3_column_int64(s, 1);
	}
	sqlite3_reset(s);
	if (rc != SQLITE_DONE)
		return sqlite_to_errno(rc);
	*ret_pending = pending;
	*ret_silenced = silenced;
	return 0;
}

int problem_forget_prior_status(struct problems *ps, const char *host,
				const char *check, const char *item,
				int64_t ticket_id)
{
	sqlite3_stmt *s = ps->stmt[PS_FORGET_PRIOR];

	db_bind_text(s, 1, host);
	db_bind_text(s, 2, check);
	db_bind_text(s, 3, item);
	sqlite3_bind_int64(s, 4, ticket_id);
	return db_step_done(s);
}
