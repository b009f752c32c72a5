#include "silence_api.h"

#include <errno.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "account.h"
#include "api.h"
#include "console_api.h"
#include "dedup.h"
#include "lifecycle.h"
#include "session.h"
#include "silence.h"
#include "writer.h"

#define SILENCES_PAGE_MAX 1000

struct create_job {
	const struct silence *silence;
	const struct silence_config *conf;
	const struct actor *by;
	int64_t now_ms;
	json_t *result;
};

/*
 * Writer job: store the silence and read it back as the API shows it;
 * -ESTALE or -EKEYREVOKED when its author's session may no longer act.
 */
static int create_job_apply(struct store *st, void *arg)
{
	struct create_job *job = arg;
	struct dedup *d = dedup_get(st);
	int64_t id;
	int r;

	if (d == NULL)
		return -ENOMEM;
	r = session_check_actor(job->by);
	if (r < 0)
		return r;
	r = silence_create(d->silences, job->silence, job->now_ms, job->conf,
			   &id);
	if (r == 0)
		r = silence_get_json(d->silences, id, job->now_ms, &job->result);
	return r;
}

void silence_api_create(void *app, const struct http_request *req,
			struct http_response *resp)
{
	struct api *api = app;
	const struct silence_config *conf = &api->conf->lifecycle->silences;
	struct create_job job = { .conf = conf, .now_ms = time_now_ms() };
	struct silence sil;
	json_error_t jerr;
	json_t *body;
	char err[512];
	struct actor by;
	int r;

	body = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES,
			  &jerr);
	if (body == NULL) {
		http_error(resp, MHD_HTTP_BAD_REQUEST,
			   "malformed JSON at line %d, column %d: %s", jerr.line,
			   jerr.column, jerr.text);
		return;
	}
	r = silence_parse_request(body, job.now_ms, conf, &sil, err,
				  sizeof(err));
	json_decref(body);
	if (r < 0) {
		http_error(resp, MHD_HTTP_BAD_REQUEST, "%s", err);
		return;
	}
	console_api_actor(api, req, &by);
	sil.author = xstrdup(by.name);
	job.silence = &sil;
	job.by = &by;
	/* An HTTP thread waits a second at most for room in the queue. */
	r = writer_run_timed(api->writer, create_job_apply, &job, 1000);
	if (console_api_actor_refused(api, &by, r, "silence.create", "silence",
				      resp))
		goto out;
	if (r == -EAGAIN) {
		http_error(resp, MHD_HTTP_SERVICE_UNAVAILABLE,
			   "the collector is busy: its store queue is full; retry later");
		resp->retry_after_s = 2;
	} else if (r == -EDQUOT) {
		http_error(resp, MHD_HTTP_CONFLICT,
			   "too many silences: %lld are active or pending (silences.max_silences); remove some first",
			   (long long)conf->max_silences);
	} else if (r < 0) {
		api_store_failure(api, resp, "creating the silence", r);
	} else {
		resp->status = MHD_HTTP_CREATED;
		resp->json = job.result;
		job.result = NULL;
	}
out:
	json_decref(job.result);
	silence_clear(&sil);
}

/* A silence id from the path, or a 400 in resp. */
static int path_id(const struct http_request *req, struct http_response *resp,
		   int64_t *ret)
{
	if (parse_int64(req->param, ret) < 0 || *ret <= 0) {
		http_error(resp, MHD_HTTP_BAD_REQUEST,
			   "'%s' is not a silence id (a positive number)",
			   req->param);
		return -EINVAL;
	}
	return 0;
}

void silence_api_list(void *app, const struct http_request *req,
		      struct http_response *resp)
{
	struct api *api = app;
	const char *state = http_query(req, "state");
	enum silence_filter filter = SILENCES_ALL;
	struct dedup *d;
	json_t *list = NULL;
	int r = -ENOMEM;

