//! Per-handler options (`on_with`, `on_labeled`, …) and what the runtime keeps per handler.

use std::borrow::Cow;
use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};

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
/// (and `on_async_with`, `on_batch_with`).
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
}

impl HandlerOptions {
    /// Options that change nothing: the handler inherits everything from its event.
    pub fn new() -> Self {
        HandlerOptions::default()
    }

    /// Names the handler in failures, dead letters, logs and metrics (instead of
    /// `"handler #3"`).
    pub fn label(mut self, label: impl Into<Cow<'static, str>>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Retries this handler's failures with `retry`, whatever the event's policy says.
    #[cfg(feature = "async")]
    pub fn retry(mut self, retry: Retry) -> Self {
        self.retry = Setting::On(retry);
        self
    }

    /// Never retries this handler: its first failure goes to the dead-letter queue.
    pub fn no_retry(mut self) -> Self {
        self.retry = Setting::Off;
        self
    }

    /// Guards this handler with its own circuit breaker configured by `config`.
    pub fn circuit_breaker(mut self, config: CircuitBreakerConfig) -> Self {
        self.circuit_breaker = Setting::On(config);
        self
    }

    /// No circuit breaker for this handler, even if the bus or event configures one.
    pub fn no_circuit_breaker(mut self) -> Self {
        self.circuit_breaker = Setting::Off;
        self
    }

    /// For async handlers: how many calls may run at once (default
    /// [`defaults::async_concurrency`](crate::defaults::async_concurrency)).
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

    /// For batch handlers: the batch size and window, instead of the event's `batch` policy.
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
            .field("batch", &self.batch);
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
