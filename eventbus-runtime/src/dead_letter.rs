//! The dead-letter queue: events a handler could not process, kept for inspection,
//! re-dispatch or discarding.

use std::collections::VecDeque;
use std::error::Error;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::timestamp::Timestamp;

/// The error type of a [`DeadLetterStore`].
///
/// ```
/// use eventbus_runtime::StoreError;
///
/// let error: StoreError = "disk full".into();
/// assert_eq!(error.to_string(), "disk full");
/// let error: StoreError = std::io::Error::other("read-only file system").into();
/// assert_eq!(error.to_string(), "read-only file system");
/// ```
pub type StoreError = Box<dyn Error + Send + Sync>;

/// Why an event was dead-lettered.
///
/// ```
/// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
/// use eventbus_runtime::{BusCore, DeadLetterReason, Event};
///
/// let core = BusCore::new(manifest);
/// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
/// ping.on(|_| Err::<(), _>("down"));
/// ping.emit(1);
/// core.close();
/// ping.emit(2);
/// let reasons: Vec<_> = core.dead_letters().list().unwrap().iter().map(|l| l.reason).collect();
/// assert_eq!(reasons, [DeadLetterReason::Failed, DeadLetterReason::ShutDown]);
/// assert_eq!(serde_json::to_string(&DeadLetterReason::ShutDown).unwrap(), r#""shut_down""#);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeadLetterReason {
    /// The handler failed on its last attempt (it returned `Err`, panicked or timed out).
    Failed,
    /// The handler's circuit breaker was open.
    CircuitOpen,
    /// A bounded queue was full (the event's rate-limit queue or an async handler's queue).
    Overflow,
    /// The bus was shut down: the emit was refused, or the work was still pending at the
    /// shutdown deadline (or its runtime stopped).
    ShutDown,
    /// NATS JetStream used up a persisted distributed event's deliveries without an
    /// acknowledgement (the processes handling it crashed or stopped): see `docs/nats.md`.
    DeliveriesExhausted,
}

impl DeadLetterReason {
    /// `failed`, `circuit_open`, `overflow`, `shut_down` or `deliveries_exhausted` (as
    /// serialised).
    ///
    /// ```
    /// use eventbus_runtime::DeadLetterReason;
    ///
    /// assert_eq!(DeadLetterReason::CircuitOpen.as_str(), "circuit_open");
    /// assert_eq!(DeadLetterReason::ShutDown.as_str(), "shut_down");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            DeadLetterReason::Failed => "failed",
            DeadLetterReason::CircuitOpen => "circuit_open",
            DeadLetterReason::Overflow => "overflow",
            DeadLetterReason::ShutDown => "shut_down",
            DeadLetterReason::DeliveriesExhausted => "deliveries_exhausted",
        }
    }
}

/// One event that was not processed: by one handler (`handler` is set) or by the whole event
/// (`handler` is `None`: refused after shutdown, or its rate-limit queue was full).
///
/// Every field is public and the type is `Serialize`/`Deserialize`, so a persistent
/// [`DeadLetterStore`] can keep letters as they are.
///
/// ```
/// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
/// use eventbus_runtime::{BusCore, DeadLetter, DeadLetterReason, Event};
///
/// let core = BusCore::new(manifest);
/// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
/// ping.on_labeled("indexer", |_| Err::<(), _>("index offline"));
/// ping.emit(7);
///
/// let letter = core.dead_letters().list().unwrap().remove(0);
/// assert_eq!(letter.event, "ping");
/// assert_eq!((letter.handler.as_deref(), letter.handler_id), (Some("indexer"), Some(1)));
/// assert_eq!((letter.reason, letter.error.as_str(), letter.attempts), (DeadLetterReason::Failed, "index offline", 1));
/// assert_eq!((letter.payload.clone(), letter.batch), (7.into(), false));
/// // As a persistent store would keep it:
/// let json = serde_json::to_value(&letter).unwrap();
/// assert_eq!(json["reason"], "failed");
/// assert_eq!(serde_json::from_value::<DeadLetter>(json).unwrap(), letter);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadLetter {
    /// Assigned by the store when the letter is pushed (the value given to `push` is ignored).
    pub id: u64,
    /// The event's manifest name.
    pub event: String,
    /// The label of the handler that did not process it; `None` for the whole event.
    pub handler: Option<String>,
    /// That handler's id on its event (see [`HandlerFailure::handler_id`](crate::HandlerFailure::handler_id)).
    pub handler_id: Option<u64>,
    /// Why it is here.
    pub reason: DeadLetterReason,
    /// The last error's text.
    pub error: String,
    /// How many attempts were made (0 when the handler was never called).
    pub attempts: u32,
    /// `true` when `payload` is a batch (a JSON array) for a batch handler.
    pub batch: bool,
    /// The payload as JSON.
    pub payload: Value,
    /// When it was dead-lettered (wall clock).
    pub at: Timestamp,
}

