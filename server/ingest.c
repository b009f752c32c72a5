#include "ingest.h"

#include <errno.h>
#include <pthread.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/utf8.h"
#include "../common/util.h"

/*
 * A hex digit's value plus one (0: not a digit), by byte: the branches
 * of range tests mispredict on random digits, about one per digit
 * (uuid_valid() and then the conversion were 1.8% of the server's CPU).
 */
static const uint8_t hex_plus_one[256] = {
	['0'] = 1,  ['1'] = 2,	['2'] = 3,  ['3'] = 4,	['4'] = 5,
	['5'] = 6,  ['6'] = 7,	['7'] = 8,  ['8'] = 9,	['9'] = 10,
	['a'] = 11, ['b'] = 12, ['c'] = 13, ['d'] = 14, ['e'] = 15,
	['f'] = 16, ['A'] = 11, ['B'] = 12, ['C'] = 13, ['D'] = 14,
	['E'] = 15, ['F'] = 16,
};

/*
 * The canonical 8-4-4-4-12 form, either case, in one pass from the left
 * (which stops at the first byte that does not fit, the NUL included).
 */
int uuid_to_bytes(const char *text, uint8_t out[16])
{
	/* Where each byte's two digits start; a dash before bytes 4, 6, 8, 10. */
	static const uint8_t at[16] = { 0,  2,  4,  6,  9,  11, 14, 16,
					19, 21, 24, 26, 28, 30, 32, 34 };
	uint8_t bytes[16];

	for (size_t j = 0; j < 16; j++) {
		const unsigned char *p = (const unsigned char *)text + at[j];
		unsigned hi, lo;

		if ((j == 4 || j == 6 || j == 8 || j == 10) && p[-1] != '-')
			return -EINVAL;
		hi = hex_plus_one[p[0]];
		if (hi == 0)
			return -EINVAL;
		lo = hex_plus_one[p[1]];
		if (lo == 0)
			return -EINVAL;
		bytes[j] = (uint8_t)((hi - 1) << 4 | (lo - 1));
	}
	if (text[36] != '\0')
		return -EINVAL;
	memcpy(out, bytes, sizeof(bytes));
	return 0;
}

void uuid_from_bytes(const uint8_t in[16], char *buf)
{
	snprintf(buf, UUID_STR_LEN,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-"
		 "%02x%02x%02x%02x%02x%02x",
		 in[0], in[1], in[2], in[3], in[4], in[5], in[6], in[7], in[8],
		 in[9], in[10], in[11], in[12], in[13], in[14], in[15]);
}

/*
 * A batch's JSON document is thousands of small allocations made on one
 * HTTP thread and freed together later: jansson's allocator hook puts
 * them in a bump arena while ingest_parse() runs on the thread (and only
 * then), and the batch frees the arena whole instead of the tree piece by
 * piece.  Allocations outside a parse, on any thread, are malloc()'s as
 * before, so everything else may keep freeing jansson's results with
 * free().  Measured: malloc and free were a third of the HTTP threads'
 * time.  The arena grows with the document (about eight times the body),
 * so the body limit bounds it.
 *
 * Freed chunks go to a small pool shared by the threads (at most
 * INGEST_ARENA_POOL_BYTES in all, none larger than ARENA_POOL_CHUNK_MAX)
 * and the next parse takes one back: malloc() handed each parse freshly
 * mapped memory, and the kernel's zeroing of its pages on first touch
 * was a tenth of the server's CPU.  Chunk sizes are rounded up to
 * ARENA_GRAIN, so that batches of about the same size fit each other's.
 * The pool stays allocated once filled: up to 16 MiB of resident memory.
 */
#define ARENA_GRAIN (64 * 1024)
#define ARENA_POOL_CHUNK_MAX (4 * 1024 * 1024)

struct arena_chunk {
	struct arena_chunk *next;
	size_t used, size;
	max_align_t data[]; /* size bytes */
};

struct ingest_arena {
	struct arena_chunk *chunks;
	size_t next_size;
};

static struct {
	pthread_mutex_t lock;
	struct arena_chunk *chunks;
	size_t bytes;
	struct ingest_arena_stats stats;
} pool = { .lock = PTHREAD_MUTEX_INITIALIZER };

