/*
 * Usage samples of volumes, kept across restarts in the agent's state
 * database, and the fill-rate prediction made from them (predict.h).
 *
 * One struct fillrate per check (the disk check, the backup check), each
 * with its own source name in the shared table, so that two checks looking
 * at one file system do not thin out each other's series.  A sample is
 * stored at most every short window / 72 (5 minutes by default), older
 * ones than the long window are deleted, and a volume keeps at most
 * FILLRATE_SAMPLES_MAX samples: about 900 rows per volume with the
 * defaults.
 *
 * The samples of a volume are read from the database once, on first use;
 * after that the series lives in memory and only new samples are written.
 * When a write fails (the state directory's file system is full, which may
 * well be the very volume being predicted) the sample is still kept in
 * memory, so the prediction goes on until the agent restarts.
 */
#ifndef TOCSIN_FILLRATE_H
#define TOCSIN_FILLRATE_H

#include <stdint.h>

#include "check.h"
#include "predict.h"

#define FILLRATE_SAMPLES_MAX 2048
#define FILLRATE_VOLUMES_MAX 256

struct fillrate;

/*
 * A store for source ("disk", "backup"); env->db is looked at on each
 * use, since the agent opens it only after every check is configured.
 */
struct fillrate *fillrate_new(const char *source, const struct check_env *env);
void fillrate_free(struct fillrate *fr);

/*
 * Record that volume has used bytes in use and avail bytes free at now_ms
 * and predict when it is full.  0 and *ret; -ENODEV when there is no
 * state database, -E2BIG past FILLRATE_VOLUMES_MAX volumes, other -errno
 * when the database cannot be read (*ret untouched then).
 */
int fillrate_observe(struct fillrate *fr, const char *volume,
		     const struct predict_config *pc, int64_t now_ms,
		     uint64_t used, uint64_t avail, struct prediction *ret);

/* Why there is no prediction, for a summary: "no state database", ... */
const char *fillrate_strerror(int err);

#endif
