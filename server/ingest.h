/*
 * Parsing and validation of an event batch from an agent.
 *
 * A batch is all or nothing: ingest_parse() either returns every event
 * validated, or an error naming the first offending place ("events[3].state:
 * 'bad' is not one of ok, warning, critical, unknown") and nothing at all.
 */
#ifndef TOCSIN_INGEST_H
#define TOCSIN_INGEST_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "../checks/check.h"

#define INGEST_CHECK_MAX 64
#define INGEST_ITEM_MAX 512
#define INGEST_SUMMARY_MAX 2048
#define INGEST_HOST_MAX 253
#define INGEST_METRICS_MAX 64
#define INGEST_CONTEXT_MAX (64 * 1024)
/* What freed arenas keep for later parses, at most (see ingest.c). */
#define INGEST_ARENA_POOL_BYTES (16 * 1024 * 1024)

struct ingest_event {
	uint8_t id[16];
	const char *check;   /* borrowed from the batch's JSON document */
	const char *item;
	const char *summary;
	enum check_state state;
	int64_t observed_ms;
	char *metrics;	     /* compact JSON text, the batch's */
	char *context;	     /* compact JSON text or NULL, the batch's */
};

struct ingest_arena;

/*
 * A parsed batch: the JSON document and the texts made from it live in
 * one arena of its own (see ingest.c), freed whole with the batch.
 */
struct ingest_batch {
	json_t *doc;
	const char *host;
	struct ingest_event *events;
	size_t nevents;
	struct ingest_arena *arena;
};

/*
 * Parse body (len bytes) into a batch of at most max_events events.
 * 0 and *ret_batch on success; -EINVAL with a message in err otherwise.
 */
int ingest_parse(const char *body, size_t len, size_t max_events,
		 struct ingest_batch **ret_batch, char *err, size_t errlen);
void ingest_batch_free(struct ingest_batch *batch);

/* The arenas' chunks: taken from the pool, newly allocated, kept now. */
struct ingest_arena_stats {
	uint64_t reused, allocated;
	size_t pooled_bytes;
};

void ingest_arena_get_stats(struct ingest_arena_stats *ret);

/* "3f2a...-..." -> 16 bytes; and back (buf of UUID_STR_LEN). */
int uuid_to_bytes(const char *text, uint8_t out[16]);
void uuid_from_bytes(const uint8_t in[16], char *buf);

#endif
