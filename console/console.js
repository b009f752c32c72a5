// The Tocsin console: plain JavaScript over the JSON API, no framework.
// Every piece of data reaches the page through textContent or DOM
// properties, never parsed as HTML, so a summary that contains markup
// shows as text.  Views are chosen by the URL's fragment (#/, #/ticket/7).
"use strict";

const REFRESH_MS = 30000;
const LIST_MAX = 10000; // tickets the list shows at most
const me = { name: null, role: null, csrf: null };
// The list's filters outlive a visit to a ticket.
const filters = { state: "open", host: "", check: "", customer: "", queue: "",
  assignee: "" };
let refreshTimer = null;
// The helpdesk's scales, queues and people (GET /api/v1/helpdesk/scales):
// a promise fetched once per login, null until then.
let scalesFetch = null;

// el("a", {href: "#/"}, "text", child): an element; strings become text.
function el(tag, attrs, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else if (k === "class") e.className = v;
    else if (k in e && typeof v !== "string") e[k] = v;
    else e.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    e.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return e;
}

const main = () => document.getElementById("main");
function show(...nodes) {
  main().replaceChildren(...nodes);
}

class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// One API call: the parsed answer, or an ApiError with the server's message.
// A 401 means the session is gone: back to the login.
async function api(method, path, body) {
  const headers = {};
  if (body !== undefined) headers["Content-Type"] = "application/json";
  if (me.csrf && method !== "GET") headers["X-Tocsin-CSRF"] = me.csrf;
  const r = await fetch(path, { method, headers, credentials: "same-origin",
    body: body === undefined ? undefined : JSON.stringify(body) });
  let data = null;
  try { data = await r.json(); } catch (e) { data = null; }
  if (r.status === 401 && path !== "/api/v1/session") {
    loggedOut((data && data.error) || "log in again");
    const e = new ApiError(401, "not logged in");
    e.shown = true; // the login page says why
    throw e;
  }
  if (!r.ok) {
    throw new ApiError(r.status, (data && data.error) || `HTTP ${r.status}`);
  }
  return data;
}

const canAct = () => me.role === "technician" || me.role === "admin";
const isAdmin = () => me.role === "admin";

function when(t) {
  if (!t) return "";
  const d = new Date(t);
  return isNaN(d) ? String(t) : d.toLocaleString();
}

function ago(t) {
  if (!t) return "";
  const s = Math.round((Date.now() - new Date(t).getTime()) / 1000);
  const abs = Math.abs(s);
  const text = abs < 90 ? `${abs}s` : abs < 5400 ? `${Math.round(abs / 60)}m`
    : abs < 129600 ? `${Math.round(abs / 3600)}h` : `${Math.round(abs / 86400)}d`;
  return s >= 0 ? `${text} ago` : `in ${text}`;
}

// A table of rows; columns are [heading, row => text or Node, class?].
function table(rows, columns, rowClass) {
  return el("table", {},
    el("thead", {}, el("tr", {}, columns.map(([h, , cls]) => el("th", { class: cls }, h)))),
    el("tbody", {}, rows.map(r => el("tr", { class: rowClass ? rowClass(r) : null },
      columns.map(([, f, cls]) => el("td", { class: cls }, f(r)))))));
}

function errorLine(id) {
  return el("p", { id, class: "error", role: "alert" });
}

// Run an API call from a button; its error goes to the line `where`.
async function attempt(where, fn) {
  where.textContent = "";
  try {
    await fn();
  } catch (e) {
    if (!e.shown) where.textContent = e.message;
  }
}

// --- login and session ------------------------------------------------

function loggedOut(message) {
  me.name = me.role = me.csrf = null;
  scalesFetch = null;
  clearTimeout(refreshTimer);
  document.getElementById("top").hidden = true;
  const err = errorLine("login-error");
  err.textContent = message || "";
  const name = el("input", { id: "login-name", name: "username", autocomplete: "username",
    required: true, autofocus: true });
  const password = el("input", { id: "login-password", name: "password", type: "password",
    autocomplete: "current-password", required: true });
  const form = el("form", { class: "login", id: "login" },
    el("h1", {}, "Tocsin"),
    el("label", {}, "Name", name),
    el("label", {}, "Password", password),
    el("button", { class: "primary", type: "submit" }, "Log in"),
    err);
  form.addEventListener("submit", async ev => {
    ev.preventDefault();
    await attempt(err, async () => {
      const s = await api("POST", "/api/v1/session",
        { name: name.value, password: password.value });
      password.value = "";
      loggedIn(s);
    });
  });
  show(form);
  name.focus();
}

