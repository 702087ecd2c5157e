//! `BusBuilder`: a bus configured in code, on top of what the manifest declares.

use std::fmt;
use std::marker::PhantomData;
use std::time::Duration;

use crate::breaker::CircuitBreakerConfig;
use crate::bus::BusCore;
use crate::dead_letter::{DeadLetterStore, MemoryDeadLetters};
use crate::meta::{Batch, EventMeta, ManifestMeta, RateLimit, Retry};
use crate::options::Setting;
use crate::shared::EventConfig;

/// A type built from a configured [`BusCore`]: the core itself, or a generated `EventBus`
/// (whose `builder()` returns a `BusBuilder<EventBus>`).
///
/// ```
/// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
/// use eventbus_runtime::{BusBuilder, BusCore, Event, FromCore};
///
/// // What generated code does for its `EventBus`.
/// struct Bus {
///     core: BusCore,
///     ping: Event<u32>,
/// }
///
/// impl FromCore for Bus {
///     fn from_core(core: BusCore) -> Self {
///         let ping = Event::new(&core, core.manifest().event("ping").unwrap());
///         Bus { core, ping }
///     }
/// }
///
/// let bus: Bus = BusBuilder::new(manifest).instrument(true).build().unwrap();
/// bus.ping.on(|_| ());
/// bus.ping.emit(1);
/// assert_eq!(bus.core.stats().event("ping").unwrap().delivered, 1);
/// ```
pub trait FromCore: Sized {
    /// Wraps the core (generated code: `EventBus::with_core`).
    fn from_core(core: BusCore) -> Self;
}

impl FromCore for BusCore {
    fn from_core(core: BusCore) -> Self {
        core
    }
}

/// Overrides of one event's policies, given to [`BusBuilder::event`]. Each setter takes a value
/// to set the policy or `None` to turn off what the manifest declares; a policy not mentioned
/// stays as in the manifest.
///
/// ```
/// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32")), ("pong", Some("u32"))]);
/// use eventbus_runtime::{BusCore, CircuitBreakerConfig, CircuitState, Event};
///
/// let core: BusCore = BusCore::builder(manifest)
///     .circuit_breaker(CircuitBreakerConfig::default()) // every handler gets a breaker…
///     .event("ping", |e| e.circuit_breaker(None)) // …except those of `ping`
///     .build()
///     .unwrap();
/// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
/// let pong: Event<u32> = Event::new(&core, manifest.event("pong").unwrap());
/// ping.on(|_| ());
/// pong.on(|_| ());
///
/// let stats = core.stats();
/// assert_eq!(stats.event("ping").unwrap().handlers[0].circuit, None);
/// assert_eq!(stats.event("pong").unwrap().handlers[0].circuit, Some(CircuitState::Closed));
/// ```
#[derive(Debug, Clone, Default, PartialEq)]
pub struct EventOptions {
    throttle: Setting<Duration>,
    debounce: Setting<Duration>,
    rate_limit: Setting<RateLimit>,
    batch: Setting<Batch>,
    retry: Setting<Retry>,
    circuit_breaker: Setting<CircuitBreakerConfig>,
    concurrency: Setting<usize>,
    queue: Setting<usize>,
}

fn setting<T>(value: Option<T>) -> Setting<T> {
    match value {
        Some(value) => Setting::On(value),
        None => Setting::Off,
    }
}

impl EventOptions {
    /// `throttle`: at most one delivery per `interval`, leading and trailing edge.
    ///
    /// ```
    /// use eventbus_runtime::{BusCore, Event};
    /// use std::sync::{Arc, Mutex};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// let core: BusCore = BusCore::builder(manifest)
    ///     .event("ping", |e| e.throttle(Duration::from_secs(1)))
    ///     .build()
    ///     .unwrap();
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let sink = seen.clone();
    /// ping.on(move |n| sink.lock().unwrap().push(*n));
    ///
    /// for n in 1..=3 {
    ///     ping.emit(n);
    /// }
    /// assert_eq!(*seen.lock().unwrap(), [1]); // leading edge
    /// tokio::time::sleep(Duration::from_secs(2)).await;
    /// assert_eq!(*seen.lock().unwrap(), [1, 3]); // trailing edge: the latest one
    /// # }
    /// ```
    #[cfg(feature = "async")]
    pub fn throttle(mut self, interval: impl Into<Option<Duration>>) -> Self {
        self.throttle = setting(interval.into());
        self
    }

    /// `debounce`: deliver once events have been quiet for `interval` (trailing edge).
    ///
    /// ```
    /// use eventbus_runtime::{BusCore, Event};
    /// use std::sync::{Arc, Mutex};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// let core: BusCore = BusCore::builder(manifest)
    ///     .event("ping", |e| e.debounce(Duration::from_millis(300)))
    ///     .build()
    ///     .unwrap();
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let sink = seen.clone();
    /// ping.on(move |n| sink.lock().unwrap().push(*n));
    ///
    /// for n in 1..=3 {
    ///     ping.emit(n);
    /// }
    /// assert!(seen.lock().unwrap().is_empty());
    /// tokio::time::sleep(Duration::from_secs(1)).await;
    /// assert_eq!(*seen.lock().unwrap(), [3]);
    /// # }
    /// ```
    #[cfg(feature = "async")]
    pub fn debounce(mut self, interval: impl Into<Option<Duration>>) -> Self {
        self.debounce = setting(interval.into());
        self
    }

