// A technician sets a ticket's impact in Debian's chromium when the
// console cannot learn the scales (GET /api/v1/helpdesk/scales fails, as
// with an older collector): text inputs, where a name off the scale is
// refused with the scale and a name on it changes the priority the ticket
// shows (the helpdesk's impact x urgency matrix).  Prints what it saw as
// one JSON object; test_console_browser.py asserts.
//
//   node console_impact.js '{"url": ..., "tech": ..., "password": ..., "ticket": ...}'
"use strict";

const { run } = require("./driver");

const args = JSON.parse(process.argv[2]);

const fields = page => page.$$eval("#ticket-fields dt", dts =>
  Object.fromEntries(dts.map(dt => [dt.textContent, dt.nextElementSibling.textContent])));

run({}, async (page, out, setStep) => {
  setStep("the scales fail");
  await page.route("**/api/v1/helpdesk/scales", r => r.fulfill({ status: 503,
    contentType: "application/json", body: JSON.stringify({ error: "the helpdesk is not running" }) }));

  setStep("log in and open the ticket");
  await page.goto(`${args.url}/#/ticket/${args.ticket}`);
  await page.fill("#login-name", args.tech);
  await page.fill("#login-password", args.password);
  await page.click("#login button[type=submit]");
  await page.waitForSelector("#journal");
  out.before = await fields(page);
  out.impact_input_before = await page.inputValue("#impact");
  out.inputs = await page.$$eval("#impact, #urgency, #priority, #assignee",
    es => es.map(e => e.tagName.toLowerCase()));

  setStep("an impact off the scale");
  await page.fill("#impact", "huge");
  await page.click("#act-impact");
  await page.waitForFunction(() => document.querySelector("#action-error").textContent !== "");
  out.impact_error = await page.textContent("#action-error");

  setStep("an impact on the scale");
  await page.fill("#impact", "low");
  await page.click("#act-impact");
  await page.waitForFunction(() => [...document.querySelectorAll("#journal li")]
    .some(li => li.textContent.includes("impact high → low")));
  out.after = await fields(page);
  out.error_after = await page.textContent("#action-error");
  out.journal = await page.$$eval("#journal li", lis => lis.map(li => li.textContent));
});
