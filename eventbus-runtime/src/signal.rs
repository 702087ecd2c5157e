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
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("refresh", None)]);
    /// use eventbus_runtime::{BusCore, Signal};
    ///
    /// let core = BusCore::new(manifest);
    /// let refresh = Signal::new(&core, manifest.event("refresh").unwrap());
    /// assert_eq!(refresh.name(), "refresh");
    /// assert_eq!(refresh.listener_count(), 0);
    /// ```
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
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("refresh", None)]);
    /// use eventbus_runtime::{BusCore, Signal};
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicU32, Ordering};
    ///
    /// let core = BusCore::new(manifest);
    /// let refresh = Signal::new(&core, manifest.event("refresh").unwrap());
    /// let count = Arc::new(AtomicU32::new(0));
    /// let counter = count.clone();
    /// refresh.on(move || {
    ///     counter.fetch_add(1, Ordering::SeqCst);
    /// });
    /// refresh.emit();
    /// refresh.emit();
    /// assert_eq!(count.load(Ordering::SeqCst), 2);
    /// ```
    pub fn emit(&self) {
        self.event.emit(());
    }

    /// Adds a listener called on every emit until unsubscribed. See [`Event::on`].
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("refresh", None)]);
    /// use eventbus_runtime::{BusCore, Signal};
    ///
    /// let core = BusCore::new(manifest);
    /// let refresh = Signal::new(&core, manifest.event("refresh").unwrap());
    /// // A plain handler, and a fallible one whose `Err` is reported and dead-lettered.
    /// refresh.on(|| println!("refreshing"));
    /// refresh.on(|| std::fs::read_to_string("/no/such/cache").map(|_| ()));
    /// refresh.emit();
    /// assert_eq!(refresh.listener_count(), 2);
    /// assert_eq!(core.dead_letters().len().unwrap(), 1);
    /// ```
    pub fn on<F, R>(&self, handler: F) -> Subscription
    where
        F: Fn() -> R + Send + Sync + 'static,
        R: HandlerResult,
    {
        self.event.on(move |_: &()| handler())
    }

    /// Adds a labelled listener. See [`Event::on_labeled`].
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("refresh", None)]);
    /// use eventbus_runtime::{BusCore, Signal};
    ///
    /// let core = BusCore::new(manifest);
    /// let refresh = Signal::new(&core, manifest.event("refresh").unwrap());
    /// refresh.on_labeled("cache-warmer", || Err::<(), _>("cache offline"));
    /// refresh.emit();
    /// let letter = &core.dead_letters().list().unwrap()[0];
    /// assert_eq!(letter.handler.as_deref(), Some("cache-warmer"));
    /// assert_eq!(letter.payload, serde_json::Value::Null);
    /// ```
    pub fn on_labeled<F, R>(&self, label: impl Into<Cow<'static, str>>, handler: F) -> Subscription
    where
        F: Fn() -> R + Send + Sync + 'static,
        R: HandlerResult,
    {
        self.event.on_labeled(label, move |_: &()| handler())
    }

    /// Adds a listener with [`HandlerOptions`]. See [`Event::on_with`].
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("refresh", None)]);
    /// use eventbus_runtime::{BusCore, CircuitBreakerConfig, CircuitState, HandlerOptions, Signal};
    ///
    /// let core = BusCore::new(manifest);
    /// let refresh = Signal::new(&core, manifest.event("refresh").unwrap());
    /// let options = HandlerOptions::new().label("reload").circuit_breaker(CircuitBreakerConfig::default());
    /// refresh.on_with(options, || ());
    /// let stats = core.stats();
    /// let handler = &stats.event("refresh").unwrap().handlers[0];
    /// assert_eq!((handler.label.as_str(), handler.circuit), ("reload", Some(CircuitState::Closed)));
    /// ```
    pub fn on_with<F, R>(&self, options: HandlerOptions, handler: F) -> Subscription
    where
        F: Fn() -> R + Send + Sync + 'static,
        R: HandlerResult,
    {
        self.event.on_with(options, move |_: &()| handler())
    }

    /// Adds an async handler. See [`Event::on_async`].
    ///
    /// ```
    /// use eventbus_runtime::{BusCore, Signal};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("refresh", None)]);
    /// let core = BusCore::new(manifest);
    /// let refresh = Signal::new(&core, manifest.event("refresh").unwrap());
    /// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// refresh.on_async(move || {
    ///     let tx = tx.clone();
    ///     async move { tx.send("refreshed") }
    /// });
    /// refresh.emit();
    /// assert_eq!(rx.recv().await, Some("refreshed"));
    /// # }
    /// ```
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
    ///
    /// ```
    /// use eventbus_runtime::{BusCore, HandlerOptions, Signal};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("refresh", None)]);
    /// let core = BusCore::new(manifest);
    /// let refresh = Signal::new(&core, manifest.event("refresh").unwrap());
    /// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// refresh.on_async_with(HandlerOptions::new().label("reload").concurrency(1), move || {
    ///     let tx = tx.clone();
    ///     async move { tx.send("refreshed") }
    /// });
    /// refresh.emit();
    /// assert_eq!(rx.recv().await, Some("refreshed"));
    /// assert_eq!(core.stats().event("refresh").unwrap().handlers[0].label, "reload");
    /// # }
    /// ```
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
    ///
    /// ```
    /// use eventbus_runtime::{Batch, BusCore, Policies, Signal};
    /// use std::sync::{Arc, Mutex};
    /// use std::time::Duration;
    ///
    /// // The manifest says `batch: { max_size: 3, max_wait: 1m }`.
    /// let batch = Batch { max_size: 3, max_wait: Duration::from_secs(60) };
    /// # let manifest = eventbus_runtime::__doc::manifest_with(&[("refresh", None, Policies { batch: Some(batch), ..Policies::NONE })]);
    /// let core = BusCore::new(manifest);
    /// let refresh = Signal::new(&core, manifest.event("refresh").unwrap());
    /// let sizes = Arc::new(Mutex::new(Vec::new()));
    /// let sink = sizes.clone();
    /// refresh.on_batch(move |count| sink.lock().unwrap().push(count));
    /// for _ in 0..6 {
    ///     refresh.emit();
    /// }
    /// assert_eq!(*sizes.lock().unwrap(), [3, 3]);
    /// ```
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
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("refresh", None)]);
    /// use eventbus_runtime::{Batch, BusCore, HandlerOptions, Signal};
    /// use std::sync::{Arc, Mutex};
    /// use std::time::Duration;
    ///
    /// let core = BusCore::new(manifest);
    /// let refresh = Signal::new(&core, manifest.event("refresh").unwrap());
    /// let sizes = Arc::new(Mutex::new(Vec::new()));
    /// let sink = sizes.clone();
    /// let batch = Batch { max_size: 2, max_wait: Duration::from_secs(60) };
    /// refresh.on_batch_with(HandlerOptions::new().batch(batch), move |count| sink.lock().unwrap().push(count));
    /// for _ in 0..4 {
    ///     refresh.emit();
    /// }
    /// assert_eq!(*sizes.lock().unwrap(), [2, 2]);
    /// ```
    #[cfg(feature = "async")]
    pub fn on_batch_with<F, R>(&self, options: HandlerOptions, handler: F) -> Subscription
    where
        F: Fn(usize) -> R + Send + Sync + 'static,
        R: HandlerResult,
    {
        self.event
            .on_batch_with(options, move |batch: &[()]| handler(batch.len()))
    }

    /// Adds an async batch handler: it receives how many signals the batch holds. See
    /// [`Event::on_batch_async`].
    ///
    /// ```
    /// use eventbus_runtime::{BusCore, Signal};
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("refresh", None)]);
    /// let core = BusCore::new(manifest);
    /// let refresh = Signal::new(&core, manifest.event("refresh").unwrap());
    /// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// refresh.on_batch_async(move |count| {
    ///     let tx = tx.clone();
    ///     async move { tx.send(count) }
    /// });
    /// for _ in 0..3 {
    ///     refresh.emit();
    /// }
    /// // The default batch is 10 signals or 1 s, whichever comes first.
    /// assert_eq!(rx.recv().await, Some(3));
    /// # }
    /// ```
    #[cfg(feature = "async")]
    pub fn on_batch_async<F, Fut, R>(&self, handler: F) -> Subscription
    where
        F: Fn(usize) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: HandlerResult,
    {
        self.event
            .on_batch_async(move |batch: Vec<()>| handler(batch.len()))
    }

    /// Adds an async batch handler with [`HandlerOptions`]. See
    /// [`Event::on_batch_async_with`].
    ///
    /// ```
    /// use eventbus_runtime::{Batch, BusCore, HandlerOptions, Signal};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("refresh", None)]);
    /// let core = BusCore::new(manifest);
    /// let refresh = Signal::new(&core, manifest.event("refresh").unwrap());
    /// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// let batch = Batch { max_size: 2, max_wait: Duration::from_secs(60) };
    /// refresh.on_batch_async_with(HandlerOptions::new().batch(batch), move |count| {
    ///     let tx = tx.clone();
    ///     async move { tx.send(count) }
    /// });
    /// for _ in 0..4 {
    ///     refresh.emit();
    /// }
    /// assert_eq!((rx.recv().await, rx.recv().await), (Some(2), Some(2)));
    /// # }
    /// ```
    #[cfg(feature = "async")]
    pub fn on_batch_async_with<F, Fut, R>(
        &self,
        options: HandlerOptions,
        handler: F,
    ) -> Subscription
    where
        F: Fn(usize) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: HandlerResult,
    {
        self.event
            .on_batch_async_with(options, move |batch: Vec<()>| handler(batch.len()))
    }

    /// The signals as a bounded stream of `()`. See [`Event::subscribe`].
    ///
    /// ```
    /// use eventbus_runtime::{BusCore, Signal};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("refresh", None)]);
    /// let core = BusCore::new(manifest);
    /// let refresh = Signal::new(&core, manifest.event("refresh").unwrap());
    /// let mut stream = refresh.subscribe();
    /// refresh.emit();
    /// assert_eq!(stream.recv().await, Some(Ok(())));
    /// # }
    /// ```
    #[cfg(feature = "async")]
    pub fn subscribe(&self) -> crate::stream::EventStream<()> {
        self.event.subscribe()
    }

    /// The signals as a bounded stream of `capacity` items. See
    /// [`Event::subscribe_with_capacity`].
    ///
    /// ```
    /// use eventbus_runtime::{BusCore, Lagged, Signal};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("refresh", None)]);
    /// let core = BusCore::new(manifest);
    /// let refresh = Signal::new(&core, manifest.event("refresh").unwrap());
    /// let mut stream = refresh.subscribe_with_capacity(1);
    /// for _ in 0..3 {
    ///     refresh.emit();
    /// }
    /// assert_eq!(stream.recv().await, Some(Err(Lagged(2))));
    /// assert_eq!(stream.recv().await, Some(Ok(())));
    /// # }
    /// ```
    #[cfg(feature = "async")]
    pub fn subscribe_with_capacity(&self, capacity: usize) -> crate::stream::EventStream<()> {
        self.event.subscribe_with_capacity(capacity)
    }

    /// Adds a listener called by the next emit only. See [`Event::once`].
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ready", None)]);
    /// use eventbus_runtime::{BusCore, Signal};
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicU32, Ordering};
    ///
    /// let core = BusCore::new(manifest);
    /// let ready = Signal::new(&core, manifest.event("ready").unwrap());
    /// let calls = Arc::new(AtomicU32::new(0));
    /// let counter = calls.clone();
    /// let subscription = ready.once(move || {
    ///     counter.fetch_add(1, Ordering::SeqCst);
    /// });
    /// ready.emit();
    /// ready.emit();
    /// assert_eq!(calls.load(Ordering::SeqCst), 1);
    /// assert!(!subscription.is_active());
    /// ```
    pub fn once<F, R>(&self, handler: F) -> Subscription
    where
        F: Fn() -> R + Send + Sync + 'static,
        R: HandlerResult,
    {
        self.event.once(move |_: &()| handler())
    }

    /// Removes every listener.
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("refresh", None)]);
    /// use eventbus_runtime::{BusCore, Signal};
    ///
    /// let core = BusCore::new(manifest);
    /// let refresh = Signal::new(&core, manifest.event("refresh").unwrap());
    /// let first = refresh.on(|| ());
    /// refresh.on(|| ());
    /// refresh.remove_all_listeners();
    /// assert_eq!(refresh.listener_count(), 0);
    /// assert!(!first.is_active());
    /// ```
    pub fn remove_all_listeners(&self) {
        self.event.remove_all_listeners();
    }

    /// The number of listeners an emit would call now.
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("refresh", None)]);
    /// use eventbus_runtime::{BusCore, Signal};
    ///
    /// let core = BusCore::new(manifest);
    /// let refresh = Signal::new(&core, manifest.event("refresh").unwrap());
    /// let subscription = refresh.on(|| ());
    /// refresh.once(|| ());
    /// assert_eq!(refresh.listener_count(), 2);
    /// subscription.unsubscribe();
    /// refresh.emit(); // the `once` listener fires and is removed
    /// assert_eq!(refresh.listener_count(), 0);
    /// ```
    pub fn listener_count(&self) -> usize {
        self.event.listener_count()
    }

    /// The event's manifest name (`"requestPackages"`).
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("requestPackages", None)]);
    /// use eventbus_runtime::{BusCore, Signal};
    ///
    /// let core = BusCore::new(manifest);
    /// let request_packages = Signal::new(&core, manifest.event("requestPackages").unwrap());
    /// assert_eq!(request_packages.name(), "requestPackages");
    /// // The rest of its declaration:
    /// assert_eq!(request_packages.meta().payload, None);
    /// assert_eq!(request_packages.meta().category, "demo");
    /// ```
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
