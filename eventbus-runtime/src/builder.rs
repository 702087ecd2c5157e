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
    #[cfg(feature = "async")]
    pub fn throttle(mut self, interval: impl Into<Option<Duration>>) -> Self {
        self.throttle = setting(interval.into());
        self
    }

    /// `debounce`: deliver once events have been quiet for `interval` (trailing edge).
    #[cfg(feature = "async")]
    pub fn debounce(mut self, interval: impl Into<Option<Duration>>) -> Self {
        self.debounce = setting(interval.into());
        self
    }

    /// `rate_limit`: a token bucket; excess events wait in a bounded queue.
    #[cfg(feature = "async")]
    pub fn rate_limit(mut self, limit: impl Into<Option<RateLimit>>) -> Self {
        self.rate_limit = setting(limit.into());
        self
    }

    /// `batch`: the size and window of this event's batch handlers.
    #[cfg(feature = "async")]
    pub fn batch(mut self, batch: impl Into<Option<Batch>>) -> Self {
        self.batch = setting(batch.into());
        self
    }

    /// `retry`: attempts and backoff of failed handlers of this event.
    #[cfg(feature = "async")]
    pub fn retry(mut self, retry: impl Into<Option<Retry>>) -> Self {
        self.retry = setting(retry.into());
        self
    }

    /// A circuit breaker for each handler of this event (`None`: none, even if the bus has a
    /// default).
    pub fn circuit_breaker(mut self, config: impl Into<Option<CircuitBreakerConfig>>) -> Self {
        self.circuit_breaker = setting(config.into());
        self
    }

    /// How many calls of each async handler of this event may run at once, instead of the
    /// manifest's `concurrency` (`None`: the bus's default,
    /// [`BusBuilder::async_concurrency`]). A handler's
    /// [`HandlerOptions::concurrency`](crate::HandlerOptions::concurrency) still wins.
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
    #[cfg(feature = "async")]
    pub fn queue(mut self, capacity: impl Into<Option<usize>>) -> Self {
        self.queue = setting(capacity.into());
        self
    }
}

/// Why a bus could not be built.
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
            },
            _bus: PhantomData,
        }
    }

    /// Overrides the policies of the event named `name` (its manifest name, `"packageInstall"`).
    /// Several calls for the same event apply in order.
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
    pub fn circuit_breaker(mut self, config: impl Into<Option<CircuitBreakerConfig>>) -> Self {
        self.circuit_breaker = config.into();
        self
    }

    /// Where dead letters go (default: [`MemoryDeadLetters`] with
    /// [`defaults::DEAD_LETTER_CAPACITY`](crate::defaults::DEAD_LETTER_CAPACITY)).
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
    pub fn instrument(mut self, on: bool) -> Self {
        self.instrument = Some(on);
        self
    }

    /// Runs timers, retries and async handlers on this runtime (default: the runtime `build()`
    /// is called in, else an internal one; see `docs/reliability.md`).
    #[cfg(feature = "async")]
    pub fn runtime(mut self, handle: tokio::runtime::Handle) -> Self {
        self.runtime = Some(handle);
        self
    }

    /// The retry policy of every event whose manifest declares none (default: none: a failed
    /// handler is dead-lettered at once).
    #[cfg(feature = "async")]
    pub fn retry(mut self, retry: impl Into<Option<Retry>>) -> Self {
        self.retry = retry.into();
        self
    }

    /// How retry delays are randomised (default [`Jitter::Full`](crate::Jitter::Full)).
    #[cfg(feature = "async")]
    pub fn jitter(mut self, jitter: crate::runtime::Jitter) -> Self {
        self.settings.jitter = jitter;
        self
    }

    /// The concurrency of async handlers of events whose manifest declares no `concurrency`
    /// (default [`defaults::async_concurrency`](crate::defaults::async_concurrency)).
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
    #[cfg(feature = "async")]
    pub fn async_queue(mut self, capacity: usize) -> Self {
        self.settings.async_queue = capacity;
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
    #[cfg(feature = "async")]
    pub fn rate_limit_queue(mut self, capacity: usize) -> Self {
        self.settings.rate_limit_queue = capacity;
        self
    }

    /// How long [`BusCore::shutdown`] waits (default
    /// [`defaults::SHUTDOWN_TIMEOUT`](crate::defaults::SHUTDOWN_TIMEOUT)).
    #[cfg(feature = "async")]
    pub fn shutdown_timeout(mut self, timeout: Duration) -> Self {
        self.settings.shutdown_timeout = timeout;
        self
    }

    /// Builds the bus, checking every event's policies.
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
        #[cfg(feature = "store")]
        let (journal, store_letters) = crate::store::attach(manifest, self.event_store);
        #[cfg(not(feature = "store"))]
        let store_letters = None;
        let settings = crate::bus::CoreSettings {
            configs,
            circuit_breaker: self.circuit_breaker,
            default_retry,
            store: self
                .store
                .or(store_letters)
                .unwrap_or_else(|| Box::new(MemoryDeadLetters::default())),
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
