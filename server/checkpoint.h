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
 * log passes checkpoint_pages.  SQLite starts the log over from its
 * beginning when a checkpoint has caught up; should the log ever pass
 * max_pages anyway (the checkpointer starved by a writer that never
 * pauses), the writer runs one RESTART checkpoint itself after its
 * commit, so the log stays bounded.  synchronous stays FULL on both
 * connections: a checkpoint fsyncs the log before and the database after
 * copying, as before.
 */
#ifndef TOCSIN_CHECKPOINT_H
#define TOCSIN_CHECKPOINT_H

#include <stdint.h>

struct store;
struct checkpointer;
struct metrics_out;

#define CHECKPOINT_PAGES 1000	   /* SQLite's own default threshold */
#define CHECKPOINT_MAX_PAGES 65536 /* 256 MiB of log at 4 KiB pages */

/*
 * Open a second connection to path (st's database) and start the thread;
 * from then on st's commits hand their checkpoints to it.  Call before
 * the writer starts.
 */
int checkpoint_start(struct store *st, const char *path,
		     struct checkpointer **ret);
/* Stop the thread (after the writer stopped) and close its connection. */
void checkpoint_stop(struct checkpointer *cp);

/* The metrics source: checkpoints run, pages copied, the log's length. */
void checkpoint_metrics(void *arg, struct metrics_out *out);

#endif
