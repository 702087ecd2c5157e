// The generated bridge client (compiled into examples/dappmanager/assets/generated/client.js)
// against a scripted fake WebSocket: auth frame, typed dispatch, validation of incoming
// frames, reconnect with resume, history only without a resume point, handlers never
// duplicated, deduplication of stored events, emit acks and refusals, 4001, the heartbeat
// watchdog, emits queued while reconnecting.
// Run by tests/ts_client_node.rs.
import { connect, BridgeError } from "../../examples/dappmanager/assets/generated/client.js";

let passed = 0;
let failed = 0;
async function test(name, body) {
  try {
    await body();
    passed += 1;
    console.log(`ok - ${name}`);
  } catch (error) {
    failed += 1;
    console.log(`not ok - ${name}: ${error.stack ?? error}`);
  }
}
function check(condition, message) {
  if (!condition) throw new Error(message);
}
function equal(actual, expected, message) {
  const a = JSON.stringify(actual);
  const e = JSON.stringify(expected);
  if (a !== e) throw new Error(`${message}: expected ${e}, got ${a}`);
}
const tick = () => new Promise((resolve) => setTimeout(resolve, 5));
async function until(what, condition) {
  for (let i = 0; i < 400; i += 1) {
    if (condition()) return;
    await tick();
  }
  throw new Error(`timed out waiting until ${what}`);
}

