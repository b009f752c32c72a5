/*
 * The technicians' web console over HTTP: logins and sessions, accounts,
 * and the console's own files, compiled into the program.  The routes
 * are listed in api.c.
 *
 *   POST   /api/v1/session          none     {"name", "password"}: a session cookie
 *   GET    /api/v1/session          viewer   who am I, and the session's CSRF token
 *   DELETE /api/v1/session          viewer   log out
 *   PUT    /api/v1/session/password viewer   {"current", "password"}: one's own
 *   GET    /api/v1/accounts         admin    every account, no hashes
 *   PUT    /api/v1/accounts/{name}  admin    {"role", "password"}: create or replace
 *   DELETE /api/v1/accounts/{name}  admin    delete (and end its sessions)
 *   GET    /api/v1/helpdesk/scales  viewer   impacts, urgencies, priorities,
 *                                           queues and people to pick from
 *   GET    /                        none     the console (console/index.html)
 *   GET    /console/{file}          none     its scripts and style sheets
 */
#ifndef TOCSIN_CONSOLE_API_H
#define TOCSIN_CONSOLE_API_H

#include <stdbool.h>

#include "http.h"

struct actor;
struct api;
struct metrics_out;

/*
 * Who makes the change req asks for with an admin's or a technician's
 * authority (session_actor()): for its handler to hand to the change.
 * In test builds a session's request may wait here, after its
 * authentication (TOCSIN_TEST_ACTOR_GATE, like console_api.c's password
 * gate).
 */
void console_api_actor(struct api *api, const struct http_request *req,
		       struct actor *ret);
/*
 * After a change by actor that returned r: true once it is logged,
 * audited (action, with ".refused", on target) and answered 409 or 401
 * when r says actor's session may no longer act (-ESTALE: its account
 * changed, -EACCES: it ended; session_check_actor()), else false.
 */
bool console_api_actor_refused(struct api *api, const struct actor *actor,
			       int r, const char *action, const char *target,
			       struct http_response *resp);

/* The metrics source for logins and sessions. */
void console_api_metrics(void *app, struct metrics_out *out);

/* The http_session_authenticator over the api's sessions. */
int console_api_session_auth(void *app, const char *cookie, const char *csrf,
			     bool state_changing, struct principal *ret);

void console_api_login(void *app, const struct http_request *req,
		       struct http_response *resp);
void console_api_whoami(void *app, const struct http_request *req,
			struct http_response *resp);
void console_api_logout(void *app, const struct http_request *req,
			struct http_response *resp);
void console_api_password(void *app, const struct http_request *req,
			  struct http_response *resp);
void console_api_accounts(void *app, const struct http_request *req,
			  struct http_response *resp);
void console_api_account_set(void *app, const struct http_request *req,
			     struct http_response *resp);
void console_api_account_delete(void *app, const struct http_request *req,
				struct http_response *resp);
void console_api_scales(void *app, const struct http_request *req,
			struct http_response *resp);
void console_api_index(void *app, const struct http_request *req,
		       struct http_response *resp);
void console_api_asset(void *app, const struct http_request *req,
		       struct http_response *resp);

#endif
