/*
 * The silences API (technicians):
 *
 *   POST   /api/v1/silences        {"host", "check", "item", "start",
 *                                   "end" | "duration", "comment"} -> 201
 *   GET    /api/v1/silences?state=active|pending|expired|all
 *   GET    /api/v1/silences/{id}
 *   DELETE /api/v1/silences/{id}   ends it now -> 200 with the silence
 *
 * The author is the authenticated principal, never a name from the body.
 * Every change goes through the writer, whose job first checks that a
 * console session's account and session may still act (409 or 401 and
 * nothing changed otherwise: session_check_actor()).
 */
#ifndef TOCSIN_SILENCE_API_H
#define TOCSIN_SILENCE_API_H

#include "http.h"

void silence_api_create(void *app, const struct http_request *req,
			struct http_response *resp);
void silence_api_list(void *app, const struct http_request *req,
		      struct http_response *resp);
void silence_api_get(void *app, const struct http_request *req,
		     struct http_response *resp);
void silence_api_remove(void *app, const struct http_request *req,
			struct http_response *resp);

#endif
