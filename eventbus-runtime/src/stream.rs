//! Bounded streams: `subscribe()` and `errors()`. A slow consumer never makes memory grow: the
//! buffer keeps the newest `capacity` items and the consumer is told how many it missed.
//!
//! The `subscribe()` streams of one event share one listener, a [`StreamHub`]. A payload that
//! owns heap memory (its type needs drop) is cloned once per emit into an `Arc` that every
//! stream's buffer holds (a `share::Item`, as `tokio::sync::broadcast` keeps one value per
//! message) and a consumer clones its item out when it receives it, the last one without a
//! clone: a burst waiting in N buffers is one copy of each payload, not N. Plain data is copied
//! into each buffer instead, which allocates nothing (`tests/no_alloc.rs`).

use std::collections::VecDeque;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::task::{Context, Poll, Waker};

use crate::handler::HandlerFailure;
use crate::share::Item;
use crate::subscription::Detach;

/// A stream's consumer fell behind: this many items were dropped (the oldest first) since it
/// last received one. The next items are the oldest still buffered. Like tokio's
/// `broadcast::error::RecvError::Lagged`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Lagged(pub u64);

impl fmt::Display for Lagged {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the consumer lagged behind; {} items were skipped",
            self.0
        )
    }
}

impl std::error::Error for Lagged {}

struct RingState<T> {
    items: VecDeque<T>,
    lagged: u64,
    closed: bool,
    waker: Option<Waker>,
}

/// A bounded buffer with one consumer: pushing to a full buffer drops the oldest item and
/// counts it.
pub(crate) struct Ring<T> {
    capacity: usize,
    state: Mutex<RingState<T>>,
    /// Told how many items were dropped, for the event's `lagged` counter.
    on_lag: Option<Box<dyn Fn(u64) + Send + Sync>>,
}

impl<T> Ring<T> {
    pub(crate) fn new(capacity: usize, on_lag: Option<Box<dyn Fn(u64) + Send + Sync>>) -> Self {
        assert!(
            capacity > 0,
            "eventbus: a stream needs a capacity of at least 1"
        );
        Ring {
            capacity,
            state: Mutex::new(RingState {
                items: VecDeque::with_capacity(capacity),
                lagged: 0,
                closed: false,
                waker: None,
            }),
            on_lag,
        }
    }

