//! Per-handler options (`on_with`, `on_labeled`, …) and what the runtime keeps per handler.

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
#[cfg(feature = "async")]
use std::time::Duration;

use crate::breaker::{CircuitBreaker, CircuitBreakerConfig};
#[cfg(feature = "async")]
use crate::meta::Batch;
use crate::meta::Retry;

/// A setting a handler may inherit from its event, turn off, or set.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(crate) enum Setting<T> {
    #[default]
    Inherit,
    Off,
    On(T),
}

impl<T: Copy> Setting<T> {
    pub(crate) fn resolve(self, inherited: Option<T>) -> Option<T> {
        match self {
            Setting::Inherit => inherited,
            Setting::Off => None,
            Setting::On(value) => Some(value),
        }
    }
}

/// Options for one handler: a label for failures and metrics, and overrides of the event's
/// retry and circuit-breaker settings. Pass it to [`Event::on_with`](crate::Event::on_with)
/// (and `on_async_with`, `on_batch_with`, `on_batch_async_with`).
///
/// ```
/// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
/// use eventbus_runtime::{BusCore, CircuitBreakerConfig, Event, HandlerOptions};
///
/// let core = BusCore::new(manifest);
/// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
/// ping.on_with(
///     HandlerOptions::new()
///         .label("audit-log")
///         .circuit_breaker(CircuitBreakerConfig::default()),
///     |n| println!("audit {n}"),
/// );
/// ping.emit(1);
/// ```
#[derive(Clone, Default, PartialEq)]
pub struct HandlerOptions {
    pub(crate) label: Option<Cow<'static, str>>,
    pub(crate) retry: Setting<Retry>,
    pub(crate) circuit_breaker: Setting<CircuitBreakerConfig>,
    #[cfg(feature = "async")]
    pub(crate) concurrency: Option<usize>,
    #[cfg(feature = "async")]
    pub(crate) queue: Option<usize>,
    #[cfg(feature = "async")]
    pub(crate) retry_queue: Option<usize>,
    #[cfg(feature = "async")]
    pub(crate) batch: Option<Batch>,
    #[cfg(feature = "async")]
    pub(crate) timeout: Option<Duration>,
}

impl HandlerOptions {
    /// Options that change nothing: the handler inherits everything from its event.
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::{BusCore, Event, HandlerOptions};
    ///
    /// let core = BusCore::new(manifest);
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// ping.on_with(HandlerOptions::new(), |_| ()); // the same as `ping.on(..)`
    /// assert_eq!(core.stats().event("ping").unwrap().handlers[0].label, "handler #1");
    /// ```
    pub fn new() -> Self {
        HandlerOptions::default()
    }

    /// Names the handler in failures, dead letters, logs and metrics (instead of
    /// `"handler #3"`).
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::{BusCore, Event, HandlerOptions};
    ///
    /// let core = BusCore::new(manifest);
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// ping.on_with(HandlerOptions::new().label("audit-log"), |_| Err::<(), _>("disk full"));
    /// ping.emit(1);
    /// let letter = &core.dead_letters().list().unwrap()[0];
    /// assert_eq!(letter.handler.as_deref(), Some("audit-log"));
    /// ```
    pub fn label(mut self, label: impl Into<Cow<'static, str>>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Retries this handler's failures with `retry`, whatever the event's policy says.
    ///
    /// ```
    /// use eventbus_runtime::{BusCore, Event, HandlerOptions, Retry};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// let core = BusCore::new(manifest); // `ping` has no retry policy
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// let retry = Retry { attempts: 2, backoff: Duration::from_millis(100), max_backoff: Duration::from_secs(1) };
    /// ping.on_with(HandlerOptions::new().retry(retry), |_| Err::<(), _>("down"));
    /// ping.emit(1);
    ///
    /// tokio::time::sleep(Duration::from_secs(1)).await;
    /// assert_eq!(core.dead_letters().list().unwrap()[0].attempts, 2);
    /// # }
    /// ```
    #[cfg(feature = "async")]
    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = Setting::On(retry);
        self
    }

