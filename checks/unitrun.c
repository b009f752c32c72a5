/*
 * The last run of a systemd unit over sd-bus; see unitrun.h.
 */
#include "unitrun.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"

#define SYSTEMD_DEST "org.freedesktop.systemd1"
#define SYSTEMD_PATH "/org/freedesktop/systemd1"
#define MANAGER_IFACE "org.freedesktop.systemd1.Manager"
#define UNIT_IFACE "org.freedesktop.systemd1.Unit"
#define SERVICE_IFACE "org.freedesktop.systemd1.Service"
#define TIMER_IFACE "org.freedesktop.systemd1.Timer"

static bool ends_with(const char *s, const char *suffix)
{
	size_t n = strlen(s), m = strlen(suffix);

	return n > m && strcmp(s + n - m, suffix) == 0;
}

bool unitrun_name_valid(const char *unit)
{
	size_t n = strlen(unit);

	if (n == 0 || n >= sizeof(((struct unitrun *)0)->service))
		return false;
	for (size_t i = 0; i < n; i++) {
		char c = unit[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || strchr(":-_.@\\", c)))
			return false;
	}
	return ends_with(unit, ".service") || ends_with(unit, ".timer");
}

/* Copy the bus error's message (or errno's text) into err; returns r. */
static int bus_fail(int r, const sd_bus_error *e, char *err, size_t errlen)
{
	snprintf(err, errlen, "%s",
		 sd_bus_error_is_set(e) && e->message ? e->message
						      : strerror(-r));
	return r;
}

/* The object path of unit, loading it if systemd has not yet. */
static int load_unit(sd_bus *bus, const char *unit, char **ret_path,
		     char *err, size_t errlen)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	sd_bus_message *reply = NULL;
	const char *path;
	int r;

	r = sd_bus_call_method(bus, SYSTEMD_DEST, SYSTEMD_PATH, MANAGER_IFACE,
			       "LoadUnit", &e, &reply, "s", unit);
	if (r >= 0)
		r = sd_bus_message_read(reply, "o", &path);
	if (r < 0) {
		bus_fail(r, &e, err, errlen);
		goto out;
	}
	*ret_path = xstrdup(path);
out:
	sd_bus_message_unref(reply);
	sd_bus_error_free(&e);
	return r < 0 ? r : 0;
}

/* A string property into buf (truncated to size). */
static int get_string(sd_bus *bus, const char *path, const char *iface,
		      const char *name, char *buf, size_t size, char *err,
		      size_t errlen)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	char *value = NULL;
	int r;

	r = sd_bus_get_property_string(bus, SYSTEMD_DEST, path, iface, name,
				       &e, &value);
	if (r < 0) {
		bus_fail(r, &e, err, errlen);
		sd_bus_error_free(&e);
		return r;
	}
	strlcpy_safe(buf, value, size);
	free(value);
	return 0;
}

/* Result, ExecMainStatus and ExecMainExitTimestamp of a service. */
static int read_service(sd_bus *bus, const char *path, struct unitrun *u,
			char *err, size_t errlen)
{
	sd_bus_error e = SD_BUS_ERROR_NULL;
	int r;

	r = get_string(bus, path, SERVICE_IFACE, "Result", u->result,
		       sizeof(u->result), err, errlen);
	if (r < 0)
		return r;
	r = sd_bus_get_property_trivial(bus, SYSTEMD_DEST, path, SERVICE_IFACE,
					"ExecMainStatus", &e, 'i',
					&u->exec_status);
	if (r >= 0)
		r = sd_bus_get_property_trivial(bus, SYSTEMD_DEST, path,
						SERVICE_IFACE,
						"ExecMainExitTimestamp", &e,
						't', &u->exit_us);
	if (r < 0)
		bus_fail(r, &e, err, errlen);
	sd_bus_error_free(&e);
	return r < 0 ? r : 0;
}

int unitrun_read(sd_bus *bus, const char *unit, struct unitrun *ret,
		 char *err, size_t errlen)
{
	struct unitrun u = { 0 };
	char *path = NULL;
	int r;

	strlcpy_safe(u.service, unit, sizeof(u.service));
	r = load_unit(bus, unit, &path, err, errlen);
	if (r < 0)
		goto out;
	r = get_string(bus, path, UNIT_IFACE, "LoadState", u.load_state,
		       sizeof(u.load_state), err, errlen);
	if (r < 0 || strcmp(u.load_state, "loaded") != 0)
		goto out;
	if (ends_with(unit, ".timer")) {
		/* the timer's own state says little: read the job it starts */
		r = get_string(bus, path, TIMER_IFACE, "Unit", u.service,
			       sizeof(u.service), err, errlen);
		free(path);
		path = NULL;
		if (r < 0 || (r = load_unit(bus, u.service, &path, err,
					    errlen)) < 0)
			goto out;
		r = get_string(bus, path, UNIT_IFACE, "LoadState",
			       u.load_state, sizeof(u.load_state), err, errlen);
		if (r < 0 || strcmp(u.load_state, "loaded") != 0)
			goto out;
	}
	r = get_string(bus, path, UNIT_IFACE, "ActiveState", u.active_state,
		       sizeof(u.active_state), err, errlen);
	if (r >= 0)
		r = read_service(bus, path, &u, err, errlen);
out:
	free(path);
	if (r >= 0)
		*ret = u;
	return r < 0 ? r : 0;
}
