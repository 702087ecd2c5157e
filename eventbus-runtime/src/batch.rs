//! Batch handlers: events collected until `max_size` or `max_wait`, then delivered as one batch
//! to a sync handler (a slice, called in place) or an async one (an owned `Vec`, through an
//! [`AsyncPool`]).

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use crate::async_handler::AsyncPool;
use crate::breaker::{CircuitOpen, Outcome};
use crate::event::Payload;
use crate::listeners::{BoxError, CallError};
use crate::meta::Batch;
use crate::options::HandlerInfo;
use crate::shared::{EventCtx, Next};

pub(crate) type BatchFn<T> = Box<dyn Fn(&[T]) -> Result<(), BoxError> + Send + Sync>;

/// Where a complete batch goes.
pub(crate) enum BatchSink<T: Payload> {
    /// `on_batch`: called in place; retries are scheduled on the runtime.
    Sync(Arc<SyncBatch<T>>),
    /// `on_batch_async`: one call of the pool per batch, with its concurrency, queue, timeout
    /// and in-place retries.
    Async(Arc<AsyncPool<Vec<T>>>),
}

struct BatchState<T> {
    items: Vec<T>,
    /// Bumped whenever a batch leaves, so a stale window timer does nothing.
    generation: u64,
}

/// One batch handler: collects events into batches and hands each to its sink.
pub(crate) struct BatchHandler<T: Payload> {
    ctx: Arc<EventCtx>,
    sink: BatchSink<T>,
    config: Batch,
    state: Mutex<BatchState<T>>,
}

impl<T: Payload> BatchHandler<T> {
    pub(crate) fn new(ctx: Arc<EventCtx>, sink: BatchSink<T>, config: Batch) -> Self {
        BatchHandler {
            ctx,
            sink,
            config,
            state: Mutex::new(BatchState {
                items: Vec::new(),
                generation: 0,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, BatchState<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds an event; delivers the batch if it is full, or starts its window if it is new.
    pub(crate) fn push(self: &Arc<Self>, payload: T) {
        let mut state = self.lock();
        state.items.push(payload);
        if state.items.len() >= self.config.max_size as usize {
            let items = std::mem::take(&mut state.items);
            state.generation += 1;
            drop(state);
            self.deliver(items);
        } else if state.items.len() == 1 {
            let generation = state.generation;
            drop(state);
            let handler = self.clone();
            let max_wait = self.config.max_wait;
            self.ctx.shared.runtime.spawn(async move {
                tokio::time::sleep(max_wait).await;
                let items = {
                    let mut state = handler.lock();
                    if state.generation != generation || state.items.is_empty() {
                        return;
                    }
                    state.generation += 1;
                    std::mem::take(&mut state.items)
                };
                handler.deliver(items);
            });
        }
    }

    /// Delivers whatever is waiting now (shutdown).
    pub(crate) fn flush(self: &Arc<Self>) {
        let items = {
            let mut state = self.lock();
            state.generation += 1;
            std::mem::take(&mut state.items)
        };
        if !items.is_empty() {
            self.deliver(items);
        }
    }

    /// Hands a complete batch (or a re-dispatched one) to the handler.
    pub(crate) fn deliver(&self, items: Vec<T>) {
        match &self.sink {
            BatchSink::Sync(handler) => handler.deliver(items),
            BatchSink::Async(pool) => pool.submit(items),
        }
    }
}

/// The handler of `on_batch`.
pub(crate) struct SyncBatch<T> {
    ctx: Arc<EventCtx>,
    info: Arc<HandlerInfo>,
    handler: BatchFn<T>,
}

impl<T: Payload> SyncBatch<T> {
    pub(crate) fn new(ctx: Arc<EventCtx>, info: Arc<HandlerInfo>, handler: BatchFn<T>) -> Self {
        SyncBatch { ctx, info, handler }
    }

    fn call(&self, items: &[T]) -> Result<(), CallError> {
        let breaker = self.info.breaker.as_ref();
        if breaker.is_some_and(|b| !b.acquire()) {
            return Err(CallError::Returned(Box::new(CircuitOpen)));
        }
        let mut outcome = breaker.map(Outcome::new);
        let result = match catch_unwind(AssertUnwindSafe(|| (self.handler)(items))) {
            Ok(Ok(())) => Ok(()),
            Ok(Err(error)) => Err(CallError::Returned(error)),
            Err(panic) => Err(CallError::Panicked(panic)),
        };
        if let Some(outcome) = &mut outcome {
            outcome.set(result.is_ok());
        }
        result
    }

    /// Calls the handler with a batch, through the failure pipeline.
    fn deliver(self: &Arc<Self>, items: Vec<T>) {
        let start = Instant::now();
        match self.call(&items) {
            Ok(()) => self.ctx.delivered(&self.info, Some(start.elapsed())),
            Err(error) => {
                self.info.record(false, Some(start.elapsed()));
                // A retry holds the batch in a new task: only with room for one more.
                let slot = crate::retry::RetrySlot::reserve(&self.info);
                let room = slot.is_some();
                match self
                    .ctx
                    .fail_with_room(&self.info, 1, error, &items, &mut None, true, room)
                {
                    Next::Retry(delay) => {
                        let handler = self.clone();
                        crate::retry::retry_later(
                            self.ctx.clone(),
                            self.info.clone(),
                            items,
                            1,
                            delay,
                            true,
                            slot.expect("a retry is only scheduled with a reserved slot"),
                            move |items: &Vec<T>| handler.call(items),
                        );
                    }
                    Next::Done => {}
                }
            }
        }
    }
}
