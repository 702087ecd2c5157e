//! `BusCore`: the state one generated `EventBus` shares between its events.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;

use crate::breaker::CircuitBreakerConfig;
use crate::builder::{BusBuilder, resolve};
use crate::dead_letter::{DeadLetter, DeadLetterStore, RedispatchError, StoreError};
use crate::error::DispatchError;
use crate::handler::{FailureSink, HandlerFailure};
use crate::meta::{EventMeta, ManifestMeta, Retry};
use crate::shared::{EventConfig, EventCtx, Shared};
use crate::stats::{BusStats, EventCounters, EventStats};

/// Delivers a validated dead letter again.
pub(crate) type Redelivery = Box<dyn FnOnce() + Send>;

/// An event with its payload type erased, so layers can work by name (bridge, store, NATS).
pub(crate) trait ErasedEvent: Send + Sync {
    fn meta(&self) -> &'static EventMeta;
    fn emit_json(self: Arc<Self>, json: &str) -> Result<(), DispatchError>;
    /// Reads a payload received from another process and returns what delivers it to this
    /// process's handlers (neither stored nor published again).
    #[cfg(feature = "nats")]
    fn remote(self: Arc<Self>, json: &str) -> Result<Redelivery, DispatchError>;
    /// Moves every emit to the slow path, where the closed bus refuses it.
    fn close(&self);
    /// Lets pending debounced / throttled / batched events through now.
    #[cfg(feature = "async")]
    fn flush(self: Arc<Self>);
    #[cfg(feature = "async")]
    fn close_streams(&self);
    fn stats(&self) -> EventStats;
    /// Checks that `letter` can be delivered again and returns what delivers it.
    fn prepare_redispatch(
        self: Arc<Self>,
        letter: &DeadLetter,
    ) -> Result<Redelivery, RedispatchError>;
    /// Adds a sync listener (labelled `label`, no retry, no circuit breaker) that calls
    /// `observer` on every delivery with a closure serialising the payload to JSON: layers
    /// that forward events by name (the bridge) serialise only when they need to. Costs
    /// nothing until called: an event without observers emits as before.
    #[cfg(feature = "bridge")]
    fn observe(
        self: Arc<Self>,
        label: &'static str,
        observer: JsonObserver,
    ) -> crate::subscription::Subscription;
}

/// What [`ErasedEvent::observe`] calls: given a closure that serialises the payload.
#[cfg(feature = "bridge")]
pub(crate) type JsonObserver =
    Arc<dyn Fn(&dyn Fn() -> serde_json::Result<String>) -> serde_json::Result<()> + Send + Sync>;

/// What the builder decided, for [`BusCore::from_settings`].
pub(crate) struct CoreSettings {
    /// One per manifest event, in manifest order.
    pub(crate) configs: Vec<EventConfig>,
    pub(crate) circuit_breaker: Option<CircuitBreakerConfig>,
    pub(crate) default_retry: Option<Retry>,
    pub(crate) store: Arc<dyn DeadLetterStore>,
    #[cfg(feature = "store")]
    pub(crate) journal: Option<Arc<crate::store::journal::Journal>>,
    #[cfg(feature = "nats")]
    pub(crate) nats: Option<Arc<crate::nats::Link>>,
    pub(crate) instrument: bool,
    #[cfg(feature = "async")]
    pub(crate) runtime: Option<tokio::runtime::Handle>,
    #[cfg(feature = "async")]
    pub(crate) async_settings: crate::runtime::AsyncSettings,
}

/// The shared core of a bus: its manifest, its events by name, where failures go, the
/// dead-letter queue, counters and the runtime of its timers.
///
/// A generated `EventBus` holds one `BusCore` and creates each of its events with
/// [`Event::new`](crate::Event::new) / [`Signal::new`](crate::Signal::new), which register
/// themselves here; it dereferences to its core, so `bus.errors()`, `bus.stats()`,
/// `bus.dead_letters()` and `bus.shutdown()` are the methods below. Cloning is cheap; clones
/// share everything.
///
/// ```
/// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
/// use eventbus_runtime::{BusCore, Event};
/// use std::sync::Arc;
/// use std::sync::atomic::{AtomicU32, Ordering};
///
/// let core = BusCore::new(manifest);
/// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
/// let last = Arc::new(AtomicU32::new(0));
/// let sink = last.clone();
/// ping.on(move |n| sink.store(*n, Ordering::SeqCst));
///
/// // Clones share everything: the clone sees the same events, handlers and counters.
/// let clone = core.clone();
/// clone.emit_json("ping", "7").unwrap();
/// assert_eq!(last.load(Ordering::SeqCst), 7);
/// assert_eq!(clone.stats().event("ping").unwrap().listeners, 1);
/// ```
#[derive(Clone)]
pub struct BusCore {
    inner: Arc<CoreInner>,
}