    /// `rate_limit`: a token bucket; excess events wait in a bounded queue.
    ///
    /// ```
    /// use eventbus_runtime::{BusCore, Event, Policies, RateLimit};
    /// use std::sync::{Arc, Mutex};
    /// use std::time::Duration;
    ///
    /// // The manifest says `rate_limit: 1/h`; this bus turns it off.
    /// let one_per_hour = RateLimit { count: 1, per: Duration::from_secs(3600), burst: 1 };
    /// let policies = Policies { rate_limit: Some(one_per_hour), ..Policies::NONE };
    /// # let manifest = eventbus_runtime::__doc::manifest_with(&[("ping", Some("u32"), policies)]);
    /// let core: BusCore = BusCore::builder(manifest)
    ///     .event("ping", |e| e.rate_limit(None))
    ///     .build()
    ///     .unwrap();
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let sink = seen.clone();
    /// ping.on(move |n| sink.lock().unwrap().push(*n));
    /// for n in 1..=3 {
    ///     ping.emit(n);
    /// }
    /// assert_eq!(*seen.lock().unwrap(), [1, 2, 3]);
    /// ```
    #[cfg(feature = "async")]
    pub fn rate_limit(mut self, limit: impl Into<Option<RateLimit>>) -> Self {
        self.rate_limit = setting(limit.into());
        self
    }

    /// `batch`: the size and window of this event's batch handlers.
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::{Batch, BusCore, Event};
    /// use std::sync::{Arc, Mutex};
    /// use std::time::Duration;
    ///
    /// let core: BusCore = BusCore::builder(manifest)
    ///     .event("ping", |e| e.batch(Batch { max_size: 3, max_wait: Duration::from_secs(60) }))
    ///     .build()
    ///     .unwrap();
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// let batches = Arc::new(Mutex::new(Vec::new()));
    /// let sink = batches.clone();
    /// ping.on_batch(move |batch: &[u32]| sink.lock().unwrap().push(batch.to_vec()));
    /// for n in 1..=6 {
    ///     ping.emit(n);
    /// }
    /// assert_eq!(*batches.lock().unwrap(), [vec![1, 2, 3], vec![4, 5, 6]]);
    /// ```
    #[cfg(feature = "async")]
    pub fn batch(mut self, batch: impl Into<Option<Batch>>) -> Self {
        self.batch = setting(batch.into());
        self
    }

    /// `retry`: attempts and backoff of failed handlers of this event.
    ///
    /// ```
    /// use eventbus_runtime::{BusCore, Event, Retry};
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// let retry = Retry { attempts: 3, backoff: Duration::from_millis(100), max_backoff: Duration::from_secs(1) };
    /// let core: BusCore = BusCore::builder(manifest).event("ping", |e| e.retry(retry)).build().unwrap();
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// let calls = Arc::new(AtomicU32::new(0));
    /// let counter = calls.clone();
    /// // Fails twice, then succeeds: the third attempt is the last one allowed.
    /// ping.on(move |_| if counter.fetch_add(1, Ordering::SeqCst) < 2 { Err("flaky") } else { Ok(()) });
    /// ping.emit(1);
    ///
    /// tokio::time::sleep(Duration::from_secs(5)).await;
    /// assert_eq!(calls.load(Ordering::SeqCst), 3);
    /// assert!(core.dead_letters().is_empty().unwrap());
    /// # }
    /// ```
    #[cfg(feature = "async")]
    pub fn retry(mut self, retry: impl Into<Option<Retry>>) -> Self {
        self.retry = setting(retry.into());
        self
    }

    /// A circuit breaker for each handler of this event (`None`: none, even if the bus has a
    /// default).
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::{BusCore, CircuitBreakerConfig, CircuitState, DeadLetterReason, Event};
    ///
    /// // Opens once 2 of the last 2 calls failed.
    /// let strict = CircuitBreakerConfig { sliding_window: 2, minimum_calls: 2, ..CircuitBreakerConfig::default() };
    /// let core: BusCore = BusCore::builder(manifest)
    ///     .event("ping", |e| e.circuit_breaker(strict))
    ///     .build()
    ///     .unwrap();
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// ping.on(|_| Err::<(), _>("down"));
    /// for n in 1..=3 {
    ///     ping.emit(n);
    /// }
    /// assert_eq!(core.stats().event("ping").unwrap().handlers[0].circuit, Some(CircuitState::Open));
    /// // The third event never reached the handler.
    /// let letters = core.dead_letters().list().unwrap();
    /// assert_eq!((letters[2].reason, letters[2].attempts), (DeadLetterReason::CircuitOpen, 0));
    /// ```
    pub fn circuit_breaker(mut self, config: impl Into<Option<CircuitBreakerConfig>>) -> Self {
        self.circuit_breaker = setting(config.into());
        self
    }

