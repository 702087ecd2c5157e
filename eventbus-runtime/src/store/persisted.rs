//! `PersistedEvent<T>` / `PersistedSignal`: the generated field type of a `persist: true`
//! event, whose `emit` says whether the event was stored.

use std::error::Error;
use std::fmt;
use std::ops::Deref;
use std::str::FromStr;
use std::sync::Arc;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::bus::BusCore;
#[cfg(feature = "async")]
use crate::event::EventInner;
use crate::event::{Event, Payload};
use crate::meta::EventMeta;
use crate::signal::Signal;

/// A `persist: true` event: `bus.package_install` is a `PersistedEvent<PackageEvent>`.
///
/// It is an [`Event`] (it dereferences to one: `on`, `once`, `subscribe`, … are the same)
/// whose [`emit`](Self::emit) writes the event to the bus's event store (`EventStore`, with
/// the `store` feature) before any handler runs, and returns a [`Receipt`] once it is durable.
/// See `docs/persistence.md`.
///
/// On a bus without an event store (or a build without the `store` feature) the event is
/// dispatched as any other and the receipt says it was not stored
/// ([`Receipt::is_stored`] is `false`).
///
/// [`emit`](Self::emit) and [`emit_ref`](Self::emit_ref) are its own methods, so method
/// resolution picks them before the `Deref` target's. [`event()`](Self::event) is the
/// untracked escape hatch: `bus.package_install.event().emit(p)` still stores the event
/// before its handlers run, but returns nothing — a store failure is then only reported
/// ([`FailureKind::NotStored`](crate::FailureKind::NotStored)), never returned.
///
/// ```
/// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
/// use eventbus_runtime::{BusCore, PersistedEvent};
///
/// let core = BusCore::new(manifest); // no event store
/// let ping: PersistedEvent<u32> = PersistedEvent::new(&core, manifest.event("ping").unwrap());
/// ping.on(|n| println!("ping {n}"));
/// let receipt = ping.emit(7).unwrap();
/// assert!(!receipt.is_stored());
/// ```
pub struct PersistedEvent<T: Payload> {
    event: Event<T>,
}

