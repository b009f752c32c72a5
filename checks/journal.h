/*
 * The last journal lines of a systemd unit, for the context of a failure:
 * what the unit printed (_SYSTEMD_UNIT=unit) and what systemd said about
 * it (_PID=1 with UNIT=unit), as `journalctl -u` shows them.
 */
#ifndef TOCSIN_JOURNAL_H
#define TOCSIN_JOURNAL_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* A journal message is cut at this many bytes. */
#define JOURNAL_MESSAGE_MAX 512
#define JOURNAL_LINES_MAX 100

/*
 * Up to n lines, oldest first, as a new JSON array of strings
 * ("2026-12-01T21:26:33Z demo-app[123]: message").  directory is a
 * journal directory to read instead of the local system journal (NULL
 * for the latter).  Unless fresh_us is 0, wait up to wait_us for
 * journald to catch up until systemd's "Failed with result" line
 * (SD_MESSAGE_UNIT_FAILURE_RESULT) at least as new as fresh_us (realtime
 * microseconds) is among them: systemd signals a failure over D-Bus
 * about when it logs that line, and a line of the unit's own is no sign
 * that the one saying why it failed has arrived.
 * 0, or -errno with why filled in.
 */
int journal_unit_tail(const char *directory, const char *unit, size_t n,
		      uint64_t fresh_us, uint64_t wait_us, json_t **ret_lines,
		      char *why, size_t whylen);

#endif