function loggedIn(s) {
  me.name = s.name;
  me.role = s.role;
  me.csrf = s.csrf;
  document.getElementById("top").hidden = false;
  document.getElementById("who").textContent = `${s.name} (${s.role})`;
  document.getElementById("nav-admin").hidden = !isAdmin();
  route();
}

async function logout() {
  try { await api("DELETE", "/api/v1/session"); } catch (e) { /* gone anyway */ }
  loggedOut("Logged out.");
}

// --- the open tickets list --------------------------------------------

function slaCell(t) {
  const due = t.status === "new" && t.response_due ? t.response_due : t.resolution_due;
  if (!due) return "";
  return el("span", { class: t.overdue ? "overdue" : null, title: when(due) },
    t.overdue ? `overdue ${ago(due)}` : `due ${ago(due)}`);
}

function ticketMatches(t) {
  for (const k of ["host", "check", "customer", "queue", "assignee"]) {
    const want = filters[k].trim().toLowerCase();
    if (want && !String(t[k] || "").toLowerCase().includes(want)) return false;
  }
  return true;
}

function ticketRows(tickets) {
  const rows = tickets.filter(ticketMatches);
  const count = el("p", { class: "muted", id: "ticket-count" },
    `${rows.length} of ${tickets.length} tickets`);
  return [count, table(rows, [
    ["#", t => el("a", { href: `#/ticket/${t.id}` }, String(t.id))],
    ["Prio", t => t.priority || ""],
    ["Status", t => t.status],
    ["Host", t => t.host],
    ["Check", t => t.item ? `${t.check} ${t.item}` : t.check, "wide-only"],
    ["Summary", t => [el("a", { href: `#/ticket/${t.id}`, class: "summary" }, t.summary || t.title || ""),
      t.flapping ? el("span", { class: "badge" }, "flapping") : null,
      t.children_count ? el("span", { class: "badge" }, `${t.children_count} children`) : null]],
    ["Customer", t => t.customer || "", "wide-only"],
    ["Queue", t => t.queue || "", "wide-only"],
    ["Assignee", t => t.assignee || "", "wide-only"],
    ["SLA", slaCell],
    ["Last seen", t => ago(t.last_seen), "wide-only"],
  ], t => `state-${t.state}`)];
}

// Every ticket in state, a page of 1000 (the API's most) at a time.
async function allTickets(state) {
  const all = [];
  for (let offset = 0; offset < LIST_MAX; offset += 1000) {
    const page = (await api("GET", `/api/v1/tickets?state=${state}&limit=1000&offset=${offset}`)).tickets;
    all.push(...page);
    if (page.length < 1000) break;
  }
  return all;
}

async function showTickets() {
  const list = el("div", { id: "tickets" }, el("p", { class: "muted" }, "Loading…"));
  const err = errorLine("list-error");
  const state = el("select", { id: "filter-state" },
    ["open", "resolved", "all"].map(s => el("option", { value: s, selected: filters.state === s }, s)));
  const inputs = ["host", "check", "customer", "queue", "assignee"].map(k => {
    const i = el("input", { id: `filter-${k}`, value: filters[k], size: 10, type: "search" });
    i.addEventListener("input", () => { filters[k] = i.value; render(); });
    return el("label", {}, k, i);
  });
  let tickets = [];
  const render = () => list.replaceChildren(...ticketRows(tickets));
  const load = async () => {
    clearTimeout(refreshTimer);
    const started = performance.now();
    await attempt(err, async () => {
      tickets = await allTickets(filters.state);
      // Replacing only the rows keeps the filters, focus and scroll place.
      render();
      // For the benchmark and the browser test: how long this took, and
      // when since the navigation the list was first there.
      document.body.dataset.renderMs = String(Math.round(performance.now() - started));
      if (!document.body.dataset.listShownMs)
        document.body.dataset.listShownMs = String(Math.round(performance.now()));
    });
    // Only while the list is on screen and someone is logged in.
    if (me.name && list.isConnected)
      refreshTimer = setTimeout(load, REFRESH_MS);
  };
  state.addEventListener("change", () => { filters.state = state.value; load(); });
  show(el("h1", {}, "Tickets"),
    el("div", { class: "filters" }, el("label", {}, "state", state), inputs,
      el("button", { type: "button", onclick: load }, "Refresh")),
    err, list);
  await load();
}