impl<T: Payload> PersistedEvent<T> {
    /// Creates the event described by `meta` and registers it with `core` (see [`Event::new`]).
    /// Generated code calls this for every `persist: true` event with a payload.
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("packageInstall", Some("u32"))]);
    /// use eventbus_runtime::{BusCore, PersistedEvent};
    ///
    /// let core = BusCore::new(manifest);
    /// let install: PersistedEvent<u32> = PersistedEvent::new(&core, manifest.event("packageInstall").unwrap());
    /// // Everything else of `Event` through `Deref`:
    /// assert_eq!(install.name(), "packageInstall");
    /// assert_eq!(install.listener_count(), 0);
    /// ```
    ///
    /// # Panics
    ///
    /// As [`Event::new`].
    pub fn new(core: &BusCore, meta: &'static EventMeta) -> Self {
        PersistedEvent {
            event: Event::new(core, meta),
        }
    }

    /// Stores `payload` (when the bus has an event store), then delivers it exactly as
    /// [`Event::emit`] does.
    ///
    /// With a store, `Ok` means the event is durable — in the SQLite store, committed with
    /// `synchronous=FULL` — and has a sequence number; its handlers ran (sync ones) or were
    /// scheduled. `Err` means it was **not** stored and **no** handler ran: retrying is safe.
    /// The call blocks the emitting thread until the store committed the event; concurrent
    /// emitters share one commit (group commit).
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// # #[cfg(feature = "store")]
    /// use eventbus_runtime::{BusCore, PersistedEvent, SqliteStore};
    ///
    /// # #[cfg(feature = "store")] {
    /// # let manifest = eventbus_runtime::__doc::persisted(&[("ping", Some("u32"))]);
    /// let dir = tempfile::tempdir()?;
    /// let store = SqliteStore::open(dir.path().join("events.db"))?;
    /// let core: BusCore = BusCore::builder(manifest).event_store(store).build()?;
    /// let ping: PersistedEvent<u32> = PersistedEvent::new(&core, manifest.event("ping").unwrap());
    ///
    /// let receipt = ping.emit(7)?;
    /// assert_eq!(receipt.sequence(), Some(1));
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    /// ```
    pub fn emit(&self, payload: T) -> Result<Receipt, PersistError> {
        self.event.inner.emit_tracked(payload)
    }

    /// [`emit`](Self::emit) for a payload the caller keeps, with the same guarantee: `Ok` once
    /// the event is stored, `Err` when it was not and no handler ran. The payload is cloned
    /// once. It takes precedence over [`Event::emit_ref`] (reachable through `Deref`, which
    /// returns nothing).
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::{BusCore, PersistedEvent, Receipt};
    ///
    /// let core = BusCore::new(manifest); // no event store
    /// let ping: PersistedEvent<String> = PersistedEvent::new(&core, manifest.event("ping").unwrap());
    /// let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    /// let log = seen.clone();
    /// ping.on(move |s: &String| log.lock().unwrap().push(s.clone()));
    /// let payload = String::from("kept");
    /// let receipt: Receipt = ping.emit_ref(&payload)?;
    /// assert!(!receipt.is_stored());
    /// assert_eq!(payload, "kept"); // still the caller's
    /// assert_eq!(*seen.lock().unwrap(), ["kept"]);
    /// # Ok::<(), eventbus_runtime::PersistError>(())
    /// ```
    pub fn emit_ref(&self, payload: &T) -> Result<Receipt, PersistError> {
        self.event.inner.emit_tracked(payload.clone())
    }

    /// [`emit`](Self::emit) for async code, with the same guarantee. `emit` blocks its thread
    /// until the event store's group commit is on disk (and, for a `scope: distributed`
    /// event, until JetStream acknowledged it, see `docs/nats.md`); this waits on tokio's
    /// blocking pool instead, so the task's worker thread keeps running other tasks. Needs a
    /// tokio runtime. Emits awaited one after the other keep their order; concurrent ones are
    /// ordered as the store commits them.
    ///
    /// ```
    /// # #[cfg(feature = "store")]
    /// use eventbus_runtime::{BusCore, PersistedEvent, SqliteStore};
    ///
    /// # #[cfg(feature = "store")]
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    /// # let manifest = eventbus_runtime::__doc::persisted(&[("ping", Some("u32"))]);
    /// let dir = tempfile::tempdir()?;
    /// let store = SqliteStore::open(dir.path().join("events.db"))?;
    /// let core: BusCore = BusCore::builder(manifest).event_store(store).build()?;
    /// let ping: PersistedEvent<u32> = PersistedEvent::new(&core, manifest.event("ping").unwrap());
    ///
    /// let receipt = ping.emit_async(7).await?;
    /// assert_eq!(receipt.sequence(), Some(1));
    /// # Ok(())
    /// # }
    /// # #[cfg(not(feature = "store"))]
    /// # fn main() {}
    /// ```
    #[cfg(feature = "async")]
    pub async fn emit_async(&self, payload: T) -> Result<Receipt, PersistError> {
        emit_blocking(self.event.inner.clone(), payload).await
    }

    /// The underlying [`Event`] (also reachable through `Deref`): the untracked escape hatch.
    /// Its `emit` and `emit_ref` still store the event first, but return nothing; a store
    /// failure is only reported as [`FailureKind::NotStored`](crate::FailureKind::NotStored).
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::{BusCore, PersistedEvent};
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicU32, Ordering};
    ///
    /// let core = BusCore::new(manifest);
    /// let ping: PersistedEvent<u32> = PersistedEvent::new(&core, manifest.event("ping").unwrap());
    /// let last = Arc::new(AtomicU32::new(0));
    /// let sink = last.clone();
    /// ping.on(move |n| sink.store(*n, Ordering::SeqCst));
    ///
    /// let () = ping.event().emit(7); // no receipt
    /// assert_eq!(last.load(Ordering::SeqCst), 7);
    /// ```
    pub fn event(&self) -> &Event<T> {
        &self.event
    }
}

