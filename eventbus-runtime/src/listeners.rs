//! The listener list of one event: who gets called, in which order, and how emitters read it.
//!
//! Emitters read a lock-free snapshot (`ArcSwap` of the current listener vector) and never take
//! a lock. Subscribing and unsubscribing copy the vector and swap in the new one, serialised by
//! a writer-only mutex that emitters never touch. Handlers never run while that mutex is held,
//! so a handler may subscribe, unsubscribe or emit without deadlocking.
//!
//! PERF NOTE: everything about the snapshot mechanism stays behind [`ListenerList`] on purpose.
//! A later benchmark issue needs `emit` with one listener to cost about 2 ns and may replace
//! this type wholesale (e.g. with a hand-rolled epoch scheme); keep its interface small:
//! `add`, `remove`, `clear`, `len`, `is_active`, `dispatch`.

use std::any::Any;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use arc_swap::ArcSwap;

/// The error a handler returned, boxed.
pub(crate) type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Why one call of a handler failed.
pub(crate) enum CallError {
    /// The handler returned `Err`.
    Returned(BoxError),
    /// The handler panicked; the panic payload.
    Panicked(Box<dyn Any + Send>),
}

/// One subscribed handler. `H` is unsized in the list (`dyn Fn`), so the handler lives inline in
/// the same allocation as its flags: one pointer hop per call, not two.
struct Listener<H: ?Sized> {
    id: u64,
    once: bool,
    /// Cleared by unsubscribe / clear, or claimed (swapped to false) by the one emit that runs a
    /// `once` listener. Checked before every call so a removal takes effect at once, even for
    /// emits already iterating an older snapshot.
    active: AtomicBool,
    handler: H,
}

type Handler<T> = dyn Fn(&T) -> Result<(), BoxError> + Send + Sync;
type Entry<T> = Arc<Listener<Handler<T>>>;

/// The listeners of one event, in subscription order.
pub(crate) struct ListenerList<T: 'static> {
    // `ArcSwap` needs a sized pointee, hence `Arc<Vec<_>>` rather than `Arc<[_]>`.
    snapshot: ArcSwap<Vec<Entry<T>>>,
    /// Serialises copy-on-write updates; holds the next listener id (ids start at 1).
    writer: Mutex<u64>,
}

impl<T: 'static> ListenerList<T> {
    pub(crate) fn new() -> Self {
        ListenerList {
            snapshot: ArcSwap::from_pointee(Vec::new()),
            writer: Mutex::new(1),
        }
    }

    fn lock_writer(&self) -> MutexGuard<'_, u64> {
        // No handler ever runs under this lock, so poisoning can only come from an allocation
        // failure mid-update; the list itself is always consistent (it is swapped atomically).
        self.writer.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends a handler and returns its id.
    pub(crate) fn add<F>(&self, once: bool, handler: F) -> u64
    where
        F: Fn(&T) -> Result<(), BoxError> + Send + Sync + 'static,
    {
        let mut next_id = self.lock_writer();
        let id = *next_id;
        *next_id += 1;
        let entry: Entry<T> = Arc::new(Listener {
            id,
            once,
            active: AtomicBool::new(true),
            handler,
        });
        let current = self.snapshot.load();
        let mut next = Vec::with_capacity(current.len() + 1);
        next.extend(current.iter().cloned());
        next.push(entry);
        self.snapshot.store(Arc::new(next));
        id
    }

    /// Removes the listener with this id; `false` if it was not in the list.
    pub(crate) fn remove(&self, id: u64) -> bool {
        let _writer = self.lock_writer();
        let current = self.snapshot.load();
        let Some(listener) = current.iter().find(|l| l.id == id) else {
            return false;
        };
        let was_active = listener.active.swap(false, Ordering::AcqRel);
        let next: Vec<Entry<T>> = current.iter().filter(|l| l.id != id).cloned().collect();
        self.snapshot.store(Arc::new(next));
        was_active
    }

    /// Removes every listener.
    pub(crate) fn clear(&self) {
        let _writer = self.lock_writer();
        let current = self.snapshot.load();
        if current.is_empty() {
            return;
        }
        for listener in current.iter() {
            listener.active.store(false, Ordering::Release);
        }
        self.snapshot.store(Arc::new(Vec::new()));
    }

    /// The number of listeners that may still be called.
    pub(crate) fn len(&self) -> usize {
        self.snapshot
            .load()
            .iter()
            .filter(|l| l.active.load(Ordering::Acquire))
            .count()
    }

    /// Whether the listener with this id is subscribed and may still be called.
    pub(crate) fn is_active(&self, id: u64) -> bool {
        self.snapshot
            .load()
            .iter()
            .any(|l| l.id == id && l.active.load(Ordering::Acquire))
    }

    /// Calls every active listener of the current snapshot in order, with panics caught.
    /// `on_error` receives the id of each failed listener and why it failed.
    ///
    /// Allocates nothing and takes no lock unless a `once` listener fires (its removal copies
    /// the list) or a handler fails (`on_error` decides).
    pub(crate) fn dispatch(&self, payload: &T, mut on_error: impl FnMut(u64, CallError)) {
        // The guard is a lock-free borrow of the snapshot; listeners added meanwhile land in a
        // new snapshot and are not called by this emit.
        let snapshot = self.snapshot.load();
        for listener in snapshot.iter() {
            if listener.once {
                // Exactly one emit wins the claim, however many threads race for it.
                if !listener.active.swap(false, Ordering::AcqRel) {
                    continue;
                }
                self.remove(listener.id);
            } else if !listener.active.load(Ordering::Acquire) {
                continue;
            }
            let outcome = catch_unwind(AssertUnwindSafe(|| (listener.handler)(payload)));
            match outcome {
                Ok(Ok(())) => {}
                Ok(Err(error)) => on_error(listener.id, CallError::Returned(error)),
                Err(panic) => on_error(listener.id, CallError::Panicked(panic)),
            }
        }
    }
}