struct CoreInner {
    shared: Arc<Shared>,
    configs: Vec<EventConfig>,
    circuit_breaker: Option<CircuitBreakerConfig>,
    default_retry: Option<Retry>,
    /// Read lock-free by `emit_json`; copied on registration (rare: once per event and bus).
    registry: ArcSwap<Vec<Arc<dyn ErasedEvent>>>,
    register_lock: Mutex<()>,
}

impl BusCore {
    /// Creates a core for a bus built from `manifest`, with the manifest's policies and the
    /// defaults (see [`BusCore::builder`] to change them).
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::{BusCore, Event};
    ///
    /// let core = BusCore::new(manifest);
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// assert_eq!(ping.name(), "ping");
    /// assert!(!core.is_shut_down());
    /// ```
    ///
    /// # Panics
    ///
    /// If the manifest declares a policy this build cannot honour (generated code refuses to
    /// compile in that case, so this only concerns hand-written manifests).
    pub fn new(manifest: &'static ManifestMeta) -> BusCore {
        BusBuilder::new(manifest)
            .build()
            .unwrap_or_else(|error| panic!("eventbus: {error}"))
    }

    /// A builder for a core of `manifest`: policies overridden per event, retry, circuit
    /// breakers, dead-letter store, runtime, instrumentation.
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::BusCore;
    ///
    /// let core = BusCore::builder(manifest).instrument(true).build().unwrap();
    /// assert!(core.stats().instrumented);
    /// ```
    pub fn builder(manifest: &'static ManifestMeta) -> BusBuilder<BusCore> {
        BusBuilder::new(manifest)
    }

    pub(crate) fn from_settings(
        manifest: &'static ManifestMeta,
        settings: CoreSettings,
    ) -> BusCore {
        #[cfg(feature = "metrics")]
        let metrics = Some(crate::shared::BusMetrics {
            dead_letters: metrics::gauge!(crate::stats::metric_names::DEAD_LETTERS),
            evicted: metrics::counter!(crate::stats::metric_names::DEAD_LETTERS_EVICTED),
        });
        let shared = Arc::new(Shared {
            manifest,
            failures: FailureSink::default(),
            store: settings.store,
            evicted: AtomicU64::new(0),
            closed: AtomicBool::new(false),
            instrumented: settings.instrument,
            #[cfg(feature = "metrics")]
            metrics,
            #[cfg(feature = "async")]
            runtime: Arc::new(crate::runtime::Runtime::new(
                settings.runtime,
                settings.async_settings,
            )),
            #[cfg(feature = "async")]
            unfinished: Mutex::new(Vec::new()),
            #[cfg(feature = "store")]
            journal: settings.journal,
            #[cfg(feature = "nats")]
            nats: settings.nats,
        });
        shared.update_gauge();
        BusCore {
            inner: Arc::new(CoreInner {
                shared,
                configs: settings.configs,
                circuit_breaker: settings.circuit_breaker,
                default_retry: settings.default_retry,
                registry: ArcSwap::from_pointee(Vec::new()),
                register_lock: Mutex::new(()),
            }),
        }
    }

