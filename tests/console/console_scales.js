// A technician picks a ticket's impact and assignee from the selects the
// console fills from GET /api/v1/helpdesk/scales, in Debian's chromium:
// the choices are the helpdesk's, the current values are selected, a pick
// changes the ticket, "nobody" unassigns it, and the scales are fetched
// once however often the ticket is shown.  Prints what it saw as one JSON
// object; test_console_browser.py asserts.
//
//   node console_scales.js '{"url": ..., "tech": ..., "password": ..., "ticket": ...}'
"use strict";

const { run } = require("./driver");

const args = JSON.parse(process.argv[2]);

const fields = page => page.$$eval("#ticket-fields dt", dts =>
  Object.fromEntries(dts.map(dt => [dt.textContent, dt.nextElementSibling.textContent])));
// A select as the technician sees it: its tag, choices and the selected one.
const picker = (page, id) => page.$eval(id, s => ({
  tag: s.tagName.toLowerCase(),
  options: s.tagName === "SELECT" ? [...s.options].map(o => [o.value, o.textContent]) : null,
  value: s.value,
}));
const journalHas = (page, text) => page.waitForFunction(t => [...document.querySelectorAll("#journal li")]
  .some(li => li.textContent.includes(t)), text);

run({}, async (page, out, setStep) => {
  out.scales_requests = 0;
  page.on("request", r => { if (r.url().endsWith("/api/v1/helpdesk/scales")) out.scales_requests++; });
  const errors = [];
  page.on("pageerror", e => errors.push(String(e)));
  out.page_errors = errors;

  setStep("log in and open the ticket");
  await page.goto(`${args.url}/#/ticket/${args.ticket}`);
  await page.fill("#login-name", args.tech);
  await page.fill("#login-password", args.password);
  await page.click("#login button[type=submit]");
  await page.waitForSelector("#journal");
  for (const f of ["impact", "urgency", "priority", "assignee"])
    out[`${f}_before`] = await picker(page, `#${f}`);

  setStep("pick an impact");
  await page.selectOption("#impact", "low");
  await page.click("#act-impact");
  await journalHas(page, "impact high → low");
  out.after_impact = await fields(page);
  out.impact_after = await picker(page, "#impact");
  out.priority_after = await picker(page, "#priority");

  setStep("pick an assignee");
  await page.selectOption("#assignee", "bob");
  await page.click("#act-assign");
  await journalHas(page, "assignee – → bob");
  out.after_assign = await fields(page);
  out.assignee_after = await picker(page, "#assignee");

  setStep("unassign");
  await page.selectOption("#assignee", "");
  await page.click("#act-assign");
  await journalHas(page, "assignee bob → –");
  out.after_unassign = await fields(page);
  out.assignee_unassigned = await picker(page, "#assignee");
  out.error_after = await page.textContent("#action-error");

  setStep("the list and the ticket again: the scales are not fetched again");
  await page.goto(`${args.url}/#/`);
  await page.waitForSelector("#ticket-count");
  await page.goto(`${args.url}/#/ticket/${args.ticket}`);
  await page.waitForSelector("#impact");
  out.impact_again = await picker(page, "#impact");
  out.journal = await page.$$eval("#journal li", lis => lis.map(li => li.textContent));
});
