//! A generated bus (the `#[event_bus]` macro, a manifest with `scope: distributed` events) over
//! NATS: two buses of two services exchange typed events through a NATS server with JetStream.
//! The runtime's `tests/nats.rs` covers the transport in depth (processes, kills, dedup, broker
//! restarts); this checks the generated API end to end.
//!
//! The server is the one at 127.0.0.1:4222, else one this test starts from
//! `/usr/sbin/nats-server` on a free port; without either, a failure when `CI` is set, else a
//! `*** SKIPPED ***` notice on stderr that libtest does not capture (`tests/nats/server.rs`).

#![cfg(feature = "async")]

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eventbus::nats::NatsConfig;

// Finding or starting the server, shared with `eventbus-runtime/tests/nats.rs`.
#[path = "nats/server.rs"]
mod server;

#[eventbus::event_bus("tests/nats/events.yaml")]
pub mod events {}

use events::{EventBus, PackageEvent, SyncProgress};

fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + server::WAIT;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_buses_exchange_distributed_events() {
    let Some(url) = server::url() else { return };
    let url = url.as_str();
    let meta = events::MANIFEST.event("packageInstalled").unwrap();
    assert_eq!(meta.scope, eventbus::Scope::Distributed);
    assert_eq!(
        events::MANIFEST.event("localOnly").unwrap().scope,
        eventbus::Scope::Local
    );
    let suffix = format!("{}", std::process::id());
    let installer = EventBus::builder()
        .nats(url, NatsConfig::new(format!("installer{suffix}")))
        .build()
        .unwrap();
    let monitor = EventBus::builder()
        .nats(url, NatsConfig::new(format!("monitor{suffix}")))
        .build()
        .unwrap();
    let installed = Arc::new(Mutex::new(Vec::new()));
    let log = installed.clone();
    monitor
        .package_installed
        .on(move |e: &PackageEvent| log.lock().unwrap().push(e.clone()));
    let progress = Arc::new(Mutex::new(Vec::new()));
    let log = progress.clone();
    monitor
        .sync_progress
        .on(move |p: &SyncProgress| log.lock().unwrap().push(p.percent));
    installer.nats().unwrap().start().await.unwrap();
    monitor.nats().unwrap().start().await.unwrap();
    assert_eq!(
        installer.nats().unwrap().subject("syncProgress"),
        Some("natsfacade.events.syncProgress")
    );

    let event = PackageEvent {
        dnp_name: "bitcoin.dnp.dappnode.eth".into(),
        progress: Some(1.0),
        size: u64::MAX, // a string on the wire, exact on both sides
    };
    let emitter = installer.package_installed.clone();
    let sent = event.clone();
    let receipt = tokio::task::spawn_blocking(move || emitter.emit(sent))
        .await
        .unwrap()
        .unwrap();
    assert!(receipt.is_published());
    installer.sync_progress.emit(SyncProgress {
        network: "mainnet".into(),
        percent: 99.5,
    });
    installer.local_only.emit();
    tokio::task::spawn_blocking(move || {
        wait_until("the events at the monitor", || {
            installed.lock().unwrap().len() == 1 && progress.lock().unwrap().len() == 1
        });
        assert_eq!(*installed.lock().unwrap(), [event]);
        assert_eq!(*progress.lock().unwrap(), [99.5]);
    })
    .await
    .unwrap();
    let stream = installer.nats().unwrap().stream_name().to_owned();
    assert!(installer.shutdown().await.is_clean());
    assert!(monitor.shutdown().await.is_clean());
    let client = async_nats::connect(url).await.unwrap();
    let _ = async_nats::jetstream::new(client)
        .delete_stream(stream)
        .await;
}
