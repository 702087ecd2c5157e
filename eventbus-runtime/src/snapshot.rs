//! One published version of an event's listener list, laid out for the emit loop.
//!
//! Each listener is held twice: its `Arc` (ownership, and everything the slow paths read) and a
//! [`ThinCall`]: the handler as a data pointer and a plain function pointer, beside the
//! removal count the snapshot was published with and a pointer back to the `Arc`. The emit
//! loop walks that one flat array up to a sentinel and makes one indirect call per listener: no
//! vtable to load, no field offset to compute from the vtable's alignment (what calling through
//! `Arc<Listener<dyn Fn>>` costs), and nothing to keep in registers across the calls but its
//! position, the payload and the list (`benches/emit.py --instructions` counts the result).
//!
//! The invariant that makes the raw pointers sound lives here: a `ThinCall` is only ever made
//! from an `Arc` pushed into the same snapshot, is copied (privately) only between snapshots
//! together with that `Arc`, points back only into its own snapshot's `entries` (set by
//! [`Snapshot::seal`], after which nothing is pushed), and is only handed out by shared
//! reference, for no longer than the snapshot lives.

#![allow(unsafe_code)]

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;

use crate::listeners::{BoxError, CallError, Entry, Listener};

/// What a sync handler returns once wrapped: `Ok` or the error it reported.
pub(crate) type CallResult = Result<(), BoxError>;

/// How a call through a [`ThinCall`] went: `None` when it succeeded. One pointer, so that it
/// comes back in a register; the box is only made for a failure.
pub(crate) type Failed = Option<Box<CallError>>;

/// A listener's handler `F: Fn(&T) -> CallResult`, type-erased, with what the emit loop needs
/// beside it, so that the loop keeps nothing but its position in a register (see
/// [`Snapshot::for_each`]).
pub(crate) struct ThinCall<T: 'static> {
    /// `None` only in the sentinel that ends [`Snapshot::calls`].
    call: Option<unsafe fn(*const (), &T) -> Failed>,
    data: *const (),
    /// The list's removal count when this snapshot was published ([`Snapshot::seal`]), or
    /// `u64::MAX` when the snapshot holds a `once` listener: an emit that finds the count
    /// changed (or can never match) claims the listener before calling it.
    expected: u64,
    /// The listener this handler belongs to: an element of the same snapshot's `entries`.
    entry: *const Entry<T>,
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

impl<T: 'static> ThinCall<T> {
    /// The removal count this snapshot was published with (see the field).
    #[inline(always)]
    pub(crate) fn expected(&self) -> u64 {
        self.expected
    }

    /// The listener whose handler this is.
    #[inline(always)]
    pub(crate) fn entry(&self) -> &Entry<T> {
        // SAFETY: `entry` points into the `entries` of the snapshot that holds this call, which
        // is never changed after `seal` and outlives the `&self` borrow (module docs).
        unsafe { &*self.entry }
    }

    /// Calls the handler, with panics caught.
    #[inline(always)]
    pub(crate) fn call(&self, payload: &T) -> Failed {
        // SAFETY: only `Snapshot::for_each` hands out a `&ThinCall`, and never the sentinel, so
        // `call` is set. `data` and `call` were made together for the same `F` in
        // `Snapshot::push`, and the snapshot this `&self` borrows from owns the listener
        // (module docs).
        unsafe { (self.call.unwrap_unchecked())(self.data, payload) }
    }

    /// The same handler, for another snapshot that also holds the listener; `seal` sets the
    /// rest.
    fn copy(&self) -> Self {
        ThinCall {
            call: self.call,
            data: self.data,
            expected: u64::MAX,
            entry: std::ptr::null(),
        }
    }
}

/// The listeners of one event at one moment, in subscription order.
pub(crate) struct Snapshot<T: 'static> {
    entries: Vec<Entry<T>>,
    /// `calls[i]` borrows `entries[i]`'s handler; once sealed, one more call, without a
    /// handler, ends the list.
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
    /// A snapshot without listeners, to be [`seal`](Self::seal)ed.
    pub(crate) fn empty() -> Self {
        Snapshot {
            entries: Vec::new(),
            calls: Vec::new(),
            has_once: false,
        }
    }

    /// The listeners of `self` that `keep` selects, with room for one more; to be
    /// [`seal`](Self::seal)ed before it is published.
    pub(crate) fn filtered(&self, mut keep: impl FnMut(&Entry<T>) -> bool) -> Self {
        let mut next = Snapshot {
            entries: Vec::with_capacity(self.entries.len() + 1),
            // One more for the sentinel.
            calls: Vec::with_capacity(self.entries.len() + 2),
            has_once: false,
        };
        // `entries` is one shorter than the sealed `calls`: the sentinel is left out.
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
            call: Some(trampoline::<T, F>),
            data: (&listener.handler as *const F).cast(),
            expected: u64::MAX,
            entry: std::ptr::null(),
        };
        // `listener` moves into `entries`; its contents stay where they are.
        self.entries.push(listener);
        self.calls.push(call);
    }

    /// The listeners, in order.
    pub(crate) fn entries(&self) -> &[Entry<T>] {
        &self.entries
    }

    /// Makes the snapshot ready to publish: every call learns its listener and the list's
    /// removal count now (`removals`, read under the writer lock), and the sentinel ends the
    /// calls. Nothing is pushed after this, so the `entry` pointers stay valid.
    pub(crate) fn seal(&mut self, removals: u64) {
        debug_assert_eq!(self.calls.len(), self.entries.len(), "sealed twice");
        let expected = if self.has_once { u64::MAX } else { removals };
        for (call, entry) in self.calls.iter_mut().zip(&self.entries) {
            call.expected = expected;
            call.entry = entry;
        }
        self.calls.push(ThinCall {
            call: None,
            data: std::ptr::null(),
            expected,
            entry: std::ptr::null(),
        });
    }

    /// Calls `each` with every handler in order; `each` decides whether to call it (a removal
    /// check) and what to do with a failure.
    ///
    /// The loop walks the calls up to the sentinel instead of counting, so that across the
    /// handler calls it keeps one pointer, not a pointer and an end: with the payload and the
    /// event's state that leaves the emit three registers to save, not six.
    #[inline(always)]
    pub(crate) fn for_each(&self, mut each: impl FnMut(&ThinCall<T>)) {
        debug_assert!(
            self.calls.last().is_some_and(|c| c.call.is_none()),
            "not sealed"
        );
        let mut next = self.calls.as_ptr();
        loop {
            // SAFETY: a sealed snapshot's calls end with the sentinel, which stops the loop
            // before `next` passes it.
            let current = unsafe { &*next };
            if current.call.is_none() {
                break;
            }
            each(current);
            // SAFETY: `current` is not the sentinel, so one more element follows it.
            next = unsafe { next.add(1) };
        }
    }
}
