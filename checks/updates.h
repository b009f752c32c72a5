/*
 * updates: the pure parts of the updates check, exposed for its unit
 * tests: apt-get's simulation output and apt-config's dump.
 */
#ifndef TOCSIN_UPDATES_H
#define TOCSIN_UPDATES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* One package apt would upgrade: "Inst name [from] (to releases [arch])". */
struct updates_pkg {
	char *name;
	char *from;     /* NULL for a package apt would newly install */
	char *to;
	bool security;  /* a candidate release matched a security pattern */
};

struct updates_sim {
	struct updates_pkg *v;
	size_t n;
	size_t cap;
	size_t upgrades;  /* entries with a from version */
	size_t security;  /* upgrades from a security release */
	size_t installs;  /* new packages the upgrade pulls in */
	size_t removals;  /* "Remv" lines */
};

/* At most this many packages are kept from one simulation. */
#define UPDATES_SIM_MAX 10000

/*
 * True when one of the comma-separated releases of a candidate
 * ("Debian:12.15/oldstable, Debian-Security:12/oldstable-security")
 * matches one of the NULL-terminated fnmatch patterns, case-insensitively.
 */
bool updates_release_is_security(const char *releases, size_t len,
				 const char *const *patterns);

/*
 * Parse the output of `apt-get -s upgrade` or `dist-upgrade` into ret
 * (which the caller clears).  Lines other than Inst/Remv are ignored.
 * Returns the number of Inst and Remv lines understood; a line that
 * starts with "Inst " but does not parse counts in *ret_bad when given.
 */
size_t updates_parse_sim(const char *output, const char *const *patterns,
			 struct updates_sim *ret, size_t *ret_bad);
void updates_sim_clear(struct updates_sim *sim);

/*
 * The value of key in `apt-config dump` output (`Key "value";`), as a
 * new string; NULL when absent.
 */
char *updates_apt_config_value(const char *dump, const char *key);

/* What apt's periodic settings mean for unattended-upgrades. */
bool updates_unattended_enabled(const char *enable, const char *unattended);

/*
 * What apt's answer depends on besides the updates check's settings: a
 * path and how deep below it to look (0: the path itself; 1: the files in
 * a directory; 2: also the files in its subdirectories).
 */
struct updates_input {
	const char *path;
	int depth;
};

/*
 * A fingerprint of the inputs (updates_inputs.c): by name, device, inode,
 * mode, size and modification time of each file, added up so that the
 * order a directory lists its entries in does not matter; a missing or
 * unreadable path counts with its errno, so that its appearing changes
 * the fingerprint too.  Files named "lock" and "partial" (apt's locks and
 * its download directory) and hidden ones are left out.  Stats each file,
 * reads none: cheap enough for every round of the check.
 */
uint64_t updates_inputs_fingerprint(const struct updates_input *inputs,
				    size_t n);

/* What one apt run found, reported until the next one ends. */
struct updates_snapshot {
	bool valid;
	bool seeded;             /* from the state database, not from a run
				  * of this configuration */
	int64_t at_ms;           /* wall clock of the run */
	struct updates_sim sim;
	char *sim_error;         /* why there is no sim, or NULL */
	bool unattended;
	char *unattended_error;  /* why it is unknown, or NULL */
	int64_t cpu_us;          /* both children together */
	uint64_t inputs;         /* updates_inputs_fingerprint() before the run */
};

void updates_snapshot_clear(struct updates_snapshot *s);

struct sqlite3;

/*
 * The last snapshot in the agent's state database (updates_state.c), so
 * that a restarted or reloaded agent reports at once instead of waiting
 * for apt, which may take seconds of CPU.  key names what the snapshot
 * depends on in the configuration (apt's programs, mode, patterns): a
 * snapshot saved under another key is not loaded.  Both return 0 or
 * -errno; load returns -ENOENT when there is none, and fills *ret (which
 * the caller clears) only on success, with seeded set.
 */
int updates_state_save(struct sqlite3 *db, const char *key,
		       const struct updates_snapshot *s);
int updates_state_load(struct sqlite3 *db, const char *key,
		       struct updates_snapshot *ret);

#endif