static _Thread_local struct ingest_arena *parsing;

/* Under AddressSanitizer a pooled chunk stays off limits until taken back. */
#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#define pool_poison(c) ASAN_POISON_MEMORY_REGION((c)->data, (c)->size)
#define pool_unpoison(c) ASAN_UNPOISON_MEMORY_REGION((c)->data, (c)->size)
#else
#define pool_poison(c) ((void)(c))
#define pool_unpoison(c) ((void)(c))
#endif

/* A pooled chunk of at least size bytes, or NULL. */
static struct arena_chunk *pool_take(size_t size)
{
	struct arena_chunk **pp, *c = NULL;

	pthread_mutex_lock(&pool.lock);
	for (pp = &pool.chunks; *pp; pp = &(*pp)->next) {
		if ((*pp)->size >= size) {
			c = *pp;
			*pp = c->next;
			pool.bytes -= c->size;
			break;
		}
	}
	if (c != NULL) {
		pool_unpoison(c);
		pool.stats.reused++;
	} else {
		pool.stats.allocated++;
	}
	pthread_mutex_unlock(&pool.lock);
	return c;
}

/* Keep c for a later parse if the pool has room, else free it. */
static void pool_give(struct arena_chunk *c)
{
	pthread_mutex_lock(&pool.lock);
	if (c->size <= ARENA_POOL_CHUNK_MAX &&
	    pool.bytes + c->size <= INGEST_ARENA_POOL_BYTES) {
		c->next = pool.chunks;
		pool.chunks = c;
		pool.bytes += c->size;
		pool_poison(c);
		c = NULL;
	}
	pthread_mutex_unlock(&pool.lock);
	free(c);
}

void ingest_arena_get_stats(struct ingest_arena_stats *ret)
{
	pthread_mutex_lock(&pool.lock);
	*ret = pool.stats;
	ret->pooled_bytes = pool.bytes;
	pthread_mutex_unlock(&pool.lock);
}

static void *arena_alloc(struct ingest_arena *a, size_t size)
{
	struct arena_chunk *c = a->chunks;
	size_t need = (size + sizeof(max_align_t) - 1) & ~(sizeof(max_align_t) - 1);

	if (c == NULL || c->size - c->used < need) {
		size_t chunk = a->next_size > need ? a->next_size : need;

		if (chunk > SIZE_MAX / 2 - ARENA_GRAIN)
			return NULL;
		chunk = (chunk + ARENA_GRAIN - 1) / ARENA_GRAIN * ARENA_GRAIN;
		c = pool_take(chunk);
		if (c == NULL) {
			c = malloc(sizeof(*c) + chunk);
			if (c == NULL)
				return NULL;
			c->size = chunk;
		}
		c->next = a->chunks;
		c->used = 0;
		a->chunks = c;
		a->next_size = chunk * 2;
	}
	c->used += need;
	return (char *)c->data + c->used - need;
}

static void *jansson_malloc(size_t size)
{
	return parsing ? arena_alloc(parsing, size) : malloc(size);
}

static void jansson_free(void *p)
{
	/* Within a parse only the parse's own memory is freed: the arena's. */
	if (parsing == NULL)
		free(p);
}

static void install_allocator(void)
{
	json_set_alloc_funcs(jansson_malloc, jansson_free);
}

static void arena_free(struct ingest_arena *a)
{
	struct arena_chunk *next;

	if (a == NULL)
		return;
	for (struct arena_chunk *c = a->chunks; c; c = next) {
		next = c->next;
		pool_give(c);
	}
	free(a);
}

/* A copy of text in the arena being parsed into. */
static char *arena_strdup(const char *text, size_t len)
{
	char *copy = jansson_malloc(len + 1);

	if (copy != NULL) {
		memcpy(copy, text, len);
		copy[len] = '\0';
	}
	return copy;
}

void ingest_batch_free(struct ingest_batch *batch)
{
	if (batch == NULL)
		return;
	free(batch->events);
	/* The document, metrics and contexts are all in the arena. */
	arena_free(batch->arena);
	free(batch);
}

