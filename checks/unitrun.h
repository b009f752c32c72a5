/*
 * The last run of a systemd unit, read over sd-bus (systemd.h): what the
 * backup check needs to know about its job, and the services check about
 * the jobs behind its timers.  A timer is followed to the unit it starts.
 */
#ifndef TOCSIN_UNITRUN_H
#define TOCSIN_UNITRUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

struct unitrun {
	char unit[256];        /* the unit asked about */
	char service[256];     /* the unit that ran (a timer's unit) */
	char load_state[32];   /* loaded, not-found, masked, ... */
	char active_state[32]; /* active, inactive, failed, activating, ... */
	char result[32];       /* success, exit-code, signal, timeout, ... ("" unknown) */
	int32_t exec_status;   /* ExecMainStatus: exit code or signal (services) */
	uint64_t exit_us;      /* ExecMainExitTimestamp, 0 when never run */
	uint64_t state_change_us; /* StateChangeTimestamp of the unit that ran */
	uint64_t last_trigger_us; /* a timer's LastTriggerUSec, 0 when never */
};

/* A unit name the backup check accepts: NAME.service or NAME.timer. */
bool unitrun_name_valid(const char *unit);

/*
 * Read the last run of unit (a .timer is followed to its unit).  0 and
 * *ret, also for a unit that is not loaded (load_state says why, the rest
 * is empty); -errno with the reason in err (the bus error's message)
 * otherwise.  The caller owns bus.
 */
int unitrun_read(sd_bus *bus, const char *unit, struct unitrun *ret,
		 char *err, size_t errlen);

#endif