impl<T: Payload> Deref for PersistedEvent<T> {
    type Target = Event<T>;

    fn deref(&self) -> &Event<T> {
        &self.event
    }
}

impl<T: Payload> Clone for PersistedEvent<T> {
    fn clone(&self) -> Self {
        PersistedEvent {
            event: self.event.clone(),
        }
    }
}

impl<T: Payload> fmt::Debug for PersistedEvent<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PersistedEvent")
            .field("name", &self.event.name())
            .field("listeners", &self.event.listener_count())
            .finish()
    }
}

/// A `persist: true` event without payload: a [`Signal`] (it dereferences to one) whose
/// [`emit`](Self::emit) stores the event first, as [`PersistedEvent::emit`] does.
///
/// ```
/// # let manifest = eventbus_runtime::__doc::manifest(&[("systemRestart", None)]);
/// use eventbus_runtime::{BusCore, PersistedSignal};
///
/// let core = BusCore::new(manifest);
/// let restart = PersistedSignal::new(&core, manifest.event("systemRestart").unwrap());
/// restart.on(|| println!("restarting"));
/// assert!(restart.emit().is_ok());
/// ```
#[derive(Clone)]
pub struct PersistedSignal {
    signal: Signal,
}

impl PersistedSignal {
    /// Creates the payload-less event described by `meta` and registers it with `core`.
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("systemRestart", None)]);
    /// use eventbus_runtime::{BusCore, PersistedSignal};
    ///
    /// let core = BusCore::new(manifest);
    /// let restart = PersistedSignal::new(&core, manifest.event("systemRestart").unwrap());
    /// assert_eq!(restart.name(), "systemRestart");
    /// ```
    ///
    /// # Panics
    ///
    /// As [`Signal::new`].
    pub fn new(core: &BusCore, meta: &'static EventMeta) -> Self {
        PersistedSignal {
            signal: Signal::new(core, meta),
        }
    }

    /// Stores the event (when the bus has an event store), then calls every listener. See
    /// [`PersistedEvent::emit`] for what `Ok` and `Err` mean.
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("systemRestart", None)]);
    /// # #[cfg(feature = "store")]
    /// use eventbus_runtime::{BusCore, PersistedSignal, SqliteStore};
    ///
    /// # #[cfg(feature = "store")] {
    /// # let manifest = eventbus_runtime::__doc::persisted(&[("systemRestart", None)]);
    /// let dir = tempfile::tempdir()?;
    /// let store = SqliteStore::open(dir.path().join("events.db"))?;
    /// let core: BusCore = BusCore::builder(manifest).event_store(store).build()?;
    /// let restart = PersistedSignal::new(&core, manifest.event("systemRestart").unwrap());
    ///
    /// assert_eq!(restart.emit()?.sequence(), Some(1));
    /// assert_eq!(restart.emit()?.sequence(), Some(2));
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    /// ```
    pub fn emit(&self) -> Result<Receipt, PersistError> {
        self.signal.event.inner.emit_tracked(())
    }

    /// [`emit`](Self::emit) for async code: see [`PersistedEvent::emit_async`].
    ///
    /// ```
    /// use eventbus_runtime::{BusCore, PersistedSignal};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), eventbus_runtime::PersistError> {
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("systemRestart", None)]);
    /// let core = BusCore::new(manifest); // no event store: nothing is stored
    /// let restart = PersistedSignal::new(&core, manifest.event("systemRestart").unwrap());
    /// assert!(!restart.emit_async().await?.is_stored());
    /// # Ok(())
    /// # }
    /// ```
    #[cfg(feature = "async")]
    pub async fn emit_async(&self) -> Result<Receipt, PersistError> {
        emit_blocking(self.signal.event.inner.clone(), ()).await
    }

    /// The underlying [`Signal`] (also reachable through `Deref`).
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("systemRestart", None)]);
    /// use eventbus_runtime::{BusCore, PersistedSignal, Signal};
    ///
    /// let core = BusCore::new(manifest);
    /// let restart = PersistedSignal::new(&core, manifest.event("systemRestart").unwrap());
    /// let signal: &Signal = restart.signal();
    /// signal.on(|| ());
    /// assert_eq!(restart.listener_count(), 1);
    /// ```
    pub fn signal(&self) -> &Signal {
        &self.signal
    }
}

