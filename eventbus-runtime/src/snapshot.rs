//! One published version of an event's listener list, laid out for the emit loop.
//!
//! Each listener is held twice: its `Arc` (ownership, and everything the slow paths read) and a
//! [`ThinCall`]: the handler as a data pointer and a plain function pointer (a monomorphic
//! trampoline), with a pointer back to the `Arc`. The emit loop walks that one flat array up to
//! a sentinel and makes one indirect call per listener: no vtable to load, no field offset to
//! compute from the vtable's alignment (what calling through `Arc<Listener<dyn Fn>>` costs), no
//! check before the call and none after it (a trampoline hands a failure to the event's
//! [`Sink`] itself), and nothing to keep in registers across the calls but its position, the
//! payload and the sink (`benches/emit.py --instructions` counts the result).
//!
//! Removal needs no check in the loop because it rewrites the loop's input: unsubscribing
//! swaps the listener's function pointer, in every snapshot that may still be read, for a
//! no-op ([`Snapshot::skip`], under the writer lock). An emit already walking an older
//! snapshot therefore skips a listener removed meanwhile, by a handler of that emit or by
//! another thread. A `once` listener's trampoline claims the listener (one compare-exchange on
//! its state) and reports [`Report::Claimed`], on which the event removes it from the list,
//! before calling it.
//!
//! The invariant that makes the raw pointers sound lives here: a `ThinCall` is only ever made
//! from an `Arc` pushed into the same snapshot, is copied (privately) only between snapshots
//! together with that `Arc`, points back only into its own snapshot's `entries` (set by
//! [`Snapshot::seal`], after which nothing is pushed), and is only read through a shared
//! reference, for no longer than the snapshot lives. Its trampoline was made for the
//! snapshot's sink type `S`, the only type [`Snapshot::call_each`] accepts.

#![allow(unsafe_code)]

use std::marker::PhantomData;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::Arc;
use std::sync::atomic::{AtomicPtr, Ordering};

use crate::listeners::{BoxError, CallError, Entry, Listener};

/// What a sync handler returns once wrapped: `Ok` or the error it reported.
pub(crate) type CallResult = Result<(), BoxError>;

/// Where a trampoline sends the unusual outcome of a call: the event the snapshot belongs to.
pub(crate) trait Sink<T>: Sync {
    /// Handles what the call of `listener` with `payload` reported.
    fn report(&self, listener: &Entry<T>, payload: &T, report: Report);
}

/// The unusual outcomes of a call, handled out of the emit loop's way.
pub(crate) enum Report {
    /// The handler returned an error or panicked.
    Failed(CallError),
    /// A `once` listener was claimed by this call, which runs it next: the event removes it
    /// from the list first, as an unsubscribe would.
    Claimed,
}

/// A trampoline: calls the handler behind the call's data pointer and tells the sink (an
/// `&S`) what did not go plainly.
type Trampoline<T, S> = unsafe fn(&ThinCall<T, S>, &T, *const S);

/// A listener's handler, type-erased, with what the emit loop needs beside it.
pub(crate) struct ThinCall<T: 'static, S> {
    /// The [`Trampoline`]: [`trampoline`], [`trampoline_once`] or, once the listener was
    /// removed, [`skip`]; null only in the sentinel that ends [`Snapshot::calls`]. Atomic
    /// because a removal rewrites it while emits may be reading it.
    call: AtomicPtr<()>,
    /// The handler (`trampoline`) or the whole listener (`trampoline_once`).
    data: *const (),
    /// The listener: an element of the same snapshot's `entries`.
    entry: *const Entry<T>,
    _types: PhantomData<fn(&T, &S)>,
}

/// Calls the `F` behind `call.data`, with panics caught. The unwind guard sits here, around
/// one concrete handler, rather than around the emit loop: there it kept the loop's state out
/// of registers and cost more than the call.
///
/// # Safety
///
/// `call.data` must point to a live `F`, and `sink` to a live `S`.
unsafe fn trampoline<T, F, S>(call: &ThinCall<T, S>, payload: &T, sink: *const S)
where
    F: Fn(&T) -> CallResult,
    S: Sink<T>,
{
    // SAFETY: per this function's contract.
    let handler = unsafe { &*call.data.cast::<F>() };
    if let Some(failure) = call_caught(handler, payload) {
        // SAFETY: per this function's contract.
        unsafe { report(sink, call, payload, Report::Failed(failure)) };
    }
}

