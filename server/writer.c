#include "writer.h"

#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <time.h>

#include "../common/util.h"
#include "store.h"

struct job {
	writer_fn fn;
	void *arg;
	writer_done_fn done; /* posted jobs; writer_run_then()'s callback */
	bool waited;	     /* writer_run(): the caller owns the job */
	bool finished;
	bool declined;	     /* the job called writer_refuse() */
	int result;
	struct job *next;
};

static int64_t time_mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Set by writer_refuse() while a job runs; jobs run on the writer thread only. */
static _Thread_local bool job_declined;

int writer_refuse(int r)
{
	job_declined = true;
	return r;
}

struct writer {
	struct store *st;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t work;	 /* jobs arrived, or stop */
	pthread_cond_t finished; /* a group finished, or room in the queue */
	struct job *head, *tail;
	size_t queued, max_queue, max_group;
	bool stopping;
	struct writer_stats stats;
};

/* Run one job under a savepoint; its failure undoes only its own work. */
static int run_job(struct store *st, struct job *j)
{
	int r = store_savepoint(st);

	if (r < 0)
		return r;
	job_declined = false;
	r = j->fn(st, j->arg);
	j->declined = r < 0 && job_declined;
	if (r < 0) {
		store_rollback_to_savepoint(st);
		return r;
	}
	return store_release_savepoint(st) < 0 ? -EIO : r;
}

/* Apply a group of jobs in one transaction; each gets its outcome. */
static void run_group(struct writer *w, struct job *group)
{
	int64_t asked = time_mono_ns();
	int r;

	/* Anyone else holding the store now holds up the whole group. */
	store_lock(w->st);
	asked = time_mono_ns() - asked;
	r = store_begin(w->st);
	for (struct job *j = group; j; j = j->next)
		j->result = r < 0 ? r : run_job(w->st, j);
	if (r == 0)
		r = store_commit(w->st);
	if (r < 0) {
		store_rollback(w->st);
		/* Nothing of the group is on disk: every job failed. */
		for (struct job *j = group; j; j = j->next)
			if (j->result >= 0)
				j->result = r;
	}
	store_unlock(w->st);

	pthread_mutex_lock(&w->lock);
	w->stats.lock_wait_ns += (uint64_t)asked;
	if (r == 0)
		w->stats.commits++;
	for (struct job *j = group; j; j = j->next) {
		w->stats.jobs++;
		if (j->result < 0 && j->declined)
			w->stats.declined++;
		else if (j->result < 0)
			w->stats.failed++;
	}
	pthread_mutex_unlock(&w->lock);
}

static void finish_group(struct writer *w, struct job *group)
{
	struct job *next;

	pthread_mutex_lock(&w->lock);
	for (struct job *j = group; j; j = next) {
		next = j->next;
		if (j->waited) {
			/* Its waiter cannot return before finished is set. */
			if (j->done) {
				pthread_mutex_unlock(&w->lock);
				j->done(j->arg, j->result);
				pthread_mutex_lock(&w->lock);
			}
			j->finished = true;
			continue;
		}
		/* done() may post again: do not hold the lock for it. */
		pthread_mutex_unlock(&w->lock);
		if (j->done)
			j->done(j->arg, j->result);
		free(j);
		pthread_mutex_lock(&w->lock);
	}
	pthread_cond_broadcast(&w->finished);
	pthread_mutex_unlock(&w->lock);
}

static void *writer_main(void *p)
{
	struct writer *w = p;

	/* Named for top, perf and the benchmark's CPU accounting. */
	pthread_setname_np(pthread_self(), "tocsin-writer");
	pthread_mutex_lock(&w->lock);
	for (;;) {
		struct job *group, *last;
		size_t n = 1;

		while (w->head == NULL && !w->stopping)
			pthread_cond_wait(&w->work, &w->lock);
		if (w->head == NULL)
			break;
		group = last = w->head;
		while (last->next && n < w->max_group) {
			last = last->next;
			n++;
		}
		w->head = last->next;
		if (w->head == NULL)
			w->tail = NULL;
		last->next = NULL;
		w->queued -= n;
		/* Room in the queue for writers waiting in writer_run(). */
		pthread_cond_broadcast(&w->finished);
		pthread_mutex_unlock(&w->lock);

		run_group(w, group);
		finish_group(w, group);
		pthread_mutex_lock(&w->lock);
	}
	pthread_mutex_unlock(&w->lock);
	return NULL;
}

