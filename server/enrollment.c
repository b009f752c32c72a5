#include "enrollment.h"

#include <errno.h>
#include <fnmatch.h>
#include <sodium.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../common/util.h"
#include "account.h"
#include "credentials_private.h"
#include "credindex.h"
#include "hostclaim.h"
#include "inventory.h"
#include "store.h"

struct enroll_job {
	struct change ch;
	int64_t token_id;
	const char *customer;
	const char *host;
	const char *inventory_owner; /* the inventory's customer of host, or NULL */
	int64_t live_window_ms;
	uint8_t hash[TOKEN_HASH_LEN];
	int64_t id, uses;
	int64_t approval;    /* the approval this enrollment uses, or 0 */
	struct ids replaced; /* earlier credentials of the host */
};

/*
 * The token again, inside the transaction: another enrollment may have
 * used it up since the request was authenticated.  A token for some host
 * names only refuses others.
 */
static int enroll_check_token(struct enroll_job *j)
{
	sqlite3_stmt *s = j->ch.c->stmt[STMT_TOKEN_GET];
	long long id = (long long)j->token_id;
	int64_t expires, max_uses, uses, revoked;
	char hosts[256] = "";
	bool any_host;
	int rc;

	sqlite3_bind_int64(s, 1, j->token_id);
	rc = sqlite3_step(s);
	if (rc != SQLITE_ROW) {
		sqlite3_reset(s);
		sqlite3_clear_bindings(s);
		return rc == SQLITE_DONE
			       ? credentials_fail(&j->ch, -EACCES, "no enrollment token %lld", id)
			       : sqlite_to_errno(rc);
	}
	expires = sqlite3_column_int64(s, 0);
	max_uses = credentials_column_int(s, 1);
	uses = sqlite3_column_int64(s, 2);
	revoked = credentials_column_int(s, 3);
	any_host = sqlite3_column_type(s, 4) == SQLITE_NULL;
	strlcpy_safe(hosts, credentials_column_text(s, 4), sizeof(hosts));
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	if (revoked != 0)
		return credentials_fail(&j->ch, -EACCES, "enrollment token %lld was revoked", id);
	if (j->ch.now_ms >= expires)
		return credentials_fail(&j->ch, -EACCES, "enrollment token %lld has expired", id);
	if (max_uses > 0 && uses >= max_uses)
		return credentials_fail(&j->ch, -EACCES,
			    "enrollment token %lld is used up (%lld of %lld enrollments)",
			    id, (long long)uses, (long long)max_uses);
	if (!any_host && fnmatch(hosts, j->host, 0) != 0)
		return credentials_fail(&j->ch, -EPERM,
			    "enrollment token %lld may only enroll hosts matching '%s', not %s",
			    id, hosts, j->host);
	return 0;
}

/* "(credential 17)" or "(since 2026-11-22T10:00:00.000Z)": why host is owner's. */
static int owner_evidence(struct enroll_job *j, int64_t since_ms, char *buf,
			  size_t size)
{
	sqlite3_stmt *s = j->ch.c->stmt[STMT_HOST_ACTIVE];
	char at[TIME_RFC3339_LEN];
	int rc;

	db_bind_text(s, 1, j->host);
	sqlite3_bind_int64(s, 2, j->ch.now_ms);
	db_bind_text(s, 3, j->customer);
	rc = sqlite3_step(s);
	if (rc == SQLITE_ROW) {
		snprintf(buf, size, "credential %lld",
			 (long long)sqlite3_column_int64(s, 0));
	} else {
		time_format_rfc3339(since_ms, at);
		snprintf(buf, size, "since %s", at);
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : sqlite_to_errno(rc);
}

/*
 * The host's usable credentials: whether there is one, and the latest
 * use of any of them since the collector started (*ret_used_ms, 0 if
 * none, by *ret_used_id).
 */
static int host_credentials_used(struct enroll_job *j, bool *ret_active,
				 int64_t *ret_used_ms, int64_t *ret_used_id)
{
	sqlite3_stmt *s = j->ch.c->stmt[STMT_HOST_CREDENTIALS];
	int rc;

	*ret_active = false;
	*ret_used_ms = *ret_used_id = 0;
	db_bind_text(s, 1, j->host);
	sqlite3_bind_int64(s, 2, j->ch.now_ms);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW) {
		int64_t id = sqlite3_column_int64(s, 0);
		int64_t used = credindex_last_used(j->ch.c->ix, id);

		*ret_active = true;
		if (used > *ret_used_ms) {
			*ret_used_ms = used;
			*ret_used_id = id;
		}
	}
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_DONE ? 0 : sqlite_to_errno(rc);
}

/*
 * Is the host in use, so that enrolling it again would cut an agent off?
 * Its credential was used within the window, or it reported within it
 * (the hosts table, which survives restarts) while it has a credential
 * or belongs to nobody (then it reports with a shared token, and who it
 * belongs to is not ours to guess).  0 when not, 1 with why in buf.
 */
