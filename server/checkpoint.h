/*
 * WAL checkpoints off the writer thread.
 *
 * SQLite's default copies the write-ahead log back into the database file
 * (and fsyncs it) inside the commit that makes the log pass 1000 pages:
 * at full ingest that is every few commits, each held up by a copy and
 * an fsync of the database while every waiting agent waits too.  The
 * checkpointer takes that work to a thread of its own, with its own
 * connection: the writer's commits only tell it how long the log is, and
 * it runs PASSIVE checkpoints (which never block the writer) once the
 * log passes CHECKPOINT_PAGES, and again each time it grew by as much.
 * SQLite starts the log over from its beginning only when a checkpoint
 * has caught up with the writer, which under a writer that never pauses
 * the thread never does: the log grew into fresh file blocks (which the
 * kernel zeroes) up to CHECKPOINT_MAX_PAGES.  So past
 * CHECKPOINT_RESTART_PAGES the thread is woken once more and then the
 * writer finishes the checkpoint itself after a commit (PASSIVE, the
 * few pages committed while the thread copied, at most
 * CHECKPOINT_FINISH_PAGES), and its next transaction starts the log
 * over.  That costs the writer about 10 ms (two fsyncs, measured under
 * bench/ingest.sh), hence once per 64 MiB of log rather than more often:
 * every 2 s or so at 75,000 events/s.  Should the log pass
 * CHECKPOINT_MAX_PAGES anyway, the writer runs one RESTART checkpoint
 * (which waits for readers).  synchronous stays FULL on both
 * connections: a checkpoint fsyncs the log before and the database after
 * copying, as before.
 */
#ifndef TOCSIN_CHECKPOINT_H
#define TOCSIN_CHECKPOINT_H

#include <stdint.h>

struct store;
struct checkpointer;
struct metrics_out;

#define CHECKPOINT_PAGES 1000	       /* SQLite's own default threshold */
#define CHECKPOINT_RESTART_PAGES 16384 /* 64 MiB: the writer finishes... */
#define CHECKPOINT_FINISH_PAGES 500    /* ...what the thread left, at most */
#define CHECKPOINT_MAX_PAGES 65536     /* 256 MiB of log at 4 KiB pages */

/*
 * Open a second connection to path (st's database) and start the thread;
 * from then on st's commits hand their checkpoints to it.  Call before
 * the writer starts.
 */
int checkpoint_start(struct store *st, const char *path,
		     struct checkpointer **ret);
/* Stop the thread (after the writer stopped) and close its connection. */
void checkpoint_stop(struct checkpointer *cp);

/* What the checkpoints did so far (the metrics' figures). */
struct checkpoint_stats {
	uint64_t wakeups;  /* the writer woke the thread */
	uint64_t runs;     /* checkpoints by the thread */
	uint64_t restarts; /* checkpoints by the writer */
	uint64_t failed;
	uint64_t pages;    /* log frames copied into the database, all told */
	int64_t wal_pages; /* the log's length after the last commit */
};

void checkpoint_get_stats(struct checkpointer *cp,
			  struct checkpoint_stats *ret);

/* The metrics source: checkpoints run, pages copied, the log's length. */
void checkpoint_metrics(void *arg, struct metrics_out *out);

#endif