    /// How many calls of each async handler of this event may run at once, instead of the
    /// manifest's `concurrency` (`None`: the bus's default,
    /// [`BusBuilder::async_concurrency`]). A handler's
    /// [`HandlerOptions::concurrency`](crate::HandlerOptions::concurrency) still wins.
    ///
    /// ```
    /// use eventbus_runtime::{BusCore, Event};
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// let core: BusCore = BusCore::builder(manifest).event("ping", |e| e.concurrency(1)).build().unwrap();
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    /// let (r, m) = (running.clone(), most.clone());
    /// ping.on_async(move |_| {
    ///     let (running, most) = (r.clone(), m.clone());
    ///     async move {
    ///         most.fetch_max(running.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
    ///         tokio::time::sleep(Duration::from_millis(10)).await;
    ///         running.fetch_sub(1, Ordering::SeqCst);
    ///     }
    /// });
    /// for n in 1..=3 {
    ///     ping.emit(n);
    /// }
    /// assert!(core.shutdown().await.is_clean());
    /// assert_eq!(most.load(Ordering::SeqCst), 1); // one call at a time
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// If `limit` is `Some(0)`.
    #[cfg(feature = "async")]
    pub fn concurrency(mut self, limit: impl Into<Option<usize>>) -> Self {
        let limit = limit.into();
        assert!(
            limit != Some(0),
            "eventbus: an async handler needs a concurrency of at least 1"
        );
        self.concurrency = setting(limit);
        self
    }

    /// How many events each async handler of this event holds waiting for a free slot, instead
    /// of the manifest's `queue` (`None`: the bus's default, [`BusBuilder::async_queue`]). A
    /// handler's [`HandlerOptions::queue`](crate::HandlerOptions::queue) still wins.
    ///
    /// ```
    /// use eventbus_runtime::{BusCore, DeadLetterReason, Event};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// let core: BusCore = BusCore::builder(manifest)
    ///     .event("ping", |e| e.concurrency(1).queue(1))
    ///     .build()
    ///     .unwrap();
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// ping.on_async(|_| tokio::time::sleep(Duration::from_millis(10)));
    /// ping.emit(1); // runs
    /// ping.emit(2); // waits
    /// ping.emit(3); // no room: dead-lettered
    /// let letters = core.dead_letters().list().unwrap();
    /// assert_eq!((letters[0].reason, letters[0].payload.clone()), (DeadLetterReason::Overflow, 3.into()));
    /// # }
    /// ```
    #[cfg(feature = "async")]
    pub fn queue(mut self, capacity: impl Into<Option<usize>>) -> Self {
        self.queue = setting(capacity.into());
        self
    }
}

/// Why a bus could not be built.
///
/// ```
/// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
/// use eventbus_runtime::{BuildError, BusCore, CircuitBreakerConfig};
///
/// let err = BusCore::builder(manifest).event("pnig", |e| e).build().unwrap_err();
/// assert_eq!(err, BuildError::UnknownEvent { name: "pnig".into(), suggestion: Some("ping") });
///
/// let broken = CircuitBreakerConfig { failure_rate_threshold: 0.0, ..CircuitBreakerConfig::default() };
/// let err = BusCore::builder(manifest).event("ping", |e| e.circuit_breaker(broken)).build().unwrap_err();
/// assert!(matches!(err, BuildError::Invalid { event: Some("ping"), .. }));
/// assert_eq!(
///     err.to_string(),
///     "event `ping`: circuit breaker: failure_rate_threshold must be in (0, 100], not 0"
/// );
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum BuildError {
    /// [`BusBuilder::event`] named an event the manifest does not have.
    UnknownEvent {
        /// The name given.
        name: String,
        /// The closest manifest name, if any.
        suggestion: Option<&'static str>,
    },
    /// The event declares a policy this build of eventbus cannot honour.
    Unsupported {
        /// The event's name.
        event: &'static str,
        /// The policy (`throttle`, `debounce`, `rate_limit`, `batch`, `retry`, `concurrency`,
        /// `queue`).
        policy: &'static str,
        /// The cargo feature of `eventbus` that honours it.
        feature: &'static str,
    },
    /// A policy value is out of range.
    Invalid {
        /// The event's name, or `None` for a bus-wide setting.
        event: Option<&'static str>,
        /// What is wrong.
        message: String,
    },
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BuildError::UnknownEvent { name, suggestion } => {
                write!(f, "unknown event `{name}` in the bus builder")?;
                if let Some(suggestion) = suggestion {
                    write!(f, "; did you mean `{suggestion}`?")?;
                }
                Ok(())
            }
            BuildError::Unsupported {
                event,
                policy,
                feature,
            } => write!(
                f,
                "event `{event}` declares `{policy}`, which needs the `{feature}` feature of \
                 eventbus; enable it (`eventbus = {{ features = [\"{feature}\"] }}`) or remove \
                 the policy"
            ),
            BuildError::Invalid {
                event: Some(event),
                message,
            } => write!(f, "event `{event}`: {message}"),
            BuildError::Invalid {
                event: None,
                message,
            } => write!(f, "{message}"),
        }
    }
}