/// What [`DeadLetterStore::push`] did.
///
/// ```
/// use eventbus_runtime::{DeadLetter, DeadLetterReason, DeadLetterStore, MemoryDeadLetters, Pushed, Timestamp};
///
/// let store = MemoryDeadLetters::with_capacity(10);
/// let letter = DeadLetter {
///     id: 0, event: "ping".into(), handler: None, handler_id: None,
///     reason: DeadLetterReason::Overflow, error: "queue full".into(), attempts: 0, batch: false,
///     payload: 1.into(), at: Timestamp::from_millis(0),
/// };
/// let pushed = store.push(letter).unwrap();
/// assert_eq!(pushed, Pushed { id: 1, evicted: vec![] });
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Pushed {
    /// The id given to the letter.
    pub id: u64,
    /// Letters removed to make room, if the store is bounded and was full. The bus reports each
    /// one as a [`FailureKind::Evicted`](crate::FailureKind::Evicted) failure and counts it.
    pub evicted: Vec<DeadLetter>,
}

/// Where dead letters are kept. The bus uses [`MemoryDeadLetters`] unless
/// [`BusBuilder::dead_letters`](crate::BusBuilder::dead_letters) sets another store (the SQLite
/// store, for instance, keeps them across restarts).
///
/// Methods may fail (a store on disk); the bus reports a failed `push` as a
/// [`FailureKind::StoreFailed`](crate::FailureKind::StoreFailed) failure, so no letter
/// disappears unreported.
///
/// ```
/// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
/// use eventbus_runtime::{BusCore, DeadLetter, DeadLetterStore, Event, MemoryDeadLetters, Pushed, StoreError};
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicUsize, Ordering};
///
/// /// Counts letters on top of the in-memory queue (a real store would write them somewhere).
/// struct Counting {
///     inner: MemoryDeadLetters,
///     pushed: Arc<AtomicUsize>,
/// }
///
/// impl DeadLetterStore for Counting {
///     fn push(&self, letter: DeadLetter) -> Result<Pushed, StoreError> {
///         self.pushed.fetch_add(1, Ordering::SeqCst);
///         self.inner.push(letter)
///     }
///     fn list(&self) -> Result<Vec<DeadLetter>, StoreError> { self.inner.list() }
///     fn get(&self, id: u64) -> Result<Option<DeadLetter>, StoreError> { self.inner.get(id) }
///     fn remove(&self, id: u64) -> Result<Option<DeadLetter>, StoreError> { self.inner.remove(id) }
///     fn len(&self) -> Result<usize, StoreError> { self.inner.len() }
/// }
///
/// let pushed = Arc::new(AtomicUsize::new(0));
/// let store = Counting { inner: MemoryDeadLetters::default(), pushed: pushed.clone() };
/// let core: BusCore = BusCore::builder(manifest).dead_letters(store).build().unwrap();
/// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
/// ping.on(|_| Err::<(), _>("down"));
/// ping.emit(1);
/// assert_eq!(pushed.load(Ordering::SeqCst), 1);
/// assert_eq!(core.dead_letters().len().unwrap(), 1);
/// ```
pub trait DeadLetterStore: Send + Sync + 'static {
    /// Stores `letter` under a new id, unique within the store and increasing.
    fn push(&self, letter: DeadLetter) -> Result<Pushed, StoreError>;
    /// Every letter, oldest first.
    fn list(&self) -> Result<Vec<DeadLetter>, StoreError>;
    /// The letter with this id.
    fn get(&self, id: u64) -> Result<Option<DeadLetter>, StoreError>;
    /// Removes and returns the letter with this id.
    fn remove(&self, id: u64) -> Result<Option<DeadLetter>, StoreError>;
    /// How many letters are stored.
    fn len(&self) -> Result<usize, StoreError>;
    /// Whether the store is empty.
    fn is_empty(&self) -> Result<bool, StoreError> {
        Ok(self.len()? == 0)
    }

    /// The sequence number of the stored event (see
    /// [`BusBuilder::event_store`](crate::BusBuilder::event_store)) whose delivery produced
    /// the letter with this id: a letter pushed while a stored event is being delivered is
    /// linked to it. `None` for a letter of an event that was never stored, or an unknown id.
    ///
    /// The bus uses the link when a letter is re-dispatched (the event is delivered again
    /// without being stored a second time) and when the last letter of a stored event is
    /// resolved (the event is then marked processed). The default, `None`, keeps neither: a
    /// store that wraps another should forward this method and [`linked`](Self::linked).
    fn sequence(&self, id: u64) -> Result<Option<u64>, StoreError> {
        let _ = id;
        Ok(None)
    }

    /// How many letters are linked to the stored event `sequence` (see
    /// [`sequence`](Self::sequence)). The default is 0.
    fn linked(&self, sequence: u64) -> Result<usize, StoreError> {
        let _ = sequence;
        Ok(0)
    }
}