// --- one ticket ---------------------------------------------------------

// What a ticket's impact, urgency, priority and assignee may be set to:
// fetched once and kept, or null when the server does not say (an older
// collector, a failure), so that the actions fall back to text inputs.
// A failure is not kept: the next ticket asks again.
function helpdeskScales() {
  if (!scalesFetch) {
    scalesFetch = api("GET", "/api/v1/helpdesk/scales").catch(e => {
      scalesFetch = null;
      if (e.shown) throw e; // logged out: the login page says why
      return null;
    });
  }
  return scalesFetch;
}

// A select of choices ([value, label]) with current selected; a current
// value that is no choice (a name a reload took off its scale, an
// assignee who is a token's name) stays shown as it is.
function choiceSelect(id, choices, current) {
  const known = choices.some(([v]) => v === current);
  return el("select", { id },
    // Without a value the select must not pretend the first choice is it.
    !known ? el("option", { value: current, selected: true, disabled: !current }, current || "–")
      : null,
    choices.map(([v, label]) => el("option", { value: v, selected: v === current }, label)));
}

// The inputs for one ticket's fields: selects from scales, else text.
function fieldInputs(t, scales) {
  if (!scales) {
    // The API names a scale's values when it refuses one.
    return {
      assignee: el("input", { id: "assignee", size: 12, value: t.assignee || "" }),
      priority: el("input", { id: "priority", size: 4, value: t.priority || "" }),
      urgency: el("input", { id: "urgency", size: 8, value: t.urgency || "" }),
      impact: el("input", { id: "impact", size: 8, value: t.impact || "" }),
    };
  }
  const scale = (id, names) => choiceSelect(id, names.map(n => [n, n]), t[id] || "");
  // Nobody (the value "") unassigns the ticket.
  const people = [["", "– nobody –"], ...scales.people.map(p =>
    [p.id, p.name === p.id ? p.id : `${p.name} (${p.id})`])];
  return {
    assignee: choiceSelect("assignee", people, t.assignee || ""),
    priority: scale("priority", scales.priorities),
    urgency: scale("urgency", scales.urgencies),
    impact: scale("impact", scales.impacts),
  };
}

function field(dl, name, value) {
  if (value === null || value === undefined || value === "") return;
  dl.append(el("dt", {}, name), el("dd", {}, value));
}

function clock(c) {
  if (!c) return null;
  const due = c.due ? ` due ${when(c.due)} (${ago(c.due)})` : "";
  return el("span", { class: c.breached || c.state === "overdue" ? "overdue" : null },
    `${c.state}${due}`);
}

// An occurrence's context: journal lines, package upgrades, anything else.
function contextView(ctx) {
  if (!ctx || typeof ctx !== "object") return null;
  return Object.entries(ctx).map(([k, v]) => {
    let text;
    if (Array.isArray(v) && v.every(x => typeof x === "string")) text = v.join("\n");
    else if (Array.isArray(v)) text = v.map(x => typeof x === "string" ? x : JSON.stringify(x)).join("\n");
    else text = typeof v === "string" ? v : JSON.stringify(v, null, 2);
    return el("div", { class: "context" }, el("strong", {}, k), el("pre", {}, text));
  });
}

const ticketLink = id => el("a", { href: `#/ticket/${id}` }, `#${id}`);

// What a journal entry changed: old → new, or for a merge the other
// ticket as a link ("merge" on the duplicate, "merged" on the survivor).
function journalChange(j) {
  if ((j.action === "merge" || j.action === "merged") && /^[1-9][0-9]*$/.test(j.new || ""))
    return [j.action === "merge" ? " into " : " from ", ticketLink(j.new)];
  return j.old || j.new ? ` ${j.old || "–"} → ${j.new || "–"}` : "";
}

