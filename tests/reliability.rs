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

use eventbus::{CircuitBreakerConfig, CircuitState, DeadLetterReason, FailureKind, Jitter, Retry};
use shapes::{Batched, EventBus, Guarded, InlineThing};

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

/// Failures of `guarded` the bus reported, by kind.
fn kinds(errors: &mut eventbus::Failures) -> Vec<FailureKind> {
    let mut kinds = Vec::new();
    while let Some(Ok(failure)) = errors.try_recv() {
        kinds.push(failure.kind());
    }
    kinds
}

#[tokio::test(start_paused = true)]
async fn a_manifest_circuit_breaker_opens_after_its_minimum_calls_unless_code_overrides_it() {
    // `guarded`: `circuit_breaker: { failure_rate: 25%, minimum_calls: 5, window: 20,
    // open_for: 30s }`. No breaker is configured in code.
    let bus = EventBus::builder().jitter(Jitter::None).build().unwrap();
    let mut errors = bus.errors();
    bus.guarded.on_with(
        eventbus::HandlerOptions::new().label("flaky"),
        |_: &Guarded| Err::<(), _>("down"),
    );
    let circuit = |bus: &EventBus| bus.stats().event("guarded").unwrap().handlers[0].circuit;
    assert_eq!(circuit(&bus), Some(CircuitState::Closed));
    for id in 1..=4 {
        bus.guarded.emit(Guarded { id });
    }
    // Four failures out of four, but fewer than `minimum_calls`: still closed.
    assert_eq!(circuit(&bus), Some(CircuitState::Closed));
    assert_eq!(kinds(&mut errors), [FailureKind::Returned; 4]);
    bus.guarded.emit(Guarded { id: 5 });
    assert_eq!(circuit(&bus), Some(CircuitState::Open));
    bus.guarded.emit(Guarded { id: 6 });
    assert_eq!(
        kinds(&mut errors),
        [FailureKind::Returned, FailureKind::CircuitOpen]
    );
    let letters = bus.dead_letters().list().unwrap();
    assert_eq!(
        letters.last().unwrap().reason,
        DeadLetterReason::CircuitOpen
    );
    // `open_for: 30s`, then half-open.
    tokio::time::sleep(Duration::from_secs(29)).await;
    assert_eq!(circuit(&bus), Some(CircuitState::Open));
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(circuit(&bus), Some(CircuitState::HalfOpen));

    // `fused` has `circuit_breaker: true`: the defaults (10 calls at least).
    let fused = bus.fused.on(|| Err::<(), _>("down"));
    for _ in 0..9 {
        bus.fused.emit();
    }
    let fused_circuit = |bus: &EventBus| bus.stats().event("fused").unwrap().handlers[0].circuit;
    assert_eq!(fused_circuit(&bus), Some(CircuitState::Closed));
    bus.fused.emit();
    assert_eq!(fused_circuit(&bus), Some(CircuitState::Open));
    fused.unsubscribe();

    // The builder overrides the manifest: a larger minimum for the event, or none at all.
    let bus = EventBus::builder()
        .event("guarded", |e| {
            e.circuit_breaker(CircuitBreakerConfig {
                minimum_calls: 8,
                ..CircuitBreakerConfig::default()
            })
        })
        .event("fused", |e| e.circuit_breaker(None))
        .build()
        .unwrap();
    bus.guarded.on(|_: &Guarded| Err::<(), _>("down"));
    bus.fused.on(|| Err::<(), _>("down"));
    for id in 1..=7 {
        bus.guarded.emit(Guarded { id });
    }
    for _ in 0..20 {
        bus.fused.emit();
    }
    let stats = bus.stats();
    assert_eq!(
        stats.event("guarded").unwrap().handlers[0].circuit,
        Some(CircuitState::Closed)
    );
    assert_eq!(stats.event("fused").unwrap().handlers[0].circuit, None);
    bus.guarded.emit(Guarded { id: 8 });
    assert_eq!(circuit(&bus), Some(CircuitState::Open));
    // And a handler's own option beats both.
    bus.guarded.on_with(
        eventbus::HandlerOptions::new().no_circuit_breaker(),
        |_: &Guarded| Err::<(), _>("down"),
    );
    assert_eq!(
        bus.stats().event("guarded").unwrap().handlers[1].circuit,
        None
    );
}

/// Runs `emits` events of `guarded` through a slow async handler registered with `options`;
/// returns the most calls that ran at once and how many events overflowed its queue.
async fn parallel_calls(
    bus: &EventBus,
    options: eventbus::HandlerOptions,
    emits: u32,
) -> (usize, usize) {
    let running = Arc::new(Mutex::new((0usize, 0usize))); // (now, most)
    let handle = running.clone();
    bus.guarded.on_async_with(options, move |_: Guarded| {
        let running = handle.clone();
        async move {
            {
                let mut r = running.lock().unwrap();
                r.0 += 1;
                r.1 = r.1.max(r.0);
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
            running.lock().unwrap().0 -= 1;
        }
    });
    let before = bus.dead_letters().len().unwrap();
    for id in 0..emits {
        bus.guarded.emit(Guarded { id });
    }
    let overflowed = bus.dead_letters().len().unwrap() - before;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let most = running.lock().unwrap().1;
    bus.guarded.remove_all_listeners();
    (most, overflowed)
}

#[tokio::test(start_paused = true)]
async fn a_manifest_concurrency_and_queue_bound_async_handlers_unless_code_overrides_them() {
    use eventbus::HandlerOptions;
    // `guarded`: `concurrency: 4`, `queue: 100`. The bus-wide defaults are only the fallback
    // for events whose manifest says nothing.
    let bus = EventBus::builder()
        .async_concurrency(16)
        .async_queue(1_000)
        .build()
        .unwrap();
    // 4 running + 100 waiting; the 105th is dead-lettered.
    assert_eq!(
        parallel_calls(&bus, HandlerOptions::new(), 105).await,
        (4, 1)
    );
    let letters = bus.dead_letters().list().unwrap();
    assert_eq!(letters[0].reason, DeadLetterReason::Overflow);

    // The builder's event options override the manifest …
    let bus = EventBus::builder()
        .event("guarded", |e| e.concurrency(2).queue(10))
        .build()
        .unwrap();
    assert_eq!(
        parallel_calls(&bus, HandlerOptions::new(), 13).await,
        (2, 1)
    );
    // … and a handler's own options override both.
    let options = HandlerOptions::new().concurrency(1).queue(3);
    assert_eq!(parallel_calls(&bus, options, 5).await, (1, 1));
    // `None` falls back to the bus-wide setting.
    let bus = EventBus::builder()
        .async_concurrency(6)
        .event("guarded", |e| e.concurrency(None))
        .build()
        .unwrap();
    assert_eq!(
        parallel_calls(&bus, HandlerOptions::new(), 20).await,
        (6, 0)
    );
}
