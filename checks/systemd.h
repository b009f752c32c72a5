/*
 * systemd over sd-bus, the read-only part the checks share (services,
 * and backup through unitrun.h): connecting to the system bus, a unit's
 * object path, and reading its properties, which systemd allows any user.
 *
 * sd_bus_open_system() honours DBUS_SYSTEM_BUS_ADDRESS, which is how the
 * tests reach the system bus of a systemd booted in a container.
 */
#ifndef TOCSIN_SYSTEMD_H
#define TOCSIN_SYSTEMD_H

#include <stddef.h>
#include <stdint.h>
#include <systemd/sd-bus.h>

#define SYSTEMD_DEST "org.freedesktop.systemd1"
#define SYSTEMD_PATH "/org/freedesktop/systemd1"
#define SYSTEMD_MANAGER "org.freedesktop.systemd1.Manager"
#define SYSTEMD_UNIT "org.freedesktop.systemd1.Unit"
#define SYSTEMD_SERVICE "org.freedesktop.systemd1.Service"
#define SYSTEMD_TIMER "org.freedesktop.systemd1.Timer"
#define SYSTEMD_UNIT_PREFIX "/org/freedesktop/systemd1/unit"

/*
 * Connect to address (a D-Bus address), or to the system bus when NULL,
 * with timeout_us for every method call (sd-bus waits 25 s by default:
 * a hung systemd must not hold the agent that long per property).
 * 0 and *ret_bus, or -errno with why filled in.
 */
int systemd_bus_open(const char *address, uint64_t timeout_us,
		     sd_bus **ret_bus, char *why, size_t whylen);

/* The object path of a unit by name, computed (new string), or NULL. */
char *systemd_unit_path(const char *name);
/*
 * The object path of a unit by name from LoadUnit, which also loads a
 * unit systemd has not loaded (GetUnit would say NoSuchUnit).  New string.
 */
int systemd_load_unit(sd_bus *bus, const char *name, char **ret_path,
		      char *err, size_t errlen);
/* "org.freedesktop.systemd1.Service" for "x.service", NULL for scopes etc. */
const char *systemd_unit_interface(const char *name);

/*
 * A property of the object at path: a string (new, *ret_str), a trivial
 * value of D-Bus type `type` ('u', 't', 'i', 'b') into *ret, a string
 * array (new, NULL-terminated).  0, or -errno with the bus error's message
 * (or errno's text) in err when err is not NULL.
 */
int systemd_get_string(sd_bus *bus, const char *path, const char *iface,
		       const char *name, char **ret_str, char *err,
		       size_t errlen);
int systemd_get_trivial(sd_bus *bus, const char *path, const char *iface,
			const char *name, char type, void *ret, char *err,
			size_t errlen);
int systemd_get_strv(sd_bus *bus, const char *path, const char *iface,
		     const char *name, char ***ret_strv, char *err,
		     size_t errlen);

#endif
