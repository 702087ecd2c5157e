//! Retries of sync and batch handlers, scheduled on the bus's runtime so the emitting thread
//! never waits, at most a bounded number per handler; and the guard that dead-letters pending
//! work nobody finished.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use serde_json::Value;

use crate::handler::FailureKind;
use crate::listeners::CallError;
use crate::options::HandlerInfo;
use crate::shared::{EventCtx, Next};
use crate::stats::Stat;

/// A payload some handler still owes a call. Dropped unfinished — shutdown abandoned it, or the
/// runtime that ran it stopped — it is dead-lettered and reported.
pub(crate) struct Pending<P: Serialize> {
    ctx: Arc<EventCtx>,
    info: Arc<HandlerInfo>,
    payload: Option<P>,
    /// Attempts made so far.
    pub(crate) attempts: u32,
    batch: bool,
}

impl<P: Serialize> Pending<P> {
    pub(crate) fn new(
        ctx: Arc<EventCtx>,
        info: Arc<HandlerInfo>,
        payload: P,
        attempts: u32,
        batch: bool,
    ) -> Self {
        Pending {
            ctx,
            info,
            payload: Some(payload),
            attempts,
            batch,
        }
    }

    pub(crate) fn payload(&self) -> &P {
        self.payload.as_ref().expect("pending payload taken")
    }

    /// The work is finished (delivered, or dead-lettered by the failure pipeline).
    pub(crate) fn done(&mut self) {
        self.payload = None;
    }
}

impl<P: Serialize> Drop for Pending<P> {
    fn drop(&mut self) {
        let Some(payload) = self.payload.take() else {
            return;
        };
        let why = if self.ctx.shared.runtime.is_abandoned() {
            "shutdown's deadline passed before the handler finished"
        } else {
            "the runtime running the handler stopped before it finished"
        };
        self.ctx.give_up(
            Some(&self.info),
            FailureKind::Abandoned,
            why.into(),
            self.attempts,
            self.batch,
            serde_json::to_value(&payload).unwrap_or(Value::Null),
        );
    }
}

/// How many retries one sync or batch handler has pending, and how many it may have: each
/// holds a copy of its payload, so without a bound a handler that keeps failing would hold one
/// per event emitted while it fails.
pub(crate) struct RetrySlots {
    pending: AtomicUsize,
    pub(crate) capacity: usize,
}

impl RetrySlots {
    pub(crate) fn new(capacity: usize) -> Self {
        RetrySlots {
            pending: AtomicUsize::new(0),
            capacity,
        }
    }
}

/// One pending retry of a handler: its slot is given back when this is dropped (the retry
/// succeeded, was dead-lettered or abandoned, or its runtime stopped).
pub(crate) struct RetrySlot(Arc<HandlerInfo>);

impl RetrySlot {
    /// Takes a slot for a new retry of `info`'s handler, if it has fewer than its capacity
    /// pending.
    pub(crate) fn reserve(info: &Arc<HandlerInfo>) -> Option<RetrySlot> {
        let slots = &info.retries;
        slots
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < slots.capacity).then_some(n + 1)
            })
            .ok()
            .map(|_| RetrySlot(info.clone()))
    }
}

impl Drop for RetrySlot {
    fn drop(&mut self) {
        self.0.retries.pending.fetch_sub(1, Ordering::AcqRel);
    }
}

impl EventCtx {
    /// Counts a successful call.
    pub(crate) fn delivered(&self, info: &HandlerInfo, elapsed: Option<Duration>) {
        if self.shared.instrumented {
            info.record(true, elapsed);
            self.counters.add(Stat::Delivered, 1);
        }
    }
}

/// Calls `call` again after `delay`, on the bus's runtime, until it succeeds or the retry
/// policy gives up (then the payload is dead-lettered). `failed_attempt` is the attempt that
/// just failed; `slot` is held until then.
#[allow(clippy::too_many_arguments)]
pub(crate) fn retry_later<P, C>(
    ctx: Arc<EventCtx>,
    info: Arc<HandlerInfo>,
    payload: P,
    failed_attempt: u32,
    delay: Duration,
    batch: bool,
    slot: RetrySlot,
    call: C,
) where
    P: Serialize + Send + 'static,
    C: Fn(&P) -> Result<(), CallError> + Send + 'static,
{
    let runtime = ctx.shared.runtime.clone();
    let mut pending = Pending::new(ctx.clone(), info.clone(), payload, failed_attempt, batch);
    // In the delivery scope of the emit that failed (see `store::track`).
    runtime
        .clone()
        .spawn_tracked(crate::store::track::carry(async move {
            let _slot = slot;
            let mut delay = delay;
            loop {
                if !runtime.sleep(delay).await {
                    return; // Abandoned: `pending` dead-letters the payload.
                }
                let attempt = pending.attempts + 1;
                pending.attempts = attempt;
                let start = Instant::now();
                match call(pending.payload()) {
                    Ok(()) => {
                        ctx.delivered(&info, Some(start.elapsed()));
                        pending.done();
                        return;
                    }
                    Err(error) => {
                        info.record(false, Some(start.elapsed()));
                        let mut json = None;
                        match ctx.fail(&info, attempt, error, pending.payload(), &mut json, batch) {
                            Next::Retry(next) => delay = next,
                            Next::Done => {
                                pending.done();
                                return;
                            }
                        }
                    }
                }
            }
        }));
}