static int enroll_host_live(struct enroll_job *j, bool owned, char *buf,
			    size_t size)
{
	int64_t since = j->ch.now_ms - j->live_window_ms;
	int64_t used = 0, used_id = 0, seen = 0;
	char ago[32];
	bool active;
	int r;

	r = host_credentials_used(j, &active, &used, &used_id);
	if (r < 0)
		return r;
	if (used_id != 0 && used >= since) {
		format_duration((j->ch.now_ms - used) / 1000, ago, sizeof(ago));
		snprintf(buf, size, "its credential %lld was used %s ago",
			 (long long)used_id, ago);
		return 1;
	}
	r = hostclaim_last_seen(j->ch.c->claims, j->host, &seen);
	if (r < 0)
		return r;
	if (r == 0 || seen < since || (!active && owned))
		return 0;
	format_duration((j->ch.now_ms - seen) / 1000, ago, sizeof(ago));
	snprintf(buf, size, "it reported %s ago%s", ago,
		 owned ? "" : " and belongs to no customer yet");
	return 1;
}

/*
 * Who the host belongs to, and whether this enrollment may take it: the
 * inventory's customer (checked before, on the HTTP thread), else the
 * claim.  Moving a host to another customer, and enrolling a host in use
 * again, need an administrator's approval, which j->approval records.
 */
static int enroll_check_claim(struct enroll_job *j)
{
	char owner[CUSTOMER_ID_MAX + 1] = "", evidence[64], why[160];
	int64_t since = 0;
	bool owned;
	int r;

	if (j->inventory_owner != NULL) {
		strlcpy_safe(owner, j->inventory_owner, sizeof(owner));
		r = 1;
	} else {
		r = hostclaim_owner(j->ch.c->claims, j->host, owner,
				    sizeof(owner), &since);
	}
	if (r < 0)
		return r;
	owned = r == 1;
	if (owned && strcmp(owner, j->customer) != 0) {
		r = hostclaim_find_approval(j->ch.c->claims, j->host,
					    j->customer, true, j->ch.now_ms,
					    &j->approval);
		if (r != 0)
			return r < 0 ? r : 0;
		r = owner_evidence(j, since, evidence, sizeof(evidence));
		if (r < 0)
			return r;
		return credentials_fail(&j->ch, -EEXIST,
			    "host %s belongs to customer %s (%s); an administrator can move it to %s with: tocsin enrollment approve %s --customer %s",
			    j->host, owner, evidence, j->customer, j->host,
			    j->customer);
	}
	if (j->live_window_ms <= 0)
		return 0;
	r = enroll_host_live(j, owned, why, sizeof(why));
	if (r <= 0)
		return r;
	r = hostclaim_find_approval(j->ch.c->claims, j->host, j->customer,
				    false, j->ch.now_ms, &j->approval);
	if (r != 0)
		return r < 0 ? r : 0;
	return credentials_fail(&j->ch, -EEXIST,
		    "host %s is in use: %s; enrolling it again would cut its agent off. Rotate with the current credential (tocsin-agent rotate-credential), or have an administrator approve it: tocsin enrollment approve %s",
		    j->host, why, j->host);
}

/* Revoke the host's earlier credentials, remembering which. */
static int enroll_replace_earlier(struct enroll_job *j)
{
	sqlite3_stmt *s = j->ch.c->stmt[STMT_HOST_REPLACE_ALL];
	int rc;

	db_bind_text(s, 1, j->host);
	sqlite3_bind_int64(s, 2, j->ch.now_ms);
	while ((rc = sqlite3_step(s)) == SQLITE_ROW)
		credentials_ids_add(&j->replaced, sqlite3_column_int64(s, 0));
	sqlite3_reset(s);
	sqlite3_clear_bindings(s);
	return rc == SQLITE_DONE ? 0 : sqlite_to_errno(rc);
}

/* Count the token's use; its new count in j->uses. */
static int enroll_use_token(struct enroll_job *j)
{
	sqlite3_stmt *use = j->ch.c->stmt[STMT_TOKEN_USE];
	int rc;

	sqlite3_bind_int64(use, 1, j->token_id);
	rc = sqlite3_step(use);
	if (rc == SQLITE_ROW)
		j->uses = sqlite3_column_int64(use, 0);
	while (rc == SQLITE_ROW)
		rc = sqlite3_step(use);
	sqlite3_reset(use);
	sqlite3_clear_bindings(use);
	return rc == SQLITE_DONE ? 0 : sqlite_to_errno(rc);
}

static int enroll_audit(struct enroll_job *j)
{
	char detail[512];
	size_t len;

	snprintf(detail, sizeof(detail), "host %s of customer %s", j->host,
		 j->customer);
	for (size_t i = 0; i < j->replaced.n; i++) {
		len = strlen(detail);
		snprintf(detail + len, sizeof(detail) - len, "%s%lld",
			 i == 0 ? "; replaces credential " : ", ",
			 (long long)j->replaced.v[i]);
	}
	len = strlen(detail);
	if (j->approval != 0)
		snprintf(detail + len, sizeof(detail) - len,
			 "; approved by enrollment approval %lld",
			 (long long)j->approval);
	return credentials_audit_change(&j->ch, "enroll", "credential", j->id, detail);
}

