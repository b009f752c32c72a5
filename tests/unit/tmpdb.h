/*
 * A database file for one unit test: a fresh, unique path under /tmp with
 * no file behind it yet (the store creates it), and its removal together
 * with SQLite's -wal and -shm files.
 */
#ifndef TOCSIN_TEST_TMPDB_H
#define TOCSIN_TEST_TMPDB_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

/* Fills path (size bytes) with /tmp/tocsin-test-NAME-XXXXXX made unique. */
static inline int tmpdb_make(char *path, size_t size, const char *name)
{
	int fd;

	snprintf(path, size, "/tmp/tocsin-test-%s-XXXXXX", name);
	fd = mkstemp(path);
	if (fd < 0)
		return -1;
	close(fd);
	unlink(path);
	return 0;
}

static inline void tmpdb_remove(const char *path)
{
	char side[4096];

	unlink(path);
	snprintf(side, sizeof(side), "%s-wal", path);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", path);
	unlink(side);
}

#endif
