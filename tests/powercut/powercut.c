/*
 * powercut.so: an LD_PRELOAD shim that lets a test cut the power under a
 * process, honestly enough to catch a missing fsync.
 *
 * Killing a process with SIGKILL loses nothing that it wrote: the kernel
 * still holds every write in its page cache.  A power cut loses what was
 * not yet synced.  This shim models the disk as keeping exactly what was
 * synced: before each write (or truncation) to a file it tracks, it saves
 * the bytes about to be overwritten, and the file's size, to an undo file
 * next to it (PATH.undo); fsync() or fdatasync() of the file makes its
 * writes durable and empties the undo file.  After SIGKILL, a test plays
 * the undo files back (newest record first), which leaves each file as
 * the last sync left it: the state a power cut would have left on a disk
 * that honours fsync.
 *
 * What it models: the contents and size of each tracked file.  What it
 * does not: directory entries (files created or deleted since the last
 * directory sync are assumed to survive), torn writes within one write(),
 * reordering inside the drive, mmap'ed writes (SQLite's -shm file, which
 * holds nothing durable and is deleted before the restart).
 *
 *   POWERCUT_DIR          track files under this directory ending in .db
 *                         or -wal (required: the shim is inert without it)
 *   POWERCUT_IGNORE_SYNC  treat syncs as not reaching the disk (a control:
 *                         it must make a durability test fail)
 *
 * Undo records: 'S' u64 size (the size at the first change since the last
 * sync), 'B' u64 offset, u64 length, bytes (what was there before).
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#define MAX_FDS 4096
#define CHUNK 65536

enum { UNKNOWN = 0, UNTRACKED, TRACKED };

struct file {
	int state;
	int undo;	 /* the undo file's descriptor */
	bool dirty;	 /* changed since the last sync: its size is saved */
};

static struct file files[MAX_FDS];
static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static const char *dir;
static bool ignore_sync;

static ssize_t (*real_pwrite64)(int, const void *, size_t, off64_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_write)(int, const void *, size_t);
static int (*real_ftruncate64)(int, off64_t);
static int (*real_ftruncate)(int, off_t);
static int (*real_fdatasync)(int);
static int (*real_fsync)(int);
static int (*real_close)(int);

__attribute__((constructor)) static void init(void)
{
	real_pwrite64 = dlsym(RTLD_NEXT, "pwrite64");
	real_pwrite = dlsym(RTLD_NEXT, "pwrite");
	real_write = dlsym(RTLD_NEXT, "write");
	real_ftruncate64 = dlsym(RTLD_NEXT, "ftruncate64");
	real_ftruncate = dlsym(RTLD_NEXT, "ftruncate");
	real_fdatasync = dlsym(RTLD_NEXT, "fdatasync");
	real_fsync = dlsym(RTLD_NEXT, "fsync");
	real_close = dlsym(RTLD_NEXT, "close");
	dir = getenv("POWERCUT_DIR");
	ignore_sync = getenv("POWERCUT_IGNORE_SYNC") != NULL;
}

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* The tracked file behind fd, or NULL; the caller holds the lock. */
static struct file *tracked(int fd)
{
	char link[64], path[PATH_MAX], undo[PATH_MAX + 8];
	struct file *f;
	ssize_t n;

