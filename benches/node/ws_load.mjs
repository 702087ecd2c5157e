// The load generator of the bridge fan-out benchmark (issue 9, part 3): N WebSocket clients
// (npm `ws`, the same implementation for both servers) that count what they receive and
// measure each delivery's latency, while the server emits bursts on request.
//
//     node benches/node/ws_load.mjs --server eventbus|socketio --port P --pid PID \
//       --clients N --burst B --rate R --paced S [--threads T]
//
// - eventbus: `ws://127.0.0.1:P/events`, subprotocol `cloudevents.json`, token in
//   `Authorization: Bearer` (docs/bridge.md); ready at the welcome frame.
// - socket.io: the engine.io v4 websocket transport spoken directly,
//   `/socket.io/?EIO=4&transport=websocket`: the open packet `0{…}` is answered with `40`
//   (connect to the main namespace), ready at the server's `40{…}`; pings `2` get `3`; events
//   arrive as `42["packageEvent",{…}]`.
//
// Both do the same work per message: find `"sentAt":` in the raw bytes (no UTF-8 decoding, no
// JSON parse: `ws` runs with skipUTF8Validation), read the number after it, count the message
// and record `now - sentAt` (both servers stamp CLOCK_MONOTONIC microseconds, which
// process.hrtime reads). The clients are spread over T worker threads (default 2, one per
// core): one Node thread reading 1,000 sockets takes some 10 ms to go round them all, which
// would hide the servers' latencies behind the load generator's.
//
// Steps: read the server's VmRSS (/proc/PID/status); connect the N clients (50 handshakes in
// flight per thread); wait 500 ms, read VmRSS again; then
//   1. burst: POST /bench/burst?n=B (full speed) and wait until every client has received B
//      events, or nothing arrived for 5 s; delivered/s = delivered / (last arrival - request);
//   2. paced: POST /bench/burst?n=R*S&rate=R (R events per second for S seconds), same wait.
// Prints one JSON line: per phase delivered, expected, lost, rates, latency percentiles, CPU
// per delivery of the server and of this process; RSS; close codes seen.
import { readFileSync } from "node:fs";
import { request } from "node:http";
import { Worker, isMainThread, parentPort, workerData } from "node:worker_threads";
import WebSocket from "ws";

const TOKEN = "bench-token";
const KEY = Buffer.from('"sentAt":');
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// Microseconds of CLOCK_MONOTONIC, the clock both servers stamp `sentAt` with
// (performance.now() drifts from it by several hundred microseconds per second here).
const nowUs = () => {
  const [s, ns] = process.hrtime();
  return s * 1e6 + ns / 1e3;
};

// ---- a worker thread: its share of the clients -------------------------------------------

function worker({ server, port, count }) {
  const clients = [];
  const closes = {};
  // The current phase's counters, or null between phases.
  let phase = null;

  function connect() {
    return new Promise((resolve, reject) => {
      const options = { perMessageDeflate: false, skipUTF8Validation: true };
      const ws =
        server === "eventbus"
          ? new WebSocket(`ws://127.0.0.1:${port}/events`, "cloudevents.json", {
              ...options,
              headers: { authorization: `Bearer ${TOKEN}` },
            })
          : new WebSocket(`ws://127.0.0.1:${port}/socket.io/?EIO=4&transport=websocket`, options);
      const client = { ws, received: 0, ready: false };
      ws.on("message", (data) => {
        // The same per-message work for both servers: the timestamp, read from the bytes.
        const at = data.indexOf(KEY);
        if (at >= 0) {
          let i = at + KEY.length;
          let sent = 0;
          for (let c = data[i]; c >= 48 && c <= 57; c = data[++i]) sent = sent * 10 + (c - 48);
          const now = nowUs();
          client.received++;
          if (phase) {
            phase.latencies[phase.delivered++] = now - sent;
            phase.last = now;
            if (client.received === phase.expected) phase.complete++;
          }
          return;
        }
        if (server === "socketio") {
          // engine.io packets: 0 open, 2 ping, 4 message (40 = socket.io's connect ack).
          if (data[0] === 0x32 && data.length === 1) ws.send("3");
          else if (data[0] === 0x30) ws.send("40");
          else if (data[0] === 0x34 && data[1] === 0x30 && !client.ready) {
            client.ready = true;
            resolve(client);
          }
        } else if (!client.ready && data.includes("eventbus.bridge.welcome")) {
          client.ready = true;
          resolve(client);
        }
      });
      ws.on("close", (code) => {
        closes[code] = (closes[code] ?? 0) + 1;
        if (!client.ready) reject(new Error(`closed with ${code} before ready`));
      });
      ws.on("error", (error) => {
        if (!client.ready) reject(error);
      });
    });
  }

  parentPort.on("message", async (command) => {
    if (command.type === "connect") {
      for (let i = 0; i < count; i += 50) {
        const batch = [];
        for (let j = i; j < Math.min(count, i + 50); j++) batch.push(connect());
        clients.push(...(await Promise.all(batch)));
      }
      parentPort.postMessage({ type: "connected" });
    } else if (command.type === "start") {
      for (const client of clients) client.received = 0;
      phase = {
        expected: command.expected,
        delivered: 0,
        complete: 0,
        last: 0,
        latencies: new Float64Array(command.expected * clients.length),
      };
      parentPort.postMessage({ type: "started" });
    } else if (command.type === "progress") {
      parentPort.postMessage({
        type: "progress",
        delivered: phase.delivered,
        complete: phase.complete,
      });
    } else if (command.type === "stop") {
      const done = phase;
      phase = null;
      const latencies = done.latencies.slice(0, done.delivered);
      parentPort.postMessage(
        { type: "stopped", delivered: done.delivered, last: done.last, latencies },
        [latencies.buffer],
      );
    } else if (command.type === "close") {
      const open = clients.filter((c) => c.ws.readyState === WebSocket.OPEN).length;
      const seen = { ...closes };
      for (const client of clients) client.ws.terminate();
      parentPort.postMessage({ type: "closed", open, closes: seen });
      parentPort.close();
    }
  });
}