impl std::error::Error for BuildError {}

/// Builds a bus: the manifest's policies, overridden per event or bus-wide in code.
///
/// ```
/// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
/// # #[allow(unused_imports)]
/// use eventbus_runtime::{BusCore, CircuitBreakerConfig, MemoryDeadLetters, Retry};
/// # #[allow(unused_imports)]
/// use std::time::Duration;
///
/// # #[cfg(feature = "async")] {
/// let core: BusCore = BusCore::builder(manifest)
///     // Every event without its own `retry`: 3 attempts, 100ms, 200ms backoff (+ jitter).
///     .retry(Retry { attempts: 3, backoff: Duration::from_millis(100), max_backoff: Duration::from_secs(5) })
///     .circuit_breaker(CircuitBreakerConfig::default())
///     .dead_letters(MemoryDeadLetters::with_capacity(100))
///     .event("ping", |e| e.throttle(Duration::from_millis(500)))
///     .instrument(true)
///     .build()
///     .unwrap();
/// # drop(core);
/// # }
/// let err = BusCore::builder(manifest).event("pnig", |e| e).build().unwrap_err();
/// assert_eq!(err.to_string(), "unknown event `pnig` in the bus builder; did you mean `ping`?");
/// ```
///
/// A generated bus has `EventBus::builder()`, which returns a `BusBuilder<EventBus>`.
#[must_use = "a builder does nothing until `build()`"]
pub struct BusBuilder<B = BusCore> {
    manifest: &'static ManifestMeta,
    events: Vec<(String, EventOptions)>,
    circuit_breaker: Option<CircuitBreakerConfig>,
    store: Option<Box<dyn DeadLetterStore>>,
    instrument: Option<bool>,
    /// Set by `event_store` (in `store::bus`).
    #[cfg(feature = "store")]
    pub(crate) event_store: Option<std::sync::Arc<dyn crate::store::EventStore>>,
    /// Set by `nats` (in `nats`).
    #[cfg(feature = "nats")]
    pub(crate) nats: Option<(String, crate::nats::NatsConfig)>,
    #[cfg(feature = "async")]
    runtime: Option<tokio::runtime::Handle>,
    #[cfg(feature = "async")]
    retry: Option<Retry>,
    #[cfg(feature = "async")]
    settings: crate::runtime::AsyncSettings,
    _bus: PhantomData<fn() -> B>,
}

impl<B> fmt::Debug for BusBuilder<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BusBuilder")
            .field("package", &self.manifest.package)
            .field("events", &self.events)
            .field("circuit_breaker", &self.circuit_breaker)
            .field("custom_store", &self.store.is_some())
            .field("instrument", &self.instrument)
            .finish_non_exhaustive()
    }
}

impl<B: FromCore> BusBuilder<B> {
    /// A builder for a bus of `manifest` with the defaults.
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::{BusBuilder, BusCore};
    ///
    /// // The same as `BusCore::builder(manifest)`.
    /// let core: BusCore = BusBuilder::new(manifest).build().unwrap();
    /// assert_eq!(core.manifest().package, "demo");
    /// ```
    pub fn new(manifest: &'static ManifestMeta) -> Self {
        BusBuilder {
            manifest,
            events: Vec::new(),
            circuit_breaker: None,
            store: None,
            instrument: None,
            #[cfg(feature = "store")]
            event_store: None,
            #[cfg(feature = "nats")]
            nats: None,
            #[cfg(feature = "async")]
            runtime: None,
            #[cfg(feature = "async")]
            retry: None,
            #[cfg(feature = "async")]
            settings: crate::runtime::AsyncSettings {
                jitter: crate::runtime::Jitter::Full,
                async_concurrency: crate::defaults::async_concurrency(),
                async_queue: crate::defaults::ASYNC_QUEUE,
                retry_queue: crate::defaults::RETRY_QUEUE,
                rate_limit_queue: crate::defaults::RATE_LIMIT_QUEUE,
                shutdown_timeout: crate::defaults::SHUTDOWN_TIMEOUT,
                handler_timeout: None,
            },
            _bus: PhantomData,
        }
    }

    /// Overrides the policies of the event named `name` (its manifest name, `"packageInstall"`).
    /// Several calls for the same event apply in order.
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::{BusCore, CircuitBreakerConfig, Event};
    ///
    /// let core: BusCore = BusCore::builder(manifest)
    ///     .event("ping", |e| e.circuit_breaker(CircuitBreakerConfig::default()))
    ///     .event("ping", |e| e.circuit_breaker(None)) // applied last: wins
    ///     .build()
    ///     .unwrap();
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// ping.on(|_| ());
    /// assert_eq!(core.stats().event("ping").unwrap().handlers[0].circuit, None);
    /// ```
    pub fn event(
        mut self,
        name: &str,
        configure: impl FnOnce(EventOptions) -> EventOptions,
    ) -> Self {
        self.events
            .push((name.to_owned(), configure(EventOptions::default())));
        self
    }