class FakeSocket {
  static all = [];
  constructor(url, protocol) {
    this.url = url;
    this.protocol = protocol;
    this.sent = [];
    this.closed = null;
    this.onopen = this.onmessage = this.onclose = this.onerror = null;
    FakeSocket.all.push(this);
    setTimeout(() => this.onopen?.({}), 0);
  }
  send(data) {
    this.sent.push(JSON.parse(data));
  }
  close(code, reason) {
    this.closed = { code, reason };
  }
  // The server side.
  frame(type, data, extra = {}) {
    const frame = { specversion: "1.0", id: `s${Math.random()}`, source: "/dappnode", type, time: "2024-06-10T06:13:20.000Z", ...extra };
    if (data !== undefined) frame.data = data;
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
  welcome(sequence, resumed = false, extra = {}) {
    this.frame("eventbus.bridge.welcome", { package: "dappnode", fingerprint: "x", sequence, resumed, limits: { maxFrameBytes: 1000, framesPerSecond: 20, burst: 40, queue: 1024 }, ...extra });
  }
  drop(code = 1006, reason = "") {
    this.onclose?.({ code, reason });
  }
}
const last = () => FakeSocket.all[FakeSocket.all.length - 1];
const seq = (n) => String(n).padStart(20, "0");
const notification = (id) => ({ id, type: "info", title: `n ${id}`, body: "b", timestamp: 1718000000000 });

function start(extra = {}) {
  FakeSocket.all = [];
  const errors = [];
  const client = connect("ws://test/events", { token: "t0k", WebSocket: FakeSocket, minDelayMs: 2, maxDelayMs: 4, ackTimeoutMs: 200, onError: (e) => errors.push(e), ...extra });
  return { client, errors };
}

await test("authenticates with the first frame, then dispatches typed, validated events", async () => {
  const { client, errors } = start();
  const states = [];
  client.onState((s) => states.push(s));
  await until("the socket opens", () => last()?.sent.length === 1);
  const socket = last();
  equal(socket.protocol, "cloudevents.json", "subprotocol");
  equal(socket.sent[0].type, "eventbus.bridge.auth", "first frame");
  equal(socket.sent[0].data, { token: "t0k" }, "auth data");
  check(!socket.url.includes("t0k"), "the token is not in the URL");
  socket.welcome(seq(5));
  equal(client.state, "open", "state");
  equal(client.lastSequence, seq(5), "resume point from the welcome");
  const seen = [];
  client.on("notification", (n, info) => seen.push([n.id, info.sequence]));
  const any = [];
  client.onAny((e) => any.push(e.name));
  socket.frame("dappnode.notification", notification("a"), { sequence: seq(6) });
  socket.frame("dappnode.chainSync", { network: "mainnet", syncing: true, progress: 0.5, peers: 3, blockHeight: "19000000" });
  // Refused by the guards / the manifest: not dispatched, reported.
  socket.frame("dappnode.notification", { id: "bad", type: "loud", title: "x", body: "y", timestamp: 1 });
  socket.frame("dappnode.requestPackages");
  socket.frame("other.notification", notification("c"));
  socket.onmessage({ data: "not json" });
  equal(seen, [["a", seq(6)]], "typed handler");
  equal(any, ["notification", "chainSync"], "onAny");
  equal(errors.length, 4, "reported invalid frames");
  check(errors.every((e) => e instanceof BridgeError && e.code === "invalid_frame"), "invalid_frame errors");
  equal(client.lastSequence, seq(6), "resume point follows stored events");
  equal(states, ["connecting", "open"], "states");
  client.close();
});

await test("reconnects with backoff, resumes, never duplicates handlers or stored events", async () => {
  const { client } = start();
  await until("open", () => last()?.sent.length === 1);
  last().welcome(seq(10));
  const seen = [];
  const off = client.on("notification", (n) => seen.push(n.id));
  last().frame("dappnode.notification", notification("a"), { sequence: seq(11) });
  const states = [];
  client.onState((s, d) => states.push([s, d.closeCode]));
  last().drop(1001, '{"resume":"00000000000000000011"}');
  equal(client.state, "reconnecting", "state after a drop");
  await until("a second socket", () => FakeSocket.all.length === 2 && last().sent.length === 1);
  equal(last().sent[0].data, { token: "t0k", since: seq(11) }, "resumes after the last stored event");
  last().welcome(seq(11), true);
  // The server never resends, but a stored event at or below the resume point is dropped.
  last().frame("dappnode.notification", notification("a"), { sequence: seq(11) });
  last().frame("dappnode.notification", notification("b"), { sequence: seq(12) });
  equal(seen, ["a", "b"], "each event once, one handler call each");
  // Many reconnects later, still one call per event.
  for (let i = 0; i < 3; i += 1) {
    last().drop();
    await until("another socket", () => last().sent.length === 1 && FakeSocket.all.length === 3 + i);
    last().welcome(seq(12), true);
  }
  last().frame("dappnode.notification", notification("c"), { sequence: seq(13) });
  equal(seen, ["a", "b", "c"], "handlers are not duplicated by reconnects");
  off();
  last().frame("dappnode.notification", notification("d"), { sequence: seq(14) });
  equal(seen, ["a", "b", "c"], "unsubscribed");
  check(states.some(([s, code]) => s === "reconnecting" && code === 1001), "the state says why");
  client.close();
  equal(client.state, "closed", "closed");
});

await test("asks for history only while it has no resume point", async () => {
  const { client } = start({ history: 50 });
  await until("open", () => last()?.sent.length === 1);
  equal(last().sent[0].data, { token: "t0k", history: 50 }, "a fresh client asks for history");
  // The server replays 2 stored events: its welcome's sequence is just before the first.
  last().welcome(seq(40), false, { history: 2 });
  const seen = [];
  client.on("notification", (n, info) => seen.push([n.id, info.sequence]));
  last().frame("dappnode.notification", notification("h1"), { sequence: seq(41) });
  last().frame("dappnode.notification", notification("h2"), { sequence: seq(43) });
  equal(seen, [["h1", seq(41)], ["h2", seq(43)]], "the replayed events are delivered");
  last().drop();
  await until("a second socket", () => FakeSocket.all.length === 2 && last().sent.length === 1);
  equal(last().sent[0].data, { token: "t0k", since: seq(43) }, "a reconnect resumes, without history");
  client.close();

  // Without a store the welcome gives no resume point: the next connection asks again.
  const storeless = start({ history: 5 });
  await until("open", () => last()?.sent.length === 1);
  last().welcome(null, false, { history: 0 });
  equal(storeless.client.lastSequence, null, "no resume point");
  last().drop();
  await until("a second socket", () => FakeSocket.all.length === 2 && last().sent.length === 1);
  equal(last().sent[0].data, { token: "t0k", history: 5 }, "still no resume point: history again");
  storeless.client.close();

  // A resume point given to connect wins; `history: 0` asks for nothing.
  for (const [options, data] of [
    [{ history: 50, since: seq(7) }, { token: "t0k", since: seq(7) }],
    [{ history: 0 }, { token: "t0k" }],
  ]) {
    const { client } = start(options);
    await until("open", () => last()?.sent.length === 1);
    equal(last().sent[0].data, data, `the auth frame with ${JSON.stringify(options)}`);
    client.close();
  }
  for (const history of [-1, 1.5, Number.NaN]) {
    let thrown = null;
    try {
      start({ history }).client.close();
    } catch (error) {
      thrown = error;
    }
    check(thrown instanceof RangeError && thrown.message.includes("history"), `history ${history} is refused: ${thrown}`);
  }
});

await test("emit: acks, refusals, local checks", async () => {
  const { client } = start({ queueLimit: 0 });
  await assertRejects(client.emit("requestPackages"), "not_connected");
  await until("open", () => last()?.sent.length === 1);
  const socket = last();
  socket.welcome(seq(1));
  const accepted = client.emit("requestPackages");
  const frame = socket.sent[1];
  equal([frame.type, frame.data], ["dappnode.requestPackages", undefined], "the frame");
  socket.frame("eventbus.bridge.ack", { ref: frame.id, event: "requestPackages" });
  await accepted;
  const refused = client.emit("requestChainData");
  socket.frame("eventbus.bridge.error", { code: "rate_limited", message: "slow down", ref: socket.sent[2].id, retryAfterMs: 50 });
  await assertRejects(refused, "rate_limited");
  await assertRejects(client.emit("notification", notification("x")), "not_allowed");
  await assertRejects(client.emit("requestPackages"), "timeout");
  const lost = client.emit("requestDevices");
  socket.drop();
  await assertRejects(lost, "disconnected");
  client.close();
});

await test("a refused token stops reconnecting", async () => {
  const { client, errors } = start();
  await until("open", () => last()?.sent.length === 1);
  last().drop(4001, "unauthorized");
  equal(client.state, "closed", "closed");
  await new Promise((resolve) => setTimeout(resolve, 30));
  equal(FakeSocket.all.length, 1, "no reconnection");
  check(errors.some((e) => e.code === "closed"), "reported");
});

await test("a silent server is given up and the client reconnects (heartbeat)", async () => {
  const { client, errors } = start();
  const states = [];
  client.onState((s, d) => states.push([s, d.closeCode, d.reason]));
  await until("open", () => last()?.sent.length === 1);
  const first = last();
  first.welcome(seq(3), false, { heartbeat: { intervalMs: 100, timeoutMs: 100 } });
  // Heartbeats (and events) keep it open well past the 200 ms of allowed silence.
  for (let i = 0; i < 30; i += 1) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    first.frame("eventbus.bridge.heartbeat", {});
  }
  equal(FakeSocket.all.length, 1, "no reconnection while heartbeats arrive");
  equal(client.state, "open", "still open");
  // Then the server goes silent, its socket never reporting a close: the client gives up on it.
  await until("the silent socket is closed by the client", () => first.closed !== null);
  equal(first.closed.code, 4000, "the client's close code");
  await until("a new socket resumes", () => FakeSocket.all.length === 2 && last().sent.length === 1);
  equal(last().sent[0].data, { token: "t0k", since: seq(3) }, "it resumes from the last sequence");
  const reconnecting = states.find(([s]) => s === "reconnecting");
  check(reconnecting !== undefined && reconnecting[1] === null && reconnecting[2].startsWith("no frame from the server within 200 ms"), `the state says why: ${JSON.stringify(reconnecting)}`);
  check(errors.some((e) => e.code === "disconnected"), "reported");
  // A late close event of the abandoned socket changes nothing.
  first.drop(1006);
  equal(FakeSocket.all.length, 2, "no extra reconnection");
  last().welcome(seq(3), true);
  equal(client.state, "open", "open again");
  client.close();
});

