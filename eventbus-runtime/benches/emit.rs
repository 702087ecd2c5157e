//! In-process emit: our `Event<T>` against the limit (the same handlers called directly from a
//! `Vec<Box<dyn Fn>>`) with 0, 1, 10 and 100 sync listeners, for a small payload and a realistic
//! `PackageEvent`. Every handler does the same work as the Node anchor's
//! (`benches/node/emitter.mjs`): a plain counter increment (a load and a store, no atomic
//! read-modify-write). `benches/emit.py` runs both and prints the ratios.
//!
//!     cargo bench -p eventbus-runtime --bench emit

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use eventbus_runtime::{BusCore, Event};

mod common;
use common::{EVENTS, MANIFEST, PackageEvent, Small};

type Direct<T> = Vec<Box<dyn Fn(&T) + Send + Sync>>;

fn increment(counter: &AtomicU64) {
    counter.store(counter.load(Relaxed) + 1, Relaxed);
}

fn bench_payload<T>(c: &mut Criterion, group: &str, event: &Event<T>, payload: T)
where
    T: eventbus_runtime::Payload,
{
    let mut g = c.benchmark_group(group);
    for listeners in [0usize, 1, 10, 100] {
        let counter = Arc::new(AtomicU64::new(0));
        event.remove_all_listeners();
        for _ in 0..listeners {
            let counter = counter.clone();
            event.on(move |_: &T| increment(&counter));
        }
        g.bench_with_input(
            BenchmarkId::new("eventbus", listeners),
            &listeners,
            |b, _| b.iter(|| event.emit_ref(black_box(&payload))),
        );
        let direct: Direct<T> = (0..listeners)
            .map(|_| {
                let counter = counter.clone();
                Box::new(move |_: &T| increment(&counter)) as Box<dyn Fn(&T) + Send + Sync>
            })
            .collect();
        g.bench_with_input(BenchmarkId::new("direct", listeners), &listeners, |b, _| {
            b.iter(|| {
                let payload = black_box(&payload);
                for handler in &direct {
                    handler(payload);
                }
            })
        });
        black_box(counter.load(Relaxed));
    }
    g.finish();
}

fn emit(c: &mut Criterion) {
    let core = BusCore::new(&MANIFEST);
    let small: Event<Small> = Event::new(&core, &EVENTS[0]);
    let package: Event<PackageEvent> = Event::new(&core, &EVENTS[1]);
    bench_payload(c, "emit/small", &small, Small { value: 42 });
    let event = PackageEvent {
        dnp_name: "bitcoin.dnp.dappnode.eth".into(),
        version: "0.1.2".into(),
        operation: "install".into(),
        status: "progress".into(),
        progress: Some(0.5),
    };
    bench_payload(c, "emit/package_event", &package, event);
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(30)
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = emit
}
criterion_main!(benches);