int writer_start(struct store *st, size_t max_queue, size_t max_group,
		 struct writer **ret)
{
	struct writer *w = xcalloc(1, sizeof(*w));
	int r;

	w->st = st;
	w->max_queue = max_queue ? max_queue : 1;
	w->max_group = max_group ? max_group : 1;
	pthread_mutex_init(&w->lock, NULL);
	pthread_cond_init(&w->work, NULL);
	/* writer_run_timed() waits on it with a monotonic deadline. */
	cond_init_monotonic(&w->finished);
	r = pthread_create(&w->thread, NULL, writer_main, w);
	if (r != 0) {
		pthread_cond_destroy(&w->finished);
		pthread_cond_destroy(&w->work);
		pthread_mutex_destroy(&w->lock);
		free(w);
		return -r;
	}
	*ret = w;
	return 0;
}

void writer_stop(struct writer *w)
{
	if (w == NULL)
		return;
	pthread_mutex_lock(&w->lock);
	w->stopping = true;
	pthread_cond_signal(&w->work);
	pthread_mutex_unlock(&w->lock);
	pthread_join(w->thread, NULL);
	pthread_cond_destroy(&w->finished);
	pthread_cond_destroy(&w->work);
	pthread_mutex_destroy(&w->lock);
	free(w);
}

/* Append j; the caller holds the lock. */
static void enqueue(struct writer *w, struct job *j)
{
	if (w->tail)
		w->tail->next = j;
	else
		w->head = j;
	w->tail = j;
	w->queued++;
	pthread_cond_signal(&w->work);
}

/* Wait on w->finished until woken or deadline (NULL: no deadline). */
static int wait_finished(struct writer *w, const struct timespec *deadline)
{
	if (deadline == NULL)
		return pthread_cond_wait(&w->finished, &w->lock);
	return pthread_cond_timedwait(&w->finished, &w->lock, deadline);
}

int writer_run(struct writer *w, writer_fn fn, void *arg)
{
	return writer_run_timed(w, fn, arg, -1);
}

int writer_run_timed(struct writer *w, writer_fn fn, void *arg,
		     int64_t wait_ms)
{
	return writer_run_then(w, fn, NULL, arg, wait_ms);
}

int writer_run_then(struct writer *w, writer_fn fn, writer_done_fn then,
		    void *arg, int64_t wait_ms)
{
	struct job j = { .fn = fn, .arg = arg, .done = then, .waited = true };
	struct timespec deadline, *until = NULL;

	if (wait_ms >= 0) {
		deadline = time_mono_deadline(wait_ms);
		until = &deadline;
	}
	pthread_mutex_lock(&w->lock);
	while (w->queued >= w->max_queue && !w->stopping)
		if (wait_finished(w, until) == ETIMEDOUT)
			break;
	if (w->stopping || w->queued >= w->max_queue) {
		if (!w->stopping)
			w->stats.rejected++;
		pthread_mutex_unlock(&w->lock);
		return w->stopping ? -ESHUTDOWN : -EAGAIN;
	}
	enqueue(w, &j);
	while (!j.finished)
		pthread_cond_wait(&w->finished, &w->lock);
	pthread_mutex_unlock(&w->lock);
	return j.result;
}

int writer_post(struct writer *w, writer_fn fn, void *arg,
		writer_done_fn done)
{
	struct job *j;

	pthread_mutex_lock(&w->lock);
	if (w->stopping || w->queued >= w->max_queue) {
		w->stats.rejected++;
		pthread_mutex_unlock(&w->lock);
		return w->stopping ? -ESHUTDOWN : -EAGAIN;
	}
	j = xcalloc(1, sizeof(*j));
	*j = (struct job){ .fn = fn, .arg = arg, .done = done };
	enqueue(w, j);
	pthread_mutex_unlock(&w->lock);
	return 0;
}

void writer_get_stats(struct writer *w, struct writer_stats *ret)
{
	pthread_mutex_lock(&w->lock);
	*ret = w->stats;
	ret->queued = w->queued;
	pthread_mutex_unlock(&w->lock);
}