    /// A circuit breaker for every handler of every event whose manifest declares none
    /// (default: none; an event or a handler may still set or refuse its own).
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::{BusCore, CircuitBreakerConfig, CircuitState, Event};
    ///
    /// let core: BusCore = BusCore::builder(manifest)
    ///     .circuit_breaker(CircuitBreakerConfig::default())
    ///     .build()
    ///     .unwrap();
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// ping.on(|_| ());
    /// assert_eq!(core.stats().event("ping").unwrap().handlers[0].circuit, Some(CircuitState::Closed));
    ///
    /// // The configuration is checked by `build()`.
    /// let broken = CircuitBreakerConfig { sliding_window: 0, ..CircuitBreakerConfig::default() };
    /// let err = BusCore::builder(manifest).circuit_breaker(broken).build().unwrap_err();
    /// assert_eq!(err.to_string(), "circuit breaker: sliding_window and half_open_calls must be at least 1");
    /// ```
    pub fn circuit_breaker(mut self, config: impl Into<Option<CircuitBreakerConfig>>) -> Self {
        self.circuit_breaker = config.into();
        self
    }

    /// Where dead letters go (default: [`MemoryDeadLetters`] with
    /// [`defaults::DEAD_LETTER_CAPACITY`](crate::defaults::DEAD_LETTER_CAPACITY)).
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::{BusCore, Event, MemoryDeadLetters};
    ///
    /// let core: BusCore = BusCore::builder(manifest)
    ///     .dead_letters(MemoryDeadLetters::with_capacity(2))
    ///     .build()
    ///     .unwrap();
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// ping.on(|_| Err::<(), _>("down"));
    /// for n in 1..=3 {
    ///     ping.emit(n);
    /// }
    /// // Only the two newest letters are kept.
    /// assert_eq!(core.dead_letters().len().unwrap(), 2);
    /// assert_eq!(core.dead_letters().evicted(), 1);
    /// ```
    pub fn dead_letters(mut self, store: impl DeadLetterStore) -> Self {
        self.store = Some(Box::new(store));
        self
    }

    /// Whether to count emits and successful deliveries and time every handler call, for
    /// [`BusCore::stats`] and the `metrics` facade (`emitted`, `delivered`, the handler latency
    /// histogram). Default: off, because it moves every emit to the slow path (a few atomic
    /// increments and two clock reads per handler). Failures, retries, dead letters,
    /// rejections, suppressions, lag and the listener and dead-letter gauges are counted either
    /// way.
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::{BusCore, Event};
    ///
    /// let core: BusCore = BusCore::builder(manifest).instrument(true).build().unwrap();
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// ping.on(|_| ());
    /// ping.emit(1);
    /// ping.emit(2);
    /// let stats = core.stats();
    /// assert_eq!((stats.event("ping").unwrap().emitted, stats.event("ping").unwrap().delivered), (2, 2));
    /// ```
    pub fn instrument(mut self, on: bool) -> Self {
        self.instrument = Some(on);
        self
    }

    /// Runs timers, retries and async handlers on this runtime (default: the runtime `build()`
    /// is called in, else an internal one; see `docs/reliability.md`).
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::{BusCore, Event};
    ///
    /// // Built outside any runtime: async handlers run on the one given.
    /// let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    /// let core: BusCore = BusCore::builder(manifest).runtime(runtime.handle().clone()).build().unwrap();
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// ping.on_async(move |n| {
    ///     let tx = tx.clone();
    ///     async move { tx.send(n * 2).unwrap() }
    /// });
    /// ping.emit(21);
    /// assert_eq!(runtime.block_on(rx.recv()), Some(42));
    /// ```
    #[cfg(feature = "async")]
    pub fn runtime(mut self, handle: tokio::runtime::Handle) -> Self {
        self.runtime = Some(handle);
        self
    }

    /// The retry policy of every event whose manifest declares none (default: none: a failed
    /// handler is dead-lettered at once).
    ///
    /// ```
    /// use eventbus_runtime::{BusCore, DeadLetterReason, Event, Retry};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// let core: BusCore = BusCore::builder(manifest)
    ///     .retry(Retry { attempts: 3, backoff: Duration::from_millis(100), max_backoff: Duration::from_secs(1) })
    ///     .build()
    ///     .unwrap();
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// ping.on(|_| Err::<(), _>("down"));
    /// ping.emit(1);
    /// assert!(core.dead_letters().is_empty().unwrap()); // a retry is scheduled
    ///
    /// tokio::time::sleep(Duration::from_secs(5)).await;
    /// let letter = &core.dead_letters().list().unwrap()[0];
    /// assert_eq!((letter.reason, letter.attempts), (DeadLetterReason::Failed, 3));
    /// # }
    /// ```
    #[cfg(feature = "async")]
    pub fn retry(mut self, retry: impl Into<Option<Retry>>) -> Self {
        self.retry = retry.into();
        self
    }

