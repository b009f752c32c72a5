/*
 * The last run of a systemd unit, read over sd-bus: what the backup check
 * needs to know about its job.  Deliberately tiny and read-only (LoadUnit
 * and Get of a few properties, which systemd allows any user); the
 * services check owns the full sd-bus module, and the two may merge.
 *
 * sd_bus_open_system() honours DBUS_SYSTEM_BUS_ADDRESS, which is how the
 * tests reach the system bus of a systemd booted in a container.
 */
#ifndef TOCSIN_UNITRUN_H
#define TOCSIN_UNITRUN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

struct unitrun {
	char service[256];     /* the service that ran (a timer's unit) */
	char load_state[32];   /* loaded, not-found, masked, ... */
	char active_state[32]; /* active, inactive, failed, activating, ... */
	char result[32];       /* success, exit-code, signal, timeout, ... */
	int32_t exec_status;   /* ExecMainStatus: exit code or signal */
	uint64_t exit_us;      /* ExecMainExitTimestamp, 0 when never run */
};

/* A unit name the backup check accepts: NAME.service or NAME.timer. */
bool unitrun_name_valid(const char *unit);

/*
 * Read the last run of unit (a .service, or a .timer whose service is
 * then read).  0 and *ret; -errno with the reason in err (the bus
 * error's message) otherwise.  The caller owns bus.
 */
int unitrun_read(sd_bus *bus, const char *unit, struct unitrun *ret,
		 char *err, size_t errlen);

#endif