/// [`trampoline`] for a `once` listener: only the call that claims it runs the handler.
///
/// # Safety
///
/// `call.data` must point to a live `Listener<F>`, and `sink` to a live `S`.
unsafe fn trampoline_once<T, F, S>(call: &ThinCall<T, S>, payload: &T, sink: *const S)
where
    F: Fn(&T) -> CallResult,
    S: Sink<T>,
{
    // SAFETY: per this function's contract.
    let listener = unsafe { &*call.data.cast::<Listener<F>>() };
    if listener.claim_once() {
        // SAFETY (both): per this function's contract.
        unsafe { report(sink, call, payload, Report::Claimed) };
        if let Some(failure) = call_caught(&listener.handler, payload) {
            unsafe { report(sink, call, payload, Report::Failed(failure)) };
        }
    }
}

/// A removed listener's trampoline: does nothing.
///
/// # Safety
///
/// None; `unsafe` only to have the [`Trampoline`] type.
unsafe fn skip<T, S>(_call: &ThinCall<T, S>, _payload: &T, _sink: *const S) {}

/// Hands `report` to the sink, out of the trampoline's way.
///
/// # Safety
///
/// `sink` must point to a live `S`.
#[cold]
#[inline(never)]
unsafe fn report<T, S: Sink<T>>(
    sink: *const S,
    call: &ThinCall<T, S>,
    payload: &T,
    report: Report,
) {
    // SAFETY: per this function's contract.
    unsafe { &*sink }.report(call.entry(), payload, report);
}

/// Calls `handler` with panics caught: `None` when it succeeded.
#[inline(always)]
pub(crate) fn call_caught<T, F>(handler: &F, payload: &T) -> Option<CallError>
where
    F: Fn(&T) -> CallResult + ?Sized,
{
    match catch_unwind(AssertUnwindSafe(|| handler(payload))) {
        Ok(Ok(())) => None,
        Ok(Err(error)) => Some(CallError::Returned(error)),
        Err(panic) => Some(CallError::Panicked(panic)),
    }
}

impl<T: 'static, S> ThinCall<T, S> {
    fn new(call: Trampoline<T, S>, data: *const ()) -> Self {
        Self::erased(call as *mut (), data)
    }

    /// A call whose `entry` `seal` sets; `call` null for the sentinel.
    fn erased(call: *mut (), data: *const ()) -> Self {
        ThinCall {
            call: AtomicPtr::new(call),
            data,
            entry: std::ptr::null(),
            _types: PhantomData,
        }
    }

    /// The trampoline, `None` for the sentinel.
    #[inline(always)]
    fn trampoline(&self) -> Option<Trampoline<T, S>> {
        // `Relaxed`: the pointer only decides which code runs on `data`, which the snapshot
        // keeps alive either way; a handler that removes a listener is ordered before the
        // emit's next load by program order.
        let call = self.call.load(Ordering::Relaxed);
        // SAFETY: `call` holds a `Trampoline<T, S>` (`new`, `Snapshot::skip`) or null, and
        // function pointers round-trip through data pointers on every platform Rust supports.
        (!call.is_null()).then(|| unsafe { std::mem::transmute::<*mut (), Trampoline<T, S>>(call) })
    }

    /// The listener whose handler this is.
    #[inline(always)]
    fn entry(&self) -> &Entry<T> {
        // SAFETY: `entry` points into the `entries` of the snapshot that holds this call, which
        // is never changed after `seal` and outlives the `&self` borrow (module docs).
        unsafe { &*self.entry }
    }

    /// The same handler, for another snapshot that also holds the listener; `seal` sets the
    /// entry.
    fn copy(&self) -> Self {
        Self::erased(self.call.load(Ordering::Relaxed), self.data)
    }
}

/// The listeners of one event at one moment, in subscription order; `S` is the event's
/// [`Sink`].
pub(crate) struct Snapshot<T: 'static, S> {
    entries: Vec<Entry<T>>,
    /// `calls[i]` borrows `entries[i]`'s handler; once sealed, one more call, without a
    /// trampoline, ends the list.
    calls: Vec<ThinCall<T, S>>,
}

