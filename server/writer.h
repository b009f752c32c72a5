/*
 * The collector's single writer: every change to the store goes through
 * it, and changes submitted close together share one transaction and one
 * fsync (group commit).  This is what lets many agents, the trap listener
 * and the technicians write at once while each acknowledgement still means
 * "on disk".
 *
 * A job is a function that applies one change inside the open transaction
 * (it must not begin or commit itself).  Each job runs under its own
 * savepoint, so a job that fails is rolled back alone and the others in
 * its group commit.  writer_run() waits until the job's change is durable,
 * or failed, and returns the job's result; writer_post() queues a job
 * without waiting (traps, timers) and calls its done callback, if any, on
 * the writer thread once the outcome is known.
 */
#ifndef TOCSIN_WRITER_H
#define TOCSIN_WRITER_H

#include <stddef.h>
#include <stdint.h>

struct store;
struct writer;

/* Apply one change.  0 (or a positive count) on success, -errno to undo. */
typedef int (*writer_fn)(struct store *st, void *arg);
/* Told the outcome of a posted job: its result, or the commit's error. */
typedef void (*writer_done_fn)(void *arg, int result);

struct writer_stats {
	uint64_t jobs;	       /* jobs that ran */
	uint64_t failed;       /* jobs rolled back (their own error or the commit's) */
	uint64_t commits;      /* transactions committed */
	uint64_t rejected;     /* writer_post() or writer_run_timed() refused: queue full */
	size_t queued;	       /* waiting right now */
};

/*
 * Start the writer thread over st.  max_queue bounds the jobs waiting
 * (writer_post() beyond it returns -EAGAIN; writer_run() waits for room),
 * max_group the jobs sharing one transaction.
 */
int writer_start(struct store *st, size_t max_queue, size_t max_group,
		 struct writer **ret);
/* Run every job already queued, then stop the thread.  NULL is fine. */
void writer_stop(struct writer *w);

int writer_run(struct writer *w, writer_fn fn, void *arg);
/*
 * writer_run() for callers that must not wait long for room in the queue
 * (an HTTP thread): when it is still full after wait_ms (< 0: forever),
 * -EAGAIN, and the job was not queued (counted as refused).  Once queued,
 * the job is waited for as with writer_run().
 */
int writer_run_timed(struct writer *w, writer_fn fn, void *arg,
		     int64_t wait_ms);
int writer_post(struct writer *w, writer_fn fn, void *arg,
		writer_done_fn done);
void writer_get_stats(struct writer *w, struct writer_stats *ret);

#endif
