#include "notify.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "../common/config.h"
#include "../common/util.h"
#include "desk.h"
#include "dispatch.h"
#include "inventory.h"
#include "store.h"

#define RCPTS_MAX 64

static const char *const template_names[NOTIFY_T_COUNT] = {
	[NOTIFY_T_OPENED] = "opened",	  [NOTIFY_T_WARNING] = "warning",
	[NOTIFY_T_OVERDUE] = "overdue",	  [NOTIFY_T_RESOLVED] = "resolved",
	[NOTIFY_T_STATUS] = "status",	  [NOTIFY_T_ASKED] = "asked",
	[NOTIFY_T_COMMENT] = "comment",	  [NOTIFY_T_REOPENED] = "reopened",
	[NOTIFY_T_ASSIGNED] = "assigned", [NOTIFY_T_ESCALATED] = "escalated",
};

/* The defaults.  The system signs every mail itself (seed 000). */
static const struct {
	const char *subject, *body;
} default_templates[NOTIFY_T_COUNT] = {
	[NOTIFY_T_OPENED] = {
		"[Tocsin #{id}] {priority} {title}",
		"A new ticket is waiting for queue {queue}, level {level}.\n\n"
		"Ticket:     #{id} {title}\n"
		"Customer:   {customer}\n"
		"Host:       {host}\n"
		"Problem:    {check} {item}: {state}\n"
		"Summary:    {summary}\n"
		"Priority:   {priority} (impact {impact}, urgency {urgency})\n"
		"Category:   {category}\n"
		"Respond by: {response_due}\n"
		"Resolve by: {resolution_due}\n\n"
		"Knowledge:  {hint}\n\n"
		"Earlier tickets for this host and check:\n{history}\n\n"
		"{signature}\n" },
	[NOTIFY_T_WARNING] = {
		"[Tocsin #{id}] reminder: {clock} due {due}",
		"Ticket #{id} ({title}) reaches its {clock} target at {due}.\n"
		"Status: {status}, queue {queue}, level {level}, assignee {assignee}.\n\n"
		"{signature}\n" },
	[NOTIFY_T_OVERDUE] = {
		"[Tocsin #{id}] OVERDUE: {clock} was due {due}",
		"Ticket #{id} ({title}) missed its {clock} target, due at {due}.\n"
		"Status: {status}, queue {queue}, level {level}, assignee {assignee}.\n"
		"Customer: {customer}.  Summary: {summary}\n\n"
		"{signature}\n" },
	[NOTIFY_T_RESOLVED] = {
		"[Tocsin #{id}] solved: {title}",
		"Hello,\n\nthe problem \"{title}\" has been solved.\n\n{text}\n\n"
		"If it comes back, we will know before you do.\n\n{signature}\n" },
	[NOTIFY_T_STATUS] = {
		"[Tocsin #{id}] status: {title}",
		"Hello,\n\nwe are still working on \"{title}\" (ticket #{id}, status {status}).\n"
		"We will write again when it is solved.\n\n{signature}\n" },
	[NOTIFY_T_ASKED] = {
		"[Tocsin #{id}] question: {title}",
		"Hello,\n\nabout \"{title}\" (ticket #{id}) we need to know:\n\n{text}\n\n"
		"Please answer this mail.\n\n{signature}\n" },
	[NOTIFY_T_COMMENT] = {
		"[Tocsin #{id}] update: {title}",
		"Hello,\n\nan update on \"{title}\" (ticket #{id}):\n\n{text}\n\n{signature}\n" },
	[NOTIFY_T_REOPENED] = {
		"[Tocsin #{id}] reopened: {priority} {title}",
		"Ticket #{id} ({title}) is open again: {status}.\n\n"
		"{text}\n\n"
		"Problem:    {check} {item}: {state}\n"
		"Summary:    {summary}\n"
		"Queue {queue}, level {level}, assignee {assignee}.\n"
		"Resolve by: {resolution_due}\n\n"
		"{signature}\n" },
	[NOTIFY_T_ASSIGNED] = {
		"[Tocsin #{id}] assigned to you: {priority} {title}",
		"Ticket #{id} ({title}) is now assigned to {assignee}.\n\n"
		"{text}\n\n"
		"Status:     {status}, queue {queue}, level {level}\n"
		"Summary:    {summary}\n"
		"Respond by: {response_due}\n"
		"Resolve by: {resolution_due}\n\n"
		"{signature}\n" },
	[NOTIFY_T_ESCALATED] = {
		"[Tocsin #{id}] escalated to level {level}: {priority} {title}",
		"Ticket #{id} ({title}) was escalated to level {level} of queue {queue}.\n\n"
		"{text}\n\n"
		"Status:     {status}, assignee {assignee}\n"
		"Summary:    {summary}\n"
		"Resolve by: {resolution_due}\n\n"
		"{signature}\n" },
};

static const char *const field_names[] = {
	"id", "title", "host", "check", "item", "status", "state", "summary",
	"priority", "impact", "urgency", "queue", "level", "assignee",
	"customer", "category", "response_due", "resolution_due", "hint",
	"history", "text", "clock", "due", "signature", NULL,
};

bool notify_field_known(const char *name, size_t len)
{
	for (size_t i = 0; field_names[i]; i++)
		if (strlen(field_names[i]) == len && strncmp(field_names[i], name, len) == 0)
			return true;
	return false;
}

size_t notify_utf8_cut(const char *s, size_t n)
{
	/* s[n] is the first byte left out: it must start a character. */
	while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
		n--;
	return n;
}

/*
 * Append n bytes of s to *buf (len, cap), never beyond max; a cut falls
 * between characters.  Returns whether it had to cut.
 */
