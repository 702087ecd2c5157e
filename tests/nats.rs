//! A generated bus (the `#[event_bus]` macro, a manifest with `scope: distributed` events) over
//! NATS: two buses of two services exchange typed events through the server at 127.0.0.1:4222.
//! The runtime's `tests/nats.rs` covers the transport in depth (processes, kills, dedup, broker
//! restarts); this checks the generated API end to end.
//!
//! Without a server there: a failure when `CI` is set, else a loud skip on stderr.

#![cfg(feature = "async")]

use std::net::TcpStream;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use eventbus::nats::NatsConfig;

#[eventbus::event_bus("tests/nats/events.yaml")]
pub mod events {}

use events::{EventBus, PackageEvent, SyncProgress};

fn server() -> Option<&'static str> {
    let address = "127.0.0.1:4222";
    if TcpStream::connect_timeout(&address.parse().unwrap(), Duration::from_millis(500)).is_ok() {
        return Some("nats://127.0.0.1:4222");
    }
    let message = "no NATS server with JetStream at 127.0.0.1:4222 \
                   (start one with `nats-server -a 127.0.0.1 -p 4222 -js`)";
    if std::env::var_os("CI").is_some() {
        panic!("{message}");
    }
    eprintln!("\n*** SKIPPED: {message} ***\n");
    None
}

fn wait_until(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn generated_buses_exchange_distributed_events() {
    let Some(url) = server() else { return };
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
