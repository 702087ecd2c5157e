//! Catch-up subscriptions: the stored events of one event from a starting point, then the new
//! ones as they are stored, as one stream in sequence order (an EventStoreDB catch-up
//! subscription, a Kafka consumer from an offset).
//!
//! The stream reads the *store*, never the emitting threads: it keeps the sequence number of
//! the last record it read and asks the store for the next page after it. History and live
//! events are the same query, so the seam between them has no gap and no duplicate, and
//! records come in sequence order even when many threads emit at once (the writer thread
//! commits in sequence order, so once a sequence number is visible every earlier one is).
//!
//! What makes it live is a *bell*: a sync listener on the event that wakes the consumer when
//! an emit committed. The consumer arms the bell before each read, so an event committed after
//! the read rings it, and one committed before is in the read. The same way the bridge follows
//! the store's tail for its clients (`bridge/hub.rs`), without a cursor shared between
//! consumers: each stream pulls at its own pace, so none lags and memory is one page per
//! stream.

use std::collections::VecDeque;
use std::error::Error;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError, Weak};
use std::task::{Context, Poll, Waker};

use crate::dead_letter::StoreError;
use crate::event::{Event, Payload};
use crate::options::HandlerOptions;
use crate::shared::Shared;
use crate::store::journal::Message;
use crate::store::record::{DecodeError, Query, Record, Since};
use crate::store::{EventStore, PersistedEvent, PersistedSignal};
use crate::subscription::Subscription;

/// Records per read of the store: the most a catch-up stream buffers.
const PAGE: usize = 256;

/// The label of a catch-up stream's listener (in `stats()`).
const LABEL: &str = "eventbus-catch-up";

/// Wakes a catch-up consumer: rung by its listener after each emit of the event, and by the
/// journal at the end of `shutdown()`.
#[derive(Default)]
pub(crate) struct Bell {
    waker: Mutex<Option<Waker>>,
}

impl Bell {
    pub(crate) fn ring(&self) {
        let waker = self
            .waker
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        if let Some(waker) = waker {
            waker.wake();
        }
    }

    fn arm(&self, waker: &Waker) {
        let mut slot = self.waker.lock().unwrap_or_else(PoisonError::into_inner);
        if !slot.as_ref().is_some_and(|w| w.will_wake(waker)) {
            *slot = Some(waker.clone());
        }
    }
}

/// What a [`CatchUp`] stream could not deliver. The stream goes on after either.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum CatchUpError {
    /// A stored payload that no longer fits the event's type (the manifest changed since it
    /// was written), with its sequence number; the stream skips it, as replay does.
    Unreadable(DecodeError),
    /// The store could not be read. The next poll reads again from the same point: stop, or
    /// wait before polling again, when it keeps failing.
    Store(Arc<dyn Error + Send + Sync>),
}

impl fmt::Display for CatchUpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CatchUpError::Unreadable(error) => write!(f, "{error}; skipped"),
            CatchUpError::Store(error) => write!(
                f,
                "the catch-up subscription could not read the event store ({error}); the \
                 next poll reads again from the same point"
            ),
        }
    }
}

impl Error for CatchUpError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            CatchUpError::Unreadable(error) => Some(error),
            CatchUpError::Store(error) => Some(&**error),
        }
    }
}

/// The stored events of one event from a starting point, then each new one once it is stored,
/// in sequence order: from [`PersistedEvent::subscribe_from`] (or
/// [`PersistedSignal::subscribe_from`]).
///
/// Items are `Ok(Record)` (payload typed, with its sequence number, id and time) or
/// `Err(CatchUpError)`: a record whose payload no longer fits the type (reported with its
/// sequence number, then skipped), or a failed read of the store. Every stored event of the
/// event from the starting point is delivered exactly once, in sequence order, whatever the
/// emitting threads do while the history is read: the stream reads the store, page by page
/// (256 records), and a new event wakes it once it is stored.
///
/// Memory stays bounded without dropping anything: a slow consumer is behind in the store,
/// not in a buffer, so there is no `Lagged` item (unlike [`subscribe`](Event::subscribe)).
/// Reads run on the polling task (one page at a time, as the bridge's resume does). The stream
/// ends (`None`) once the bus is shut down (`shutdown()`, or every handle dropped) and every
/// stored event was read. Dropping it unsubscribes its listener.
///
/// It implements [`futures_core::Stream`]; [`recv`](Self::recv) needs no extension trait.
pub struct CatchUp<T: Payload> {
    event: &'static str,
    store: Arc<dyn EventStore>,
    shared: Weak<Shared>,
    bell: Arc<Bell>,
    subscription: Option<Subscription>,
    /// The last sequence number read from the store.
    cursor: u64,
    /// The last sequence number handed out.
    position: u64,
    page: VecDeque<Result<Record<T>, DecodeError>>,
    ended: bool,
}