static bool append(char **buf, size_t *len, size_t *cap, const char *s,
		   size_t n, size_t max)
{
	bool cut = false;

	if (*len + n > max) {
		n = notify_utf8_cut(s, *len < max ? max - *len : 0);
		cut = true;
	}
	if (*len + n + 1 > *cap) {
		*cap = (*len + n + 1) * 2;
		*buf = xreallocarray(*buf, *cap, 1);
	}
	memcpy(*buf + *len, s, n);
	*len += n;
	(*buf)[*len] = '\0';
	return cut;
}

char *notify_render(const char *tmpl, const char *const *fields, size_t max)
{
	size_t len = 0, cap = 256;
	char *out = xcalloc(1, cap);
	const char *p = tmpl;
	bool cut = false;

	while (*p && !cut) {
		const char *open = strchr(p, '{'), *close;
		const char *value = NULL;

		if (open == NULL) {
			cut = append(&out, &len, &cap, p, strlen(p), max);
			break;
		}
		cut = append(&out, &len, &cap, p, (size_t)(open - p), max);
		close = strchr(open, '}');
		if (cut || close == NULL) {
			cut = cut || append(&out, &len, &cap, open, strlen(open), max);
			break;
		}
		for (size_t i = 0; fields[i]; i += 2)
			if (strlen(fields[i]) == (size_t)(close - open - 1) &&
			    strncmp(fields[i], open + 1, (size_t)(close - open - 1)) == 0)
				value = fields[i + 1] ? fields[i + 1] : "-";
		if (value)
			cut = append(&out, &len, &cap, value, strlen(value), max);
		else
			cut = append(&out, &len, &cap, open, (size_t)(close - open + 1), max);
		p = close + 1;
	}
	/* Cut: the last whole characters that leave room for "...". */
	if (cut && max > 3) {
		len = notify_utf8_cut(out, len > max - 3 ? max - 3 : len);
		out[len] = '\0';
		append(&out, &len, &cap, "...", 3, max);
	}
	return out;
}

/* Every {name} in text must be a known field. */
static void check_placeholders(struct cfg *cfg, const struct cfg_node *n,
			       const char *text)
{
	for (const char *p = strchr(text, '{'); p; p = strchr(p + 1, '{')) {
		const char *close = strchr(p, '}');

		if (close == NULL)
			return;
		if (!notify_field_known(p + 1, (size_t)(close - p - 1)))
			cfg_error(cfg, n, "unknown placeholder {%.*s}", (int)(close - p - 1),
				  p + 1);
	}
}

static bool uses_field(const struct notify_template *t, const char *placeholder)
{
	return strstr(t->subject, placeholder) != NULL || strstr(t->body, placeholder) != NULL;
}

static void parse_templates(struct cfg *cfg, const struct cfg_node *node,
			    struct notify_config *nc)
{
	for (int i = 0; i < NOTIFY_T_COUNT; i++) {
		const struct cfg_node *t = cfg_get(cfg, node, template_names[i]);

		if (cfg_expect_map(cfg, t) == 0 && t != NULL) {
			cfg_get_string(cfg, t, "subject", &nc->templates[i].subject);
			cfg_get_string(cfg, t, "body", &nc->templates[i].body);
		}
		if (nc->templates[i].subject == NULL)
			nc->templates[i].subject = xstrdup(default_templates[i].subject);
		else
			check_placeholders(cfg, cfg_get(cfg, t, "subject"),
					   nc->templates[i].subject);
		if (nc->templates[i].body == NULL)
			nc->templates[i].body = xstrdup(default_templates[i].body);
		else
			check_placeholders(cfg, cfg_get(cfg, t, "body"), nc->templates[i].body);
		nc->templates[i].uses_hint = uses_field(&nc->templates[i], "{hint}");
		nc->templates[i].uses_history = uses_field(&nc->templates[i], "{history}");
	}
}

static void parse_webhook(struct cfg *cfg, const struct cfg_node *node,
			  struct notify_webhook *w)
{
	static const char *const formats[] = { "generic", "zammad", NULL };
	const struct cfg_node *headers, *events;
	int format = WEBHOOK_GENERIC;

	w->headers = xcalloc(1, sizeof(*w->headers));
	w->timeout_ms = 10000;
	w->events = 1u << TICKET_OPENED | 1u << TICKET_RECOVERED | 1u << TICKET_RESOLVED |
		    1u << TICKET_REOPENED | 1u << TICKET_CLOSED;
	if (node->type != CFG_MAP) {
		cfg_error(cfg, node, "expected a webhook: name, url, format");
		return;
	}
	cfg_get_string(cfg, node, "name", &w->name);
	if (cfg_get_string(cfg, node, "url", &w->url) <= 0 ||
	    (strncmp(w->url, "http://", 7) != 0 && strncmp(w->url, "https://", 8) != 0))
		cfg_error(cfg, cfg_get(cfg, node, "url") ? cfg_get(cfg, node, "url") : node,
			  "a webhook needs an http:// or https:// url");
	if (w->name == NULL)
		w->name = xstrdup(w->url ? w->url : "webhook");
	cfg_get_enum(cfg, node, "format", formats, &format);
	w->format = (enum webhook_format)format;
	w->timeout_ms = 10000;
	cfg_get_duration(cfg, node, "timeout", &w->timeout_ms);
	headers = cfg_get(cfg, node, "headers");
	if (headers && headers->type == CFG_MAP) {
		w->headers = xreallocarray(w->headers, headers->npairs + 1, sizeof(char *));
		for (size_t i = 0; i < headers->npairs; i++) {
			char *v = NULL;

			cfg_get_string(cfg, headers, headers->pairs[i].key, &v);
			if (v == NULL || strpbrk(v, "\r\n") || strpbrk(headers->pairs[i].key, "\r\n: ")) {
				cfg_error(cfg, headers->pairs[i].value,
					  "a header needs a plain name and a one-line value");
				w->headers[i] = xstrdup("X-Invalid: 1");
			} else {
				w->headers[i] = xasprintf("%s: %s", headers->pairs[i].key, v);
			}
			free(v);
		}
		w->headers[headers->npairs] = NULL;
	} else if (headers && headers->type != CFG_NULL) {
		cfg_error(cfg, headers, "expected a mapping of header names to values");
	}
	events = cfg_get(cfg, node, "events");
	if (events && events->type == CFG_SEQ) {
		w->events = 0;
		for (size_t i = 0; i < events->nitems; i++) {
			const struct cfg_node *e = events->items[i];
			int k;

			for (k = 0; k <= TICKET_ACTION; k++)
				if (e->type == CFG_SCALAR &&
				    strcmp(ticket_change_name((enum ticket_change_kind)k), e->value) == 0)
					break;
			if (k > TICKET_ACTION)
				cfg_error(cfg, e, "not one of opened, updated, recovered, resolved, reopened, closed, action");
			else
				w->events |= 1u << k;
		}
	} else if (events && events->type != CFG_NULL) {
		cfg_error(cfg, events, "expected a list of change kinds");
	}
}

