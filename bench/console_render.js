// The console's time to first render of the tickets list, in Debian's
// headless chromium (playwright-core from build/console-tests): a page
// load with a session cookie until the table holds every open ticket.
// Prints one line per round and the median; asserts nothing.
//
//   NODE_PATH=build/console-tests/node_modules node bench/console_render.js URL NAME PASSWORD ROUNDS
"use strict";

const { chromium } = require("playwright-core");

const [url, name, password, roundsText] = process.argv.slice(2);
const rounds = Number(roundsText || 5);

async function main() {
  const browser = await chromium.launch({
    executablePath: "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const context = await browser.newContext();
  const page = await context.newPage();
  const r = await page.request.post(`${url}/api/v1/session`, { data: { name, password } });
  if (r.status() !== 201) throw new Error(`login: HTTP ${r.status()}`);
  const times = [];
  let rows = 0;
  let weight = 0;
  for (let i = 0; i < rounds; i++) {
    let bytes = 0;
    const count = async resp => {
      const p = new URL(resp.url()).pathname;
      if (p === "/" || p.startsWith("/console/")) {
        try { bytes += (await resp.body()).length; } catch (e) { /* none */ }
      }
    };
    page.on("response", count);
    const start = Date.now();
    await page.goto(`${url}/#/`, { waitUntil: "commit" });
    await page.waitForSelector("#tickets table");
    const ms = Date.now() - start;
    rows = await page.$$eval("#tickets tbody tr", trs => trs.length);
    page.off("response", count);
    if (bytes > weight) weight = bytes;
    times.push(ms);
    console.log(`round ${i + 1}: ${rows} rows rendered ${ms} ms after navigation`);
  }
  times.sort((a, b) => a - b);
  console.log(`console: ${rows} open tickets, median ${times[Math.floor(times.length / 2)]} ms ` +
    `from navigation to the rendered list (${rounds} rounds); page weight ${weight} bytes ` +
    `(HTML+CSS+JS, uncompressed)`);
  await browser.close();
}

main().catch(e => { console.error(String(e && e.stack || e)); process.exit(1); });
