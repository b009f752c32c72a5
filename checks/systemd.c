/*
 * systemd over sd-bus, read-only; see systemd.h.
 */
#include "systemd.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"

/* The bus error's message (or errno's text) into err; returns r. */
static int fail(int r, const sd_bus_error *e, char *err, size_t errlen)
{
	if (err != NULL && errlen > 0)
		snprintf(err, errlen, "%s",
			 sd_bus_error_is_set(e) && e->message ? e->message
							      : strerror(-r));
	return r;
}

int systemd_bus_open(const char *address, uint64_t timeout_us,
		     sd_bus **ret_bus, char *why, size_t whylen)
{
	sd_bus *bus = NULL;
	int r;

	if (address != NULL) {
		r = sd_bus_new(&bus);
		if (r >= 0)
			r = sd_bus_set_address(bus, address);
		if (r >= 0)
			r = sd_bus_set_bus_client(bus, 1);
		if (r >= 0)
			r = sd_bus_start(bus);
	} else {
		r = sd_bus_open_system(&bus);
	}
	if (r < 0) {
		const char *addr = address ? address
					   : getenv("DBUS_SYSTEM_BUS_ADDRESS");

		snprintf(why, whylen, "cannot connect to the system bus (%s): %s",
			 addr ? addr : "unix:path=/run/dbus/system_bus_socket",
			 strerror(-r));
		sd_bus_unref(bus);
		return r;
	}
	sd_bus_set_method_call_timeout(bus, timeout_us);
	*ret_bus = bus;
	return 0;
}

char *systemd_unit_path(const char *name)
{
	char *path = NULL;

	if (sd_bus_path_encode(SYSTEMD_UNIT_PREFIX, name, &path) < 0)
		return NULL;
	return path;
}

int systemd_load_unit(sd_bus *bus, const char *name, char **ret_path,
		      char *err, size_t errlen)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	const char *path;
	int r;

	r = sd_bus_call_method(bus, SYSTEMD_DEST, SYSTEMD_PATH, SYSTEMD_MANAGER,
			       "LoadUnit", &e, &reply, "s", name);
	if (r >= 0)
		r = sd_bus_message_read(reply, "o", &path);
	if (r >= 0)
		*ret_path = xstrdup(path);
	else
		fail(r, &e, err, errlen);
	sd_bus_message_unref(reply);
	sd_bus_error_free(&e);
	return r < 0 ? r : 0;
}

const char *systemd_unit_interface(const char *name)
{
	static const struct {
		const char *suffix, *iface;
	} types[] = {
		{ ".service", SYSTEMD_SERVICE },
		{ ".socket", "org.freedesktop.systemd1.Socket" },
		{ ".mount", "org.freedesktop.systemd1.Mount" },
		{ ".swap", "org.freedesktop.systemd1.Swap" },
		{ ".timer", SYSTEMD_TIMER },
		{ ".path", "org.freedesktop.systemd1.Path" },
		{ ".automount", "org.freedesktop.systemd1.Automount" },
	};
	size_t n = strlen(name);

	for (size_t i = 0; i < ARRAY_SIZE(types); i++) {
		size_t m = strlen(types[i].suffix);

		if (n > m && strcmp(name + n - m, types[i].suffix) == 0)
			return types[i].iface;
	}
	return NULL;
}

/* The end of a call: the error into err, the bus error freed; 0 or r. */
static int finish(int r, sd_bus_error *e, char *err, size_t errlen)
{
	if (r < 0)
		fail(r, e, err, errlen);
	sd_bus_error_free(e);
	return r < 0 ? r : 0;
}

int systemd_get_string(sd_bus *bus, const char *path, const char *iface,
		       const char *name, char **ret_str, char *err,
		       size_t errlen)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;

	return finish(sd_bus_get_property_string(bus, SYSTEMD_DEST, path, iface,
						 name, &e, ret_str),
		      &e, err, errlen);
}

int systemd_get_trivial(sd_bus *bus, const char *path, const char *iface,
			const char *name, char type, void *ret, char *err,
			size_t errlen)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;

	return finish(sd_bus_get_property_trivial(bus, SYSTEMD_DEST, path, iface,
						  name, &e, type, ret),
		      &e, err, errlen);
}

int systemd_get_strv(sd_bus *bus, const char *path, const char *iface,
		     const char *name, char ***ret_strv, char *err,
		     size_t errlen)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;

	return finish(sd_bus_get_property_strv(bus, SYSTEMD_DEST, path, iface,
					       name, &e, ret_strv),
		      &e, err, errlen);
}