    /// How retry delays are randomised (default [`Jitter::Full`](crate::Jitter::Full)).
    ///
    /// ```
    /// use eventbus_runtime::{BusCore, Event, Jitter, Retry};
    /// use std::sync::{Arc, Mutex};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// let core: BusCore = BusCore::builder(manifest)
    ///     .retry(Retry { attempts: 2, backoff: Duration::from_millis(250), max_backoff: Duration::from_secs(1) })
    ///     .jitter(Jitter::None)
    ///     .build()
    ///     .unwrap();
    /// let delays = Arc::new(Mutex::new(Vec::new()));
    /// let log = delays.clone();
    /// core.on_failure(move |f| log.lock().unwrap().push(f.retry_in()));
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// ping.on(|_| Err::<(), _>("down"));
    /// ping.emit(1);
    /// // Exactly the backoff, not a random delay below it.
    /// assert_eq!(delays.lock().unwrap()[0], Some(Duration::from_millis(250)));
    /// # }
    /// ```
    #[cfg(feature = "async")]
    pub fn jitter(mut self, jitter: crate::runtime::Jitter) -> Self {
        self.settings.jitter = jitter;
        self
    }

    /// The concurrency of async handlers of events whose manifest declares no `concurrency`
    /// (default [`defaults::async_concurrency`](crate::defaults::async_concurrency)).
    ///
    /// ```
    /// use eventbus_runtime::{BusCore, Event};
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// let core: BusCore = BusCore::builder(manifest).async_concurrency(2).build().unwrap();
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    /// let (r, m) = (running.clone(), most.clone());
    /// ping.on_async(move |_| {
    ///     let (running, most) = (r.clone(), m.clone());
    ///     async move {
    ///         most.fetch_max(running.fetch_add(1, Ordering::SeqCst) + 1, Ordering::SeqCst);
    ///         tokio::time::sleep(Duration::from_millis(10)).await;
    ///         running.fetch_sub(1, Ordering::SeqCst);
    ///     }
    /// });
    /// for n in 1..=5 {
    ///     ping.emit(n);
    /// }
    /// assert!(core.shutdown().await.is_clean());
    /// assert_eq!(most.load(Ordering::SeqCst), 2);
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// If `limit` is 0.
    #[cfg(feature = "async")]
    pub fn async_concurrency(mut self, limit: usize) -> Self {
        assert!(
            limit > 0,
            "eventbus: an async handler needs a concurrency of at least 1"
        );
        self.settings.async_concurrency = limit;
        self
    }

    /// The queue of async handlers of events whose manifest declares no `queue` (default
    /// [`defaults::ASYNC_QUEUE`](crate::defaults::ASYNC_QUEUE)).
    ///
    /// ```
    /// use eventbus_runtime::{BusCore, DeadLetterReason, Event};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// let core: BusCore = BusCore::builder(manifest).async_concurrency(1).async_queue(0).build().unwrap();
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// ping.on_async(|_| tokio::time::sleep(Duration::from_millis(10)));
    /// ping.emit(1); // runs
    /// ping.emit(2); // nowhere to wait: dead-lettered
    /// let letters = core.dead_letters().list().unwrap();
    /// assert_eq!((letters[0].reason, letters[0].payload.clone()), (DeadLetterReason::Overflow, 2.into()));
    /// # }
    /// ```
    #[cfg(feature = "async")]
    pub fn async_queue(mut self, capacity: usize) -> Self {
        self.settings.async_queue = capacity;
        self
    }

    /// The timeout of every async handler call (`on_async`, `on_batch_async`) whose handler
    /// sets none with [`HandlerOptions::timeout`](crate::HandlerOptions::timeout), which
    /// describes what happens at the limit. Default: none.
    ///
    /// ```
    /// use eventbus_runtime::{BusCore, Event, HandlerOptions};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// let core: BusCore = BusCore::builder(manifest)
    ///     .handler_timeout(Duration::from_secs(5))
    ///     .build()
    ///     .unwrap();
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// let slow = |_| tokio::time::sleep(Duration::from_secs(10));
    /// ping.on_async_with(HandlerOptions::new().label("bus default"), slow);
    /// ping.on_async_with(HandlerOptions::new().label("own").timeout(Duration::from_secs(60)), slow);
    /// ping.emit(1);
    ///
    /// tokio::time::sleep(Duration::from_secs(11)).await;
    /// let letters = core.dead_letters().list().unwrap();
    /// assert_eq!(letters.len(), 1); // the handler with its own, longer limit finished
    /// assert_eq!(letters[0].handler.as_deref(), Some("bus default"));
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// If `limit` is zero.
    #[cfg(feature = "async")]
    pub fn handler_timeout(mut self, limit: Duration) -> Self {
        assert!(
            !limit.is_zero(),
            "eventbus: a handler timeout must be longer than zero (leave it unset for none)"
        );
        self.settings.handler_timeout = Some(limit);
        self
    }

