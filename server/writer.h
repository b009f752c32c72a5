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
	uint64_t failed;       /* jobs rolled back by an error (their own or the commit's) */
	uint64_t declined;     /* jobs that refused their change (writer_refuse()) */
	uint64_t commits;      /* transactions committed */
	uint64_t rejected;     /* writer_post() or writer_run_timed() refused: queue full */
	uint64_t lock_wait_ns; /* waiting for store_lock() (readers holding it) */
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
/*
 * writer_run_timed() with a callback: then(arg, result) runs on the writer
 * thread as soon as the job's outcome is known, before this returns, in
 * the order the jobs committed (the same order as every posted job's done
 * callback).  For state kept beside the store that must follow the
 * commits in their order, such as the credentials' in-memory index: two
 * changes racing on HTTP threads then cannot be applied the wrong way
 * round.  then must be quick and must not wait for the writer.  A job
 * that was never queued (-EAGAIN, -ESHUTDOWN) gets no callback.
 */
int writer_run_then(struct writer *w, writer_fn fn, writer_done_fn then,
		    void *arg, int64_t wait_ms);
int writer_post(struct writer *w, writer_fn fn, void *arg,
		writer_done_fn done);

/*
 * For a job that refuses its change for a reason of its own (a conflict,
 * a limit, an unknown id), not because the store failed: returns r (a
 * negative errno) and marks the running job as declined, so that
 * /metrics counts it apart from the store's failures.  Only from a job,
 * on the writer thread.
 */
int writer_refuse(int r);
void writer_get_stats(struct writer *w, struct writer_stats *ret);

#endif