await test("a socket that never gets a welcome is retried (connect timeout)", async () => {
  const { client } = start({ connectTimeoutMs: 30 });
  await until("open", () => last()?.sent.length === 1);
  const first = last();
  await until("the unanswered socket is given up", () => first.closed !== null && FakeSocket.all.length === 2);
  await until("the second socket authenticates", () => last().sent.length === 1);
  last().welcome(seq(1), false, { heartbeat: { intervalMs: 0, timeoutMs: 0 } });
  equal(client.state, "open", "open");
  // Without an announced heartbeat the watchdog is off: a quiet connection stays.
  await new Promise((resolve) => setTimeout(resolve, 80));
  equal([client.state, FakeSocket.all.length], ["open", 2], "quiet but open");
  client.close();
});

await test("emits while not connected are queued, bounded, and sent in order once open", async () => {
  const { client } = start({ queueLimit: 3 });
  // Before the first welcome: queued, not sent, not refused.
  const a = client.emit("requestPackages");
  const b = client.emit("requestChainData");
  await until("the socket authenticates", () => last()?.sent.length === 1);
  const c = client.emit("requestDevices");
  await assertRejects(client.emit("requestPackages"), "queue_full");
  equal(last().sent.length, 1, "nothing but the auth frame before the welcome");
  let socket = last();
  socket.welcome(seq(1));
  equal(socket.sent.slice(1).map((f) => f.type), ["dappnode.requestPackages", "dappnode.requestChainData", "dappnode.requestDevices"], "sent in order after the welcome");
  for (const frame of socket.sent.slice(1)) socket.frame("eventbus.bridge.ack", { ref: frame.id });
  await Promise.all([a, b, c]);
  // While reconnecting: queued again, and sent on the next connection.
  socket.drop();
  equal(client.state, "reconnecting", "reconnecting");
  const d = client.emit("requestPackages");
  await until("a new socket", () => FakeSocket.all.length === 2 && last().sent.length === 1);
  socket = last();
  socket.welcome(seq(1), true);
  equal(socket.sent.length, 2, "the queued emit is sent after the welcome");
  socket.frame("eventbus.bridge.ack", { ref: socket.sent[1].id });
  await d;
  // An emit sent but not answered when the connection drops is not resent.
  const lost = client.emit("requestPackages");
  socket.drop();
  await assertRejects(lost, "disconnected");
  await until("a third socket", () => FakeSocket.all.length === 3 && last().sent.length === 1);
  last().welcome(seq(1), true);
  equal(last().sent.length, 1, "nothing resent");
  // Closing rejects what still waits.
  last().drop();
  const pending = client.emit("requestPackages");
  client.close();
  await assertRejects(pending, "closed");
  await assertRejects(client.emit("requestPackages"), "not_connected");
});

