//! `Signal`: an event without payload.

use std::fmt;

use crate::bus::BusCore;
use crate::event::Event;
use crate::handler::HandlerResult;
use crate::meta::EventMeta;
use crate::subscription::Subscription;

/// An event without payload (`requestPackages`): `emit()` takes no argument and handlers take
/// none. Otherwise it behaves exactly like [`Event`], whose implementation it shares.
///
/// Through [`BusCore::emit_json`] it accepts the JSON `null` or `{}`.
///
/// ```
/// # let manifest = eventbus_runtime::__doc::manifest(&[("requestPackages", None)]);
/// use eventbus_runtime::{BusCore, Signal};
///
/// let core = BusCore::new(manifest);
/// let request_packages = Signal::new(&core, manifest.event("requestPackages").unwrap());
/// request_packages.on(|| println!("refreshing packages"));
/// request_packages.emit();
/// core.emit_json("requestPackages", "null").unwrap();
/// ```
#[derive(Clone)]
pub struct Signal {
    event: Event<()>,
}

impl Signal {
    /// Creates the payload-less event described by `meta` and registers it with `core`.
    ///
    /// # Panics
    ///
    /// If `core` already has an event named `meta.name`.
    pub fn new(core: &BusCore, meta: &'static EventMeta) -> Signal {
        Signal {
            event: Event::create(core, meta, true),
        }
    }

    /// Calls every listener, synchronously, in subscription order. See [`Event::emit`].
    pub fn emit(&self) {
        self.event.emit(());
    }

    /// Adds a listener called on every emit until unsubscribed. See [`Event::on`].
    pub fn on<F, R>(&self, handler: F) -> Subscription
    where
        F: Fn() -> R + Send + Sync + 'static,
        R: HandlerResult,
    {
        self.event.on(move |_: &()| handler())
    }

    /// Adds a listener called by the next emit only. See [`Event::once`].
    pub fn once<F, R>(&self, handler: F) -> Subscription
    where
        F: Fn() -> R + Send + Sync + 'static,
        R: HandlerResult,
    {
        self.event.once(move |_: &()| handler())
    }

    /// Removes every listener.
    pub fn remove_all_listeners(&self) {
        self.event.remove_all_listeners();
    }

    /// The number of listeners an emit would call now.
    pub fn listener_count(&self) -> usize {
        self.event.listener_count()
    }

    /// The event's manifest name (`"requestPackages"`).
    pub fn name(&self) -> &'static str {
        self.event.name()
    }

    /// The event as declared in the manifest.
    pub fn meta(&self) -> &'static EventMeta {
        self.event.meta()
    }
}

impl fmt::Debug for Signal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signal")
            .field("name", &self.name())
            .field("listeners", &self.listener_count())
            .finish()
    }
}
