/*
 * Traps from unknown devices, kept for review.
 *
 * A trap that no configured device claims is not dropped: it is stored in
 * a bounded table (traps.unknown_keep rows, the oldest go first and are
 * counted) with everything that could identify its sender, so that an
 * administrator can add the device, and it is listed by
 * GET /api/v1/traps/unknown and `tocsin traps unknown`.
 */
#ifndef TOCSIN_TRAPREVIEW_H
#define TOCSIN_TRAPREVIEW_H

#include <stddef.h>
#include <stdint.h>

#include "../common/db.h"
#include "http.h"

struct store;
struct trapreview;

extern const struct db_schema trapreview_schema;

/* One trap as the review shows it; every text is owned by the row. */
struct trapreview_row {
	int64_t received_ms;
	char *source;
	char *version;
	char *agent_addr; /* NULL when the trap has none */
	char *engine_id;
	char *user;
	char *sys_name;
	char *trap;
	char *trap_oid;
	char *varbinds; /* JSON array */
};

void trapreview_row_clear(struct trapreview_row *row);

/* The statements the writer jobs use.  0 or -errno. */
int trapreview_open(struct store *st, struct trapreview **ret);
void trapreview_close(struct trapreview *r);

/* Inside a writer job: store a row; keep the newest keep rows. */
int trapreview_add(struct trapreview *r, const struct trapreview_row *row);
int trapreview_trim(struct trapreview *r, size_t keep, size_t *ret_dropped);

/* GET /api/v1/traps/unknown?limit=N (app is the struct api). */
void trapreview_get_unknown(void *app, const struct http_request *req,
			    struct http_response *resp);

#endif