    /// Never retries this handler: its first failure goes to the dead-letter queue.
    ///
    /// ```
    /// # #[cfg(feature = "async")] { // needs the `async` feature
    /// use eventbus_runtime::{BusCore, Event, HandlerOptions, Policies, Retry};
    /// use std::time::Duration;
    ///
    /// // The manifest says `retry: 5`.
    /// let retry = Retry { attempts: 5, backoff: Retry::DEFAULT_BACKOFF, max_backoff: Retry::DEFAULT_MAX_BACKOFF };
    /// # let manifest = eventbus_runtime::__doc::manifest_with(&[("ping", Some("u32"), Policies { retry: Some(retry), ..Policies::NONE })]);
    /// let core = BusCore::new(manifest);
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// ping.on_with(HandlerOptions::new().no_retry(), |_| Err::<(), _>("not worth retrying"));
    /// ping.emit(1);
    /// // Dead-lettered at once, after one attempt.
    /// assert_eq!(core.dead_letters().list().unwrap()[0].attempts, 1);
    /// # }
    /// ```
    pub fn no_retry(mut self) -> Self {
        self.retry = Setting::Off;
        self
    }

    /// Guards this handler with its own circuit breaker configured by `config`.
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::{BusCore, CircuitBreakerConfig, CircuitState, DeadLetterReason, Event, HandlerOptions};
    ///
    /// let core = BusCore::new(manifest);
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// // Opens once 2 of the last 2 calls failed.
    /// let breaker = CircuitBreakerConfig { sliding_window: 2, minimum_calls: 2, ..CircuitBreakerConfig::default() };
    /// ping.on_with(HandlerOptions::new().circuit_breaker(breaker), |_| Err::<(), _>("down"));
    /// for n in 1..=3 {
    ///     ping.emit(n);
    /// }
    /// assert_eq!(core.stats().event("ping").unwrap().handlers[0].circuit, Some(CircuitState::Open));
    /// assert_eq!(core.dead_letters().list().unwrap()[2].reason, DeadLetterReason::CircuitOpen);
    /// ```
    pub fn circuit_breaker(mut self, config: CircuitBreakerConfig) -> Self {
        self.circuit_breaker = Setting::On(config);
        self
    }

    /// No circuit breaker for this handler, even if the bus or event configures one.
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::{BusCore, CircuitBreakerConfig, CircuitState, Event, HandlerOptions};
    ///
    /// let core: BusCore = BusCore::builder(manifest)
    ///     .circuit_breaker(CircuitBreakerConfig::default())
    ///     .build()
    ///     .unwrap();
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// ping.on(|_| ());
    /// ping.on_with(HandlerOptions::new().no_circuit_breaker(), |_| ());
    /// let circuits: Vec<_> = core.stats().event("ping").unwrap().handlers.iter().map(|h| h.circuit).collect();
    /// assert_eq!(circuits, [Some(CircuitState::Closed), None]);
    /// ```
    pub fn no_circuit_breaker(mut self) -> Self {
        self.circuit_breaker = Setting::Off;
        self
    }

