/*
 * Console sessions: what a login trades a name and password for.
 *
 * A session is a secret of 32 random bytes sent as the cookie
 * tocsin_session (HttpOnly, SameSite=Strict, Secure over TLS), of which
 * the collector keeps only a BLAKE2b hash, with the account's name and
 * permissions, a CSRF token and two deadlines: idle (since the last
 * request) and absolute (since the login).  A request that changes
 * something with a session must carry the CSRF token in the header
 * X-Tocsin-CSRF, or it is refused 403: another site's page can make the
 * browser send the cookie, but cannot read the token.
 *
 * Sessions are kept in memory, where each request checks them, and in
 * the store (table console_sessions: the cookie's hash, never the
 * cookie; the account, its permissions, the CSRF token, the login and
 * last-seen times), so that a restart of the collector keeps them.  The
 * store hears of a request only when the last-seen time it has is older
 * than session_touch_ms() (a minute at most): a restart may bring a
 * session back with that much less of its idle time.  A login, a logout
 * and an account's change reach the store through the writer before
 * they are answered; at start the sessions that expired, or whose
 * account is gone or changed (password or role) since their login, are
 * purged, not restored.
 *
 * Failed logins are counted per name and per client network (an IPv4
 * address, an IPv6 /64) over a window; past the limit, logins are
 * refused (429) until it ends.  Names that are no account are counted
 * like accounts, in a table of their own (bounded, the stalest
 * non-blocking counter recycled), so that made-up names cannot push out
 * the counters of real accounts (bounded by ACCOUNTS_MAX).
 */
#ifndef TOCSIN_SESSION_H
#define TOCSIN_SESSION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../common/db.h"
#include "http.h"

struct account_stamp;
struct accounts;
struct actor;
struct cfg;
struct cfg_node;
struct sessions;
struct store;
struct writer;

extern const struct db_schema session_schema;

/* The console: section's defaults (struct console_config: server.h). */
void console_config_defaults(struct console_config *conf);
/* node may be NULL (no console: section). */
void console_config_parse(struct cfg *cfg, const struct cfg_node *node,
			  struct console_config *conf);

/* The base64url text of 32 bytes, and its NUL. */
#define SESSION_SECRET_LEN 44

struct session_issued {
	char secret[SESSION_SECRET_LEN]; /* the cookie's value */
	char csrf[SESSION_SECRET_LEN];
	int64_t idle_expires_ms, expires_ms;
};

/* Sessions in memory only, which a restart forgets. */
int sessions_new(struct sessions **ret);
/*
 * Sessions kept in st too (after its migrations, the accounts' among
 * them): purge what is no longer valid at now_ms under conf, and restore
 * the rest, the most recently seen max_sessions of them.  Logins are
 * checked against accounts (opened on st).  0 or -errno.
 */
int sessions_open(struct store *st, struct accounts *accounts,
		  const struct console_config *conf, int64_t now_ms,
		  struct sessions **ret);
/* Changes go through w from then on (it starts after sessions_open()). */
void sessions_attach_writer(struct sessions *s, struct writer *w);
/* After the HTTP server stopped and the writer drained.  NULL is fine. */
void sessions_free(struct sessions *s);

/*
 * How stale the store's last-seen time of a session may grow: a quarter
 * of the idle limit, at most a minute.
 */
int64_t session_touch_ms(const struct console_config *conf);

/*
 * A new session for name with perms, under conf's limits (the idlest
 * goes beyond max_sessions, in the same transaction): 0 and *ret once
 * it is in the store, or -ESTALE when the account is no longer the one
 * of stamp (account_verify()'s: changed or deleted since its password
 * was checked), -EAGAIN (the writer is busy), -ESHUTDOWN or the store's
 * error, and no session, nor any session ended for it.  stamp NULL:
 * the account is not checked (sessions in memory only, sessions_new(),
 * never check it).
 */
int session_create(struct sessions *s, const struct console_config *conf,
		   const char *name, unsigned perms,
		   const struct account_stamp *stamp, int64_t now_ms,
		   struct session_issued *ret);

/*
 * The session of cookie, for a request at now_ms: 0 and *ret (with
 * ret->session_id set), -EACCES with ret->denied when it is unknown or
 * expired, -EPERM with ret->denied when state_changing and csrf (the
 * header, or NULL) does not match.  A request that is let through
 * renews the idle deadline.
 */
int session_authenticate(struct sessions *s, const struct console_config *conf,
			 const char *cookie, const char *csrf,
			 bool state_changing, int64_t now_ms,
			 struct principal *ret);

/*
 * The actor of a request p authenticated (its session's account and
 * stamp, or a token's name only, unchecked), for the changes it makes
 * with an admin's or a technician's authority.  *ret points into p.
 */
void session_actor(struct sessions *s, const struct principal *p,
		   struct actor *ret);
/*
 * Inside a writer job, before a change made by actor: 0 when it has no
 * session (a token) or its session's account is still the one of its
 * login and the session is open; -ESTALE (declined: writer_refuse())
 * when the account changed or was deleted since, even by a job ahead in
 * the same transaction, -EKEYREVOKED when the session ended (no store
 * error is that), or the store's
 * error.  The messages a client gets for them:
 */
int session_check_actor(const struct actor *actor);
#define SESSION_ACTOR_CHANGED \
	"your account changed while this request ran; log in again"
#define SESSION_ACTOR_ENDED \
	"your session ended while this request ran; log in again"

/* The CSRF token and deadlines of session id (no secret): 0, or -ENOENT. */
int session_get(struct sessions *s, const struct console_config *conf,
		int64_t id, struct session_issued *ret);
/*
 * End session id (a logout), in the store first: 0, -ENOENT, or the
 * writer's error (-EAGAIN, -EIO...), and the session goes on.
 */
int session_delete(struct sessions *s, int64_t id);
/*
 * End every session of account name (deleted, or a new password or
 * role) at once: how many.  Their rows are deleted from the store too;
 * should that fail, the next start does not restore them either (their
 * account is gone, or changed after their login).
 */
size_t session_delete_account(struct sessions *s, const char *name);
size_t session_count(struct sessions *s);

/* What logins and session requests came to since start, for /metrics. */
struct session_stats {
	uint64_t logins, failed, blocked; /* logins by outcome */
	uint64_t csrf_refused;		  /* requests refused 403 for CSRF */
	uint64_t expired;		  /* requests with an ended session */
	size_t active;
	/* Failed-login counters within their window, by table. */
	size_t counting_accounts, counting_unknown, counting_networks;
};
void session_get_stats(struct sessions *s, const struct console_config *conf,
		       int64_t now_ms, struct session_stats *ret);
/* Count a login that a limit refused (session_login_blocked() > 0). */
void session_count_blocked(struct sessions *s);

/*
 * Before checking a password: 0 when name and address may try, or the
 * seconds until they may (> 0) when either failed login_failures times
 * within the window.  Whether name is an account does not matter here.
 */
int session_login_blocked(struct sessions *s, const struct console_config *conf,
			  const char *name, const char *address, int64_t now_ms);
/*
 * Count a failed login of name (known: an account's, whose password did
 * not match) from address (numeric, as http_client_address() gives it).
 */
void session_login_failed(struct sessions *s, const struct console_config *conf,
			  const char *name, bool known, const char *address,
			  int64_t now_ms);
/* A successful login of name forgets the account's failures. */
void session_login_succeeded(struct sessions *s, const char *name);

#endif
