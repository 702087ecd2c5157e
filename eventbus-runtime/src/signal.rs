//! `Signal`: an event without payload.

use std::borrow::Cow;
use std::fmt;
#[cfg(feature = "async")]
use std::future::Future;

use crate::bus::BusCore;
use crate::event::Event;
use crate::handler::HandlerResult;
use crate::meta::EventMeta;
use crate::options::HandlerOptions;
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
    pub(crate) event: Event<()>,
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

    /// Adds a labelled listener. See [`Event::on_labeled`].
    pub fn on_labeled<F, R>(&self, label: impl Into<Cow<'static, str>>, handler: F) -> Subscription
    where
        F: Fn() -> R + Send + Sync + 'static,
        R: HandlerResult,
    {
        self.event.on_labeled(label, move |_: &()| handler())
    }

    /// Adds a listener with [`HandlerOptions`]. See [`Event::on_with`].
    pub fn on_with<F, R>(&self, options: HandlerOptions, handler: F) -> Subscription
    where
        F: Fn() -> R + Send + Sync + 'static,
        R: HandlerResult,
    {
        self.event.on_with(options, move |_: &()| handler())
    }

    /// Adds an async handler. See [`Event::on_async`].
    #[cfg(feature = "async")]
    pub fn on_async<F, Fut, R>(&self, handler: F) -> Subscription
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: HandlerResult,
    {
        self.event.on_async(move |()| handler())
    }

    /// Adds an async handler with [`HandlerOptions`]. See [`Event::on_async_with`].
    #[cfg(feature = "async")]
    pub fn on_async_with<F, Fut, R>(&self, options: HandlerOptions, handler: F) -> Subscription
    where
        F: Fn() -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: HandlerResult,
    {
        self.event.on_async_with(options, move |()| handler())
    }

    /// Adds a batch handler: it receives how many signals the batch holds. See
    /// [`Event::on_batch`].
    #[cfg(feature = "async")]
    pub fn on_batch<F, R>(&self, handler: F) -> Subscription
    where
        F: Fn(usize) -> R + Send + Sync + 'static,
        R: HandlerResult,
    {
        self.event
            .on_batch(move |batch: &[()]| handler(batch.len()))
    }

    /// Adds a batch handler with [`HandlerOptions`]. See [`Event::on_batch_with`].
    #[cfg(feature = "async")]
    pub fn on_batch_with<F, R>(&self, options: HandlerOptions, handler: F) -> Subscription
    where
        F: Fn(usize) -> R + Send + Sync + 'static,
        R: HandlerResult,
    {
        self.event
            .on_batch_with(options, move |batch: &[()]| handler(batch.len()))
    }

    /// The signals as a bounded stream of `()`. See [`Event::subscribe`].
    #[cfg(feature = "async")]
    pub fn subscribe(&self) -> crate::stream::EventStream<()> {
        self.event.subscribe()
    }

    /// The signals as a bounded stream of `capacity` items. See
    /// [`Event::subscribe_with_capacity`].
    #[cfg(feature = "async")]
    pub fn subscribe_with_capacity(&self, capacity: usize) -> crate::stream::EventStream<()> {
        self.event.subscribe_with_capacity(capacity)
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
