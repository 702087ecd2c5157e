//! The `metrics` facade sees what the bus counts, checked with a real recorder
//! (`metrics-util`'s `DebuggingRecorder`, installed for this thread only).

#![cfg(all(feature = "metrics", feature = "async"))]

use std::time::Duration;

use eventbus_runtime::{BusCore, Event, Jitter, Policies, Retry, metric_names};
use metrics_util::debugging::{DebugValue, DebuggingRecorder};

type Snapshot = Vec<(String, Vec<(String, String)>, DebugValue)>;

fn snapshot(recorder: &DebuggingRecorder) -> Snapshot {
    recorder
        .snapshotter()
        .snapshot()
        .into_vec()
        .into_iter()
        .map(|(key, _, _, value)| {
            let key = key.key();
            let labels = key
                .labels()
                .map(|l| (l.key().to_owned(), l.value().to_owned()))
                .collect();
            (key.name().to_owned(), labels, value)
        })
        .collect()
}

fn labels(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn counter(snapshot: &Snapshot, name: &str, with: &[(&str, &str)]) -> u64 {
    let want = labels(with);
    match snapshot.iter().find(|(n, l, _)| n == name && *l == want) {
        Some((_, _, DebugValue::Counter(n))) => *n,
        other => panic!("no counter {name} {want:?}: {other:?}"),
    }
}

fn gauge(snapshot: &Snapshot, name: &str, with: &[(&str, &str)]) -> f64 {
    let want = labels(with);
    match snapshot.iter().find(|(n, l, _)| n == name && *l == want) {
        Some((_, _, DebugValue::Gauge(v))) => v.into_inner(),
        other => panic!("no gauge {name} {want:?}: {other:?}"),
    }
}

#[test]
fn an_instrumented_bus_reports_every_metric() {
    let recorder = DebuggingRecorder::new();
    metrics::with_local_recorder(&recorder, || {
        let policies = Policies {
            retry: Some(Retry {
                attempts: 2,
                backoff: Duration::from_millis(10),
                max_backoff: Duration::from_millis(10),
            }),
            ..Policies::NONE
        };
        let manifest = eventbus_runtime::__doc::manifest_with(&[("job", Some("u32"), policies)]);
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .start_paused(true)
            .build()
            .unwrap();
        let core = BusCore::builder(manifest)
            .instrument(true)
            .jitter(Jitter::None)
            .runtime(runtime.handle().clone())
            .build()
            .unwrap();
        core.on_failure(|_| {});
        let job: Event<u32> = Event::new(&core, manifest.event("job").unwrap());
        job.on_labeled("ok", |_| ());
        job.on_labeled("odd", |n| if n % 2 == 1 { Err("odd") } else { Ok(()) });
        for n in 0..4 {
            job.emit(n);
        }
        // Two odd emits failed, were retried once each, failed again and were dead-lettered.
        runtime.block_on(async { tokio::time::sleep(Duration::from_millis(100)).await });

        let snapshot = snapshot(&recorder);
        let job = [("event", "job")];
        assert_eq!(counter(&snapshot, metric_names::EMITTED, &job), 4);
        assert_eq!(counter(&snapshot, metric_names::DELIVERED, &job), 6);
        assert_eq!(counter(&snapshot, metric_names::FAILED, &job), 4);
        assert_eq!(counter(&snapshot, metric_names::RETRIED, &job), 2);
        assert_eq!(counter(&snapshot, metric_names::DEAD_LETTERED, &job), 2);
        assert_eq!(gauge(&snapshot, metric_names::LISTENERS, &job), 2.0);
        assert_eq!(gauge(&snapshot, metric_names::DEAD_LETTERS, &[]), 2.0);
        let latencies = snapshot
            .iter()
            .find_map(|(n, l, v)| {
                (n == metric_names::HANDLER_DURATION
                    && *l == labels(&[("event", "job"), ("handler", "odd")]))
                .then_some(v)
            })
            .expect("a latency histogram per handler");
        // Four first calls and two retries of the "odd" handler.
        assert!(
            matches!(latencies, DebugValue::Histogram(v) if v.len() == 6),
            "{latencies:?}"
        );

        // The gauge follows the dead-letter queue down.
        let id = core.dead_letters().list().unwrap()[0].id;
        core.dead_letters().discard(id).unwrap();
        let snapshot = self::snapshot(&recorder);
        assert_eq!(gauge(&snapshot, metric_names::DEAD_LETTERS, &[]), 1.0);
    });
}

#[test]
fn an_uninstrumented_bus_still_reports_failures_but_not_throughput() {
    let recorder = DebuggingRecorder::new();
    metrics::with_local_recorder(&recorder, || {
        let manifest = eventbus_runtime::__doc::manifest(&[("job", Some("u32"))]);
        let core = BusCore::new(manifest);
        core.on_failure(|_| {});
        let job: Event<u32> = Event::new(&core, manifest.event("job").unwrap());
        job.on(|_| Err::<(), _>("no"));
        job.emit(1);
        let snapshot = snapshot(&recorder);
        let job = [("event", "job")];
        assert_eq!(counter(&snapshot, metric_names::FAILED, &job), 1);
        assert_eq!(counter(&snapshot, metric_names::DEAD_LETTERED, &job), 1);
        assert_eq!(gauge(&snapshot, metric_names::LISTENERS, &job), 1.0);
        assert!(
            snapshot
                .iter()
                .all(|(n, _, _)| n != metric_names::EMITTED && n != metric_names::HANDLER_DURATION),
            "{snapshot:?}"
        );
        assert!(!core.stats().instrumented);
    });
}

#[test]
fn the_listener_gauge_drops_before_a_once_handler_runs() {
    // Shared with the handler, which must own what it captures.
    let recorder = std::sync::Arc::new(DebuggingRecorder::new());
    let in_handler = recorder.clone();
    metrics::with_local_recorder(&*recorder, || {
        let manifest = eventbus_runtime::__doc::manifest(&[("job", Some("u32"))]);
        let core = BusCore::new(manifest);
        let job: Event<u32> = Event::new(&core, manifest.event("job").unwrap());
        let seen = std::sync::Arc::new(std::sync::Mutex::new(None));
        let (inside, event) = (seen.clone(), job.clone());
        job.once(move |_| {
            let gauge = gauge(
                &snapshot(&in_handler),
                metric_names::LISTENERS,
                &[("event", "job")],
            );
            *inside.lock().unwrap() = Some((gauge, event.listener_count()));
        });
        assert_eq!(
            gauge(
                &snapshot(&recorder),
                metric_names::LISTENERS,
                &[("event", "job")]
            ),
            1.0
        );
        job.emit(1);
        // As if it had unsubscribed before running: the gauge and the count agree.
        assert_eq!(*seen.lock().unwrap(), Some((0.0, 0)));
    });
}
