/*
 * The collector's HTTP front: libmicrohttpd, a route table, bearer-token
 * authentication and bounded request bodies.
 *
 * http.c knows nothing about tickets: it authenticates, enforces the body
 * limit, finds the route and hands a complete request to its handler,
 * whose http_response it serialises.  Every refusal is a JSON
 * {"error": "..."} with the right 4xx status.
 */
#ifndef TOCSIN_HTTP_H
#define TOCSIN_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "server.h"

struct MHD_Connection;

/* Who a request comes from, once its bearer token is recognised. */
struct principal {
	char name[64];
	unsigned perms;	    /* enum permission bits */
	char host[256];	    /* set for a per-host agent credential */
	char customer[64];  /* set for credentials bound to a customer */
	int64_t credential_id; /* the per-host credential or enrollment token */
	char denied[192];   /* see http_authenticator */
	int64_t session_id; /* a console session's (session.h); 0 for tokens */
	int64_t account_generation; /* its account's at login (account.h) */
};

/*
 * Recognise a presented secret: 0 and *ret filled, or -EACCES.  Runs on
 * the HTTP worker threads, so it must be thread-safe.  A secret that is
 * known but refused (a revoked credential, an expired enrollment token)
 * is -EACCES with the reason in ret->denied, which becomes the 401's
 * message; the rest of *ret is then meaningless.
 */
typedef int (*http_authenticator)(void *app, const char *secret,
				  struct principal *ret);

/* The console's session cookie, and the header that proves a request's origin. */
#define HTTP_SESSION_COOKIE "tocsin_session"
#define HTTP_CSRF_HEADER "X-Tocsin-CSRF"

/*
 * Recognise a request without a bearer token by its session cookie:
 * csrf is the X-Tocsin-CSRF header (or NULL) and state_changing tells
 * whether the method may change something (all but GET and HEAD).  0 and
 * *ret; -EACCES (401) or -EPERM (403) with the reason in ret->denied.
 */
typedef int (*http_session_authenticator)(void *app, const char *cookie,
					  const char *csrf, bool state_changing,
					  struct principal *ret);

struct request_ctx;

struct http_request {
	struct MHD_Connection *conn;
	struct request_ctx *ctx; /* the HTTP layer's own, for http_defer() */
	const char *method;
	const char *path;
	const char *param; /* the segment matched by "*" in the pattern */
	const char *body;
	size_t body_len;
	const struct principal *principal;
};

struct http_response {
	unsigned status;
	json_t *json;	   /* stolen by the HTTP layer */
	char *text;	   /* alternative plain body, malloc'ed */
	const char *content_type;
	int retry_after_s; /* > 0 adds Retry-After */
	/*
	 * Called once the response is queued (or dropped), on an HTTP
	 * thread: a deferred handler's clean-up, which then costs the
	 * thread that resumed it nothing (the writer hands back big parsed
	 * batches this way).
	 */
	void (*release)(void *arg);
	void *release_arg;
	char *set_cookie;	 /* a Set-Cookie value, malloc'ed */
	/*
	 * A body compiled into the program (the console's assets), sent
	 * without a copy, with its ETag and revalidated caching instead of
	 * no-store.
	 */
	const void *static_body;
	size_t static_len;
	const char *etag;
};

typedef void (*http_handler)(void *app, const struct http_request *req,
			     struct http_response *resp);

struct http_route {
	const char *method;
	const char *pattern; /* "/api/v1/tickets/\*" matches one segment */
	unsigned perms;	     /* all of these are required; 0 = public */
	http_handler handler;
};

struct http_server;

/*
 * Bind conf's listen address (port 0: any free port) and serve routes
 * (terminated by a NULL method) with handlers getting app; bearer tokens
 * are checked with authenticate.
 */
int http_server_start(const struct server_config *conf,
		      const struct http_route *routes, void *app,
		      http_authenticator authenticate, struct http_server **ret);
/* The same, with console sessions recognised by session (may be NULL). */
int http_server_start_sessions(const struct server_config *conf,
			       const struct http_route *routes, void *app,
			       http_authenticator authenticate,
			       http_session_authenticator session,
			       struct http_server **ret);
uint16_t http_server_port(const struct http_server *srv);

void http_server_stop(struct http_server *srv);

/*
 * For a handler whose answer waits for something slow (the writer's
 * commit): http_defer() suspends the request, so that the HTTP thread
 * goes on serving other connections, and returns the handle that
 * http_resume() takes, from any thread and exactly once, with the
 * response.  A handler that deferred leaves its own resp alone, and
 * req->body is freed: parse it before deferring.  Because
 * many requests can wait at once, the writer sees them together and
 * commits them as one group.
 */
struct http_deferred;
struct http_deferred *http_defer(const struct http_request *req);
/* Takes over resp's contents. */
void http_resume(struct http_deferred *d, struct http_response *resp);

/* The client's numeric address ("127.0.0.1", "::1"), or "unknown". */
void http_client_address(const struct http_request *req, char *buf,
			 size_t size);
/* A request header's value, or NULL. */
const char *http_header(const struct http_request *req, const char *name);

/* Query-string value or NULL. */
const char *http_query(const struct http_request *req, const char *key);

/* Fill resp with {"error": message} and status. */
void http_error(struct http_response *resp, unsigned status, const char *fmt,
		...) __attribute__((format(printf, 3, 4)));

#endif
