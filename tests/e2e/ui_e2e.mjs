// End-to-end test of the `ovis serve` web UI in headless Chromium (Debian's /usr/bin/chromium,
// driven by playwright-core): starts the server on the tiny fixture, asks about an image in the
// Chat tab, generates an image, edits one, and saves a screenshot of each step to --out.
//
//   node tests/e2e/ui_e2e.mjs --binary build/ovis --model build/fixtures/tiny-ovis-u1 --out DIR
//
// Exit status: 0 passed, 1 failed, 77 skipped (chromium or playwright-core missing, unless
// OVIS_REQUIRE_E2E=1, as in CI, which turns a skip into a failure).
import { spawn } from "node:child_process";
import fs from "node:fs";
import os from "node:os";
import path from "node:path";
import { createRequire } from "node:module";

const CHROMIUM = "/usr/bin/chromium";
const args = Object.fromEntries(
  process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith("--") ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
for (const k of ["binary", "model", "out"]) {
  if (!args[k]) { console.error(`error: --${k} is required`); process.exit(2); }
}

function skip(why) {
  if (process.env.OVIS_REQUIRE_E2E === "1") { console.error(`error: ${why} (OVIS_REQUIRE_E2E=1)`); process.exit(1); }
  console.log(`SKIPPED: ${why}`);
  process.exit(77);
}
let chromium;
try {
  const require = createRequire(path.join(path.dirname(new URL(import.meta.url).pathname), "package.json"));
  ({ chromium } = require("playwright-core"));
} catch (e) {
  skip("playwright-core is not installed (scripts/setup.sh installs it into tests/e2e/node_modules)");
}
if (!fs.existsSync(CHROMIUM)) skip(`${CHROMIUM} is missing (apt-get install chromium)`);

fs.mkdirSync(args.out, { recursive: true });
const fixture = (f) => path.join(args.model, "inputs", f);
const check = (cond, what) => { if (!cond) throw new Error(`check failed: ${what}`); console.log(`ok - ${what}`); };

// ---- the server ------------------------------------------------------------------------------
const server = spawn(args.binary, ["-t", "1", "serve", "-m", args.model, "--port", "0"], {
  stdio: ["ignore", "inherit", "pipe"],
});
let serverLog = "";
const port = await new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error("ovis serve did not start:\n" + serverLog)), 120000);
  server.stderr.on("data", (d) => {
    serverLog += d;
    const m = serverLog.match(/listening on http:\/\/127\.0\.0\.1:(\d+)/);
    if (m) { clearTimeout(timer); resolve(Number(m[1])); }
  });
  server.on("exit", (code) => reject(new Error(`ovis serve exited (${code}):\n${serverLog}`)));
});
const serverExit = new Promise((resolve) => server.on("exit", (code) => resolve(code)));

// ---- the browser -----------------------------------------------------------------------------
const profile = fs.mkdtempSync(path.join(os.tmpdir(), "ovis-e2e-profile-"));
let context;
let failed = false;
try {
  context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1180, height: 820 },
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  });
  const page = context.pages()[0] || (await context.newPage());
  const pageErrors = [];
  page.on("pageerror", (e) => pageErrors.push(String(e)));
  // Nothing may leave the machine: every request goes to this server.
  const foreign = [];
  page.on("request", (r) => { if (!r.url().startsWith(`http://127.0.0.1:${port}/`) && !r.url().startsWith("blob:") && !r.url().startsWith("data:")) foreign.push(r.url()); });
  await page.goto(`http://127.0.0.1:${port}/`);
  await page.waitForFunction(() => document.querySelector("#model-name").textContent === "tiny-ovis-u1");
  check(true, "the page loads and shows the model");

  // Chat: attach an image, ask, wait for the streamed answer.
  await page.setInputFiles("#chat-file", fixture("cat.png"));
  await page.waitForSelector("#chat-thumbs img");
  await page.fill("#chat-max", "8");
  await page.fill("#chat-input", "What is it?");
  await page.click("#chat-send");
  await page.waitForSelector('.msg.assistant[data-done="true"]', { timeout: 120000 });
  const answer = await page.textContent(".msg.assistant .text");
  const chatError = await page.textContent("#chat-error");
  check(answer.length > 0 && !chatError, `chat answers about the image ("${answer}")`);
  check((await page.$$(".msg.user img")).length === 1, "the question shows its image");
  check(/8 tokens/.test(await page.textContent(".msg.assistant .meta")), "the answer reports its token count");
  await page.screenshot({ path: path.join(args.out, "chat.png") });

  // Generate: a small image with live progress, into the gallery.
  await page.click("#tab-generate");
  await page.fill("#gen-prompt", "a red fox in the snow");
  await page.fill("#gen-width", "64");
  await page.fill("#gen-height", "64");
  await page.fill("#gen-steps", "8");
  await page.fill("#gen-seed", "7");
  await page.click("#gen-run");
  await page.waitForFunction(() => /denoise \d+\/8 .*ETA/.test(document.querySelector("#gen-progress .text").textContent), null, { timeout: 120000, polling: 20 });
  check(true, "generation shows denoising progress with an ETA");
  await page.waitForSelector("#gallery .card", { timeout: 180000 });
  const params = await page.textContent("#gallery .card pre.params");
  check(params.includes("Steps: 8") && params.includes("Seed: 7") && params.includes("Size: 64x64"), "the gallery shows the image's parameters");
  const download = await page.getAttribute("#gallery .card a.download", "download");
  check(download === "ovis-7.png", `the image can be downloaded (${download})`);
  const width = await page.evaluate(() => new Promise((ok) => { const i = document.querySelector("#gallery .card img"); i.complete ? ok(i.naturalWidth) : (i.onload = () => ok(i.naturalWidth)); }));
  check(width === 64, "the generated image decodes at 64x64");
  await page.screenshot({ path: path.join(args.out, "generate.png") });

  // Edit: upload an image and an instruction.
  await page.click("#tab-edit");
  await page.setInputFiles("#edit-file", fixture("edit_128x160_input.png"));
  await page.waitForSelector("#edit-preview:not([hidden])");
  await page.fill("#edit-prompt", "make the sky purple");
  await page.fill("#edit-steps", "2");
  await page.fill("#edit-seed", "3");
  await page.click("#edit-run");
  await page.waitForFunction(() => document.querySelectorAll("#gallery .card").length === 2, null, { timeout: 300000 });
  const editParams = await page.textContent("#gallery .card pre.params");
  check(editParams.includes("Image CFG scale: 1.5") && editParams.includes("Size: 160x128"), "the edited image lands in the gallery with its parameters");
  check(!(await page.textContent("#edit-error")), "the edit reports no error");
  await page.screenshot({ path: path.join(args.out, "edit.png") });

  check(pageErrors.length === 0, `no JavaScript errors (${pageErrors.join("; ")})`);
  check(foreign.length === 0, `no request leaves the server (${foreign.join(", ")})`);
} catch (e) {
  failed = true;
  console.error(`FAILED: ${e.stack || e}`);
  console.error("--- server log ---\n" + serverLog);
} finally {
  if (context) await context.close().catch(() => {});
  fs.rmSync(profile, { recursive: true, force: true });
  server.kill("SIGTERM");
}
const code = await serverExit;
if (code !== 0) { console.error(`ovis serve exited with ${code} after SIGTERM`); failed = true; }
else console.log("ok - the server stops cleanly on SIGTERM");
console.log(failed ? "FAILED" : `PASSED (screenshots in ${args.out})`);
process.exit(failed ? 1 : 0);
