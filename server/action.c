#include "action.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "../common/util.h"
#include "account.h"
#include "api.h"
#include "console_api.h"
#include "desk.h"
#include "session.h"
#include "store.h"
#include "writer.h"

#define ACTION_TEXT_MAX (16 * 1024)

enum action_kind {
	ACT_ACKNOWLEDGE,
	ACT_START,
	ACT_ASK,
	ACT_ASSIGN,
	ACT_UNASSIGN,
	ACT_COMMENT,
	ACT_ESCALATE,
	ACT_PRIORITY,
	ACT_URGENCY,
	ACT_IMPACT,
	ACT_MERGE,
	ACT_RESOLVE,
	ACT_CLOSE,
	ACT_REOPEN,
};

#define S(x) (1u << STATUS_##x)
#define OPEN_STATES (S(NEW) | S(ACKNOWLEDGED) | S(IN_PROGRESS) | S(WAITING) | S(RECOVERED))

static const struct action_def {
	const char *name;
	unsigned from;	/* statuses it is allowed in */
	const char *param; /* the body member it needs, or NULL */
} actions[] = {
	[ACT_ACKNOWLEDGE] = { "acknowledge", S(NEW), NULL },
	[ACT_START] = { "start", S(NEW) | S(ACKNOWLEDGED) | S(WAITING) | S(RECOVERED), NULL },
	[ACT_ASK] = { "ask", S(NEW) | S(ACKNOWLEDGED) | S(IN_PROGRESS) | S(RECOVERED), "text" },
	[ACT_ASSIGN] = { "assign", OPEN_STATES, "assignee" },
	[ACT_UNASSIGN] = { "unassign", OPEN_STATES, NULL },
	[ACT_COMMENT] = { "comment", OPEN_STATES | S(RESOLVED) | S(CLOSED), "text" },
	[ACT_ESCALATE] = { "escalate", OPEN_STATES, NULL },
	[ACT_PRIORITY] = { "priority", OPEN_STATES, "priority" },
	[ACT_URGENCY] = { "urgency", OPEN_STATES, "urgency" },
	[ACT_IMPACT] = { "impact", OPEN_STATES, "impact" },
	[ACT_MERGE] = { "merge", OPEN_STATES | S(RESOLVED), "into" },
	[ACT_RESOLVE] = { "resolve", OPEN_STATES, "note" },
	[ACT_CLOSE] = { "close", S(RESOLVED) | S(RECOVERED), NULL },
	[ACT_REOPEN] = { "reopen", S(RESOLVED) | S(CLOSED), NULL },
};

struct action_job {
	struct desk *d;
	enum action_kind kind;
	int64_t ticket_id, now_ms;
	struct actor by; /* who acts: checked first (session_check_actor()) */
	const char *text;  /* text, note */
	const char *value; /* assignee, priority, urgency, impact, party, visibility */
	int64_t into;
	/* Outcome of a refusal: a 4xx and its message. */
	unsigned status;
	char err[512];
	/* Filled by the job for the change announcement. */
	struct desk_core core;
	struct desk_row row;
};

