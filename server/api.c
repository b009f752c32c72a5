#include "api.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/log.h"
#include "../common/util.h"
#include "action.h"
#include "credapi.h"
#include "console_api.h"
#include "credentials.h"
#include "dedup.h"
#include "desk.h"
#include "ingest.h"
#include "trapreview.h"
#include "liveness.h"
#include "ticket_query.h"
#include "silence_api.h"
#include "writer.h"

#define TICKETS_PAGE_MAX 1000
#define TICKET_OCCURRENCES_MAX 100

/* A store failure is the server's problem, and worth a retry later. */
static void store_failure(struct api *api, struct http_response *resp,
			  const char *what, int r)
{
	log_warnx("%s failed: %s (%s)", what, strerror(-r),
		  store_errmsg(api->store));
	http_error(resp, MHD_HTTP_SERVICE_UNAVAILABLE,
		   "%s failed: the store is unavailable, retry later", what);
	resp->retry_after_s = 5;
}

void api_store_failure(struct api *api, struct http_response *resp,
		       const char *what, int r)
{
	store_failure(api, resp, what, r);
}

/* One agent batch on its way through the writer; owned by the job. */
struct ingest_job {
	struct api *api;
	struct ingest_batch *batch;
	int64_t received_ms;
	struct dedup_stats stats;
	struct http_deferred *deferred; /* the request waiting for the answer */
	size_t bytes;			/* taken from api->ingest_bytes */
};

/* Writer job: one agent batch, whole or not at all. */
static int ingest_job_apply(struct store *st, void *arg)
{
	struct ingest_job *job = arg;

	if (job->api->liveness != NULL)
		return liveness_ingest(job->api->liveness, st, job->batch,
				       job->received_ms, &job->stats);
	return dedup_apply(st, job->batch, job->received_ms, &job->stats);
}

/* The parsed batch goes where it was made: freed on an HTTP thread. */
static void ingest_job_free(void *arg)
{
	struct ingest_job *job = arg;

	ingest_batch_free(job->batch);
	budget_give(&job->api->ingest_bytes, job->bytes);
	free(job);
}

/*
 * On the writer thread once the batch is committed (or failed): count it
 * and answer the waiting request, which frees the job afterwards.
 */
static void ingest_job_done(void *arg, int result)
{
	struct ingest_job *job = arg;
	struct api *api = job->api;
	const struct dedup_stats *stats = &job->stats;
	struct http_response resp = { .status = MHD_HTTP_OK };

	if (result == -EDQUOT) {
		/* 400, not 4xx of its own: the agent splits it (dedup.h). */
		api->counters.batches_over_key_cap++;
		if (stats->refusing_anew)
			log_warnx("refusing batches of host %s: it has %zu problem keys and a batch would add %zu, beyond ingest.max_keys_per_host (%zu); logged once until one of its batches is taken",
				  job->batch->host, stats->keys_known,
				  stats->keys_new, stats->keys_max);
		http_error(&resp, MHD_HTTP_BAD_REQUEST,
			   "host %s has %zu problem keys and this batch would add %zu: more than ingest.max_keys_per_host (%zu) on the collector; batch refused",
			   job->batch->host, stats->keys_known, stats->keys_new,
			   stats->keys_max);
	} else if (result == -EAGAIN) {
		api->counters.batches_failed++;
		http_error(&resp, MHD_HTTP_SERVICE_UNAVAILABLE,
			   "the collector is busy: its store queue is full; retry later");
		resp.retry_after_s = 2;
	} else if (result < 0) {
		api->counters.batches_failed++;
		store_failure(api, &resp, "storing events", result);
	} else {
		api->counters.batches++;
		api->counters.events += stats->accepted;
		api->counters.duplicates += stats->duplicates;
		api->counters.tickets_opened += stats->opened;
		api->counters.tickets_updated += stats->updated;
		api->counters.tickets_resolved += stats->resolved;
		resp.json = json_pack("{s:I, s:I, s:I, s:I, s:I}", "accepted",
				      (json_int_t)stats->accepted, "duplicates",
				      (json_int_t)stats->duplicates,
				      "tickets_opened", (json_int_t)stats->opened,
				      "tickets_updated",
				      (json_int_t)stats->updated,
				      "tickets_resolved",
				      (json_int_t)stats->resolved);
	}
	resp.release = ingest_job_free;
	resp.release_arg = job;
	http_resume(job->deferred, &resp);
}

/*
 * Parsing and validation run here on the HTTP thread; only the validated
 * batch goes to the writer.  The request is suspended until its commit,
 * so the HTTP threads keep serving others meanwhile, and everything that
 * arrives during one commit shares the next: group commit scales with the
 * requests in flight, not with the number of HTTP threads.  A full writer
 * queue answers 503 with Retry-After at once.
 */
