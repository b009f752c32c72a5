// A technician merges a duplicate ticket into the one being worked, in
// Debian's chromium: the refusals (into itself, a missing or a closed
// ticket) in the action error line, the confirmation step, then the
// merged ticket with its link and no Reopen, and the survivor's journal.
// Prints what it saw as one JSON object; test_console_browser.py asserts.
//
//   node console_merge.js '{"url": ..., "tech": ..., "password": ...,
//                           "dup": A, "into": B, "closed": C, "missing": N}'
"use strict";

const { run } = require("./driver");

const args = JSON.parse(process.argv[2]);

// Ask to merge into `into` and confirm; the action error line it leads to
// (the wait ends when it contains `expect`).
async function mergeRefused(page, into, expect) {
  await page.fill("#merge-into", String(into));
  await page.click("#act-merge");
  await page.click("#merge-confirm");
  await page.waitForFunction(e => document.querySelector("#action-error").textContent.includes(e),
    expect);
  return page.textContent("#action-error");
}

async function ticketStatus(page, id) {
  return page.evaluate(async i => (await (await fetch(`/api/v1/tickets/${i}`)).json()).status, id);
}

run({}, async (page, out, setStep) => {
  const pageErrors = [];
  page.on("pageerror", e => pageErrors.push(String(e)));

  setStep("log in and open the duplicate");
  await page.goto(`${args.url}/#/ticket/${args.dup}`);
  await page.fill("#login-name", args.tech);
  await page.fill("#login-password", args.password);
  await page.click("#login button[type=submit]");
  await page.waitForSelector("#journal");
  out.reopen_before = await page.$$eval("#act-reopen", b => b.length);

  setStep("merge refusals");
  out.closed_error = await mergeRefused(page, args.closed, "closed");
  out.self_error = await mergeRefused(page, args.dup, "itself");
  out.missing_error = await mergeRefused(page, args.missing, "no ticket");
  await page.fill("#merge-into", "");
  await page.click("#act-merge");
  await page.waitForFunction(() => document.querySelector("#action-error").textContent.includes("enter"));
  out.empty_error = await page.textContent("#action-error");
  out.confirm_shown_for_empty = await page.isVisible("#merge-confirm");

  setStep("ask, then cancel");
  await page.fill("#merge-into", String(args.into));
  await page.click("#act-merge");
  out.question = await page.textContent("#merge-question");
  out.status_while_asked = await ticketStatus(page, args.dup);
  await page.click("#merge-cancel");
  out.confirm_after_cancel = await page.isVisible("#merge-confirm");
  out.status_after_cancel = await ticketStatus(page, args.dup);

  setStep("merge with a note");
  await page.fill("#action-text", "same outage");
  await page.click("#act-merge");
  await page.click("#merge-confirm");
  await page.waitForSelector("#merged-into");
  out.fields = await page.$$eval("#ticket-fields dt", dts =>
    Object.fromEntries(dts.map(dt => [dt.textContent, dt.nextElementSibling.textContent])));
  out.merged_into_href = await page.getAttribute("#merged-into", "href");
  out.reopen_after = await page.$$eval("#act-reopen", b => b.length);
  out.merged_note = await page.textContent("#merged-note");
  out.journal = await page.$$eval("#journal li", lis => lis.map(li => li.textContent));
  out.journal_links = await page.$$eval("#journal a", as => as.map(a => a.getAttribute("href")));

  setStep("follow the link to the survivor");
  await page.click("#merged-into");
  await page.waitForFunction(id => document.querySelector("#ticket-title")
    && document.querySelector("#ticket-title").textContent.startsWith(`#${id} `), args.into);
  await page.waitForSelector("#journal");
  out.survivor_journal = await page.$$eval("#journal li", lis => lis.map(li => li.textContent));
  out.survivor_journal_links = await page.$$eval("#journal a", as => as.map(a => a.getAttribute("href")));
  out.survivor_reopen = await page.$$eval("#act-reopen", b => b.length);
  out.page_errors = pageErrors;
});
