/*
 * Technicians' actions on tickets: POST /api/v1/tickets/{id}/actions with
 * {"action": NAME, ...}.
 *
 *   acknowledge                         new -> acknowledged
 *   start                               new, acknowledged, waiting, recovered -> in_progress
 *   ask       {text, party}             -> waiting (customer or third_party); the SLA pauses
 *   assign    {assignee}                a person (people:) or a token name
 *   comment   {text, visibility}        internal (default) or customer
 *   escalate  {text?}                   to the next support level
 *   priority  {priority}                set by hand; impact/urgency no longer change it
 *   urgency   {urgency}, impact {impact}  and the priority from the matrix
 *   merge     {into, text?}             this duplicate is closed into ticket `into`
 *   resolve   {note}                    -> resolved, with the resolution note
 *   close                               resolved, recovered -> closed
 *   reopen    {text?}                   resolved, closed -> in_progress
 *
 * Each action is one writer job: it checks that a console session's
 * account and session may still act (session_check_actor(): 409 or 401
 * otherwise), checks the current state, writes the change and a journal
 * entry (actor = the authenticated principal, time, old and new value)
 * and announces it with store_ticket_changed(), all in one transaction.
 * A transition the current state does not allow is a 409 that names
 * both; an unknown ticket a 404; a malformed body a 400.
 */
#ifndef TOCSIN_ACTION_H
#define TOCSIN_ACTION_H

#include "http.h"

/* The route handler; app is the struct api. */
void action_post(void *app, const struct http_request *req,
		 struct http_response *resp);

#endif
