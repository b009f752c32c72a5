// A dead router's ticket with the hosts behind it as children, in Debian's
// chromium: the list shows the parent with its count, the ticket its
// children, a child its parent.  Prints what it saw as one JSON object;
// tests/integration/test_console_browser.py asserts.
//
//   node console_topology.js '{"url": ..., "tech": ..., "password": ...}'
"use strict";

const { run } = require("./driver");

const args = JSON.parse(process.argv[2]);

run({}, async (page, out, setStep) => {
  setStep("log in and see the list");
  await page.goto(`${args.url}/`);
  await page.fill("#login-name", args.tech);
  await page.fill("#login-password", args.password);
  await page.click("#login button[type=submit]");
  await page.waitForSelector("#tickets table");
  out.rows = await page.$$eval("#tickets tbody tr", trs => trs.map(tr =>
    [tr.querySelector("td:nth-child(4)").textContent, tr.querySelector("td:nth-child(6)").textContent]));

  setStep("open the parent");
  await page.click("#tickets a.summary");
  await page.waitForSelector("#children");
  out.children = await page.$$eval("#children li", lis => lis.map(li => li.textContent));

  setStep("open a child");
  await page.click("#children li:first-child a");
  await page.waitForFunction(() => [...document.querySelectorAll("#ticket-fields dt")]
    .some(dt => dt.textContent === "Parent"));
  out.child_fields = await page.$$eval("#ticket-fields dt", dts =>
    Object.fromEntries(dts.map(dt => [dt.textContent, dt.nextElementSibling.textContent])));
});