// Nothing is pinned: `poll_next` only needs `&mut self`.
impl<T: Payload> Unpin for CatchUp<T> {}

/// Starts a catch-up stream of `event` at `since`.
fn subscribe<T: Payload>(event: &Event<T>, since: Since) -> Result<CatchUp<T>, StoreError> {
    let ctx = &event.inner.ctx;
    let name = ctx.meta.name;
    let journal = ctx.shared.journal.as_ref().ok_or_else(|| {
        Box::new(Message(
            "this bus has no event store (see BusBuilder::event_store): there is nothing to \
             catch up on"
                .into(),
        )) as StoreError
    })?;
    if !ctx.meta.persist {
        return Err(Box::new(Message(format!(
            "event `{name}` is not stored (it is not `persist: true` in the manifest): use \
             subscribe() for its live events"
        ))));
    }
    let store = journal.store.clone();
    let bell = Arc::new(Bell::default());
    journal.add_bell(&bell);
    // Listening before the first read: an event stored after that read rings the bell.
    let ring = bell.clone();
    let options = HandlerOptions::new()
        .label(LABEL)
        .no_retry()
        .no_circuit_breaker();
    let subscription = event.on_with(options, move |_: &T| ring.ring());
    let cursor = match since {
        Since::Sequence(sequence) => sequence.saturating_sub(1),
        // The first event stored at or after that time; every later sequence number follows
        // (the time filter does not apply to them: clocks can step back).
        Since::Time(time) => {
            let last = store.last_sequence()?;
            let first = store.query(&Query::new().event(name).from_time(time).limit(1))?;
            first.first().map_or(last, |record| record.sequence - 1)
        }
    };
    Ok(CatchUp {
        event: name,
        store,
        shared: Arc::downgrade(&ctx.shared),
        bell,
        subscription: Some(subscription),
        cursor,
        position: cursor,
        page: VecDeque::new(),
        ended: false,
    })
}

impl<T: Payload> CatchUp<T> {
    /// The next item: `None` once the bus is shut down and every stored event was read.
    pub async fn recv(&mut self) -> Option<Result<Record<T>, CatchUpError>> {
        std::future::poll_fn(|cx| self.next_item(Some(cx.waker()))).await
    }

    /// The next item if one is stored, without waiting (it reads the store when nothing is
    /// buffered). `None` when the stream is caught up, or ended.
    pub fn try_recv(&mut self) -> Option<Result<Record<T>, CatchUpError>> {
        match self.next_item(None) {
            Poll::Ready(item) => item,
            Poll::Pending => None,
        }
    }

    /// The sequence number of the last item handed out (one less than the starting point
    /// before the first): after a restart, `subscribe_from(Since::Sequence(position + 1))`
    /// goes on where this stream stopped. Sequence numbers are shared by every event of the
    /// store, so those of one event are increasing, not consecutive.
    pub fn position(&self) -> u64 {
        self.position
    }

    /// The event's manifest name.
    pub fn name(&self) -> &'static str {
        self.event
    }

    fn next_item(
        &mut self,
        waker: Option<&Waker>,
    ) -> Poll<Option<Result<Record<T>, CatchUpError>>> {
        loop {
            if let Some(item) = self.page.pop_front() {
                self.position = match &item {
                    Ok(record) => record.sequence,
                    Err(error) => error.sequence,
                };
                return Poll::Ready(Some(item.map_err(CatchUpError::Unreadable)));
            }
            if self.ended {
                return Poll::Ready(None);
            }
            if let Some(waker) = waker {
                self.bell.arm(waker);
            }
            // Before the read: whatever was stored before the bus shut down is in it.
            let shut_down = self.shared.upgrade().is_none_or(|s| s.is_closed());
            match self.read_page() {
                Err(error) => return Poll::Ready(Some(Err(CatchUpError::Store(error.into())))),
                Ok(0) if shut_down => {
                    self.ended = true;
                    if let Some(subscription) = self.subscription.take() {
                        subscription.unsubscribe();
                    }
                    return Poll::Ready(None);
                }
                Ok(0) => return Poll::Pending,
                Ok(_) => {}
            }
        }
    }

    /// Reads the next page after the cursor into the buffer; returns how many records came.
    fn read_page(&mut self) -> Result<usize, StoreError> {
        let query = Query::new()
            .event(self.event)
            .after(self.cursor)
            .limit(PAGE);
        let records = self.store.query(&query)?;
        for stored in &records {
            self.cursor = stored.sequence;
            self.page.push_back(stored.decode::<T>());
        }
        Ok(records.len())
    }
}