static void post_events(void *app, const struct http_request *req,
			struct http_response *resp)
{
	struct api *api = app;
	struct ingest_batch *batch;
	struct ingest_job *job;
	char err[512];
	int r;

	r = ingest_parse(req->body, req->body_len, api->conf->max_batch,
			 &batch, err, sizeof(err));
	if (r < 0) {
		api->counters.batches_rejected++;
		http_error(resp, MHD_HTTP_BAD_REQUEST, "%s", err);
		return;
	}
	/* A per-host credential reports for its own host only. */
	if (req->principal->host[0] != '\0' &&
	    strcmp(req->principal->host, batch->host) != 0) {
		api->counters.batches_rejected++;
		http_error(resp, MHD_HTTP_FORBIDDEN,
			   "the credential of host %s may not report for host %s",
			   req->principal->host, batch->host);
		ingest_batch_free(batch);
		return;
	}
	/* What waiting batches may hold in memory (writer.max_queue_bytes). */
	if (!budget_take(&api->ingest_bytes, req->body_len,
			 api->conf->writer_queue_bytes)) {
		api->counters.batches_failed++;
		http_error(resp, MHD_HTTP_SERVICE_UNAVAILABLE,
			   "the collector is busy: batches waiting for its store hold %zu bytes (writer.max_queue_bytes); retry later",
			   budget_used(&api->ingest_bytes));
		resp->retry_after_s = 2;
		ingest_batch_free(batch);
		return;
	}
	job = xcalloc(1, sizeof(*job));
	job->api = api;
	job->batch = batch;
	job->bytes = req->body_len;
	job->received_ms = time_now_ms();
	job->deferred = http_defer(req);
	r = writer_post(api->writer, ingest_job_apply, job, ingest_job_done);
	if (r < 0)
		ingest_job_done(job, r == -ESHUTDOWN ? -EIO : -EAGAIN);
}

int api_query_int(const struct http_request *req, const char *key,
		     int64_t max, int64_t *ret, struct http_response *resp)
{
	const char *v = http_query(req, key);
	int64_t n;

	if (v == NULL)
		return 0;
	if (parse_int64(v, &n) < 0 || n < 0 || n > max) {
		http_error(resp, MHD_HTTP_BAD_REQUEST,
			   "query parameter %s: '%s' is not an integer from 0 to %lld",
			   key, v, (long long)max);
		return -EINVAL;
	}
	*ret = n;
	return 0;
}

/* What one page of GET /api/v1/tickets lists, filters aside. */
struct tickets_page {
	struct api *api;
	enum store_ticket_filter filter;
	bool children;
};

/* Under store_lock(reader): one page with the helpdesk's fields. */
static int tickets_page(void *arg, int64_t limit, int64_t offset, json_t **ret)
{
	struct tickets_page *p = arg;
	json_t *list = NULL;
	int r;

	if (p->children)
		r = store_tickets_list_with_children(p->api->reader, p->filter,
						     limit, offset, &list);
	else
		r = store_tickets_list(p->api->reader, p->filter, limit, offset,
				       &list);
	if (r == 0 && p->api->desk_reader)
		r = desk_tickets_json(p->api->desk_reader, list, time_now_ms());
	if (r < 0) {
		json_decref(list);
		return r;
	}
	*ret = list;
	return 0;
}

static void get_tickets(void *app, const struct http_request *req,
			struct http_response *resp)
{
	static const char *const filters[] = {
		[STORE_TICKETS_OPEN] = "open",
		[STORE_TICKETS_RESOLVED] = "resolved",
		[STORE_TICKETS_ALL] = "all",
	};
	struct api *api = app;
	enum store_ticket_filter filter = STORE_TICKETS_OPEN;
	const char *state = http_query(req, "state");
	const char *children = http_query(req, "children");
	int64_t limit = 100, offset = 0;
	json_t *list;
	int r;

	if (state != NULL) {
		size_t i;

		for (i = 0; i < ARRAY_SIZE(filters); i++)
			if (strcmp(state, filters[i]) == 0)
				break;
		if (i == ARRAY_SIZE(filters)) {
			http_error(resp, MHD_HTTP_BAD_REQUEST,
				   "query parameter state: '%s' is not one of open, resolved, all",
				   state);
			return;
		}
		filter = (enum store_ticket_filter)i;
	}
	if (api_query_int(req, "limit", TICKETS_PAGE_MAX, &limit, resp) < 0 ||
	    api_query_int(req, "offset", INT64_MAX / 2, &offset, resp) < 0)
		return;
	/* Children (hosts behind a dead router) show under their parent. */
	if (children != NULL && strcmp(children, "true") != 0 &&
	    strcmp(children, "false") != 0) {
		http_error(resp, MHD_HTTP_BAD_REQUEST,
			   "query parameter children: '%s' is not true or false",
			   children);
		return;
	}

