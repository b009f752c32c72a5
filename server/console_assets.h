/*
 * The console's files (the .html, .css and .js of console/), compiled
 * into the collector by console/embed.sh at build time: it serves no
 * file from disk.
 */
#ifndef TOCSIN_CONSOLE_ASSETS_H
#define TOCSIN_CONSOLE_ASSETS_H

#include <stddef.h>

struct console_asset {
	const char *name; /* "index.html" */
	const char *content_type;
	const unsigned char *data;
	size_t len;
	const char *etag; /* quoted, from the content's checksum */
};

/* Terminated by a NULL name. */
extern const struct console_asset console_assets[];

#endif
