/*
 * The lifecycle state of each problem key (host, check, item), kept in
 * the collector's database so that a restart loses no count: how many
 * non-ok results in a row are still unconfirmed, which silence holds a
 * problem back, when its state last changed between ok and not ok (for
 * flap detection), which ticket it last had, and when a timer must look
 * at it again (confirm_for, the end of a silence, flapping calming down).
 *
 * A row exists only for keys that were not ok at some time, and it is
 * written only when something in it changes: a repeat of the same state
 * costs one indexed read.
 */
#ifndef TOCSIN_PROBLEM_H
#define TOCSIN_PROBLEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../checks/check.h"
#include "../common/db.h"
#include "flap.h"

struct store;
struct problems;

enum problem_phase {
	PROBLEM_OK,	  /* nothing pending */
	PROBLEM_PENDING,  /* not ok, but not confirmed yet: no ticket */
	PROBLEM_SILENCED, /* confirmed, held back by a silence: no ticket */
	PROBLEM_OPEN,	  /* confirmed: the key has (or had) its ticket */
};

/* Pending events linked to the ticket once the problem is confirmed. */
#define PROBLEM_PENDING_MAX 64

struct problem {
	enum problem_phase phase;
	enum check_state state; /* the latest state recorded */
	int64_t last_ms;	/* when it was observed */
	int64_t since_ms;	/* the current non-ok stretch began: when its
				 * first result was received (timers count
				 * from it) */
	int64_t first_ms;	/* ... and when that result was observed */
	int64_t streak;		/* non-ok results in that stretch */
	char *summary;		/* the latest non-ok summary, owned */
	uint8_t pending[PROBLEM_PENDING_MAX][16];
	size_t npending;
	struct flap_history changes;
	bool flapping;
	int64_t silence_id; /* PROBLEM_SILENCED: the silence holding it */
	int64_t ticket_id;  /* the key's latest ticket, 0 none */
	char prior_status[16]; /* the ticket's status before it recovered */
	int64_t due_ms;	       /* 0: no timer */
};

struct problem_key {
	int64_t host_id;
	char *host; /* owned, like check and item */
	char *check;
	char *item;
};

extern const struct db_schema problem_schema;

int problem_open(struct store *st, struct problems **ret);
void problem_close(struct problems *ps);

/*
 * Whether the key may have a row: false means it certainly has none, so
 * an ok result for a key without a ticket needs no read at all (the
 * common case).  An in-memory map of the keys with a row, loaded at
 * problem_open() and grown by problem_save().
 */
bool problem_may_exist(struct problems *ps, int64_t host_id,
		       const char *check, const char *item);
/*
 * Whether an ok result for the key changes nothing in its row: true when
 * it has none, or its row is ok and not flapping.  Exact (full keys in
 * memory, marks taken back when a job fails), so the writer skips the
 * read for the common case of an ok key that was once a problem.
 */
bool problem_quiet(struct problems *ps, int64_t host_id, const char *check,
		   const char *item);
/*
 * How many keys of the host problem_may_exist() knows: its rows, and
 * keys whose row a failed job took back (a cap may count those).
 */
size_t problem_host_keys(struct problems *ps, int64_t host_id);
/*
 * Mark whether the host's latest batch was refused for its number of
 * keys; returns the mark it had (so that a streak of refusals is logged
 * once).
 */
bool problem_host_refusing(struct problems *ps, int64_t host_id,
			   bool refusing);
/* 1 and *ret, or 0 and *ret as a key that was never a problem. */
int problem_load(struct problems *ps, int64_t host_id, const char *check,
		 const char *item, struct problem *ret);
int problem_save(struct problems *ps, int64_t host_id, const char *check,
		 const char *item, const struct problem *p);
/* Free what a loaded problem owns (its summary); NULL is fine. */
void problem_clear(struct problem *p);
void problem_set_summary(struct problem *p, const char *summary);
/* Remember an event of the pending stretch (the oldest go beyond the max). */
void problem_add_pending(struct problem *p, const uint8_t id[16]);

/*
 * Up to max keys whose timer is due at now_ms, earliest first, into
 * ret_keys (caller frees with problem_keys_free()); returns the count.
 */
int problem_due(struct problems *ps, int64_t now_ms, struct problem_key *ret_keys,
		size_t max);
void problem_keys_free(struct problem_key *keys, size_t n);
/* A silence was removed: look at the problems it held back at now_ms. */
int problem_silence_ended(struct problems *ps, int64_t silence_id,
			  int64_t now_ms);
/*
 * A technician resolved or closed ticket_id, the key's latest ticket: the
 * status it had before the problem went away no longer holds, and a
 * recurrence reopens it as new.  Nothing when the key has another ticket.
 */
int problem_forget_prior_status(struct problems *ps, const char *host,
				const char *check, const char *item,
				int64_t ticket_id);
/* How many problems wait unconfirmed and how many behind a silence. */
int problem_counts(struct problems *ps, int64_t *ret_pending,
		   int64_t *ret_silenced);

const char *problem_phase_name(enum problem_phase phase);

#endif
