//! Async handlers: a bounded pool of calls per handler, fed by a bounded queue. `on_async`
//! feeds it events, `on_batch_async` batches.
//!
//! The queue and the call in progress hold the payload as a [`share::Item`](crate::share):
//! the async handlers of one emit share one copy of it (kept for retries and dead letters),
//! and each call of a handler gets its own clone.

use std::collections::VecDeque;
use std::future::Future;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::breaker::CircuitOpen;
use crate::event::Payload;
use crate::handler::FailureKind;
use crate::listeners::{BoxError, CallError};
use crate::options::HandlerInfo;
use crate::retry::Pending;
use crate::share::Item;
use crate::shared::{EventCtx, Next};

pub(crate) type BoxFuture = Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send>>;
pub(crate) type AsyncFn<T> = Box<dyn Fn(T) -> BoxFuture + Send + Sync>;

struct PoolState<T> {
    /// Each waiting event with the delivery scope of its emit (see `store::track`).
    queue: VecDeque<(Item<T>, crate::store::track::Carried)>,
    running: usize,
}

/// How one async handler's pool runs its calls.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PoolConfig {
    /// At most this many calls at once.
    pub(crate) limit: usize,
    /// At most this many payloads waiting for a slot.
    pub(crate) capacity: usize,
    /// Each call is cancelled after this long (`HandlerOptions::timeout`).
    pub(crate) timeout: Option<Duration>,
    /// The payloads are batches (`on_batch_async`): dead letters say so.
    pub(crate) batch: bool,
}

/// The error of a call cancelled by its handler's timeout: reported as
/// [`FailureKind::Timeout`], retried and dead-lettered like any failure.
#[derive(Debug)]
pub(crate) struct TimedOut(pub(crate) Duration);

impl std::fmt::Display for TimedOut {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "the call did not finish within its timeout of {:?} and was cancelled \
             (HandlerOptions::timeout)",
            self.0
        )
    }
}

impl std::error::Error for TimedOut {}

/// One async handler: at most `limit` calls at once, at most `capacity` payloads waiting.
pub(crate) struct AsyncPool<T> {
    ctx: Arc<EventCtx>,
    info: Arc<HandlerInfo>,
    handler: AsyncFn<T>,
    config: PoolConfig,
    state: Mutex<PoolState<T>>,
}

