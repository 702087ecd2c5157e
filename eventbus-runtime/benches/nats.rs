//! Events through NATS, next to raw async-nats doing the same in the same run: plain
//! publish → subscriber (core NATS), JetStream publish awaiting the stream's acknowledgement,
//! and a persisted event end to end (published, pulled by a durable consumer, handled,
//! acknowledged). The figures are in docs/nats.md.
//!
//! ```text
//! cargo bench -p eventbus-runtime --features nats --bench nats
//! ```
//!
//! Needs a NATS server with JetStream at `EVENTBUS_BENCH_NATS` (default
//! `nats://127.0.0.1:4222`); each run uses streams and subjects of its own and deletes its
//! streams at the end.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use async_nats::jetstream;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use eventbus_runtime::nats::NatsConfig;
use eventbus_runtime::{
    BusCore, Event, EventMeta, ManifestMeta, PersistedEvent, Policies, Scope, UiDirection,
};
use futures_util::StreamExt;
use serde::{Deserialize, Serialize};

/// Events per measured batch.
const BATCH: u64 = 1_000;

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Progress {
    #[serde(rename = "dnpName")]
    dnp_name: String,
    status: String,
    progress: f64,
}

fn payload(i: u64) -> Progress {
    Progress {
        dnp_name: "bitcoin.dnp.dappnode.eth".into(),
        status: "progress".into(),
        progress: i as f64 / BATCH as f64,
    }
}

fn url() -> String {
    std::env::var("EVENTBUS_BENCH_NATS").unwrap_or_else(|_| "nats://127.0.0.1:4222".into())
}

fn manifest(package: &'static str) -> &'static ManifestMeta {
    let event = |name: &'static str, persist: bool| EventMeta {
        name,
        category: "bench",
        description: "",
        payload: Some("Progress"),
        persist,
        ui: UiDirection::None,
        scope: Scope::Distributed,
        deprecated: None,
        policies: Policies::NONE,
    };
    Box::leak(Box::new(ManifestMeta {
        package,
        version: 1,
        fingerprint: "00000000000000bb",
        events: Box::leak(Box::new([
            event("progress", false),
            event("installed", true),
        ])),
    }))
}

/// Waits until `counter` reaches `target` (bounded: a lost message fails the benchmark).
fn wait_for(counter: &AtomicU64, target: u64) {
    let deadline = Instant::now() + Duration::from_secs(60);
    while counter.load(Ordering::Acquire) < target {
        assert!(Instant::now() < deadline, "events were lost");
        std::thread::yield_now();
    }
}