    /// For async handlers: how many calls may run at once (default
    /// [`defaults::async_concurrency`](crate::defaults::async_concurrency)).
    ///
    /// ```
    /// use eventbus_runtime::{BusCore, Event, HandlerOptions};
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicUsize, Ordering};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// let core = BusCore::new(manifest);
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// let (running, most) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
    /// let (r, m) = (running.clone(), most.clone());
    /// ping.on_async_with(HandlerOptions::new().concurrency(1), move |_| {
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
    /// assert_eq!(most.load(Ordering::SeqCst), 1);
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// If `limit` is 0.
    #[cfg(feature = "async")]
    pub fn concurrency(mut self, limit: usize) -> Self {
        assert!(
            limit > 0,
            "eventbus: an async handler needs a concurrency of at least 1"
        );
        self.concurrency = Some(limit);
        self
    }

    /// For async handlers: how many events may wait for a free slot (default
    /// [`defaults::ASYNC_QUEUE`](crate::defaults::ASYNC_QUEUE)); more go to the dead-letter queue.
    ///
    /// ```
    /// use eventbus_runtime::{BusCore, DeadLetterReason, Event, HandlerOptions};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// let core = BusCore::new(manifest);
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// let options = HandlerOptions::new().concurrency(1).queue(1);
    /// ping.on_async_with(options, |_| tokio::time::sleep(Duration::from_millis(10)));
    /// ping.emit(1); // runs
    /// ping.emit(2); // waits
    /// ping.emit(3); // no room: dead-lettered
    /// let letters = core.dead_letters().list().unwrap();
    /// assert_eq!((letters[0].reason, letters[0].payload.clone()), (DeadLetterReason::Overflow, 3.into()));
    /// # }
    /// ```
    #[cfg(feature = "async")]
    pub fn queue(mut self, capacity: usize) -> Self {
        self.queue = Some(capacity);
        self
    }

    /// For sync and batch handlers: how many retries may be pending at once (default
    /// [`defaults::RETRY_QUEUE`](crate::defaults::RETRY_QUEUE), or the bus's
    /// [`BusBuilder::retry_queue`](crate::BusBuilder::retry_queue)). Each scheduled retry holds
    /// a copy of its payload until it succeeds or is dead-lettered; a failure the retry policy
    /// would retry while this many are pending goes to the dead-letter queue instead, reported
    /// as [`FailureKind::Overflow`](crate::FailureKind::Overflow). So a handler that keeps
    /// failing under a steady stream of events holds a bounded amount of memory. (Async
    /// handlers retry in place, within their [`queue`](Self::queue) and concurrency.)
    ///
    /// ```
    /// use eventbus_runtime::{BusCore, Event, HandlerOptions, Retry};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// let core = BusCore::new(manifest);
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// let retry = Retry { attempts: 3, backoff: Duration::from_secs(1), max_backoff: Duration::from_secs(1) };
    /// ping.on_with(HandlerOptions::new().retry(retry).retry_queue(1), |_| Err("down"));
    /// ping.emit(1); // fails; its retry is pending
    /// ping.emit(2); // fails; no room for a second retry: dead-lettered at once
    /// let letters = core.dead_letters().list().unwrap();
    /// assert_eq!(letters.len(), 1);
    /// assert_eq!(letters[0].payload, 2);
    /// # }
    /// ```
    #[cfg(feature = "async")]
    pub fn retry_queue(mut self, capacity: usize) -> Self {
        self.retry_queue = Some(capacity);
        self
    }

    /// For batch handlers (`on_batch`, `on_batch_async`): the batch size and window, instead of
    /// the event's `batch` policy.
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::{Batch, BusCore, Event, HandlerOptions};
    /// use std::sync::{Arc, Mutex};
    /// use std::time::Duration;
    ///
    /// let core = BusCore::new(manifest);
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// let sizes = Arc::new(Mutex::new(Vec::new()));
    /// let sink = sizes.clone();
    /// let batch = Batch { max_size: 3, max_wait: Duration::from_secs(60) };
    /// ping.on_batch_with(HandlerOptions::new().batch(batch), move |b: &[u32]| sink.lock().unwrap().push(b.len()));
    /// for n in 1..=6 {
    ///     ping.emit(n);
    /// }
    /// assert_eq!(*sizes.lock().unwrap(), [3, 3]);
    /// ```
    ///
    /// # Panics
    ///
    /// If `batch.max_size` is 0.
    #[cfg(feature = "async")]
    pub fn batch(mut self, batch: Batch) -> Self {
        assert!(
            batch.max_size > 0,
            "eventbus: a batch needs a max_size of at least 1"
        );
        self.batch = Some(batch);
        self
    }

    /// For async handlers (`on_async`, `on_batch_async`): each call may run at most `limit`.
    /// A call still running then is cancelled (its future is dropped at its current `.await`)
    /// and counts as a failed attempt, reported as
    /// [`FailureKind::Timeout`](crate::FailureKind::Timeout) with the limit in its text, then
    /// retried or dead-lettered per the retry policy like any failure. The limit applies to each
    /// attempt on its own; the backoff between attempts and the time spent waiting in the queue
    /// do not count. Measured on tokio's clock, like every policy timer.
    ///
    /// Default: none, a call may run for ever (shutdown's deadline still abandons it). Sync
    /// and `on_batch` handlers run to completion on their thread and cannot be cancelled: they
    /// ignore this option.
    ///
    /// ```
    /// use eventbus_runtime::{BusCore, Event, HandlerOptions};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// let core = BusCore::new(manifest); // `ping` has no retry policy
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// let options = HandlerOptions::new().label("webhook").timeout(Duration::from_secs(2));
    /// ping.on_async_with(options, |_| tokio::time::sleep(Duration::from_secs(3600)));
    /// ping.emit(1);
    ///
    /// tokio::time::sleep(Duration::from_secs(3)).await;
    /// let letter = &core.dead_letters().list().unwrap()[0];
    /// assert_eq!(letter.handler.as_deref(), Some("webhook"));
    /// assert_eq!(
    ///     letter.error,
    ///     "the call did not finish within its timeout of 2s and was cancelled (HandlerOptions::timeout)"
    /// );
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// If `limit` is zero.
    #[cfg(feature = "async")]
    pub fn timeout(mut self, limit: Duration) -> Self {
        assert!(
            !limit.is_zero(),
            "eventbus: a handler timeout must be longer than zero (leave it unset for none)"
        );
        self.timeout = Some(limit);
        self
    }
}