impl<T: Payload> AsyncPool<T> {
    pub(crate) fn new(
        ctx: Arc<EventCtx>,
        info: Arc<HandlerInfo>,
        handler: AsyncFn<T>,
        config: PoolConfig,
    ) -> Self {
        AsyncPool {
            ctx,
            info,
            handler,
            config,
            state: Mutex::new(PoolState {
                queue: VecDeque::new(),
                running: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, PoolState<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// [`submit_item`](Self::submit_item) with a payload of its own.
    pub(crate) fn submit(self: &Arc<Self>, payload: T) {
        self.submit_item(Item::Owned(payload));
    }

    /// Starts a call if a slot is free, else queues the event, else dead-letters it. Never
    /// waits.
    pub(crate) fn submit_item(self: &Arc<Self>, payload: Item<T>) {
        let runtime = &self.ctx.shared.runtime;
        if runtime.is_abandoned() {
            drop(Pending::new(
                self.ctx.clone(),
                self.info.clone(),
                payload,
                0,
                self.config.batch,
            ));
            return;
        }
        let mut state = self.lock();
        if state.running < self.config.limit {
            state.running += 1;
            drop(state);
            let pool = self.clone();
            // `()` without the `store` feature: nothing to carry then.
            #[allow(clippy::let_unit_value)]
            let carried = crate::store::track::capture();
            runtime.spawn_tracked(async move { pool.work((payload, carried)).await });
        } else if state.queue.len() < self.config.capacity {
            state
                .queue
                .push_back((payload, crate::store::track::capture()));
        } else {
            drop(state);
            self.ctx.give_up(
                Some(&self.info),
                FailureKind::Overflow,
                format!(
                    "the handler's queue is full ({} {} waiting for {} running calls)",
                    self.config.capacity,
                    if self.config.batch {
                        "batches"
                    } else {
                        "events"
                    },
                    self.config.limit
                ),
                0,
                self.config.batch,
                serde_json::to_value(&payload).unwrap_or(Value::Null),
            );
        }
    }

    /// One slot: handles events until the queue is empty.
    async fn work(self: Arc<Self>, first: (Item<T>, crate::store::track::Carried)) {
        // Frees the slot even if this future is dropped unfinished.
        struct Slot<'a, T>(&'a Mutex<PoolState<T>>);
        impl<T> Drop for Slot<'_, T> {
            fn drop(&mut self) {
                self.0
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .running -= 1;
            }
        }
        let slot = Slot(&self.state);
        let mut next = Some(first);
        while let Some((payload, carried)) = next {
            crate::store::track::scope(carried, self.process(payload)).await;
            let mut state = self.lock();
            next = state.queue.pop_front();
            if next.is_none() {
                // Give the slot back under the same lock that saw the queue empty.
                state.running -= 1;
                drop(state);
                std::mem::forget(slot);
                return;
            }
        }
        drop(slot);
    }

    /// All attempts at one event.
    async fn process(&self, payload: Item<T>) {
        let runtime = &self.ctx.shared.runtime;
        let batch = self.config.batch;
        let mut pending = Pending::new(self.ctx.clone(), self.info.clone(), payload, 0, batch);
        loop {
            if runtime.is_abandoned() {
                return; // `pending` dead-letters the payload.
            }
            let attempt = pending.attempts + 1;
            let breaker = self.info.breaker.as_ref();
            if breaker.is_some_and(|b| !b.acquire()) {
                let error = CallError::Returned(Box::new(CircuitOpen));
                self.ctx.fail(
                    &self.info,
                    attempt,
                    error,
                    pending.payload(),
                    &mut None,
                    batch,
                );
                pending.done();
                return;
            }
            pending.attempts = attempt;
            // Reading the clock costs more than a small handler in a VM: only for the
            // latency histogram of an instrumented bus.
            let start = self.ctx.shared.instrumented.then(Instant::now);
            let call = catch_unwind(AssertUnwindSafe(|| {
                (self.handler)(pending.payload().get().clone())
            }));
            let result = match call {
                Ok(future) => match runtime
                    .within(self.config.timeout, CatchUnwind(future))
                    .await
                {
                    Some(Ok(result)) => result,
                    // The future was dropped, which cancels the call.
                    Some(Err(limit)) => Err(CallError::Returned(Box::new(TimedOut(limit)))),
                    // Abandoned mid-call: `pending` dead-letters the payload.
                    None => return,
                },
                Err(panic) => Err(CallError::Panicked(panic)),
            };
            if let Some(breaker) = breaker {
                breaker.record(result.is_ok());
            }
            match result {
                Ok(()) => {
                    self.ctx.delivered(&self.info, start.map(|s| s.elapsed()));
                    pending.done();
                    return;
                }
                Err(error) => {
                    self.info.record(false, start.map(|s| s.elapsed()));
                    match self.ctx.fail(
                        &self.info,
                        attempt,
                        error,
                        pending.payload(),
                        &mut None,
                        batch,
                    ) {
                        Next::Retry(delay) => {
                            if !runtime.sleep(delay).await {
                                return;
                            }
                        }
                        Next::Done => {
                            pending.done();
                            return;
                        }
                    }
                }
            }
        }
    }
}

/// Polls a handler's future with panics caught.
struct CatchUnwind(BoxFuture);

impl Future for CatchUnwind {
    type Output = Result<(), CallError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match catch_unwind(AssertUnwindSafe(|| self.0.as_mut().poll(cx))) {
            Ok(Poll::Pending) => Poll::Pending,
            Ok(Poll::Ready(Ok(()))) => Poll::Ready(Ok(())),
            Ok(Poll::Ready(Err(error))) => Poll::Ready(Err(CallError::Returned(error))),
            Err(panic) => Poll::Ready(Err(CallError::Panicked(panic))),
        }
    }
}