fn nats(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let url = url();
    let package: &'static str = Box::leak(format!("bench{}", std::process::id()).into_boxed_str());
    let m = manifest(package);

    // The buses: one emits, the other (another service) receives.
    let build = |service: &str| -> BusCore {
        BusCore::builder(m)
            .nats(&url, NatsConfig::new(service))
            .build()
            .unwrap()
    };
    let sender = build("sender");
    let receiver = build("receiver");
    let progress_out: Event<Progress> = Event::new(&sender, &m.events[0]);
    let installed_out: PersistedEvent<Progress> = PersistedEvent::new(&sender, &m.events[1]);
    let progress_in: Event<Progress> = Event::new(&receiver, &m.events[0]);
    let installed_in: PersistedEvent<Progress> = PersistedEvent::new(&receiver, &m.events[1]);
    let plain_seen = Arc::new(AtomicU64::new(0));
    let seen = plain_seen.clone();
    progress_in.on(move |_| {
        seen.fetch_add(1, Ordering::Release);
    });
    let stored_seen = Arc::new(AtomicU64::new(0));
    let seen = stored_seen.clone();
    installed_in.on(move |_| {
        seen.fetch_add(1, Ordering::Release);
    });
    rt.block_on(async {
        sender.nats().unwrap().start().await.unwrap();
        receiver.nats().unwrap().start().await.unwrap();
    });

    // Raw async-nats: a client, a subscriber counting, a stream and a durable consumer.
    let client = rt.block_on(async_nats::connect(url.clone())).unwrap();
    let js = {
        let _enter = rt.enter();
        jetstream::new(client.clone())
    };
    let raw_subject = format!("{package}.raw.progress");
    let raw_stream = format!("{package}-raw");
    let raw_seen = Arc::new(AtomicU64::new(0));
    let raw_stored_seen = Arc::new(AtomicU64::new(0));
    rt.block_on(async {
        let mut subscriber = client.subscribe(raw_subject.clone()).await.unwrap();
        client.flush().await.unwrap();
        let seen = raw_seen.clone();
        tokio::spawn(async move {
            while let Some(message) = subscriber.next().await {
                let _: Progress = serde_json::from_slice(&message.payload).unwrap();
                seen.fetch_add(1, Ordering::Release);
            }
        });
        let stream = js
            .create_stream(jetstream::stream::Config {
                name: raw_stream.clone(),
                subjects: vec![format!("{package}.raw.stored")],
                ..Default::default()
            })
            .await
            .unwrap();
        let consumer = stream
            .create_consumer(jetstream::consumer::pull::Config {
                durable_name: Some("raw".into()),
                ack_policy: jetstream::consumer::AckPolicy::Explicit,
                max_ack_pending: 256,
                ..Default::default()
            })
            .await
            .unwrap();
        let seen = raw_stored_seen.clone();
        tokio::spawn(async move {
            let mut messages = consumer.messages().await.unwrap();
            while let Some(Ok(message)) = messages.next().await {
                let _: Progress = serde_json::from_slice(&message.payload).unwrap();
                message.double_ack().await.unwrap();
                seen.fetch_add(1, Ordering::Release);
            }
        });
    });

    let mut group = c.benchmark_group("nats");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(5));
    group.throughput(Throughput::Elements(BATCH));

    // Core NATS: publish, delivered to a subscriber of another client.
    group.bench_function("raw async-nats publish → subscriber", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let target = raw_seen.load(Ordering::Acquire) + BATCH;
                rt.block_on(async {
                    for i in 0..BATCH {
                        let body = serde_json::to_vec(&payload(i)).unwrap();
                        client
                            .publish(raw_subject.clone(), body.into())
                            .await
                            .unwrap();
                    }
                });
                wait_for(&raw_seen, target);
            }
            start.elapsed()
        });
    });
    group.bench_function(
        "eventbus emit (distributed) → handler of another bus",
        |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    let target = plain_seen.load(Ordering::Acquire) + BATCH;
                    for i in 0..BATCH {
                        progress_out.emit(payload(i));
                    }
                    wait_for(&plain_seen, target);
                }
                start.elapsed()
            });
        },
    );

    // JetStream: a publish acknowledged by the stream, one at a time (what a blocking emit
    // is), then end to end through a durable consumer.
    group.throughput(Throughput::Elements(100));
    group.bench_function("raw async-nats JetStream publish, awaiting each ack", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            for _ in 0..iters {
                let target = raw_stored_seen.load(Ordering::Acquire) + 100;
                rt.block_on(async {
                    for i in 0..100 {
                        let body = serde_json::to_vec(&payload(i)).unwrap();
                        js.publish(format!("{package}.raw.stored"), body.into())
                            .await
                            .unwrap()
                            .await
                            .unwrap();
                    }
                });
                wait_for(&raw_stored_seen, target);
            }
            start.elapsed()
        });
    });
    group.bench_function(
        "eventbus emit (persisted, distributed) → handler of another bus",
        |b| {
            b.iter_custom(|iters| {
                let start = Instant::now();
                for _ in 0..iters {
                    let target = stored_seen.load(Ordering::Acquire) + 100;
                    for i in 0..100 {
                        installed_out.emit(payload(i)).unwrap();
                    }
                    wait_for(&stored_seen, target);
                }
                start.elapsed()
            });
        },
    );
    group.finish();

    rt.block_on(async {
        let _ = js.delete_stream(raw_stream).await;
        let _ = js.delete_stream(format!("{package}-events")).await;
    });
}

criterion_group!(benches, nats);
criterion_main!(benches);
