/*
 * Usage samples in the agent's state database; see fillrate.h.
 */
#include "fillrate.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../common/db.h"
#include "../common/util.h"

static const char *const fillrate_steps[] = {
	"CREATE TABLE fill_samples ("
	" source TEXT NOT NULL,"  /* the check that took the sample */
	" volume TEXT NOT NULL,"  /* mount point or backup directory */
	" t_ms INTEGER NOT NULL," /* wall clock, ms since the epoch */
	" used INTEGER NOT NULL," /* bytes in use */
	" PRIMARY KEY (source, volume, t_ms)) WITHOUT ROWID",
};

static const struct db_schema fillrate_schema = {
	.module = "fillrate",
	.steps = fillrate_steps,
	.nsteps = ARRAY_SIZE(fillrate_steps),
};

struct volume {
	char *name;
	struct predict_sample *v; /* sorted by time */
	size_t n;
	size_t cap;
	bool loaded;
	bool fitted; /* fit is up to date with v */
	struct prediction fit;
};

struct fillrate {
	char *source;
	const struct check_env *env;
	sqlite3 *db; /* the connection the statements belong to */
	sqlite3_stmt *load;
	sqlite3_stmt *insert;
	sqlite3_stmt *trim;
	sqlite3_stmt *drop_future;
	struct volume *vols;
	size_t nvols;
};

struct fillrate *fillrate_new(const char *source, const struct check_env *env)
{
	struct fillrate *fr = xcalloc(1, sizeof(*fr));

	fr->source = xstrdup(source);
	fr->env = env;
	return fr;
}

static void finalize_all(struct fillrate *fr)
{
	sqlite3_finalize(fr->load);
	sqlite3_finalize(fr->insert);
	sqlite3_finalize(fr->trim);
	sqlite3_finalize(fr->drop_future);
	fr->load = fr->insert = fr->trim = fr->drop_future = NULL;
	fr->db = NULL;
}

void fillrate_free(struct fillrate *fr)
{
	if (fr == NULL)
		return;
	finalize_all(fr);
	for (size_t i = 0; i < fr->nvols; i++) {
		free(fr->vols[i].name);
		free(fr->vols[i].v);
	}
	free(fr->vols);
	free(fr->source);
	free(fr);
}

const char *fillrate_strerror(int err)
{
	if (err == -ENODEV)
		return "no state database";
	if (err == -E2BIG)
		return "too many volumes";
	if (err == -EPROTO)
		return "the state database was written by a newer agent";
	return strerror(-err);
}

/*
 * Make sure the schema exists and the statements are prepared on the
 * current connection.  Samples older than the longest window anyone may
 * configure (volumes that are gone) are deleted on the way.
 */
static int fillrate_ready(struct fillrate *fr, int64_t now_ms)
{
	sqlite3 *db = fr->env ? fr->env->db : NULL;
	sqlite3_stmt *s = NULL;
	int r;

	if (db == NULL)
		return -ENODEV;
	if (fr->db == db)
		return 0;
	finalize_all(fr);
	r = db_migrate(db, &fillrate_schema);
	if (r < 0)
		return r;
	if ((r = db_prepare(db,
			    "SELECT t_ms, used FROM fill_samples"
			    " WHERE source = ?1 AND volume = ?2 AND t_ms >= ?3"
			    " ORDER BY t_ms DESC LIMIT ?4",
			    &fr->load)) < 0 ||
	    (r = db_prepare(db,
			    "INSERT OR REPLACE INTO fill_samples(source, volume, t_ms, used)"
			    " VALUES (?1, ?2, ?3, ?4)",
			    &fr->insert)) < 0 ||
	    (r = db_prepare(db,
			    "DELETE FROM fill_samples"
			    " WHERE source = ?1 AND volume = ?2 AND t_ms < ?3",
			    &fr->trim)) < 0 ||
	    (r = db_prepare(db,
			    "DELETE FROM fill_samples"
			    " WHERE source = ?1 AND volume = ?2 AND t_ms > ?3",
			    &fr->drop_future)) < 0)
		goto fail;
	r = db_prepare(db, "DELETE FROM fill_samples WHERE source = ?1 AND t_ms < ?2",
		       &s);
	if (r < 0)
		goto fail;
	sqlite3_bind_text(s, 1, fr->source, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 2, now_ms - PREDICT_WINDOW_MAX_MS);
	r = db_step_done(s);
	sqlite3_finalize(s);
	if (r < 0)
		goto fail;
	fr->db = db;
	return 0;
fail:
	finalize_all(fr);
	return r;
}

/* How far apart stored samples are, and how many a volume keeps. */
static int64_t spacing_ms(const struct predict_config *pc)
{
	int64_t a = pc->short_window_ms / 72;
	int64_t b = pc->long_window_ms / (FILLRATE_SAMPLES_MAX - 16);

	a = a > b ? a : b;
	return a > 1000 ? a : 1000;
}

static struct volume *volume_get(struct fillrate *fr, const char *name)
{
	struct volume *vol;

	for (size_t i = 0; i < fr->nvols; i++)
		if (strcmp(fr->vols[i].name, name) == 0)
			return &fr->vols[i];
	if (fr->nvols >= FILLRATE_VOLUMES_MAX)
		return NULL;
	fr->vols = xreallocarray(fr->vols, fr->nvols + 1, sizeof(*fr->vols));
	vol = &fr->vols[fr->nvols++];
	*vol = (struct volume){ .name = xstrdup(name) };
	return vol;
}

