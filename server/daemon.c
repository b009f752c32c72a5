#include "daemon.h"

#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include "../common/log.h"
#include "../common/util.h"
#include "api.h"
#include "reload.h"
#include "watchdog.h"

/* Ticks in a row without a commit (of four a watchdog period) that are said. */
#define WATCHDOG_WARN_TICKS 2

/*
 * One watchdog tick: WATCHDOG=1 if the writer committed since the last
 * one.  The second tick in a row without a commit says so, once, since
 * systemd restarts the server when a whole WatchdogSec= passes without a
 * ping; the first commit after such a stall says that it ended.  *missed
 * counts the ticks in a row without one.
 */
static void watchdog_feed(struct watchdog *wd, int tick_ms, unsigned *missed)
{
	if (watchdog_tick(wd)) {
		if (*missed >= WATCHDOG_WARN_TICKS)
			log_notice("watchdog: the writer thread commits again, after %u ticks (%u ms) without a commit: WATCHDOG=1 resumes",
				   *missed, *missed * (unsigned)tick_ms);
		*missed = 0;
		sd_notify(0, "WATCHDOG=1");
		return;
	}
	if (++*missed == WATCHDOG_WARN_TICKS)
		log_warnx("watchdog: the writer thread has committed nothing for %u ticks (%u ms): WATCHDOG=1 withheld; systemd restarts the server if this lasts WatchdogSec=",
			  *missed, *missed * (unsigned)tick_ms);
}

void daemon_serve(struct api *api, struct reload_history *history,
		  const char *config_path, const char *dropin_dir)
{
	struct watchdog *wd = NULL;
	struct pollfd pfd = { .events = POLLIN };
	uint64_t watchdog_usec = 0;
	unsigned missed = 0;
	int tick_ms = -1;
	sigset_t mask;

	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	sigaddset(&mask, SIGHUP);
	pfd.fd = signalfd(-1, &mask, SFD_CLOEXEC);
	if (pfd.fd < 0)
		fatal("signalfd");
	if (sd_watchdog_enabled(0, &watchdog_usec) > 0 && watchdog_usec > 0) {
		/* Four pings per period leave room for a slow commit. */
		tick_ms = (int)(watchdog_usec / 4000);
		if (tick_ms < 1)
			tick_ms = 1;
		wd = watchdog_new(api->writer);
		sd_notify(0, "WATCHDOG=1");
		watchdog_tick(wd);
	}
	for (;;) {
		struct signalfd_siginfo si;
		int n = poll(&pfd, 1, tick_ms);

		if (n == 0) {
			watchdog_feed(wd, tick_ms, &missed);
			continue;
		}
		if (n < 0 || read(pfd.fd, &si, sizeof(si)) != sizeof(si))
			continue;
		if (si.ssi_signo == SIGHUP) {
			sd_notify(0, "RELOADING=1");
			reload_apply(api, history, config_path, dropin_dir);
			sd_notify(0, "READY=1");
			continue;
		}
		log_info("received signal %u, stopping", si.ssi_signo);
		break;
	}
	close(pfd.fd);
	watchdog_free(wd);
}