    /// The manifest this bus was generated from.
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::BusCore;
    ///
    /// let core = BusCore::new(manifest);
    /// assert_eq!(core.manifest().package, "demo");
    /// assert_eq!(core.manifest().event("ping").unwrap().payload, Some("u32"));
    /// ```
    pub fn manifest(&self) -> &'static ManifestMeta {
        self.inner.shared.manifest
    }

    /// Emits an event given by name, with its payload as JSON: the JSON is deserialised into
    /// the event's payload type and emitted exactly as [`Event::emit`](crate::Event::emit)
    /// would.
    ///
    /// For an event without payload (a [`Signal`](crate::Signal)) the JSON must be `null` or
    /// `{}` (surrounding whitespace allowed); anything else, including an empty string, is an
    /// error.
    ///
    /// Returns `Ok` once the event was accepted (sync handlers ran), whether or not handlers
    /// failed: handler failures go to the failure observer and streams (see
    /// [`on_failure`](Self::on_failure)). On `Err` nothing was emitted; after
    /// `shutdown()` the error is [`DispatchError::ShutDown`].
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("chainSync", Some("ChainSync"))]);
    /// use eventbus_runtime::{BusCore, DispatchError, Event};
    ///
    /// #[derive(Clone, serde::Serialize, serde::Deserialize)]
    /// struct ChainSync { network: String, peers: u32 }
    ///
    /// let core = BusCore::new(manifest);
    /// let chain_sync: Event<ChainSync> = Event::new(&core, manifest.event("chainSync").unwrap());
    /// chain_sync.on(|e| assert_eq!(e.peers, 12));
    ///
    /// core.emit_json("chainSync", r#"{"network": "mainnet", "peers": 12}"#).unwrap();
    ///
    /// let err = core.emit_json("chainSync", r#"{"network": "mainnet", "peers": -1}"#).unwrap_err();
    /// assert!(matches!(err, DispatchError::InvalidPayload { ref path, .. } if path == "$.peers"));
    ///
    /// let err = core.emit_json("chainsync", "{}").unwrap_err();
    /// assert!(err.to_string().contains("did you mean `chainSync`?"));
    /// ```
    pub fn emit_json(&self, name: &str, json: &str) -> Result<(), DispatchError> {
        self.find(name)?.emit_json(json)
    }

    pub(crate) fn find(&self, name: &str) -> Result<Arc<dyn ErasedEvent>, DispatchError> {
        let registry = self.inner.registry.load();
        match registry.iter().find(|e| e.meta().name == name) {
            Some(event) => Ok(event.clone()),
            None => {
                let known = registry.iter().map(|e| e.meta().name).collect();
                Err(DispatchError::unknown_event(name, known))
            }
        }
    }

    /// Sets the observer of failures: every handler that returns `Err` or panics, and every
    /// event that could not be delivered (see [`FailureKind`](crate::FailureKind)), on any
    /// event of this bus, is reported to `observer` once, on the thread where it happened,
    /// after the handler returned. Replaces the previous observer.
    ///
    /// Failures also go to `tracing` (target `eventbus`, feature `tracing`) and to every
    /// `errors()` stream. When none of these would see a failure (no observer, no
    /// stream, no global `tracing` subscriber) it is written to stderr, so failures are never
    /// silently lost. A panic in the observer is caught and written to stderr as well.
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::{BusCore, Event};
    /// use std::sync::{Arc, Mutex};
    ///
    /// let core = BusCore::new(manifest);
    /// let failures = Arc::new(Mutex::new(Vec::new()));
    /// let log = failures.clone();
    /// core.on_failure(move |failure| log.lock().unwrap().push(failure.to_string()));
    ///
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// ping.on(|n| if *n > 9 { Err(format!("{n} is too big")) } else { Ok(()) });
    /// ping.emit(10);
    /// assert_eq!(
    ///     failures.lock().unwrap().as_slice(),
    ///     ["handler #1 of event `ping` failed (attempt 1): 10 is too big"]
    /// );
    /// ```
    pub fn on_failure(&self, observer: impl Fn(&HandlerFailure) + Send + Sync + 'static) {
        self.inner.shared.failures.set_observer(Box::new(observer));
    }

    /// Every failure of this bus from now on, as a bounded async stream of
    /// [`defaults::ERRORS_CAPACITY`](crate::defaults::ERRORS_CAPACITY) items (a slow consumer
    /// gets `Err(Lagged(n))`, as with [`Event::subscribe`](crate::Event::subscribe)). It ends
    /// when the bus shuts down. Any number of streams may be open.
    ///
    /// ```
    /// use eventbus_runtime::{BusCore, Event, FailureKind};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// let core = BusCore::new(manifest);
    /// let mut errors = core.errors();
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// ping.on_labeled("parser", |_| Err::<(), _>("bad input"));
    /// ping.emit(7);
    ///
    /// let failure = errors.recv().await.unwrap().unwrap();
    /// assert_eq!((failure.event(), failure.handler()), ("ping", "parser"));
    /// assert_eq!(failure.kind(), FailureKind::Returned);
    /// assert_eq!(failure.payload(), &serde_json::json!(7));
    /// // Not retried (no retry policy): it went to the dead-letter queue.
    /// let letter = failure.dead_letter().unwrap();
    /// assert_eq!(core.dead_letters().get(letter).unwrap().unwrap().error, "bad input");
    /// # }
    /// ```
    #[cfg(feature = "async")]
    pub fn errors(&self) -> crate::stream::Failures {
        self.errors_with_capacity(crate::defaults::ERRORS_CAPACITY)
    }

    /// [`errors`](Self::errors) with a buffer of `capacity` failures.
    ///
    /// ```
    /// use eventbus_runtime::{BusCore, Event, Lagged};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// let core = BusCore::new(manifest);
    /// let mut errors = core.errors_with_capacity(1);
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// ping.on(|_| Err::<(), _>("down"));
    /// ping.emit(1);
    /// ping.emit(2);
    ///
    /// // Room for one failure: the first was dropped from this stream (not from the bus).
    /// assert_eq!(errors.recv().await.unwrap().unwrap_err(), Lagged(1));
    /// assert_eq!(errors.recv().await.unwrap().unwrap().payload(), &serde_json::json!(2));
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// If `capacity` is 0.
    #[cfg(feature = "async")]
    pub fn errors_with_capacity(&self, capacity: usize) -> crate::stream::Failures {
        let ring = Arc::new(crate::stream::Ring::new(capacity, None));
        if self.is_shut_down() {
            ring.close();
        } else {
            self.inner.shared.failures.add_stream(&ring);
        }
        crate::stream::Failures::new(ring)
    }

    /// The dead-letter queue: list, re-dispatch and discard events handlers could not process.
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::{BusCore, Event};
    ///
    /// let core = BusCore::new(manifest);
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// ping.on(|_| Err::<(), _>("disk full"));
    /// ping.emit(7);
    ///
    /// let letters = core.dead_letters().list().unwrap();
    /// assert_eq!(letters[0].error, "disk full");
    /// assert_eq!(letters[0].payload, 7);
    /// ```
    pub fn dead_letters(&self) -> DeadLetters {
        DeadLetters { core: self.clone() }
    }

    /// A snapshot of the bus's counters (see [`BusStats`]), for code without a metrics
    /// exporter.
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::{BusCore, Event};
    ///
    /// let core = BusCore::builder(manifest).instrument(true).build().unwrap();
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// ping.on(|_| ());
    /// ping.on_labeled("picky", |n| if *n == 2 { Err("two") } else { Ok(()) });
    /// for n in 1..=3 {
    ///     ping.emit(n);
    /// }
    /// let stats = core.stats();
    /// let ping = stats.event("ping").unwrap();
    /// assert_eq!((ping.emitted, ping.delivered, ping.failed, ping.dead_lettered), (3, 5, 1, 1));
    /// assert_eq!(ping.handlers[1].label, "picky");
    /// assert_eq!(stats.dead_letters, 1);
    /// ```
    pub fn stats(&self) -> BusStats {
        let shared = &self.inner.shared;
        BusStats {
            instrumented: shared.instrumented,
            events: self
                .inner
                .registry
                .load()
                .iter()
                .map(|e| e.stats())
                .collect(),
            dead_letters: shared.store.len().unwrap_or(0),
            dead_letters_evicted: shared.evicted.load(Ordering::Relaxed),
            shut_down: shared.is_closed(),
        }
    }

    /// Stops intake without waiting for anything: from now on every emit is refused, reported
    /// as [`FailureKind::Rejected`](crate::FailureKind::Rejected) and dead-lettered, and
    /// [`emit_json`](Self::emit_json) returns [`DispatchError::ShutDown`]. An emit racing with
    /// `close` may still be delivered. `shutdown()` does this and then drains.
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::{BusCore, DeadLetterReason, DispatchError, Event};
    ///
    /// let core = BusCore::new(manifest);
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// ping.on(|n| println!("ping {n}"));
    /// core.close();
    ///
    /// assert_eq!(core.emit_json("ping", "1"), Err(DispatchError::ShutDown { event: "ping" }));
    /// ping.emit(2); // refused: dead-lettered instead of delivered
    /// let letter = core.dead_letters().list().unwrap().pop().unwrap();
    /// assert_eq!((letter.reason, letter.payload), (DeadLetterReason::ShutDown, 2.into()));
    /// ```
    pub fn close(&self) {
        if self.inner.shared.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        for event in self.inner.registry.load().iter() {
            event.close();
        }
    }

    /// Whether [`close`](Self::close) or `shutdown()` was called.
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::BusCore;
    ///
    /// let core = BusCore::new(manifest);
    /// assert!(!core.is_shut_down());
    /// core.close();
    /// assert!(core.is_shut_down());
    /// ```
    pub fn is_shut_down(&self) -> bool {
        self.inner.shared.is_closed()
    }

    #[cfg(any(feature = "async", feature = "store"))]
    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.inner.shared
    }

    /// A handle that does not keep the bus alive.
    #[cfg(feature = "nats")]
    pub(crate) fn downgrade(&self) -> WeakCore {
        WeakCore(Arc::downgrade(&self.inner))
    }

    #[cfg(feature = "async")]
    pub(crate) fn events(&self) -> Arc<Vec<Arc<dyn ErasedEvent>>> {
        self.inner.registry.load_full()
    }

    /// The context of a new event: its configuration, counters and the shared state.
    pub(crate) fn event_ctx(&self, meta: &'static EventMeta) -> EventCtx {
        let inner = &self.inner;
        let manifest = inner.shared.manifest;
        let config = match manifest
            .events
            .iter()
            .position(|e| std::ptr::eq(e, meta) || e == meta)
        {
            Some(index) => inner.configs[index],
            None => resolve(
                meta,
                std::iter::empty(),
                inner.default_retry,
                inner.circuit_breaker,
            )
            .unwrap_or_else(|error| panic!("eventbus: {error}")),
        };
        EventCtx {
            meta,
            shared: inner.shared.clone(),
            config,
            counters: EventCounters::new(meta.name, inner.shared.instrumented),
        }
    }

    pub(crate) fn register(&self, event: Arc<dyn ErasedEvent>) {
        let _guard = self
            .inner
            .register_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let current = self.inner.registry.load();
        let name = event.meta().name;
        assert!(
            current.iter().all(|e| e.meta().name != name),
            "eventbus: event `{name}` is already registered on this bus"
        );
        let mut next = Vec::with_capacity(current.len() + 1);
        next.extend(current.iter().cloned());
        next.push(event);
        self.inner.registry.store(Arc::new(next));
    }
}

