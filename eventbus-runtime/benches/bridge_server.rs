//! The eventbus side of the bridge fan-out benchmark (issue 9, part 3): a bus with one `to_ui`
//! event, `packageEvent`, its WebSocket bridge, and a control endpoint the load generator
//! calls to make the server emit a burst. Not a criterion benchmark: `benches/bridge_fanout.py`
//! builds it, starts it, drives it and the socket.io server (`benches/node/socketio_server.mjs`)
//! with the same load generator (`benches/node/ws_load.mjs`), and prints the comparison.
//!
//!     cargo bench -p eventbus-runtime --features bridge --bench bridge_server -- [--queue N]
//!
//! It binds an ephemeral loopback port and prints `listening <port>` on stdout, then serves:
//!
//! - `GET /events`: the bridge (token `bench-token`, header or first-frame auth, any origin);
//! - `POST /bench/burst?n=N&rate=R`: emits `n` `packageEvent`s on the bus, at full speed
//!   (`rate=0`) or `R` per second, from a thread of its own, and answers when the last one was
//!   emitted with `{"emitted":N,"ms":…}`. Each payload carries `sentAt`, the emit time in
//!   microseconds of `CLOCK_MONOTONIC` (the clock of Node's `process.hrtime`), so the client
//!   computes the delivery latency.
//!
//! `--queue N` sets the bridge's per-client queue (default 1,024 frames): the benchmark sizes
//! it to hold a whole burst, so no client is closed with 4008 for being a burst behind.
//! `--workers N` sets the tokio runtime's worker threads (default: one per core).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use axum::extract::Query;
use axum::routing::post;
use axum::serve::ListenerExt;
use eventbus_runtime::bridge::{AllowedOrigins, Bridge, BridgeConfig};
use eventbus_runtime::{BusCore, Event, EventMeta, ManifestMeta, Policies, Scope, UiDirection};
use serde::{Deserialize, Serialize};

/// The token the load generator presents.
const TOKEN: &str = "bench-token";

static EVENTS: [EventMeta; 1] = [EventMeta {
    name: "packageEvent",
    category: "bench",
    description: "",
    payload: Some("PackageEvent"),
    persist: false,
    ui: UiDirection::ToUi,
    scope: Scope::Local,
    deprecated: None,
    policies: Policies::NONE,
}];

static MANIFEST: ManifestMeta = ManifestMeta {
    package: "dappnode",
    version: 1,
    fingerprint: "0000000000000000",
    events: &EVENTS,
};

/// DAppNode's package progress, plus the emit time. The socket.io server sends the same
/// fields with the same values.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PackageEvent {
    dnp_name: String,
    version: String,
    operation: String,
    status: String,
    progress: f64,
    sent_at: u64,
}

/// Microseconds of `CLOCK_MONOTONIC`: what `process.hrtime.bigint() / 1000n` reads in Node.
fn monotonic_us() -> u64 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_MONOTONIC always exists on Linux.
    unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut ts) };
    ts.tv_sec as u64 * 1_000_000 + ts.tv_nsec as u64 / 1_000
}

/// The `i`th of `n` events, stamped now.
fn payload(i: u64, n: u64) -> PackageEvent {
    PackageEvent {
        dnp_name: "geth.dnp.dappnode.eth".to_owned(),
        version: "0.1.45".to_owned(),
        operation: "install".to_owned(),
        status: "downloading".to_owned(),
        progress: (i + 1) as f64 / n as f64,
        sent_at: monotonic_us(),
    }
}

/// Emits `n` events in a loop on this (blocking) thread, all at once (`rate == 0`) or `rate`
/// per second; returns the time taken.
fn burst(event: &Event<PackageEvent>, n: u64, rate: u64) -> Duration {
    let start = Instant::now();
    for i in 0..n {
        if rate > 0 {
            // Event i is due at i / rate seconds; sleep until then (the same pacing as the
            // socket.io server's).
            let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
            let now = Instant::now();
            if due > now {
                std::thread::sleep(due - now);
            }
        }
        event.emit(payload(i, n));
    }
    start.elapsed()
}

fn main() {
    let mut queue = eventbus_runtime::bridge::DEFAULT_QUEUE;
    let mut workers = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--queue" => {
                queue = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--queue takes a number of frames");
            }
            "--workers" => {
                workers = Some(
                    args.next()
                        .and_then(|v| v.parse().ok())
                        .expect("--workers takes a number of threads"),
                );
            }
            "--bench" => {} // what `cargo bench` passes
            other => panic!("unknown argument {other}"),
        }
    }
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(workers) = workers {
        runtime.worker_threads(workers);
    }
    let runtime = runtime.enable_all().build().expect("a tokio runtime");
    runtime.block_on(async move {
        let core = BusCore::new(&MANIFEST);
        let event: Event<PackageEvent> = Event::new(&core, &EVENTS[0]);
        let config = BridgeConfig::new(TOKEN)
            .allowed_origins(AllowedOrigins::Any)
            .queue(queue);
        let bridge = Bridge::new(&core, config);
        let app = axum::Router::new()
            .route(
                "/bench/burst",
                post(move |Query(query): Query<HashMap<String, u64>>| {
                    let event = event.clone();
                    async move {
                        let n = query.get("n").copied().unwrap_or(1);
                        let rate = query.get("rate").copied().unwrap_or(0);
                        let took = tokio::task::spawn_blocking(move || burst(&event, n, rate))
                            .await
                            .expect("the burst ran");
                        format!("{{\"emitted\":{n},\"ms\":{:.3}}}", took.as_secs_f64() * 1e3)
                    }
                }),
            )
            .merge(bridge.router());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("a loopback port");
        println!("listening {}", listener.local_addr().unwrap().port());
        // As Node's http server does by default (and `bridge::serve`): without it, a small
        // frame written while the previous one is unacknowledged waits for the client's
        // delayed ACK (Nagle), up to 40 ms.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        axum::serve(listener, app).await.expect("the server runs");
    });
}
