//! The reliability layer through a generated bus (the golden `shapes` manifest): its builder,
//! its manifest policies, and the core's API reached through `Deref`.

#![cfg(feature = "async")]

use std::sync::{Arc, Mutex};
use std::time::Duration;

// Generated code: `Level::MidLevel` trips `clippy::enum_variant_names`.
#[allow(dead_code, deprecated, clippy::enum_variant_names)]
mod shapes {
    include!("golden/shapes.rs");
}

use eventbus::{CircuitBreakerConfig, DeadLetterReason, FailureKind, Jitter, Retry};
use shapes::{Batched, EventBus, InlineThing};

#[tokio::test(start_paused = true)]
async fn a_generated_bus_honours_its_manifest_policies_and_builder_overrides() {
    let bus: EventBus = EventBus::builder()
        .jitter(Jitter::None)
        .circuit_breaker(CircuitBreakerConfig::default())
        // The manifest says `batch: { max_size: 50, max_wait: 20ms }`; make batches of 2.
        .event("batched", |e| {
            e.batch(eventbus::Batch {
                max_size: 2,
                max_wait: Duration::from_millis(20),
            })
            .rate_limit(None)
        })
        .build()
        .unwrap();
    let mut errors = bus.errors();

    // `inlineThing` has `throttle: 1m30s` in the manifest.
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    bus.inline_thing
        .on(move |t: &InlineThing| sink.lock().unwrap().push(t.count));
    for count in 1..=3 {
        bus.inline_thing.emit(InlineThing { count, level: None });
    }
    assert_eq!(*seen.lock().unwrap(), [1]);
    tokio::time::sleep(Duration::from_secs(91)).await;
    assert_eq!(*seen.lock().unwrap(), [1, 3]);

    // `batched` retries 5 times (manifest: backoff 200ms, cap 10s), in batches of 2.
    bus.batched.on_batch_with(
        eventbus::HandlerOptions::new().label("sink"),
        |b: &[Batched]| Err::<(), _>(format!("{} rows rejected", b.len())),
    );
    bus.batched.emit(Batched { id: 1 });
    bus.batched.emit(Batched { id: u64::MAX });
    tokio::time::sleep(Duration::from_secs(10)).await;
    let mut attempts = Vec::new();
    while let Some(Ok(failure)) = errors.try_recv() {
        assert_eq!(failure.kind(), FailureKind::Returned);
        attempts.push((failure.attempt(), failure.retry_in()));
    }
    let ms = |n| Some(Duration::from_millis(n));
    assert_eq!(
        attempts,
        [
            (1, ms(200)),
            (2, ms(400)),
            (3, ms(800)),
            (4, ms(1600)),
            (5, None)
        ]
    );
    let letters = bus.dead_letters().list().unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].reason, DeadLetterReason::Failed);
    // 64-bit integers keep their wire form (strings) in dead letters too.
    assert_eq!(
        letters[0].payload,
        serde_json::json!([{"id": "1"}, {"id": "18446744073709551615"}])
    );

    let stats = bus.stats();
    assert_eq!(stats.event("inlineThing").unwrap().suppressed, 1);
    assert_eq!(stats.event("batched").unwrap().retried, 4);

    let report = bus.shutdown().await;
    assert!(report.is_clean());
    bus.tree.emit(shapes::Tree {
        label: "late".into(),
        children: vec![],
        parent: None,
    });
    assert_eq!(bus.dead_letters().len().unwrap(), 2);
}

#[test]
fn builder_errors_name_the_event() {
    let error = EventBus::builder()
        .event("batched", |e| {
            e.retry(Retry {
                attempts: 0,
                backoff: Duration::ZERO,
                max_backoff: Duration::ZERO,
            })
        })
        .build()
        .unwrap_err();
    assert_eq!(
        error.to_string(),
        "event `batched`: `retry.attempts` counts the first attempt and must be at least 1"
    );
}