/*
 * The URL as logs and outbox errors may show it: a user name or password
 * inside it (smtp://user:secret@host) is left out.  Malloc'ed.
 */
static char *url_without_credentials(const char *url)
{
	CURLU *u = curl_url();
	char *shown = NULL, *out;

	if (u && curl_url_set(u, CURLUPART_URL, url, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK &&
	    curl_url_set(u, CURLUPART_USER, NULL, 0) == CURLUE_OK &&
	    curl_url_set(u, CURLUPART_PASSWORD, NULL, 0) == CURLUE_OK &&
	    curl_url_set(u, CURLUPART_OPTIONS, NULL, 0) == CURLUE_OK)
		curl_url_get(u, CURLUPART_URL, &shown, 0);
	curl_url_cleanup(u);
	/* Not a URL curl understands: show no part of it. */
	out = xstrdup(shown ? shown : "(the configured notify.smtp.url)");
	curl_free(shown);
	return out;
}

static void parse_smtp(struct cfg *cfg, const struct cfg_node *node,
		       struct notify_config *nc)
{
	static const char *const tls[] = { "none", "try", "required", NULL };
	char *pwfile = NULL;
	int t = NOTIFY_TLS_REQUIRED;

	if (node == NULL || cfg_expect_map(cfg, node) < 0)
		return;
	if (cfg_get_string(cfg, node, "url", &nc->smtp_url) > 0 &&
	    strncmp(nc->smtp_url, "smtp://", 7) != 0 && strncmp(nc->smtp_url, "smtps://", 8) != 0)
		cfg_error(cfg, cfg_get(cfg, node, "url"),
			  "expected smtp://host[:port] (STARTTLS) or smtps://host[:port]");
	cfg_get_enum(cfg, node, "starttls", tls, &t);
	nc->smtp_tls = (enum notify_tls)t;
	cfg_get_string(cfg, node, "username", &nc->smtp_user);
	cfg_get_string(cfg, node, "password", &nc->smtp_password);
	if (cfg_get_string(cfg, node, "password_file", &pwfile) > 0) {
		FILE *fp = fopen(pwfile, "re");
		char line[512];

		if (fp == NULL || fgets(line, sizeof(line), fp) == NULL) {
			cfg_error(cfg, cfg_get(cfg, node, "password_file"), "cannot read %s",
				  pwfile);
		} else {
			line[strcspn(line, "\r\n")] = '\0';
			free(nc->smtp_password);
			nc->smtp_password = xstrdup(line);
		}
		if (fp)
			fclose(fp);
		free(pwfile);
	}
	cfg_get_duration(cfg, node, "timeout", &nc->smtp_timeout_ms);
	cfg_get_string(cfg, node, "ca_file", &nc->smtp_ca_file);
	if (nc->smtp_url)
		nc->smtp_url_shown = url_without_credentials(nc->smtp_url);
}

/* "Name <addr>" or "addr" -> addr (malloc'ed), or NULL. */
static char *address_of(const char *from)
{
	const char *lt = strchr(from, '<'), *gt = lt ? strchr(lt, '>') : NULL;
	char *addr = lt && gt ? xasprintf("%.*s", (int)(gt - lt - 1), lt + 1)
			      : xstrdup(from);

	if (!inventory_email_valid(addr)) {
		free(addr);
		return NULL;
	}
	return addr;
}

void notify_config_parse(struct cfg *cfg, const struct cfg_node *node,
			 struct notify_config **ret)
{
	struct notify_config *nc = xcalloc(1, sizeof(*nc));
	const struct cfg_node *retry, *hooks, *rate;
	uint64_t max_body = 64 * 1024;
	int64_t v;

	nc->settle_ms = 10 * 60000;
	nc->retry_initial_ms = 30000;
	nc->retry_max_ms = 3600000;
	nc->retry_attempts = 20;
	nc->poll_ms = 1000;
	nc->keep_ms = 30 * 86400000LL;
	nc->smtp_timeout_ms = 30000;
	nc->smtp_tls = NOTIFY_TLS_REQUIRED;
	nc->max_pending = 10000;
	nc->rate_mails = 10;
	nc->rate_per_ms = 10 * 60000;
	if (cfg_expect_map(cfg, node) < 0)
		node = NULL;
	cfg_get_string(cfg, node, "from", &nc->from);
	if (nc->from == NULL)
		nc->from = xstrdup("Tocsin <tocsin@localhost>");
	nc->from_addr = address_of(nc->from);
	if (nc->from_addr == NULL || strpbrk(nc->from, "\r\n"))
		cfg_error(cfg, cfg_get(cfg, node, "from") ? cfg_get(cfg, node, "from") : cfg->root,
			  "notify.from must be an address, optionally with a name: Tocsin <tocsin@example.com>");
	cfg_get_string(cfg, node, "signature", &nc->signature);
	if (nc->signature == NULL)
		nc->signature = xstrdup("-- \nTocsin, the monitoring system of your IT service provider.\n"
					"This message was sent automatically, in the system's own name.");
	parse_smtp(cfg, cfg_get(cfg, node, "smtp"), nc);
	cfg_get_duration(cfg, node, "settle", &nc->settle_ms);
	cfg_get_duration(cfg, node, "keep", &nc->keep_ms);
	if (cfg_get_duration(cfg, node, "poll", &nc->poll_ms) > 0 && nc->poll_ms < 10)
		nc->poll_ms = 10;
	retry = cfg_get(cfg, node, "retry");
	if (retry && cfg_expect_map(cfg, retry) == 0) {
		cfg_get_duration(cfg, retry, "initial", &nc->retry_initial_ms);
		cfg_get_duration(cfg, retry, "max", &nc->retry_max_ms);
		if (cfg_get_int(cfg, retry, "attempts", 1, 1000, &v) > 0)
			nc->retry_attempts = (int)v;
	}
	if (cfg_get_size(cfg, node, "max_body", &max_body) > 0 &&
	    (max_body < 1024 || max_body > 16 * 1024 * 1024))
		cfg_error(cfg, cfg_get(cfg, node, "max_body"), "between 1KiB and 16MiB");
	nc->max_body = (size_t)max_body;
	if (cfg_get_int(cfg, node, "max_pending", 100, 10000000, &v) > 0)
		nc->max_pending = (size_t)v;
	rate = cfg_get(cfg, node, "rate");
	if (rate && cfg_expect_map(cfg, rate) == 0) {
		if (cfg_get_int(cfg, rate, "mails", 0, 10000, &v) > 0)
			nc->rate_mails = (int)v;
		if (cfg_get_duration(cfg, rate, "per", &nc->rate_per_ms) > 0 &&
		    nc->rate_per_ms < 1000) {
			cfg_error(cfg, cfg_get(cfg, rate, "per"), "at least 1s");
			nc->rate_per_ms = 1000;
		}
	}
	parse_templates(cfg, cfg_get(cfg, node, "templates"), nc);
	hooks = cfg_get(cfg, node, "webhooks");
	if (hooks && hooks->type == CFG_SEQ) {
		nc->webhooks = xcalloc(hooks->nitems, sizeof(*nc->webhooks));
		for (size_t i = 0; i < hooks->nitems; i++)
			parse_webhook(cfg, hooks->items[i], &nc->webhooks[nc->nwebhooks++]);
	} else if (hooks && hooks->type != CFG_NULL) {
		cfg_error(cfg, hooks, "expected a list of webhooks");
	}
	*ret = nc;
}

void notify_config_free(struct notify_config *nc)
{
	if (nc == NULL)
		return;
	free(nc->from);
	free(nc->from_addr);
	free(nc->signature);
	free(nc->smtp_url);
	free(nc->smtp_url_shown);
	free(nc->smtp_user);
	free(nc->smtp_password);
	free(nc->smtp_ca_file);
	for (int i = 0; i < NOTIFY_T_COUNT; i++) {
		free(nc->templates[i].subject);
		free(nc->templates[i].body);
	}
	for (size_t i = 0; i < nc->nwebhooks; i++) {
		free(nc->webhooks[i].name);
		free(nc->webhooks[i].url);
		cfg_string_list_free(nc->webhooks[i].headers);
	}
	free(nc->webhooks);
	free(nc);
}

/* ---- the listener ------------------------------------------------------ */

struct rcpts {
	const char *v[RCPTS_MAX];
	size_t n;
};

static void rcpt_add(struct rcpts *r, const char *email)
{
	if (email == NULL || r->n == RCPTS_MAX)
		return;
	for (size_t i = 0; i < r->n; i++)
		if (strcmp(r->v[i], email) == 0)
			return;
	r->v[r->n++] = email;
}

/* Nobody is mailed about what they did themselves. */
static void rcpt_remove(struct rcpts *r, const char *email)
{
	for (size_t i = 0; email && i < r->n; i++) {
		if (strcmp(r->v[i], email) == 0) {
			r->v[i] = r->v[--r->n];
			return;
		}
	}
}

/* People of queue at level (all levels when none is at it). */
static void rcpt_queue(const struct helpdesk_config *hc, const char *queue,
		       int level, struct rcpts *r)
{
	size_t before = r->n;

	for (int pass = 0; pass < 2 && r->n == before; pass++)
		for (size_t i = 0; i < hc->npeople; i++) {
			const struct helpdesk_person *p = &hc->people[i];

			if (helpdesk_index(p->queues, queue) >= 0 &&
			    (pass == 1 || p->level == level))
				rcpt_add(r, p->email);
		}
}

static char *rcpt_join(const struct rcpts *r)
{
	size_t len = 1;
	char *s;

	for (size_t i = 0; i < r->n; i++)
		len += strlen(r->v[i]) + 1;
	s = xcalloc(1, len);
	for (size_t i = 0; i < r->n; i++) {
		if (i)
			strlcat_safe(s, ",", len);
		strlcat_safe(s, r->v[i], len);
	}
	return s;
}

/* What a template needs of a ticket, gathered once per change. */
struct ctx {
	struct desk *d;
	const struct ticket_change *c;
	struct desk_core core;
	struct desk_row row;
	const struct customer *customer;
	char id[24], level[8], rdue[TIME_RFC3339_LEN], sdue[TIME_RFC3339_LEN];
	/* read when a template to be rendered uses them (mail_texts()) */
	char *hint, *history;
	bool hint_read, history_read;
	const char *clock;
	char due[TIME_RFC3339_LEN];
};

static void format_time(int64_t ms, char *buf)
{
	if (ms < 0 || ms == CALENDAR_NEVER)
		strlcpy_safe(buf, "-", TIME_RFC3339_LEN);
	else
		time_format_rfc3339(ms, buf);
}

static char *history_text(struct ctx *x)
{
	json_t *list, *h;
	size_t i, len = 0, cap = 64;
	char *out = xcalloc(1, cap);

	if (desk_history(x->d, &x->core, &list) < 0 || json_array_size(list) == 0) {
		append(&out, &len, &cap, "(none)", 6, 4096);
		if (list)
			json_decref(list);
		return out;
	}
	json_array_foreach(list, i, h) {
		char *line = xasprintf("  #%lld %s, resolved %s: %s\n",
				       (long long)json_integer_value(json_object_get(h, "id")),
				       json_string_value(json_object_get(h, "item")),
				       json_is_string(json_object_get(h, "resolved_at"))
					       ? json_string_value(json_object_get(h, "resolved_at"))
					       : "-",
				       json_is_string(json_object_get(h, "resolution"))
					       ? json_string_value(json_object_get(h, "resolution"))
					       : "(no note)");
		bool cut = append(&out, &len, &cap, line, strlen(line), 4096);

		free(line);
		if (cut)
			break;
	}
	json_decref(list);
	return out;
}

static char *render(struct ctx *x, const char *tmpl, size_t max)
{
	const struct notify_config *nc = x->d->notify;
	const char *fields[] = {
		"id", x->id, "title", x->core.title, "host", x->core.host,
		"check", x->core.check, "item", x->core.item,
		"status", sla_status_name(x->core.status), "state", x->core.state,
		"summary", x->core.summary, "priority", x->row.priority,
		"impact", x->row.impact, "urgency", x->row.urgency,
		"queue", x->row.queue, "level", x->level,
		"assignee", x->row.assignee[0] ? x->row.assignee : "nobody",
		"customer", x->customer ? x->customer->name : "-",
		"category", x->row.category, "response_due", x->rdue,
		"resolution_due", x->sdue, "hint", x->hint ? x->hint : "-",
		"history", x->history, "text", x->c->summary, "clock", x->clock,
		"due", x->due, "signature", nc->signature, NULL,
	};

	return notify_render(tmpl, fields, max);
}

/* How much a mail matters when the outbox is full (desk.h). */
static int mail_importance(enum notify_template_id t)
{
	switch (t) {
	case NOTIFY_T_OVERDUE:
	case NOTIFY_T_ASKED:
	case NOTIFY_T_COMMENT:
		return DESK_IMPORTANCE_URGENT;
	case NOTIFY_T_WARNING:
		return DESK_IMPORTANCE_NORMAL;
	case NOTIFY_T_STATUS:
		return DESK_IMPORTANCE_LOW;
	default:
		return DESK_IMPORTANCE_HIGH;
	}
}

/*
 * The ticket's hint and, for the opening mail, the history of its key:
 * two reads, so only once a mail is known to go to someone, and each only
 * when template t shows it.
 */
static void mail_texts(struct ctx *x, const struct notify_template *t)
{
	char *desc = NULL;

	if (t->uses_hint && !x->hint_read) {
		x->hint_read = true;
		if (desk_texts(x->d, x->core.id, &x->hint, &desc) == 0)
			free(desc); /* the description is not needed here */
	}
	if (t->uses_history && !x->history_read) {
		x->history_read = true;
		x->history = x->c->kind == TICKET_OPENED ? history_text(x) : xstrdup("-");
	}
}

/* rcpt_remove() of the person who made the change. */
static void rcpt_remove_actor(const struct ctx *x, struct rcpts *r)
{
	const struct helpdesk_person *actor = helpdesk_person(x->d->hc, x->c->actor);

	rcpt_remove(r, actor ? actor->email : NULL);
}

/* Render template t for the recipients and queue it, due at not_before. */
static int queue_mail(struct ctx *x, enum notify_template_id t,
		      struct rcpts *r, int64_t not_before, const char *cancel_key)
{
	const struct notify_config *nc = x->d->notify;
	char key[UUID_STR_LEN], *to, *subject, *body;
	struct desk_outbox_item it;
	int ret;

	rcpt_remove_actor(x, r);
	if (nc->smtp_url == NULL || r->n == 0)
		return 0;
	mail_texts(x, &nc->templates[t]);
	uuid_generate(key);
	to = rcpt_join(r);
	subject = render(x, nc->templates[t].subject, NOTIFY_SUBJECT_MAX);
	body = render(x, nc->templates[t].body, nc->max_body);
	x->d->counters.rendered++;
	it = (struct desk_outbox_item){
		.ticket_id = x->core.id, .channel = "mail", .target = to,
		.subject = subject, .body = body, .idem_key = key,
		.cancel_key = cancel_key, .kind = template_names[t],
		.importance = mail_importance(t), .created_ms = x->c->at_ms,
		.not_before_ms = not_before,
	};
	ret = desk_outbox_add(x->d, &it);
	if (ret > 0)
		x->d->counters.queued++;
	free(to);
	free(subject);
	free(body);
	return ret < 0 ? ret : 0;
}

static void customer_rcpts(struct ctx *x, struct rcpts *r)
{
	for (size_t i = 0; x->customer && x->customer->contacts[i]; i++)
		rcpt_add(r, x->customer->contacts[i]);
}

/*
 * The problem key a pending customer mail is cancelled by: the change's,
 * else the ticket's (core may be NULL when the change names it all).
 */
static char *problem_key(const struct ticket_change *c, const struct desk_core *core)
{
	return xasprintf("%s\x1f%s\x1f%s", c->host ? c->host : core->host,
			 c->check ? c->check : core->check, c->item ? c->item : core->item);
}

static bool by_system(const struct ticket_change *c)
{
	return c->actor == NULL || strcmp(c->actor, DESK_SYSTEM_ACTOR) == 0;
}

/* The assignee when they have an address, else the queue at its level. */
static void rcpt_owner(struct ctx *x, struct rcpts *r)
{
	const struct helpdesk_config *hc = x->d->hc;
	const struct helpdesk_person *p = helpdesk_person(hc, x->row.assignee);
	const struct helpdesk_queue *q = helpdesk_queue(hc, x->row.queue);

	if (p && p->email) {
		rcpt_add(r, p->email);
		return;
	}
	rcpt_queue(hc, x->row.queue, x->row.level, r);
	rcpt_add(r, q ? q->email : NULL);
}

/*
 * A reopened ticket needs its people again, unless the system itself
 * took it away less than notify.settle ago: then the problem merely
 * blinked, the opening mail still stands and a mail per blink would be
 * the flood the settling time exists to prevent.  1: mail, 0: not.
 */
static int reopen_is_news(struct ctx *x)
{
	sqlite3_stmt *s = x->d->stmt[DESK_LAST_RESOLUTION];
	int rc, news = 1;

	if (!by_system(x->c))
		return 1;
	sqlite3_bind_int64(s, 1, x->core.id);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		const char *actor = (const char *)sqlite3_column_text(s, 1);
		int64_t at = sqlite3_column_int64(s, 0);

		if (actor && strcmp(actor, DESK_SYSTEM_ACTOR) == 0 &&
		    x->c->at_ms - at < x->d->notify->settle_ms)
			news = 0;
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? news : sqlite_to_errno(rc);
}

/* Technicians' actions that tell other technicians. */
static int action_mails(struct ctx *x, const char *field)
{
	const struct helpdesk_config *hc = x->d->hc;
	const struct helpdesk_queue *q = helpdesk_queue(hc, x->row.queue);
	const struct helpdesk_person *p;
	struct rcpts r = { .n = 0 };

	if (strcmp(field, "assignee") == 0) {
		p = helpdesk_person(hc, x->c->new_value);
		rcpt_add(&r, p ? p->email : NULL);
		return queue_mail(x, NOTIFY_T_ASSIGNED, &r, x->c->at_ms, NULL);
	}
	if (strcmp(field, "level") == 0) {
		rcpt_queue(hc, x->row.queue, x->row.level, &r);
		if (r.n == 0)
			rcpt_add(&r, q ? q->email : NULL);
		return queue_mail(x, NOTIFY_T_ESCALATED, &r, x->c->at_ms, NULL);
	}
	return 0;
}

/* Mail to technicians: opening, reopening, assignment, escalation, SLA. */
static int technician_mails(struct ctx *x)
{
	const struct helpdesk_config *hc = x->d->hc;
	const struct helpdesk_queue *q = helpdesk_queue(hc, x->row.queue);
	const struct helpdesk_person *p;
	const char *field = x->c->field ? x->c->field : "";
	struct rcpts r = { .n = 0 };
	int news;

	if (x->d->notify->smtp_url == NULL)
		return 0; /* no mail: spare reopen_is_news() its read */
	if (x->c->kind == TICKET_OPENED) {
		rcpt_queue(hc, x->row.queue, x->row.level, &r);
		rcpt_add(&r, q ? q->email : NULL);
		return queue_mail(x, NOTIFY_T_OPENED, &r, x->c->at_ms, NULL);
	}
	if (x->c->kind == TICKET_REOPENED) {
		/* Who would hear first: nobody, and the journal is not read. */
		rcpt_owner(x, &r);
		rcpt_remove_actor(x, &r);
		if (r.n == 0)
			return 0;
		news = reopen_is_news(x);
		if (news <= 0)
			return news;
		return queue_mail(x, NOTIFY_T_REOPENED, &r, x->c->at_ms, NULL);
	}
	if (x->c->kind != TICKET_ACTION)
		return 0;
	x->clock = x->c->new_value ? x->c->new_value : "-";
	format_time(strcmp(x->clock, "response") == 0 ? x->row.response_due
						       : x->row.resolution_due,
		    x->due);
	if (strcmp(field, "sla_warning") == 0) {
		rcpt_owner(x, &r);
		return queue_mail(x, NOTIFY_T_WARNING, &r, x->c->at_ms, NULL);
	}
	if (strcmp(field, "overdue") == 0) {
		if (x->row.level < HELPDESK_LEVELS)
			rcpt_queue(hc, x->row.queue, x->row.level + 1, &r);
		p = q ? helpdesk_person(hc, q->lead) : NULL;
		rcpt_add(&r, p ? p->email : NULL);
		if (r.n == 0)
			rcpt_add(&r, q ? q->email : NULL);
		return queue_mail(x, NOTIFY_T_OVERDUE, &r, x->c->at_ms, NULL);
	}
	return action_mails(x, field);
}

bool notify_wants_status_update(struct desk *d, const struct desk_core *core,
				const struct desk_row *row)
{
	const struct customer *cu =
		row->customer[0] ? inventory_customer(d->inv, row->customer) : NULL;

	return d->notify->smtp_url != NULL && core->parent_id <= 0 && cu != NULL &&
	       cu->notify_updates && cu->contacts[0] != NULL;
}

/* Mail to the customer's contacts; key cancels a pending "solved" mail. */
static int customer_mails(struct ctx *x, const char *key)
{
	const char *field = x->c->field ? x->c->field : "";
	const char *value = x->c->new_value ? x->c->new_value : "";
	struct rcpts r = { .n = 0 };

	if (x->customer == NULL)
		return 0;
	customer_rcpts(x, &r);
	/* Resolving a recovered ticket: the customer heard at the recovery. */
	if (x->c->kind == TICKET_RESOLVED && x->c->old_value &&
	    strcmp(x->c->old_value, "recovered") == 0)
		return 0;
	if ((x->c->kind == TICKET_RESOLVED || x->c->kind == TICKET_RECOVERED) &&
	    x->customer->notify_resolved)
		/* Only once the recovery has held: a reopen cancels it. */
		return queue_mail(x, NOTIFY_T_RESOLVED, &r,
				  x->c->at_ms + x->d->notify->settle_ms, key);
	if (x->c->kind != TICKET_ACTION)
		return 0;
	if (strcmp(field, "ask") == 0 && strcmp(value, "customer") == 0)
		return queue_mail(x, NOTIFY_T_ASKED, &r, x->c->at_ms, NULL);
	if (strcmp(field, "comment") == 0 && strcmp(value, "customer") == 0)
		return queue_mail(x, NOTIFY_T_COMMENT, &r, x->c->at_ms, NULL);
	if (strcmp(field, "status_update") == 0 &&
	    notify_wants_status_update(x->d, &x->core, &x->row))
		return queue_mail(x, NOTIFY_T_STATUS, &r, x->c->at_ms, NULL);
	return 0;
}

static const char *zammad_state(enum ticket_status s)
{
	switch (s) {
	case STATUS_NEW:
		return "new";
	case STATUS_WAITING:
		return "pending reminder";
	case STATUS_RESOLVED:
	case STATUS_CLOSED:
		return "closed";
	default:
		return "open";
	}
}

/* Only what the customer was meant to see may be public in Zammad. */
static bool customer_visible(const struct ticket_change *c)
{
	return c->kind == TICKET_ACTION && c->field && c->new_value &&
	       (strcmp(c->field, "comment") == 0 || strcmp(c->field, "ask") == 0) &&
	       strcmp(c->new_value, "customer") == 0;
}

/* The article text of a change: what happened, then its text. */
static char *change_text(const struct ctx *x, const char *event)
{
	const struct ticket_change *c = x->c;

	if (c->kind == TICKET_ACTION && c->field)
		return xasprintf("%s by %s: %s%s%s%s%s", c->field,
				 c->actor ? c->actor : DESK_SYSTEM_ACTOR,
				 c->old_value ? c->old_value : "",
				 c->old_value ? " -> " : "", c->new_value ? c->new_value : "",
				 c->summary ? "\n" : "", c->summary ? c->summary : "");
	return xasprintf("%s: %s%s%s", event, x->core.summary, c->summary ? "\n" : "",
			 c->summary ? c->summary : "");
}

/*
 * A Zammad payload (see README): the ticket-create of POST
 * /api/v1/tickets at the opening, and for every later change the body of
 * PUT /api/v1/tickets/{id}: the new state and priority with a note.  Both
 * carry Tocsin's own ids, which Zammad keeps when the object manager has
 * attributes of those names and ignores otherwise.
 */
static json_t *zammad_payload(struct ctx *x, const char *key, bool create)
{
	const struct helpdesk_config *hc = x->d->hc;
	const char *event = ticket_change_name(x->c->kind);
	int p = desk_priority_index(x->d, &x->row);
	const char *prio = p == 0 ? "3 high" : p == hc->npriorities - 1 ? "1 low" : "2 normal";
	const char *customer = x->customer && x->customer->contacts[0]
				       ? x->customer->contacts[0]
				       : "tocsin@localhost";
	char *body = change_text(x, event);
	json_t *doc;

	if (create)
		doc = json_pack("{s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s, s:s, s:b}, s:s, s:I, s:s}",
				"title", x->core.title, "group", x->row.queue, "customer",
				customer, "state", zammad_state(x->core.status), "priority",
				prio, "article", "subject", x->core.title, "body", body,
				"type", "note", "internal", true, "idempotency_key", key,
				"tocsin_ticket_id", (json_int_t)x->core.id, "tocsin_event", event);
	else
		doc = json_pack("{s:s, s:s, s:{s:s, s:s, s:s, s:b}, s:s, s:I, s:s}",
				"state", zammad_state(x->core.status), "priority", prio,
				"article", "subject", x->core.title, "body", body, "type",
				"note", "internal", !customer_visible(x->c),
				"idempotency_key", key, "tocsin_ticket_id",
				(json_int_t)x->core.id, "tocsin_event", event);
	free(body);
	return doc;
}

/* The payload for w, built now so that every retry sends the same bytes. */
static json_t *webhook_payload(struct ctx *x, const struct notify_webhook *w,
			       const char *key)
{
	const char *event = ticket_change_name(x->c->kind);
	json_t *t;

	if (w->format == WEBHOOK_ZAMMAD)
		return zammad_payload(x, key, x->c->kind == TICKET_OPENED);
	t = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:s, s:i, s:o, s:o}",
		      "id", (json_int_t)x->core.id, "title", x->core.title, "host",
		      x->core.host, "check", x->core.check, "item", x->core.item,
		      "status", sla_status_name(x->core.status), "state", x->core.state,
		      "summary", x->core.summary, "priority", x->row.priority, "queue",
		      x->row.queue, "category", x->row.category, "level", x->row.level,
		      "assignee", x->row.assignee[0] ? json_string(x->row.assignee) : json_null(),
		      "customer", x->row.customer[0] ? json_string(x->row.customer) : json_null());
	if (t == NULL)
		return NULL;
	return json_pack("{s:s, s:s, s:s, s:o, s:o, s:o, s:s, s:I, s:o}", "idempotency_key",
			 key, "event", event, "actor", x->c->actor ? x->c->actor : "tocsin",
			 "field", x->c->field ? json_string(x->c->field) : json_null(), "old",
			 x->c->old_value ? json_string(x->c->old_value) : json_null(), "new",
			 x->c->new_value ? json_string(x->c->new_value) : json_null(), "text",
			 x->c->summary ? x->c->summary : "", "at_ms", (json_int_t)x->c->at_ms,
			 "ticket", t);
}

