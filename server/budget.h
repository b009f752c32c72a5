/*
 * A byte budget shared by many threads: what queued work may hold in
 * memory at once.  The writer's queue is bounded by jobs; a job of an
 * agent batch also holds its parsed document, whose size the agent
 * chooses (up to http.max_body), so the ingest endpoint also takes the
 * bytes of each batch it queues from a budget (writer.max_queue_bytes)
 * and answers 503 when it is spent.
 */
#ifndef TOCSIN_BUDGET_H
#define TOCSIN_BUDGET_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>

struct budget {
	atomic_size_t used;
};

/* Take n bytes if used + n stays within limit: true, else false. */
bool budget_take(struct budget *b, size_t n, size_t limit);
/* Give back n bytes taken before. */
void budget_give(struct budget *b, size_t n);
size_t budget_used(struct budget *b);

#endif