/// The in-memory dead-letter store: bounded; when full, pushing evicts the **oldest** letter,
/// which the bus counts and reports (never silently). Default capacity:
/// [`defaults::DEAD_LETTER_CAPACITY`](crate::defaults::DEAD_LETTER_CAPACITY).
///
/// ```
/// use eventbus_runtime::{DeadLetter, DeadLetterReason, DeadLetterStore, MemoryDeadLetters, Timestamp};
///
/// let store = MemoryDeadLetters::with_capacity(1);
/// let letter = |n: u32| DeadLetter {
///     id: 0, event: "ping".into(), handler: None, handler_id: None,
///     reason: DeadLetterReason::Failed, error: "boom".into(), attempts: 1, batch: false,
///     payload: n.into(), at: Timestamp::from_millis(0),
/// };
/// let first = store.push(letter(1)).unwrap();
/// let second = store.push(letter(2)).unwrap();
/// assert_eq!(second.evicted.len(), 1);
/// assert_eq!(second.evicted[0].id, first.id);
/// assert_eq!(store.list().unwrap()[0].payload, 2);
/// ```
#[derive(Debug)]
pub struct MemoryDeadLetters {
    capacity: usize,
    next_id: AtomicU64,
    /// Each letter with the stored event it is linked to (see [`DeadLetterStore::sequence`]).
    letters: Mutex<VecDeque<(DeadLetter, Option<u64>)>>,
}

impl MemoryDeadLetters {
    /// A store holding at most `capacity` letters.
    ///
    /// ```
    /// use eventbus_runtime::{DeadLetterStore, MemoryDeadLetters};
    ///
    /// let store = MemoryDeadLetters::with_capacity(100);
    /// assert_eq!(store.capacity(), 100);
    /// assert!(store.is_empty().unwrap());
    /// ```
    ///
    /// # Panics
    ///
    /// If `capacity` is 0.
    pub fn with_capacity(capacity: usize) -> Self {
        assert!(
            capacity > 0,
            "eventbus: a dead-letter store needs room for one letter"
        );
        MemoryDeadLetters {
            capacity,
            next_id: AtomicU64::new(1),
            letters: Mutex::new(VecDeque::new()),
        }
    }

