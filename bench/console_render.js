// The console's time to first render of the tickets list, in Debian's
// headless chromium (playwright-core from build/console-tests): a page
// load with a session cookie until the table holds every open ticket.
// Prints one line per round and the median; asserts nothing.
//
//   NODE_PATH=build/console-tests/node_modules node bench/console_render.js URL NAME PASSWORD ROUNDS
"use strict";

const { launch } = require("../tests/console/driver");

const [url, name, password, roundsText] = process.argv.slice(2);
const rounds = Number(roundsText || 5);

async function main() {
  const browser = await launch();
  const context = await browser.newContext();
  const page = await context.newPage();
  const r = await page.request.post(`${url}/api/v1/session`, { data: { name, password } });
  if (r.status() !== 201) throw new Error(`login: HTTP ${r.status()}`);
  const times = [];
  let rows = 0;
  for (let i = 0; i < rounds; i++) {
    const start = Date.now();
    // Another query string each round: a full load, not a jump in the page.
    await page.goto(`${url}/?round=${i}#/`, { waitUntil: "commit" });
    await page.waitForSelector("#tickets table");
    const ms = Date.now() - start;
    rows = await page.$$eval("#tickets tbody tr", trs => trs.length);
    const inPage = await page.evaluate(() => ({ list: Number(document.body.dataset.renderMs),
      nav: Number(document.body.dataset.listShownMs) }));
    times.push(inPage.nav);
    console.log(`round ${i + 1}${i ? "" : " (cold cache)"}: ${rows} rows shown ${inPage.nav} ms after the navigation began ` +
      `(the page's clock; of which fetching and rendering the list ${inPage.list} ms; ` +
      `${ms} ms as the driver saw it)`);
  }
  times.sort((a, b) => a - b);
  console.log(`console: ${rows} open tickets, median ${times[Math.floor(times.length / 2)]} ms ` +
    `from navigation to the rendered list (${rounds} rounds)`);
  await browser.close();
}

main().catch(e => { console.error(String(e && e.stack || e)); process.exit(1); });
