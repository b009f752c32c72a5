// The console's other pages in Debian's chromium, as an administrator:
// accounts, enrollment tokens and the audit log, silences (add, remove),
// traps from unknown devices, one's own password.  Prints what it saw as
// one JSON object; tests/integration/test_console_browser.py asserts.
//
//   node console_admin.js '{"url": ..., "admin": ..., "password": ...}'
"use strict";

const { run } = require("./driver");

const args = JSON.parse(process.argv[2]);

const texts = (page, sel) => page.$$eval(sel, els => els.map(e => e.textContent));

run({ viewport: { width: 390, height: 800 } }, async (page, out, setStep) => {
  const errors = [];
  page.on("pageerror", e => errors.push(String(e)));

  setStep("log in as an administrator, on a phone's screen");
  await page.goto(args.url + "/");
  await page.fill("#login-name", args.admin);
  await page.fill("#login-password", args.password);
  await page.click("#login button[type=submit]");
  await page.waitForSelector("#tickets table");
  out.admin_link_visible = await page.isVisible("#nav-admin");

  setStep("the list keeps its filter across a refresh");
  await page.fill("#filter-host", "web");
  await page.click("text=Refresh");
  await page.waitForSelector("#ticket-count");
  out.filter_after_refresh = await page.inputValue("#filter-host");
  out.count_after_refresh = await page.textContent("#ticket-count");

  setStep("create an account");
  await page.goto(args.url + "/#/admin");
  await page.waitForSelector("#accounts table");
  await page.fill("#account-name", "newtech");
  await page.selectOption("#account-role", "technician");
  await page.fill("#account-password", "short");
  await page.click("#account-save");
  await page.waitForFunction(() => document.querySelector("#admin-error").textContent !== "");
  out.short_password_error = await page.textContent("#admin-error");
  await page.fill("#account-password", "a long enough password");
  await page.click("#account-save");
  await page.waitForFunction(() => [...document.querySelectorAll("#accounts td")]
    .some(td => td.textContent === "newtech"));
  out.accounts = await texts(page, "#accounts tbody tr td:first-child");

  setStep("create an enrollment token");
  await page.fill("#token-customer", "acme");
  await page.click("#token-create");
  await page.waitForSelector("#issued-token:not([hidden])");
  out.issued = await page.textContent("#issued-token");
  await page.waitForFunction(() => document.querySelectorAll("#enrollment-tokens tbody tr").length === 2);
  out.tokens = await texts(page, "#enrollment-tokens tbody tr td:nth-child(2)");

  setStep("revoke it");
  await page.click("#enrollment-tokens tbody tr:has-text(\"acme\") button");
  await page.waitForFunction(() => [...document.querySelectorAll("#enrollment-tokens td")]
    .some(td => td.textContent === "revoked"));
  out.audit_actions = await texts(page, "#audit tbody tr td:nth-child(3)");

  setStep("revoke a host credential");
  out.credentials = await texts(page, "#credentials tbody tr td:nth-child(2)");
  await page.click("#credentials button");
  await page.waitForFunction(() => [...document.querySelectorAll("#credentials td")]
    .some(td => td.textContent === "revoked"));

  setStep("add a silence");
  await page.goto(args.url + "/#/silences");
  await page.waitForSelector("#silence-add");
  await page.fill("#silence-host", "web*");
  await page.fill("#silence-duration", "forever");
  await page.fill("#silence-comment", "maintenance");
  await page.click("#silence-add");
  await page.waitForFunction(() => document.querySelector("#silence-error").textContent !== "");
  out.silence_error = await page.textContent("#silence-error");
  await page.fill("#silence-duration", "2h");
  await page.click("#silence-add");
  await page.waitForSelector("#silences tbody tr");
  out.silence_row = await texts(page, "#silences tbody tr td");

  setStep("remove it");
  await page.click("#silences button");
  await page.waitForFunction(() => !document.querySelector("#silences button"));
  out.silence_after_remove = await texts(page, "#silences tbody tr td:nth-child(6)");

  setStep("the unknown devices");
  await page.goto(args.url + "/#/traps");
  await page.waitForSelector("#traps table");
  out.traps = await page.textContent("#traps p");

  setStep("change one's own password");
  await page.goto(args.url + "/#/password");
  await page.fill("#password-current", "not it");
  await page.fill("#password-new", "the new password");
  await page.fill("#password-again", "the new password");
  await page.click("#password-form button");
  await page.waitForFunction(() => document.querySelector("#password-error").textContent !== "");
  out.password_error = await page.textContent("#password-error");
  await page.fill("#password-current", args.password);
  await page.click("#password-form button");
  await page.waitForSelector("#login");
  out.after_change = await page.textContent("#login-error");
  await page.fill("#login-name", args.admin);
  await page.fill("#login-password", "the new password");
  await page.click("#login button[type=submit]");
  await page.waitForSelector("#tickets table");
  out.who = await page.textContent("#who");
  out.page_errors = errors;
});
