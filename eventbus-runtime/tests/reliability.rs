//! The reliability layer: failures, retry, dead letters, circuit breakers, flood control,
//! batching, async handlers, streams, shutdown. Timing is checked on tokio's paused clock
//! (`start_paused = true`): time only moves when every task waits, so "at 99ms nothing, at
//! 101ms one delivery" is deterministic and never depends on the machine's speed.

#![cfg(feature = "async")]

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use eventbus_runtime::{
    Batch, BuildError, BusCore, CircuitBreakerConfig, CircuitState, DeadLetter, DeadLetterReason,
    DeadLetterStore, Event, FailureKind, HandlerFailure, HandlerOptions, Jitter, Lagged,
    MemoryDeadLetters, Policies, Pushed, RateLimit, RedispatchError, Retry, Signal, StoreError,
};
use serde_json::json;
use tokio::time::sleep;

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A bus of one event `job: Event<u32>` with `policies`, built with `configure`.
fn job_bus(
    policies: Policies,
    configure: impl FnOnce(eventbus_runtime::BusBuilder) -> eventbus_runtime::BusBuilder,
) -> (BusCore, Event<u32>) {
    let manifest = eventbus_runtime::__doc::manifest_with(&[("job", Some("u32"), policies)]);
    let core = configure(BusCore::builder(manifest).jitter(Jitter::None))
        .build()
        .unwrap();
    let job = Event::new(&core, manifest.event("job").unwrap());
    (core, job)
}

/// Collects every failure the bus reports.
fn failures(core: &BusCore) -> Arc<Mutex<Vec<HandlerFailure>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    core.on_failure(move |f| sink.lock().unwrap().push(f.clone()));
    seen
}

type Seen<T> = Arc<Mutex<Vec<T>>>;

/// Records what a handler received: one handle to read, one for the handler.
fn recorder<T: Send + 'static>() -> (Seen<T>, Seen<T>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    (seen.clone(), seen)
}

fn taken<T: Clone>(seen: &Mutex<Vec<T>>) -> Vec<T> {
    seen.lock().unwrap().clone()
}

const RETRY_3: Retry = Retry {
    attempts: 3,
    backoff: Duration::from_millis(100),
    max_backoff: Duration::from_secs(1),
};

/// Two attempts, 100 ms apart.
const RETRY_2: Retry = Retry {
    attempts: 2,
    backoff: Duration::from_millis(100),
    max_backoff: Duration::from_millis(100),
};

fn with_retry(retry: Retry) -> Policies {
    Policies {
        retry: Some(retry),
        ..Policies::NONE
    }
}

// ---------------------------------------------------------------------------------------------
// Retry and dead letters

#[tokio::test(start_paused = true)]
async fn a_failing_handler_is_retried_with_exponential_backoff_off_the_emitting_thread() {
    let (core, job) = job_bus(with_retry(RETRY_3), |b| b);
    let failures = failures(&core);
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    job.on_labeled("flaky", move |_| {
        // Fails twice, then succeeds.
        if counter.fetch_add(1, Ordering::SeqCst) < 2 {
            Err("not yet")
        } else {
            Ok(())
        }
    });

    job.emit(7);
    // The first attempt ran inside `emit`; the retry is scheduled, not awaited.
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    sleep(ms(99)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 1);
    sleep(ms(2)).await; // t = 101ms: backoff 100ms
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    sleep(ms(198)).await; // t = 299ms
    assert_eq!(calls.load(Ordering::SeqCst), 2);
    sleep(ms(2)).await; // t = 301ms: backoff 200ms
    assert_eq!(calls.load(Ordering::SeqCst), 3);

    let failures = taken(&failures);
    let summary: Vec<_> = failures
        .iter()
        .map(|f| (f.handler(), f.attempt(), f.retry_in(), f.dead_letter()))
        .collect();
    assert_eq!(
        summary,
        [
            ("flaky", 1, Some(ms(100)), None),
            ("flaky", 2, Some(ms(200)), None),
        ]
    );
    assert!(core.dead_letters().is_empty().unwrap());
    let stats = core.stats();
    let job_stats = stats.event("job").unwrap();
    assert_eq!((job_stats.failed, job_stats.retried), (2, 2));
}

#[tokio::test(start_paused = true)]
async fn after_the_last_attempt_the_event_is_dead_lettered_and_reported() {
    let (core, job) = job_bus(with_retry(RETRY_3), |b| b);
    let failures = failures(&core);
    job.on_labeled("broken", |n| Err::<(), _>(format!("cannot handle {n}")));
    job.on_labeled("fine", |_| ());
    job.emit(5);
    sleep(ms(1000)).await;

    let failures = taken(&failures);
    assert_eq!(failures.len(), 3);
    let last = &failures[2];
    assert_eq!((last.attempt(), last.retry_in()), (3, None));
    let id = last.dead_letter().expect("dead-lettered");
    let letter = core.dead_letters().get(id).unwrap().unwrap();
    assert_eq!(
        (
            letter.event.as_str(),
            letter.handler.as_deref(),
            letter.reason,
            letter.attempts,
            letter.error.as_str(),
            &letter.payload,
            letter.batch
        ),
        (
            "job",
            Some("broken"),
            DeadLetterReason::Failed,
            3,
            "cannot handle 5",
            &json!(5),
            false
        )
    );
    assert_eq!(core.stats().event("job").unwrap().dead_lettered, 1);
}

