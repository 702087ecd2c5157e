// The anchor for in-process emit: Node's EventEmitter (what DAppNode's event bus runs), doing the
// same work as the Rust benchmark: N listeners, each a plain counter increment, one payload.
//
//   node benches/node/emitter.mjs            # prints one JSON line per case
//
// Each case is measured over several rounds after a warm-up; the median and the fastest round
// (ns per emit) are printed.

import { EventEmitter } from "node:events";

const LISTENERS = [0, 1, 10, 100];
const ROUNDS = 7;

const small = { value: 42 };
const packageEvent = {
  dnpName: "bitcoin.dnp.dappnode.eth",
  version: "0.1.2",
  operation: "install",
  status: "progress",
  progress: 0.5,
};

function measure(listeners, payload) {
  const emitter = new EventEmitter();
  emitter.setMaxListeners(0);
  let counter = 0;
  for (let i = 0; i < listeners; i++) {
    emitter.on("event", () => {
      counter++;
    });
  }
  // Enough iterations for ~50 ms per round at the slowest case.
  const iterations = listeners >= 100 ? 100_000 : 2_000_000;
  for (let i = 0; i < iterations; i++) emitter.emit("event", payload); // warm-up, JIT
  const samples = [];
  for (let r = 0; r < ROUNDS; r++) {
    const start = process.hrtime.bigint();
    for (let i = 0; i < iterations; i++) emitter.emit("event", payload);
    const ns = Number(process.hrtime.bigint() - start);
    samples.push(ns / iterations);
  }
  samples.sort((a, b) => a - b);
  if (counter === -1) console.log(counter); // keep the counter observable
  // The median, and the fastest round (the least disturbed on a shared machine, compared
  // with the fastest slices of the Rust side by `benches/emit.py`).
  return { median: samples[Math.floor(samples.length / 2)], best: samples[0] };
}

for (const [name, payload] of [["small", small], ["package_event", packageEvent]]) {
  for (const n of LISTENERS) {
    const { median, best } = measure(n, payload);
    console.log(
      JSON.stringify({ impl: "node_event_emitter", payload: name, listeners: n, ns_per_emit: median, best_ns_per_emit: best }),
    );
  }
}
