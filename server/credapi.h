/*
 * The HTTP side of enrollment, credentials and the audit trail: request
 * validation and answers, over the operations in credentials.h.  The
 * routes are listed in api.c.
 *
 *   POST   /api/v1/enrollment-tokens       admin    create (secret shown once)
 *   GET    /api/v1/enrollment-tokens       admin    list, no secrets
 *   DELETE /api/v1/enrollment-tokens/{id}  admin    revoke
 *   POST   /api/v1/enroll                  enrollment token: a host credential
 *   POST   /api/v1/credentials/rotate      the host credential itself
 *   GET    /api/v1/credentials             admin    ?customer=&host=
 *   DELETE /api/v1/credentials/{id}        admin    revoke
 *   GET    /api/v1/audit                   admin    ?limit=&offset=
 *   POST   /api/v1/enrollment-approvals    admin    approve the next enrollment of a host
 *   GET    /api/v1/enrollment-approvals    admin    list
 */
#ifndef TOCSIN_CREDAPI_H
#define TOCSIN_CREDAPI_H

#include "http.h"

void credapi_token_create(void *app, const struct http_request *req,
			  struct http_response *resp);
void credapi_token_list(void *app, const struct http_request *req,
			struct http_response *resp);
void credapi_token_revoke(void *app, const struct http_request *req,
			  struct http_response *resp);
void credapi_enroll(void *app, const struct http_request *req,
		    struct http_response *resp);
void credapi_rotate(void *app, const struct http_request *req,
		    struct http_response *resp);
void credapi_list(void *app, const struct http_request *req,
		  struct http_response *resp);
void credapi_revoke(void *app, const struct http_request *req,
		    struct http_response *resp);
void credapi_audit(void *app, const struct http_request *req,
		   struct http_response *resp);
void credapi_approve(void *app, const struct http_request *req,
		     struct http_response *resp);
void credapi_approvals(void *app, const struct http_request *req,
		       struct http_response *resp);

/*
 * The request's JSON object body with only the allowed keys (a
 * NULL-terminated list); an empty body is {}.  NULL after a 400 in resp.
 */
json_t *credapi_body_object(const struct http_request *req,
			    const char *const *allowed,
			    struct http_response *resp);

#endif