impl<T: Payload> futures_core::Stream for CatchUp<T> {
    type Item = Result<Record<T>, CatchUpError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.get_mut().next_item(Some(cx.waker()))
    }
}

impl<T: Payload> Drop for CatchUp<T> {
    fn drop(&mut self) {
        if let Some(subscription) = self.subscription.take() {
            subscription.unsubscribe();
        }
    }
}

impl<T: Payload> fmt::Debug for CatchUp<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CatchUp")
            .field("event", &self.event)
            .field("position", &self.position)
            .field("buffered", &self.page.len())
            .field("ended", &self.ended)
            .finish()
    }
}

impl<T: Payload> PersistedEvent<T> {
    /// A catch-up subscription: every stored event of this event from `since` (a sequence
    /// number or a time, inclusive), then each new one once it is stored, as one stream in
    /// sequence order, with no gap and no duplicate between history and live events — even
    /// when other threads emit while the history is read. See [`CatchUp`].
    ///
    /// The stream reads the store, not the emitting threads: a new event wakes it through a
    /// listener (labelled `eventbus-catch-up`, counted by
    /// [`listener_count`](Event::listener_count)), so it follows the event's policies (a
    /// debounced event wakes it when the debounce lets it through; it still reads every
    /// stored event). Events of this process and of earlier runs are alike: recovery and
    /// replay do not deliver them to the stream again.
    ///
    /// # Errors
    ///
    /// The bus has no event store, the event is not `persist: true`, or the store cannot be
    /// read (for `Since::Time`, which looks up the first event at that time).
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    /// # let manifest = eventbus_runtime::__doc::persisted(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::{BusCore, PersistedEvent, Since, SqliteStore};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let core: BusCore = BusCore::builder(manifest)
    ///     .event_store(SqliteStore::open(dir.path().join("events.db"))?)
    ///     .build()?;
    /// let ping: PersistedEvent<u32> = PersistedEvent::new(&core, manifest.event("ping").unwrap());
    /// for n in [10, 20, 30] {
    ///     ping.emit(n)?; // sequences 1, 2, 3
    /// }
    ///
    /// let mut stream = ping.subscribe_from(Since::Sequence(2))?;
    /// ping.emit(40)?; // live: after the history, exactly once
    ///
    /// let mut seen = Vec::new();
    /// for _ in 0..3 {
    ///     let record = stream.recv().await.unwrap()?;
    ///     seen.push((record.sequence, record.payload));
    /// }
    /// assert_eq!(seen, [(2, 20), (3, 30), (4, 40)]);
    /// assert_eq!(stream.position(), 4);
    /// assert!(stream.try_recv().is_none()); // caught up
    /// # Ok(())
    /// # }
    /// ```
    pub fn subscribe_from(&self, since: Since) -> Result<CatchUp<T>, StoreError> {
        subscribe(self.event(), since)
    }
}

impl PersistedSignal {
    /// [`PersistedEvent::subscribe_from`] for a payload-less event: the records' payload is
    /// `()`.
    ///
    /// ```
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    /// # let manifest = eventbus_runtime::__doc::persisted(&[("systemRestart", None)]);
    /// use eventbus_runtime::{BusCore, PersistedSignal, Since, SqliteStore};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let core: BusCore = BusCore::builder(manifest)
    ///     .event_store(SqliteStore::open(dir.path().join("events.db"))?)
    ///     .build()?;
    /// let restart = PersistedSignal::new(&core, manifest.event("systemRestart").unwrap());
    /// restart.emit()?;
    ///
    /// let mut stream = restart.subscribe_from(Since::Sequence(1))?;
    /// restart.emit()?;
    /// assert_eq!(stream.recv().await.unwrap()?.sequence, 1);
    /// assert_eq!(stream.recv().await.unwrap()?.sequence, 2);
    /// # Ok(())
    /// # }
    /// ```
    pub fn subscribe_from(&self, since: Since) -> Result<CatchUp<()>, StoreError> {
        subscribe(&self.signal().event, since)
    }
}