await test("a queued emit whose ack timeout passed is dropped, never sent", async () => {
  const { client } = start({ ackTimeoutMs: 20 });
  const early = client.emit("requestPackages");
  await assertRejects(early, "timeout");
  await until("the socket authenticates", () => last()?.sent.length === 1);
  last().welcome(seq(1));
  equal(last().sent.length, 1, "the timed-out emit was not sent");
  client.close();
});

await test("a long queue is sent at the server's burst, then paced at its rate", async () => {
  const { client } = start();
  const emits = [];
  for (let i = 0; i < 5; i += 1) emits.push(client.emit("requestPackages"));
  await until("the socket authenticates", () => last()?.sent.length === 1);
  const socket = last();
  socket.welcome(seq(1), false, { limits: { maxFrameBytes: 1000, framesPerSecond: 200, burst: 2, queue: 10 } });
  equal(socket.sent.length, 3, "the burst goes at once");
  // An emit made meanwhile waits behind the queue.
  emits.push(client.emit("requestChainData"));
  await until("the rest follows", () => socket.sent.length === 7);
  equal(socket.sent.slice(1).map((f) => f.type.split(".")[1]), [...Array(5).fill("requestPackages"), "requestChainData"], "in order");
  for (const frame of socket.sent.slice(1)) socket.frame("eventbus.bridge.ack", { ref: frame.id });
  await Promise.all(emits);
  client.close();
});

async function assertRejects(promise, code) {
  try {
    await promise;
  } catch (error) {
    check(error instanceof BridgeError, `a BridgeError, got ${error}`);
    equal(error.code, code, "error code");
    return;
  }
  throw new Error(`expected a rejection with ${code}`);
}

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