    /// The default bound on the pending retries of each sync or batch handler (default
    /// [`defaults::RETRY_QUEUE`](crate::defaults::RETRY_QUEUE)); a handler may set its own with
    /// [`HandlerOptions::retry_queue`](crate::HandlerOptions::retry_queue). A failure its retry
    /// policy would retry beyond it is dead-lettered and reported as
    /// [`FailureKind::Overflow`](crate::FailureKind::Overflow).
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::BusCore;
    ///
    /// let core: BusCore = BusCore::builder(manifest).retry_queue(100).build().unwrap();
    /// ```
    #[cfg(feature = "async")]
    pub fn retry_queue(mut self, capacity: usize) -> Self {
        self.settings.retry_queue = capacity;
        self
    }

    /// The queue of rate-limited events (default
    /// [`defaults::RATE_LIMIT_QUEUE`](crate::defaults::RATE_LIMIT_QUEUE)).
    ///
    /// ```
    /// use eventbus_runtime::{BusCore, DeadLetterReason, Event, Policies, RateLimit};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// let one_per_hour = RateLimit { count: 1, per: Duration::from_secs(3600), burst: 1 };
    /// # let manifest = eventbus_runtime::__doc::manifest_with(&[("ping", Some("u32"), Policies { rate_limit: Some(one_per_hour), ..Policies::NONE })]);
    /// let core: BusCore = BusCore::builder(manifest).rate_limit_queue(1).build().unwrap();
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// ping.on(|_| ());
    /// ping.emit(1); // delivered
    /// ping.emit(2); // waits for a token
    /// ping.emit(3); // the queue is full: dead-lettered
    /// let letters = core.dead_letters().list().unwrap();
    /// assert_eq!(letters.len(), 1);
    /// assert_eq!((letters[0].reason, letters[0].payload.clone()), (DeadLetterReason::Overflow, 3.into()));
    /// # }
    /// ```
    #[cfg(feature = "async")]
    pub fn rate_limit_queue(mut self, capacity: usize) -> Self {
        self.settings.rate_limit_queue = capacity;
        self
    }

    /// How long [`BusCore::shutdown`] waits (default
    /// [`defaults::SHUTDOWN_TIMEOUT`](crate::defaults::SHUTDOWN_TIMEOUT)).
    ///
    /// ```
    /// use eventbus_runtime::{BusCore, Event};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// let core: BusCore = BusCore::builder(manifest)
    ///     .shutdown_timeout(Duration::from_millis(50))
    ///     .build()
    ///     .unwrap();
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// ping.on_async(|_| tokio::time::sleep(Duration::from_secs(3600)));
    /// ping.emit(1);
    ///
    /// let report = core.shutdown().await; // gives up after 50ms
    /// assert!(report.timed_out);
    /// assert_eq!(report.unfinished[0].event, "ping");
    /// # }
    /// ```
    #[cfg(feature = "async")]
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.settings.shutdown_timeout = timeout;
        self
    }

    /// Builds the bus, checking every event's policies.
    ///
    /// ```
    /// # #[cfg(feature = "async")] { // needs the `async` feature
    /// use eventbus_runtime::{BusCore, Policies, Retry};
    /// use std::time::Duration;
    ///
    /// // A manifest written by hand, with `retry.attempts: 0`.
    /// let never = Retry { attempts: 0, backoff: Duration::from_millis(100), max_backoff: Duration::from_secs(1) };
    /// # let manifest = eventbus_runtime::__doc::manifest_with(&[("ping", Some("u32"), Policies { retry: Some(never), ..Policies::NONE })]);
    /// let err = BusCore::builder(manifest).build().unwrap_err();
    /// assert_eq!(
    ///     err.to_string(),
    ///     "event `ping`: `retry.attempts` counts the first attempt and must be at least 1"
    /// );
    /// # }
    /// ```
    pub fn build(self) -> Result<B, BuildError> {
        let manifest = self.manifest;
        for (name, _) in &self.events {
            if manifest.event(name).is_none() {
                let known: Vec<&'static str> = manifest.events.iter().map(|e| e.name).collect();
                return Err(BuildError::UnknownEvent {
                    name: name.clone(),
                    suggestion: crate::error::closest(name, &known),
                });
            }
        }
        if let Some(config) = &self.circuit_breaker {
            config.validate().map_err(|message| BuildError::Invalid {
                event: None,
                message: format!("circuit breaker: {message}"),
            })?;
        }
        #[cfg(feature = "async")]
        let default_retry = self.retry;
        #[cfg(not(feature = "async"))]
        let default_retry = None;
        let mut configs = Vec::with_capacity(manifest.events.len());
        for meta in manifest.events {
            let overrides = self
                .events
                .iter()
                .filter(|(name, _)| name == meta.name)
                .map(|(_, options)| options);
            let config = resolve(meta, overrides, default_retry, self.circuit_breaker)?;
            configs.push(config);
        }
        #[cfg(feature = "nats")]
        let nats = match self.nats {
            Some((url, config)) => Some(crate::nats::attach(manifest, &configs, url, config)?),
            None => None,
        };
        // The dead-letter queue first: the event store's writer consults it to tell when the
        // last letter of a stored event was resolved.
        #[cfg(feature = "store")]
        let offered = self.event_store.as_ref().and_then(|s| s.dead_letters());
        #[cfg(not(feature = "store"))]
        let offered = None;
        let letters: std::sync::Arc<dyn DeadLetterStore> = match self.store.or(offered) {
            Some(letters) => std::sync::Arc::from(letters),
            None => std::sync::Arc::new(MemoryDeadLetters::default()),
        };
        #[cfg(feature = "store")]
        let journal = crate::store::attach(manifest, self.event_store, letters.clone());
        let settings = crate::bus::CoreSettings {
            configs,
            circuit_breaker: self.circuit_breaker,
            default_retry,
            store: letters,
            #[cfg(feature = "store")]
            journal,
            #[cfg(feature = "nats")]
            nats,
            instrument: self.instrument.unwrap_or(false),
            #[cfg(feature = "async")]
            runtime: self.runtime,
            #[cfg(feature = "async")]
            async_settings: self.settings,
        };
        Ok(B::from_core(BusCore::from_settings(manifest, settings)))
    }
}