/* One webhook row for w: its payload, or a failed row saying why not. */
static int queue_webhook(struct ctx *x, const struct notify_webhook *w)
{
	const struct notify_config *nc = x->d->notify;
	bool create = x->c->kind == TICKET_OPENED;
	char key[UUID_STR_LEN], why[160], *body = NULL;
	struct desk_outbox_item it;
	json_t *doc;
	int r;

	uuid_generate(key);
	doc = webhook_payload(x, w, key);
	if (doc)
		body = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	it = (struct desk_outbox_item){
		.ticket_id = x->core.id, .channel = "webhook", .target = w->name,
		.body = body, .idem_key = key, .created_ms = x->c->at_ms,
		.not_before_ms = x->c->at_ms,
		.kind = w->format == WEBHOOK_ZAMMAD ? (create ? "create" : "update")
						     : ticket_change_name(x->c->kind),
		.importance = create ? DESK_IMPORTANCE_HIGH
			      : x->c->field && strcmp(x->c->field, "status_update") == 0
				      ? DESK_IMPORTANCE_LOW
				      : DESK_IMPORTANCE_NORMAL,
	};
	if (body == NULL || strlen(body) > nc->max_body) {
		if (body == NULL)
			snprintf(why, sizeof(why),
				 "the payload could not be encoded as JSON (text that is not UTF-8?)");
		else
			snprintf(why, sizeof(why), "a payload of %zu bytes exceeds notify.max_body (%zu)",
				 strlen(body), nc->max_body);
		free(body);
		it.body = "";
		return desk_outbox_unrendered(x->d, &it, why);
	}
	x->d->counters.rendered++;
	r = desk_outbox_add(x->d, &it);
	free(body);
	if (r > 0)
		x->d->counters.queued++;
	return r < 0 ? r : 0;
}