function journalView(journal) {
  return el("ol", { class: "journal", id: "journal" }, (journal || []).map(j =>
    el("li", {},
      el("span", { class: "muted" }, when(j.at)), " ",
      el("strong", { class: "actor" }, j.actor || ""), " ",
      el("span", { class: "action" }, j.action),
      journalChange(j),
      j.text ? el("pre", {}, j.text) : null)));
}

// Merge this ticket into another: a number, then a second click on a
// question that says what happens, as the merge closes this ticket for
// good.  opt() is the comment box's text, journalled with the merge.
function mergeView(t, act, err, opt) {
  const into = el("input", { id: "merge-into", type: "number", min: 1, step: 1, size: 6 });
  const question = el("span", { id: "merge-question" });
  const confirmBox = el("span", { id: "merge-confirm-box", hidden: true },
    question, " ",
    el("button", { type: "button", id: "merge-confirm", class: "primary", onclick: () => {
      confirmBox.hidden = true;
      act({ action: "merge", into: Number(into.value), ...opt() });
    } }, "Merge and close"), " ",
    el("button", { type: "button", id: "merge-cancel", onclick: () => { confirmBox.hidden = true; } },
      "Cancel"));
  const ask = () => {
    const id = into.value.trim();
    err.textContent = "";
    confirmBox.hidden = true;
    if (!/^[1-9][0-9]*$/.test(id)) {
      err.textContent = "into: enter the number of the ticket to merge into";
      return;
    }
    question.textContent = `Merge #${t.id} into #${id}? This closes #${t.id}.`;
    confirmBox.hidden = false;
  };
  return el("div", { class: "actions" },
    el("label", {}, "merge into ticket #", into),
    el("button", { type: "button", id: "act-merge", onclick: ask }, "Merge…"),
    confirmBox);
}

function actionsView(t, reload, scales) {
  const err = errorLine("action-error");
  const act = (body) => attempt(err, async () => {
    await api("POST", `/api/v1/tickets/${t.id}/actions`, body);
    await reload();
  });
  const text = el("textarea", { id: "action-text", placeholder: "Comment, question or resolution note" });
  const visibility = el("select", { id: "comment-visibility" },
    el("option", { value: "internal" }, "internal"),
    el("option", { value: "customer" }, "to the customer"));
  const { assignee, priority, urgency, impact } = fieldInputs(t, scales);
  const btn = (label, body, id) => el("button", { type: "button", id,
    onclick: () => act(typeof body === "function" ? body() : body) }, label);
  const opt = () => (text.value.trim() ? { text: text.value } : {});
  return el("section", { id: "actions" },
    el("h2", {}, "Actions"),
    el("div", { class: "actions" },
      btn("Acknowledge", () => ({ action: "acknowledge", ...opt() }), "act-acknowledge"),
      btn("Start", () => ({ action: "start", ...opt() }), "act-start"),
      btn("Escalate", () => ({ action: "escalate", ...opt() }), "act-escalate"),
      btn("Close", () => ({ action: "close", ...opt() }), "act-close"),
      // The server refuses to reopen a merged ticket: its work goes on in the other.
      t.merged_into ? null : btn("Reopen", () => ({ action: "reopen", ...opt() }), "act-reopen")),
    text,
    el("div", { class: "actions" },
      visibility,
      btn("Comment", () => ({ action: "comment", text: text.value, visibility: visibility.value }),
        "act-comment"),
      btn("Ask the customer", () => ({ action: "ask", text: text.value }), "act-ask"),
      btn("Resolve with this note", () => ({ action: "resolve", note: text.value }), "act-resolve")),
    el("div", { class: "actions" },
      el("label", {}, "assignee", assignee),
      btn("Assign", () => (assignee.value === "" && assignee.tagName === "SELECT"
        ? { action: "unassign" } : { action: "assign", assignee: assignee.value }),
      "act-assign")),
    el("div", { class: "actions" },
      el("label", {}, "priority", priority),
      btn("Set priority", () => ({ action: "priority", priority: priority.value }), "act-priority"),
      el("label", {}, "urgency", urgency),
      btn("Set urgency", () => ({ action: "urgency", urgency: urgency.value }), "act-urgency"),
      el("label", {}, "impact", impact),
      btn("Set impact", () => ({ action: "impact", impact: impact.value }), "act-impact")),
    t.merged_into ? el("p", { class: "muted", id: "merged-note" }, "Merged into ",
      ticketLink(t.merged_into), ", where it is worked: a merged ticket cannot be reopened.")
      : mergeView(t, act, err, opt),
    err);
}