/// The manifest's policies of `meta` with `overrides` applied, checked.
pub(crate) fn resolve<'a>(
    meta: &'static EventMeta,
    overrides: impl Iterator<Item = &'a EventOptions>,
    default_retry: Option<Retry>,
    circuit_breaker: Option<CircuitBreakerConfig>,
) -> Result<EventConfig, BuildError> {
    let policies = &meta.policies;
    let mut config = EventConfig {
        throttle: policies.throttle,
        debounce: policies.debounce,
        rate_limit: policies.rate_limit,
        batch: policies.batch,
        retry: policies.retry.or(default_retry),
        circuit_breaker: policies.circuit_breaker.or(circuit_breaker),
        concurrency: policies.concurrency.map(|n| n as usize),
        queue: policies.queue.map(|n| n as usize),
    };
    for options in overrides {
        config.throttle = options.throttle.resolve(config.throttle);
        config.debounce = options.debounce.resolve(config.debounce);
        config.rate_limit = options.rate_limit.resolve(config.rate_limit);
        config.batch = options.batch.resolve(config.batch);
        config.retry = options.retry.resolve(config.retry);
        config.circuit_breaker = options.circuit_breaker.resolve(config.circuit_breaker);
        config.concurrency = options.concurrency.resolve(config.concurrency);
        config.queue = options.queue.resolve(config.queue);
    }
    check(meta.name, &config)?;
    Ok(config)
}

fn check(event: &'static str, config: &EventConfig) -> Result<(), BuildError> {
    let declared = [
        ("throttle", config.throttle.is_some()),
        ("debounce", config.debounce.is_some()),
        ("rate_limit", config.rate_limit.is_some()),
        ("batch", config.batch.is_some()),
        ("retry", config.retry.is_some()),
        ("concurrency", config.concurrency.is_some()),
        ("queue", config.queue.is_some()),
    ];
    if !cfg!(feature = "async")
        && let Some((policy, _)) = declared.iter().find(|(_, on)| *on)
    {
        return Err(BuildError::Unsupported {
            event,
            policy,
            feature: "async",
        });
    }
    let invalid = |message: String| BuildError::Invalid {
        event: Some(event),
        message,
    };
    for (policy, interval) in [("throttle", config.throttle), ("debounce", config.debounce)] {
        if interval == Some(Duration::ZERO) {
            return Err(invalid(format!("`{policy}` must be longer than 0")));
        }
    }
    if let Some(limit) = &config.rate_limit {
        #[cfg(feature = "async")]
        let valid = crate::flood::quota(limit).is_some();
        #[cfg(not(feature = "async"))]
        let valid = limit.count > 0 && limit.burst > 0 && !limit.per.is_zero();
        if !valid || limit.per < Duration::from_nanos(u64::from(limit.count)) {
            return Err(invalid(format!(
                "`rate_limit` needs count ≥ 1, burst ≥ 1 and a period of at least 1ns per \
                 token (got {} per {:?}, burst {})",
                limit.count, limit.per, limit.burst
            )));
        }
    }
    if let Some(batch) = &config.batch
        && batch.max_size == 0
    {
        return Err(invalid("`batch.max_size` must be at least 1".into()));
    }
    if config.concurrency == Some(0) {
        return Err(invalid("`concurrency` must be at least 1".into()));
    }
    if let Some(retry) = &config.retry
        && retry.attempts == 0
    {
        return Err(invalid(
            "`retry.attempts` counts the first attempt and must be at least 1".into(),
        ));
    }
    if let Some(breaker) = &config.circuit_breaker {
        breaker
            .validate()
            .map_err(|message| invalid(format!("circuit breaker: {message}")))?;
    }
    Ok(())
}