static int refuse(struct action_job *j, unsigned status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int refuse(struct action_job *j, unsigned status, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(j->err, sizeof(j->err), fmt, ap);
	va_end(ap);
	j->status = status;
	return writer_refuse(-ECANCELED);
}

static int announce(struct action_job *j, enum ticket_change_kind kind,
		    const char *field, const char *old_value,
		    const char *new_value, const char *text)
{
	return desk_announce(j->d, &j->core, kind, j->now_ms, j->by.name,
			     field, old_value, new_value, text);
}

static int journal(struct action_job *j, int64_t ticket_id, const char *action,
		   const char *old_value, const char *new_value, const char *text)
{
	return store_journal_add(j->d->st, ticket_id, j->now_ms, j->by.name,
				 action, old_value, new_value, text);
}

/* Move the ticket to status, journal it and announce with kind. */
static int change_status(struct action_job *j, enum ticket_status to,
			 const char *text)
{
	enum ticket_status from = j->core.status;
	enum ticket_change_kind kind = TICKET_ACTION;
	int r;

	r = desk_set_status(j->d, j->core.id, to, j->now_ms);
	if (r == -EEXIST)
		return refuse(j, MHD_HTTP_CONFLICT,
			      "ticket %lld cannot be reopened: another ticket is open for the same problem",
			      (long long)j->core.id);
	if (r < 0)
		return r;
	r = journal(j, j->core.id, "status", sla_status_name(from),
		    sla_status_name(to), text);
	if (r < 0)
		return r;
	j->core.status = to;
	if (to == STATUS_RESOLVED) {
		kind = TICKET_RESOLVED;
		j->core.resolved_ms = j->now_ms;
	} else if (to == STATUS_CLOSED) {
		kind = TICKET_CLOSED;
	} else if (!sla_status_open(from)) {
		kind = TICKET_REOPENED;
		j->core.resolved_ms = -1;
	}
	r = desk_refresh(j->d, &j->core, &j->row, j->now_ms);
	if (r < 0)
		return r;
	return announce(j, kind, "status", sla_status_name(from),
			sla_status_name(to), text);
}

/* A field of the row changed from old to new: journal, refresh, announce. */
static int field_changed(struct action_job *j, const char *field,
			 const char *old_value, const char *new_value,
			 const char *text)
{
	int r = journal(j, j->core.id, field, old_value, new_value, text);

	if (r == 0)
		r = desk_refresh(j->d, &j->core, &j->row, j->now_ms);
	if (r == 0)
		r = announce(j, TICKET_ACTION, field, old_value, new_value, text);
	return r;
}

static bool assignee_known(struct desk *d, const struct server_config *conf,
			   const char *name)
{
	if (helpdesk_person(d->hc, name) != NULL)
		return true;
	for (size_t i = 0; conf && i < conf->ntokens; i++)
		if (strcmp(conf->tokens[i].name, name) == 0 &&
		    (conf->tokens[i].perms & PERM_WRITE))
			return true;
	return false;
}

/*
 * New targets for the row's priority, measured from the opening, and the
 * warned and overdue marks the new clocks no longer justify taken back.
 */
static int retarget(struct action_job *j)
{
	struct sla_state sla;
	int r;

	desk_targets(j->d, &j->row, j->core.opened_ms);
	r = desk_sla(j->d, &j->core, &j->row, j->now_ms, &sla);
	if (r == 0)
		desk_reset_flags(j->d, &j->row, &sla);
	return r;
}

/* impact, urgency or priority: a name of its scale, then the new priority. */
static int set_scale(struct action_job *j, const char *field, char *slot,
		     char *const *scale)
{
	char old[DESK_NAME_MAX], oldprio[DESK_NAME_MAX];
	const struct helpdesk_config *hc = j->d->hc;
	int r;

	if (helpdesk_index(scale, j->value) < 0) {
		char names[256] = "";

		for (size_t i = 0; scale[i]; i++) {
			if (i)
				strlcat_safe(names, ", ", sizeof(names));
			strlcat_safe(names, scale[i], sizeof(names));
		}
		return refuse(j, MHD_HTTP_BAD_REQUEST, "%s: '%s' is not one of %s", field,
			      j->value, names);
	}
	strlcpy_safe(old, slot, sizeof(old));
	strlcpy_safe(oldprio, j->row.priority, sizeof(oldprio));
	strlcpy_safe(slot, j->value, DESK_NAME_MAX);
	if (slot == j->row.priority)
		j->row.priority_manual = true;
	else if (!j->row.priority_manual)
		strlcpy_safe(j->row.priority,
			     hc->priorities[helpdesk_priority(
				     hc, helpdesk_index(hc->impacts, j->row.impact),
				     helpdesk_index(hc->urgencies, j->row.urgency))],
			     DESK_NAME_MAX);
	/* Set by hand, a worse check state no longer raises it (routing.c). */
	if (slot == j->row.urgency)
		j->row.urgency_manual = true;
	r = retarget(j);
	if (r == 0)
		r = field_changed(j, field, old, j->value, j->text);
	if (r == 0 && slot != j->row.priority && strcmp(oldprio, j->row.priority) != 0)
		r = field_changed(j, "priority", oldprio, j->row.priority, NULL);
	return r;
}

static int do_merge(struct action_job *j)
{
	struct desk_core target = { 0 };
	enum ticket_status status;
	char ids[2][24];
	int r;

	if (j->into == j->core.id)
		return refuse(j, MHD_HTTP_BAD_REQUEST, "into: a ticket cannot be merged into itself");
	r = desk_core_get(j->d, j->into, &target);
	status = target.status;
	desk_core_clear(&target);
	if (r < 0)
		return r;
	if (r == 0)
		return refuse(j, MHD_HTTP_NOT_FOUND, "into: no ticket %lld", (long long)j->into);
	if (status == STATUS_CLOSED)
		return refuse(j, MHD_HTTP_CONFLICT,
			      "cannot merge into ticket %lld: it is closed",
			      (long long)j->into);
	snprintf(ids[0], sizeof(ids[0]), "%lld", (long long)j->core.id);
	snprintf(ids[1], sizeof(ids[1]), "%lld", (long long)j->into);
	j->row.merged_into = j->into;
	r = journal(j, j->core.id, "merge", NULL, ids[1], j->text);
	if (r == 0)
		r = journal(j, j->into, "merged", NULL, ids[0], j->text);
	if (r == 0)
		r = change_status(j, STATUS_CLOSED, j->text ? j->text : "merged as a duplicate");
	return r;
}

/*
 * The writer job of one action: check that its session may still act,
 * load the ticket, check the transition, apply it.  A refusal returns
 * -ECANCELED with the 4xx in the job, or -ESTALE or -EKEYREVOKED for the
 * session (and the savepoint undoes nothing, as nothing was written yet).
 */
static int action_apply(struct store *st, void *arg)
{
	struct action_job *j = arg;
	const struct action_def *def = &actions[j->kind];
	char oldlvl[12], newlvl[12];
	int r;

	(void)st;
	r = session_check_actor(&j->by);
	if (r < 0)
		return r;
	r = desk_core_get(j->d, j->ticket_id, &j->core);
	if (r == 0)
		return refuse(j, MHD_HTTP_NOT_FOUND, "no ticket %lld", (long long)j->ticket_id);
	if (r < 0)
		return r;
	r = desk_row_get(j->d, j->ticket_id, &j->row);
	if (r == 0)
		return refuse(j, MHD_HTTP_CONFLICT,
			      "ticket %lld has no helpdesk fields yet; retry", (long long)j->ticket_id);
	if (r < 0)
		return r;
	if (!(def->from & (1u << j->core.status))) {
		char allowed[160] = "";

		for (int s = 0; s < STATUS_COUNT; s++) {
			if (!(def->from & (1u << s)))
				continue;
			if (allowed[0])
				strlcat_safe(allowed, ", ", sizeof(allowed));
			strlcat_safe(allowed, sla_status_name((enum ticket_status)s),
				     sizeof(allowed));
		}
		return refuse(j, MHD_HTTP_CONFLICT,
			      "cannot %s ticket %lld: it is %s, and %s needs %s",
			      def->name, (long long)j->ticket_id,
			      sla_status_name(j->core.status), def->name, allowed);
	}
	if (j->kind == ACT_REOPEN && j->row.merged_into > 0)
		return refuse(j, MHD_HTTP_CONFLICT,
			      "cannot reopen ticket %lld: it was merged into ticket %lld",
			      (long long)j->ticket_id, (long long)j->row.merged_into);
	switch (j->kind) {
	case ACT_ACKNOWLEDGE:
		return change_status(j, STATUS_ACKNOWLEDGED, j->text);
	case ACT_START:
		return change_status(j, STATUS_IN_PROGRESS, j->text);
	case ACT_ASK:
		r = journal(j, j->core.id, "ask", NULL, j->value, j->text);
		if (r == 0)
			r = announce(j, TICKET_ACTION, "ask", NULL, j->value, j->text);
		return r == 0 ? change_status(j, STATUS_WAITING, j->text) : r;
	case ACT_ASSIGN: {
		char old[DESK_NAME_MAX];

		strlcpy_safe(old, j->row.assignee, sizeof(old));
		strlcpy_safe(j->row.assignee, j->value, DESK_NAME_MAX);
		return field_changed(j, "assignee", old[0] ? old : NULL, j->value, j->text);
	}
	case ACT_UNASSIGN: {
		char old[DESK_NAME_MAX];

		/* Nothing to journal: say so rather than record a non-change. */
		if (j->row.assignee[0] == '\0')
			return refuse(j, MHD_HTTP_CONFLICT,
				      "cannot unassign ticket %lld: it has no assignee",
				      (long long)j->ticket_id);
		strlcpy_safe(old, j->row.assignee, sizeof(old));
		j->row.assignee[0] = '\0';
		return field_changed(j, "assignee", old, NULL, j->text);
	}
	case ACT_COMMENT:
		r = journal(j, j->core.id, "comment", NULL, j->value, j->text);
		return r == 0 ? announce(j, TICKET_ACTION, "comment", NULL, j->value, j->text)
			      : r;
	case ACT_ESCALATE:
		if (j->row.level >= HELPDESK_LEVELS)
			return refuse(j, MHD_HTTP_CONFLICT,
				      "cannot escalate ticket %lld: it is already at level %d, the last",
				      (long long)j->ticket_id, j->row.level);
		snprintf(oldlvl, sizeof(oldlvl), "%d", j->row.level);
		j->row.level++;
		snprintf(newlvl, sizeof(newlvl), "%d", j->row.level);
		return field_changed(j, "level", oldlvl, newlvl, j->text);
	case ACT_PRIORITY:
		return set_scale(j, "priority", j->row.priority, j->d->hc->priorities);
	case ACT_URGENCY:
		return set_scale(j, "urgency", j->row.urgency, j->d->hc->urgencies);
	case ACT_IMPACT:
		return set_scale(j, "impact", j->row.impact, j->d->hc->impacts);
	case ACT_MERGE:
		return do_merge(j);
	case ACT_RESOLVE:
		return change_status(j, STATUS_RESOLVED, j->text);
	case ACT_CLOSE:
		return change_status(j, STATUS_CLOSED, j->text);
	case ACT_REOPEN:
		return change_status(j, STATUS_IN_PROGRESS, j->text);
	}
	return -EINVAL;
}

/* A string member of at most max bytes, or NULL; -EINVAL when mistyped. */
static int body_string(json_t *body, const char *key, size_t max,
		       const char **ret, struct http_response *resp)
{
	json_t *v = json_object_get(body, key);

	*ret = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v) || json_string_length(v) == 0) {
		http_error(resp, MHD_HTTP_BAD_REQUEST, "%s: expected a non-empty string", key);
		return -EINVAL;
	}
	if (json_string_length(v) > max) {
		http_error(resp, MHD_HTTP_BAD_REQUEST, "%s: longer than %zu bytes", key, max);
		return -EINVAL;
	}
	*ret = json_string_value(v);
	return 0;
}

