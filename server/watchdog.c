#include "watchdog.h"

#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "../common/util.h"
#include "writer.h"

struct watchdog {
	struct writer *w;
	uint64_t commits;    /* the writer's commit count at the last tick */
	atomic_bool pending; /* a probe waits in the writer's queue */
};

struct watchdog *watchdog_new(struct writer *w)
{
	struct watchdog *wd = xcalloc(1, sizeof(*wd));
	struct writer_stats ws;

	wd->w = w;
	writer_get_stats(w, &ws);
	wd->commits = ws.commits;
	return wd;
}

static int probe_apply(struct store *st, void *arg)
{
	(void)st;
	(void)arg;
	return 0;
}

static void probe_done(void *arg, int result)
{
	struct watchdog *wd = arg;

	(void)result;
	atomic_store(&wd->pending, false);
}

bool watchdog_tick(struct watchdog *wd)
{
	struct writer_stats ws;
	bool committed;

	writer_get_stats(wd->w, &ws);
	committed = ws.commits != wd->commits;
	wd->commits = ws.commits;
	if (!atomic_exchange(&wd->pending, true) &&
	    writer_post(wd->w, probe_apply, wd, probe_done) < 0)
		atomic_store(&wd->pending, false);
	return committed;
}

void watchdog_free(struct watchdog *wd)
{
	if (wd == NULL)
		return;
	/* The writer still owns a probe in flight: it runs before the writer stops. */
	while (atomic_load(&wd->pending))
		usleep(1000);
	free(wd);
}