    /// The most letters it holds.
    ///
    /// ```
    /// use eventbus_runtime::{MemoryDeadLetters, defaults};
    ///
    /// assert_eq!(MemoryDeadLetters::default().capacity(), defaults::DEAD_LETTER_CAPACITY);
    /// ```
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn letters(&self) -> std::sync::MutexGuard<'_, VecDeque<(DeadLetter, Option<u64>)>> {
        self.letters.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for MemoryDeadLetters {
    fn default() -> Self {
        MemoryDeadLetters::with_capacity(crate::defaults::DEAD_LETTER_CAPACITY)
    }
}

impl DeadLetterStore for MemoryDeadLetters {
    fn push(&self, mut letter: DeadLetter) -> Result<Pushed, StoreError> {
        #[cfg(feature = "store")]
        let sequence = crate::store::track::current_sequence(&letter.event);
        #[cfg(not(feature = "store"))]
        let sequence = None;
        let mut letters = self.letters();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        letter.id = id;
        let mut evicted = Vec::new();
        while letters.len() >= self.capacity {
            evicted.extend(letters.pop_front().map(|(letter, _)| letter));
        }
        letters.push_back((letter, sequence));
        Ok(Pushed { id, evicted })
    }

    fn list(&self) -> Result<Vec<DeadLetter>, StoreError> {
        Ok(self.letters().iter().map(|(l, _)| l.clone()).collect())
    }

    fn get(&self, id: u64) -> Result<Option<DeadLetter>, StoreError> {
        Ok(self
            .letters()
            .iter()
            .find(|(l, _)| l.id == id)
            .map(|(l, _)| l.clone()))
    }

    fn remove(&self, id: u64) -> Result<Option<DeadLetter>, StoreError> {
        let mut letters = self.letters();
        Ok(letters
            .iter()
            .position(|(l, _)| l.id == id)
            .and_then(|i| letters.remove(i))
            .map(|(letter, _)| letter))
    }

    fn len(&self) -> Result<usize, StoreError> {
        Ok(self.letters().len())
    }

    fn sequence(&self, id: u64) -> Result<Option<u64>, StoreError> {
        Ok(self
            .letters()
            .iter()
            .find(|(l, _)| l.id == id)
            .and_then(|(_, sequence)| *sequence))
    }

    fn linked(&self, sequence: u64) -> Result<usize, StoreError> {
        Ok(self
            .letters()
            .iter()
            .filter(|(_, linked)| *linked == Some(sequence))
            .count())
    }
}

/// Why [`DeadLetters::redispatch`](crate::DeadLetters::redispatch) did not re-deliver a letter.
/// The letter stays in the queue, except for [`RedispatchError::Store`] after removal.
///
/// ```
/// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
/// use eventbus_runtime::{BusCore, Event, RedispatchError};
///
/// let core = BusCore::new(manifest);
/// let _ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
/// let err = core.dead_letters().redispatch(42).unwrap_err();
/// assert!(matches!(err, RedispatchError::NotFound(42)));
/// assert_eq!(err.to_string(), "no dead letter #42");
/// ```
#[derive(Debug)]
#[non_exhaustive]
pub enum RedispatchError {
    /// No letter has this id.
    NotFound(u64),
    /// The letter's event is not on this bus.
    UnknownEvent(String),
    /// The handler the letter was for is no longer subscribed.
    HandlerGone {
        /// The event's name.
        event: String,
        /// The handler's label.
        handler: String,
    },
    /// The stored payload does not match the event's current payload type.
    InvalidPayload(crate::DispatchError),
    /// The bus is shut down.
    ShutDown,
    /// The dead-letter store failed.
    Store(StoreError),
}

impl fmt::Display for RedispatchError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RedispatchError::NotFound(id) => write!(f, "no dead letter #{id}"),
            RedispatchError::UnknownEvent(event) => {
                write!(f, "event `{event}` is not on this bus")
            }
            RedispatchError::HandlerGone { event, handler } => write!(
                f,
                "{handler} of event `{event}` is no longer subscribed; discard the letter or \
                 re-dispatch it after subscribing again"
            ),
            RedispatchError::InvalidPayload(error) => write!(f, "{error}"),
            RedispatchError::ShutDown => write!(f, "the bus is shut down"),
            RedispatchError::Store(error) => write!(f, "dead-letter store: {error}"),
        }
    }
}

impl Error for RedispatchError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            RedispatchError::InvalidPayload(error) => Some(error),
            RedispatchError::Store(error) => Some(&**error),
            _ => None,
        }
    }
}
