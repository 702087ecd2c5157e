//! Graceful shutdown: stop intake, flush, drain, abandon at the deadline, report.

use std::mem;
use std::sync::PoisonError;
use std::time::Duration;

use crate::bus::BusCore;

/// What [`BusCore::shutdown`] could not finish: each item was dead-lettered (unless the store
/// refused it) and reported as [`FailureKind::Abandoned`](crate::FailureKind::Abandoned).
///
/// ```
/// use eventbus_runtime::{BusCore, Event, HandlerOptions};
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
/// let core = BusCore::new(manifest);
/// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
/// let options = HandlerOptions::new().label("uploader");
/// ping.on_async_with(options, |_| tokio::time::sleep(Duration::from_secs(3600)));
/// ping.emit(1);
///
/// let report = core.shutdown_with_timeout(Duration::from_millis(50)).await;
/// let unfinished = &report.unfinished[0];
/// assert_eq!((unfinished.event, unfinished.handler.as_deref()), ("ping", Some("uploader")));
/// let letter = core.dead_letters().get(unfinished.dead_letter.unwrap()).unwrap().unwrap();
/// assert_eq!(letter.payload, 1);
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Unfinished {
    /// The event's name.
    pub event: &'static str,
    /// The handler's label; `None` for an event still waiting for its rate limit.
    pub handler: Option<String>,
    /// The dead letter's id.
    pub dead_letter: Option<u64>,
}

/// The outcome of [`BusCore::shutdown`].
///
/// ```
/// use eventbus_runtime::{BusCore, Event};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
/// let core = BusCore::new(manifest);
/// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
/// ping.on(|_| Err::<(), _>("down"));
/// ping.emit(1);
///
/// let report = core.shutdown().await;
/// assert!(!report.timed_out);
/// assert!(report.unfinished.is_empty());
/// assert_eq!(report.dead_letters, 1); // from before the shutdown
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ShutdownReport {
    /// `true` if the deadline passed with work still pending (then `unfinished` lists it).
    pub timed_out: bool,
    /// Work abandoned at the deadline: async calls, retries, rate-limited events.
    pub unfinished: Vec<Unfinished>,
    /// Letters in the dead-letter queue after shutdown.
    pub dead_letters: usize,
    /// Why the event store (feature `store`) could not make the outcomes of deliveries
    /// durable at the end of the shutdown, if it failed. The events concerned are delivered
    /// again by the next [`recover`](BusCore::recover) (at least once).
    pub event_store_error: Option<String>,
}

impl ShutdownReport {
    /// Whether everything pending was finished in time.
    ///
    /// ```
    /// use eventbus_runtime::{BusCore, Event};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// let core = BusCore::new(manifest);
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// ping.on_async(|_| tokio::time::sleep(Duration::from_secs(3600)));
    /// ping.emit(1);
    /// assert!(!core.shutdown_with_timeout(Duration::from_millis(50)).await.is_clean());
    /// # }
    /// ```
    pub fn is_clean(&self) -> bool {
        !self.timed_out && self.unfinished.is_empty() && self.event_store_error.is_none()
    }
}

impl BusCore {
    /// Shuts the bus down gracefully, waiting at most the builder's `shutdown_timeout`
    /// (default [`defaults::SHUTDOWN_TIMEOUT`](crate::defaults::SHUTDOWN_TIMEOUT)). See
    /// [`shutdown_with_timeout`](Self::shutdown_with_timeout).
    ///
    /// ```
    /// use eventbus_runtime::{BusCore, Event};
    /// use std::sync::Arc;
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// let core = BusCore::new(manifest);
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// let done = Arc::new(AtomicU32::new(0));
    /// let counter = done.clone();
    /// ping.on_async(move |_| {
    ///     let counter = counter.clone();
    ///     async move {
    ///         tokio::time::sleep(Duration::from_millis(20)).await;
    ///         counter.fetch_add(1, Ordering::SeqCst);
    ///     }
    /// });
    /// ping.emit(1);
    /// ping.emit(2);
    ///
    /// assert!(core.shutdown().await.is_clean()); // waited for both calls
    /// assert_eq!(done.load(Ordering::SeqCst), 2);
    /// assert!(core.is_shut_down());
    /// # }
    /// ```
    pub async fn shutdown(&self) -> ShutdownReport {
        let timeout = self.shared().runtime.settings.shutdown_timeout;
        self.shutdown_with_timeout(timeout).await
    }

