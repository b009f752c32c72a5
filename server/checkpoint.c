#include "checkpoint.h"

#include <errno.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>

#include "../common/db.h"
#include "../common/util.h"
#include "metrics.h"
#include "store.h"

struct checkpointer {
	struct store *st;
	sqlite3 *db; /* the checkpointer's own connection */
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	/*
	 * A checkpoint reports the frames copied from the current log so
	 * far, not by that call: counted is what of the current log is in
	 * pages already (under count_lock, for the thread and the writer).
	 */
	pthread_mutex_t count_lock;
	int counted;
	bool due;      /* the log grew by CHECKPOINT_PAGES since the last wake-up */
	bool stopping;
	bool running;
	int woken_at;  /* the log's length at the last wake-up (writer only) */
	atomic_bool pending;	       /* woken, and its checkpoint not done yet */
	atomic_uint_fast64_t wakeups;  /* wake-ups sent by the writer */
	atomic_uint_fast64_t runs;     /* checkpoints done by the thread */
	atomic_uint_fast64_t restarts; /* checkpoints by the writer */
	atomic_uint_fast64_t failed;
	atomic_uint_fast64_t pages;    /* pages copied into the database */
	atomic_int_fast64_t wal_pages; /* the log's length after the last commit */
};

/*
 * After any checkpoint: add to pages what it copied beyond what the
 * checkpoints before it had, copied being SQLite's frames copied from the
 * current log so far.
 */
static void count_copied(struct checkpointer *cp, int copied)
{
	if (copied <= 0)
		return;
	pthread_mutex_lock(&cp->count_lock);
	if (copied < cp->counted)
		cp->counted = 0; /* the log started over meanwhile */
	atomic_fetch_add(&cp->pages, (uint64_t)(copied - cp->counted));
	cp->counted = copied;
	pthread_mutex_unlock(&cp->count_lock);
}

/* Called by the writer when its commit started a new log. */
static void count_log_started_over(struct checkpointer *cp)
{
	pthread_mutex_lock(&cp->count_lock);
	cp->counted = 0;
	pthread_mutex_unlock(&cp->count_lock);
}

/* Have the thread copy the log up to its current length, pages. */
static void wake(struct checkpointer *cp, int pages)
{
	cp->woken_at = pages;
	atomic_fetch_add(&cp->wakeups, 1);
	pthread_mutex_lock(&cp->lock);
	atomic_store(&cp->pending, true); /* under the lock, with due */
	cp->due = true;
	pthread_cond_signal(&cp->wake);
	pthread_mutex_unlock(&cp->lock);
}

/*
 * Past CHECKPOINT_RESTART_PAGES the writer finishes the checkpoint
 * itself, so that its next transaction starts the log over: once the
 * thread, woken at that length, has copied the log up to there, the
 * writer copies the few pages committed since (PASSIVE: it never waits,
 * and a busy checkpoint is tried again after the next commit).  0 when
 * the log was copied whole.
 */
static int finish_checkpoint(struct checkpointer *cp, sqlite3 *db,
			     const char *name, int pages)
{
	int log = 0, copied = 0;

	if (pages - cp->woken_at > CHECKPOINT_FINISH_PAGES) {
		wake(cp, pages);
		return -EAGAIN;
	}
	if (atomic_load(&cp->pending))
		return -EAGAIN;
	if (sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_PASSIVE, &log,
				      &copied) != SQLITE_OK)
		return -EBUSY;
	count_copied(cp, copied);
	if (copied < log)
		return -EBUSY;
	atomic_fetch_add(&cp->restarts, 1);
	return 0;
}

/*
 * SQLite's WAL hook, on the writer thread after each commit (it replaces
 * the automatic checkpoint).  Cheap unless the log is long.
 */
static int on_commit(void *arg, sqlite3 *db, const char *name, int pages)
{
	struct checkpointer *cp = arg;

	if (pages < atomic_exchange(&cp->wal_pages, pages))
		count_log_started_over(cp);
	if (pages < cp->woken_at)
		cp->woken_at = 0; /* the log started over */
	if (pages >= CHECKPOINT_MAX_PAGES) {
		int log = 0, copied = 0;

		/* Waits for the checkpointer's reads, then starts the log over. */
		if (sqlite3_wal_checkpoint_v2(db, name, SQLITE_CHECKPOINT_RESTART,
					      &log, &copied) == SQLITE_OK) {
			atomic_fetch_add(&cp->restarts, 1);
			count_copied(cp, copied);
		} else {
			atomic_fetch_add(&cp->failed, 1);
		}
		return SQLITE_OK;
	}
	if (pages >= CHECKPOINT_RESTART_PAGES) {
		finish_checkpoint(cp, db, name, pages);
		return SQLITE_OK;
	}
	/*
	 * Wake the thread once per CHECKPOINT_PAGES of new log, not after
	 * every commit: a page that several commits changed (an index's
	 * upper levels, the table's last page) is copied and the database
	 * fsynced once for all of them.
	 */
	if (pages >= CHECKPOINT_PAGES &&
	    pages - cp->woken_at >= CHECKPOINT_PAGES)
		wake(cp, pages);
	return SQLITE_OK;
}

