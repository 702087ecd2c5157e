//! Async fan-out (issue 9, part 2): a burst of events delivered to N = 1, 10 and 100 async
//! consumers, through our `subscribe()` streams, through our async handlers (`on_async`), and
//! through `tokio::sync::broadcast` with N receivers, with the same payloads. Criterion's
//! throughput is the number of *delivered* events (burst × N), so it reports delivered
//! events per second.
//!
//!     cargo bench -p eventbus-runtime --bench fanout
//!     FANOUT_WORKERS=2 cargo bench -p eventbus-runtime --bench fanout   # multi-thread runtime
//!
//! Setup, the same for the three: a current-thread tokio runtime by default (one thread: the
//! emitter and the consumers take turns, so the figures are the cost of the mechanism, not of
//! cross-core wake-ups on this shared two-core machine; `FANOUT_WORKERS=2` measures those on a
//! multi-thread runtime). The consumers live for the whole benchmark; one
//! iteration emits a burst of `BURST` events and waits until every consumer has received all of
//! them. Every consumer does the same work per event: an increment of its own counter and, at
//! the end of a burst, a decrement of the shared "consumers still busy" count (the last one
//! wakes the emitter). Buffers hold a whole burst (stream and channel capacity, async handler
//! queue), so nothing is dropped as `Lagged` or overflow; a consumer that still sees a `Lagged`
//! is counted and the count is printed at the end (it stays 0 in the measured setup), and a
//! burst not fully delivered within 10 s aborts the benchmark instead of hanging.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use eventbus_runtime::{BusCore, Event, HandlerOptions};
use tokio::runtime::Runtime;
use tokio::sync::{Notify, broadcast};

mod common;
use common::{EVENTS, MANIFEST, PackageEvent, Small};

/// Events per burst (one criterion iteration).
const BURST: usize = 1_000;

/// What every consumer shares: how many consumers have not finished the current burst, and
/// the emitter's wake-up.
struct Round {
    busy: AtomicUsize,
    done: Notify,
    lagged: AtomicU64,
}

impl Round {
    fn new() -> Arc<Self> {
        Arc::new(Round {
            busy: AtomicUsize::new(0),
            done: Notify::new(),
            lagged: AtomicU64::new(0),
        })
    }

    /// One consumer's work for one event: its own count, and the end-of-burst hand-off.
    fn received(&self, counter: &AtomicU64) {
        let seen = counter.fetch_add(1, Relaxed) + 1;
        if seen.is_multiple_of(BURST as u64) && self.busy.fetch_sub(1, Relaxed) == 1 {
            self.done.notify_one();
        }
    }

    /// Emits one burst with `emit` and waits until the `consumers` have received all of it.
    async fn burst(&self, consumers: usize, mut emit: impl FnMut()) {
        self.busy.store(consumers, Relaxed);
        for _ in 0..BURST {
            emit();
        }
        if tokio::time::timeout(Duration::from_secs(10), self.done.notified())
            .await
            .is_err()
        {
            panic!(
                "fanout: a burst was not fully delivered within 10 s ({} consumers busy, {} lagged)",
                self.busy.load(Relaxed),
                self.lagged.load(Relaxed)
            );
        }
    }
}

/// Runs `iters` bursts and returns the time they took.
fn time_bursts(
    rt: &Runtime,
    round: &Round,
    consumers: usize,
    iters: u64,
    mut emit: impl FnMut(),
) -> Duration {
    rt.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            round.burst(consumers, &mut emit).await;
        }
        start.elapsed()
    })
}

