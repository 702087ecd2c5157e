//! Instructions per emit, counted by callgrind rather than timed: the same figure on a loaded
//! machine as on an idle one. Run by `benches/emit.py --instructions`, or by hand:
//!
//!     cargo bench -p eventbus-runtime --bench emit_instructions --no-run
//!     valgrind --tool=callgrind --callgrind-out-file=/dev/null <bench binary> eventbus 10 100000 small
//!
//! Arguments: `eventbus` or `direct`, the listener count, the number of emits, and the payload
//! (`small` or `package`, as in `benches/emit.rs`). The script runs each case twice with
//! different emit counts and divides the difference, so set-up cost drops out.

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
            let event: Event<T> = Event::new(&core, &EVENTS[event]);
            for _ in 0..listeners {
                let counter = counter.clone();
                event.on(move |_: &T| increment(&counter));
            }
            for _ in 0..emits {
                event.emit_ref(black_box(&payload));
            }
        }
        "direct" => {
            let direct: Direct<T> = (0..listeners)
                .map(|_| {
                    let counter = counter.clone();
                    Box::new(move |_: &T| increment(&counter)) as Box<dyn Fn(&T) + Send + Sync>
                })
                .collect();
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
