//! `emit` to sync handlers allocates nothing, proven with a counting global allocator.
//!
//! The counter is thread-local, so allocations by other tests running in parallel in this
//! binary do not disturb the count.

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use eventbus_runtime::{BusCore, Event, Signal};
use serde::{Deserialize, Serialize};

struct CountingAllocator;

thread_local! {
    // `const` and `Cell<u64>`: no lazy initialisation and no destructor, so using it from inside
    // the allocator cannot allocate or recurse.
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count_one() {
    // `try_with`: the slot may already be gone while the thread is shutting down.
    let _ = ALLOCATIONS.try_with(|n| n.set(n.get() + 1));
}

// SAFETY: every method forwards to `System` unchanged; counting touches only a thread-local
// `Cell`.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_one();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_one();
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded with the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: CountingAllocator = CountingAllocator;

/// The number of allocations `f` makes on this thread.
fn allocations_during(f: impl FnOnce()) -> u64 {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Tick {
    height: u64,
    peers: u32,
}

#[test]
fn the_counter_sees_allocations() {
    // Guards the other test against a counter that never counts.
    assert!(allocations_during(|| drop(black_box(Box::new(black_box(7_u64))))) >= 1);
    assert!(allocations_during(|| drop(black_box(vec![1_u8; 64]))) >= 1);
}

#[test]
fn emit_to_sync_handlers_allocates_nothing() {
    let manifest = eventbus_runtime::__doc::manifest(&[
        ("tick", Some("Tick")),
        ("ready", None),
        ("idle", Some("u32")),
    ]);
    // Explicitly uninstrumented: the fast path.
    let core = BusCore::builder(manifest)
        .instrument(false)
        .build()
        .unwrap();
    let tick: Event<Tick> = Event::new(&core, manifest.event("tick").unwrap());
    let ready = Signal::new(&core, manifest.event("ready").unwrap());
    let idle: Event<u32> = Event::new(&core, manifest.event("idle").unwrap());

    let sum = Arc::new(AtomicU64::new(0));
    let (a, b, c) = (sum.clone(), sum.clone(), sum.clone());
    tick.on(move |t| {
        a.fetch_add(t.height, Ordering::Relaxed);
    });
    tick.on(move |t| {
        b.fetch_add(u64::from(t.peers), Ordering::Relaxed);
    });
    // A fallible handler that succeeds: its `Ok` must not allocate either.
    tick.on(move |t| {
        c.fetch_add(1, Ordering::Relaxed);
        if t.peers == u32::MAX {
            return Err("never");
        }
        Ok(())
    });
    let signals = Arc::new(AtomicU64::new(0));
    for _ in 0..3 {
        let signals = signals.clone();
        ready.on(move || {
            signals.fetch_add(1, Ordering::Relaxed);
        });
    }

    // Warm-up: first use of the snapshot machinery on this thread registers thread-local
    // state once.
    for i in 0..10 {
        tick.emit(Tick {
            height: i,
            peers: 1,
        });
        ready.emit();
        idle.emit(0);
    }
    sum.store(0, Ordering::Relaxed);
    signals.store(0, Ordering::Relaxed);

    let allocations = allocations_during(|| {
        for i in 0..1000 {
            tick.emit(Tick {
                height: i,
                peers: 2,
            });
            ready.emit();
            idle.emit(black_box(i as u32));
        }
    });
    assert_eq!(allocations, 0, "emit allocated");
    // The handlers really ran: 0+…+999 heights, 2 peers and 1 per tick, 3 signal handlers.
    assert_eq!(sum.load(Ordering::Relaxed), 499_500 + 2_000 + 1_000);
    assert_eq!(signals.load(Ordering::Relaxed), 3_000);
}

/// An emit that finds a replaced listener snapshot ready to free (a reader on another thread
/// held it when a listener was added) frees it without allocating. This happened by chance
/// when other tests ran alongside; here it is forced.
#[test]
fn an_emit_that_frees_a_replaced_snapshot_allocates_nothing() {
    let manifest =
        eventbus_runtime::__doc::manifest(&[("tick", Some("Tick")), ("hold", Some("u32"))]);
    let core = BusCore::new(manifest);
    let tick: Event<Tick> = Event::new(&core, manifest.event("tick").unwrap());
    let hold: Event<u32> = Event::new(&core, manifest.event("hold").unwrap());
    let (entered_tx, entered) = std::sync::mpsc::channel();
    let (release, released) = std::sync::mpsc::channel::<()>();
    let released = std::sync::Mutex::new(released);
    hold.on(move |_| {
        entered_tx.send(()).unwrap();
        released.lock().unwrap().recv().unwrap();
    });
    // Another thread stays inside a read section (its handler waits)...
    let holder = std::thread::spawn(move || hold.emit(1));
    entered.recv().unwrap();
    // ...while `tick`'s snapshot is replaced: the old one must wait for that thread.
    let sum = Arc::new(AtomicU64::new(0));
    let adder = sum.clone();
    tick.on(move |t| {
        adder.fetch_add(t.height, Ordering::Relaxed);
    });
    release.send(()).unwrap();
    holder.join().unwrap();
    let allocations = allocations_during(|| {
        for i in 0..100 {
            tick.emit(Tick {
                height: black_box(i),
                peers: 1,
            });
        }
    });
    assert_eq!(
        allocations, 0,
        "emit allocated while freeing the old snapshot"
    );
    assert_eq!(sum.load(Ordering::Relaxed), 4_950);
}

#[test]
fn instrumented_emit_allocates_nothing_either() {
    let manifest = eventbus_runtime::__doc::manifest(&[("tick", Some("Tick"))]);
    let core = BusCore::builder(manifest).instrument(true).build().unwrap();
    let tick: Event<Tick> = Event::new(&core, manifest.event("tick").unwrap());
    let sum = Arc::new(AtomicU64::new(0));
    let adder = sum.clone();
    tick.on_labeled("adder", move |t| {
        adder.fetch_add(t.height, Ordering::Relaxed);
    });
    for i in 0..10 {
        tick.emit(Tick {
            height: i,
            peers: 1,
        });
    }
    let allocations = allocations_during(|| {
        for i in 0..1000 {
            tick.emit(Tick {
                height: black_box(i),
                peers: 1,
            });
        }
    });
    assert_eq!(allocations, 0, "instrumented emit allocated");
    let stats = core.stats();
    let tick_stats = stats.event("tick").unwrap();
    assert_eq!((tick_stats.emitted, tick_stats.delivered), (1010, 1010));
}

/// A slow `subscribe()` consumer costs no memory: emits into its full buffer overwrite the
/// oldest item in place.
#[cfg(feature = "async")]
#[test]
fn emit_into_a_lagging_stream_allocates_nothing() {
    let manifest = eventbus_runtime::__doc::manifest(&[("tick", Some("Tick"))]);
    let core = BusCore::builder(manifest)
        .instrument(false)
        .build()
        .unwrap();
    let tick: Event<Tick> = Event::new(&core, manifest.event("tick").unwrap());
    let mut stream = tick.subscribe_with_capacity(64);
    for i in 0..100 {
        tick.emit(Tick {
            height: i,
            peers: 1,
        });
    }
    let allocations = allocations_during(|| {
        for i in 0..100_000 {
            tick.emit(Tick {
                height: black_box(i),
                peers: 1,
            });
        }
    });
    assert_eq!(allocations, 0, "emit into a full stream allocated");
    assert_eq!(stream.len(), 64);
    assert_eq!(
        stream.try_recv().map(|r| r.map(|t| t.height)),
        Some(Err(eventbus_runtime::Lagged(100_100 - 64)))
    );
    assert_eq!(
        stream.try_recv().map(|r| r.map(|t| t.height)),
        Some(Ok(100_000 - 64))
    );
}
