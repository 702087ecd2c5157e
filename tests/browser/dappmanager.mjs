// The dappmanager demo in headless Chromium, driven by tests/dappmanager_browser.rs.
//
// Loads the admin page, waits for live events, filters the log, clicks "Refresh packages" and
// waits for the answer; then prints RESTART and waits for RESTARTED on stdin while the test
// restarts the server; then checks that the page reconnected by itself and shows the
// notifications emitted while it was away, each once; saves a screenshot.
//
// Environment: DEMO_URL (with #token=...), SCREENSHOT (PNG path), CHROMIUM (executable).
import { chromium } from "playwright-core";
import { createInterface } from "node:readline";

const url = process.env.DEMO_URL;
const screenshot = process.env.SCREENSHOT;
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const WAIT = 30_000;

const input = createInterface({ input: process.stdin });
const lines = [];
const waiters = [];
input.on("line", (line) => (waiters.length ? waiters.shift()(line) : lines.push(line)));
const nextLine = () => (lines.length ? Promise.resolve(lines.shift()) : new Promise((resolve) => waiters.push(resolve)));

function check(condition, message) {
  if (!condition) throw new Error(`check failed: ${message}`);
}
const step = (name) => console.log(`step: ${name}`);

const browser = await chromium.launch({
  executablePath,
  args: [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
  ],
});
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  const problems = [];
  page.on("pageerror", (error) => problems.push(`page error: ${error.message}`));
  page.on("console", (message) => {
    if (message.type() === "error" && !message.text().includes("WebSocket")) {
      problems.push(`console error: ${message.text()}`);
    }
  });

  await page.goto(url);
  await page.waitForSelector('#state[data-state="open"]', { timeout: WAIT });
  step("connected");

  // Live events of several kinds reach the page.
  await page.waitForFunction(() => document.querySelectorAll("#log tr").length >= 5, null, { timeout: WAIT });
  await page.waitForSelector("#chains .chain", { timeout: WAIT });
  await page.waitForSelector("#operations li", { timeout: WAIT });
  await page.waitForSelector("#notifications li", { timeout: WAIT });
  step("live events");

  // The log filter hides what does not match.
  await page.fill("#filter", "chainsync");
  const visible = await page.$$eval("#log tr", (rows) => rows.filter((r) => !r.hidden).map((r) => r.dataset.event));
  check(visible.length > 0 && visible.every((name) => name === "chainSync"), `filtered log shows ${JSON.stringify(visible)}`);
  await page.fill("#filter", "");
  step("filter");

  // The button sends requestPackages; the server answers with packages.
  check((await page.textContent("#refresh-result")) === "", "no refresh result before the click");
  await page.click("#refresh");
  await page.waitForFunction(
    () => document.querySelector("#refresh-result").textContent.startsWith("Refreshed:"),
    null,
    { timeout: WAIT },
  );
  const result = await page.textContent("#refresh-result");
  const answered = Number(/^Refreshed: (\d+) packages/.exec(result)?.[1] ?? 0);
  check(answered >= 5, `the answer lists ${answered} packages: "${result}"`);
  const packages = await page.$$eval("#packages li", (items) => items.length);
  check(packages >= 5, `the package list shows ${packages} entries`);
  step("refresh answered");

  const before = await page.evaluate(() => window.eventbusDemo.received.length);
  console.log("RESTART");
  const answer = await nextLine();
  check(answer === "RESTARTED", `expected RESTARTED, got ${answer}`);

  // The page notices, reconnects by itself and resumes.
  await page.waitForFunction(() => window.eventbusDemo.states.includes("reconnecting"), null, { timeout: WAIT });
  await page.waitForFunction(
    () => document.querySelector("#state").dataset.state === "open"
      && window.eventbusDemo.received.some((r) => r.title === "DAppManager started"),
    null,
    { timeout: 60_000 },
  );
  step("reconnected");

  // Let some live events of the new server arrive too.
  await page.waitForFunction((n) => window.eventbusDemo.received.length >= n + 5, before, { timeout: WAIT });

  const received = await page.evaluate(() => window.eventbusDemo.received);
  // The new server emitted "DAppManager started" before it listened: the page can only have it
  // from the store, through the resume, and has it once.
  const started = received.filter((r) => r.title === "DAppManager started");
  check(started.length === 1, `"DAppManager started" received ${started.length} times`);
  // Every stored event arrived once, in order, across the restart.
  const sequences = received.filter((r) => r.sequence !== null).map((r) => r.sequence);
  check(new Set(sequences).size === sequences.length, "a stored event arrived twice");
  check(sequences.every((s, i) => i === 0 || sequences[i - 1] < s), "stored events arrived out of order");
  const ids = received.map((r) => r.id);
  check(new Set(ids).size === ids.length, "an event id arrived twice");
  // The rendered notifications: each once, the missed one included.
  const shown = await page.$$eval("#notifications li", (items) => items.map((li) => li.dataset.id));
  check(new Set(shown).size === shown.length, `a notification is shown twice: ${shown}`);
  check(shown.includes(started[0].notification), "the notification emitted while away is shown");
  const count = await page.textContent("#notification-count");
  check(count === String(shown.length), `the badge says ${count}, ${shown.length} are shown`);
  check(problems.length === 0, problems.join("; "));
  step(`verified: ${received.length} events, ${sequences.length} stored, ${shown.length} notifications`);

  await page.screenshot({ path: screenshot, fullPage: true });
  step(`screenshot ${screenshot}`);
} finally {
  await browser.close();
  input.close();
}