/* Validate the body into j; 0, or -EINVAL with a 400 already in resp. */
static int parse_body(const struct http_request *req, struct api *api,
		      struct action_job *j, json_t **ret_doc,
		      struct http_response *resp)
{
	json_error_t jerr;
	json_t *doc = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
	const char *name = NULL, *param;
	size_t k;

	if (doc == NULL || !json_is_object(doc)) {
		if (doc == NULL)
			http_error(resp, MHD_HTTP_BAD_REQUEST,
				   "malformed JSON at line %d, column %d: %s", jerr.line,
				   jerr.column, jerr.text);
		else
			http_error(resp, MHD_HTTP_BAD_REQUEST, "expected a JSON object");
		json_decref(doc);
		return -EINVAL;
	}
	*ret_doc = doc;
	if (body_string(doc, "action", 32, &name, resp) < 0)
		return -EINVAL;
	for (k = 0; name && k < ARRAY_SIZE(actions); k++)
		if (strcmp(actions[k].name, name) == 0)
			break;
	if (name == NULL || k == ARRAY_SIZE(actions)) {
		http_error(resp, MHD_HTTP_BAD_REQUEST,
			   "action: %s%s%s is not one of acknowledge, start, ask, assign, unassign, comment, escalate, priority, urgency, impact, merge, resolve, close, reopen",
			   name ? "'" : "", name ? name : "missing, it", name ? "'" : "");
		return -EINVAL;
	}
	j->kind = (enum action_kind)k;
	param = actions[k].param;
	if (body_string(doc, j->kind == ACT_RESOLVE ? "note" : "text", ACTION_TEXT_MAX,
			&j->text, resp) < 0)
		return -EINVAL;
	if (param && strcmp(param, "into") == 0) {
		json_t *v = json_object_get(doc, "into");

		if (!json_is_integer(v) || json_integer_value(v) <= 0) {
			http_error(resp, MHD_HTTP_BAD_REQUEST,
				   "into: expected the id of the ticket to merge into");
			return -EINVAL;
		}
		j->into = json_integer_value(v);
	} else if (param && strcmp(param, "text") != 0 && strcmp(param, "note") != 0) {
		if (body_string(doc, param, DESK_NAME_MAX - 1, &j->value, resp) < 0)
			return -EINVAL;
		if (j->value == NULL) {
			http_error(resp, MHD_HTTP_BAD_REQUEST, "%s: needed for %s", param, name);
			return -EINVAL;
		}
	} else if (param && j->text == NULL) {
		http_error(resp, MHD_HTTP_BAD_REQUEST, "%s: needed for %s", param, name);
		return -EINVAL;
	}
	if (j->kind == ACT_ASK) {
		if (body_string(doc, "party", 32, &j->value, resp) < 0)
			return -EINVAL;
		j->value = j->value ? j->value : "customer";
		if (strcmp(j->value, "customer") != 0 && strcmp(j->value, "third_party") != 0) {
			http_error(resp, MHD_HTTP_BAD_REQUEST,
				   "party: '%s' is not customer or third_party", j->value);
			return -EINVAL;
		}
	}
	if (j->kind == ACT_COMMENT) {
		if (body_string(doc, "visibility", 32, &j->value, resp) < 0)
			return -EINVAL;
		j->value = j->value ? j->value : "internal";
		if (strcmp(j->value, "internal") != 0 && strcmp(j->value, "customer") != 0) {
			http_error(resp, MHD_HTTP_BAD_REQUEST,
				   "visibility: '%s' is not internal or customer", j->value);
			return -EINVAL;
		}
	}
	if (j->kind == ACT_ASSIGN && !assignee_known(api->desk, api->conf, j->value)) {
		http_error(resp, MHD_HTTP_BAD_REQUEST,
			   "assignee: '%s' is neither under people: nor a technician's token name",
			   j->value);
		return -EINVAL;
	}
	return 0;
}

