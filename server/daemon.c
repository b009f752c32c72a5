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

void daemon_serve(struct api *api, struct reload_history *history,
		  const char *config_path, const char *dropin_dir)
{
	struct watchdog *wd = NULL;
	struct pollfd pfd = { .events = POLLIN };
	uint64_t watchdog_usec = 0;
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
			if (watchdog_tick(wd))
				sd_notify(0, "WATCHDOG=1");
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