    /// Shuts the bus down gracefully:
    ///
    /// 1. stops intake ([`close`](Self::close)): later emits are refused and dead-lettered;
    /// 2. delivers what policies hold back: the waiting debounced or throttled event, partial
    ///    batches;
    /// 3. waits up to `timeout` for pending work: async handler calls and their queues,
    ///    scheduled retries, rate-limited events (still at their rate);
    /// 4. at the deadline, abandons what is left: each payload goes to the dead-letter queue
    ///    and is listed in the report;
    /// 5. ends every `subscribe()` and `errors()` stream (after their buffered items);
    /// 6. with an event store (feature `store`), writes the outcomes of the deliveries
    ///    (processed, failed) and makes them durable, as
    ///    [`flush_event_store`](Self::flush_event_store) does, so the next
    ///    [`recover`](Self::recover) does not deliver them again.
    ///
    /// A bus with a NATS link (feature `nats`) first stops its consumers and delivers what they
    /// received, and before step 5 waits (within the same timeout) for its outstanding
    /// publishes and acknowledgements, then stops publishing; the report is `timed_out` if
    /// that did not finish in time.
    ///
    /// The wait runs on the bus's runtime, so the returned future may be awaited from any
    /// executor. Calling it again returns at once with an empty report.
    ///
    /// ```
    /// use eventbus_runtime::{BusCore, Event};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// let core = BusCore::new(manifest);
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// ping.on_async(|_| async { tokio::time::sleep(Duration::from_millis(10)).await });
    /// ping.emit(1);
    /// let report = core.shutdown_with_timeout(Duration::from_secs(5)).await;
    /// assert!(report.is_clean());
    /// assert!(core.emit_json("ping", "2").is_err());
    /// # }
    /// ```
    pub async fn shutdown_with_timeout(&self, timeout: Duration) -> ShutdownReport {
        #[cfg(feature = "nats")]
        let started = std::time::Instant::now();
        // Stop taking events from other processes; hand over what was received already.
        #[cfg(feature = "nats")]
        let quiesced = match &self.shared().nats {
            Some(link) => link.quiesce(timeout).await,
            None => true,
        };
        self.close();
        let events = self.events();
        for event in events.iter() {
            event.clone().flush();
        }
        let runtime = self.shared().runtime.clone();
        let timed_out = if runtime.pending() == 0 || !runtime.started() {
            false
        } else {
            let (done, waited) = tokio::sync::oneshot::channel();
            let waiter = runtime.clone();
            runtime.handle().spawn(async move {
                let timed_out = tokio::time::timeout(timeout, waiter.idle()).await.is_err();
                if timed_out {
                    waiter.abandon();
                    waiter.idle().await;
                }
                let _ = done.send(timed_out);
            });
            waited.await.unwrap_or(true)
        };
        // Publish what was emitted and settle what was received, then stop publishing.
        #[cfg(feature = "nats")]
        let timed_out = match &self.shared().nats {
            Some(link) => {
                let left = timeout.saturating_sub(started.elapsed());
                let settled = link.settled(left).await;
                link.close();
                timed_out || !quiesced || !settled
            }
            None => timed_out,
        };
        for event in events.iter() {
            event.close_streams();
        }
        self.shared().failures.close_streams();
        let unfinished = mem::take(
            &mut *self
                .shared()
                .unfinished
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        #[cfg(feature = "store")]
        let event_store_error = match self.shared().journal.clone() {
            // Off the caller's executor: the flush waits for the writer's transaction and sync.
            Some(journal) => match runtime
                .handle()
                .spawn_blocking(move || journal.flush())
                .await
            {
                Ok(Ok(())) => None,
                Ok(Err(error)) => Some(error.to_string()),
                Err(error) => Some(format!("the flush did not finish: {error}")),
            },
            None => None,
        };
        #[cfg(not(feature = "store"))]
        let event_store_error = None;
        ShutdownReport {
            timed_out,
            unfinished,
            dead_letters: self.shared().store.len().unwrap_or(0),
            event_store_error,
        }
    }
}
