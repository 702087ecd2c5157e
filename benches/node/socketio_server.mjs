// The socket.io side of the bridge fan-out benchmark (issue 9, part 3): a socket.io 4 server
// doing the bridge's job — every connected client receives every `packageEvent` — with the same
// control endpoint as the eventbus server (eventbus-runtime/benches/bridge_server.rs).
//
//     node benches/node/socketio_server.mjs
//
// Binds an ephemeral loopback port, prints `listening <port>`, then serves:
//
// - socket.io 4 at /socket.io/ with its defaults (polling and websocket transports, no
//   compression, 25 s / 20 s heartbeat); the load generator speaks the websocket transport;
// - `POST /bench/burst?n=N&rate=R`: `io.emit("packageEvent", payload)` n times, at full speed
//   (rate=0: one synchronous loop, the fastest a single-threaded server can emit) or R per
//   second, then answers `{"emitted":N,"ms":…}`. `sentAt` is the emit time in microseconds of
//   CLOCK_MONOTONIC (process.hrtime), as on the eventbus side.
//
// The payload has the same fields and values as the eventbus server's.
import { createServer } from "node:http";
import { Server } from "socket.io";

// Microseconds of CLOCK_MONOTONIC, as the eventbus server stamps them.
const monotonicUs = () => {
  const [s, ns] = process.hrtime();
  return s * 1e6 + Math.floor(ns / 1e3);
};

const http = createServer((req, res) => {
  const url = new URL(req.url, "http://localhost");
  if (req.method === "POST" && url.pathname === "/bench/burst") {
    const n = Number(url.searchParams.get("n") ?? 1);
    const rate = Number(url.searchParams.get("rate") ?? 0);
    burst(n, rate).then((ms) => {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ emitted: n, ms }));
    });
    return;
  }
  // socket.io answers its own path; anything else is ours to refuse.
  if (!url.pathname.startsWith("/socket.io/")) {
    res.writeHead(404);
    res.end();
  }
});

const io = new Server(http, { serveClient: false });

function emitOne(i, n) {
  io.emit("packageEvent", {
    dnpName: "geth.dnp.dappnode.eth",
    version: "0.1.45",
    operation: "install",
    status: "downloading",
    progress: (i + 1) / n,
    sentAt: monotonicUs(),
  });
}

async function burst(n, rate) {
  const start = performance.now();
  if (rate <= 0) {
    for (let i = 0; i < n; i++) emitOne(i, n);
  } else {
    // Event i is due at i / rate seconds (the same pacing as the eventbus server's).
    for (let i = 0; i < n; i++) {
      const wait = start + (i * 1000) / rate - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      emitOne(i, n);
    }
  }
  return performance.now() - start;
}

http.listen(0, "127.0.0.1", () => {
  console.log(`listening ${http.address().port}`);
});
