//! Instructions per emit, counted by callgrind rather than timed: the same figure on a loaded
//! machine as on an idle one. Run by `benches/emit.py --instructions`, or by hand:
//!
//!     cargo bench -p eventbus-runtime --bench emit_instructions --no-run
//!     valgrind --tool=callgrind --callgrind-out-file=/dev/null <bench binary> eventbus 10 100000 small
//!
//! Arguments: `eventbus` or `direct`, the listener count, the number of emits, and the payload
//! (`small` or `package`, as in `benches/emit.rs`). The script runs each case twice with
//! different emit counts and divides the difference, so set-up cost drops out.
//!
//! A third kind, `slices`, times instead of counting: it alternates slices of 2,000 emits
//! through eventbus and through the direct calls, the given number of times, and prints the
//! fastest slice of each in ns per emit. On a machine shared with other work the fastest slice
//! is the one least disturbed, and both sides are measured in the same moments:
//!
//!     <bench binary> slices 10 3000 small

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use eventbus_runtime::{BusCore, Event};

mod common;
use common::{EVENTS, MANIFEST, PackageEvent, Small};

type Direct<T> = Vec<Box<dyn Fn(&T) + Send + Sync>>;

fn increment(counter: &AtomicU64) {
    counter.store(counter.load(Relaxed) + 1, Relaxed);
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` runs every bench binary with `--bench`: nothing to do then.
    let [kind, listeners, emits, payload] = args.as_slice() else {
        return;
    };
    let listeners: usize = listeners.parse().expect("listener count");
    let emits: u64 = emits.parse().expect("emit count");
    match payload.as_str() {
        "small" => run(kind, 0, listeners, emits, Small { value: 42 }),
        "package" => run(
            kind,
            1,
            listeners,
            emits,
            PackageEvent {
                dnp_name: "bitcoin.dnp.dappnode.eth".into(),
                version: "0.1.2".into(),
                operation: "install".into(),
                status: "progress".into(),
                progress: Some(0.5),
            },
        ),
        other => panic!("unknown payload {other}: small or package"),
    }
}

fn run<T: eventbus_runtime::Payload>(
    kind: &str,
    event: usize,
    listeners: usize,
    emits: u64,
    payload: T,
) {
    let counter = Arc::new(AtomicU64::new(0));
    match kind {
        "eventbus" => {
            let core = BusCore::new(&MANIFEST);
            let event = subscribed::<T>(&core, event, listeners, &counter);
            for _ in 0..emits {
                event.emit_ref(black_box(&payload));
            }
        }
        "slices" => {
            let core = BusCore::new(&MANIFEST);
            let event = subscribed::<T>(&core, event, listeners, &counter);
            let direct = direct::<T>(listeners, &counter);
            let slice = 2000u32;
            let (mut best_e, mut best_d) = (f64::MAX, f64::MAX);
            for _ in 0..emits {
                let t = std::time::Instant::now();
                for _ in 0..slice {
                    event.emit_ref(black_box(&payload));
                }
                best_e = best_e.min(t.elapsed().as_nanos() as f64 / slice as f64);
                let t = std::time::Instant::now();
                for _ in 0..slice {
                    let payload = black_box(&payload);
                    for handler in black_box(&direct) {
                        handler(payload);
                    }
                }
                best_d = best_d.min(t.elapsed().as_nanos() as f64 / slice as f64);
            }
            println!(
                "{listeners} eventbus {best_e:.2} direct {best_d:.2} ratio {:.2}",
                best_e / best_d
            );
            return;
        }
        "direct" => {
            let direct = direct::<T>(listeners, &counter);
            for _ in 0..emits {
                let payload = black_box(&payload);
                for handler in black_box(&direct) {
                    handler(payload);
                }
            }
        }
        other => panic!("unknown kind {other}: eventbus or direct"),
    }
    assert_eq!(counter.load(Relaxed), emits * listeners as u64);
}

/// The event with `listeners` handlers, each incrementing `counter`.
fn subscribed<T: eventbus_runtime::Payload>(
    core: &BusCore,
    event: usize,
    listeners: usize,
    counter: &Arc<AtomicU64>,
) -> Event<T> {
    let event: Event<T> = Event::new(core, &EVENTS[event]);
    for _ in 0..listeners {
        let counter = counter.clone();
        event.on(move |_: &T| increment(&counter));
    }
    event
}

/// The same handlers in a plain vector: the limit.
fn direct<T: 'static>(listeners: usize, counter: &Arc<AtomicU64>) -> Direct<T> {
    (0..listeners)
        .map(|_| {
            let counter = counter.clone();
            Box::new(move |_: &T| increment(&counter)) as Box<dyn Fn(&T) + Send + Sync>
        })
        .collect()
}