/*
 * The route: validate the body on the HTTP thread, run the job on the
 * writer, answer the ticket as it is after the commit.
 */
void action_post(void *app, const struct http_request *req,
		 struct http_response *resp)
{
	struct api *api = app;
	struct action_job *j;
	json_t *doc = NULL, *ticket = NULL;
	char action[32], target[32];
	int64_t id;
	int r;

	if (api->desk == NULL) {
		http_error(resp, MHD_HTTP_SERVICE_UNAVAILABLE, "the helpdesk is not running");
		return;
	}
	if (parse_int64(req->param, &id) < 0 || id <= 0) {
		http_error(resp, MHD_HTTP_BAD_REQUEST, "'%s' is not a ticket id", req->param);
		return;
	}
	j = xcalloc(1, sizeof(*j));
	j->d = api->desk;
	j->ticket_id = id;
	if (parse_body(req, api, j, &doc, resp) < 0)
		goto out;
	console_api_actor(api, req, &j->by);
	j->now_ms = time_now_ms();
	r = writer_run(api->writer, action_apply, j);
	snprintf(action, sizeof(action), "ticket.%s", actions[j->kind].name);
	snprintf(target, sizeof(target), "ticket %lld", (long long)id);
	if (console_api_actor_refused(api, &j->by, r, action, target, resp))
		goto out;
	if (r == -ECANCELED) {
		http_error(resp, j->status, "%s", j->err);
		goto out;
	}
	if (r < 0) {
		log_warnx("ticket %lld: %s failed: %s", (long long)id, actions[j->kind].name,
			  strerror(-r));
		http_error(resp, MHD_HTTP_SERVICE_UNAVAILABLE,
			   "%s failed: the store is unavailable, retry later",
			   actions[j->kind].name);
		resp->retry_after_s = 5;
		goto out;
	}
	store_lock(api->store);
	r = store_ticket_get(api->store, id, 0, &ticket);
	if (r == 0)
		r = desk_ticket_json(api->desk, id, ticket, true, time_now_ms());
	store_unlock(api->store);
	if (r < 0) {
		json_decref(ticket);
		http_error(resp, MHD_HTTP_SERVICE_UNAVAILABLE, "reading the ticket failed");
		goto out;
	}
	resp->json = ticket;
out:
	json_decref(doc);
	desk_core_clear(&j->core);
	free(j);
}