    fn lock(&self) -> MutexGuard<'_, RingState<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Appends an item (dropping the oldest when full) and wakes the consumer.
    pub(crate) fn push(&self, item: T) {
        let mut state = self.lock();
        if state.closed {
            return;
        }
        let dropped = state.items.len() == self.capacity;
        if dropped {
            state.items.pop_front();
            state.lagged += 1;
        }
        state.items.push_back(item);
        let waker = state.waker.take();
        drop(state);
        if dropped && let Some(on_lag) = &self.on_lag {
            on_lag(1);
        }
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    /// Ends the stream once the buffer is drained.
    pub(crate) fn close(&self) {
        let waker = {
            let mut state = self.lock();
            state.closed = true;
            state.waker.take()
        };
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    fn poll_recv(&self, cx: &mut Context<'_>) -> Poll<Option<Result<T, Lagged>>> {
        let mut state = self.lock();
        if state.lagged > 0 {
            let lagged = std::mem::take(&mut state.lagged);
            return Poll::Ready(Some(Err(Lagged(lagged))));
        }
        if let Some(item) = state.items.pop_front() {
            return Poll::Ready(Some(Ok(item)));
        }
        if state.closed {
            return Poll::Ready(None);
        }
        state.waker = Some(cx.waker().clone());
        Poll::Pending
    }

    fn try_recv(&self) -> Option<Result<T, Lagged>> {
        let mut state = self.lock();
        if state.lagged > 0 {
            return Some(Err(Lagged(std::mem::take(&mut state.lagged))));
        }
        state.items.pop_front().map(Ok)
    }

    fn len(&self) -> usize {
        self.lock().items.len()
    }

    fn is_closed(&self) -> bool {
        self.lock().closed
    }
}

/// A stream's buffer.
type StreamRing<T> = Ring<Item<T>>;

/// The `subscribe()` streams of one event and the one listener that feeds them all.
pub(crate) struct StreamHub<T> {
    state: Mutex<HubState<T>>,
}

struct HubState<T> {
    rings: Vec<Arc<StreamRing<T>>>,
    /// The feeding listener's id, while one is subscribed.
    listener: Option<u64>,
}

impl<T: Clone> StreamHub<T> {
    pub(crate) fn new() -> Self {
        StreamHub {
            state: Mutex::new(HubState {
                rings: Vec::new(),
                listener: None,
            }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, HubState<T>> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// What the feeding listener `feeder` does with each event: one shared copy for every
    /// stream. Only the feeder the hub knows delivers, so a stale one (left by a race between
    /// a subscribe and `remove_all_listeners`) never delivers twice.
    pub(crate) fn push(&self, feeder: u64, payload: &T) {
        let state = self.lock();
        if state.listener != Some(feeder) {
            return;
        }
        match state.rings.as_slice() {
            [] => {}
            rings if rings.len() == 1 || !std::mem::needs_drop::<T>() => {
                for ring in rings {
                    ring.push(Item::Owned(payload.clone()));
                }
            }
            rings => {
                let shared = Arc::new(payload.clone());
                for ring in rings {
                    ring.push(Item::Shared(shared.clone()));
                }
            }
        }
    }

    /// Adds a stream's buffer. `listener` is the feeding listener's id if one is subscribed
    /// (`attached` says whether it still is); otherwise `subscribe` subscribes one and
    /// returns its id. Runs under the hub's lock, so two first streams make one listener.
    pub(crate) fn add(
        &self,
        ring: Arc<StreamRing<T>>,
        attached: impl FnOnce(u64) -> bool,
        subscribe: impl FnOnce() -> u64,
    ) {
        let mut state = self.lock();
        state.rings.push(ring);
        if !state.listener.is_some_and(attached) {
            state.listener = Some(subscribe());
        }
    }

    /// Removes a stream's buffer; returns the feeding listener's id to unsubscribe when no
    /// stream is left.
    fn remove(&self, ring: &Arc<StreamRing<T>>) -> Option<u64> {
        let mut state = self.lock();
        state.rings.retain(|r| !Arc::ptr_eq(r, ring));
        if state.rings.is_empty() {
            state.listener.take()
        } else {
            None
        }
    }

    /// Forgets every stream (`remove_all_listeners`): they receive nothing more, even if a new
    /// stream subscribes later. Returns the feeder's id, for the caller to unsubscribe: a stream
    /// that subscribed while the listeners were being cleared may have made a new one.
    pub(crate) fn clear(&self) -> Option<u64> {
        let mut state = self.lock();
        state.rings.clear();
        state.listener.take()
    }

    /// The number of streams, and the feeding listener's id.
    pub(crate) fn streams(&self) -> (usize, Option<u64>) {
        let state = self.lock();
        (state.rings.len(), state.listener)
    }

    /// Ends every stream once drained (the bus shuts down).
    pub(crate) fn close(&self) {
        let rings = self.lock().rings.clone();
        for ring in rings {
            ring.close();
        }
    }
}

/// The events of one event, as a bounded async stream: from
/// [`Event::subscribe`](crate::Event::subscribe).
///
/// Items are `Ok(payload)`, or `Err(Lagged(n))` when the consumer fell more than the buffer's
/// capacity behind and `n` events were dropped (the oldest ones): memory stays bounded
/// whatever the consumer does. The stream ends (`None`) after the bus shuts down and the
/// buffer is drained. Dropping the stream unsubscribes it.
///
/// It implements [`futures_core::Stream`], and [`recv`](Self::recv) needs no extension trait.
pub struct EventStream<T: Clone> {
    ring: Arc<StreamRing<T>>,
    hub: Arc<StreamHub<T>>,
    event: Weak<dyn Detach>,
}

/// The payload of a received item.
fn owned<T: Clone>(item: Option<Result<Item<T>, Lagged>>) -> Option<Result<T, Lagged>> {
    item.map(|item| item.map(Item::into_inner))
}

impl<T: Clone> EventStream<T> {
    pub(crate) fn new(
        ring: Arc<StreamRing<T>>,
        hub: Arc<StreamHub<T>>,
        event: Weak<dyn Detach>,
    ) -> Self {
        EventStream { ring, hub, event }
    }

    /// The next item: `None` once the bus is shut down and the buffer drained.
    pub async fn recv(&mut self) -> Option<Result<T, Lagged>> {
        std::future::poll_fn(|cx| self.ring.poll_recv(cx).map(owned)).await
    }

    /// The next item if one is buffered, without waiting.
    pub fn try_recv(&mut self) -> Option<Result<T, Lagged>> {
        owned(self.ring.try_recv())
    }

    /// Items buffered now (never more than [`capacity`](Self::capacity)).
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// Whether no item is buffered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The most items buffered before the oldest are dropped.
    pub fn capacity(&self) -> usize {
        self.ring.capacity
    }

    /// Whether the bus shut down (the buffered items can still be received).
    pub fn is_closed(&self) -> bool {
        self.ring.is_closed()
    }
}

impl<T: Clone> futures_core::Stream for EventStream<T> {
    type Item = Result<T, Lagged>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.ring.poll_recv(cx).map(owned)
    }
}

impl<T: Clone> Drop for EventStream<T> {
    fn drop(&mut self) {
        if let Some(listener) = self.hub.remove(&self.ring)
            && let Some(event) = self.event.upgrade()
        {
            event.detach(listener);
        }
    }
}

impl<T: Clone> fmt::Debug for EventStream<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventStream")
            .field("buffered", &self.len())
            .field("capacity", &self.capacity())
            .finish()
    }
}

/// Every failure of a bus, as a bounded async stream: from
/// [`BusCore::errors`](crate::BusCore::errors). Items and lag work as for [`EventStream`]; it
/// ends after the bus shuts down.
pub struct Failures {
    ring: Arc<Ring<HandlerFailure>>,
}

impl Failures {
    pub(crate) fn new(ring: Arc<Ring<HandlerFailure>>) -> Self {
        Failures { ring }
    }

    /// The next failure: `None` once the bus is shut down and the buffer drained.
    pub async fn recv(&mut self) -> Option<Result<HandlerFailure, Lagged>> {
        std::future::poll_fn(|cx| self.ring.poll_recv(cx)).await
    }

    /// The next failure if one is buffered, without waiting.
    pub fn try_recv(&mut self) -> Option<Result<HandlerFailure, Lagged>> {
        self.ring.try_recv()
    }

    /// Failures buffered now.
    pub fn len(&self) -> usize {
        self.ring.len()
    }

    /// Whether no failure is buffered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl futures_core::Stream for Failures {
    type Item = Result<HandlerFailure, Lagged>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.ring.poll_recv(cx)
    }
}

impl fmt::Debug for Failures {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Failures")
            .field("buffered", &self.len())
            .finish()
    }
}
