/*
 * The last run of a systemd unit over sd-bus; see unitrun.h.
 */
#include "unitrun.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "systemd.h"

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

/* A string property into buf (truncated to size). */
static int get_string(sd_bus *bus, const char *path, const char *iface,
		      const char *name, char *buf, size_t size, char *err,
		      size_t errlen)
{
	char *value = NULL;
	int r = systemd_get_string(bus, path, iface, name, &value, err, errlen);

	if (r < 0)
		return r;
	strlcpy_safe(buf, value, size);
	free(value);
	return 0;
}

/* LoadUnit and LoadState: 1 when the unit is loaded, 0 when not, -errno. */
static int load(sd_bus *bus, const char *unit, char **ret_path,
		struct unitrun *u, char *err, size_t errlen)
{
	int r = systemd_load_unit(bus, unit, ret_path, err, errlen);

	if (r == 0)
		r = get_string(bus, *ret_path, SYSTEMD_UNIT, "LoadState",
			       u->load_state, sizeof(u->load_state), err, errlen);
	if (r < 0)
		return r;
	return strcmp(u->load_state, "loaded") == 0;
}

/* The result of the unit that ran: its type's Result, and a service's exit. */
static int read_result(sd_bus *bus, const char *path, struct unitrun *u,
		       char *err, size_t errlen)
{
	const char *iface = systemd_unit_interface(u->service);
	int r = get_string(bus, path, SYSTEMD_UNIT, "ActiveState",
			   u->active_state, sizeof(u->active_state), err, errlen);

	if (r == 0)
		r = systemd_get_trivial(bus, path, SYSTEMD_UNIT,
					"StateChangeTimestamp", 't',
					&u->state_change_us, err, errlen);
	if (r == 0 && iface != NULL && strcmp(iface, SYSTEMD_TIMER) != 0)
		r = get_string(bus, path, iface, "Result", u->result,
			       sizeof(u->result), err, errlen);
	if (r == 0 && ends_with(u->service, ".service"))
		r = systemd_get_trivial(bus, path, SYSTEMD_SERVICE,
					"ExecMainStatus", 'i', &u->exec_status,
					err, errlen);
	if (r == 0 && ends_with(u->service, ".service"))
		r = systemd_get_trivial(bus, path, SYSTEMD_SERVICE,
					"ExecMainExitTimestamp", 't',
					&u->exit_us, err, errlen);
	return r;
}

int unitrun_read(sd_bus *bus, const char *unit, struct unitrun *ret,
		 char *err, size_t errlen)
{
	struct unitrun u = { 0 };
	char *path = NULL;
	int r;

	strlcpy_safe(u.unit, unit, sizeof(u.unit));
	strlcpy_safe(u.service, unit, sizeof(u.service));
	r = load(bus, unit, &path, &u, err, errlen);
	if (r <= 0)
		goto out;
	if (ends_with(unit, ".timer")) {
		/* the timer's own state says little: read the job it starts */
		r = get_string(bus, path, SYSTEMD_TIMER, "Unit", u.service,
			       sizeof(u.service), err, errlen);
		if (r == 0)
			r = systemd_get_trivial(bus, path, SYSTEMD_TIMER,
						"LastTriggerUSec", 't',
						&u.last_trigger_us, err, errlen);
		free(path);
		path = NULL;
		if (r < 0 || (r = load(bus, u.service, &path, &u, err, errlen)) <= 0)
			goto out;
	}
	r = read_result(bus, path, &u, err, errlen);
out:
	free(path);
	if (r >= 0)
		*ret = u;
	return r < 0 ? r : 0;
}
