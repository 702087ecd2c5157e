#!/usr/bin/env python3
"""Bridge fan-out, side by side in one run (issue 9, part 3): the eventbus WebSocket bridge
(`eventbus-runtime/benches/bridge_server.rs`) against a socket.io 4 server
(`benches/node/socketio_server.mjs`), both driven by the same load generator with the same
clients (`benches/node/ws_load.mjs`, npm `ws`), at 1, 100 and 1,000 connected clients.

    python3 benches/bridge_fanout.py                 # 3 rounds, prints the table of medians
    python3 benches/bridge_fanout.py --rounds 1 --clients 1000
    python3 benches/bridge_fanout.py --json bridge.json   # ... and every raw run as JSON
    python3 benches/bridge_fanout.py --pin           # server on CPU 0, load generator on CPU 1

Needs `npm ci` (socket.io, ws). Every measurement starts a fresh server process (so its RSS
baseline is clean), connects N clients, reads the server's VmRSS before and after connecting,
then has the server emit

1. a burst at full speed (`BURST[N]` events: 20,000 deliveries for 1 client, 500,000 for 100
   and 1,000) -> delivered events per second (deliveries / time from the request to the last
   arrival), the latency of deliveries under that load (queueing included), and the server's
   CPU time per delivery (from /proc/PID/stat: steadier than wall time on a shared machine);
2. a paced stream (`PACED[N]` events per second for 2 s, 50,000 deliveries per second or
   fewer, well under both servers' capacity) -> the end-to-end latency of an event when the
   server keeps up.

The load generator spreads its clients over 2 worker threads (one Node thread reading 1,000
sockets takes some 10 ms to go round them all). The eventbus server runs tokio's default
multi-thread runtime (one worker per core); socket.io runs on Node's one thread, as deployed.
The eventbus bridge's per-client queue is set to the burst size + 64 frames, so a client that
is one full burst behind is not closed with 4008 (socket.io buffers without bound); the load
generator counts every delivery per client and every close, and the table shows losses.
Rounds alternate the servers (eventbus, socket.io, eventbus, ...) so that drifting load on the
shared machine hits both alike. With `--pin` the server runs on CPU 0 and the load generator on
CPU 1 (`taskset`), so that neither takes the other's core. Results: docs/BENCHMARKS.md.
Target (issue 9): at least 3x socket.io's delivered rate at 1,000 clients, with a lower p99
latency and less memory per client.
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
CLIENTS = [1, 100, 1000]
BURST = {1: 20000, 100: 5000, 1000: 500}
PACED = {1: 1000, 100: 500, 1000: 50}
PACED_SECONDS = 2


def build_eventbus():
    """Builds the eventbus server (release, `cargo bench --no-run`) and returns its path."""
    out = subprocess.run(
        ["cargo", "bench", "-q", "-p", "eventbus-runtime", "--features", "bridge", "--bench", "bridge_server",
         "--no-run", "--message-format", "json-render-diagnostics"],
        cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True,
    ).stdout
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == "bridge_server" and msg.get("executable"):
            return msg["executable"]
    sys.exit("cargo did not report the bridge_server executable")


def raise_fd_limit():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(hard, 65536) if hard != resource.RLIM_INFINITY else 65536
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


def start(server, exe, n, pin):
    if server == "eventbus":
        cmd = [exe, "--queue", str(BURST[n] + 64)]
    else:
        cmd = ["node", "benches/node/socketio_server.mjs"]
    if pin:
        cmd = ["taskset", "-c", "0"] + cmd  # taskset execs the server: the pid stays its own
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    line = proc.stdout.readline()
    if not line.startswith("listening "):
        proc.kill()
        sys.exit(f"{server} server did not start: {line!r}")
    return proc, int(line.split()[1])


def measure(server, exe, n, pin):
    proc, port = start(server, exe, n, pin)
    try:
        out = subprocess.run(
            (["taskset", "-c", "1"] if pin else []) + ["node", "benches/node/ws_load.mjs", "--server", server, "--port", str(port), "--pid", str(proc.pid),
             "--clients", str(n), "--burst", str(BURST[n]), "--rate", str(PACED[n]), "--paced", str(PACED_SECONDS)],
            cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True, timeout=300,
        ).stdout
        return json.loads(out.strip().splitlines()[-1])
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        time.sleep(0.3)


def median(values):
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else float("nan")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--clients", type=int, nargs="*", default=CLIENTS, choices=CLIENTS)
    parser.add_argument("--json", metavar="PATH", help="also write every run as JSON")
    parser.add_argument("--pin", action="store_true",
                        help="run the server on CPU 0 and the load generator on CPU 1 (taskset)")
    args = parser.parse_args()
    raise_fd_limit()
    exe = build_eventbus()
    runs = []
    for r in range(args.rounds):
        for n in args.clients:
            order = ["eventbus", "socketio"] if r % 2 == 0 else ["socketio", "eventbus"]
            for server in order:
                result = measure(server, exe, n, args.pin)
                result["round"] = r + 1
                runs.append(result)
                burst = result["phases"][0]
                print(
                    f"round {r + 1} {server:<8} {n:>5} clients: {burst['delivered_per_s'] / 1e3:8.1f} k/s "
                    f"burst p50 {burst['p50_ms']:.2f} ms p99 {burst['p99_ms']:.2f} ms, "
                    f"lost {sum(p['lost'] for p in result['phases'])}, "
                    f"{result['rss_per_client_kib']:.1f} KiB/client, closes {result['closes']}, "
                    f"CPU us/delivery server {burst['server_cpu_us_per_delivery']:.2f} client {burst['client_cpu_us_per_delivery']:.2f}",
                    file=sys.stderr,
                )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(runs, f, indent=1)
            f.write("\n")

    def pick(server, n, key, phase=None):
        values = []
        for run in runs:
            if run["server"] != server or run["clients"] != n:
                continue
            if phase is None:
                values.append(run[key])
            else:
                values.append(next(p for p in run["phases"] if p["phase"] == phase)[key])
        return median(values)

    def lost(server, n):
        return sum(p["lost"] for run in runs if run["server"] == server and run["clients"] == n for p in run["phases"])

    pinned = "server on CPU 0, load generator on CPU 1" if args.pin else "no CPU pinning"
    print(f"{pinned}; medians of {args.rounds} round(s); burst sizes {BURST}, paced rates {PACED} events/s for {PACED_SECONDS} s")
    print()
    print("| clients | server | delivered/s (burst) | burst p50 / p99 ms | paced p50 / p99 ms "
          "| RSS per client | server CPU per delivery (burst) | lost |")
    print("| ---: | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for n in args.clients:
        for server, label in [("eventbus", "eventbus bridge"), ("socketio", "socket.io 4")]:
            print(
                f"| {n:,} | {label} | {pick(server, n, 'delivered_per_s', 'burst') / 1e3:,.0f} k "
                f"| {pick(server, n, 'p50_ms', 'burst'):,.1f} / {pick(server, n, 'p99_ms', 'burst'):,.1f} "
                f"| {pick(server, n, 'p50_ms', 'paced'):.2f} / {pick(server, n, 'p99_ms', 'paced'):.2f} "
                f"| {pick(server, n, 'rss_per_client_kib'):.1f} KiB "
                f"| {pick(server, n, 'server_cpu_us_per_delivery', 'burst'):.2f} µs | {lost(server, n)} |"
            )
    print()
    for n in args.clients:
        ours = pick("eventbus", n, "delivered_per_s", "burst")
        theirs = pick("socketio", n, "delivered_per_s", "burst")
        p99 = pick("socketio", n, "p99_ms", "paced") / pick("eventbus", n, "p99_ms", "paced")
        mem = pick("socketio", n, "rss_per_client_kib") / max(pick("eventbus", n, "rss_per_client_kib"), 1e-9)
        print(f"{n:>5} clients: delivered/s {ours / theirs:.2f}x socket.io, paced p99 {p99:.2f}x lower, "
              f"memory per client {mem:.2f}x less")
    if 1000 in args.clients:
        ratio = pick("eventbus", 1000, "delivered_per_s", "burst") / pick("socketio", 1000, "delivered_per_s", "burst")
        verdict = "met" if ratio >= 3 else "NOT met"
        print(f"target (>= 3x socket.io's delivered/s at 1,000 clients): {verdict} ({ratio:.2f}x)")


if __name__ == "__main__":
    main()
