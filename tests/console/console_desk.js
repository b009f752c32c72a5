// A ticket with the helpdesk's fields in Debian's chromium: customer,
// contract, SLA clocks, knowledge hint, previous tickets, and a
// resolution with a note.  Prints what it saw as one JSON object;
// tests/integration/test_console_browser.py asserts.
//
//   node console_desk.js '{"url": ..., "tech": ..., "password": ..., "ticket": ...}'
"use strict";

const { run } = require("./driver");

const args = JSON.parse(process.argv[2]);

run({}, async (page, out, setStep) => {
  setStep("log in and open the ticket");
  await page.goto(`${args.url}/#/ticket/${args.ticket}`);
  await page.fill("#login-name", args.tech);
  await page.fill("#login-password", args.password);
  await page.click("#login button[type=submit]");
  await page.waitForSelector("#journal");
  out.fields = await page.$$eval("#ticket-fields dt", dts =>
    Object.fromEntries(dts.map(dt => [dt.textContent, dt.nextElementSibling.textContent])));
  out.knowledge = await page.textContent("#knowledge");
  out.history = await page.textContent("#history");

  setStep("resolve without a note, then with one");
  await page.click("#act-resolve");
  await page.waitForFunction(() => document.querySelector("#action-error").textContent !== "");
  out.resolve_error = await page.textContent("#action-error");
  await page.fill("#action-text", "swapped the disk again");
  await page.click("#act-resolve");
  await page.waitForFunction(() => [...document.querySelectorAll("#journal li")]
    .some(li => li.textContent.includes("resolved")));
  out.status = await page.$eval("#ticket-fields", dl => dl.querySelector("dd").textContent);

  setStep("the list shows the customer and the SLA");
  await page.goto(`${args.url}/#/`);
  await page.selectOption("#filter-state", "all");
  await page.waitForFunction(() => document.querySelector("#ticket-count")
    && document.querySelector("#ticket-count").textContent.startsWith("2 "));
  out.list_cells = await page.$$eval("#tickets tbody tr", trs => trs.map(tr =>
    [...tr.querySelectorAll("td")].map(td => td.textContent)));
});
