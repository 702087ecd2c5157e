// The dappmanager demo in headless Chromium, driven by tests/dappmanager_browser.rs.
//
// Loads the admin page, waits for live events and filters the log; prints RESTART and waits
// for `RESTARTED {"missed": [ids]}` on stdin while the test restarts the server (gracefully,
// into a run without producers) and emits notifications meanwhile; checks they are shown once
// each; clicks "Refresh packages" and proves the answer with /metrics; prints KILL and waits
// for RESTARTED again (the server was SIGKILLed, notifications emitted meanwhile, a server with
// producers started); checks the page is back with every missed notification once; prints
// `SEQUENCES [..]` (the stored events it received, compared with the store by the test) and
// saves a screenshot; opens a fresh page (a new browser context: no sessionStorage) and checks it
// connects once with `history`, gets the last stored events (`HISTORY [..]`, compared with the
// store by the test) and shows the packages and the notifications stored before it loaded; does
// the same with `&history=3`; reloads the first page.
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

/** Polls `condition` until it holds; fails with `message` after WAIT. */
async function until(condition, message) {
  const deadline = Date.now() + WAIT;
  while (!condition()) {
    check(Date.now() < deadline, message());
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** Records the JSON frames of every WebSocket `page` opens, in order of opening. */
function watchSockets(page) {
  const sockets = [];
  page.on("websocket", (socket) => {
    const entry = { sent: [], received: [] };
    sockets.push(entry);
    const parse = (frame) => {
      try {
        return JSON.parse(frame.payload);
      } catch {
        return { unparsed: String(frame.payload) };
      }
    };
    socket.on("framesent", (frame) => entry.sent.push(parse(frame)));
    socket.on("framereceived", (frame) => entry.received.push(parse(frame)));
  });
  return sockets;
}

/**
 * A page loaded without a resume point connects once, asking in its auth frame for the last
 * `history` stored events; the welcome says how many the server replays (`history`) and where
 * the stream starts (`sequence`, just before the first of them). Checks that handshake and
 * returns `{ since, count }`.
 */
async function freshHandshake(page, sockets) {
  await until(
    () => sockets.length >= 1 && sockets[0].received.some((f) => f.type === "eventbus.bridge.welcome"),
    () => `a fresh page is welcomed on its first connection (${sockets.length} opened)`,
  );
  check(sockets.length === 1, `a fresh page opens one connection, it opened ${sockets.length}`);
  const history = await page.evaluate(() => window.eventbusDemo.history);
  const auth = sockets[0].sent[0];
  check(auth?.type === "eventbus.bridge.auth" && auth.data.since === undefined && auth.data.history === history,
    `the fresh page asks for ${history} events of history, without a resume point: ${JSON.stringify(auth)}`);
  const welcome = sockets[0].received.find((f) => f.type === "eventbus.bridge.welcome");
  const count = welcome.data.history;
  check(welcome.data.resumed === false && typeof welcome.data.sequence === "string"
      && Number.isInteger(count) && count >= 0 && count <= history,
    `the welcome says how much history follows: ${JSON.stringify(welcome)}`);
  return { since: welcome.data.sequence, count };
}

/**
 * The first `count` stored events `page` received are its history: they start right after
 * `since`, came on its first connection, and are the last `count` stored events that
 * `reference` (a page connected all along) received up to the newest of them. Prints them as
 * `HISTORY [..]` for the test to compare with the store. Returns them.
 */
async function checkHistory(page, reference, { since, count }) {
  await page.waitForFunction(
    (n) => window.eventbusDemo.received.filter((r) => r.sequence !== null).length >= n, count, { timeout: WAIT });
  const stored = (await page.evaluate(() => window.eventbusDemo.received)).filter((r) => r.sequence !== null);
  const replayed = stored.slice(0, count);
  check(replayed.every((r) => r.connection === 1), "the history came on the first connection");
  const sequences = replayed.map((r) => r.sequence);
  if (count === 0) return sequences;
  check(BigInt(sequences[0]) === BigInt(since) + 1n,
    `the history starts right after the welcome's sequence ${since}: ${sequences[0]}`);
  const newest = sequences[count - 1];
  await reference.waitForFunction(
    (last) => window.eventbusDemo.received.some((r) => r.sequence !== null && BigInt(r.sequence) >= BigInt(last)),
    newest,
    { timeout: WAIT },
  );
  const had = (await reference.evaluate(() => window.eventbusDemo.received))
    .filter((r) => r.sequence !== null && BigInt(r.sequence) <= BigInt(newest))
    .map((r) => r.sequence);
  check(had.length >= count && BigInt(had[0]) <= BigInt(sequences[0]),
    `the reference page covers the history ${sequences[0]}..${newest}: it had ${had.length} events from ${had[0]}`);
  check(JSON.stringify(sequences) === JSON.stringify(had.slice(-count)),
    `the history is the last ${count} stored events up to ${newest}: ${sequences} (the reference page had ${had.slice(-count)})`);
  console.log(`HISTORY ${JSON.stringify(sequences.map((s) => String(BigInt(s))))}`);
  return sequences;
}

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

  const sockets = watchSockets(page);
  await page.goto(url);
  await page.waitForSelector('#state[data-state="open"]', { timeout: WAIT });
  const firstStart = await freshHandshake(page, sockets);
  // The package list fills without a click: the page asks for it when it connects.
  await page.waitForSelector("#packages li", { timeout: WAIT });
  step(`connected from ${firstStart.since} with ${firstStart.count} events of history`);

  // Live events of several kinds reach the page.
  await page.waitForFunction(() => document.querySelectorAll("#log tr").length >= 5, null, { timeout: WAIT });
  await page.waitForSelector("#chains .chain", { timeout: WAIT });
  await page.waitForSelector("#operations li", { timeout: WAIT });
  await page.waitForSelector("#notifications li", { timeout: WAIT });
  check(sockets.length === 1, `the page still has its one connection, it opened ${sockets.length}`);
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
  // The page asked for the packages when it reconnected: wait for that answer first, so the
  // counters below move by the click alone.
  await page.waitForFunction(
    () => window.eventbusDemo.received.some((r) => r.name === "packages" && r.connection === window.eventbusDemo.opens),
    null,
    { timeout: WAIT },
  );
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
  // The servers emitted "DAppManager started" before they listened: the page has those of runs
  // 2 and 3 from the store, through the resume, and run 1's (among the store's first events)
  // only if its first load's history held every stored event (fewer than it asked for); each
  // once.
  const started = received.filter((r) => r.title === "DAppManager started");
  const history = await page.evaluate(() => window.eventbusDemo.history);
  const expectedStarts = firstStart.count < history ? 3 : 2;
  check(started.length === expectedStarts,
    `"DAppManager started" received ${started.length} times, not ${expectedStarts} (first load: ${firstStart.count} events of history)`);
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

  // A fresh page (a new browser context: no sessionStorage, no resume point) shows what existed
  // before it loaded: the stored events of its history, exactly those the first page received
  // over the same range, its notifications among them, and the package list.
  const earlier = await page.evaluate(() => window.eventbusDemo.received);
  const beforeStored = earlier.filter((r) => r.sequence !== null);
  const lastBefore = beforeStored[beforeStored.length - 1].sequence;
  const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
  try {
    const fresh = await context.newPage();
    fresh.on("pageerror", (error) => problems.push(`fresh page error: ${error.message}`));
    const freshSockets = watchSockets(fresh);
    await fresh.goto(url);
    await fresh.waitForSelector('#state[data-state="open"]', { timeout: WAIT });
    const freshStart = await freshHandshake(fresh, freshSockets);
    const since = freshStart.since;
    check(freshStart.count > 0, "the fresh page gets history");
    await checkHistory(fresh, page, freshStart);
    const expected = beforeStored.filter((r) => BigInt(r.sequence) > BigInt(since));
    const notes = [...new Set(expected.filter((r) => r.notification !== null).map((r) => r.notification))];
    check(notes.length > 0, `the first page received no notification after ${since} to look for`);
    await fresh.waitForFunction(
      (last) => window.eventbusDemo.received.some((r) => r.sequence !== null && BigInt(r.sequence) >= BigInt(last)),
      lastBefore,
      { timeout: WAIT },
    );
    const replayed = (await fresh.evaluate(() => window.eventbusDemo.received))
      .filter((r) => r.sequence !== null && BigInt(r.sequence) <= BigInt(lastBefore))
      .map((r) => r.sequence);
    check(JSON.stringify(replayed) === JSON.stringify(expected.map((r) => r.sequence)),
      `the fresh page replayed ${replayed.length} stored events up to ${lastBefore}, the first page had ${expected.length} after ${since}`);
    const shown = await fresh.$$eval("#notifications li", (items) => items.map((li) => li.dataset.id));
    for (const id of notes) {
      check(shown.includes(id), `the fresh page shows the earlier notification ${id}`);
    }
    await fresh.waitForFunction(
      () => document.querySelectorAll("#packages li").length > 0,
      null,
      { timeout: WAIT },
    );
    const requested = freshSockets[0].sent.some((f) => f.type?.endsWith(".requestPackages"));
    check(requested, "the fresh page asked for the packages when it connected");
    check(freshSockets.length === 1, `the fresh page opened ${freshSockets.length} connections, not one`);
    const listed = await fresh.$$eval("#packages li", (items) => items.length);
    const badge = await fresh.textContent("#package-count");
    check(badge === String(listed), `the package badge says ${badge}, ${listed} are listed`);
    check((await fresh.textContent("#refresh-result")) === "", "nobody clicked Refresh on the fresh page");
    check(problems.length === 0, problems.join("; "));
    step(`fresh page: ${replayed.length} stored events from ${since}, ${notes.length} notifications, ${listed} packages`);
  } finally {
    await context.close();
  }

  // `#…&history=N` shortens the history: a fresh page then gets the last N stored events the
  // bridge sends (not from the start), then live ones.
  const shortContext = await browser.newContext();
  try {
    const short = await shortContext.newPage();
    short.on("pageerror", (error) => problems.push(`short-history page error: ${error.message}`));
    const shortSockets = watchSockets(short);
    await short.goto(`${url}&history=3`);
    await short.waitForSelector('#state[data-state="open"]', { timeout: WAIT });
    check((await short.evaluate(() => window.eventbusDemo.history)) === 3, "the fragment sets the history");
    const shortStart = await freshHandshake(short, shortSockets);
    check(shortStart.count === 3, `the server replays 3 events, its welcome says ${shortStart.count}`);
    const replayed = await checkHistory(short, page, shortStart);
    const stored = (await short.evaluate(() => window.eventbusDemo.received))
      .filter((r) => r.sequence !== null)
      .map((r) => r.sequence);
    check(stored.every((s) => BigInt(s) > BigInt(shortStart.since)), `nothing older than ${shortStart.since} is replayed: ${stored}`);
    check(shortSockets.length === 1, `the short-history page opened ${shortSockets.length} connections, not one`);
    check(problems.length === 0, problems.join("; "));
    step(`short history: ${replayed.join(", ")}`);
  } finally {
    await shortContext.close();
  }

  // A reload keeps the resume point (sessionStorage): the new page asks for what came after.
  const resumeFrom = await page.evaluate(() => window.eventbusDemo.client.lastSequence);
  const auth = new Promise((resolve) => {
    page.on("websocket", (socket) => socket.on("framesent", (frame) => resolve(JSON.parse(frame.payload))));
  });
  await page.reload();
  const first = await auth;
  check(first.type === "eventbus.bridge.auth", `the first frame after the reload is ${first.type}`);
  check(first.data.history === undefined, `a page with a resume point asks for no history: ${JSON.stringify(first.data)}`);
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