async function showTicket(id) {
  const err = errorLine("ticket-error");
  const reload = async () => {
    const [t, scales] = await Promise.all([api("GET", `/api/v1/tickets/${id}`),
      canAct() ? helpdeskScales() : null]);
    renderTicket(t, reload, err, scales);
  };
  show(el("p", { class: "muted" }, "Loading…"), err);
  await attempt(err, reload);
}

function renderTicket(t, reload, err, scales) {
  const dl = el("dl", { id: "ticket-fields" });
  field(dl, "Status", t.status);
  field(dl, "State", el("span", { class: `state-${t.state}` }, `${t.state} (worst ${t.worst_state})`));
  field(dl, "Host", t.host);
  field(dl, "Check", t.item ? `${t.check} ${t.item}` : t.check);
  field(dl, "Priority", t.priority);
  field(dl, "Impact", t.impact);
  field(dl, "Urgency", t.urgency);
  field(dl, "Customer", t.customer);
  field(dl, "Contract", t.contract);
  field(dl, "Queue", t.queue ? `${t.queue}, level ${t.level}` : null);
  field(dl, "Assignee", t.assignee);
  field(dl, "Response", t.sla && clock(t.sla.response));
  field(dl, "Resolution", t.sla && clock(t.sla.resolution));
  field(dl, "SLA calendar", t.sla && t.sla.calendar_note);
  field(dl, "Opened", when(t.opened_at));
  field(dl, "Last seen", `${when(t.last_seen)} (${t.occurrence_count} occurrences)`);
  field(dl, "Flapping", t.flapping ? "yes" : null);
  field(dl, "Parent", t.parent_id ? ticketLink(t.parent_id) : null);
  field(dl, "Merged into", t.merged_into ? el("a", { id: "merged-into",
    href: `#/ticket/${t.merged_into}` }, `#${t.merged_into}`) : null);
  const occurrences = (t.occurrences || []).slice(0, 10);
  const side = el("div", {},
    t.knowledge_hint ? [el("h2", {}, "Knowledge"), el("pre", { id: "knowledge" }, t.knowledge_hint)] : null,
    t.children && t.children.length ? [el("h2", {}, "Children"), el("ul", { id: "children" },
      t.children.map(c => el("li", {}, el("a", { href: `#/ticket/${c.id}` }, `#${c.id}`), ` ${c.host}: ${c.summary || ""}`)))] : null,
    t.history && t.history.length ? [el("h2", {}, "Previous tickets"), el("ul", { id: "history" },
      t.history.map(h => el("li", {}, el("a", { href: `#/ticket/${h.id}` }, `#${h.id}`),
        ` ${when(h.resolved_at || h.opened_at)} ${h.status}${h.resolution ? `: ${h.resolution}` : ""}`)))] : null);
  show(
    el("p", {}, el("a", { href: "#/" }, "← Tickets")),
    el("h1", { id: "ticket-title" }, `#${t.id} `, el("span", { id: "ticket-summary" }, t.summary || t.title || "")),
    err,
    el("div", { class: "cols" },
      el("div", {},
        dl,
        t.description ? el("pre", { id: "description" }, t.description) : null,
        canAct() ? actionsView(t, reload, scales) : null,
        el("h2", {}, "Journal"), journalView(t.journal),
        el("h2", {}, "Latest occurrences"),
        el("div", { id: "occurrences" }, occurrences.map(o => el("div", { class: "occurrence" },
          el("p", {}, el("span", { class: `state-${o.state}` }, o.state), " ",
            el("span", { class: "muted" }, when(o.observed_at)), " ", o.summary || ""),
          contextView(o.context))))),
      side));
}

// --- silences -------------------------------------------------------------