	if (dir == NULL || fd < 0 || fd >= MAX_FDS)
		return NULL;
	f = &files[fd];
	if (f->state == UNKNOWN) {
		f->state = UNTRACKED;
		snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
		n = readlink(link, path, sizeof(path) - 1);
		if (n > 0) {
			path[n] = '\0';
			if (strncmp(path, dir, strlen(dir)) == 0 &&
			    (ends_with(path, ".db") || ends_with(path, ".db-wal"))) {
				snprintf(undo, sizeof(undo), "%s.undo", path);
				f->undo = open(undo, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
				if (f->undo >= 0) {
					f->state = TRACKED;
					f->dirty = false;
				}
			}
		}
	}
	return f->state == TRACKED ? f : NULL;
}

static void put(struct file *f, const void *p, size_t n)
{
	const char *c = p;

	while (n > 0) {
		ssize_t w = real_write(f->undo, c, n);

		if (w <= 0)
			abort(); /* a broken model must not pass for a durable one */
		c += w;
		n -= (size_t)w;
	}
}

/* Save what [off, off + len) of fd holds now, and the size if first. */
static void save(int fd, struct file *f, uint64_t off, uint64_t len)
{
	char buf[CHUNK];
	struct stat st;

	if (!f->dirty) {
		uint64_t size;

		if (fstat(fd, &st) < 0)
			abort();
		size = (uint64_t)st.st_size;
		put(f, "S", 1);
		put(f, &size, sizeof(size));
		f->dirty = true;
	}
	while (len > 0) {
		size_t want = len < CHUNK ? (size_t)len : CHUNK;
		ssize_t got = pread(fd, buf, want, (off_t)off);
		uint64_t n;

		if (got <= 0)
			return; /* past the end: nothing was there */
		n = (uint64_t)got;
		put(f, "B", 1);
		put(f, &off, sizeof(off));
		put(f, &n, sizeof(n));
		put(f, buf, (size_t)got);
		off += n;
		len -= n;
	}
}

static void before_write(int fd, uint64_t off, size_t len)
{
	struct file *f;

	pthread_mutex_lock(&lock);
	f = tracked(fd);
	if (f != NULL)
		save(fd, f, off, len);
	pthread_mutex_unlock(&lock);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off64_t off)
{
	before_write(fd, (uint64_t)off, n);
	return real_pwrite64(fd, buf, n, off);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off)
{
	before_write(fd, (uint64_t)off, n);
	return real_pwrite(fd, buf, n, off);
}

ssize_t write(int fd, const void *buf, size_t n)
{
	if (dir != NULL && fd > 2) {
		off_t at = lseek(fd, 0, SEEK_CUR);

		if (at >= 0)
			before_write(fd, (uint64_t)at, n);
	}
	return real_write(fd, buf, n);
}

static void before_truncate(int fd, uint64_t len)
{
	struct stat st;
	struct file *f;

	pthread_mutex_lock(&lock);
	f = tracked(fd);
	if (f != NULL && fstat(fd, &st) == 0 && (uint64_t)st.st_size > len)
		save(fd, f, len, (uint64_t)st.st_size - len);
	else if (f != NULL)
		save(fd, f, 0, 0);
	pthread_mutex_unlock(&lock);
}

int ftruncate64(int fd, off64_t len)
{
	before_truncate(fd, (uint64_t)len);
	return real_ftruncate64(fd, len);
}

int ftruncate(int fd, off_t len)
{
	before_truncate(fd, (uint64_t)len);
	return real_ftruncate(fd, len);
}

/* The sync succeeded: what fd's file holds now is on the "disk". */
static void synced(int fd)
{
	struct file *f;

	if (ignore_sync)
		return;
	pthread_mutex_lock(&lock);
	f = tracked(fd);
	if (f != NULL) {
		if (real_ftruncate(f->undo, 0) < 0)
			abort();
		f->dirty = false;
	}
	pthread_mutex_unlock(&lock);
}

int fdatasync(int fd)
{
	int r = real_fdatasync(fd);

	if (r == 0)
		synced(fd);
	return r;
}

int fsync(int fd)
{
	int r = real_fsync(fd);

	if (r == 0)
		synced(fd);
	return r;
}

int close(int fd)
{
	if (fd >= 0 && fd < MAX_FDS) {
		pthread_mutex_lock(&lock);
		if (files[fd].state == TRACKED)
			real_close(files[fd].undo);
		files[fd].state = UNKNOWN;
		pthread_mutex_unlock(&lock);
	}
	return real_close(fd);
}
