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
pub type StoreError = Box<dyn Error + Send + Sync>;

/// Why an event was dead-lettered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DeadLetterReason {
    /// The handler failed on its last attempt (it returned `Err` or panicked).
    Failed,
    /// The handler's circuit breaker was open.
    CircuitOpen,
    /// A bounded queue was full (the event's rate-limit queue or an async handler's queue).
    Overflow,
    /// The bus was shut down: the emit was refused, or the work was still pending at the
    /// shutdown deadline (or its runtime stopped).
    ShutDown,
}

impl DeadLetterReason {
    /// `failed`, `circuit_open`, `overflow` or `shut_down` (as serialised).
    pub const fn as_str(self) -> &'static str {
        match self {
            DeadLetterReason::Failed => "failed",
            DeadLetterReason::CircuitOpen => "circuit_open",
            DeadLetterReason::Overflow => "overflow",
            DeadLetterReason::ShutDown => "shut_down",
        }
    }
}

/// One event that was not processed: by one handler (`handler` is set) or by the whole event
/// (`handler` is `None`: refused after shutdown, or its rate-limit queue was full).
///
/// Every field is public and the type is `Serialize`/`Deserialize`, so a persistent
/// [`DeadLetterStore`] can keep letters as they are.
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
    letters: Mutex<VecDeque<DeadLetter>>,
}

impl MemoryDeadLetters {
    /// A store holding at most `capacity` letters.
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
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    fn letters(&self) -> std::sync::MutexGuard<'_, VecDeque<DeadLetter>> {
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
        let mut letters = self.letters();
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        letter.id = id;
        let mut evicted = Vec::new();
        while letters.len() >= self.capacity {
            evicted.extend(letters.pop_front());
        }
        letters.push_back(letter);
        Ok(Pushed { id, evicted })
    }

    fn list(&self) -> Result<Vec<DeadLetter>, StoreError> {
        Ok(self.letters().iter().cloned().collect())
    }

    fn get(&self, id: u64) -> Result<Option<DeadLetter>, StoreError> {
        Ok(self.letters().iter().find(|l| l.id == id).cloned())
    }

    fn remove(&self, id: u64) -> Result<Option<DeadLetter>, StoreError> {
        let mut letters = self.letters();
        Ok(letters
            .iter()
            .position(|l| l.id == id)
            .and_then(|i| letters.remove(i)))
    }

    fn len(&self) -> Result<usize, StoreError> {
        Ok(self.letters().len())
    }
}

/// Why [`DeadLetters::redispatch`](crate::DeadLetters::redispatch) did not re-deliver a letter.
/// The letter stays in the queue, except for [`RedispatchError::Store`] after removal.
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