async function showSilences() {
  const err = errorLine("silence-error");
  const box = el("div", { id: "silences" });
  const load = () => attempt(err, async () => {
    const data = await api("GET", "/api/v1/silences?state=all");
    box.replaceChildren(table(data.silences.filter(s => s.state !== "expired" || !s.removed_at), [
      ["#", s => String(s.id)],
      ["Host", s => s.host || ""],
      ["Check", s => [s.check || "*", s.item ? ` ${s.item}` : ""].join("")],
      ["From", s => when(s.starts_at)],
      ["Until", s => when(s.ends_at)],
      ["State", s => s.state],
      ["By", s => s.author || "", "wide-only"],
      ["Comment", s => s.comment || ""],
      ["", s => canAct() && s.state !== "expired" ? el("button", { type: "button",
        onclick: () => attempt(err, async () => { await api("DELETE", `/api/v1/silences/${s.id}`); await load(); }) },
      "Remove") : ""],
    ]));
  });
  const host = el("input", { id: "silence-host", placeholder: "web*", size: 10 });
  const check = el("input", { id: "silence-check", size: 8 });
  const duration = el("input", { id: "silence-duration", value: "2h", size: 5 });
  const comment = el("input", { id: "silence-comment", size: 20 });
  const form = canAct() ? el("div", { class: "inline" },
    el("label", {}, "host", host), el("label", {}, "check", check),
    el("label", {}, "duration", duration), el("label", {}, "comment", comment),
    el("button", { type: "button", class: "primary", id: "silence-add", onclick: () => attempt(err, async () => {
      const body = { host: host.value, duration: duration.value, comment: comment.value };
      if (check.value) body.check = check.value;
      await api("POST", "/api/v1/silences", body);
      await load();
    }) }, "Add silence")) : null;
  show(el("h1", {}, "Silences"), form, err, box);
  await load();
}

// --- unknown trap devices ---------------------------------------------------

async function showTraps() {
  const err = errorLine("traps-error");
  const box = el("div", { id: "traps" });
  show(el("h1", {}, "Traps from unknown devices"), err, box);
  await attempt(err, async () => {
    const data = await api("GET", "/api/v1/traps/unknown?limit=200");
    box.replaceChildren(el("p", { class: "muted" }, `${data.kept} kept for review`),
      table(data.traps, [
        ["Received", t => when(t.received_at)],
        ["Source", t => t.source || ""],
        ["Version", t => t.version || ""],
        ["sysName", t => t.sys_name || ""],
        ["Trap", t => t.trap || t.trap_oid || ""],
        ["Varbinds", t => el("pre", {}, JSON.stringify(t.varbinds, null, 1)), "wide-only"],
      ]));
  });
}

// --- administration -----------------------------------------------------------

