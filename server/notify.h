/*
 * Notifications: which ticket changes tell whom, by e-mail and webhook.
 *
 * notify_listen() registers a ticket-change listener that turns changes
 * into rows of the persisted outbox (hd_outbox) inside the transaction of
 * the change itself: a change that rolls back queues nothing, and one
 * that commits cannot lose its notifications.  dispatch.c sends the rows.
 *
 * Who hears what:
 *   opened            the technicians of the ticket's queue and level
 *   reopened          the assignee, else the queue, unless the system
 *                     resolved it less than notify.settle before (the same
 *                     incident going on: the opening mail still stands)
 *   assigned          the new assignee
 *   escalated         the people of the new level in the queue
 *   sla warning       the assignee, else the queue (configurable share)
 *   overdue           the next level of the queue and the queue's lead
 *   resolved          the customer's contacts, once the recovery has held
 *                     for notify.settle; a reopen or flapping cancels it
 *   asked, comment    the customer's contacts (visible comments only)
 *   status update     the customer's contacts, every helpdesk.status_updates
 * Nobody is mailed about their own action.  Children of a parent ticket
 * and flapping tickets are quiet for the automatic per-change news
 * (opened, updated, recovered, resolved, reopened, closed by the system;
 * children also for status updates: the parent speaks for them), not for
 * what technicians do on them, nor for their SLA reminders.
 * Every mail is from notify.from and signed with notify.signature: the
 * system speaks in its own name, never in a technician's (seed 000).
 *
 * A notification that cannot be built (a payload that is not valid JSON,
 * or larger than notify.max_body) never fails the change: it is recorded
 * as a failed outbox row with the reason, counted and logged.
 */
#ifndef TOCSIN_NOTIFY_H
#define TOCSIN_NOTIFY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct cfg;
struct cfg_node;
struct store;
struct desk;
struct helpdesk_config;
struct inventory;

enum notify_template_id {
	NOTIFY_T_OPENED,
	NOTIFY_T_WARNING,
	NOTIFY_T_OVERDUE,
	NOTIFY_T_RESOLVED,
	NOTIFY_T_STATUS,
	NOTIFY_T_ASKED,
	NOTIFY_T_COMMENT,
	NOTIFY_T_REOPENED,
	NOTIFY_T_ASSIGNED,
	NOTIFY_T_ESCALATED,
	NOTIFY_T_COUNT,
};

enum notify_tls { NOTIFY_TLS_NONE, NOTIFY_TLS_TRY, NOTIFY_TLS_REQUIRED };

enum webhook_format { WEBHOOK_GENERIC, WEBHOOK_ZAMMAD };

struct notify_template {
	char *subject;
	char *body;
	/* {hint} or {history} in subject or body: only then are they read */
	bool uses_hint, uses_history;
};

struct notify_webhook {
	char *name;
	char *url;
	enum webhook_format format;
	char **headers;	 /* "Name: value", NULL-terminated, never NULL */
	unsigned events; /* bit per enum ticket_change_kind */
	int64_t timeout_ms;
};

struct notify_config {
	char *from;	  /* "Tocsin <tocsin@example.com>" */
	char *from_addr;  /* the address inside it, for MAIL FROM */
	char *signature;
	char *smtp_url;	  /* NULL: no mail */
	char *smtp_url_shown; /* smtp_url without credentials, for errors and logs */
	enum notify_tls smtp_tls;
	char *smtp_user, *smtp_password;
	int64_t smtp_timeout_ms;
	char *smtp_ca_file; /* CA bundle for the server's certificate, or NULL */
	int64_t settle_ms;
	int64_t retry_initial_ms, retry_max_ms;
	int retry_attempts;
	int64_t poll_ms;
	int64_t keep_ms;  /* sent, failed and cancelled rows are kept this long */
	size_t max_body;  /* bound on a rendered mail or payload */
	size_t max_pending; /* outbox rows waiting at most (desk_outbox_add()) */
	int rate_mails;	  /* mails per rate_per_ms to one recipient list; 0: no limit */
	int64_t rate_per_ms;
	struct notify_template templates[NOTIFY_T_COUNT];
	struct notify_webhook *webhooks;
	size_t nwebhooks;
};

/* Parse notify: (node may be NULL); always sets *ret, errors go to cfg. */
void notify_config_parse(struct cfg *cfg, const struct cfg_node *node,
			 struct notify_config **ret);
void notify_config_free(struct notify_config *nc);

/*
 * Whether a mail could reach anyone at all: a person, a queue or a
 * customer with an address.  When none has one, the listener treats mail
 * as off (it would find no recipient for any change).
 */
bool notify_mail_reaches(const struct helpdesk_config *hc, const struct inventory *inv);

/* Register the listener that queues notifications (after routing's). */
int notify_listen(struct store *st, struct desk *desk);

struct desk_core;
struct desk_row;
/*
 * Whether a periodic status update of this ticket would reach anyone
 * (mail configured, a customer with contacts who wants them, not a
 * child): the timer journals one only then.
 */
bool notify_wants_status_update(struct desk *d, const struct desk_core *core,
				const struct desk_row *row);

/*
 * Render a template: {field} placeholders from fields (pairs of name and
 * value, NULL-terminated); unknown fields stay as written.  Malloc'ed,
 * at most max bytes (cut with "..." between whole UTF-8 characters).
 */
char *notify_render(const char *tmpl, const char *const *fields, size_t max);
/* Subjects are cut at this many bytes (and folded by smtp.c). */
#define NOTIFY_SUBJECT_MAX 998

/* The length of s cut to at most n bytes, never inside a UTF-8 character. */
size_t notify_utf8_cut(const char *s, size_t n);
/* Is {name} a placeholder templates may use? */
bool notify_field_known(const char *name, size_t len);

#endif