static bool has_control_chars(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return true;
	return false;
}

/*
 * Free text an agent sends (the summary) with its control characters
 * made harmless under the project's policy (utf8.h: '?', tabs and line
 * breaks kept), so that an escape sequence never reaches a technician's
 * terminal through the CLI, and nothing is refused for it.  The len
 * bytes of s themselves when they have none (the common case), else a
 * copy in the arena (a NUL among them becomes '?' too).
 */
static const char *harmless_text(const char *s, size_t len)
{
	char *copy;

	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)s[i];

		if ((ch < 0x20 && ch != '\t' && ch != '\n') || ch == 0x7f)
			goto sanitize;
	}
	return s;
sanitize:
	copy = jansson_malloc(len + 1);
	if (copy == NULL)
		return NULL;
	utf8_sanitize(copy, len + 1, s, len, UTF8_KEEP_NEWLINES);
	return copy;
}

/* 10000-01-01T00:00:00Z: the first time RFC 3339 cannot write. */
#define OBSERVED_END_MS 253402300800000LL

static bool valid_check_name(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		      *s == '_' || *s == '-' || *s == '.'))
			return false;
	return true;
}

/*
 * An event's fields, found in one pass over its members: a lookup by
 * name hashes the name and searches the table once per field, and
 * jansson has just built that table from the same members.
 */
struct event_fields {
	json_t *id, *check, *item, *state, *summary, *observed_at, *metrics,
		*context;
};

static void find_fields(json_t *ev, struct event_fields *ret)
{
	static const struct {
		const char *name;
		size_t len, offset;
	} known[] = {
#define FIELD(f) { #f, sizeof(#f) - 1, offsetof(struct event_fields, f) }
		FIELD(id), FIELD(check), FIELD(item), FIELD(state),
		FIELD(summary), FIELD(observed_at), FIELD(metrics),
		FIELD(context),
#undef FIELD
	};

	*ret = (struct event_fields){ 0 };
	for (void *it = json_object_iter(ev); it;
	     it = json_object_iter_next(ev, it)) {
		const char *key = json_object_iter_key(it);
		size_t len = json_object_iter_key_len(it);

		for (size_t i = 0; i < ARRAY_SIZE(known); i++) {
			if (len == known[i].len &&
			    memcmp(key, known[i].name, len) == 0) {
				*(json_t **)((char *)ret + known[i].offset) =
					json_object_iter_value(it);
				break;
			}
		}
	}
}

/*
 * The string of field key (v, NULL when missing), at most max bytes;
 * NULL after an error.
 */
static const char *get_string(json_t *v, const char *key, size_t max,
			      size_t idx, char *err, size_t errlen)
{
	const char *s;

	if (v == NULL) {
		snprintf(err, errlen, "events[%zu].%s: missing", idx, key);
		return NULL;
	}
	if (!json_is_string(v)) {
		snprintf(err, errlen, "events[%zu].%s: must be a string", idx,
			 key);
		return NULL;
	}
	s = json_string_value(v);
	if (strlen(s) != json_string_length(v)) {
		snprintf(err, errlen, "events[%zu].%s: contains a NUL byte",
			 idx, key);
		return NULL;
	}
	if (json_string_length(v) > max) {
		snprintf(err, errlen,
			 "events[%zu].%s: longer than %zu bytes", idx, key,
			 max);
		return NULL;
	}
	return s;
}

/*
 * v as compact JSON text in the arena: through a stack buffer when it
 * fits (json_dumpb() allocates nothing), else json_dumps().
 */
static int dump_compact(const json_t *v, char **ret)
{
	const size_t flags = JSON_COMPACT | JSON_REAL_PRECISION(15);
	char buf[1024];
	size_t len = json_dumpb(v, buf, sizeof(buf), flags);

	if (len == 0)
		return -ENOMEM;
	*ret = len <= sizeof(buf) ? arena_strdup(buf, len) : json_dumps(v, flags);
	return *ret ? 0 : -ENOMEM;
}