#[tokio::test(start_paused = true)]
async fn handler_options_override_the_event_retry_policy() {
    let (core, job) = job_bus(with_retry(RETRY_3), |b| b);
    let failures = failures(&core);
    job.on_with(HandlerOptions::new().label("once-only").no_retry(), |_| {
        Err::<(), _>("no")
    });
    job.on_with(
        HandlerOptions::new().label("twice").retry(Retry {
            attempts: 2,
            backoff: ms(10),
            max_backoff: ms(10),
        }),
        |_| Err::<(), _>("no"),
    );
    job.emit(1);
    sleep(ms(50)).await;
    let attempts: Vec<_> = taken(&failures)
        .iter()
        .map(|f| {
            (
                f.handler().to_owned(),
                f.attempt(),
                f.dead_letter().is_some(),
            )
        })
        .collect();
    assert_eq!(
        attempts,
        [
            ("once-only".to_owned(), 1, true),
            ("twice".to_owned(), 1, false),
            ("twice".to_owned(), 2, true),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn pending_retries_of_a_failing_handler_are_bounded_and_overflow_to_dead_letters() {
    let (core, job) = job_bus(with_retry(RETRY_3), |b| b);
    let failures = failures(&core);
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    job.on_with(
        HandlerOptions::new().label("down").retry_queue(2),
        move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
            Err::<(), _>("down")
        },
    );

    // The clock is paused: nothing runs between these emits, so every retry is still pending.
    for n in 1..=5 {
        job.emit(n);
    }
    let seen = taken(&failures);
    let summary: Vec<_> = seen
        .iter()
        .map(|f| {
            (
                f.kind(),
                f.payload().clone(),
                f.retry_in(),
                f.dead_letter().is_some(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            (FailureKind::Returned, json!(1), Some(ms(100)), false),
            (FailureKind::Returned, json!(2), Some(ms(100)), false),
            (FailureKind::Overflow, json!(3), None, true),
            (FailureKind::Overflow, json!(4), None, true),
            (FailureKind::Overflow, json!(5), None, true),
        ]
    );
    assert_eq!(
        seen[2].error(),
        "not retried: the handler's retry queue is full (2 retries pending); the call failed: \
         down"
    );
    assert_eq!((seen[2].handler(), seen[2].attempt()), ("down", 1));
    let letters: Vec<_> = core
        .dead_letters()
        .list()
        .unwrap()
        .into_iter()
        .map(|l| (l.reason, l.handler, l.attempts, l.payload))
        .collect();
    assert_eq!(
        letters,
        [3, 4, 5].map(|n| (
            DeadLetterReason::Overflow,
            Some("down".to_owned()),
            1,
            json!(n)
        ))
    );

    // The two pending retries run their course (100 ms, then 200 ms) and give their slots back.
    sleep(ms(301)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 5 + 2 * 2);
    assert_eq!(core.dead_letters().len().unwrap(), 5);
    job.emit(6);
    let last = taken(&failures).pop().unwrap();
    assert_eq!(
        (last.kind(), last.payload(), last.retry_in()),
        (FailureKind::Returned, &json!(6), Some(ms(100)))
    );
}

#[tokio::test(start_paused = true)]
async fn the_retry_queue_defaults_to_1024_per_handler_and_the_builder_changes_it() {
    // The documented default: a steady stream of failures holds at most 1,024 retries.
    let (core, job) = job_bus(with_retry(RETRY_3), |b| b);
    let seen = failures(&core);
    job.on(|_| Err::<(), _>("down"));
    for n in 0..1_100 {
        job.emit(n);
    }
    let overflowed = taken(&seen)
        .iter()
        .filter(|f| f.kind() == FailureKind::Overflow)
        .count();
    assert_eq!(overflowed, 1_100 - eventbus_runtime::defaults::RETRY_QUEUE);
    assert_eq!(eventbus_runtime::defaults::RETRY_QUEUE, 1_024);

    // The builder's default applies to sync and batch handlers; a handler's own wins.
    let policies = Policies {
        batch: Some(Batch {
            max_size: 1,
            max_wait: ms(50),
        }),
        ..with_retry(RETRY_3)
    };
    let (core, job) = job_bus(policies, |b| b.retry_queue(1));
    let failures = failures(&core);
    job.on_labeled("sync", |_| Err::<(), _>("down"));
    job.on_batch_with(HandlerOptions::new().label("batch"), |_: &[u32]| {
        Err::<(), _>("down")
    });
    job.on_with(HandlerOptions::new().label("roomy").retry_queue(2), |_| {
        Err::<(), _>("down")
    });
    job.emit(1);
    job.emit(2);
    let overflowed: Vec<_> = taken(&failures)
        .iter()
        .filter(|f| f.kind() == FailureKind::Overflow)
        .map(|f| (f.handler().to_owned(), f.payload().clone()))
        .collect();
    assert_eq!(
        overflowed,
        [
            ("sync".to_owned(), json!(2)),
            ("batch".to_owned(), json!([2])),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn the_builder_sets_a_default_retry_and_per_event_overrides() {
    let manifest = eventbus_runtime::__doc::manifest_with(&[
        ("plain", Some("u32"), Policies::NONE),
        ("declared", Some("u32"), with_retry(RETRY_3)),
    ]);
    let core = BusCore::builder(manifest)
        .jitter(Jitter::None)
        .retry(Retry {
            attempts: 2,
            backoff: ms(5),
            max_backoff: ms(5),
        })
        .event("declared", |e| e.retry(None))
        .build()
        .unwrap();
    let failures = failures(&core);
    let plain: Event<u32> = Event::new(&core, manifest.event("plain").unwrap());
    let declared: Event<u32> = Event::new(&core, manifest.event("declared").unwrap());
    plain.on(|_| Err::<(), _>("x"));
    declared.on(|_| Err::<(), _>("x"));
    plain.emit(1);
    declared.emit(1);
    sleep(ms(50)).await;
    let per_event: Vec<_> = taken(&failures)
        .iter()
        .map(|f| (f.event(), f.attempt()))
        .collect();
    // `plain` gets the builder's default (2 attempts); `declared` had retry turned off.
    assert_eq!(per_event, [("plain", 1), ("declared", 1), ("plain", 2)]);
}

#[tokio::test(start_paused = true)]
async fn redispatch_delivers_to_the_failed_handler_only_and_discard_removes() {
    let (core, job) = job_bus(Policies::NONE, |b| b);
    let _failures = failures(&core);
    let healthy = Arc::new(AtomicUsize::new(0));
    let flag = healthy.clone();
    let (other_seen, other_sink) = recorder();
    let (store_seen, store_sink) = recorder();
    job.on_labeled("other", move |n| other_sink.lock().unwrap().push(*n));
    job.on_labeled("store", move |n| {
        if flag.load(Ordering::SeqCst) == 0 {
            return Err("database down");
        }
        store_sink.lock().unwrap().push(*n);
        Ok(())
    });
    job.emit(1);
    job.emit(2);
    let letters = core.dead_letters().list().unwrap();
    assert_eq!(letters.len(), 2);

    healthy.store(1, Ordering::SeqCst);
    core.dead_letters().redispatch(letters[0].id).unwrap();
    assert_eq!(taken(&store_seen), [1]);
    assert_eq!(
        taken(&other_seen),
        [1, 2],
        "the other handler is not called again"
    );

    let discarded = core.dead_letters().discard(letters[1].id).unwrap().unwrap();
    assert_eq!(discarded.payload, json!(2));
    assert!(core.dead_letters().is_empty().unwrap());
    assert!(matches!(
        core.dead_letters().redispatch(letters[1].id),
        Err(RedispatchError::NotFound(_))
    ));
}

#[tokio::test(start_paused = true)]
async fn a_letter_whose_handler_is_gone_stays_in_the_queue() {
    let (core, job) = job_bus(Policies::NONE, |b| b);
    let _failures = failures(&core);
    let subscription = job.on_labeled("gone", |_| Err::<(), _>("x"));
    job.emit(1);
    subscription.unsubscribe();
    let id = core.dead_letters().list().unwrap()[0].id;
    let error = core.dead_letters().redispatch(id).unwrap_err();
    assert!(
        matches!(&error, RedispatchError::HandlerGone { handler, .. } if handler == "gone"),
        "{error}"
    );
    assert_eq!(core.dead_letters().len().unwrap(), 1);

    // A new handler with the same label takes it (labels survive restarts, ids do not).
    let (seen, sink) = recorder();
    job.on_labeled("gone", move |n| sink.lock().unwrap().push(*n));
    core.dead_letters().redispatch(id).unwrap();
    assert_eq!(taken(&seen), [1]);
}

#[tokio::test(start_paused = true)]
async fn a_full_dead_letter_queue_evicts_the_oldest_and_reports_it() {
    let (core, job) = job_bus(Policies::NONE, |b| {
        b.dead_letters(MemoryDeadLetters::with_capacity(2))
    });
    let failures = failures(&core);
    job.on(|_| Err::<(), _>("x"));
    for n in 1..=3 {
        job.emit(n);
    }
    let payloads: Vec<_> = core
        .dead_letters()
        .list()
        .unwrap()
        .into_iter()
        .map(|l| l.payload)
        .collect();
    assert_eq!(payloads, [json!(2), json!(3)]);
    assert_eq!(core.dead_letters().evicted(), 1);
    assert_eq!(core.stats().dead_letters_evicted, 1);
    let evicted: Vec<_> = taken(&failures)
        .into_iter()
        .filter(|f| f.kind() == FailureKind::Evicted)
        .collect();
    assert_eq!(evicted.len(), 1);
    assert_eq!(evicted[0].payload(), &json!(1));
    assert!(
        evicted[0].error().contains("evicted"),
        "{}",
        evicted[0].error()
    );
}

/// A store that refuses every letter: a persistent store on a full disk.
struct FullDisk;

impl DeadLetterStore for FullDisk {
    fn push(&self, _: DeadLetter) -> Result<Pushed, StoreError> {
        Err("disk full".into())
    }
    fn list(&self) -> Result<Vec<DeadLetter>, StoreError> {
        Ok(Vec::new())
    }
    fn get(&self, _: u64) -> Result<Option<DeadLetter>, StoreError> {
        Ok(None)
    }
    fn remove(&self, _: u64) -> Result<Option<DeadLetter>, StoreError> {
        Ok(None)
    }
    fn len(&self) -> Result<usize, StoreError> {
        Ok(0)
    }
}

#[tokio::test(start_paused = true)]
async fn a_failing_dead_letter_store_is_reported_too() {
    let (core, job) = job_bus(Policies::NONE, |b| b.dead_letters(FullDisk));
    let failures = failures(&core);
    job.on(|_| Err::<(), _>("handler error"));
    job.emit(1);
    let kinds: Vec<_> = taken(&failures).iter().map(|f| f.kind()).collect();
    assert_eq!(kinds, [FailureKind::StoreFailed, FailureKind::Returned]);
    let lost = &taken(&failures)[0];
    assert!(lost.error().contains("disk full"), "{}", lost.error());
    assert_eq!(taken(&failures)[1].dead_letter(), None);
}

// ---------------------------------------------------------------------------------------------
// Circuit breaker

const BREAKER: CircuitBreakerConfig = CircuitBreakerConfig {
    failure_rate_threshold: 50.0,
    sliding_window: 4,
    minimum_calls: 4,
    open_for: Duration::from_secs(10),
    half_open_calls: 2,
};

#[tokio::test(start_paused = true)]
async fn an_open_circuit_sends_events_to_the_dead_letter_queue_then_probes_and_closes() {
    let (core, job) = job_bus(Policies::NONE, |b| b.circuit_breaker(BREAKER));
    let failures = failures(&core);
    let healthy = Arc::new(AtomicUsize::new(0));
    let flag = healthy.clone();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    job.on_labeled("remote", move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
        if flag.load(Ordering::SeqCst) == 1 {
            Ok(())
        } else {
            Err("remote down")
        }
    });
    let circuit = |core: &BusCore| core.stats().event("job").unwrap().handlers[0].circuit;

    for n in 0..4 {
        job.emit(n);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    assert_eq!(circuit(&core), Some(CircuitState::Open));

    // Open: the handler is not called; the events are dead-lettered, not lost.
    job.emit(10);
    job.emit(11);
    assert_eq!(calls.load(Ordering::SeqCst), 4);
    let open: Vec<_> = taken(&failures)
        .into_iter()
        .filter(|f| f.kind() == FailureKind::CircuitOpen)
        .collect();
    assert_eq!(open.len(), 2);
    let letter = core
        .dead_letters()
        .get(open[0].dead_letter().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(
        (letter.reason, letter.payload, letter.attempts),
        (DeadLetterReason::CircuitOpen, json!(10), 0)
    );
    assert_eq!(
        core.stats().event("job").unwrap().failed,
        4,
        "skipped calls are not failures"
    );

    // After `open_for`: half-open, two probes; both succeed, so it closes.
    sleep(Duration::from_secs(10)).await;
    assert_eq!(circuit(&core), Some(CircuitState::HalfOpen));
    healthy.store(1, Ordering::SeqCst);
    job.emit(20);
    job.emit(21);
    assert_eq!(calls.load(Ordering::SeqCst), 6);
    assert_eq!(circuit(&core), Some(CircuitState::Closed));
    // The dead-lettered events can now be re-dispatched.
    for letter in core.dead_letters().list().unwrap() {
        core.dead_letters().redispatch(letter.id).unwrap();
    }
    assert_eq!(calls.load(Ordering::SeqCst), 12);
    assert!(core.dead_letters().is_empty().unwrap());
}

#[tokio::test(start_paused = true)]
async fn failed_probes_reopen_the_circuit_and_a_handler_can_opt_out() {
    let (core, job) = job_bus(Policies::NONE, |b| b.circuit_breaker(BREAKER));
    let _failures = failures(&core);
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    job.on(move |_| {
        counter.fetch_add(1, Ordering::SeqCst);
        Err::<(), _>("down")
    });
    let unguarded = Arc::new(AtomicUsize::new(0));
    let unguarded_counter = unguarded.clone();
    job.on_with(HandlerOptions::new().no_circuit_breaker(), move |_| {
        unguarded_counter.fetch_add(1, Ordering::SeqCst);
        Err::<(), _>("down")
    });
    for n in 0..4 {
        job.emit(n);
    }
    sleep(Duration::from_secs(10)).await;
    // Three emits while half-open: two probes fail, the third is refused.
    for n in 0..3 {
        job.emit(n);
    }
    assert_eq!(calls.load(Ordering::SeqCst), 6);
    let handlers = core.stats().event("job").unwrap().handlers.clone();
    assert_eq!(handlers[0].circuit, Some(CircuitState::Open));
    assert_eq!(handlers[1].circuit, None);
    assert_eq!(unguarded.load(Ordering::SeqCst), 7);
}

// ---------------------------------------------------------------------------------------------
// Flood control

#[tokio::test(start_paused = true)]
async fn throttle_delivers_the_leading_edge_at_once_and_the_latest_at_the_trailing_edge() {
    let policies = Policies {
        throttle: Some(ms(100)),
        ..Policies::NONE
    };
    let (core, job) = job_bus(policies, |b| b);
    let (seen, sink) = recorder();
    job.on(move |n| sink.lock().unwrap().push(*n));

    job.emit(1); // t=0: leading edge
    assert_eq!(taken(&seen), [1]);
    sleep(ms(10)).await;
    job.emit(2); // suppressed by 3
    sleep(ms(10)).await;
    job.emit(3);
    sleep(ms(78)).await; // t=98
    assert_eq!(taken(&seen), [1]);
    sleep(ms(4)).await; // t=102: trailing edge, opens the next interval
    assert_eq!(taken(&seen), [1, 3]);
    sleep(ms(48)).await; // t=150
    job.emit(4);
    sleep(ms(48)).await; // t=198
    assert_eq!(taken(&seen), [1, 3]);
    sleep(ms(4)).await; // t=202
    assert_eq!(taken(&seen), [1, 3, 4]);
    sleep(ms(200)).await; // quiet: the next event leads again
    job.emit(5);
    assert_eq!(taken(&seen), [1, 3, 4, 5]);
    assert_eq!(core.stats().event("job").unwrap().suppressed, 1);
}

#[tokio::test(start_paused = true)]
async fn debounce_delivers_the_last_event_once_quiet() {
    let policies = Policies {
        debounce: Some(ms(100)),
        ..Policies::NONE
    };
    let (core, job) = job_bus(policies, |b| b);
    let (seen, sink) = recorder();
    job.on(move |n| sink.lock().unwrap().push(*n));
    job.emit(1);
    sleep(ms(50)).await;
    job.emit(2);
    sleep(ms(50)).await;
    job.emit(3); // t=100; quiet until 200
    sleep(ms(98)).await;
    assert!(taken(&seen).is_empty());
    sleep(ms(4)).await; // t=202
    assert_eq!(taken(&seen), [3]);
    job.emit(4);
    sleep(ms(102)).await;
    assert_eq!(taken(&seen), [3, 4]);
    assert_eq!(core.stats().event("job").unwrap().suppressed, 2);
}

#[tokio::test(start_paused = true)]
async fn rate_limit_delays_excess_events_in_order_and_dead_letters_overflow() {
    let policies = Policies {
        rate_limit: Some(RateLimit {
            count: 2,
            per: Duration::from_secs(1),
            burst: 2,
        }),
        ..Policies::NONE
    };
    let (core, job) = job_bus(policies, |b| b.rate_limit_queue(2));
    let failures = failures(&core);
    let (seen, sink) = recorder();
    job.on(move |n| sink.lock().unwrap().push(*n));
    for n in 1..=5 {
        job.emit(n);
    }
    // The burst of 2 at once; 2 queued; the 5th overflows the queue of 2.
    assert_eq!(taken(&seen), [1, 2]);
    let overflow = taken(&failures);
    assert_eq!(overflow.len(), 1);
    assert_eq!(
        (
            overflow[0].kind(),
            overflow[0].handler(),
            overflow[0].payload()
        ),
        (FailureKind::Overflow, "", &json!(5))
    );
    let letter = core.dead_letters().list().unwrap().remove(0);
    assert_eq!(
        (letter.reason, letter.handler),
        (DeadLetterReason::Overflow, None)
    );

    // One token every 500ms.
    sleep(ms(498)).await;
    assert_eq!(taken(&seen), [1, 2]);
    sleep(ms(4)).await;
    assert_eq!(taken(&seen), [1, 2, 3]);
    sleep(ms(500)).await;
    assert_eq!(taken(&seen), [1, 2, 3, 4]);
    assert_eq!(core.stats().event("job").unwrap().rejected, 1);

    // The event-level letter re-dispatches as a new emit, through the rate limit.
    sleep(ms(1000)).await;
    core.dead_letters().redispatch(letter.id).unwrap();
    assert_eq!(taken(&seen), [1, 2, 3, 4, 5]);
}

#[tokio::test(start_paused = true)]
async fn policies_chain_debounce_then_throttle() {
    let policies = Policies {
        debounce: Some(ms(10)),
        throttle: Some(ms(100)),
        ..Policies::NONE
    };
    let (_core, job) = job_bus(policies, |b| b);
    let (seen, sink) = recorder();
    job.on(move |n| sink.lock().unwrap().push(*n));
    job.emit(1);
    sleep(ms(12)).await; // debounced at 10, leads the throttle
    assert_eq!(taken(&seen), [1]);
    job.emit(2);
    sleep(ms(12)).await; // debounced at 22, held by the throttle until 110
    assert_eq!(taken(&seen), [1]);
    sleep(ms(90)).await;
    assert_eq!(taken(&seen), [1, 2]);
}

// ---------------------------------------------------------------------------------------------
// Batching

#[tokio::test(start_paused = true)]
async fn batches_leave_when_full_or_when_their_window_closes() {
    let policies = Policies {
        batch: Some(Batch {
            max_size: 3,
            max_wait: ms(50),
        }),
        ..Policies::NONE
    };
    let (_core, job) = job_bus(policies, |b| b);
    let (batches, sink) = recorder();
    let (singles, single_sink) = recorder();
    job.on_batch(move |batch: &[u32]| sink.lock().unwrap().push(batch.to_vec()));
    job.on(move |n| single_sink.lock().unwrap().push(*n));
    for n in 1..=7 {
        job.emit(n);
    }
    assert_eq!(taken(&batches), [vec![1, 2, 3], vec![4, 5, 6]]);
    assert_eq!(
        taken(&singles),
        [1, 2, 3, 4, 5, 6, 7],
        "plain handlers get each event"
    );
    sleep(ms(48)).await;
    assert_eq!(taken(&batches).len(), 2);
    sleep(ms(4)).await;
    assert_eq!(taken(&batches), [vec![1, 2, 3], vec![4, 5, 6], vec![7]]);
}

#[tokio::test(start_paused = true)]
async fn a_failed_batch_is_retried_and_dead_lettered_whole_and_redispatched_as_a_batch() {
    let policies = Policies {
        batch: Some(Batch {
            max_size: 2,
            max_wait: ms(50),
        }),
        retry: Some(Retry {
            attempts: 2,
            backoff: ms(10),
            max_backoff: ms(10),
        }),
        ..Policies::NONE
    };
    let (core, job) = job_bus(policies, |b| b);
    let failures = failures(&core);
    let healthy = Arc::new(AtomicUsize::new(0));
    let flag = healthy.clone();
    let (batches, sink) = recorder();
    job.on_batch_with(
        HandlerOptions::new().label("bulk-insert"),
        move |batch: &[u32]| {
            if flag.load(Ordering::SeqCst) == 0 {
                return Err("insert failed");
            }
            sink.lock().unwrap().push(batch.to_vec());
            Ok(())
        },
    );
    job.emit(1);
    job.emit(2);
    sleep(ms(20)).await;
    let failures = taken(&failures);
    assert_eq!(failures.len(), 2);
    assert_eq!(failures[0].payload(), &json!([1, 2]));
    let letter = core
        .dead_letters()
        .get(failures[1].dead_letter().unwrap())
        .unwrap()
        .unwrap();
    assert!(letter.batch);
    assert_eq!(letter.payload, json!([1, 2]));
    healthy.store(1, Ordering::SeqCst);
    core.dead_letters().redispatch(letter.id).unwrap();
    assert_eq!(taken(&batches), [vec![1, 2]]);
}

#[tokio::test(start_paused = true)]
async fn signals_batch_as_counts() {
    let manifest = eventbus_runtime::__doc::manifest_with(&[("tick", None, Policies::NONE)]);
    let core = BusCore::new(manifest);
    let tick = Signal::new(&core, manifest.event("tick").unwrap());
    let (counts, sink) = recorder();
    tick.on_batch_with(
        HandlerOptions::new().batch(Batch {
            max_size: 100,
            max_wait: ms(10),
        }),
        move |n| sink.lock().unwrap().push(n),
    );
    for _ in 0..5 {
        tick.emit();
    }
    sleep(ms(11)).await;
    assert_eq!(taken(&counts), [5]);
}

// ---------------------------------------------------------------------------------------------
// Async handlers

#[tokio::test(start_paused = true)]
async fn async_handlers_run_with_bounded_concurrency_and_overflow_to_dead_letters() {
    let (core, job) = job_bus(Policies::NONE, |b| b);
    let failures = failures(&core);
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (done, sink) = recorder();
    let (r, p) = (running.clone(), peak.clone());
    job.on_async_with(
        HandlerOptions::new().label("slow").concurrency(2).queue(2),
        move |n: u32| {
            let (running, peak, sink) = (r.clone(), p.clone(), sink.clone());
            async move {
                let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                peak.fetch_max(now, Ordering::SeqCst);
                sleep(ms(100)).await;
                running.fetch_sub(1, Ordering::SeqCst);
                sink.lock().unwrap().push(n);
            }
        },
    );
    for n in 1..=5 {
        job.emit(n); // never waits
    }
    // 2 running + 2 queued; the 5th overflowed.
    let overflow = taken(&failures);
    assert_eq!(overflow.len(), 1);
    assert_eq!(
        (
            overflow[0].kind(),
            overflow[0].handler(),
            overflow[0].payload()
        ),
        (FailureKind::Overflow, "slow", &json!(5))
    );
    sleep(ms(101)).await;
    assert_eq!(taken(&done).len(), 2);
    sleep(ms(100)).await;
    let mut finished = taken(&done);
    finished.sort_unstable();
    assert_eq!(finished, [1, 2, 3, 4]);
    assert_eq!(peak.load(Ordering::SeqCst), 2);

    // The overflowed event is in the dead-letter queue and goes back to the same handler.
    let letter = core.dead_letters().list().unwrap().remove(0);
    assert_eq!(letter.reason, DeadLetterReason::Overflow);
    core.dead_letters().redispatch(letter.id).unwrap();
    sleep(ms(101)).await;
    assert!(taken(&done).contains(&5));
}

/// Clones of [`Counted`] so far (only the test below makes them).
static COUNTED_CLONES: AtomicUsize = AtomicUsize::new(0);

/// A payload that owns heap memory and counts its clones.
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct Counted(String);

impl Clone for Counted {
    fn clone(&self) -> Self {
        COUNTED_CLONES.fetch_add(1, Ordering::SeqCst);
        Counted(self.0.clone())
    }
}

/// The async handlers of one emit share one copy of a payload that owns heap memory: an emit
/// to N of them clones it N times (one per call; `emit_ref` once more for the shared copy),
/// not 2N.
#[tokio::test(start_paused = true)]
async fn async_handlers_share_one_copy_of_each_emit_and_each_call_gets_its_own() {
    let manifest = eventbus_runtime::__doc::manifest(&[
        ("single", Some("Counted")),
        ("counted", Some("Counted")),
    ]);
    let core = BusCore::new(manifest);

    // One async handler: no shared copy, which would be an allocation that saves nothing.
    let single: Event<Counted> = Event::new(&core, manifest.event("single").unwrap());
    single.on_async(|_: Counted| async {});
    single.emit_ref(&Counted("s".into()));
    sleep(ms(1)).await;
    assert_eq!(
        COUNTED_CLONES.swap(0, Ordering::SeqCst),
        2,
        "one handler: a clone into its queue and one for the call"
    );

    let counted: Event<Counted> = Event::new(&core, manifest.event("counted").unwrap());
    let (seen, sink) = recorder();
    for handler in 0..5 {
        let sink = sink.clone();
        counted.on_async(move |payload: Counted| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push((handler, payload.0));
                Ok::<(), std::convert::Infallible>(())
            }
        });
    }
    counted.on(|_| {});
    assert_eq!(counted.listener_count(), 6);
    counted.emit(Counted("a".into()));
    counted.emit_ref(&Counted("b".into()));
    sleep(ms(1)).await;
    assert_eq!(
        COUNTED_CLONES.load(Ordering::SeqCst),
        5 + (1 + 5),
        "per call one clone; `emit` moves its payload into the shared copy, `emit_ref` clones \
         it there once"
    );
    let mut seen = taken(&seen);
    seen.sort();
    let expected: Vec<_> = (0..5)
        .flat_map(|h| [(h, "a".to_owned()), (h, "b".to_owned())])
        .collect();
    assert_eq!(seen, expected, "every handler gets every event");
}

/// With a shared copy, each async handler still retries, fails and is dead-lettered on its
/// own, and a redispatch reaches the failed handler only.
#[tokio::test(start_paused = true)]
async fn shared_payloads_are_retried_dead_lettered_and_redispatched_per_handler() {
    let manifest =
        eventbus_runtime::__doc::manifest_with(&[("note", Some("String"), with_retry(RETRY_2))]);
    let core = BusCore::builder(manifest)
        .jitter(Jitter::None)
        .build()
        .unwrap();
    let note: Event<String> = Event::new(&core, manifest.event("note").unwrap());
    let failures = failures(&core);
    let healthy = Arc::new(AtomicUsize::new(0));
    let (ok_seen, ok_sink) = recorder();
    let (flaky_seen, flaky_sink) = recorder();
    note.on_async_with(HandlerOptions::new().label("ok"), move |n: String| {
        let sink = ok_sink.clone();
        async move {
            sink.lock().unwrap().push(n);
            Ok::<(), std::convert::Infallible>(())
        }
    });
    let flag = healthy.clone();
    note.on_async_with(HandlerOptions::new().label("flaky"), move |n: String| {
        let sink = flaky_sink.clone();
        let healthy = flag.load(Ordering::SeqCst) == 1;
        async move {
            sink.lock().unwrap().push(n.clone());
            if healthy {
                Ok(())
            } else {
                Err(format!("cannot store {n}"))
            }
        }
    });
    note.emit("one".into());
    sleep(ms(1000)).await;
    assert_eq!(taken(&ok_seen), ["one"]);
    assert_eq!(
        taken(&flaky_seen),
        ["one", "one"],
        "retried with the same payload"
    );
    assert_eq!(taken(&failures).len(), 2);
    let letters = core.dead_letters().list().unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].handler.as_deref(), Some("flaky"));
    assert_eq!(letters[0].payload, json!("one"));

    healthy.store(1, Ordering::SeqCst);
    core.dead_letters().redispatch(letters[0].id).unwrap();
    sleep(ms(1)).await;
    assert_eq!(taken(&flaky_seen), ["one", "one", "one"]);
    assert_eq!(
        taken(&ok_seen),
        ["one"],
        "the other handler is not called again"
    );
}

/// A handler that emits (the same event, or another with the same payload type) while the
/// outer emit's async handlers are being fed: every async handler gets the payload of the emit
/// that called it.
#[tokio::test(start_paused = true)]
async fn nested_emits_give_each_async_handler_its_own_emits_payload() {
    let manifest =
        eventbus_runtime::__doc::manifest(&[("note", Some("String")), ("echo", Some("String"))]);
    let core = BusCore::new(manifest);
    let note: Event<String> = Event::new(&core, manifest.event("note").unwrap());
    let echo: Event<String> = Event::new(&core, manifest.event("echo").unwrap());
    let (seen, sink) = recorder();
    let record = |name: &'static str, sink: Seen<(&'static str, String)>| {
        move |n: String| {
            let sink = sink.clone();
            async move {
                sink.lock().unwrap().push((name, n));
                Ok::<(), std::convert::Infallible>(())
            }
        }
    };
    note.on_async(record("note first", sink.clone()));
    let again = note.clone();
    let other = echo.clone();
    note.on(move |n: &String| {
        if n == "outer" {
            again.emit("inner".into());
            // The same value at the same address, delivered by another event.
            other.emit_ref(n);
        }
    });
    note.on_async(record("note last", sink.clone()));
    echo.on_async(record("echo", sink.clone()));
    note.emit("outer".into());
    sleep(ms(1)).await;
    let mut seen = taken(&seen);
    seen.sort();
    assert_eq!(
        seen,
        [
            ("echo", "outer".to_owned()),
            ("note first", "inner".to_owned()),
            ("note first", "outer".to_owned()),
            ("note last", "inner".to_owned()),
            ("note last", "outer".to_owned()),
        ]
    );
}

#[tokio::test(start_paused = true)]
async fn async_failures_and_panics_are_retried_in_place_then_dead_lettered() {
    let (core, job) = job_bus(with_retry(RETRY_3), |b| b);
    let failures = failures(&core);
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    job.on_async(move |n: u32| {
        let counter = counter.clone();
        async move {
            let call = counter.fetch_add(1, Ordering::SeqCst);
            sleep(ms(1)).await;
            if call == 0 {
                panic!("async boom {n}");
            }
            Err::<(), _>("still failing")
        }
    });
    job.emit(9);
    sleep(ms(1000)).await;
    assert_eq!(calls.load(Ordering::SeqCst), 3);
    let failures = taken(&failures);
    let summary: Vec<_> = failures
        .iter()
        .map(|f| (f.kind(), f.attempt(), f.error().to_owned()))
        .collect();
    assert_eq!(
        summary,
        [
            (FailureKind::Panicked, 1, "async boom 9".to_owned()),
            (FailureKind::Returned, 2, "still failing".to_owned()),
            (FailureKind::Returned, 3, "still failing".to_owned()),
        ]
    );
    assert!(failures[2].dead_letter().is_some());
}

// ---------------------------------------------------------------------------------------------
// Streams

#[tokio::test(start_paused = true)]
async fn a_slow_stream_consumer_sees_lagged_and_memory_stays_bounded() {
    let (core, job) = job_bus(Policies::NONE, |b| b);
    let mut stream = job.subscribe_with_capacity(64);
    let mut largest = 0;
    for n in 0..100_000_u32 {
        job.emit(n);
        if n % 1_000 == 0 {
            largest = largest.max(stream.len());
        }
    }
    largest = largest.max(stream.len());
    assert_eq!(largest, 64, "the buffer never holds more than its capacity");
    assert_eq!(stream.recv().await, Some(Err(Lagged(100_000 - 64))));
    for n in 100_000 - 64..100_000 {
        assert_eq!(stream.recv().await, Some(Ok(n)));
    }
    assert_eq!(stream.try_recv(), None);
    assert_eq!(core.stats().event("job").unwrap().lagged, 100_000 - 64);

    // Dropping the stream unsubscribes it.
    assert_eq!(job.listener_count(), 1);
    drop(stream);
    assert_eq!(job.listener_count(), 0);
}

/// Streams of a payload that owns heap memory share one copy per event between them; each
/// still receives every event, in order, as its own value.
#[tokio::test(start_paused = true)]
async fn several_streams_each_receive_every_event_and_leave_independently() {
    let manifest = eventbus_runtime::__doc::manifest(&[("note", Some("String"))]);
    let core = BusCore::new(manifest);
    let note: Event<String> = Event::new(&core, manifest.event("note").unwrap());
    let plain = note.on(|_| {});
    let mut streams: Vec<_> = (0..3).map(|_| note.subscribe()).collect();
    assert_eq!(note.listener_count(), 4, "each stream counts as a listener");
    for n in 0..5 {
        note.emit(format!("note {n}"));
    }
    for stream in &mut streams {
        for n in 0..5 {
            assert_eq!(stream.try_recv(), Some(Ok(format!("note {n}"))));
        }
        assert_eq!(stream.try_recv(), None);
    }
    // A stream that leaves takes nothing from the others.
    let last = streams.pop().unwrap();
    drop(last);
    assert_eq!(note.listener_count(), 3);
    note.emit("after".into());
    for stream in &mut streams {
        assert_eq!(stream.try_recv(), Some(Ok("after".to_string())));
    }
    drop(streams);
    assert_eq!(
        note.listener_count(),
        1,
        "the streams' feeder leaves with the last stream"
    );
    plain.unsubscribe();
    assert_eq!(note.listener_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn remove_all_listeners_ends_delivery_to_existing_streams_for_good() {
    let manifest = eventbus_runtime::__doc::manifest(&[("note", Some("String"))]);
    let core = BusCore::new(manifest);
    let note: Event<String> = Event::new(&core, manifest.event("note").unwrap());
    let mut old = note.subscribe();
    note.emit("before".into());
    note.remove_all_listeners();
    assert_eq!(note.listener_count(), 0);
    let mut new = note.subscribe();
    note.emit("after".into());
    assert_eq!(old.try_recv(), Some(Ok("before".to_string())));
    assert_eq!(old.try_recv(), None, "a removed stream stays removed");
    assert_eq!(new.try_recv(), Some(Ok("after".to_string())));
    drop(old);
    note.emit("still".into());
    assert_eq!(new.try_recv(), Some(Ok("still".to_string())));
}

#[tokio::test(start_paused = true)]
async fn a_stream_wakes_its_consumer_and_ends_at_shutdown() {
    let (core, job) = job_bus(Policies::NONE, |b| b);
    let mut stream = job.subscribe();
    let consumer = tokio::spawn(async move {
        let mut got = Vec::new();
        while let Some(item) = stream.recv().await {
            got.push(item.unwrap());
        }
        got
    });
    tokio::task::yield_now().await;
    job.emit(1);
    tokio::task::yield_now().await;
    job.emit(2);
    let report = core.shutdown().await;
    assert!(report.is_clean());
    assert_eq!(consumer.await.unwrap(), [1, 2]);
}

#[tokio::test(start_paused = true)]
async fn the_errors_stream_carries_every_field() {
    let (core, job) = job_bus(Policies::NONE, |b| b);
    let mut errors = core.errors();
    job.on_labeled("validator", |n| Err::<(), _>(format!("{n} is odd")));
    job.emit(3);
    let failure = errors.recv().await.unwrap().unwrap();
    assert_eq!(
        (
            failure.event(),
            failure.handler(),
            failure.kind(),
            failure.error(),
            failure.attempt(),
            failure.payload()
        ),
        (
            "job",
            "validator",
            FailureKind::Returned,
            "3 is odd",
            1,
            &json!(3)
        )
    );
    assert!(failure.dead_letter().is_some());
    // Bounded as well.
    let mut small = core.errors_with_capacity(2);
    for n in 0..5 {
        job.emit(n);
    }
    assert_eq!(small.recv().await.unwrap(), Err(Lagged(3)));
    assert_eq!(small.len(), 2);
}

// ---------------------------------------------------------------------------------------------
// Shutdown

#[tokio::test(start_paused = true)]
async fn shutdown_flushes_and_drains_then_refuses_new_events() {
    let manifest = eventbus_runtime::__doc::manifest_with(&[
        (
            "quiet",
            Some("u32"),
            Policies {
                debounce: Some(Duration::from_secs(60)),
                ..Policies::NONE
            },
        ),
        (
            "bulk",
            Some("u32"),
            Policies {
                batch: Some(Batch {
                    max_size: 100,
                    max_wait: Duration::from_secs(60),
                }),
                ..Policies::NONE
            },
        ),
        ("work", Some("u32"), Policies::NONE),
    ]);
    let core = BusCore::new(manifest);
    let failures = failures(&core);
    let quiet: Event<u32> = Event::new(&core, manifest.event("quiet").unwrap());
    let bulk: Event<u32> = Event::new(&core, manifest.event("bulk").unwrap());
    let work: Event<u32> = Event::new(&core, manifest.event("work").unwrap());
    let (seen, sink) = recorder::<String>();
    let s = sink.clone();
    quiet.on(move |n| s.lock().unwrap().push(format!("quiet {n}")));
    let s = sink.clone();
    bulk.on_batch(move |b: &[u32]| s.lock().unwrap().push(format!("bulk {b:?}")));
    let s = sink.clone();
    work.on_async(move |n: u32| {
        let s = s.clone();
        async move {
            sleep(Duration::from_secs(5)).await;
            s.lock().unwrap().push(format!("work {n}"));
        }
    });
    quiet.emit(1);
    quiet.emit(2);
    bulk.emit(1);
    bulk.emit(2);
    work.emit(1);

    let report = core.shutdown_with_timeout(Duration::from_secs(10)).await;
    assert!(report.is_clean(), "{report:?}");
    let mut seen = taken(&seen);
    seen.sort();
    assert_eq!(seen, ["bulk [1, 2]", "quiet 2", "work 1"]);
    assert!(taken(&failures).is_empty());

    // Intake is closed: refused, reported and dead-lettered, never silently lost.
    work.emit(2);
    assert_eq!(
        core.emit_json("work", "3").unwrap_err().to_string(),
        "event `work` not emitted: the bus is shut down"
    );
    let refused = taken(&failures);
    assert_eq!(refused.len(), 1);
    assert_eq!(
        (refused[0].kind(), refused[0].handler()),
        (FailureKind::Rejected, "")
    );
    let letter = core.dead_letters().list().unwrap().remove(0);
    assert_eq!(
        (letter.reason, letter.payload),
        (DeadLetterReason::ShutDown, json!(2))
    );
    assert!(matches!(
        core.dead_letters().redispatch(letter.id),
        Err(RedispatchError::ShutDown)
    ));
    assert!(core.stats().shut_down);
}

#[tokio::test(start_paused = true)]
async fn shutdown_abandons_what_misses_the_deadline_to_the_dead_letter_queue() {
    let manifest = eventbus_runtime::__doc::manifest_with(&[
        ("stuck", Some("u32"), Policies::NONE),
        (
            "flaky",
            Some("u32"),
            with_retry(Retry {
                attempts: 5,
                backoff: Duration::from_secs(3600),
                max_backoff: Duration::from_secs(3600),
            }),
        ),
        (
            "limited",
            Some("u32"),
            Policies {
                rate_limit: Some(RateLimit {
                    count: 1,
                    per: Duration::from_secs(3600),
                    burst: 1,
                }),
                ..Policies::NONE
            },
        ),
    ]);
    let core = BusCore::builder(manifest)
        .jitter(Jitter::None)
        .shutdown_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    let failures = failures(&core);
    let stuck: Event<u32> = Event::new(&core, manifest.event("stuck").unwrap());
    let flaky: Event<u32> = Event::new(&core, manifest.event("flaky").unwrap());
    let limited: Event<u32> = Event::new(&core, manifest.event("limited").unwrap());
    stuck.on_async_with(
        HandlerOptions::new().label("hangs").concurrency(1),
        |_| async { sleep(Duration::from_secs(86_400)).await },
    );
    flaky.on_labeled("fails", |_| Err::<(), _>("boom"));
    limited.on(|_| ());
    stuck.emit(1);
    stuck.emit(2); // queued behind the first
    flaky.emit(3); // retry scheduled in an hour
    limited.emit(4); // takes the only token
    limited.emit(5); // waits an hour

    let report = core.shutdown().await;
    assert!(report.timed_out);
    let mut unfinished: Vec<_> = report
        .unfinished
        .iter()
        .map(|u| (u.event, u.handler.clone()))
        .collect();
    unfinished.sort();
    assert_eq!(
        unfinished,
        [
            ("flaky", Some("fails".to_owned())),
            ("limited", None),
            ("stuck", Some("hangs".to_owned())),
            ("stuck", Some("hangs".to_owned())),
        ]
    );
    let mut letters: Vec<_> = core
        .dead_letters()
        .list()
        .unwrap()
        .into_iter()
        .filter(|l| l.reason == DeadLetterReason::ShutDown)
        .map(|l| (l.event, l.payload))
        .collect();
    letters.sort_by_key(|(e, p)| (e.clone(), p.to_string()));
    assert_eq!(
        letters,
        [
            ("flaky".to_owned(), json!(3)),
            ("limited".to_owned(), json!(5)),
            ("stuck".to_owned(), json!(1)),
            ("stuck".to_owned(), json!(2)),
        ]
    );
    for unfinished in &report.unfinished {
        assert!(unfinished.dead_letter.is_some());
    }
    let abandoned = taken(&failures)
        .iter()
        .filter(|f| f.kind() == FailureKind::Abandoned)
        .count();
    assert_eq!(abandoned, 4);
    assert_eq!(report.dead_letters, 4);
}

// ---------------------------------------------------------------------------------------------
// Outside any runtime

#[test]
fn without_a_tokio_runtime_timers_run_on_the_internal_one() {
    assert!(tokio::runtime::Handle::try_current().is_err());
    let policies = Policies {
        debounce: Some(ms(5)),
        retry: Some(Retry {
            attempts: 2,
            backoff: ms(5),
            max_backoff: ms(5),
        }),
        ..Policies::NONE
    };
    let (core, job) = job_bus(policies, |b| b);
    let (tx, rx) = std::sync::mpsc::channel();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    job.on(move |n| {
        if counter.fetch_add(1, Ordering::SeqCst) == 0 {
            return Err("first try fails");
        }
        tx.send(*n).unwrap();
        Ok(())
    });
    let _failures = failures(&core);
    job.emit(1);
    job.emit(2);
    // Debounced to 2, failed once, retried: all on the internal runtime's thread. The timeout
    // only bounds a broken run; nothing is measured.
    assert_eq!(rx.recv_timeout(Duration::from_secs(60)), Ok(2));

    // `shutdown()` can be awaited from any executor: here a runtime the bus does not use.
    let report = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .unwrap()
        .block_on(core.shutdown());
    assert!(report.is_clean());
}

// ---------------------------------------------------------------------------------------------
// Builder checks

#[test]
fn the_builder_rejects_bad_values_with_the_event_name() {
    let manifest = eventbus_runtime::__doc::manifest_with(&[("job", Some("u32"), Policies::NONE)]);
    let error =
        |configure: fn(eventbus_runtime::EventOptions) -> eventbus_runtime::EventOptions| {
            BusCore::builder(manifest)
                .event("job", configure)
                .build()
                .unwrap_err()
                .to_string()
        };
    assert_eq!(
        error(|e| e.retry(Retry {
            attempts: 0,
            backoff: ms(1),
            max_backoff: ms(1)
        })),
        "event `job`: `retry.attempts` counts the first attempt and must be at least 1"
    );
    assert!(
        error(|e| e.rate_limit(RateLimit {
            count: 0,
            per: ms(1),
            burst: 1
        }))
        .starts_with("event `job`: `rate_limit` needs count ≥ 1")
    );
    assert_eq!(
        error(|e| e.throttle(Duration::ZERO)),
        "event `job`: `throttle` must be longer than 0"
    );
    assert!(
        error(|e| e.circuit_breaker(CircuitBreakerConfig {
            failure_rate_threshold: 120.0,
            ..CircuitBreakerConfig::default()
        }))
        .contains("failure_rate_threshold")
    );
    let unknown = BusCore::builder(manifest)
        .event("jbo", |e| e)
        .build()
        .unwrap_err();
    assert_eq!(
        unknown,
        BuildError::UnknownEvent {
            name: "jbo".into(),
            suggestion: Some("job")
        }
    );
}

// ---------------------------------------------------------------------------------------------
// Failures through `tracing`

#[cfg(feature = "tracing")]
#[path = "support/recorder.rs"]
mod recorder;

#[cfg(feature = "tracing")]
mod traced {
    use super::recorder::{Logged, Recorder};
    use super::*;
    use tracing::Level;

    // The paused test runtime runs on this thread, retries included, so the thread's default
    // subscriber sees every failure.
    #[tokio::test(start_paused = true)]
    async fn failures_are_logged_as_a_warning_while_retried_then_as_an_error() {
        // Registers the bus's two callsites before the recorder is installed (see
        // `Recorder::install`).
        {
            let (core, job) = job_bus(with_retry(RETRY_2), |b| b);
            core.on_failure(|_| ());
            job.on(|_| Err::<(), _>("warm-up"));
            job.emit(0);
            sleep(ms(150)).await;
        }
        let (recorder, _default) = Recorder::install();
        let (core, job) = job_bus(with_retry(RETRY_2), |b| b);
        // Again after building the bus: without it the warning was missed in most runs of
        // the whole binary.
        tracing::callsite::rebuild_interest_cache();
        job.on_labeled("mailer", |_| Err::<(), _>("smtp down"));
        job.emit(7);
        sleep(ms(150)).await;

        let logged: Vec<Logged> = recorder.take("eventbus");
        let levels: Vec<Level> = logged.iter().map(|l| l.level).collect();
        assert_eq!(levels, [Level::WARN, Level::ERROR], "{logged:#?}");
        for (entry, attempt) in logged.iter().zip(["1", "2"]) {
            assert_eq!(entry.field("event"), "job");
            assert_eq!(entry.field("handler"), "mailer");
            assert_eq!(entry.field("attempt"), attempt);
            assert_eq!(entry.field("error"), "smtp down");
            assert_eq!(entry.field("payload"), "7");
        }
        assert_eq!(logged[0].field("retry_in_ms"), "100");
        // No retry follows the last attempt: the field is left out.
        assert!(!logged[1].fields.contains_key("retry_in_ms"));
        assert_eq!(logged[1].field("kind"), "returned");
        // The error names the dead letter the event went to.
        let letter = core.dead_letters().list().unwrap()[0].id;
        assert_eq!(logged[1].field("dead_letter"), letter.to_string());
    }
}

// ---------------------------------------------------------------------------------------------
// Permanent errors

#[tokio::test(start_paused = true)]
async fn a_permanent_error_skips_the_remaining_retries_and_goes_to_the_dead_letters() {
    let (core, job) = job_bus(with_retry(RETRY_3), |b| b);
    let failures = failures(&core);
    let calls = Arc::new(Mutex::new(Vec::new()));
    let (sync_calls, async_calls, flaky_calls) = (calls.clone(), calls.clone(), calls.clone());
    job.on_labeled("validator", move |n| {
        sync_calls.lock().unwrap().push(("validator", *n));
        Err(HandlerFailure::permanent(format!("{n} is not a valid job")))
    });
    job.on_async_with(HandlerOptions::new().label("importer"), move |n| {
        async_calls.lock().unwrap().push(("importer", n));
        async move { Err::<(), _>(HandlerFailure::permanent("schema mismatch")) }
    });
    // The same policy, an ordinary error: retried.
    job.on_labeled("flaky", move |n| {
        flaky_calls.lock().unwrap().push(("flaky", *n));
        Err::<(), _>("timeout")
    });
    job.emit(7);
    sleep(ms(1000)).await; // past every backoff of RETRY_3 (100 + 200 ms)

    let mut seen = taken(&calls);
    seen.sort();
    assert_eq!(
        seen,
        [
            ("flaky", 7),
            ("flaky", 7),
            ("flaky", 7),
            ("importer", 7),
            ("validator", 7)
        ],
        "the permanent failures ran once, the other three times"
    );
    let mut letters: Vec<(Option<String>, u32, String)> = core
        .dead_letters()
        .list()
        .unwrap()
        .into_iter()
        .map(|l| (l.handler, l.attempts, l.error))
        .collect();
    letters.sort();
    assert_eq!(
        letters,
        [
            (Some("flaky".into()), 3, "timeout".into()),
            (Some("importer".into()), 1, "schema mismatch".into()),
            (Some("validator".into()), 1, "7 is not a valid job".into()),
        ]
    );
    let permanent: Vec<_> = taken(&failures)
        .into_iter()
        .filter(|f| f.handler() != "flaky")
        .map(|f| (f.attempt(), f.retry_in(), f.dead_letter().is_some()))
        .collect();
    assert_eq!(permanent, [(1, None, true), (1, None, true)]);
}

// ---------------------------------------------------------------------------------------------
// Async batch handlers

#[tokio::test(start_paused = true)]
async fn async_batches_arrive_as_vecs_when_full_or_when_their_window_closes() {
    // The manifest's `batch` policy applies to async batch handlers too.
    let policies = Policies {
        batch: Some(Batch {
            max_size: 3,
            max_wait: ms(50),
        }),
        ..Policies::NONE
    };
    let (core, job) = job_bus(policies, |b| b.instrument(true));
    let failures = failures(&core);
    let (batches, sink) = recorder::<Vec<u32>>();
    job.on_batch_async(move |batch: Vec<u32>| {
        let sink = sink.clone();
        async move {
            sleep(ms(1)).await;
            sink.lock().unwrap().push(batch);
        }
    });
    for n in 1..=7 {
        job.emit(n);
    }
    // `emit` only handed the full batches to the runtime; nothing ran on this thread.
    assert!(taken(&batches).is_empty());
    sleep(ms(2)).await;
    assert_eq!(taken(&batches), [vec![1, 2, 3], vec![4, 5, 6]]);
    sleep(ms(46)).await; // t = 48ms: the window of [7] is still open
    assert_eq!(taken(&batches).len(), 2);
    sleep(ms(4)).await; // t = 52ms: closed at 50ms, delivered at 51ms
    assert_eq!(taken(&batches), [vec![1, 2, 3], vec![4, 5, 6], vec![7]]);
    assert!(taken(&failures).is_empty());
    let stats = core.stats();
    assert_eq!(stats.event("job").unwrap().handlers[0].delivered, 3);
}

#[tokio::test(start_paused = true)]
async fn async_batches_share_the_concurrency_and_queue_rules_of_async_handlers() {
    let (core, job) = job_bus(Policies::NONE, |b| b);
    let failures = failures(&core);
    let running = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(AtomicUsize::new(0));
    let (done, sink) = recorder::<Vec<u32>>();
    let (r, p) = (running.clone(), peak.clone());
    let options = HandlerOptions::new()
        .label("bulk")
        .batch(Batch {
            max_size: 2,
            max_wait: Duration::from_secs(60),
        })
        .concurrency(1)
        .queue(1);
    job.on_batch_async_with(options, move |batch: Vec<u32>| {
        let (running, peak, sink) = (r.clone(), p.clone(), sink.clone());
        async move {
            peak.fetch_max(running.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
            sleep(ms(100)).await;
            running.fetch_sub(1, Ordering::SeqCst);
            sink.lock().unwrap().push(batch);
        }
    });
    for n in 1..=6 {
        job.emit(n);
    }
    // [1, 2] runs, [3, 4] waits, [5, 6] finds the queue full: dead-lettered whole.
    let overflow = taken(&failures);
    assert_eq!(overflow.len(), 1);
    assert_eq!(
        (
            overflow[0].kind(),
            overflow[0].handler(),
            overflow[0].payload()
        ),
        (FailureKind::Overflow, "bulk", &json!([5, 6]))
    );
    assert_eq!(
        overflow[0].error(),
        "the handler's queue is full (1 batches waiting for 1 running calls)"
    );
    let letter = core.dead_letters().list().unwrap().remove(0);
    assert!(letter.batch);
    assert_eq!(
        (letter.reason, letter.payload.clone()),
        (DeadLetterReason::Overflow, json!([5, 6]))
    );
    sleep(ms(101)).await;
    assert_eq!(taken(&done), [vec![1, 2]]);
    sleep(ms(100)).await;
    assert_eq!(taken(&done), [vec![1, 2], vec![3, 4]]);
    assert_eq!(peak.load(Ordering::SeqCst), 1);

    // Re-dispatched as one batch, to the same handler.
    core.dead_letters().redispatch(letter.id).unwrap();
    sleep(ms(101)).await;
    assert_eq!(taken(&done), [vec![1, 2], vec![3, 4], vec![5, 6]]);
}

#[tokio::test(start_paused = true)]
async fn a_failing_async_batch_is_retried_in_place_then_dead_lettered_whole() {
    let policies = Policies {
        batch: Some(Batch {
            max_size: 2,
            max_wait: Duration::from_secs(60),
        }),
        retry: Some(RETRY_3),
        ..Policies::NONE
    };
    let (core, job) = job_bus(policies, |b| b);
    let failures = failures(&core);
    let healthy = Arc::new(AtomicUsize::new(0));
    let flag = healthy.clone();
    let (calls, sink) = recorder::<(Vec<u32>, bool)>();
    job.on_batch_async_with(
        HandlerOptions::new().label("bulk-insert"),
        move |batch: Vec<u32>| {
            let ok = flag.load(Ordering::SeqCst) == 1;
            sink.lock().unwrap().push((batch, ok));
            async move { if ok { Ok(()) } else { Err("insert failed") } }
        },
    );
    job.emit(1);
    job.emit(2);
    sleep(ms(1)).await;
    assert_eq!(taken(&calls).len(), 1);
    sleep(ms(98)).await; // t = 99ms
    assert_eq!(taken(&calls).len(), 1);
    sleep(ms(2)).await; // t = 101ms: backoff 100ms
    assert_eq!(taken(&calls).len(), 2);
    sleep(ms(198)).await; // t = 299ms
    assert_eq!(taken(&calls).len(), 2);
    sleep(ms(2)).await; // t = 301ms: backoff 200ms
    assert_eq!(
        taken(&calls),
        [
            (vec![1, 2], false),
            (vec![1, 2], false),
            (vec![1, 2], false)
        ],
        "every attempt gets the whole batch"
    );

    let failures = taken(&failures);
    let summary: Vec<_> = failures
        .iter()
        .map(|f| (f.kind(), f.attempt(), f.payload().clone(), f.retry_in()))
        .collect();
    assert_eq!(
        summary,
        [
            (FailureKind::Returned, 1, json!([1, 2]), Some(ms(100))),
            (FailureKind::Returned, 2, json!([1, 2]), Some(ms(200))),
            (FailureKind::Returned, 3, json!([1, 2]), None),
        ]
    );
    let letter = core
        .dead_letters()
        .get(failures[2].dead_letter().unwrap())
        .unwrap()
        .unwrap();
    assert!(letter.batch);
    assert_eq!(
        (
            letter.handler.as_deref(),
            letter.reason,
            letter.attempts,
            letter.payload.clone()
        ),
        (
            Some("bulk-insert"),
            DeadLetterReason::Failed,
            3,
            json!([1, 2])
        )
    );
    assert_eq!(core.dead_letters().len().unwrap(), 1);

    healthy.store(1, Ordering::SeqCst);
    core.dead_letters().redispatch(letter.id).unwrap();
    sleep(ms(1)).await;
    assert_eq!(taken(&calls).last(), Some(&(vec![1, 2], true)));
    assert!(core.dead_letters().is_empty().unwrap());
}

#[tokio::test(start_paused = true)]
async fn shutdown_delivers_the_partial_async_batch_and_drains_its_call() {
    let policies = Policies {
        batch: Some(Batch {
            max_size: 100,
            max_wait: Duration::from_secs(60),
        }),
        ..Policies::NONE
    };
    let (core, job) = job_bus(policies, |b| b);
    let (done, sink) = recorder::<Vec<u32>>();
    job.on_batch_async(move |batch: Vec<u32>| {
        let sink = sink.clone();
        async move {
            sleep(Duration::from_secs(5)).await;
            sink.lock().unwrap().push(batch);
        }
    });
    job.emit(1);
    job.emit(2);
    let report = core.shutdown_with_timeout(Duration::from_secs(10)).await;
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(taken(&done), [vec![1, 2]]);
    assert!(core.dead_letters().is_empty().unwrap());

    // A call that misses the deadline is abandoned with its whole batch.
    let (core, job) = job_bus(policies, |b| b);
    job.on_batch_async_with(HandlerOptions::new().label("slow"), |_batch: Vec<u32>| {
        sleep(Duration::from_secs(3600))
    });
    job.emit(3);
    job.emit(4);
    let report = core.shutdown_with_timeout(Duration::from_secs(10)).await;
    assert!(report.timed_out);
    assert_eq!(report.unfinished.len(), 1);
    let letter = core
        .dead_letters()
        .get(report.unfinished[0].dead_letter.unwrap())
        .unwrap()
        .unwrap();
    assert!(letter.batch);
    assert_eq!(
        (letter.reason, letter.payload),
        (DeadLetterReason::ShutDown, json!([3, 4]))
    );
}

// ---------------------------------------------------------------------------------------------
// Timeouts of async handlers

/// Counts the futures of a handler dropped before they finished.
struct DropCounter(Arc<AtomicUsize>);

impl Drop for DropCounter {
    fn drop(&mut self) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

/// `BusBuilder::handler_timeout` applies to async handlers that set no timeout of their own.
#[tokio::test(start_paused = true)]
async fn the_bus_wide_handler_timeout_applies_unless_a_handler_sets_its_own() {
    let (core, job) = job_bus(Policies::NONE, |b| {
        b.handler_timeout(Duration::from_secs(1))
    });
    let failures = failures(&core);
    let finished = Arc::new(AtomicUsize::new(0));
    for (label, options) in [
        ("default", HandlerOptions::new()),
        (
            "own",
            HandlerOptions::new().timeout(Duration::from_secs(10)),
        ),
    ] {
        let finished = finished.clone();
        job.on_async_with(options.label(label), move |_n: u32| {
            let finished = finished.clone();
            async move {
                sleep(Duration::from_secs(2)).await;
                finished.fetch_add(1, Ordering::SeqCst);
            }
        });
    }
    job.emit(7);
    sleep(ms(999)).await;
    assert!(taken(&failures).is_empty(), "not before the limit");
    sleep(ms(2)).await; // t = 1001ms: the bus-wide limit passed
    let failed = taken(&failures);
    assert_eq!(failed.len(), 1, "{failed:#?}");
    assert_eq!(
        (failed[0].handler(), failed[0].kind()),
        ("default", FailureKind::Timeout)
    );
    sleep(ms(1000)).await; // t = 2001ms: the handler with its own limit finished
    assert_eq!(finished.load(Ordering::SeqCst), 1);
    assert_eq!(taken(&failures).len(), 1, "no other failure");
}

#[tokio::test(start_paused = true)]
async fn an_async_call_past_its_timeout_is_cancelled_retried_then_dead_lettered() {
    let (core, job) = job_bus(with_retry(RETRY_2), |b| b);
    let failures = failures(&core);
    let started = Arc::new(AtomicUsize::new(0));
    let finished = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicUsize::new(0));
    let (s, f, d) = (started.clone(), finished.clone(), dropped.clone());
    job.on_async_with(
        HandlerOptions::new()
            .label("webhook")
            .timeout(Duration::from_secs(1)),
        move |_n: u32| {
            s.fetch_add(1, Ordering::SeqCst);
            let (finished, guard) = (f.clone(), DropCounter(d.clone()));
            async move {
                let _guard = guard;
                sleep(Duration::from_secs(3600)).await;
                finished.fetch_add(1, Ordering::SeqCst);
            }
        },
    );
    job.emit(7);
    sleep(ms(999)).await;
    assert_eq!(started.load(Ordering::SeqCst), 1);
    assert!(taken(&failures).is_empty(), "not before the limit");
    assert_eq!(dropped.load(Ordering::SeqCst), 0);
    sleep(ms(2)).await; // t = 1001ms: the first attempt timed out
    assert_eq!(dropped.load(Ordering::SeqCst), 1, "its future was dropped");
    let first = taken(&failures);
    assert_eq!(first.len(), 1);
    assert_eq!(
        (first[0].kind(), first[0].attempt(), first[0].retry_in()),
        (FailureKind::Timeout, 1, Some(ms(100)))
    );
    assert_eq!(
        first[0].to_string(),
        "webhook of event `job` timed out (attempt 1): the call did not finish within its \
         timeout of 1s and was cancelled (HandlerOptions::timeout)"
    );
    sleep(ms(98)).await; // t = 1099ms
    assert_eq!(started.load(Ordering::SeqCst), 1);
    sleep(ms(2)).await; // t = 1101ms: the retry started at 1100ms
    assert_eq!(started.load(Ordering::SeqCst), 2);
    sleep(ms(998)).await; // t = 2099ms
    assert_eq!(taken(&failures).len(), 1);
    sleep(ms(2)).await; // t = 2101ms: the retry timed out at 2100ms
    let failures = taken(&failures);
    assert_eq!(failures.len(), 2);
    assert_eq!(
        (
            failures[1].kind(),
            failures[1].attempt(),
            failures[1].retry_in()
        ),
        (FailureKind::Timeout, 2, None)
    );
    let letter = core
        .dead_letters()
        .get(failures[1].dead_letter().unwrap())
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            letter.handler.as_deref(),
            letter.reason,
            letter.attempts,
            letter.payload.clone()
        ),
        (Some("webhook"), DeadLetterReason::Failed, 2, json!(7))
    );
    assert!(letter.error.contains("timeout of 1s"), "{}", letter.error);
    assert_eq!(finished.load(Ordering::SeqCst), 0);
    assert_eq!(dropped.load(Ordering::SeqCst), 2);
    assert_eq!(core.stats().event("job").unwrap().failed, 2);
}

#[tokio::test(start_paused = true)]
async fn a_call_that_finishes_within_its_timeout_is_not_affected() {
    let (core, job) = job_bus(with_retry(RETRY_3), |b| b);
    let failures = failures(&core);
    let (done, sink) = recorder::<(u32, u32)>();
    let calls = Arc::new(AtomicUsize::new(0));
    let counter = calls.clone();
    // Each attempt stays under the limit; together with the backoff they take longer (1.7s),
    // and that is fine: the limit is per attempt.
    job.on_async_with(
        HandlerOptions::new().timeout(Duration::from_secs(1)),
        move |n: u32| {
            let call = counter.fetch_add(1, Ordering::SeqCst) as u32 + 1;
            let sink = sink.clone();
            async move {
                sleep(ms(800)).await;
                if call == 1 {
                    return Err("first attempt fails");
                }
                sink.lock().unwrap().push((n, call));
                Ok(())
            }
        },
    );
    job.emit(5);
    sleep(Duration::from_secs(3)).await;
    assert_eq!(taken(&done), [(5, 2)]);
    let failures = taken(&failures);
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].kind(), FailureKind::Returned);
    assert!(core.dead_letters().is_empty().unwrap());
}

#[tokio::test(start_paused = true)]
async fn an_async_batch_past_its_timeout_is_dead_lettered_whole() {
    let (core, job) = job_bus(Policies::NONE, |b| b);
    let failures = failures(&core);
    let options = HandlerOptions::new()
        .label("bulk")
        .batch(Batch {
            max_size: 2,
            max_wait: Duration::from_secs(60),
        })
        .timeout(ms(500));
    job.on_batch_async_with(options, |_batch: Vec<u32>| sleep(Duration::from_secs(3600)));
    job.emit(1);
    job.emit(2);
    sleep(ms(499)).await;
    assert!(taken(&failures).is_empty());
    sleep(ms(2)).await;
    let failures = taken(&failures);
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].kind(), FailureKind::Timeout);
    assert!(failures[0].error().contains("timeout of 500ms"));
    let letter = core.dead_letters().list().unwrap().remove(0);
    assert!(letter.batch);
    assert_eq!(letter.payload, json!([1, 2]));
}

#[test]
fn a_zero_timeout_is_refused_with_what_to_do() {
    let panic =
        std::panic::catch_unwind(|| HandlerOptions::new().timeout(Duration::ZERO)).unwrap_err();
    assert_eq!(
        panic.downcast_ref::<&str>().copied(),
        Some("eventbus: a handler timeout must be longer than zero (leave it unset for none)")
    );
}
