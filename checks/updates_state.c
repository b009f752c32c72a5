/*
 * The updates check's last apt snapshot in the agent's state database,
 * see updates.h.  One row, the snapshot as JSON: it is written once per
 * apt run (hourly by default) and read once per configuration.
 */
#include "updates.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/db.h"
#include "../common/utf8.h"
#include "../common/util.h"

static const char *const schema_steps[] = {
	"CREATE TABLE updates_snapshot ("
	" id INTEGER PRIMARY KEY CHECK (id = 1),"
	" config TEXT NOT NULL,"
	" at_ms INTEGER NOT NULL,"
	" snapshot TEXT NOT NULL)",
};

static const struct db_schema updates_schema = {
	.module = "updates",
	.steps = schema_steps,
	.nsteps = ARRAY_SIZE(schema_steps),
};

static json_t *optional_string(const char *s)
{
	return s ? utf8_json_string(s) : json_null();
}

static json_t *encode(const struct updates_snapshot *s)
{
	json_t *pkgs = json_array(), *j;
	char inputs[17];

	for (size_t i = 0; i < s->sim.n; i++) {
		const struct updates_pkg *p = &s->sim.v[i];

		json_array_append_new(pkgs, json_pack("[o, o, o, b]",
						      utf8_json_string(p->name),
						      optional_string(p->from),
						      utf8_json_string(p->to),
						      p->security));
	}
	/* hexadecimal: JSON's integers (jansson's) are signed */
	snprintf(inputs, sizeof(inputs), "%016llx", (unsigned long long)s->inputs);
	j = json_pack("{s:o, s:b, s:o, s:I, s:I, s:o, s:s}", "sim_error",
		      optional_string(s->sim_error), "unattended",
		      s->unattended, "unattended_error",
		      optional_string(s->unattended_error), "cpu_us",
		      (json_int_t)s->cpu_us, "removals",
		      (json_int_t)s->sim.removals, "packages", pkgs, "inputs",
		      inputs);
	return j;
}

int updates_state_save(struct sqlite3 *db, const char *key,
		       const struct updates_snapshot *s)
{
	sqlite3_stmt *st = NULL;
	json_t *j = encode(s);
	char *text = j ? json_dumps(j, JSON_COMPACT) : NULL;
	int r;

	json_decref(j);
	if (text == NULL)
		return -ENOMEM;
	r = db_migrate(db, &updates_schema);
	if (r == 0)
		r = db_prepare(db, "INSERT OR REPLACE INTO updates_snapshot"
				   " (id, config, at_ms, snapshot) VALUES (1, ?1, ?2, ?3)",
			       &st);
	if (r == 0) {
		db_bind_text(st, 1, key);
		sqlite3_bind_int64(st, 2, s->at_ms);
		db_bind_text(st, 3, text);
		r = db_step_done(st);
	}
	sqlite3_finalize(st);
	free(text);
	return r;
}

static char *dup_or_null(const json_t *j)
{
	return json_is_string(j) ? xstrdup(json_string_value(j)) : NULL;
}

/* The packages back into sim, with the counts updates_parse_sim keeps. */
static int decode_packages(const json_t *pkgs, struct updates_sim *sim)
{
	size_t i;
	json_t *e;

	if (!json_is_array(pkgs) || json_array_size(pkgs) > UPDATES_SIM_MAX)
		return -EBADMSG;
	sim->cap = json_array_size(pkgs);
	sim->v = xcalloc(sim->cap ? sim->cap : 1, sizeof(*sim->v));
	json_array_foreach(pkgs, i, e) {
		struct updates_pkg *p = &sim->v[sim->n];

		if (!json_is_array(e) || json_array_size(e) != 4 ||
		    !json_is_string(json_array_get(e, 0)) ||
		    !json_is_string(json_array_get(e, 2)))
			return -EBADMSG;
		p->name = dup_or_null(json_array_get(e, 0));
		p->from = dup_or_null(json_array_get(e, 1));
		p->to = dup_or_null(json_array_get(e, 2));
		p->security = json_is_true(json_array_get(e, 3));
		sim->n++;
		if (p->from == NULL) {
			sim->installs++;
		} else {
			sim->upgrades++;
			sim->security += p->security;
		}
	}
	return 0;
}

static int decode(const char *text, int64_t at_ms, struct updates_snapshot *ret)
{
	struct updates_snapshot s = { .valid = true, .seeded = true, .at_ms = at_ms };
	json_t *j = json_loads(text, 0, NULL);
	json_int_t removals = 0, cpu_us = 0;
	const char *inputs;
	int r = -EBADMSG;

	if (j == NULL)
		return -EBADMSG;
	if (json_unpack(j, "{s:I, s:I}", "removals", &removals, "cpu_us",
			&cpu_us) < 0 || removals < 0)
		goto out;
	s.sim.removals = (size_t)removals;
	s.cpu_us = cpu_us;
	s.unattended = json_is_true(json_object_get(j, "unattended"));
	s.sim_error = dup_or_null(json_object_get(j, "sim_error"));
	s.unattended_error = dup_or_null(json_object_get(j, "unattended_error"));
	/* a snapshot saved before fingerprints has none: 0, taken as changed */
	inputs = json_string_value(json_object_get(j, "inputs"));
	if (inputs != NULL)
		s.inputs = strtoull(inputs, NULL, 16);
	r = decode_packages(json_object_get(j, "packages"), &s.sim);
out:
	json_decref(j);
	if (r < 0) {
		updates_snapshot_clear(&s);
		return r;
	}
	*ret = s;
	return 0;
}

int updates_state_load(struct sqlite3 *db, const char *key,
		       struct updates_snapshot *ret)
{
	sqlite3_stmt *st = NULL;
	int r = db_migrate(db, &updates_schema);

	if (r == 0)
		r = db_prepare(db, "SELECT at_ms, snapshot FROM updates_snapshot"
				   " WHERE id = 1 AND config = ?1",
			       &st);
	if (r == 0) {
		db_bind_text(st, 1, key);
		r = sqlite3_step(st);
		if (r == SQLITE_ROW)
			r = decode((const char *)sqlite3_column_text(st, 1),
				   sqlite3_column_int64(st, 0), ret);
		else
			r = r == SQLITE_DONE ? -ENOENT : sqlite_to_errno(r);
	}
	sqlite3_finalize(st);
	return r;
}