impl Deref for PersistedSignal {
    type Target = Signal;

    fn deref(&self) -> &Signal {
        &self.signal
    }
}

impl fmt::Debug for PersistedSignal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PersistedSignal")
            .field("name", &self.signal.name())
            .field("listeners", &self.signal.listener_count())
            .finish()
    }
}

/// A tracked emit run on tokio's blocking pool: a panic there (none is expected: handlers'
/// panics are caught) goes on in the caller; a runtime that shut down before it ran means the
/// bus did too.
#[cfg(feature = "async")]
async fn emit_blocking<T: Payload>(
    inner: Arc<EventInner<T>>,
    payload: T,
) -> Result<Receipt, PersistError> {
    let event = inner.ctx.meta.name;
    match tokio::task::spawn_blocking(move || inner.emit_tracked(payload)).await {
        Ok(result) => result,
        Err(error) if error.is_panic() => std::panic::resume_unwind(error.into_panic()),
        Err(_) => Err(PersistError::ShutDown { event }),
    }
}

/// What [`PersistedEvent::emit`] did: whether the event was stored, and under which sequence
/// number and id.
///
/// ```
/// use eventbus_runtime::Receipt;
/// let receipt = Receipt::NOT_STORED;
/// assert_eq!((receipt.is_stored(), receipt.sequence(), receipt.id()), (false, None, None));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Receipt {
    stored: Option<(u64, EventId)>,
    /// The id and JetStream stream sequence of a published event.
    #[cfg(feature = "nats")]
    published: Option<(EventId, u64)>,
}

impl Receipt {
    /// The receipt of an event delivered without being stored (the bus has no event store, or
    /// the event is not `persist: true`).
    pub const NOT_STORED: Receipt = Receipt {
        stored: None,
        #[cfg(feature = "nats")]
        published: None,
    };

    #[cfg(feature = "store")]
    pub(crate) fn stored(sequence: u64, id: EventId) -> Receipt {
        Receipt {
            stored: Some((sequence, id)),
            #[cfg(feature = "nats")]
            published: None,
        }
    }

    /// This receipt, and the event was stored in the JetStream stream under `stream_sequence`.
    #[cfg(feature = "nats")]
    pub(crate) fn published(self, id: EventId, stream_sequence: u64) -> Receipt {
        Receipt {
            published: Some((id, stream_sequence)),
            ..self
        }
    }

    /// Whether a JetStream stream acknowledged the event (a `scope: distributed`,
    /// `persist: true` event on a bus with NATS: see `docs/nats.md`).
    ///
    /// ```
    /// use eventbus_runtime::Receipt;
    ///
    /// // An event that did not go through JetStream (see `docs/nats.md` for one that did).
    /// let receipt = Receipt::NOT_STORED;
    /// assert!(!receipt.is_published());
    /// assert_eq!(receipt.stream_sequence(), None);
    /// ```
    #[cfg(feature = "nats")]
    pub fn is_published(&self) -> bool {
        self.published.is_some()
    }

    /// Its sequence number in the JetStream stream, once the stream acknowledged it (a
    /// duplicate publish of the same id gets the first one's).
    #[cfg(feature = "nats")]
    pub fn stream_sequence(&self) -> Option<u64> {
        self.published.map(|(_, sequence)| sequence)
    }

    /// Whether the event is durably stored.
    pub fn is_stored(&self) -> bool {
        self.stored.is_some()
    }