static int webhooks(struct ctx *x)
{
	const struct notify_config *nc = x->d->notify;
	int r = 0;

	for (size_t i = 0; r == 0 && i < nc->nwebhooks; i++)
		if (nc->webhooks[i].events & (1u << x->c->kind))
			r = queue_webhook(x, &nc->webhooks[i]);
	return r;
}

/*
 * Children and flapping tickets are quiet for the system's automatic
 * per-change news (notify.h); everything people do, and SLA reminders,
 * still go out.
 */
static bool quiet(const struct ctx *x)
{
	const struct ticket_change *c = x->c;

	if (c->parent_id <= 0 && !c->flapping && !x->core.flapping)
		return false;
	if (c->kind == TICKET_ACTION)
		return c->parent_id > 0 && c->field && strcmp(c->field, "status_update") == 0;
	return by_system(c);
}

bool notify_mail_reaches(const struct helpdesk_config *hc, const struct inventory *inv)
{
	for (size_t i = 0; i < hc->npeople; i++)
		if (hc->people[i].email)
			return true;
	for (size_t i = 0; i < hc->nqueues; i++)
		if (hc->queues[i].email)
			return true;
	for (size_t i = 0; i < inv->ncustomers; i++)
		if (inv->customers[i].contacts[0])
			return true;
	return false;
}

