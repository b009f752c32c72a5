// Drives Debian's chromium through the console of a real collector, as
// a technician would, and prints what it saw as one JSON object on
// stdout; tests/integration/test_console_browser.py starts the collector
// and asserts.  A step that cannot happen (a selector that never shows)
// fails the run with a message naming the step.
//
//   node console_browser.js '{"url": ..., "tech": ..., "viewer": ..., ...}'
"use strict";

const { run } = require("./driver");

const args = JSON.parse(process.argv[2]);

async function login(page, name, password) {
  await page.fill("#login-name", name);
  await page.fill("#login-password", password);
  await page.click("#login button[type=submit]");
}

async function journalText(page) {
  return page.$$eval("#journal li", lis => lis.map(li => li.textContent));
}

run({}, async (page, out, setStep) => {
  const consoleErrors = [];
  page.on("console", m => { if (m.type() === "error") consoleErrors.push(m.text()); });
  page.on("pageerror", e => consoleErrors.push(String(e)));
  // The XSS payload would set this if it ever ran.
  await page.addInitScript(() => { window.__xss = 0; });

  setStep("load the console");
  const weights = {};
  page.on("response", async r => {
    const u = new URL(r.url());
    if (u.pathname === "/" || u.pathname.startsWith("/console/")) {
      try { weights[u.pathname] = (await r.body()).length; } catch (e) { /* 304 */ }
    }
  });
  const t0 = Date.now();
  const first = await page.goto(args.url + "/");
  out.headers = first.headers();
  await page.waitForSelector("#login");
  out.weights = weights;
  // The navigation is for the logged-in: hidden means not displayed.
  out.header_display_at_login = await page.$eval("#top", h => getComputedStyle(h).display);

  setStep("log in with a wrong password");
  await login(page, args.tech, "not the password");
  await page.waitForFunction(() => document.querySelector("#login-error").textContent !== "");
  out.wrong_password_message = await page.textContent("#login-error");

  setStep("log in and see the list");
  const tList = Date.now();
  await login(page, args.tech, args.password);
  await page.waitForSelector("#tickets table");
  out.list_render_ms = Date.now() - tList;
  out.list_fetch_render_ms = Number(await page.getAttribute("body", "data-render-ms"));
  out.who = await page.textContent("#who");
  out.header_display_logged_in = await page.$eval("#top", h => getComputedStyle(h).display);
  out.ticket_count = await page.textContent("#ticket-count");
  out.rows = await page.$$eval("#tickets tbody tr", trs => trs.length);
  out.xss_row_text = await page.textContent(`#tickets a.summary[href="#/ticket/${args.xss_ticket}"]`);
  out.images_in_list = await page.$$eval("#tickets img", imgs => imgs.length);

  setStep("filter the list");
  await page.fill("#filter-host", args.plugin_host);
  await page.waitForFunction(() => document.querySelectorAll("#tickets tbody tr").length === 1);
  out.filtered_rows = await page.$$eval("#tickets tbody tr td:nth-child(4)", tds => tds.map(td => td.textContent));

  setStep("open the agent's ticket");
  await page.click(`#tickets a[href="#/ticket/${args.plugin_ticket}"]`);
  await page.waitForSelector("#journal");
  out.ticket_summary = await page.textContent("#ticket-summary");
  out.occurrences = await page.textContent("#occurrences");

  setStep("comment and acknowledge");
  await page.fill("#action-text", "looking at the array");
  await page.click("#act-comment");
  await page.waitForFunction(() => [...document.querySelectorAll("#journal li")]
    .some(li => li.textContent.includes("looking at the array")));
  await page.fill("#action-text", "");
  await page.click("#act-acknowledge");
  await page.waitForFunction(() => [...document.querySelectorAll("#journal li")]
    .some(li => li.textContent.includes("acknowledged")));
  out.journal = await journalText(page);
  out.status_after = await page.$eval("#ticket-fields", dl => dl.querySelector("dd").textContent);

  setStep("an action the status does not allow");
  await page.click("#act-close");
  await page.waitForFunction(() => document.querySelector("#action-error").textContent !== "");
  out.close_error = await page.textContent("#action-error");
  // The helpdesk's priorities are all there is to pick.
  out.priority_options = await page.$$eval("#priority option", os => os.map(o => o.value));
  await page.selectOption("#priority", "P1");
  await page.click("#act-priority");
  await page.waitForFunction(() => document.querySelector("#action-error").textContent === "");
  await page.waitForFunction(() => [...document.querySelectorAll("#journal li")]
    .some(li => li.textContent.includes("→ P1")));

  setStep("a forged request without the CSRF header");
  out.forged = await page.evaluate(async id => {
    const r = await fetch(`/api/v1/tickets/${id}/actions`, { method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ action: "comment", text: "forged" }) });
    return { status: r.status, body: await r.json() };
  }, args.plugin_ticket);

  setStep("open the XSS ticket");
  await page.goto(`${args.url}/#/ticket/${args.xss_ticket}`);
  await page.waitForSelector("#journal");
  out.xss_title = await page.textContent("#ticket-summary");
  out.images_in_ticket = await page.$$eval("main img", imgs => imgs.length);
  out.xss_ran = await page.evaluate(() => window.__xss);

  setStep("log out");
  await page.click("#logout");
  await page.waitForSelector("#login");
  out.after_logout = await page.evaluate(async () => (await fetch("/api/v1/tickets")).status);
  out.logout_message = await page.textContent("#login-error");

  setStep("a viewer");
  await login(page, args.viewer, args.password);
  // Back where the technician logged out: the XSS ticket.
  await page.waitForSelector("#journal");
  out.viewer_who = await page.textContent("#who");
  await page.goto(`${args.url}/#/ticket/${args.plugin_ticket}`);
  await page.waitForSelector("#journal");
  out.viewer_action_buttons = await page.$$eval("#actions button", b => b.length);
  out.viewer_forced = await page.evaluate(async id => {
    const s = await (await fetch("/api/v1/session")).json();
    const r = await fetch(`/api/v1/tickets/${id}/actions`, { method: "POST",
      headers: { "Content-Type": "application/json", "X-Tocsin-CSRF": s.csrf },
      body: JSON.stringify({ action: "acknowledge" }) });
    return { status: r.status, body: await r.json() };
  }, args.plugin_ticket);
  await page.click("#logout");
  await page.waitForSelector("#login");

  setStep("failed logins until the rate limit");
  out.rate_limit_messages = [];
  for (let i = 0; i < args.failures_to_block; i++) {
    await page.evaluate(() => { document.querySelector("#login-error").textContent = ""; });
    await login(page, args.tech, "not the password");
    await page.waitForFunction(() => document.querySelector("#login-error").textContent !== "");
    out.rate_limit_messages.push(await page.textContent("#login-error"));
  }
  out.console_errors = consoleErrors;
  out.total_ms = Date.now() - t0;
});