static void *checkpoint_main(void *arg)
{
	struct checkpointer *cp = arg;

	pthread_setname_np(pthread_self(), "tocsin-ckpt");
	pthread_mutex_lock(&cp->lock);
	for (;;) {
		int log = 0, copied = 0, rc;

		while (!cp->due && !cp->stopping)
			pthread_cond_wait(&cp->wake, &cp->lock);
		if (cp->stopping)
			break;
		cp->due = false;
		pthread_mutex_unlock(&cp->lock);
		rc = sqlite3_wal_checkpoint_v2(cp->db, NULL,
					       SQLITE_CHECKPOINT_PASSIVE, &log,
					       &copied);
		if (rc == SQLITE_OK) {
			atomic_fetch_add(&cp->runs, 1);
			count_copied(cp, copied);
		} else {
			atomic_fetch_add(&cp->failed, 1);
		}
		pthread_mutex_lock(&cp->lock);
		/* Woken again meanwhile: that checkpoint is still to come. */
		if (!cp->due)
			atomic_store(&cp->pending, false);
	}
	pthread_mutex_unlock(&cp->lock);
	return NULL;
}

int checkpoint_start(struct store *st, const char *path,
		     struct checkpointer **ret)
{
	struct checkpointer *cp = xcalloc(1, sizeof(*cp));
	int rc, r;

	cp->st = st;
	pthread_mutex_init(&cp->lock, NULL);
	pthread_cond_init(&cp->wake, NULL);
	pthread_mutex_init(&cp->count_lock, NULL);
	rc = sqlite3_open_v2(path, &cp->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_busy_timeout(cp->db, 5000);
		rc = sqlite3_exec(cp->db, "PRAGMA synchronous = FULL", NULL,
				  NULL, NULL);
	}
	if (rc != SQLITE_OK) {
		r = sqlite_to_errno(rc);
		checkpoint_stop(cp);
		return r;
	}
	r = -pthread_create(&cp->thread, NULL, checkpoint_main, cp);
	if (r < 0) {
		checkpoint_stop(cp);
		return r;
	}
	cp->running = true;
	store_lock(st);
	sqlite3_wal_hook(store_db(st), on_commit, cp);
	store_unlock(st);
	*ret = cp;
	return 0;
}

void checkpoint_stop(struct checkpointer *cp)
{
	if (cp == NULL)
		return;
	if (cp->running) {
		/* Back to SQLite's own checkpoints for whatever comes after. */
		store_lock(cp->st);
		sqlite3_wal_autocheckpoint(store_db(cp->st), CHECKPOINT_PAGES);
		store_unlock(cp->st);
		pthread_mutex_lock(&cp->lock);
		cp->stopping = true;
		pthread_cond_signal(&cp->wake);
		pthread_mutex_unlock(&cp->lock);
		pthread_join(cp->thread, NULL);
	}
	sqlite3_close(cp->db);
	pthread_cond_destroy(&cp->wake);
	pthread_mutex_destroy(&cp->count_lock);
	pthread_mutex_destroy(&cp->lock);
	free(cp);
}

void checkpoint_get_stats(struct checkpointer *cp,
			  struct checkpoint_stats *ret)
{
	*ret = (struct checkpoint_stats){
		.wakeups = atomic_load(&cp->wakeups),
		.runs = atomic_load(&cp->runs),
		.restarts = atomic_load(&cp->restarts),
		.failed = atomic_load(&cp->failed),
		.pages = atomic_load(&cp->pages),
		.wal_pages = atomic_load(&cp->wal_pages),
	};
}

void checkpoint_metrics(void *arg, struct metrics_out *out)
{
	struct checkpointer *cp = arg;

	metrics_counter(out, "tocsin_wal_checkpoints_total",
			"WAL checkpoints, by who ran them.",
			"by=\"checkpointer\"", atomic_load(&cp->runs));
	metrics_counter(out, "tocsin_wal_checkpoints_total", NULL,
			"by=\"writer\"", atomic_load(&cp->restarts));
	metrics_counter(out, "tocsin_wal_checkpoint_wakeups_total",
			"Times the writer woke the checkpointer.", NULL,
			atomic_load(&cp->wakeups));
	metrics_counter(out, "tocsin_wal_checkpoint_failures_total",
			"WAL checkpoints that failed (retried after later commits).",
			NULL, atomic_load(&cp->failed));
	metrics_counter(out, "tocsin_wal_checkpointed_pages_total",
			"Pages copied from the WAL into the database file.",
			NULL, atomic_load(&cp->pages));
	metrics_gauge(out, "tocsin_wal_pages",
		      "Pages in the write-ahead log after the last commit.", NULL,
		      (double)atomic_load(&cp->wal_pages));
}