/*
 * Whether any channel could take a notification for a change of kind:
 * mail only when someone has an address (desk.mail_reaches).
 */
static bool may_queue(const struct desk *d, enum ticket_change_kind kind)
{
	const struct notify_config *nc = d->notify;

	if (nc->smtp_url != NULL && d->mail_reaches)
		return true;
	for (size_t i = 0; i < nc->nwebhooks; i++)
		if (nc->webhooks[i].events & (1u << kind))
			return true;
	return false;
}

/* The problem is back, or flapping: a pending "solved" mail must not go. */
static bool cancels_solved(const struct ticket_change *c)
{
	return c->kind == TICKET_OPENED || c->kind == TICKET_REOPENED ||
	       c->kind == TICKET_UPDATED || c->flapping;
}

static int cancel_solved(struct ctx *x, const char *key)
{
	int r = desk_outbox_cancel(x->d, key);

	if (r > 0)
		x->d->counters.cancelled += (unsigned)r;
	return r < 0 ? r : 0;
}

/*
 * The listener: runs inside the change's transaction (after routing's, so
 * the ticket's fields exist), cancels what the change makes wrong and
 * queues what it calls for.  Returns 0, or -errno from the store (which
 * rolls the change back with everything queued); a notification it
 * cannot build is recorded as failed instead (queue_webhook()).
 *
 * Its work follows what it really does: with no channel for the change
 * (no SMTP server, no webhook for its kind) it only cancels what the
 * change makes wrong, without reading the ticket; the hint and the
 * history are read only for a mail that goes to someone (mail_texts()).
 */
