// The generated bridge client (compiled into examples/dappmanager/assets/generated/client.js)
// against a scripted fake WebSocket: auth frame, typed dispatch, validation of incoming
// frames, reconnect with resume, handlers never duplicated, deduplication of stored events,
// emit acks and refusals, 4001. Run by tests/ts_client_node.rs.
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
  welcome(sequence, resumed = false) {
    this.frame("eventbus.bridge.welcome", { package: "dappnode", fingerprint: "x", sequence, resumed, limits: { maxFrameBytes: 1000, framesPerSecond: 20, burst: 40, queue: 1024 } });
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

await test("emit: acks, refusals, local checks", async () => {
  const { client } = start();
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
