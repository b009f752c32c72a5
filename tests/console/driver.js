// What the console's browser scripts share: Debian's chromium launched
// the way it runs here (headless, no sandbox in a container, nothing
// fetched from the network by the browser itself), and the one JSON line
// of what a script saw, or of the step where it failed.
"use strict";

const { chromium } = require("playwright-core");

function launch(executablePath) {
  return chromium.launch({
    executablePath: executablePath || "/usr/bin/chromium",
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
}

// Run scenario(page, out, setStep) in a fresh context of a fresh browser
// (contextOptions: a viewport, say), each step waiting 10 s at most;
// print out, or the step that failed with what was seen so far, and exit 1.
function run(contextOptions, scenario) {
  const args = JSON.parse(process.argv[2]);
  const out = {};
  let step = "launch";
  (async () => {
    const browser = await launch(args.chromium);
    try {
      const context = await browser.newContext(contextOptions);
      context.setDefaultTimeout(10000);
      const page = await context.newPage();
      await scenario(page, out, s => { step = s; });
    } finally {
      await browser.close();
    }
  })().then(() => {
    process.stdout.write(JSON.stringify(out) + "\n");
  }, e => {
    process.stdout.write(JSON.stringify({ failed_step: step, error: String(e && e.stack || e),
      seen: out }) + "\n");
    process.exit(1);
  });
}

module.exports = { launch, run };