async function showAdmin() {
  const err = errorLine("admin-error");
  const accounts = el("div", { id: "accounts" });
  const tokens = el("div", { id: "enrollment-tokens" });
  const creds = el("div", { id: "credentials" });
  const trail = el("div", { id: "audit" });
  const revoke = (path) => el("button", { type: "button", onclick: () => attempt(err, async () => {
    await api("DELETE", path); await load(); }) }, "Revoke");
  const issued = el("pre", { id: "issued-token", hidden: true });
  const load = () => attempt(err, async () => {
    const [a, t, c, l] = await Promise.all([api("GET", "/api/v1/accounts"),
      api("GET", "/api/v1/enrollment-tokens"), api("GET", "/api/v1/credentials"),
      api("GET", "/api/v1/audit?limit=100")]);
    accounts.replaceChildren(table(a.accounts, [["Name", x => x.name], ["Role", x => x.role],
      ["Updated", x => when(x.updated)], ["By", x => x.created_by],
      ["", x => x.name === me.name ? "" : el("button", { type: "button", onclick: () => attempt(err, async () => {
        await api("DELETE", `/api/v1/accounts/${encodeURIComponent(x.name)}`); await load(); }) }, "Delete")]]));
    tokens.replaceChildren(table(t.enrollment_tokens, [["#", x => String(x.id)], ["Customer", x => x.customer],
      ["State", x => x.state], ["Uses", x => `${x.uses}${x.max_uses ? ` / ${x.max_uses}` : ""}`],
      ["Expires", x => when(x.expires_at)], ["By", x => x.created_by],
      ["", x => x.state === "active" ? revoke(`/api/v1/enrollment-tokens/${x.id}`) : ""]]));
    creds.replaceChildren(table(c.credentials, [["#", x => String(x.id)], ["Host", x => x.host],
      ["Customer", x => x.customer], ["State", x => x.state], ["Created", x => when(x.created_at)],
      ["", x => x.state === "active" || x.state === "rotating" ? revoke(`/api/v1/credentials/${x.id}`) : ""]]));
    trail.replaceChildren(table(l.audit, [["At", x => when(x.at)], ["Actor", x => x.actor || ""],
      ["Action", x => x.action || ""], ["Target", x => x.target || ""], ["Detail", x => x.detail || ""]]));
  });
  const name = el("input", { id: "account-name", size: 12 });
  const role = el("select", { id: "account-role" },
    ["viewer", "technician", "admin"].map(r => el("option", { value: r }, r)));
  const password = el("input", { id: "account-password", type: "password", autocomplete: "new-password" });
  const customer = el("input", { id: "token-customer", size: 12 });
  const expires = el("input", { id: "token-expires", value: "7d", size: 5 });
  show(el("h1", {}, "Administration"), err,
    el("h2", {}, "Accounts"),
    el("div", { class: "inline" }, el("label", {}, "name", name), el("label", {}, "role", role),
      el("label", {}, "password (10 or more characters)", password),
      el("button", { type: "button", id: "account-save", onclick: () => attempt(err, async () => {
        await api("PUT", `/api/v1/accounts/${encodeURIComponent(name.value)}`,
          { role: role.value, password: password.value });
        password.value = "";
        await load();
      }) }, "Create or replace")),
    accounts,
    el("h2", {}, "Enrollment tokens"),
    el("div", { class: "inline" }, el("label", {}, "customer", customer), el("label", {}, "expires in", expires),
      el("button", { type: "button", id: "token-create", onclick: () => attempt(err, async () => {
        const r = await api("POST", "/api/v1/enrollment-tokens",
          { customer: customer.value, expires_in: expires.value });
        issued.textContent = `Token #${r.id} (shown only now): ${r.token}`;
        issued.hidden = false;
        await load();
      }) }, "Create")),
    issued, tokens,
    el("h2", {}, "Host credentials"), creds,
    el("h2", {}, "Audit log"), trail);
  await load();
}

// --- one's own password ----------------------------------------------------------

function showPassword() {
  const err = errorLine("password-error");
  const current = el("input", { id: "password-current", type: "password", autocomplete: "current-password" });
  const next = el("input", { id: "password-new", type: "password", autocomplete: "new-password" });
  const again = el("input", { id: "password-again", type: "password", autocomplete: "new-password" });
  const form = el("form", { class: "login", id: "password-form" },
    el("h1", {}, "Change your password"),
    el("label", {}, "Current password", current),
    el("label", {}, "New password (10 or more characters)", next),
    el("label", {}, "New password again", again),
    el("button", { class: "primary", type: "submit" }, "Change"), err);
  form.addEventListener("submit", ev => {
    ev.preventDefault();
    if (next.value !== again.value) {
      err.textContent = "The new passwords differ.";
      return;
    }
    attempt(err, async () => {
      await api("PUT", "/api/v1/session/password", { current: current.value, password: next.value });
      location.hash = "#/";
      loggedOut("Password changed: log in with the new one.");
    });
  });
  show(form);
}

// --- routing --------------------------------------------------------------------

function route() {
  if (!me.name) return;
  clearTimeout(refreshTimer);
  const hash = location.hash || "#/";
  for (const a of document.querySelectorAll("#nav a")) {
    if (a.getAttribute("href") === hash) a.setAttribute("aria-current", "page");
    else a.removeAttribute("aria-current");
  }
  const m = hash.match(/^#\/ticket\/(\d+)$/);
  if (m) showTicket(m[1]);
  else if (hash === "#/silences") showSilences();
  else if (hash === "#/traps") showTraps();
  else if (hash === "#/admin" && isAdmin()) showAdmin();
  else if (hash === "#/password") showPassword();
  else showTickets();
}

async function start() {
  document.getElementById("logout").addEventListener("click", logout);
  window.addEventListener("hashchange", route);
  const r = await fetch("/api/v1/session", { credentials: "same-origin" });
  if (r.ok) loggedIn(await r.json());
  else loggedOut("");
}

document.addEventListener("DOMContentLoaded", start);