/* Read the volume's samples of the long window (newest first) into vol. */
static int volume_load(struct fillrate *fr, struct volume *vol,
		       const struct predict_config *pc, int64_t now_ms)
{
	sqlite3_stmt *s = fr->load;
	int rc;

	/* room for one long window at the sample spacing */
	vol->cap = (size_t)(pc->long_window_ms / spacing_ms(pc)) + 16;
	if (vol->cap > FILLRATE_SAMPLES_MAX)
		vol->cap = FILLRATE_SAMPLES_MAX;
	vol->v = xreallocarray(vol->v, vol->cap, sizeof(*vol->v));
	vol->n = 0;
	sqlite3_bind_text(s, 1, fr->source, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, vol->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, now_ms - pc->long_window_ms);
	sqlite3_bind_int64(s, 4, (sqlite3_int64)vol->cap);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW && vol->n < vol->cap) {
		vol->v[vol->n++] = (struct predict_sample){
			.t_ms = sqlite3_column_int64(s, 0),
			.used = (double)sqlite3_column_int64(s, 1),
		};
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (rc != SQLITE_DONE && rc != SQLITE_ROW) {
		vol->n = 0;
		return sqlite_to_errno(rc);
	}
	/* newest first from the query; the fit wants oldest first */
	for (size_t i = 0; i < vol->n / 2; i++) {
		struct predict_sample tmp = vol->v[i];

		vol->v[i] = vol->v[vol->n - 1 - i];
		vol->v[vol->n - 1 - i] = tmp;
	}
	vol->loaded = true;
	return 0;
}

/* Run a trim statement (?3 = t) for vol; failures only cost disk space. */
static void volume_delete(struct fillrate *fr, sqlite3_stmt *s,
			  const struct volume *vol, int64_t t_ms)
{
	sqlite3_bind_text(s, 1, fr->source, -1, SQLITE_STATIC);
	sqlite3_bind_text(s, 2, vol->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(s, 3, t_ms);
	(void)db_step_done(s);
}

/*
 * Append a sample in memory and in the database, dropping what fell out
 * of the long window.  A failed write keeps the sample in memory.
 */
static void volume_record(struct fillrate *fr, struct volume *vol,
			  const struct predict_config *pc, int64_t now_ms,
			  uint64_t used)
{
	int64_t cutoff = now_ms - pc->long_window_ms;
	size_t drop = 0;

	while (drop < vol->n && vol->v[drop].t_ms < cutoff)
		drop++;
	if (vol->n - drop >= vol->cap)
		drop = vol->n - vol->cap + 1;
	if (drop > 0) {
		memmove(vol->v, vol->v + drop, (vol->n - drop) * sizeof(*vol->v));
		vol->n -= drop;
	}
	vol->v[vol->n++] = (struct predict_sample){ .t_ms = now_ms,
						    .used = (double)used };
	vol->fitted = false;

	sqlite3_bind_text(fr->insert, 1, fr->source, -1, SQLITE_STATIC);
	sqlite3_bind_text(fr->insert, 2, vol->name, -1, SQLITE_STATIC);
	sqlite3_bind_int64(fr->insert, 3, now_ms);
	sqlite3_bind_int64(fr->insert, 4, (sqlite3_int64)used);
	/* rows older than what memory keeps go too, also those a previous
	 * run left behind (it loaded only the window, so drop may be 0) */
	if (db_step_done(fr->insert) == 0)
		volume_delete(fr, fr->trim, vol, vol->v[0].t_ms);
}

int fillrate_observe(struct fillrate *fr, const char *volume,
		     const struct predict_config *pc, int64_t now_ms,
		     uint64_t used, uint64_t avail, struct prediction *ret)
{
	int64_t spacing = spacing_ms(pc);
	struct prediction p;
	struct volume *vol;
	int r;

	r = fillrate_ready(fr, now_ms);
	if (r < 0)
		return r;
	vol = volume_get(fr, volume);
	if (vol == NULL)
		return -E2BIG;
	if (!vol->loaded && (r = volume_load(fr, vol, pc, now_ms)) < 0)
		return r;
	/* Samples from the future (the clock was set back): forget them,
	 * or the series would stop growing until the clock catches up. */
	if (vol->n > 0 && vol->v[vol->n - 1].t_ms > now_ms) {
		while (vol->n > 0 && vol->v[vol->n - 1].t_ms > now_ms)
			vol->n--;
		volume_delete(fr, fr->drop_future, vol, now_ms);
		vol->fitted = false;
	}
	if (vol->n == 0 || now_ms - vol->v[vol->n - 1].t_ms >= spacing)
		volume_record(fr, vol, pc, now_ms, used);
	if (!vol->fitted) {
		predict_evaluate(pc, vol->v, vol->n, now_ms, avail, &vol->fit);
		vol->fitted = true;
	}
	p = vol->fit;
	p.history_ms = vol->n > 0 ? now_ms - vol->v[0].t_ms : 0;
	predict_judge(pc, avail, &p);
	*ret = p;
	return 0;
}