	struct tickets_page p = { api, filter,
				  children != NULL && strcmp(children, "true") == 0 };
	struct ticket_query q;
	bool filtered = ticket_query_from(req, &q);
	char why[128];

	if (filtered && !ticket_query_valid(&q, why, sizeof(why))) {
		http_error(resp, MHD_HTTP_BAD_REQUEST, "%s", why);
		return;
	}
	store_lock(api->reader);
	if (filtered)
		r = ticket_query_run(&q, tickets_page, &p, limit, offset, &list);
	else
		r = tickets_page(&p, limit, offset, &list);
	store_unlock(api->reader);
	if (r == -E2BIG) {
		http_error(resp, MHD_HTTP_BAD_REQUEST,
			   "the filters looked at %d tickets without filling the page; narrow them down (state=open)",
			   TICKET_QUERY_SCAN_MAX);
		return;
	}
	if (r < 0) {
		store_failure(api, resp, "listing tickets", r);
		return;
	}
	resp->json = json_pack("{s:o}", "tickets", list);
}

static void get_ticket(void *app, const struct http_request *req,
		       struct http_response *resp)
{
	struct api *api = app;
	json_t *ticket;
	int64_t id;
	int r;

	if (parse_int64(req->param, &id) < 0 || id <= 0) {
		http_error(resp, MHD_HTTP_BAD_REQUEST,
			   "'%s' is not a ticket id", req->param);
		return;
	}
	store_lock(api->reader);
	r = store_ticket_get(api->reader, id, TICKET_OCCURRENCES_MAX, &ticket);
	if (r == 0 && api->desk_reader &&
	    desk_ticket_json(api->desk_reader, id, ticket, true,
			     time_now_ms()) < 0) {
		json_decref(ticket);
		r = -EIO;
	}
	if (r == 0) {
		json_t *children;

		r = dedup_children_json(api->reader, id, &children);
		if (r == 0)
			json_object_set_new(ticket, "children", children);
		else
			json_decref(ticket);
	}
	store_unlock(api->reader);
	if (r == -ENOENT) {
		http_error(resp, MHD_HTTP_NOT_FOUND, "no ticket %lld",
			   (long long)id);
		return;
	}
	if (r < 0) {
		store_failure(api, resp, "reading the ticket", r);
		return;
	}
	resp->json = ticket;
}

int api_authenticate(void *app, const char *secret, struct principal *ret)
{
	struct api *api = app;
	const struct server_token *t = token_find(api->conf, secret);

	if (t == NULL) {
		int r = api->credentials == NULL
				? -ENOENT
				: credentials_authenticate(api->credentials,
							   secret, time_now_ms(),
							   ret);
		return r == 0 ? 0 : -EACCES;
	}
	*ret = (struct principal){ .perms = t->perms };
	strlcpy_safe(ret->name, t->name, sizeof(ret->name));
	return 0;
}

void api_metrics(void *app, struct metrics_out *out)
{
	struct api *api = app;
	struct api_counters *c = &api->counters;
	struct writer_stats ws;

	metrics_counter(out, "tocsin_ingest_batches_total",
			"Event batches from agents, by outcome.",
			"result=\"committed\"", c->batches);
	metrics_counter(out, "tocsin_ingest_batches_total", NULL,
			"result=\"rejected\"", c->batches_rejected);
	metrics_counter(out, "tocsin_ingest_batches_total", NULL,
			"result=\"failed\"", c->batches_failed);
	metrics_counter(out, "tocsin_ingest_batches_total", NULL,
			"result=\"over_key_cap\"", c->batches_over_key_cap);
	metrics_counter(out, "tocsin_events_received_total",
			"Events stored (new event ids).", NULL, c->events);
	metrics_counter(out, "tocsin_events_deduplicated_total",
			"Events ignored because their id was stored before.",
			NULL, c->duplicates);
	metrics_counter(out, "tocsin_ingest_tickets_total",
			"Ticket changes caused by agent events.",
			"change=\"opened\"", c->tickets_opened);
	metrics_counter(out, "tocsin_ingest_tickets_total", NULL,
			"change=\"updated\"", c->tickets_updated);
	metrics_counter(out, "tocsin_ingest_tickets_total", NULL,
			"change=\"resolved\"", c->tickets_resolved);
	if (api->store != NULL) {
		const char *journal, *sync;
		char labels[96];

		store_durability(api->store, &journal, &sync);
		snprintf(labels, sizeof(labels),
			 "journal_mode=\"%s\",synchronous=\"%s\"", journal, sync);
		metrics_gauge(out, "tocsin_store_durability",
			      "How the store commits (journal mode, synchronous level).",
			      labels, 1);
	}
	if (api->writer == NULL)
		return;
	writer_get_stats(api->writer, &ws);
	metrics_counter(out, "tocsin_writer_jobs_total",
			"Writer jobs run, by outcome.", "result=\"ok\"",
			ws.jobs - ws.failed - ws.declined);
	metrics_counter(out, "tocsin_writer_jobs_total", NULL,
			"result=\"failed\"", ws.failed);
	/* A conflict or a limit of the request, not the store's failure. */
	metrics_counter(out, "tocsin_writer_jobs_total", NULL,
			"result=\"declined\"", ws.declined);
	metrics_counter(out, "tocsin_writer_jobs_total", NULL,
			"result=\"refused\"", ws.rejected);
	metrics_counter(out, "tocsin_writer_commits_total",
			"Transactions committed by the writer (group commits).",
			NULL, ws.commits);
	metrics_gauge(out, "tocsin_writer_lock_wait_seconds_total",
		      "Time the writer waited for others holding its store (a counter).",
		      NULL, (double)ws.lock_wait_ns / 1e9);
	metrics_gauge(out, "tocsin_writer_queue", "Writer jobs waiting.", NULL,
		      (double)ws.queued);
	metrics_gauge(out, "tocsin_writer_queue_bytes",
		      "Request bytes of agent batches waiting for the writer.",
		      NULL, (double)budget_used(&api->ingest_bytes));
}

