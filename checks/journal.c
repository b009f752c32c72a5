/*
 * A unit's last journal lines through sd-journal, see journal.h.
 */
#include "journal.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <systemd/sd-journal.h>
#include <systemd/sd-messages.h>

#include "../common/utf8.h"
#include "../common/util.h"

/*
 * The value of FIELD=value data, cut with "…" to fit size, with control
 * characters and invalid UTF-8 (which JSON cannot carry) as '?'.
 */
static void field(sd_journal *j, const char *name, char *buf, size_t size)
{
	size_t nlen = strlen(name), len;
	const void *data;
	const char *v;

	buf[0] = '\0';
	if (sd_journal_get_data(j, name, &data, &len) < 0 || len <= nlen + 1)
		return;
	v = (const char *)data + nlen + 1;
	len -= nlen + 1;
	utf8_sanitize(buf, size, v, len, UTF8_ELLIPSIS);
}

/* "2026-12-01T21:26:33Z demo-app[123]: message" for the current entry. */
static json_t *format_entry(sd_journal *j, uint64_t usec)
{
	char msg[JOURNAL_MESSAGE_MAX + 1], ident[64], pid[16];
	char at[TIME_RFC3339_LEN];

	field(j, "MESSAGE", msg, sizeof(msg));
	field(j, "SYSLOG_IDENTIFIER", ident, sizeof(ident));
	if (ident[0] == '\0')
		field(j, "_COMM", ident, sizeof(ident));
	field(j, "_PID", pid, sizeof(pid));
	time_format_rfc3339((int64_t)(usec / 1000), at);
	if (pid[0] != '\0')
		return json_sprintf("%s %s[%s]: %s", at, ident[0] ? ident : "?",
				    pid, msg);
	return json_sprintf("%s %s: %s", at, ident[0] ? ident : "?", msg);
}

static int add_matches(sd_journal *j, const char *unit)
{
	char m1[300], m2[300];
	int r;

	snprintf(m1, sizeof(m1), "_SYSTEMD_UNIT=%s", unit);
	snprintf(m2, sizeof(m2), "UNIT=%s", unit);
	r = sd_journal_add_match(j, m1, 0);
	if (r >= 0)
		r = sd_journal_add_disjunction(j);
	if (r >= 0)
		r = sd_journal_add_match(j, m2, 0);
	if (r >= 0)
		r = sd_journal_add_match(j, "_PID=1", 0);
	return r < 0 ? r : 0;
}

/* Whether the current entry is systemd's "Failed with result" line. */
static bool is_failure_result(sd_journal *j)
{
	static const char id[] = "MESSAGE_ID=" SD_MESSAGE_UNIT_FAILURE_RESULT_STR;
	const void *data;
	size_t len;

	return sd_journal_get_data(j, "MESSAGE_ID", &data, &len) >= 0 &&
	       len == sizeof(id) - 1 && memcmp(data, id, len) == 0;
}

/*
 * Read the newest n entries, oldest first; *ret_result is the time of the
 * newest failure-result line among them (0: none).
 */
static int read_tail(sd_journal *j, size_t n, json_t **ret, uint64_t *ret_result)
{
	json_t *lines = json_array();
	uint64_t newest = 0;
	int r = sd_journal_seek_tail(j);

	for (size_t i = 0; r >= 0 && i < n; i++) {
		uint64_t usec = 0;

		r = sd_journal_previous(j);
		if (r <= 0)
			break;
		if (sd_journal_get_realtime_usec(j, &usec) < 0)
			continue;
		if (usec > newest && is_failure_result(j))
			newest = usec;
		json_array_insert_new(lines, 0, format_entry(j, usec));
	}
	if (r < 0) {
		json_decref(lines);
		return r;
	}
	*ret = lines;
	*ret_result = newest;
	return 0;
}

int journal_unit_tail(const char *directory, const char *unit, size_t n,
		      uint64_t fresh_us, uint64_t wait_us, json_t **ret_lines,
		      char *why, size_t whylen)
{
	uint64_t deadline = (uint64_t)time_mono_ms() * 1000 + wait_us;
	sd_journal *j = NULL;
	json_t *lines = NULL;
	uint64_t result = 0;
	int r;

	if (n > JOURNAL_LINES_MAX)
		n = JOURNAL_LINES_MAX;
	if (directory)
		r = sd_journal_open_directory(&j, directory, 0);
	else
		r = sd_journal_open(&j, SD_JOURNAL_LOCAL_ONLY | SD_JOURNAL_SYSTEM);
	if (r < 0) {
		snprintf(why, whylen, "cannot open the journal%s%s: %s",
			 directory ? " in " : "", directory ? directory : "",
			 strerror(-r));
		return r;
	}
	r = add_matches(j, unit);
	for (;;) {
		uint64_t now;

		if (r >= 0)
			r = read_tail(j, n, &lines, &result);
		if (r < 0 || fresh_us == 0 || result >= fresh_us)
			break;
		now = (uint64_t)time_mono_ms() * 1000;
		if (now >= deadline)
			break;
		json_decref(lines);
		lines = NULL;
		r = sd_journal_wait(j, deadline - now);
	}
	sd_journal_close(j);
	if (r < 0) {
		json_decref(lines);
		snprintf(why, whylen, "cannot read the journal: %s", strerror(-r));
		return r;
	}
	*ret_lines = lines;
	return 0;
}
