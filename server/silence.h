/*
 * Silences (maintenance windows): for a time, no new ticket for the
 * problems a silence covers, by host pattern and optionally check and
 * item patterns, with the author and a comment.
 *
 * A silence holds back only the opening of tickets.  Its events are
 * still stored; a ticket already open goes on receiving them; and a
 * problem that recovers during the silence still resolves its ticket
 * (Alertmanager forgets to).  A problem still there when the silence
 * ends (or is removed) is not forgotten: its ticket opens then.
 *
 * A silence is pending before its start, active until its end, and
 * expired afterwards or once removed; expired silences stay listed for
 * silences.keep_expired and are then deleted.
 */
#ifndef TOCSIN_SILENCE_H
#define TOCSIN_SILENCE_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/db.h"

struct store;
struct silences;
struct silence_config;

#define SILENCE_HOST_MAX 253
#define SILENCE_CHECK_MAX 64
#define SILENCE_ITEM_MAX 512
#define SILENCE_COMMENT_MAX 1024
/* Bounds a silence's start: maintenance is planned, but not for years. */
#define SILENCE_START_AHEAD_MAX_MS (365 * 24 * 3600 * 1000LL)

struct silence {
	int64_t id;
	char *host;  /* a shell pattern; check and item: patterns or NULL (any) */
	char *check;
	char *item;
	int64_t starts_ms;
	int64_t ends_ms;
	char *author;
	char *comment;
};

extern const struct db_schema silence_schema;

int silence_open(struct store *st, struct silences **ret);
void silence_close(struct silences *s);

/*
 * Validate a POST /api/v1/silences body received at now_ms into *ret
 * (author left NULL, owned strings: free with silence_clear()).  0, or
 * -EINVAL with a message naming the field and why in err.
 */
int silence_parse_request(json_t *body, int64_t now_ms,
			  const struct silence_config *conf,
			  struct silence *ret, char *err, size_t errlen);
void silence_clear(struct silence *s);

/*
 * Store a silence; *ret_id.  -EDQUOT when conf's max_silences are
 * active or pending already (not -ENOSPC: that is a full disk).
 */
int silence_create(struct silences *s, const struct silence *in,
		   int64_t now_ms, const struct silence_config *conf,
		   int64_t *ret_id);
/*
 * End silence id at now_ms on behalf of actor: 0, -ENOENT when there is
 * no such silence, -EALREADY when it has expired already.
 */
int silence_remove(struct silences *s, int64_t id, const char *actor,
		   int64_t now_ms);
/* Delete silences that expired before before_ms. */
int silence_purge(struct silences *s, int64_t before_ms);

/*
 * The active silence covering (host, check, item) at now_ms that lasts
 * longest: 1 with its id and end, 0 when none does.
 */
int silence_find(struct silences *s, const char *host, const char *check,
		 const char *item, int64_t now_ms, int64_t *ret_id,
		 int64_t *ret_ends_ms);
/*
 * Whether silence id, active at now_ms, covers (host, check, item): 1
 * and its end, or 0.  One read by id, for a problem the silence already
 * holds back (silence_find() reads every active silence).
 */
int silence_holds(struct silences *s, int64_t id, const char *host,
		  const char *check, const char *item, int64_t now_ms,
		  int64_t *ret_ends_ms);
/* What a silence covers: shell patterns, NULL for any check or item. */
struct silence_scope {
	const char *host;
	const char *check;
	const char *item;
};
/* Whether scope covers (host, check, item). */
bool silence_matches(const struct silence_scope *scope, const char *host,
		     const char *check, const char *item);

enum silence_filter {
	SILENCES_ALL,
	SILENCES_ACTIVE,
	SILENCES_PENDING,
	SILENCES_EXPIRED,
};
int silence_filter_parse(const char *text, enum silence_filter *ret);

/* The silences still listed at now_ms (newest first, up to limit). */
int silence_list_json(struct silences *s, enum silence_filter filter,
		      int64_t now_ms, int64_t keep_expired_ms, int64_t limit,
		      json_t **ret);
/* One silence as the API shows it; -ENOENT. */
int silence_get_json(struct silences *s, int64_t id, int64_t now_ms,
		     json_t **ret);
/* How many silences are active and pending at now_ms. */
int silence_counts(struct silences *s, int64_t now_ms, int64_t *ret_active,
		   int64_t *ret_pending);

#endif