    /// Its sequence number in the store: increasing, without gaps.
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// # #[cfg(feature = "store")]
    /// use eventbus_runtime::{BusCore, EventStore, PersistedEvent, Query, SqliteStore};
    ///
    /// # #[cfg(feature = "store")] {
    /// # let manifest = eventbus_runtime::__doc::persisted(&[("ping", Some("u32"))]);
    /// let dir = tempfile::tempdir()?;
    /// let store = SqliteStore::open(dir.path().join("events.db"))?;
    /// let core: BusCore = BusCore::builder(manifest).event_store(store.clone()).build()?;
    /// let ping: PersistedEvent<u32> = PersistedEvent::new(&core, manifest.event("ping").unwrap());
    ///
    /// let first = ping.emit(1)?;
    /// let second = ping.emit(2)?;
    /// assert!(first.is_stored());
    /// assert_eq!((first.sequence(), second.sequence()), (Some(1), Some(2)));
    /// // The id is the stored event's.
    /// assert_eq!(store.query(&Query::new())?[1].id, second.id().unwrap());
    /// # }
    /// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    /// ```
    pub fn sequence(&self) -> Option<u64> {
        self.stored.map(|(sequence, _)| sequence)
    }

    /// Its id (a UUID v4), also the CloudEvents `id` (and, for a published event, its
    /// `Nats-Msg-Id`).
    pub fn id(&self) -> Option<EventId> {
        let id = self.stored.map(|(_, id)| id);
        #[cfg(feature = "nats")]
        let id = id.or(self.published.map(|(id, _)| id));
        id
    }
}

/// Why [`PersistedEvent::emit`] did not store an event. In every case **no handler ran**.
///
/// ```
/// use eventbus_runtime::PersistError;
/// let error = PersistError::ShutDown { event: "ping" };
/// assert_eq!(error.to_string(), "event `ping` not emitted: the bus is shut down");
/// assert_eq!(error.event(), "ping");
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub enum PersistError {
    /// The event store failed (disk full, read-only file, I/O error, …): the event is not
    /// stored. Every emit of the same group commit gets the same error.
    Store {
        /// The event's manifest name.
        event: &'static str,
        /// What the store said.
        error: Arc<dyn Error + Send + Sync>,
    },
    /// The payload cannot be written as JSON (a value JSON cannot represent exactly).
    Payload {
        /// The event's manifest name.
        event: &'static str,
        /// serde_json's message.
        message: String,
    },
    /// The bus is shut down; the emit was refused (and dead-lettered, as any emit after
    /// shutdown).
    ShutDown {
        /// The event's manifest name.
        event: &'static str,
    },
    /// A `scope: distributed`, `persist: true` event was not acknowledged by the JetStream
    /// stream within the publish deadline (the broker is unreachable, or the stream refused
    /// it), or the link's outbox was full: no handler ran. When the deadline passed, the broker
    /// may still have stored it (its acknowledgements were lost); an emit of the same payload
    /// is a new event with a new id.
    #[cfg(feature = "nats")]
    NotPublished {
        /// The event's manifest name.
        event: &'static str,
        /// The id it was published under.
        id: EventId,
        /// What went wrong.
        message: String,
    },
}

impl PersistError {
    /// The event's manifest name.
    pub fn event(&self) -> &'static str {
        match self {
            PersistError::Store { event, .. }
            | PersistError::Payload { event, .. }
            | PersistError::ShutDown { event } => event,
            #[cfg(feature = "nats")]
            PersistError::NotPublished { event, .. } => event,
        }
    }
}

impl fmt::Display for PersistError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PersistError::Store { event, error } => {
                write!(f, "event `{event}` was not stored: {error}")
            }
            PersistError::Payload { event, message } => write!(
                f,
                "event `{event}` was not stored: its payload cannot be written as JSON: {message}"
            ),
            PersistError::ShutDown { event } => {
                write!(f, "event `{event}` not emitted: the bus is shut down")
            }
            #[cfg(feature = "nats")]
            PersistError::NotPublished { event, id, message } => {
                write!(
                    f,
                    "event `{event}` ({id}) was not published to NATS: {message}"
                )
            }
        }
    }
}

impl Error for PersistError {
    fn source(&self) -> Option<&(dyn Error + 'static)> {
        match self {
            PersistError::Store { error, .. } => Some(&**error),
            _ => None,
        }
    }
}

