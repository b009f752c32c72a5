/*
 * The administrators' lists of enrollment tokens, credentials, approvals
 * and the audit trail, without secrets, read on the reader connection
 * (store_open_reader()) so that listing never waits for the writer.
 */
#ifndef TOCSIN_CREDLIST_H
#define TOCSIN_CREDLIST_H

#include <jansson.h>
#include <stdint.h>

struct store;
struct credlist;

/* Prepare the statements over reader (a store_open_reader() store). */
int credlist_open(struct store *reader, struct credlist **ret);
void credlist_close(struct credlist *l);

/* Each takes the reader's lock and returns a JSON array in *ret. */
int credlist_tokens(struct credlist *l, int64_t now_ms, json_t **ret);
/* customer and host filter when not NULL. */
int credlist_credentials(struct credlist *l, const char *customer,
			 const char *host, int64_t now_ms, json_t **ret);
int credlist_approvals(struct credlist *l, int64_t now_ms, json_t **ret);
int credlist_audit(struct credlist *l, int64_t limit, int64_t offset,
		   json_t **ret);

#endif
