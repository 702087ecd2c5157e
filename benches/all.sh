#!/bin/sh
# Reruns every benchmark behind docs/BENCHMARKS.md, in the order of its sections, and redraws
# docs/emit.svg; several minutes per section (the emit step alone about 4). Needs Node 20 with
# `npm ci` done (the Node anchors), valgrind (instruction counts) and a NATS server with
# JetStream at 127.0.0.1:4222 (the NATS section; EVENTBUS_BENCH_NATS names another).
#
#     sh benches/all.sh 2>&1 | tee benchmarks.log
set -eu
cd "$(dirname "$0")/.."

echo "== In-process emit"
python3 benches/emit.py --json target/emit.json
python3 benches/plot_emit.py --from target/emit.json
python3 benches/emit.py --instructions

echo "== Async fan-out (current-thread, then 2 workers)"
cargo bench -p eventbus-runtime --bench fanout
FANOUT_WORKERS=2 cargo bench -p eventbus-runtime --bench fanout

echo "== Bridge fan-out against socket.io"
python3 benches/bridge_fanout.py

echo "== Persistence"
cargo bench -p eventbus-runtime --features store --bench store

echo "== Codegen and build cost"
cargo bench -p eventbus-codegen --bench codegen
python3 benches/check_cost.py 10 100 1000

echo "== NATS"
cargo bench -p eventbus-runtime --features nats --bench nats