fn bench_payload<T>(
    c: &mut Criterion,
    group: &str,
    rt: &Runtime,
    event: &Event<T>,
    payload: T,
) -> u64
where
    T: eventbus_runtime::Payload,
{
    let mut lagged = 0;
    let mut g = c.benchmark_group(group);
    for consumers in [1usize, 10, 100] {
        g.throughput(Throughput::Elements((BURST * consumers) as u64));

        // Our `subscribe()` streams, one task per stream.
        {
            let _guard = rt.enter();
            let round = Round::new();
            let tasks: Vec<_> = (0..consumers)
                .map(|_| {
                    let mut stream = event.subscribe_with_capacity(BURST);
                    let round = round.clone();
                    rt.spawn(async move {
                        let counter = AtomicU64::new(0);
                        while let Some(item) = stream.recv().await {
                            match item {
                                Ok(payload) => {
                                    black_box(&payload);
                                    round.received(&counter);
                                }
                                Err(lag) => {
                                    round.lagged.fetch_add(lag.0, Relaxed);
                                }
                            }
                        }
                    })
                })
                .collect();
            g.bench_with_input(
                BenchmarkId::new("eventbus_stream", consumers),
                &consumers,
                |b, &n| {
                    b.iter_custom(|iters| {
                        time_bursts(rt, &round, n, iters, || event.emit_ref(&payload))
                    })
                },
            );
            // Dropping a stream unsubscribes; the tasks end when their stream closes or here.
            for task in tasks {
                task.abort();
            }
            lagged += round.lagged.load(Relaxed);
        }
        event.remove_all_listeners();

        // Our async handlers (`on_async`), with a queue that holds a whole burst.
        {
            let _guard = rt.enter();
            let round = Round::new();
            for _ in 0..consumers {
                let round = round.clone();
                let counter = Arc::new(AtomicU64::new(0));
                event.on_async_with(HandlerOptions::new().queue(BURST), move |payload: T| {
                    let round = round.clone();
                    let counter = counter.clone();
                    async move {
                        black_box(&payload);
                        round.received(&counter);
                    }
                });
            }
            g.bench_with_input(
                BenchmarkId::new("eventbus_async", consumers),
                &consumers,
                |b, &n| {
                    b.iter_custom(|iters| {
                        time_bursts(rt, &round, n, iters, || event.emit_ref(&payload))
                    })
                },
            );
            event.remove_all_listeners();
        }

        // `tokio::sync::broadcast` with N receivers, one task per receiver.
        {
            let round = Round::new();
            let (tx, _) = broadcast::channel::<T>(BURST);
            let tasks: Vec<_> = (0..consumers)
                .map(|_| {
                    let mut rx = tx.subscribe();
                    let round = round.clone();
                    rt.spawn(async move {
                        let counter = AtomicU64::new(0);
                        loop {
                            match rx.recv().await {
                                Ok(payload) => {
                                    black_box(&payload);
                                    round.received(&counter);
                                }
                                Err(broadcast::error::RecvError::Lagged(n)) => {
                                    round.lagged.fetch_add(n, Relaxed);
                                }
                                Err(broadcast::error::RecvError::Closed) => break,
                            }
                        }
                    })
                })
                .collect();
            g.bench_with_input(
                BenchmarkId::new("tokio_broadcast", consumers),
                &consumers,
                |b, &n| {
                    b.iter_custom(|iters| {
                        time_bursts(rt, &round, n, iters, || {
                            let _ = tx.send(payload.clone());
                        })
                    })
                },
            );
            drop(tx);
            for task in tasks {
                task.abort();
            }
            lagged += round.lagged.load(Relaxed);
        }
    }
    g.finish();
    lagged
}

fn fanout(c: &mut Criterion) {
    // `FANOUT_WORKERS=2`: a multi-thread runtime with that many workers instead (the emitter
    // stays on the bench thread, the consumers run on the workers); groups `fanout_mt/…`.
    let workers: usize = std::env::var("FANOUT_WORKERS")
        .ok()
        .and_then(|w| w.parse().ok())
        .unwrap_or(0);
    let (rt, prefix) = if workers > 0 {
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(workers)
            .enable_time()
            .build();
        (rt, "fanout_mt")
    } else {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build();
        (rt, "fanout")
    };
    let rt = rt.expect("a tokio runtime");
    // The bus takes the runtime it is created in for its async handlers.
    let core = {
        let _guard = rt.enter();
        BusCore::new(&MANIFEST)
    };
    let small: Event<Small> = Event::new(&core, &EVENTS[0]);
    let package: Event<PackageEvent> = Event::new(&core, &EVENTS[1]);
    let mut lagged = bench_payload(
        c,
        &format!("{prefix}/small"),
        &rt,
        &small,
        Small { value: 42 },
    );
    let event = PackageEvent {
        dnp_name: "bitcoin.dnp.dappnode.eth".into(),
        version: "0.1.2".into(),
        operation: "install".into(),
        status: "progress".into(),
        progress: Some(0.5),
    };
    lagged += bench_payload(c, &format!("{prefix}/package_event"), &rt, &package, event);
    println!("fanout: events dropped as Lagged in the measured setup: {lagged}");
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_secs(1));
    targets = fanout
}
criterion_main!(benches);