static int parse_metrics(json_t *m, size_t idx, struct ingest_event *out,
			 char *err, size_t errlen)
{
	if (m == NULL || json_is_null(m)) {
		out->metrics = arena_strdup("{}", 2);
		return out->metrics ? 0 : -ENOMEM;
	}
	if (!json_is_object(m)) {
		snprintf(err, errlen, "events[%zu].metrics: must be an object",
			 idx);
		return -EINVAL;
	}
	if (json_object_size(m) > INGEST_METRICS_MAX) {
		snprintf(err, errlen,
			 "events[%zu].metrics: more than %d metrics", idx,
			 INGEST_METRICS_MAX);
		return -EINVAL;
	}
	for (void *it = json_object_iter(m); it;
	     it = json_object_iter_next(m, it)) {
		if (!json_is_number(json_object_iter_value(it))) {
			snprintf(err, errlen,
				 "events[%zu].metrics.%.64s: must be a number",
				 idx, json_object_iter_key(it));
			return -EINVAL;
		}
	}
	return dump_compact(m, &out->metrics);
}

/*
 * The context's strings (a failed unit's journal lines, ...) made
 * harmless as the summary is; 0 or -ENOMEM.  jansson's parser bounds the
 * depth of the recursion.
 */
static int harmless_context(json_t *v)
{
	const char *key, *text;
	json_t *member;
	size_t i;

	if (json_is_string(v)) {
		size_t len = json_string_length(v);

		text = harmless_text(json_string_value(v), len);
		if (text == NULL)
			return -ENOMEM;
		return text == json_string_value(v) ? 0
						    : json_string_setn(v, text, len);
	}
	json_object_foreach(v, key, member)
		if (harmless_context(member) < 0)
			return -ENOMEM;
	json_array_foreach(v, i, member)
		if (harmless_context(member) < 0)
			return -ENOMEM;
	return 0;
}

static int parse_context(json_t *c, size_t idx, struct ingest_event *out,
			 char *err, size_t errlen)
{
	if (c == NULL || json_is_null(c))
		return 0;
	if (!json_is_object(c)) {
		snprintf(err, errlen, "events[%zu].context: must be an object",
			 idx);
		return -EINVAL;
	}
	if (harmless_context(c) < 0 || dump_compact(c, &out->context) < 0)
		return -ENOMEM;
	if (strlen(out->context) > INGEST_CONTEXT_MAX) {
		snprintf(err, errlen,
			 "events[%zu].context: larger than %d bytes", idx,
			 INGEST_CONTEXT_MAX);
		return -EINVAL;
	}
	return 0;
}

static int parse_event(json_t *ev, size_t idx, struct ingest_event *out,
		       char *err, size_t errlen)
{
	const char *id, *state, *observed;
	struct event_fields f;

	if (!json_is_object(ev)) {
		snprintf(err, errlen, "events[%zu]: must be an object", idx);
		return -EINVAL;
	}
	find_fields(ev, &f);
	id = get_string(f.id, "id", 36, idx, err, errlen);
	if (id == NULL)
		return -EINVAL;
	if (uuid_to_bytes(id, out->id) < 0) {
		snprintf(err, errlen, "events[%zu].id: '%s' is not a UUID",
			 idx, id);
		return -EINVAL;
	}
	out->check = get_string(f.check, "check", INGEST_CHECK_MAX, idx, err,
				errlen);
	if (out->check == NULL)
		return -EINVAL;
	if (!valid_check_name(out->check)) {
		snprintf(err, errlen,
			 "events[%zu].check: '%s' may only contain a-z, 0-9, '_', '-' and '.'",
			 idx, out->check);
		return -EINVAL;
	}
	out->item = get_string(f.item, "item", INGEST_ITEM_MAX, idx, err, errlen);
	if (out->item == NULL)
		return -EINVAL;
	if (has_control_chars(out->item)) {
		snprintf(err, errlen,
			 "events[%zu].item: contains control characters", idx);
		return -EINVAL;
	}
	state = get_string(f.state, "state", 16, idx, err, errlen);
	if (state == NULL)
		return -EINVAL;
	if (check_state_parse(state, &out->state) < 0) {
		snprintf(err, errlen,
			 "events[%zu].state: '%s' is not one of ok, warning, critical, unknown",
			 idx, state);
		return -EINVAL;
	}
	out->summary = get_string(f.summary, "summary", INGEST_SUMMARY_MAX, idx,
				  err, errlen);
	if (out->summary == NULL)
		return -EINVAL;
	out->summary = harmless_text(out->summary, strlen(out->summary));
	if (out->summary == NULL) {
		snprintf(err, errlen, "events[%zu].summary: out of memory", idx);
		return -ENOMEM;
	}
	observed = get_string(f.observed_at, "observed_at", 40, idx, err, errlen);
	if (observed == NULL)
		return -EINVAL;
	if (time_parse_rfc3339(observed, &out->observed_ms) < 0) {
		snprintf(err, errlen,
			 "events[%zu].observed_at: '%s' is not an RFC 3339 time",
			 idx, observed);
		return -EINVAL;
	}
	/*
	 * No clock says a time before 1970, and beyond 9999 a time has no
	 * RFC 3339 form to be shown in ("-001-12-31T..." for year 0 with an
	 * offset): such a time is made up, not late or fast.
	 */
	if (out->observed_ms < 0 || out->observed_ms >= OBSERVED_END_MS) {
		snprintf(err, errlen,
			 "events[%zu].observed_at: '%s' is not between 1970 and 9999 (UTC)",
			 idx, observed);
		return -EINVAL;
	}
	if (parse_metrics(f.metrics, idx, out, err, errlen) < 0)
		return -EINVAL;
	return parse_context(f.context, idx, out, err, errlen);
}