/// A [`BusCore`] that does not keep the bus alive (for tasks that outlive no bus).
#[cfg(feature = "nats")]
#[derive(Clone)]
pub(crate) struct WeakCore(std::sync::Weak<CoreInner>);

#[cfg(feature = "nats")]
impl WeakCore {
    pub(crate) fn upgrade(&self) -> Option<BusCore> {
        self.0.upgrade().map(|inner| BusCore { inner })
    }
}

impl fmt::Debug for BusCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let registry = self.inner.registry.load();
        let events: Vec<&str> = registry.iter().map(|e| e.meta().name).collect();
        f.debug_struct("BusCore")
            .field("package", &self.inner.shared.manifest.package)
            .field("events", &events)
            .field(
                "failure_observer",
                &self.inner.shared.failures.has_observer(),
            )
            .field("shut_down", &self.is_shut_down())
            .finish()
    }
}

/// The dead-letter queue of a bus, from [`BusCore::dead_letters`]: events that a handler could
/// not process (failed on its last attempt, circuit open, queue full, shut down), with their
/// payload as JSON.
///
/// ```
/// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
/// use eventbus_runtime::{BusCore, DeadLetterReason, Event};
/// use std::sync::atomic::{AtomicBool, Ordering};
/// use std::sync::Arc;
///
/// let core = BusCore::new(manifest);
/// core.on_failure(|_| {});
/// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
/// let healthy = Arc::new(AtomicBool::new(false));
/// let flag = healthy.clone();
/// ping.on_labeled("store", move |_| {
///     if flag.load(Ordering::SeqCst) { Ok(()) } else { Err("database down") }
/// });
/// ping.emit(7);
///
/// let letters = core.dead_letters().list()?;
/// assert_eq!(letters.len(), 1);
/// assert_eq!(letters[0].handler.as_deref(), Some("store"));
/// assert_eq!(letters[0].reason, DeadLetterReason::Failed);
/// assert_eq!(letters[0].payload, 7);
///
/// // Once the cause is fixed, deliver it again (to that handler only).
/// healthy.store(true, Ordering::SeqCst);
/// core.dead_letters().redispatch(letters[0].id)?;
/// assert!(core.dead_letters().is_empty()?);
/// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
/// ```
#[derive(Clone, Debug)]
pub struct DeadLetters {
    core: BusCore,
}