/// The id of a stored event: a random (version 4) UUID, written in its usual hyphenated
/// lowercase form. Unique across stores and processes, unlike the sequence number.
///
/// ```
/// use eventbus_runtime::EventId;
///
/// let id: EventId = "0191d3a2-7c4e-4b8a-9f3e-2a1b0c9d8e7f".parse().unwrap();
/// assert_eq!(id.to_string(), "0191d3a2-7c4e-4b8a-9f3e-2a1b0c9d8e7f");
/// assert_eq!(serde_json::to_string(&id).unwrap(), "\"0191d3a2-7c4e-4b8a-9f3e-2a1b0c9d8e7f\"");
/// assert!("not-a-uuid".parse::<EventId>().is_err());
/// ```
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct EventId([u8; 16]);

impl EventId {
    /// The id made of these 16 bytes.
    ///
    /// ```
    /// use eventbus_runtime::EventId;
    ///
    /// let id = EventId::from_bytes([0x01; 16]);
    /// assert_eq!(id.to_string(), "01010101-0101-0101-0101-010101010101");
    /// ```
    pub const fn from_bytes(bytes: [u8; 16]) -> EventId {
        EventId(bytes)
    }

    /// Its 16 bytes.
    ///
    /// ```
    /// use eventbus_runtime::EventId;
    ///
    /// let id: EventId = "00000000-0000-4000-8000-0000000000ff".parse().unwrap();
    /// assert_eq!(id.as_bytes()[15], 0xff);
    /// assert_eq!(EventId::from_bytes(*id.as_bytes()), id);
    /// ```
    pub const fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// A new random id (UUID version 4, variant RFC 4122), from the operating system's random
    /// source.
    ///
    /// ```
    /// use eventbus_runtime::EventId;
    /// let (a, b) = (EventId::new_v4(), EventId::new_v4());
    /// assert_ne!(a, b);
    /// assert_eq!(a.to_string().as_bytes()[14], b'4');
    /// ```
    ///
    /// # Panics
    ///
    /// If the operating system has no random source (`getrandom` fails), which no supported
    /// platform does once booted.
    #[cfg(any(feature = "store", feature = "nats"))]
    pub fn new_v4() -> EventId {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes).expect("eventbus: the OS random source failed");
        bytes[6] = (bytes[6] & 0x0f) | 0x40;
        bytes[8] = (bytes[8] & 0x3f) | 0x80;
        EventId(bytes)
    }
}

impl fmt::Display for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, byte) in self.0.iter().enumerate() {
            if matches!(i, 4 | 6 | 8 | 10) {
                f.write_str("-")?;
            }
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for EventId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "EventId({self})")
    }
}

/// The error of parsing an [`EventId`].
///
/// ```
/// use eventbus_runtime::{EventId, ParseEventIdError};
///
/// let err: ParseEventIdError = "0191d3a2".parse::<EventId>().unwrap_err();
/// assert_eq!(err.to_string(), "`0191d3a2` is not a UUID (expected 8-4-4-4-12 hex digits)");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseEventIdError(String);

impl fmt::Display for ParseEventIdError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "`{}` is not a UUID (expected 8-4-4-4-12 hex digits)",
            self.0
        )
    }
}

impl Error for ParseEventIdError {}

impl FromStr for EventId {
    type Err = ParseEventIdError;

    fn from_str(text: &str) -> Result<EventId, ParseEventIdError> {
        let error = || ParseEventIdError(text.to_owned());
        let bytes = text.as_bytes();
        if bytes.len() != 36 {
            return Err(error());
        }
        let mut out = [0u8; 16];
        let mut digits = bytes
            .iter()
            .enumerate()
            .filter(|&(i, b)| !(matches!(i, 8 | 13 | 18 | 23) && *b == b'-'))
            .map(|(_, b)| (*b as char).to_digit(16));
        for byte in &mut out {
            let (Some(Some(high)), Some(Some(low))) = (digits.next(), digits.next()) else {
                return Err(error());
            };
            *byte = (high * 16 + low) as u8;
        }
        if digits.next().is_some() {
            return Err(error());
        }
        Ok(EventId(out))
    }
}

impl Serialize for EventId {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for EventId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<EventId, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}
