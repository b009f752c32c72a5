#include "service.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <systemd/sd-daemon.h>

#include "../common/util.h"

static int64_t watchdog_every_ms; /* half of WATCHDOG_USEC; 0: off */
static int64_t watchdog_last_ms;

void service_init(void)
{
	uint64_t usec = 0;

	/*
	 * 0 keeps WATCHDOG_USEC for children (the deliverer, plugins): they
	 * cannot use it, WATCHDOG_PID names us and the unit has
	 * NotifyAccess=main.
	 */
	if (sd_watchdog_enabled(0, &usec) > 0 && usec > 0) {
		watchdog_every_ms = (int64_t)(usec / 2000);
		if (watchdog_every_ms == 0)
			watchdog_every_ms = 1;
	}
	watchdog_last_ms = time_mono_ms();
}

void service_ready(void)
{
	sd_notify(0, "READY=1");
}

void service_reloading(void)
{
	/* MONOTONIC_USEC lets systemd match the reload to its request. */
	sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu",
		   (unsigned long long)time_mono_ms() * 1000ULL);
}

void service_stopping(void)
{
	sd_notify(0, "STOPPING=1");
}

void service_status(const char *fmt, ...)
{
	char text[256];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(text, sizeof(text), fmt, ap);
	va_end(ap);
	sd_notifyf(0, "STATUS=%s", text);
}

void service_watchdog(void)
{
	int64_t now;

	if (watchdog_every_ms == 0)
		return;
	now = time_mono_ms();
	if (now - watchdog_last_ms < watchdog_every_ms)
		return;
	watchdog_last_ms = now;
	sd_notify(0, "WATCHDOG=1");
}

int64_t service_watchdog_wait_ms(void)
{
	int64_t left;

	if (watchdog_every_ms == 0)
		return INT64_MAX;
	left = watchdog_last_ms + watchdog_every_ms - time_mono_ms();
	return left > 0 ? left : 0;
}
