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
 *   sla warning       the assignee, else the queue (configurable share)
 *   overdue           the next level of the queue and the queue's lead
 *   resolved          the customer's contacts, once the recovery has held
 *                     for notify.settle; a reopen or flapping cancels it
 *   asked, comment    the customer's contacts (visible comments only)
 *   status update     the customer's contacts, every helpdesk.status_updates
 * Children of a parent ticket and flapping tickets mail nothing per change.
 * Every mail is from notify.from and signed with notify.signature: the
 * system speaks in its own name, never in a technician's (seed 000).
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

enum notify_template_id {
	NOTIFY_T_OPENED,
	NOTIFY_T_WARNING,
	NOTIFY_T_OVERDUE,
	NOTIFY_T_RESOLVED,
	NOTIFY_T_STATUS,
	NOTIFY_T_ASKED,
	NOTIFY_T_COMMENT,
	NOTIFY_T_COUNT,
};

enum notify_tls { NOTIFY_TLS_NONE, NOTIFY_TLS_TRY, NOTIFY_TLS_REQUIRED };

enum webhook_format { WEBHOOK_GENERIC, WEBHOOK_ZAMMAD };

struct notify_template {
	char *subject;
	char *body;
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
	struct notify_template templates[NOTIFY_T_COUNT];
	struct notify_webhook *webhooks;
	size_t nwebhooks;
};

/* Parse notify: (node may be NULL); always sets *ret, errors go to cfg. */
void notify_config_parse(struct cfg *cfg, const struct cfg_node *node,
			 struct notify_config **ret);
void notify_config_free(struct notify_config *nc);

/* Register the listener that queues notifications (after routing's). */
int notify_listen(struct store *st, struct desk *desk);

/*
 * Render a template: {field} placeholders from fields (pairs of name and
 * value, NULL-terminated); unknown fields stay as written.  Malloc'ed,
 * at most max bytes (cut with "...").
 */
char *notify_render(const char *tmpl, const char *const *fields, size_t max);
/* Is {name} a placeholder templates may use? */
bool notify_field_known(const char *name, size_t len);

#endif
