/*
 * The systemd watchdog's view of the collector: is the writer thread
 * still committing?
 *
 * Every tick posts a no-op probe job, so that even an idle writer commits
 * something, and pings only when the writer's commit count moved since
 * the previous tick.  A writer that is stuck (a hung fsync, the database
 * locked by another process) commits nothing, whatever the load, so the
 * pings stop and systemd restarts the collector.  A full queue is no
 * evidence of health: then the probe cannot even be posted, and only the
 * commits of the jobs already queued count.
 */
#ifndef TOCSIN_WATCHDOG_H
#define TOCSIN_WATCHDOG_H

#include <stdbool.h>

struct writer;
struct watchdog;

struct watchdog *watchdog_new(struct writer *w);
/*
 * One tick: true when the caller should send WATCHDOG=1 (the writer
 * committed since the last tick).  Posts the next probe.
 */
bool watchdog_tick(struct watchdog *wd);
/* Free it once its probe is back; before writer_stop().  NULL is fine. */
void watchdog_free(struct watchdog *wd);

#endif