impl DeadLetters {
    fn store(&self) -> &dyn DeadLetterStore {
        &*self.core.inner.shared.store
    }

    /// Every letter, oldest first.
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::{BusCore, Event};
    ///
    /// let core = BusCore::new(manifest);
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// ping.on(|_| Err::<(), _>("down"));
    /// for n in 1..=3 {
    ///     ping.emit(n);
    /// }
    /// let payloads: Vec<_> = core.dead_letters().list()?.into_iter().map(|l| l.payload).collect();
    /// assert_eq!(payloads, [1, 2, 3]);
    /// # Ok::<(), eventbus_runtime::StoreError>(())
    /// ```
    pub fn list(&self) -> Result<Vec<DeadLetter>, StoreError> {
        self.store().list()
    }

    /// The letter with this id.
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::{BusCore, Event};
    ///
    /// let core = BusCore::new(manifest);
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// ping.on_labeled("mailer", |_| Err::<(), _>("smtp down"));
    /// ping.emit(3);
    ///
    /// let id = core.dead_letters().list()?[0].id;
    /// let letter = core.dead_letters().get(id)?.unwrap();
    /// assert_eq!((letter.handler.as_deref(), letter.error.as_str()), (Some("mailer"), "smtp down"));
    /// assert_eq!(core.dead_letters().get(id + 1)?, None);
    /// # Ok::<(), eventbus_runtime::StoreError>(())
    /// ```
    pub fn get(&self, id: u64) -> Result<Option<DeadLetter>, StoreError> {
        self.store().get(id)
    }

