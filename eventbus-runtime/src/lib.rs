//! The eventbus runtime: typed, in-process dispatch for the events generated from
//! `events.yaml`.
//!
//! Generated code targets this crate (through the `eventbus` facade): a generated `EventBus`
//! holds a [`BusCore`] and one [`Event<T>`] per event with a payload, or one [`Signal`] per event
//! without. Sync handlers run on the emitting thread, in subscription order; a failing or
//! panicking handler never stops the others and is reported as a [`HandlerFailure`]. The
//! [`wire`] module fixes how payload fields look in JSON, and [`Timestamp`] is the manifest's
//! `timestamp` type.
//!
//! The reliability layer (`docs/reliability.md`): failures go to [`BusCore::on_failure`],
//! `BusCore::errors()` and `tracing`; failed handlers are retried per the event's `retry`
//! policy and then kept in a [`DeadLetters`] queue; handlers may have a circuit breaker
//! ([`CircuitBreakerConfig`]); `throttle`, `debounce`, `rate_limit` and `batch` policies, async
//! handlers, bounded `subscribe()` streams and `shutdown()` need the `async` feature;
//! [`BusCore::stats`] counts failures always and throughput with [`BusBuilder::instrument`],
//! and the `metrics` feature exports the same through the `metrics` facade.
//!
//! Cargo features: `async` (tokio, governor), `tracing`, `metrics`; all three are on by default
//! in this crate, and the `eventbus` facade forwards them. `store` adds the SQLite event store
//! (`docs/persistence.md`), `bridge` the WebSocket bridge to browsers (module `bridge`,
//! `docs/bridge.md`), and `nats` buses across processes through NATS JetStream for the events
//! whose manifest `scope` is `distributed` (module `nats`, `docs/nats.md`).
//!
//! This is roughly what generated code does, written by hand:
//!
//! ```
//! use eventbus_runtime::{BusCore, Event, EventMeta, ManifestMeta, Policies, Scope, Signal, UiDirection};
//!
//! #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
//! pub struct Notification { pub title: String }
//!
//! const fn event(name: &'static str, payload: Option<&'static str>) -> EventMeta {
//!     EventMeta {
//!         name, category: "demo", description: "", payload, persist: false,
//!         ui: UiDirection::None, scope: Scope::Local, deprecated: None, policies: Policies::NONE,
//!     }
//! }
//! static EVENTS: [EventMeta; 2] = [event("notification", Some("Notification")), event("refresh", None)];
//! static MANIFEST: ManifestMeta = ManifestMeta {
//!     package: "demo", version: 1, fingerprint: "0123456789abcdef", events: &EVENTS,
//! };
//!
//! #[derive(Clone)]
//! pub struct EventBus {
//!     core: BusCore,
//!     pub notification: Event<Notification>,
//!     pub refresh: Signal,
//! }
//!
//! impl EventBus {
//!     pub fn new() -> Self {
//!         let core = BusCore::new(&MANIFEST);
//!         EventBus {
//!             notification: Event::new(&core, &EVENTS[0]),
//!             refresh: Signal::new(&core, &EVENTS[1]),
//!             core,
//!         }
//!     }
//! }
//!
//! let bus = EventBus::new();
//! bus.notification.on(|n| println!("notification: {}", n.title));
//! bus.refresh.on(|| println!("refresh"));
//! bus.core.on_failure(|failure| eprintln!("{failure}"));
//!
//! bus.notification.emit(Notification { title: "Synced".into() });
//! bus.refresh.emit();
//! // The same, by name and JSON, as a bridge would do it:
//! bus.core.emit_json("notification", r#"{"title": "Synced"}"#).unwrap();
//! bus.core.emit_json("refresh", "null").unwrap();
//! ```

#![deny(missing_docs)]
// `unsafe` is allowed in two modules only: `rcu`, the pointer to the listener snapshot, and
// `snapshot`, the snapshot's two-word handler references (see their docs).
#![deny(unsafe_code)]

#[cfg(feature = "async")]
mod async_handler;
#[cfg(feature = "async")]
mod batch;
mod breaker;
#[cfg(feature = "bridge")]
pub mod bridge;
mod builder;
mod bus;
mod clock;
#[cfg(any(feature = "bridge", feature = "nats"))]
mod cloudevents;
mod dead_letter;
pub mod defaults;
mod error;
mod event;
#[cfg(feature = "async")]
mod flood;
mod handler;
mod listeners;
mod meta;
#[cfg(feature = "nats")]
pub mod nats;
mod options;
mod rcu;
#[cfg(feature = "async")]
mod retry;
#[cfg(feature = "async")]
mod runtime;
#[cfg(feature = "async")]
mod share;
mod shared;
#[cfg(feature = "async")]
mod shutdown;
mod signal;
mod snapshot;
mod stats;
mod store;
#[cfg(feature = "async")]
mod stream;
mod subscription;
mod timestamp;
pub mod wire;