	if (state != NULL && silence_filter_parse(state, &filter) < 0) {
		http_error(resp, MHD_HTTP_BAD_REQUEST,
			   "query parameter state: '%s' is not one of active, pending, expired, all",
			   state);
		return;
	}
	store_lock(api->reader);
	d = store_attached(api->reader, DEDUP_MODULE);
	if (d != NULL)
		r = silence_list_json(d->silences, filter, time_now_ms(),
				      api->conf->lifecycle->silences.keep_expired_ms,
				      SILENCES_PAGE_MAX, &list);
	store_unlock(api->reader);
	if (r < 0) {
		api_store_failure(api, resp, "listing silences", r);
		return;
	}
	resp->json = json_pack("{s:o}", "silences", list);
}

void silence_api_get(void *app, const struct http_request *req,
		     struct http_response *resp)
{
	struct api *api = app;
	struct dedup *d;
	json_t *doc = NULL;
	int64_t id;
	int r = -ENOMEM;

	if (path_id(req, resp, &id) < 0)
		return;
	store_lock(api->reader);
	d = store_attached(api->reader, DEDUP_MODULE);
	if (d != NULL)
		r = silence_get_json(d->silences, id, time_now_ms(), &doc);
	store_unlock(api->reader);
	if (r == -ENOENT)
		http_error(resp, MHD_HTTP_NOT_FOUND, "no silence %lld",
			   (long long)id);
	else if (r < 0)
		api_store_failure(api, resp, "reading the silence", r);
	else
		resp->json = doc;
}

struct remove_job {
	int64_t id;
	const struct actor *by;
	int64_t now_ms;
	json_t *result;
};

/*
 * Writer job: end the silence; what it held back is looked at next tick.
 * -ESTALE or -EKEYREVOKED when the remover's session may no longer act.
 */
static int remove_job_apply(struct store *st, void *arg)
{
	struct remove_job *job = arg;
	struct dedup *d = dedup_get(st);
	int r;

	if (d == NULL)
		return -ENOMEM;
	r = session_check_actor(job->by);
	if (r < 0)
		return r;
	r = silence_remove(d->silences, job->id, job->by->name, job->now_ms);
	if (r == 0)
		r = dedup_silence_removed(st, job->id, job->now_ms);
	if (r == 0 || r == -EALREADY) {
		int g = silence_get_json(d->silences, job->id, job->now_ms,
					 &job->result);
		if (g < 0)
			r = g;
	}
	return r;
}

void silence_api_remove(void *app, const struct http_request *req,
			struct http_response *resp)
{
	struct api *api = app;
	struct remove_job job = { .now_ms = time_now_ms() };
	char target[32];
	struct actor by;
	int r;

	if (path_id(req, resp, &job.id) < 0)
		return;
	console_api_actor(api, req, &by);
	job.by = &by;
	r = writer_run_timed(api->writer, remove_job_apply, &job, 1000);
	snprintf(target, sizeof(target), "silence %lld", (long long)job.id);
	/* Refused before it read anything: no result to free. */
	if (console_api_actor_refused(api, &by, r, "silence.remove", target,
				      resp))
		return;
	if (r == -EAGAIN) {
		http_error(resp, MHD_HTTP_SERVICE_UNAVAILABLE,
			   "the collector is busy: its store queue is full; retry later");
		resp->retry_after_s = 2;
	} else if (r == -ENOENT) {
		http_error(resp, MHD_HTTP_NOT_FOUND, "no silence %lld",
			   (long long)job.id);
	} else if (r == -EALREADY) {
		const char *ended = json_string_value(
			json_object_get(job.result, "ends_at"));

		http_error(resp, MHD_HTTP_CONFLICT,
			   "silence %lld has expired already (it ended %s)",
			   (long long)job.id, ended ? ended : "before");
	} else if (r < 0) {
		api_store_failure(api, resp, "removing the silence", r);
	} else {
		resp->json = job.result;
		job.result = NULL;
	}
	json_decref(job.result);
}
