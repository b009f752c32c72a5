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

// Run scenario(out, setStep); print out, or the failed step and exit 1.
function report(scenario) {
  const out = {};
  let step = "start";
  scenario(out, s => { step = s; }).then(() => {
    process.stdout.write(JSON.stringify(out) + "\n");
  }, e => {
    process.stdout.write(JSON.stringify({ failed_step: step, error: String(e && e.stack || e),
      seen: out }) + "\n");
    process.exit(1);
  });
}

module.exports = { launch, report };