// SAFETY: the raw pointers in `calls` point into the `Arc`s of `entries` and into `entries`
// itself, whose contents are `Send + Sync` (handlers are `Fn + Send + Sync`, the state is
// atomic); sharing or sending a snapshot shares or sends exactly those. The bound always
// holds (an `Entry` is an `Arc` of a `Send + Sync` listener, whatever `T`): no `T` or `S`
// value is ever stored, `S` is only named in function pointer types.
unsafe impl<T, S> Send for Snapshot<T, S> where Vec<Entry<T>>: Send {}
// SAFETY: as above.
unsafe impl<T, S> Sync for Snapshot<T, S> where Vec<Entry<T>>: Sync {}

impl<T: 'static, S: Sink<T>> Snapshot<T, S> {
    /// A snapshot without listeners, to be [`seal`](Self::seal)ed.
    pub(crate) fn empty() -> Self {
        Snapshot {
            entries: Vec::new(),
            calls: Vec::new(),
        }
    }

    /// The listeners of `self` that `keep` selects, with room for one more; to be
    /// [`seal`](Self::seal)ed before it is published.
    pub(crate) fn filtered(&self, mut keep: impl FnMut(&Entry<T>) -> bool) -> Self {
        let mut next = Snapshot {
            entries: Vec::with_capacity(self.entries.len() + 1),
            // One more for the sentinel.
            calls: Vec::with_capacity(self.entries.len() + 2),
        };
        // `entries` is one shorter than the sealed `calls`: the sentinel is left out.
        for (entry, call) in self.entries.iter().zip(&self.calls) {
            if keep(entry) {
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
        let call = if listener.once {
            let data = Arc::as_ptr(&listener).cast::<()>();
            ThinCall::new(trampoline_once::<T, F, S>, data)
        } else {
            let data = (&listener.handler as *const F).cast::<()>();
            ThinCall::new(trampoline::<T, F, S>, data)
        };
        // `listener` moves into `entries`; its contents stay where they are.
        self.entries.push(listener);
        self.calls.push(call);
    }

    /// The listeners, in order.
    pub(crate) fn entries(&self) -> &[Entry<T>] {
        &self.entries
    }

    /// Makes the snapshot ready to publish: every call learns its listener, and the sentinel
    /// ends the calls. Nothing is pushed after this, so the `entry` pointers stay valid.
    pub(crate) fn seal(&mut self) {
        debug_assert_eq!(self.calls.len(), self.entries.len(), "sealed twice");
        for (call, entry) in self.calls.iter_mut().zip(&self.entries) {
            call.entry = entry;
        }
        self.calls
            .push(ThinCall::erased(std::ptr::null_mut(), std::ptr::null()));
    }

    /// Makes every later call of the listeners that `removed` selects do nothing, for emits
    /// already walking this snapshot too. Writers only (serialised by the caller).
    pub(crate) fn skip(&self, mut removed: impl FnMut(&Entry<T>) -> bool) {
        let skip = skip::<T, S> as Trampoline<T, S> as *mut ();
        for (call, entry) in self.calls.iter().zip(&self.entries) {
            if removed(entry) {
                call.call.store(skip, Ordering::Relaxed);
            }
        }
    }

    /// Calls every handler in order, with panics caught; what did not go plainly goes to
    /// `sink` (from the trampolines, so the loop does not test each call's outcome).
    ///
    /// The loop walks the calls up to the sentinel instead of counting, so that across the
    /// handler calls it keeps one pointer, not a pointer and an end: with the payload and the
    /// sink that leaves the emit three registers to save for the loop, not six.
    #[inline(always)]
    pub(crate) fn call_each(&self, payload: &T, sink: &S) {
        debug_assert!(
            self.calls.last().is_some_and(|c| c.trampoline().is_none()),
            "not sealed"
        );
        let sink: *const S = sink;
        let mut next = self.calls.as_ptr();
        loop {
            // SAFETY: a sealed snapshot's calls end with the sentinel, which stops the loop
            // before `next` passes it.
            let current = unsafe { &*next };
            let Some(trampoline) = current.trampoline() else {
                break;
            };
            // SAFETY: `trampoline` was made for `data` in `push` (or is `skip`, which reads
            // nothing), this snapshot owns the listener behind `data` (module docs), and
            // `sink` is a live `S`, the type the trampoline was made for.
            unsafe { trampoline(current, payload, sink) };
            // SAFETY: `current` is not the sentinel, so one more element follows it.
            next = unsafe { next.add(1) };
        }
    }
}
