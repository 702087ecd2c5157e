// The dappmanager demo in headless Chromium, driven by tests/dappmanager_browser.rs.
//
// Loads the admin page, waits for live events and filters the log; prints RESTART and waits
// for `RESTARTED {"missed": [ids]}` on stdin while the test restarts the server (gracefully,
// into a run without producers) and emits notifications meanwhile; checks they are shown once
// each; clicks "Refresh packages" and proves the answer with /metrics; prints KILL and waits
// for RESTARTED again (the server was SIGKILLed, notifications emitted meanwhile, a server with
// producers started); checks the page is back with every missed notification once; prints
// `SEQUENCES [..]` (the stored events it received, compared with the store by the test) and
// saves a screenshot.
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

  // The page reconnects by itself after the test restarted the server, and shows each
  // notification emitted while it was away once.
  async function restarted(closeCodes) {
    const answer = await nextLine();
    const match = /^RESTARTED (.*)$/.exec(answer);
    check(match !== null, `expected RESTARTED, got ${answer}`);
    const { missed } = JSON.parse(match[1]);
    await page.waitForFunction(
      (n) => window.eventbusDemo.closeCodes.length >= n, closeCodes, { timeout: WAIT });
    await page.waitForFunction(
      (ids) => document.querySelector("#state").dataset.state === "open"
        && ids.every((id) => document.querySelector(`#notifications li[data-id="${id}"]`) !== null),
      missed,
      { timeout: 60_000 },
    );
    const shown = await page.$$eval("#notifications li", (items) => items.map((li) => li.dataset.id));
    for (const id of missed) {
      check(shown.filter((s) => s === id).length === 1, `the missed notification ${id} is shown once`);
    }
    const received = await page.evaluate(() => window.eventbusDemo.received);
    for (const id of missed) {
      const n = received.filter((r) => r.notification === id).length;
      check(n === 1, `the missed notification ${id} was received ${n} times`);
    }
    return missed;
  }

  console.log("RESTART");
  await restarted(1);
  const closes = await page.evaluate(() => window.eventbusDemo.closeCodes);
  check(closes[0] === 1001, `a graceful stop closes with 1001, the page saw ${closes}`);
  step("reconnected after a graceful restart");

  // The button sends requestPackages; the server answers with packages. This run has no
  // producers, so nothing else emits either: the counters prove the answer is the one shown.
  const origin = new URL(url).origin;
  const metric = async (event) => {
    const text = await (await fetch(`${origin}/metrics`)).text();
    const line = text.split("\n").find((l) => l.startsWith(`eventbus_events_emitted_total{event="${event}"} `));
    check(line !== undefined, `/metrics has the emitted count of ${event}`);
    return Number(line.split(" ")[1]);
  };
  const packagesFrames = () => page.evaluate(() => window.eventbusDemo.received.filter((r) => r.name === "packages").length);
  const [requestsBefore, answersBefore, framesBefore] = [await metric("requestPackages"), await metric("packages"), await packagesFrames()];
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
  check(packages === answered, `the package list shows ${packages} entries, the answer ${answered}`);
  const [requestsAfter, answersAfter, framesAfter] = [await metric("requestPackages"), await metric("packages"), await packagesFrames()];
  check(requestsAfter === requestsBefore + 1, `requestPackages emitted ${requestsBefore} → ${requestsAfter}`);
  check(answersAfter === answersBefore + 1, `packages emitted ${answersBefore} → ${answersAfter}`);
  check(framesAfter === framesBefore + 1, `packages frames on the page ${framesBefore} → ${framesAfter}`);
  step("refresh answered");

  console.log("KILL");
  // Clicked while the server is down: the request waits in the client's queue and is sent,
  // and accepted, once the page is connected again.
  await page.waitForFunction(() => window.eventbusDemo.closeCodes.length >= 2, null, { timeout: WAIT });
  const queued = await page.evaluate(() => {
    const client = window.eventbusDemo.client;
    window.eventbusDemo.queuedEmit = client.emit("requestPackages").then(() => "accepted", (e) => `rejected: ${e.code}`);
    return client.state;
  });
  check(queued === "reconnecting", `the emit was made while ${queued}`);
  await restarted(2);
  const outcome = await page.evaluate(() => window.eventbusDemo.queuedEmit);
  check(outcome === "accepted", `the emit queued while reconnecting was ${outcome}`);
  const codes = await page.evaluate(() => window.eventbusDemo.closeCodes);
  check(codes[1] === 1006, `a killed server drops the connection (1006), the page saw ${codes}`);
  step("reconnected after a crash");

  // Live events of the new server arrive too.
  const before = await page.evaluate(() => window.eventbusDemo.received.length);
  await page.waitForFunction((n) => window.eventbusDemo.received.length >= n + 5, before, { timeout: WAIT });

  const received = await page.evaluate(() => window.eventbusDemo.received);
  // The servers emitted "DAppManager started" before they listened: the page can only have
  // those of runs 2 and 3 from the store, through the resume, and has each once.
  const started = received.filter((r) => r.title === "DAppManager started");
  check(started.length === 2, `"DAppManager started" received ${started.length} times, not 2`);
  // Every stored event arrived once, in order, across both restarts.
  const sequences = received.filter((r) => r.sequence !== null).map((r) => r.sequence);
  check(new Set(sequences).size === sequences.length, "a stored event arrived twice");
  check(sequences.every((s, i) => i === 0 || sequences[i - 1] < s), "stored events arrived out of order");
  const last = await page.evaluate(() => window.eventbusDemo.client.lastSequence);
  check(last === sequences[sequences.length - 1], `the resume point ${last} is the last stored event received`);
  const ids = received.map((r) => r.id);
  check(new Set(ids).size === ids.length, "an event id arrived twice");
  // The rendered notifications: each once.
  const shown = await page.$$eval("#notifications li", (items) => items.map((li) => li.dataset.id));
  check(new Set(shown).size === shown.length, `a notification is shown twice: ${shown}`);
  const count = await page.textContent("#notification-count");
  check(count === String(shown.length), `the badge says ${count}, ${shown.length} are shown`);
  check(problems.length === 0, problems.join("; "));
  console.log(`SEQUENCES ${JSON.stringify(sequences.map((s) => String(BigInt(s))))}`);
  step(`verified: ${received.length} events, ${sequences.length} stored, ${shown.length} notifications`);

  await page.screenshot({ path: screenshot, fullPage: true });
  step(`screenshot ${screenshot}`);

  // A reload keeps the resume point (sessionStorage): the new page asks for what came after.
  const resumeFrom = await page.evaluate(() => window.eventbusDemo.client.lastSequence);
  const auth = new Promise((resolve) => {
    page.on("websocket", (socket) => socket.on("framesent", (frame) => resolve(JSON.parse(frame.payload))));
  });
  await page.reload();
  const first = await auth;
  check(first.type === "eventbus.bridge.auth", `the first frame after the reload is ${first.type}`);
  check(typeof first.data.since === "string" && BigInt(first.data.since) >= BigInt(resumeFrom),
    `the reloaded page resumes from ${first.data.since}, the page had ${resumeFrom}`);
  await page.waitForSelector('#state[data-state="open"]', { timeout: WAIT });
  await page.waitForFunction(() => window.eventbusDemo.received.length >= 1, null, { timeout: WAIT });
  const after = await page.evaluate(() => window.eventbusDemo.received.filter((r) => r.sequence !== null).map((r) => r.sequence));
  check(after.every((s) => BigInt(s) > BigInt(first.data.since)), `after the reload only events after the resume point arrive: ${after}`);
  step(`reloaded: resumed after ${first.data.since}`);
} finally {
  await browser.close();
  input.close();
}