static void get_metrics(void *app, const struct http_request *req,
			struct http_response *resp)
{
	struct api *api = app;

	(void)req;
	resp->text = metrics_render(api->metrics);
	resp->content_type = "text/plain; version=0.0.4; charset=utf-8";
}

static void get_health(void *app, const struct http_request *req,
		       struct http_response *resp)
{
	(void)app;
	(void)req;
	resp->json = json_pack("{s:s, s:s}", "status", "ok", "version",
			       TOCSIN_VERSION);
}

const struct http_route api_routes[] = {
	{ "GET", "/healthz", 0, get_health },
	{ "POST", "/api/v1/events", PERM_INGEST, post_events },
	{ "GET", "/api/v1/tickets", PERM_READ, get_tickets },
	{ "GET", "/api/v1/tickets/*", PERM_READ, get_ticket },
	{ "GET", "/metrics", PERM_READ, get_metrics },
	{ "GET", "/api/v1/traps/unknown", PERM_READ, trapreview_get_unknown },
	{ "POST", "/api/v1/tickets/*/actions", PERM_READ | PERM_WRITE, action_post },
	{ "POST", "/api/v1/silences", PERM_WRITE, silence_api_create },
	{ "GET", "/api/v1/silences", PERM_READ, silence_api_list },
	{ "GET", "/api/v1/silences/*", PERM_READ, silence_api_get },
	{ "DELETE", "/api/v1/silences/*", PERM_WRITE, silence_api_remove },
	{ "POST", "/api/v1/enroll", PERM_ENROLL, credapi_enroll },
	{ "POST", "/api/v1/credentials/rotate", PERM_INGEST, credapi_rotate },
	{ "GET", "/api/v1/credentials", PERM_ADMIN, credapi_list },
	{ "DELETE", "/api/v1/credentials/*", PERM_ADMIN, credapi_revoke },
	{ "POST", "/api/v1/enrollment-tokens", PERM_ADMIN, credapi_token_create },
	{ "GET", "/api/v1/enrollment-tokens", PERM_ADMIN, credapi_token_list },
	{ "DELETE", "/api/v1/enrollment-tokens/*", PERM_ADMIN, credapi_token_revoke },
	{ "GET", "/api/v1/audit", PERM_ADMIN, credapi_audit },
	{ "POST", "/api/v1/enrollment-approvals", PERM_ADMIN, credapi_approve },
	{ "GET", "/api/v1/enrollment-approvals", PERM_ADMIN, credapi_approvals },
	/* The web console: sessions, accounts, its files (console_api.h). */
	{ "POST", "/api/v1/session", 0, console_api_login },
	{ "GET", "/api/v1/session", PERM_READ, console_api_whoami },
	{ "DELETE", "/api/v1/session", PERM_READ, console_api_logout },
	{ "PUT", "/api/v1/session/password", PERM_READ, console_api_password },
	{ "GET", "/api/v1/accounts", PERM_ADMIN, console_api_accounts },
	{ "PUT", "/api/v1/accounts/*", PERM_ADMIN, console_api_account_set },
	{ "DELETE", "/api/v1/accounts/*", PERM_ADMIN, console_api_account_delete },
	{ "GET", "/api/v1/helpdesk/scales", PERM_READ, console_api_scales },
	{ "GET", "/", 0, console_api_index },
	{ "GET", "/console/*", 0, console_api_asset },
	{ NULL, NULL, 0, NULL },
};