    /// How many letters are waiting.
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::{BusCore, Event};
    ///
    /// let core = BusCore::new(manifest);
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// ping.on(|n| if n % 2 == 0 { Err("even") } else { Ok(()) });
    /// for n in 1..=4 {
    ///     ping.emit(n);
    /// }
    /// assert_eq!(core.dead_letters().len()?, 2);
    /// # Ok::<(), eventbus_runtime::StoreError>(())
    /// ```
    pub fn len(&self) -> Result<usize, StoreError> {
        self.store().len()
    }

    /// Whether no letter is waiting.
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::{BusCore, Event};
    ///
    /// let core = BusCore::new(manifest);
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// ping.on(|_| ());
    /// ping.emit(1);
    /// assert!(core.dead_letters().is_empty()?);
    /// # Ok::<(), eventbus_runtime::StoreError>(())
    /// ```
    pub fn is_empty(&self) -> Result<bool, StoreError> {
        self.store().is_empty()
    }

    /// Letters evicted from the full queue since the bus was built (each was reported as a
    /// [`FailureKind::Evicted`](crate::FailureKind::Evicted) failure).
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::{BusCore, Event, FailureKind, MemoryDeadLetters};
    /// use std::sync::{Arc, Mutex};
    ///
    /// let core: BusCore = BusCore::builder(manifest)
    ///     .dead_letters(MemoryDeadLetters::with_capacity(1))
    ///     .build()
    ///     .unwrap();
    /// let kinds = Arc::new(Mutex::new(Vec::new()));
    /// let log = kinds.clone();
    /// core.on_failure(move |f| log.lock().unwrap().push(f.kind()));
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// ping.on(|_| Err::<(), _>("down"));
    /// ping.emit(1);
    /// ping.emit(2); // the queue holds one letter: the first one is evicted
    ///
    /// let dead = core.dead_letters();
    /// assert_eq!(dead.evicted(), 1);
    /// assert_eq!(dead.list().unwrap()[0].payload, 2);
    /// assert!(kinds.lock().unwrap().contains(&FailureKind::Evicted));
    /// ```
    pub fn evicted(&self) -> u64 {
        self.core.inner.shared.evicted.load(Ordering::Relaxed)
    }