// ---- the main thread: the workers, the server's RSS and CPU, the phases -------------------

function args() {
  const out = {};
  const argv = process.argv.slice(2);
  for (let i = 0; i < argv.length; i += 2) out[argv[i].replace(/^--/, "")] = argv[i + 1];
  return out;
}

async function main() {
  const opts = args();
  const server = opts.server;
  const port = Number(opts.port);
  const pid = Number(opts.pid);
  const clients = Number(opts.clients);
  const burst = Number(opts.burst);
  const rate = Number(opts.rate ?? 0);
  const pacedSeconds = Number(opts.paced ?? 0);
  const threads = Math.max(1, Math.min(clients, Number(opts.threads ?? 2)));

  const rssKiB = () =>
    Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))[1]);
  // CPU seconds the server has used (utime + stime, in ticks of 1/100 s).
  const serverCpuSeconds = () => {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  };

  // Each worker answers commands in order; `ask` sends one and waits for the answer.
  const workers = [];
  for (let t = 0; t < threads; t++) {
    const count = Math.floor(clients / threads) + (t < clients % threads ? 1 : 0);
    const w = new Worker(new URL(import.meta.url), {
      workerData: { server, port, count },
    });
    const waiting = [];
    w.on("message", (message) => waiting.shift()(message));
    w.on("error", (error) => {
      console.error(error);
      process.exit(1);
    });
    workers.push({
      ask(command, transfer) {
        return new Promise((resolve) => {
          waiting.push(resolve);
          w.postMessage(command, transfer);
        });
      },
    });
  }
  const all = (command) => Promise.all(workers.map((w) => w.ask(command)));

  function post(path) {
    return new Promise((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port, path, method: "POST", agent: false }, (res) => {
        let body = "";
        res.on("data", (chunk) => (body += chunk));
        res.on("end", () => resolve(JSON.parse(body)));
      });
      req.on("error", reject);
      req.end();
    });
  }

  const percentile = (sorted, p) =>
    sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] : null;

  async function run(name, n, pace) {
    await all({ type: "start", expected: n });
    const serverCpu = serverCpuSeconds();
    const clientCpu = process.cpuUsage();
    const start = nowUs();
    const answer = post(`/bench/burst?n=${n}&rate=${pace}`);
    let seen = -1;
    let quietSince = Date.now();
    for (;;) {
      await sleep(10);
      const progress = await all({ type: "progress" });
      const delivered = progress.reduce((sum, p) => sum + p.delivered, 0);
      const complete = progress.reduce((sum, p) => sum + p.complete, 0);
      if (complete === clients) break;
      if (delivered !== seen) {
        seen = delivered;
        quietSince = Date.now();
      } else if (Date.now() - quietSince > 5000) break;
    }
    const emit = await answer;
    const serverCpuUsed = serverCpuSeconds() - serverCpu;
    const clientCpuUsed = process.cpuUsage(clientCpu);
    const results = await all({ type: "stop" });
    const delivered = results.reduce((sum, r) => sum + r.delivered, 0);
    const last = Math.max(...results.map((r) => r.last));
    const latencies = new Float64Array(delivered);
    let offset = 0;
    for (const r of results) {
      latencies.set(r.latencies, offset);
      offset += r.latencies.length;
    }
    latencies.sort();
    const seconds = (last - start) / 1e6;
    return {
      phase: name,
      events: n,
      rate: pace,
      expected: n * clients,
      delivered,
      lost: n * clients - delivered,
      seconds,
      emit_ms: emit.ms,
      delivered_per_s: delivered / seconds,
      p50_ms: percentile(latencies, 50) / 1e3,
      p99_ms: percentile(latencies, 99) / 1e3,
      max_ms: latencies.length ? latencies[latencies.length - 1] / 1e3 : null,
      // CPU time per delivered event: the server, and this whole process (every thread).
      server_cpu_us_per_delivery: (serverCpuUsed * 1e6) / Math.max(1, delivered),
      client_cpu_us_per_delivery: (clientCpuUsed.user + clientCpuUsed.system) / Math.max(1, delivered),
    };
  }

  const rssBefore = rssKiB();
  await all({ type: "connect" });
  await sleep(500);
  const rssConnected = rssKiB();
  const phases = [await run("burst", burst, 0)];
  if (rate > 0 && pacedSeconds > 0) {
    await sleep(200);
    phases.push(await run("paced", Math.round(rate * pacedSeconds), rate));
  }
  const rssAfter = rssKiB();
  const closed = await all({ type: "close" });
  const closes = {};
  for (const c of closed) for (const [code, k] of Object.entries(c.closes)) closes[code] = (closes[code] ?? 0) + k;
  console.log(
    JSON.stringify({
      server,
      clients,
      threads,
      rss_before_kib: rssBefore,
      rss_connected_kib: rssConnected,
      rss_after_kib: rssAfter,
      rss_per_client_kib: (rssConnected - rssBefore) / clients,
      still_open: closed.reduce((sum, c) => sum + c.open, 0),
      closes,
      phases,
    }),
  );
  process.exit(0);
}

if (isMainThread) {
  main().catch((error) => {
    console.error(error);
    process.exit(1);
  });
} else {
  worker(workerData);
}