static int parse_batch(const char *body, size_t len, size_t max_events,
		       struct ingest_batch *b, char *err, size_t errlen);

int ingest_parse(const char *body, size_t len, size_t max_events,
		 struct ingest_batch **ret_batch, char *err, size_t errlen)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	struct ingest_batch *b = xcalloc(1, sizeof(*b));
	int r;

	pthread_once(&once, install_allocator);
	b->arena = xcalloc(1, sizeof(*b->arena));
	b->arena->next_size = 8 * len + 4096;
	parsing = b->arena;
	r = parse_batch(body, len, max_events, b, err, errlen);
	parsing = NULL;
	if (r < 0) {
		ingest_batch_free(b);
		return r;
	}
	*ret_batch = b;
	return 0;
}

/* ingest_parse() with the arena in place: 0, or -EINVAL and err. */
static int parse_batch(const char *body, size_t len, size_t max_events,
		       struct ingest_batch *b, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *host, *events;
	size_t n;

	b->doc = json_loadb(body, len, JSON_REJECT_DUPLICATES, &jerr);
	if (b->doc == NULL) {
		snprintf(err, errlen,
			 "invalid JSON at line %d, column %d (byte %d): %s",
			 jerr.line, jerr.column, jerr.position, jerr.text);
		goto fail;
	}
	if (!json_is_object(b->doc)) {
		snprintf(err, errlen, "the body must be a JSON object");
		goto fail;
	}
	host = json_object_get(b->doc, "host");
	if (!json_is_string(host) || json_string_length(host) == 0 ||
	    json_string_length(host) > INGEST_HOST_MAX ||
	    strlen(json_string_value(host)) != json_string_length(host) ||
	    has_control_chars(json_string_value(host))) {
		snprintf(err, errlen,
			 host ? "host: must be a host name of 1 to %d printable characters"
			      : "host: missing",
			 INGEST_HOST_MAX);
		goto fail;
	}
	b->host = json_string_value(host);
	events = json_object_get(b->doc, "events");
	if (!json_is_array(events)) {
		snprintf(err, errlen,
			 events ? "events: must be an array" : "events: missing");
		goto fail;
	}
	n = json_array_size(events);
	if (n > max_events) {
		snprintf(err, errlen,
			 "events: %zu events in one batch, the limit is %zu",
			 n, max_events);
		goto fail;
	}
	b->events = xcalloc(n ? n : 1, sizeof(*b->events));
	for (size_t i = 0; i < n; i++) {
		b->nevents = i + 1;
		if (parse_event(json_array_get(events, i), i, &b->events[i],
				err, errlen) < 0)
			return -EINVAL;
	}
	return 0;
fail:
	return -EINVAL;
}