    /// Removes a letter for good and returns it.
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::{BusCore, Event};
    ///
    /// let core = BusCore::new(manifest);
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// ping.on(|_| Err::<(), _>("down"));
    /// ping.emit(1);
    ///
    /// let dead = core.dead_letters();
    /// let id = dead.list()?[0].id;
    /// assert_eq!(dead.discard(id)?.unwrap().payload, 1);
    /// assert!(dead.is_empty()?);
    /// assert_eq!(dead.discard(id)?, None); // already gone
    /// # Ok::<(), eventbus_runtime::StoreError>(())
    /// ```
    pub fn discard(&self, id: u64) -> Result<Option<DeadLetter>, StoreError> {
        #[cfg(feature = "store")]
        let sequence = self.store().sequence(id)?;
        let letter = self.store().remove(id)?;
        self.core.inner.shared.update_gauge();
        #[cfg(feature = "store")]
        if let (Some(_), Some(sequence)) = (&letter, sequence) {
            crate::store::discarded(&self.core, sequence);
        }
        Ok(letter)
    }

    /// Delivers a letter again and removes it from the queue: to the handler it was for (if it
    /// is still subscribed: same id and label, or the only handler with that label), or, for an
    /// event-level letter, to the whole event as a new emit. The event's policies apply as for
    /// a new event: a new failure is retried and dead-lettered again under a new id.
    ///
    /// Nothing is removed when the letter cannot be delivered (see [`RedispatchError`]).
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::{BusCore, Event, RedispatchError};
    ///
    /// let core = BusCore::new(manifest);
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// let indexer = ping.on_labeled("indexer", |_| Err::<(), _>("index offline"));
    /// ping.emit(1);
    /// let dead = core.dead_letters();
    /// let id = dead.list().unwrap()[0].id;
    ///
    /// // The handler it was for is gone: the letter stays in the queue.
    /// indexer.unsubscribe();
    /// let err = dead.redispatch(id).unwrap_err();
    /// assert!(matches!(err, RedispatchError::HandlerGone { ref handler, .. } if handler == "indexer"));
    /// assert_eq!(dead.len().unwrap(), 1);
    /// assert!(matches!(dead.redispatch(999), Err(RedispatchError::NotFound(999))));
    /// ```
    pub fn redispatch(&self, id: u64) -> Result<(), RedispatchError> {
        let letter = self
            .store()
            .get(id)
            .map_err(RedispatchError::Store)?
            .ok_or(RedispatchError::NotFound(id))?;
        let event = self
            .core
            .find(&letter.event)
            .map_err(|_| RedispatchError::UnknownEvent(letter.event.clone()))?;
        // The stored event the letter came from, read before the letter goes.
        #[cfg(feature = "store")]
        let stored = match self.store().sequence(id).map_err(RedispatchError::Store)? {
            Some(sequence) => self
                .core
                .manifest()
                .event(&letter.event)
                .map(|meta| (meta.name, sequence)),
            None => None,
        };
        let redeliver = event.prepare_redispatch(&letter)?;
        self.store().remove(id).map_err(RedispatchError::Store)?;
        self.core.inner.shared.update_gauge();
        #[cfg(feature = "store")]
        if let Some((event, sequence)) = stored {
            let whole_event = letter.handler_id.is_none();
            crate::store::redispatch_stored(&self.core, event, sequence, whole_event, redeliver);
            return Ok(());
        }
        redeliver();
        Ok(())
    }
}
