//! One published version of an event's listener list, laid out for the emit loop.
//!
//! Each listener is held twice: its `Arc` (ownership, and everything the slow paths read) and a
//! [`ThinCall`]: the handler as two words, a data pointer and a plain function pointer. The emit
//! loop reads one flat array and makes one indirect call per listener: no vtable to load and no
//! field offset to compute from the vtable's alignment (what calling through
//! `Arc<Listener<dyn Fn>>` costs).
//!
//! The invariant that makes the raw pointers sound lives here: a `ThinCall` is only ever made
//! from an `Arc` pushed into the same snapshot, is copied (privately) only between snapshots
//! together with that `Arc`, and is only handed out by shared reference, for no longer than the
//! snapshot lives.

#![allow(unsafe_code)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use crate::listeners::{BoxError, CallError, Entry, Listener};

/// What a sync handler returns once wrapped: `Ok` or the error it reported.
pub(crate) type CallResult = Result<(), BoxError>;

/// How a call through a [`ThinCall`] went: `None` when it succeeded. One pointer, so that it
/// comes back in a register; the box is only made for a failure.
pub(crate) type Failed = Option<Box<CallError>>;

/// A listener's handler `F: Fn(&T) -> CallResult`, type-erased.
pub(crate) struct ThinCall<T> {
    data: *const (),
    call: unsafe fn(*const (), &T) -> Failed,
}

/// Calls the `F` behind `data`, with panics caught. The unwind guard sits here, around one
/// concrete handler, rather than around the emit loop: there it kept the loop's state out of
/// registers and cost more than the call.
///
/// # Safety
///
/// `data` must point to a live `F`.
unsafe fn trampoline<T, F>(data: *const (), payload: &T) -> Failed
where
    F: Fn(&T) -> CallResult,
{
    // SAFETY: per this function's contract.
    let handler = unsafe { &*data.cast::<F>() };
    match catch_unwind(AssertUnwindSafe(|| handler(payload))) {
        Ok(Ok(())) => None,
        Ok(Err(error)) => Some(Box::new(CallError::Returned(error))),
        Err(panic) => Some(Box::new(CallError::Panicked(panic))),
    }
}

impl<T> ThinCall<T> {
    /// Calls the handler, with panics caught.
    #[inline(always)]
    pub(crate) fn call(&self, payload: &T) -> Failed {
        // SAFETY: `data` and `call` were made together for the same `F` in `Snapshot::push`,
        // and the snapshot this `&self` borrows from owns the listener (module docs).
        unsafe { (self.call)(self.data, payload) }
    }

    /// The same reference, for another snapshot that also holds the listener.
    fn copy(&self) -> Self {
        ThinCall {
            data: self.data,
            call: self.call,
        }
    }
}

/// The listeners of one event at one moment, in subscription order.
pub(crate) struct Snapshot<T: 'static> {
    entries: Vec<Entry<T>>,
    /// `calls[i]` borrows `entries[i]`'s handler.
    calls: Vec<ThinCall<T>>,
    /// Whether a listener was subscribed with `once`: each call must then claim it first.
    has_once: bool,
}

// SAFETY: the raw pointers in `calls` point into the `Arc`s of `entries`, whose contents are
// `Send + Sync` (handlers are `Fn + Send + Sync`, the state is atomic); sharing or sending a
// snapshot shares or sends exactly those, like `Vec<Entry<T>>` does.
unsafe impl<T> Send for Snapshot<T> where Vec<Entry<T>>: Send {}
// SAFETY: as above.
unsafe impl<T> Sync for Snapshot<T> where Vec<Entry<T>>: Sync {}

impl<T: 'static> Snapshot<T> {
    pub(crate) fn empty() -> Self {
        Snapshot {
            entries: Vec::new(),
            calls: Vec::new(),
            has_once: false,
        }
    }

    /// The listeners of `self` that `keep` selects, with room for one more.
    pub(crate) fn filtered(&self, mut keep: impl FnMut(&Entry<T>) -> bool) -> Self {
        let mut next = Snapshot {
            entries: Vec::with_capacity(self.entries.len() + 1),
            calls: Vec::with_capacity(self.entries.len() + 1),
            has_once: false,
        };
        for (entry, call) in self.entries.iter().zip(&self.calls) {
            if keep(entry) {
                next.has_once |= entry.once;
                next.entries.push(entry.clone());
                next.calls.push(call.copy());
            }
        }
        next
    }

    /// Appends a listener.
    pub(crate) fn push<F>(&mut self, listener: Arc<Listener<F>>)
    where
        F: Fn(&T) -> CallResult + Send + Sync + 'static,
    {
        if listener.once {
            self.has_once = true;
        }
        let call = ThinCall {
            data: (&listener.handler as *const F).cast(),
            call: trampoline::<T, F>,
        };
        // `listener` moves into `entries`; its contents stay where they are.
        self.entries.push(listener);
        self.calls.push(call);
    }

    /// The listeners, in order.
    pub(crate) fn entries(&self) -> &[Entry<T>] {
        &self.entries
    }

    /// `calls()[i]` is `entries()[i]`'s handler.
    #[inline(always)]
    pub(crate) fn calls(&self) -> &[ThinCall<T>] {
        &self.calls
    }

    /// Whether some listener was subscribed with `once`.
    #[inline(always)]
    pub(crate) fn has_once(&self) -> bool {
        self.has_once
    }
}
