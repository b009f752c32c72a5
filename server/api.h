/*
 * The JSON API: route table and handlers over the store.
 */
#ifndef TOCSIN_API_H
#define TOCSIN_API_H

#include "http.h"
#include "server.h"
#include "store.h"

struct writer;

struct api {
	const struct server_config *conf;
	struct store *store;   /* reads: under store_lock() */
	struct writer *writer; /* every change goes through it */
};

extern const struct http_route api_routes[];

/* The http_authenticator for the API: configured tokens. */
int api_authenticate(void *app, const char *secret, struct principal *ret);

#endif