static int on_change(void *arg, struct store *st, const struct ticket_change *c)
{
	struct ctx x = { .d = arg, .c = c, .clock = "-" };
	char *key = NULL;
	int r;

	(void)st;
	if (!may_queue(x.d, c->kind) && c->host && c->check && c->item) {
		if (!cancels_solved(c))
			return 0;
		key = problem_key(c, NULL);
		r = cancel_solved(&x, key);
		free(key);
		return r;
	}
	r = desk_core_get(x.d, c->ticket_id, &x.core);
	if (r > 0)
		r = desk_row_get(x.d, c->ticket_id, &x.row);
	if (r <= 0)
		goto out;
	key = problem_key(c, &x.core);
	r = cancels_solved(c) ? cancel_solved(&x, key) : 0;
	if (r < 0 || quiet(&x))
		goto out;
	x.customer = x.row.customer[0] ? inventory_customer(x.d->inv, x.row.customer) : NULL;
	snprintf(x.id, sizeof(x.id), "%lld", (long long)x.core.id);
	snprintf(x.level, sizeof(x.level), "%d", x.row.level);
	format_time(x.row.response_due, x.rdue);
	format_time(x.row.resolution_due, x.sdue);
	strlcpy_safe(x.due, "-", sizeof(x.due));
	r = technician_mails(&x);
	if (r == 0)
		r = customer_mails(&x, key);
	if (r == 0)
		r = webhooks(&x);
	if (r == 0 && x.d->dispatch)
		dispatch_kick(x.d->dispatch);
out:
	free(x.hint);
	free(x.history);
	free(key);
	desk_core_clear(&x.core);
	return r;
}

int notify_listen(struct store *st, struct desk *d)
{
	return store_listen(st, on_change, d);
}