/// Fuzz target bodies (`fuzz/`, `tests/fuzz_corpus.rs`); not part of the API.
#[doc(hidden)]
#[path = "fuzz.rs"]
pub mod __fuzz;

pub use breaker::{CircuitBreakerConfig, CircuitState};
pub use builder::{BuildError, BusBuilder, EventOptions, FromCore};
pub use bus::{BusCore, DeadLetters};
pub use dead_letter::{
    DeadLetter, DeadLetterReason, DeadLetterStore, MemoryDeadLetters, Pushed, RedispatchError,
    StoreError,
};
pub use error::DispatchError;
pub use event::{Event, Payload};
pub use handler::{FailureKind, HandlerFailure, HandlerResult};
pub use meta::{Batch, EventMeta, ManifestMeta, Policies, RateLimit, Retry, Scope, UiDirection};
pub use options::HandlerOptions;
#[cfg(feature = "async")]
pub use runtime::Jitter;
#[cfg(feature = "async")]
pub use shutdown::{ShutdownReport, Unfinished};
pub use signal::Signal;
pub use stats::{BusStats, EventStats, HandlerStats, metric_names};
#[cfg(feature = "store")]
pub use store::{
    Appended, Compacted, DecodeError, EventStore, NewEvent, Order, Query, Record, Records,
    ReplayReport, Retention, Since, SqliteOptions, SqliteStore, Status, StoredEvent, Unreadable,
};
#[cfg(all(feature = "store", feature = "async"))]
pub use store::{CatchUp, CatchUpError};
pub use store::{
    EventId, ParseEventIdError, PersistError, PersistedEvent, PersistedSignal, Receipt,
};
#[cfg(feature = "async")]
pub use stream::{EventStream, Failures, Lagged};
pub use subscription::Subscription;
pub use timestamp::Timestamp;

/// Items for generated code (through the facade's `__private`); not part of the API.
#[doc(hidden)]
pub mod __private {
    /// Whether this build honours the policies that need timers (the `async` feature):
    /// generated code asserts it at compile time when its manifest declares any.
    pub const ASYNC: bool = cfg!(feature = "async");
}

/// Helpers for this crate's doc examples and tests; not part of the API.
#[doc(hidden)]
pub mod __doc {
    use crate::meta::{EventMeta, ManifestMeta, Policies, Scope, UiDirection};

    /// Leaks a manifest of package `demo` with the given `(name, payload type)` events.
    pub fn manifest(events: &[(&'static str, Option<&'static str>)]) -> &'static ManifestMeta {
        let events: Vec<_> = events
            .iter()
            .map(|&(name, payload)| (name, payload, Policies::NONE))
            .collect();
        manifest_with(&events)
    }

    /// Leaks a manifest of package `demo` whose given `(name, payload type)` events are all
    /// `persist: true`.
    pub fn persisted(events: &[(&'static str, Option<&'static str>)]) -> &'static ManifestMeta {
        let manifest = manifest(events);
        let events: Vec<EventMeta> = manifest
            .events
            .iter()
            .map(|e| EventMeta {
                persist: true,
                ..*e
            })
            .collect();
        Box::leak(Box::new(ManifestMeta {
            events: Box::leak(events.into_boxed_slice()),
            ..*manifest
        }))
    }

    /// How many emits of `core` wait in its event-store queue for the writer thread (0
    /// without an event store): lets a test see emitters queued behind a commit it holds,
    /// instead of sleeping and hoping they are.
    #[cfg(feature = "store")]
    pub fn queued_appends(core: &crate::BusCore) -> usize {
        core.queued_appends()
    }

    /// Leaks a manifest of package `demo` with the given `(name, payload type, policies)`
    /// events.
    pub fn manifest_with(
        events: &[(&'static str, Option<&'static str>, Policies)],
    ) -> &'static ManifestMeta {
        let events: Vec<EventMeta> = events
            .iter()
            .map(|&(name, payload, policies)| EventMeta {
                name,
                category: "demo",
                description: "",
                payload,
                persist: false,
                ui: UiDirection::None,
                scope: Scope::Local,
                deprecated: None,
                policies,
            })
            .collect();
        Box::leak(Box::new(ManifestMeta {
            package: "demo",
            version: 1,
            fingerprint: "0000000000000000",
            events: Box::leak(events.into_boxed_slice()),
        }))
    }
}
