//! The listener list of one event: who gets called, in which order, and how emitters read it.
//!
//! Emitters read a lock-free snapshot of the current listener list (an [`Rcu`]: a read is a
//! store to the thread's own slot, no atomic read-modify-write) and never take a lock.
//! Subscribing and unsubscribing copy the list and swap in the new one, serialised by a
//! writer-only mutex that emitters never touch. Handlers never run while that mutex is held, so
//! a handler may subscribe, unsubscribe or emit without deadlocking.
//!
//! The snapshot ([`Snapshot`]) holds each listener twice: its `Arc` (ownership, and everything
//! the slow paths read) and a thin handler reference, so the emit loop reads one flat array
//! and makes one indirect call per listener, with no check before it: a removal swaps the
//! listener's function pointer for a no-op in every snapshot that may still be read
//! ([`Snapshot::skip`]). The per-handler [`HandlerInfo`] sits behind a pointer and is only read
//! when a call fails or the event is instrumented. `benches/emit.py --instructions` counts what
//! an emit costs.

use std::any::Any;
use std::sync::atomic::{AtomicU8, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use crate::options::HandlerInfo;
use crate::rcu::Rcu;
use crate::snapshot::{Report, Sink, Snapshot};

/// The error a handler returned, boxed.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why one call of a handler failed.
pub(crate) enum CallError {
    /// The handler returned `Err`.
    Returned(BoxError),
    /// The handler panicked; the panic payload.
    Panicked(Box<dyn Any + Send>),
}

/// Re-delivers a dead letter's JSON payload to an async or batch handler.
pub(crate) type RedispatchHook = Box<
    dyn Fn(serde_json::Value) -> Result<crate::bus::Redelivery, crate::dead_letter::RedispatchError>
        + Send
        + Sync,
>;

/// One subscribed handler. `H` is unsized in the list (`dyn Fn`), so the handler lives inline in
/// the same allocation as its flags: one pointer hop per call, not two.
pub(crate) struct Listener<H: ?Sized> {
    pub(crate) id: u64,
    /// [`REMOVED`], [`ACTIVE`] or [`ACTIVE_ONCE`]. One byte for both "still subscribed?" and
    /// "run only once?". Cleared by unsubscribe / clear, or claimed (swapped to `REMOVED`) by
    /// the one emit that runs a `once` listener. The emit loop itself does not read it (see
    /// [`Snapshot::skip`]); the instrumented path and `once` listeners do.
    pub(crate) state: AtomicU8,
    /// Subscribed with `once`.
    pub(crate) once: bool,
    /// Label, retry override, counters: read off the fast path only.
    pub(crate) info: Arc<HandlerInfo>,
    /// How a dead letter reaches this handler again, for handlers that are not plain sync
    /// handlers (async, batch). `None`: call `handler` with the payload.
    pub(crate) redispatch: Option<RedispatchHook>,
    pub(crate) handler: H,
}

/// Unsubscribed: never called again.
const REMOVED: u8 = 0;
/// Called on every emit.
const ACTIVE: u8 = 1;
/// Called by the first emit that claims it, then removed.
const ACTIVE_ONCE: u8 = 2;

pub(crate) type Handler<T> = dyn Fn(&T) -> Result<(), BoxError> + Send + Sync;
pub(crate) type Entry<T> = Arc<Listener<Handler<T>>>;

impl<T> Listener<Handler<T>> {
    /// Calls the handler with panics caught.
    pub(crate) fn call(&self, payload: &T) -> Result<(), CallError> {
        crate::snapshot::call_caught(&self.handler, payload).map_or(Ok(()), Err)
    }

    /// Whether the listener is still subscribed.
    pub(crate) fn is_active(&self) -> bool {
        self.state.load(Ordering::Acquire) != REMOVED
    }
}

impl<H: ?Sized> Listener<H> {
    /// Claims a `once` listener for one call: `true` for exactly one caller, however many
    /// threads race for it, and never for a listener that was removed.
    pub(crate) fn claim_once(&self) -> bool {
        self.state
            .compare_exchange(ACTIVE_ONCE, REMOVED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

/// The bit of [`ListenerList::route`] that sends every emit down the event's slow path.
const SLOW: usize = 1 << (usize::BITS - 1);

/// The listeners of one event, in subscription order; `S` is the event, where calls report
/// failures ([`Sink`]).
pub(crate) struct ListenerList<T: 'static, S> {
    snapshot: Rcu<Snapshot<T, S>>,
    /// Where an emit goes, in the one word it reads first: the length of the current
    /// snapshot, so that an emit nobody listens to returns before it enters a read section,
    /// and the [`SLOW`] bit (see [`set_slow`](Self::set_slow)). The length is stored after the
    /// snapshot is: an emit that reads 0 while a first listener is being added is an emit from
    /// before that listener.
    route: AtomicUsize,
    /// Serialises copy-on-write updates; holds the next listener id (ids start at 1).
    writer: Mutex<u64>,
    /// Told the new listener count after every change (the listener-count gauge).
    on_change: Option<Box<dyn Fn(usize) + Send + Sync>>,
}

impl<T: 'static, S: Sink<T>> ListenerList<T, S> {
    pub(crate) fn new(on_change: Option<Box<dyn Fn(usize) + Send + Sync>>) -> Self {
        ListenerList {
            snapshot: Rcu::new({
                let mut empty = Snapshot::empty();
                empty.seal();
                empty
            }),
            route: AtomicUsize::new(0),
            writer: Mutex::new(1),
            on_change,
        }
    }

    /// Runs one change of the list under the writer lock (`update` gets the next listener id),
    /// then frees what it replaced once the lock is released: freeing old snapshots may drop
    /// listeners, whose captured state may subscribe (see `Rcu::replace`).
    fn write<R>(&self, update: impl FnOnce(&mut u64) -> R) -> R {
        // No handler ever runs under this lock, so poisoning can only come from an allocation
        // failure mid-update; the list itself is always consistent (it is swapped atomically).
        let out = update(&mut self.writer.lock().unwrap_or_else(PoisonError::into_inner));
        self.snapshot.collect();
        out
    }

    /// Seals `next` and swaps it in. Only under the writer lock.
    fn publish(&self, mut next: Snapshot<T, S>) {
        let len = next.entries().len();
        // The gauge counts listeners that may still be called: a `once` listener claimed by an
        // emit on another thread stays in the list until that emit removes it.
        let active = next.entries().iter().filter(|l| l.is_active()).count();
        next.seal();
        self.snapshot.replace(next);
        // Writers are serialised; only `set_slow` races with this, and it only sets a bit.
        let _ = self
            .route
            .fetch_update(Ordering::Release, Ordering::Relaxed, |route| {
                Some(route & SLOW | len)
            });
        if let Some(on_change) = &self.on_change {
            on_change(active);
        }
    }

    /// Appends a handler built by `make` from its id, and returns the id.
    pub(crate) fn add<F>(
        &self,
        once: bool,
        make: impl FnOnce(u64) -> (Arc<HandlerInfo>, Option<RedispatchHook>, F),
    ) -> u64
    where
        F: Fn(&T) -> Result<(), BoxError> + Send + Sync + 'static,
    {
        self.write(|next_id| {
            let id = *next_id;
            *next_id += 1;
            let (info, redispatch, handler) = make(id);
            let listener = Arc::new(Listener {
                id,
                state: AtomicU8::new(if once { ACTIVE_ONCE } else { ACTIVE }),
                once,
                info,
                redispatch,
                handler,
            });
            let mut next = self
                .snapshot
                .with_current(|current| current.filtered(|_| true));
            next.push(listener);
            self.publish(next);
            id
        })
    }

    /// Removes the listener with this id; `false` if it was not in the list.
    pub(crate) fn remove(&self, id: u64) -> bool {
        self.write(|_| {
            let found = self.snapshot.with_current(|current| {
                let listener = current.entries().iter().find(|l| l.id == id)?;
                let was_active = listener.state.swap(REMOVED, Ordering::AcqRel) != REMOVED;
                Some((was_active, current.filtered(|l| l.id != id)))
            });
            let Some((was_active, next)) = found else {
                return false;
            };
            // Emits walking this snapshot or an older one skip it from now on.
            self.snapshot
                .for_each_live(|snapshot| snapshot.skip(|l| l.id == id));
            self.publish(next);
            was_active
        })
    }

    /// Removes every listener.
    pub(crate) fn clear(&self) {
        self.write(|_| {
            let had_listeners = self.snapshot.with_current(|current| {
                for listener in current.entries() {
                    listener.state.store(REMOVED, Ordering::Release);
                }
                !current.entries().is_empty()
            });
            if had_listeners {
                self.snapshot
                    .for_each_live(|snapshot| snapshot.skip(|_| true));
                self.publish(Snapshot::empty());
            }
        });
    }

    /// Where an emit goes, from one load and no read section: `0` when the event is on its
    /// fast path and nobody listens, above `0` for the fast path with listeners, below `0` once
    /// [`set_slow`](Self::set_slow) was called. A signed number rather than an enum, so that
    /// the emit branches on one `test` (an enum was compiled into a select).
    #[inline(always)]
    pub(crate) fn route(&self) -> isize {
        self.route.load(Ordering::Acquire) as isize
    }

    /// Sends every later emit down the event's slow path; never undone.
    pub(crate) fn set_slow(&self) {
        self.route.fetch_or(SLOW, Ordering::Release);
    }

    /// The number of listeners that may still be called.
    pub(crate) fn len(&self) -> usize {
        self.snapshot
            .read(|current| current.entries().iter().filter(|l| l.is_active()).count())
    }

    /// Whether the listener with this id is subscribed and may still be called.
    pub(crate) fn is_active(&self, id: u64) -> bool {
        self.snapshot.read(|current| {
            current
                .entries()
                .iter()
                .any(|l| l.id == id && l.is_active())
        })
    }

    /// Every listener of the current snapshot, in order.
    pub(crate) fn entries(&self) -> Arc<Vec<Entry<T>>> {
        Arc::new(self.snapshot.read(|current| current.entries().to_vec()))
    }

    /// Claims a listener for this call: `false` if it must be skipped. A `once` listener is
    /// claimed by exactly one emit, however many threads race for it, and then removed.
    fn claim(&self, listener: &Entry<T>) -> bool {
        if listener.state.load(Ordering::Acquire) == ACTIVE {
            return true;
        }
        let claimed = listener.claim_once();
        if claimed {
            self.remove(listener.id);
        }
        claimed
    }

    /// Settles what a call of the emit loop reported: removes a `once` listener that was
    /// claimed, and returns a failure to handle.
    pub(crate) fn settle(&self, listener: &Entry<T>, report: Report) -> Option<CallError> {
        match report {
            Report::Failed(error) => Some(error),
            Report::Claimed => {
                self.remove(listener.id);
                None
            }
        }
    }

    /// Calls every active listener of the current snapshot in order, with panics caught.
    /// `sink` is told what each listener that did not simply succeed reported (see
    /// [`settle`](Self::settle)).
    ///
    /// Allocates nothing and takes no lock unless a `once` listener fires (its removal copies
    /// the list) or a handler fails (`sink` decides).
    #[inline(always)]
    pub(crate) fn dispatch(&self, payload: &T, sink: &S) {
        // A lock-free borrow of the snapshot; listeners added meanwhile land in a new snapshot
        // and are not called by this emit, listeners removed meanwhile are skipped.
        self.snapshot
            .read(|snapshot| snapshot.call_each(payload, sink));
    }

    /// [`dispatch`](Self::dispatch) for instrumented events: `on_outcome` gets every call's
    /// outcome and how long it took.
    pub(crate) fn dispatch_timed(
        &self,
        payload: &T,
        mut on_outcome: impl FnMut(&Entry<T>, Result<(), CallError>, Duration),
    ) {
        self.snapshot.read(|snapshot| {
            for listener in snapshot.entries() {
                if !self.claim(listener) {
                    continue;
                }
                let start = Instant::now();
                let outcome = listener.call(payload);
                on_outcome(listener, outcome, start.elapsed());
            }
        });
    }
}
