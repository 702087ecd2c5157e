//! The eventbus runtime: typed, in-process dispatch for the events generated from
//! `events.yaml`.
//!
//! Generated code targets this crate (through the `eventbus` facade): a generated `EventBus`
//! holds a [`BusCore`] and one [`Event<T>`] per event with a payload, or one [`Signal`] per event
//! without. Handlers run synchronously on the emitting thread, in subscription order; a
//! failing or panicking handler never stops the others and is reported as a
//! [`HandlerFailure`]. The [`wire`] module fixes how payload fields look in JSON, and
//! [`Timestamp`] is the manifest's `timestamp` type.
//!
//! This is roughly what generated code does, written by hand:
//!
//! ```
//! use eventbus_runtime::{BusCore, Event, EventMeta, ManifestMeta, Policies, Signal, UiDirection};
//!
//! #[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
//! pub struct Notification { pub title: String }
//!
//! const fn event(name: &'static str, payload: Option<&'static str>) -> EventMeta {
//!     EventMeta {
//!         name, category: "demo", description: "", payload, persist: false,
//!         ui: UiDirection::None, deprecated: None, policies: Policies::NONE,
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
#![forbid(unsafe_code)]

mod bus;
mod error;
mod event;
mod handler;
mod listeners;
mod meta;
mod signal;
mod subscription;
mod timestamp;
pub mod wire;

pub use bus::BusCore;
pub use error::DispatchError;
pub use event::{Event, Payload};
pub use handler::{HandlerFailure, HandlerResult};
pub use meta::{Batch, EventMeta, ManifestMeta, Policies, RateLimit, Retry, UiDirection};
pub use signal::Signal;
pub use subscription::Subscription;
pub use timestamp::Timestamp;

/// Helpers for this crate's doc examples and tests; not part of the API.
#[doc(hidden)]
pub mod __doc {
    use crate::meta::{EventMeta, ManifestMeta, Policies, UiDirection};

    /// Leaks a manifest of package `demo` with the given `(name, payload type)` events.
    pub fn manifest(events: &[(&'static str, Option<&'static str>)]) -> &'static ManifestMeta {
        let events: Vec<EventMeta> = events
            .iter()
            .map(|&(name, payload)| EventMeta {
                name,
                category: "demo",
                description: "",
                payload,
                persist: false,
                ui: UiDirection::None,
                deprecated: None,
                policies: Policies::NONE,
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