impl fmt::Debug for HandlerOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut s = f.debug_struct("HandlerOptions");
        s.field("label", &self.label)
            .field("retry", &self.retry)
            .field("circuit_breaker", &self.circuit_breaker);
        #[cfg(feature = "async")]
        s.field("concurrency", &self.concurrency)
            .field("queue", &self.queue)
            .field("retry_queue", &self.retry_queue)
            .field("batch", &self.batch)
            .field("timeout", &self.timeout);
        s.finish()
    }
}

/// What kind of handler a listener is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HandlerKind {
    Sync,
    #[cfg(feature = "async")]
    Async,
    #[cfg(feature = "async")]
    Batch,
    #[cfg(feature = "async")]
    Stream,
}

/// What the runtime keeps per handler, off the fast path.
pub(crate) struct HandlerInfo {
    pub(crate) id: u64,
    pub(crate) label: Cow<'static, str>,
    pub(crate) kind: HandlerKind,
    /// The handler's own retry setting; the event's applies when `Inherit`.
    #[cfg_attr(not(feature = "async"), allow(dead_code))]
    pub(crate) retry: Setting<Retry>,
    pub(crate) breaker: Option<CircuitBreaker>,
    pub(crate) delivered: AtomicU64,
    pub(crate) failed: AtomicU64,
    /// A sync or batch handler's pending retries and their bound.
    #[cfg(feature = "async")]
    pub(crate) retries: crate::retry::RetrySlots,
    #[cfg(feature = "metrics")]
    pub(crate) latency: Option<metrics::Histogram>,
}

impl HandlerInfo {
    pub(crate) fn new(
        id: u64,
        label: Option<Cow<'static, str>>,
        kind: HandlerKind,
        retry: Setting<Retry>,
        breaker: Option<CircuitBreakerConfig>,
    ) -> Self {
        HandlerInfo {
            id,
            label: label.unwrap_or_else(|| Cow::Owned(format!("handler #{id}"))),
            kind,
            retry,
            breaker: breaker.map(CircuitBreaker::new),
            delivered: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            #[cfg(feature = "async")]
            retries: crate::retry::RetrySlots::new(crate::defaults::RETRY_QUEUE),
            #[cfg(feature = "metrics")]
            latency: None,
        }
    }

    /// Records one call's outcome for stats and metrics (instrumented events, async and batch
    /// handlers).
    pub(crate) fn record(&self, ok: bool, elapsed: Option<std::time::Duration>) {
        if ok {
            self.delivered.fetch_add(1, Ordering::Relaxed);
        }
        #[cfg(feature = "metrics")]
        if let (Some(histogram), Some(elapsed)) = (&self.latency, elapsed) {
            histogram.record(elapsed.as_secs_f64());
        }
        #[cfg(not(feature = "metrics"))]
        let _ = elapsed;
    }
}