static int enroll_apply(struct store *st, void *arg)
{
	struct enroll_job *j = arg;
	int r;

	(void)st;
	r = enroll_check_token(j);
	if (r == 0)
		r = enroll_check_claim(j);
	if (r == 0)
		r = enroll_replace_earlier(j);
	if (r == 0)
		r = credentials_insert_credential(&j->ch, j->host, j->customer, j->hash,
				      j->token_id, &j->id);
	if (r == 0)
		r = enroll_use_token(j);
	if (r == 0)
		r = hostclaim_claim(j->ch.c->claims, j->host, j->customer,
				    j->ch.now_ms, j->ch.actor);
	if (r == 0 && j->approval != 0)
		r = hostclaim_use_approval(j->ch.c->claims, j->approval,
					   j->ch.now_ms, j->id);
	if (r == 0)
		r = enroll_audit(j);
	return r;
}

/* In commit order: the earlier credentials end, the new one works. */
static void enroll_then(void *arg, int result)
{
	struct enroll_job *j = arg;
	struct credentials *c = j->ch.c;
	struct credindex_row row = { .kind = CREDINDEX_CREDENTIAL,
				     .id = j->id,
				     .host = j->host,
				     .customer = j->customer };

	if (result < 0)
		return;
	for (size_t i = 0; i < j->replaced.n; i++)
		credindex_revoke(c->ix, CREDINDEX_CREDENTIAL, j->replaced.v[i],
				 j->ch.now_ms, "reenrolled");
	memcpy(row.hash, j->hash, TOKEN_HASH_LEN);
	credindex_add(c->ix, &row);
	credindex_set_uses(c->ix, j->token_id, j->uses);
	credentials_maybe_prune(c, j->ch.now_ms);
}

int enrollment_enroll(struct credentials *c, const struct principal *p,
		      const char *host, const struct inventory *inv,
		      int64_t now_ms, struct credential_issued *ret, char *err,
		      size_t errlen)
{
	const struct host *known = inventory_host(inv, host);
	struct enroll_job j = {
		.ch = { .c = c, .now_ms = now_ms, .actor = p->name },
		.token_id = p->credential_id,
		.customer = p->customer,
		.host = host,
		.inventory_owner = known && known->customer ? known->customer->id
							    : NULL,
		.live_window_ms = atomic_load(&c->live_window_ms),
	};
	struct credential_issued out = { 0 };
	int r;

	if (j.inventory_owner != NULL &&
	    strcmp(j.inventory_owner, p->customer) != 0) {
		snprintf(err, errlen,
			 "host %s belongs to customer %s in the inventory, not to %s",
			 host, j.inventory_owner, p->customer);
		return -EEXIST;
	}
	credentials_secret_new(CREDENTIAL_PREFIX, out.secret, sizeof(out.secret), j.hash);
	r = credentials_run_change(&j.ch, enroll_apply, enroll_then, &j, err, errlen);
	free(j.replaced.v);
	if (r < 0) {
		sodium_memzero(&out, sizeof(out));
		return r;
	}
	out.id = j.id;
	*ret = out;
	return 0;
}

struct approve_job {
	struct change ch;
	const char *host;
	const char *customer;
	int64_t expires_ms;
	int64_t id;
};

static int approve_apply(struct store *st, void *arg)
{
	struct approve_job *j = arg;
	char at[TIME_RFC3339_LEN], detail[384];
	int r;

	(void)st;
	r = hostclaim_approve(j->ch.c->claims, j->host, j->customer,
			      j->ch.now_ms, j->expires_ms, j->ch.actor, &j->id);
	if (r < 0)
		return r;
	time_format_rfc3339(j->expires_ms, at);
	if (j->customer != NULL)
		snprintf(detail, sizeof(detail),
			 "the next enrollment of host %s, into customer %s, until %s",
			 j->host, j->customer, at);
	else
		snprintf(detail, sizeof(detail),
			 "the next enrollment of host %s, until %s", j->host, at);
	return credentials_audit_change(&j->ch, "enrollment.approve", "enrollment approval",
			    j->id, detail);
}

int enrollment_approve(struct credentials *c, const char *host,
		       const char *customer, int64_t expires_ms,
		       const struct actor *actor, int64_t now_ms,
		       int64_t *ret_id, char *err, size_t errlen)
{
	struct approve_job j = {
		.ch = { .c = c, .now_ms = now_ms, .actor = actor->name,
			.by = actor },
		.host = host,
		.customer = customer,
		.expires_ms = expires_ms,
	};
	int r = credentials_run_change(&j.ch, approve_apply, NULL, &j, err, errlen);

	if (r == 0)
		*ret_id = j.id;
	return r;
}
