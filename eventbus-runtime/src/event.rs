//! `Event<T>`: one typed event of a bus.

use std::borrow::Cow;
use std::fmt;
#[cfg(feature = "async")]
use std::future::Future;
use std::sync::Arc;
#[cfg(feature = "async")]
use std::sync::atomic::AtomicUsize;
use std::sync::atomic::Ordering;
#[cfg(feature = "async")]
use std::sync::{Mutex, PoisonError, Weak};

use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::breaker::{CircuitOpen, Outcome};
use crate::bus::{BusCore, ErasedEvent, Redelivery};
use crate::dead_letter::{DeadLetter, RedispatchError};
use crate::error::DispatchError;
use crate::handler::{FailureKind, HandlerResult};
use crate::listeners::{BoxError, CallError, Entry, ListenerList};
use crate::meta::EventMeta;
use crate::options::{HandlerInfo, HandlerKind, HandlerOptions};
use crate::shared::EventCtx;
#[cfg(feature = "async")]
use crate::shared::Next;
use crate::stats::{EventStats, HandlerStats, Stat};
use crate::subscription::{Detach, Subscription};

/// What an event payload must be: JSON-serialisable (for the wire, the store and failure
/// reports), cloneable, and shareable between threads. Implemented for every such type.
pub trait Payload: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {}

impl<T> Payload for T where T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {}

/// One typed event of a bus: `bus.package_install` is an `Event<PackageEvent>`.
///
/// Cloning is cheap and clones share the listeners. Sync handlers run on the emitting thread,
/// in subscription order; async handlers, batch handlers and streams receive the event on the
/// bus's runtime (see `docs/reliability.md`).
///
/// # Reentrancy and snapshots
///
/// A handler may subscribe, unsubscribe (itself or another listener), call
/// [`remove_all_listeners`](Self::remove_all_listeners) or emit any event, this one included,
/// without deadlock: handlers never run under a lock. Each emit works on a snapshot of the
/// listener list taken when it starts, so a listener added during an emit is first called by
/// the next emit. A listener removed during an emit is not called from that moment on.
pub struct Event<T: Payload> {
    pub(crate) inner: Arc<EventInner<T>>,
}

pub(crate) struct EventInner<T: Payload> {
    pub(crate) ctx: Arc<EventCtx>,
    pub(crate) listeners: ListenerList<T, EventInner<T>>,
    /// Set for [`Signal`](crate::Signal)s: `emit_json` accepts `null` / `{}` only.
    payload_less: bool,
    #[cfg(feature = "async")]
    pub(crate) gate: Option<crate::flood::Gate<T>>,
    /// The `subscribe()` streams (closed at shutdown).
    #[cfg(feature = "async")]
    streams: Arc<crate::stream::StreamHub<T>>,
    /// Batches to flush at shutdown.
    #[cfg(feature = "async")]
    batches: Mutex<Vec<Weak<crate::batch::BatchHandler<T>>>>,
    /// How many async handlers were ever subscribed. From two on, emits open a
    /// [`crate::share::EmitScope`] so that they share one copy of the payload; with one, the
    /// shared copy would be an allocation that saves nothing. Never decremented (after
    /// unsubscribes an emit only pays for the scope).
    #[cfg(feature = "async")]
    async_handlers: AtomicUsize,
}

impl<T: Payload> Event<T> {
    /// Creates the event described by `meta` and registers it with `core`, so that
    /// [`BusCore::emit_json`] can reach it by name. Generated code calls this once per event.
    ///
    /// The event's policies are the manifest's (`meta.policies`) with the overrides given to
    /// the [`BusBuilder`](crate::BusBuilder) applied.
    ///
    /// # Panics
    ///
    /// If `core` already has an event named `meta.name`, or if `meta` is not from the core's
    /// manifest and declares a policy this build cannot honour.
    pub fn new(core: &BusCore, meta: &'static EventMeta) -> Event<T> {
        Event::create(core, meta, false)
    }

    pub(crate) fn create(core: &BusCore, meta: &'static EventMeta, payload_less: bool) -> Event<T> {
        let ctx = Arc::new(core.event_ctx(meta));
        #[cfg(feature = "metrics")]
        let on_change: Option<Box<dyn Fn(usize) + Send + Sync>> = {
            let gauge =
                metrics::gauge!(crate::stats::metric_names::LISTENERS, "event" => meta.name);
            gauge.set(0.0);
            Some(Box::new(move |len: usize| gauge.set(len as f64)))
        };
        #[cfg(not(feature = "metrics"))]
        let on_change = None;
        #[cfg(feature = "store")]
        let persisted = crate::store::persists(&ctx);
        #[cfg(not(feature = "store"))]
        let persisted = false;
        #[cfg(feature = "nats")]
        let published = crate::nats::publishes(&ctx);
        #[cfg(not(feature = "nats"))]
        let published = false;
        let slow = ctx.config.gated()
            || ctx.shared.instrumented
            || ctx.shared.is_closed()
            || persisted
            || published;
        let inner = Arc::new(EventInner {
            #[cfg(feature = "async")]
            gate: crate::flood::Gate::new(&ctx.config),
            ctx,
            listeners: ListenerList::new(on_change),
            payload_less,
            #[cfg(feature = "async")]
            streams: Arc::new(crate::stream::StreamHub::new()),
            #[cfg(feature = "async")]
            batches: Mutex::new(Vec::new()),
            #[cfg(feature = "async")]
            async_handlers: AtomicUsize::new(0),
        });
        if slow {
            inner.set_slow();
        }
        core.register(inner.clone());
        Event { inner }
    }

    /// Delivers `payload` to every listener, in subscription order: sync handlers run on this
    /// thread before `emit` returns.
    ///
    /// A handler that returns `Err` or panics does not stop the others; each failure becomes a
    /// [`HandlerFailure`](crate::HandlerFailure) (see [`BusCore::on_failure`] and
    /// `BusCore::errors()`), and is retried or dead-lettered per the event's policy.
    ///
    /// Without policies or instrumentation, emitting allocates nothing and takes no lock shared
    /// with other emitters (firing a `once` listener or handling a failure does). With a
    /// `throttle`, `debounce` or `rate_limit` policy the event may be delivered later, on the
    /// bus's runtime, or not at all (a throttled or debounced event superseded by a later
    /// one). After `BusCore::shutdown()` the emit is refused: reported as
    /// [`FailureKind::Rejected`](crate::FailureKind::Rejected) and dead-lettered.
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("chainSync", Some("ChainSync"))]);
    /// use eventbus_runtime::{BusCore, Event};
    ///
    /// #[derive(Clone, serde::Serialize, serde::Deserialize)]
    /// struct ChainSync { network: String, peers: u32 }
    ///
    /// let core = BusCore::new(manifest);
    /// let chain_sync: Event<ChainSync> = Event::new(&core, manifest.event("chainSync").unwrap());
    /// chain_sync.on(|e| println!("{}: {} peers", e.network, e.peers));
    /// chain_sync.emit(ChainSync { network: "mainnet".into(), peers: 12 });
    /// ```
    #[inline]
    pub fn emit(&self, payload: T) {
        let route = self.inner.listeners.route();
        if route > 0 {
            self.inner.dispatch_listeners(&payload);
        } else if route < 0 {
            self.inner.emit_slow(payload);
        }
    }

    /// [`emit`](Self::emit) for a payload the caller keeps: sync handlers get this reference,
    /// so nothing is cloned unless the event needs an owned copy (a policy, async handlers,
    /// streams, persistence or instrumentation).
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::{BusCore, Event};
    ///
    /// let core = BusCore::new(manifest);
    /// let ping: Event<String> = Event::new(&core, manifest.event("ping").unwrap());
    /// let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    /// let log = seen.clone();
    /// ping.on(move |s: &String| log.lock().unwrap().push(s.clone()));
    /// let payload = String::from("kept");
    /// ping.emit_ref(&payload);
    /// assert_eq!(payload, "kept"); // still the caller's
    /// assert_eq!(*seen.lock().unwrap(), ["kept"]);
    /// ```
    #[inline]
    pub fn emit_ref(&self, payload: &T) {
        let route = self.inner.listeners.route();
        if route > 0 {
            self.inner.dispatch_listeners(payload);
        } else if route < 0 {
            self.inner.emit_slow(payload.clone());
        }
    }

    /// Adds a listener, called on every emit until unsubscribed. Returns its
    /// [`Subscription`]; dropping that does not remove the listener.
    ///
    /// The handler gets `&T` and returns `()` or `Result<(), E>` (see
    /// [`HandlerResult`]), so it may use `?`.
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("chainSync", Some("ChainSync"))]);
    /// use eventbus_runtime::{BusCore, Event};
    ///
    /// #[derive(Clone, serde::Serialize, serde::Deserialize)]
    /// struct ChainSync { network: String, block_height: String }
    ///
    /// let core = BusCore::new(manifest);
    /// let chain_sync: Event<ChainSync> = Event::new(&core, manifest.event("chainSync").unwrap());
    ///
    /// // A plain handler.
    /// chain_sync.on(|e| println!("syncing {}", e.network));
    /// // A fallible one: its `Err` is reported to the bus's failure observer.
    /// chain_sync.on(|e| {
    ///     let height: u64 = e.block_height.parse()?;
    ///     println!("at block {height}");
    ///     Ok::<(), std::num::ParseIntError>(())
    /// });
    /// assert_eq!(chain_sync.listener_count(), 2);
    /// chain_sync.emit(ChainSync { network: "mainnet".into(), block_height: "19000000".into() });
    /// ```
    pub fn on<F, R>(&self, handler: F) -> Subscription
    where
        F: Fn(&T) -> R + Send + Sync + 'static,
        R: HandlerResult,
    {
        self.add_sync(false, HandlerOptions::default(), handler)
    }

    /// [`on`](Self::on) with a label that names the handler in failures, dead letters, logs
    /// and metrics.
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::{BusCore, Event};
    /// use std::sync::{Arc, Mutex};
    ///
    /// let core = BusCore::new(manifest);
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = seen.clone();
    /// core.on_failure(move |f| log.lock().unwrap().push(f.to_string()));
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// ping.on_labeled("quota-check", |n| if *n > 9 { Err("too big") } else { Ok(()) });
    /// ping.emit(10);
    /// assert_eq!(
    ///     seen.lock().unwrap()[0],
    ///     "quota-check of event `ping` failed (attempt 1): too big"
    /// );
    /// ```
    pub fn on_labeled<F, R>(&self, label: impl Into<Cow<'static, str>>, handler: F) -> Subscription
    where
        F: Fn(&T) -> R + Send + Sync + 'static,
        R: HandlerResult,
    {
        self.add_sync(false, HandlerOptions::new().label(label), handler)
    }

    /// [`on`](Self::on) with [`HandlerOptions`]: a label, and overrides of the event's retry
    /// and circuit-breaker settings for this handler.
    pub fn on_with<F, R>(&self, options: HandlerOptions, handler: F) -> Subscription
    where
        F: Fn(&T) -> R + Send + Sync + 'static,
        R: HandlerResult,
    {
        self.add_sync(false, options, handler)
    }

    /// Adds a listener called by the next emit only, then removed. Even when many threads emit
    /// at once, exactly one of them runs it.
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::{BusCore, Event};
    /// use std::sync::{Arc, Mutex};
    ///
    /// let core = BusCore::new(manifest);
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// let first = Arc::new(Mutex::new(None));
    /// let slot = first.clone();
    /// let subscription = ping.once(move |n| *slot.lock().unwrap() = Some(*n));
    /// ping.emit(1);
    /// ping.emit(2);
    /// assert_eq!(*first.lock().unwrap(), Some(1));
    /// assert!(!subscription.is_active());
    /// assert_eq!(ping.listener_count(), 0);
    /// ```
    pub fn once<F, R>(&self, handler: F) -> Subscription
    where
        F: Fn(&T) -> R + Send + Sync + 'static,
        R: HandlerResult,
    {
        self.add_sync(true, HandlerOptions::default(), handler)
    }

    fn add_sync<F, R>(&self, once: bool, options: HandlerOptions, handler: F) -> Subscription
    where
        F: Fn(&T) -> R + Send + Sync + 'static,
        R: HandlerResult,
    {
        let inner = &self.inner;
        let breaker = options
            .circuit_breaker
            .resolve(inner.ctx.config.circuit_breaker);
        let id = match breaker {
            None => inner.listeners.add(once, |id| {
                let info = inner.handler_info(id, &options, HandlerKind::Sync);
                (info, None, move |payload: &T| {
                    handler(payload).into_result()
                })
            }),
            Some(_) => inner.listeners.add(once, |id| {
                let info = inner.handler_info(id, &options, HandlerKind::Sync);
                let guard = info.clone();
                let guarded = move |payload: &T| -> Result<(), BoxError> {
                    let breaker = guard.breaker.as_ref().expect("configured above");
                    if !breaker.acquire() {
                        return Err(Box::new(CircuitOpen));
                    }
                    // Records a failure if the handler panics.
                    let mut outcome = Outcome::new(breaker);
                    let result = handler(payload).into_result();
                    outcome.set(result.is_ok());
                    result
                };
                (info, None, guarded)
            }),
        };
        self.subscription(id)
    }

    fn subscription(&self, id: u64) -> Subscription {
        let weak: std::sync::Weak<dyn Detach> = Arc::downgrade(&self.inner) as _;
        Subscription::new(weak, id)
    }

    /// Adds an async handler: for each event it gets its own clone of the payload and its
    /// future runs on the bus's runtime (see `docs/reliability.md`, "Timers and runtime").
    ///
    /// At most [`HandlerOptions::concurrency`] calls run at once (default
    /// [`defaults::async_concurrency`](crate::defaults::async_concurrency)); further events
    /// wait in a queue of [`HandlerOptions::queue`] (default
    /// [`defaults::ASYNC_QUEUE`](crate::defaults::ASYNC_QUEUE)). `emit` never waits: when the
    /// queue is full, the event goes to the dead-letter queue for this handler and is reported
    /// as [`FailureKind::Overflow`](crate::FailureKind::Overflow). Failures are retried in place
    /// (the call keeps its slot while it backs off) per the event's retry policy. A call may be
    /// given a time limit with [`HandlerOptions::timeout`] (default: none).
    ///
    /// ```
    /// use eventbus_runtime::{BusCore, Event};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// let core = BusCore::new(manifest);
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// ping.on_async(move |n| {
    ///     let tx = tx.clone();
    ///     async move {
    ///         tx.send(n * 2)?;
    ///         Ok::<(), tokio::sync::mpsc::error::SendError<u32>>(())
    ///     }
    /// });
    /// ping.emit(21);
    /// assert_eq!(rx.recv().await, Some(42));
    /// # }
    /// ```
    #[cfg(feature = "async")]
    pub fn on_async<F, Fut, R>(&self, handler: F) -> Subscription
    where
        F: Fn(T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: HandlerResult,
    {
        self.on_async_with(HandlerOptions::default(), handler)
    }

    /// [`on_async`](Self::on_async) with [`HandlerOptions`] (label, concurrency, queue, timeout,
    /// retry, circuit breaker).
    #[cfg(feature = "async")]
    pub fn on_async_with<F, Fut, R>(&self, options: HandlerOptions, handler: F) -> Subscription
    where
        F: Fn(T) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: HandlerResult,
    {
        let inner = &self.inner;
        let config = inner.pool_config(&options, false);
        // From the second async handler on, emits take the slow path, whose `deliver` opens
        // the scope in which they share one copy (see `share`): the fast path stays as it is.
        if inner.async_handlers.fetch_add(1, Ordering::Relaxed) + 1 >= 2
            && std::mem::needs_drop::<T>()
        {
            inner.set_slow();
        }
        let id = inner.listeners.add(false, |id| {
            let info = inner.handler_info(id, &options, HandlerKind::Async);
            let call: crate::async_handler::AsyncFn<T> = Box::new(move |payload: T| {
                let future = handler(payload);
                Box::pin(async move { future.await.into_result() })
            });
            let pool = Arc::new(crate::async_handler::AsyncPool::new(
                inner.ctx.clone(),
                info.clone(),
                call,
                config,
            ));
            let hook_pool = pool.clone();
            let event = inner.ctx.meta.name;
            let hook: crate::listeners::RedispatchHook = Box::new(move |json| {
                let payload: T = from_json(event, json)?;
                let pool = hook_pool.clone();
                Ok(Box::new(move || pool.submit(payload)) as Redelivery)
            });
            // The emit's shared copy (see `share`): one per emit, not one per handler.
            let submit = move |payload: &T| {
                pool.submit_item(crate::share::item(payload));
                Ok(())
            };
            (info, Some(hook), submit)
        });
        self.subscription(id)
    }

    /// Adds a batch handler: it receives the events in batches of up to `max_size`, at the
    /// latest `max_wait` after the first event of a batch arrived, per
    /// [`HandlerOptions::batch`], else the event's `batch` policy (manifest or builder), else
    /// [`defaults::BATCH`](crate::defaults::BATCH). A full batch is delivered on the emitting
    /// thread; a batch completed by its window on the bus's runtime. A failed batch is retried
    /// and dead-lettered as a whole (its payload is a JSON array). For a handler that awaits
    /// (a database write), use [`on_batch_async`](Self::on_batch_async).
    ///
    /// Other handlers of the event (`on`, `on_async`, streams) still get each event as it comes.
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::{Batch, BusCore, Event, HandlerOptions};
    /// use std::sync::{Arc, Mutex};
    /// use std::time::Duration;
    ///
    /// let core = BusCore::new(manifest);
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// let batches = Arc::new(Mutex::new(Vec::new()));
    /// let sink = batches.clone();
    /// let batch = Batch { max_size: 2, max_wait: Duration::from_secs(60) };
    /// ping.on_batch_with(HandlerOptions::new().batch(batch), move |b: &[u32]| {
    ///     sink.lock().unwrap().push(b.to_vec())
    /// });
    /// for n in 1..=4 {
    ///     ping.emit(n);
    /// }
    /// assert_eq!(*batches.lock().unwrap(), [vec![1, 2], vec![3, 4]]);
    /// ```
    #[cfg(feature = "async")]
    pub fn on_batch<F, R>(&self, handler: F) -> Subscription
    where
        F: Fn(&[T]) -> R + Send + Sync + 'static,
        R: HandlerResult,
    {
        self.on_batch_with(HandlerOptions::default(), handler)
    }

    /// [`on_batch`](Self::on_batch) with [`HandlerOptions`] (label, batch size and window,
    /// retry, circuit breaker).
    #[cfg(feature = "async")]
    pub fn on_batch_with<F, R>(&self, options: HandlerOptions, handler: F) -> Subscription
    where
        F: Fn(&[T]) -> R + Send + Sync + 'static,
        R: HandlerResult,
    {
        let inner = &self.inner;
        let call: crate::batch::BatchFn<T> =
            Box::new(move |items: &[T]| handler(items).into_result());
        self.add_batch(&options, |info| {
            crate::batch::BatchSink::Sync(Arc::new(crate::batch::SyncBatch::new(
                inner.ctx.clone(),
                info,
                call,
            )))
        })
    }

    /// Adds an async batch handler: [`on_batch`](Self::on_batch) whose handler receives each
    /// batch as an owned `Vec<T>` and returns a future, run on the bus's runtime like an
    /// [`on_async`](Self::on_async) handler's.
    ///
    /// Batches are formed as for `on_batch`: up to `max_size` events, at the latest `max_wait`
    /// after the first event of a batch, per [`HandlerOptions::batch`], else the event's
    /// `batch` policy (manifest or builder), else [`defaults::BATCH`](crate::defaults::BATCH).
    /// Each complete batch is then one call of the handler, under the rules of `on_async`: at
    /// most [`HandlerOptions::concurrency`] calls at once, further batches wait in a queue of
    /// [`HandlerOptions::queue`] batches (the event's manifest `concurrency` / `queue` apply
    /// too), a batch that finds the queue full is dead-lettered whole
    /// ([`FailureKind::Overflow`](crate::FailureKind::Overflow)), and a call may be limited
    /// with [`HandlerOptions::timeout`]. A failed call is retried in place with the whole batch
    /// per the retry policy, then dead-lettered whole (its payload is a JSON array);
    /// `redispatch` delivers it as a batch again. At shutdown the partial batch is delivered at
    /// once and its call drained with the others.
    ///
    /// `emit` never waits: a batch its emit completes is handed to the runtime.
    ///
    /// ```
    /// use eventbus_runtime::{Batch, BusCore, Event, HandlerOptions};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("reading", Some("u32"))]);
    /// let core = BusCore::new(manifest);
    /// let reading: Event<u32> = Event::new(&core, manifest.event("reading").unwrap());
    /// let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    /// reading.on_batch_async_with(
    ///     HandlerOptions::new().batch(Batch { max_size: 2, max_wait: Duration::from_secs(1) }),
    ///     move |batch: Vec<u32>| {
    ///         let tx = tx.clone();
    ///         async move {
    ///             tokio::time::sleep(Duration::from_millis(10)).await; // an INSERT, say
    ///             tx.send(batch)
    ///         }
    ///     },
    /// );
    /// for n in 1..=3 {
    ///     reading.emit(n);
    /// }
    /// assert_eq!(rx.recv().await, Some(vec![1, 2])); // full
    /// assert_eq!(rx.recv().await, Some(vec![3])); // its window closed
    /// # }
    /// ```
    #[cfg(feature = "async")]
    pub fn on_batch_async<F, Fut, R>(&self, handler: F) -> Subscription
    where
        F: Fn(Vec<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: HandlerResult,
    {
        self.on_batch_async_with(HandlerOptions::default(), handler)
    }

    /// [`on_batch_async`](Self::on_batch_async) with [`HandlerOptions`] (label, batch size and
    /// window, concurrency, queue, timeout, retry, circuit breaker).
    ///
    /// ```
    /// use eventbus_runtime::{Batch, BusCore, Event, HandlerOptions, Retry};
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread", start_paused = true)]
    /// # async fn main() {
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("reading", Some("u32"))]);
    /// let core = BusCore::new(manifest);
    /// let reading: Event<u32> = Event::new(&core, manifest.event("reading").unwrap());
    /// let options = HandlerOptions::new()
    ///     .label("bulk-insert")
    ///     .batch(Batch { max_size: 3, max_wait: Duration::from_secs(1) })
    ///     .retry(Retry { attempts: 2, backoff: Duration::from_millis(100), max_backoff: Duration::from_secs(1) });
    /// reading.on_batch_async_with(options, |_batch: Vec<u32>| async { Err::<(), _>("database down") });
    /// for n in 1..=3 {
    ///     reading.emit(n);
    /// }
    ///
    /// tokio::time::sleep(Duration::from_secs(1)).await;
    /// let letter = &core.dead_letters().list().unwrap()[0];
    /// assert!(letter.batch);
    /// assert_eq!((letter.attempts, letter.payload.clone()), (2, serde_json::json!([1, 2, 3])));
    /// # }
    /// ```
    #[cfg(feature = "async")]
    pub fn on_batch_async_with<F, Fut, R>(
        &self,
        options: HandlerOptions,
        handler: F,
    ) -> Subscription
    where
        F: Fn(Vec<T>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = R> + Send + 'static,
        R: HandlerResult,
    {
        let inner = &self.inner;
        let config = inner.pool_config(&options, true);
        let call: crate::async_handler::AsyncFn<Vec<T>> = Box::new(move |items: Vec<T>| {
            let future = handler(items);
            Box::pin(async move { future.await.into_result() })
        });
        self.add_batch(&options, |info| {
            crate::batch::BatchSink::Async(Arc::new(crate::async_handler::AsyncPool::new(
                inner.ctx.clone(),
                info,
                call,
                config,
            )))
        })
    }

    /// Subscribes a batch handler whose batches go to the sink `sink(info)` builds.
    #[cfg(feature = "async")]
    fn add_batch(
        &self,
        options: &HandlerOptions,
        sink: impl FnOnce(Arc<HandlerInfo>) -> crate::batch::BatchSink<T>,
    ) -> Subscription {
        let inner = &self.inner;
        let batch = options
            .batch
            .or(inner.ctx.config.batch)
            .unwrap_or(crate::defaults::BATCH);
        let mut created = None;
        let id = inner.listeners.add(false, |id| {
            let info = inner.handler_info(id, options, HandlerKind::Batch);
            let handler = Arc::new(crate::batch::BatchHandler::new(
                inner.ctx.clone(),
                sink(info.clone()),
                batch,
            ));
            created = Some(handler.clone());
            let hook_handler = handler.clone();
            let event = inner.ctx.meta.name;
            let hook: crate::listeners::RedispatchHook = Box::new(move |json| {
                let items: Vec<T> = from_json(event, json)?;
                let handler = hook_handler.clone();
                Ok(Box::new(move || handler.deliver(items)) as Redelivery)
            });
            let push = move |payload: &T| {
                handler.push(payload.clone());
                Ok(())
            };
            (info, Some(hook), push)
        });
        if let Some(handler) = created {
            let mut batches = inner.batches.lock().unwrap_or_else(PoisonError::into_inner);
            batches.retain(|b| b.strong_count() > 0);
            batches.push(Arc::downgrade(&handler));
        }
        self.subscription(id)
    }

    /// The events as a bounded async [`EventStream`](crate::EventStream) of
    /// [`defaults::STREAM_CAPACITY`](crate::defaults::STREAM_CAPACITY) items. See
    /// [`subscribe_with_capacity`](Self::subscribe_with_capacity).
    #[cfg(feature = "async")]
    pub fn subscribe(&self) -> crate::stream::EventStream<T> {
        self.subscribe_with_capacity(crate::defaults::STREAM_CAPACITY)
    }

    /// The events as a bounded async [`EventStream`](crate::EventStream): a consumer that
    /// falls more than `capacity` events behind receives `Err(Lagged(n))` and then the newest
    /// events; the buffer never holds more than `capacity`. The stream ends when the bus shuts
    /// down; dropping it unsubscribes.
    ///
    /// ```
    /// use eventbus_runtime::{BusCore, Event, Lagged};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() {
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// let core = BusCore::new(manifest);
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// let mut stream = ping.subscribe_with_capacity(2);
    /// for n in 1..=5 {
    ///     ping.emit(n);
    /// }
    /// assert_eq!(stream.recv().await, Some(Err(Lagged(3))));
    /// assert_eq!(stream.recv().await, Some(Ok(4)));
    /// assert_eq!(stream.recv().await, Some(Ok(5)));
    /// # }
    /// ```
    ///
    /// # Panics
    ///
    /// If `capacity` is 0.
    #[cfg(feature = "async")]
    pub fn subscribe_with_capacity(&self, capacity: usize) -> crate::stream::EventStream<T> {
        let inner = &self.inner;
        let ctx = inner.ctx.clone();
        let ring = Arc::new(crate::stream::Ring::new(
            capacity,
            Some(Box::new(move |n| ctx.counters.add(Stat::Lagged, n))),
        ));
        let hub = inner.streams.clone();
        inner.streams.add(
            ring.clone(),
            |id| inner.listeners.is_active(id),
            || {
                inner.listeners.add(false, |id| {
                    let info =
                        inner.handler_info(id, &HandlerOptions::default(), HandlerKind::Stream);
                    let push = move |payload: &T| {
                        hub.push(id, payload);
                        Ok(())
                    };
                    (info, None, push)
                })
            },
        );
        if inner.ctx.shared.is_closed() {
            ring.close();
        }
        let weak: std::sync::Weak<dyn Detach> = Arc::downgrade(&self.inner) as _;
        crate::stream::EventStream::new(ring, inner.streams.clone(), weak)
    }

    /// Removes every listener of this event. Their subscriptions become inactive.
    pub fn remove_all_listeners(&self) {
        self.inner.listeners.clear();
        #[cfg(feature = "async")]
        if let Some(feeder) = self.inner.streams.clear() {
            self.inner.listeners.remove(feeder);
        }
    }

    /// The number of listeners an emit would call now (each `subscribe()` stream counts as
    /// one).
    pub fn listener_count(&self) -> usize {
        self.inner.listener_count()
    }

    /// The event's manifest name (`"packageInstall"`), also its JSON / wire name.
    pub fn name(&self) -> &'static str {
        self.inner.ctx.meta.name
    }

    /// The event as declared in the manifest.
    pub fn meta(&self) -> &'static EventMeta {
        self.inner.ctx.meta
    }
}

impl<T: Payload> Clone for Event<T> {
    fn clone(&self) -> Self {
        Event {
            inner: self.inner.clone(),
        }
    }
}

impl<T: Payload> fmt::Debug for Event<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("name", &self.name())
            .field("listeners", &self.listener_count())
            .finish()
    }
}

/// Where an emit comes from: what it owes the store and the other processes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    /// `emit` in this process: stored (if persisted), published (if distributed), delivered.
    Local,
    /// A dead letter or a stored event delivered again: not published again.
    Redispatch,
    /// Received from another process (NATS): delivered only.
    #[cfg_attr(not(feature = "nats"), allow(dead_code))]
    Remote,
}

/// Deserialises a stored payload for re-dispatch.
fn from_json<P: DeserializeOwned>(event: &'static str, json: Value) -> Result<P, RedispatchError> {
    serde_json::from_value(json)
        .map_err(|e| RedispatchError::InvalidPayload(DispatchError::invalid_value(event, &e)))
}

impl<T: Payload> EventInner<T> {
    /// How an async handler's pool runs: the handler's option, else the event's (code, then
    /// manifest), else the bus's.
    #[cfg(feature = "async")]
    fn pool_config(
        &self,
        options: &HandlerOptions,
        batch: bool,
    ) -> crate::async_handler::PoolConfig {
        let settings = &self.ctx.shared.runtime.settings;
        let config = &self.ctx.config;
        crate::async_handler::PoolConfig {
            limit: options
                .concurrency
                .or(config.concurrency)
                .unwrap_or(settings.async_concurrency),
            capacity: options
                .queue
                .or(config.queue)
                .unwrap_or(settings.async_queue),
            timeout: options.timeout.or(settings.handler_timeout),
            batch,
        }
    }

    pub(crate) fn handler_info(
        &self,
        id: u64,
        options: &HandlerOptions,
        kind: HandlerKind,
    ) -> Arc<HandlerInfo> {
        let breaker = options
            .circuit_breaker
            .resolve(self.ctx.config.circuit_breaker);
        #[allow(unused_mut)]
        let mut info = HandlerInfo::new(id, options.label.clone(), kind, options.retry, breaker);
        #[cfg(feature = "async")]
        {
            info.retries.capacity = options
                .retry_queue
                .unwrap_or(self.ctx.shared.runtime.settings.retry_queue);
        }
        #[cfg(feature = "metrics")]
        if self.ctx.shared.instrumented {
            info.latency = Some(metrics::histogram!(
                crate::stats::metric_names::HANDLER_DURATION,
                "event" => self.ctx.meta.name,
                "handler" => info.label.to_string()
            ));
        }
        Arc::new(info)
    }

    /// The slow path of `emit`: shutdown, write-ahead, instrumentation, event-level policies.
    #[cold]
    #[inline(never)]
    fn emit_slow(self: &Arc<Self>, payload: T) {
        // Refusals and store failures are reported inside.
        let _ = self.emit_tracked(payload);
    }

    /// [`emit_slow`](Self::emit_slow), saying whether (and where) the event was stored. A
    /// persisted event is stored before any handler runs and delivered inside its delivery
    /// scope (see `store::track`); a distributed event is published (see `nats`); on `Err`
    /// nothing was delivered.
    pub(crate) fn emit_tracked(
        self: &Arc<Self>,
        payload: T,
    ) -> Result<crate::store::Receipt, crate::store::PersistError> {
        self.emit_from(payload, Origin::Local)
    }

    /// An emit from `origin`: only a local emit is published to other processes, and an event
    /// that came from one is not stored again.
    pub(crate) fn emit_from(
        self: &Arc<Self>,
        payload: T,
        origin: Origin,
    ) -> Result<crate::store::Receipt, crate::store::PersistError> {
        if self.ctx.shared.is_closed() {
            self.ctx.give_up(
                None,
                FailureKind::Rejected,
                "the bus is shut down".into(),
                0,
                false,
                serde_json::to_value(&payload).unwrap_or(Value::Null),
            );
            return Err(crate::store::PersistError::ShutDown {
                event: self.ctx.meta.name,
            });
        }
        #[cfg(feature = "store")]
        let (_delivery, receipt) = match origin {
            Origin::Remote => (None, crate::store::Receipt::NOT_STORED),
            Origin::Local | Origin::Redispatch => crate::store::write_ahead(&self.ctx, &payload)?,
        };
        #[cfg(not(feature = "store"))]
        let receipt = crate::store::Receipt::NOT_STORED;
        #[cfg(feature = "nats")]
        let receipt = match origin {
            Origin::Local => match crate::nats::publish(&self.ctx, &payload, receipt) {
                Ok(receipt) => receipt,
                Err(error) => {
                    // Stored but neither published nor delivered: not `processed`.
                    crate::store::track::dead_lettered(self.ctx.meta.name);
                    return Err(error);
                }
            },
            Origin::Remote | Origin::Redispatch => receipt,
        };
        if self.ctx.shared.instrumented && origin != Origin::Remote {
            self.ctx.counters.add(Stat::Emitted, 1);
        }
        #[cfg(feature = "async")]
        if self.gate.is_some() {
            self.submit_gated(payload);
            return Ok(receipt);
        }
        self.deliver(payload);
        Ok(receipt)
    }

    /// Listeners an emit would call now, with every `subscribe()` stream counted as one (they
    /// share one listener).
    fn listener_count(&self) -> usize {
        let listeners = self.listeners.len();
        #[cfg(feature = "async")]
        {
            let (streams, feeder) = self.streams.streams();
            if let Some(id) = feeder
                && self.listeners.is_active(id)
            {
                return listeners - 1 + streams;
            }
        }
        listeners
    }

    /// The fast path: calls every listener, nothing else. Only taken when the event has no
    /// event-level policy, the bus is not instrumented, no async handlers share its payload
    /// and it is not shut down (see [`ListenerList::route`]). Inlined into the emit's caller:
    /// the call into an out-of-line copy, with the five registers it saved, was a third of a
    /// one-listener emit (6.2 against 3.6–4.1 ns in `benches/emit.py`'s interleaved timing);
    /// the loop is about 100 bytes of code per emit call site.
    #[inline(always)]
    fn dispatch_listeners(&self, payload: &T) {
        self.listeners.dispatch(payload, self);
    }

    /// Calls every listener with `payload` (after any event-level policy let it through),
    /// timing the calls on an instrumented bus. From two async handlers on, `payload` moves
    /// into the one copy they share (see `share`): no clone for it.
    pub(crate) fn deliver(self: &Arc<Self>, payload: T) {
        #[cfg(feature = "async")]
        if std::mem::needs_drop::<T>() && self.async_handlers.load(Ordering::Relaxed) >= 2 {
            let shared = Arc::new(payload);
            let _scope = crate::share::EmitScope::enter(shared.clone());
            return self.call_listeners(&shared);
        }
        self.call_listeners(&payload);
    }

    /// [`deliver`](Self::deliver) by reference.
    fn call_listeners(self: &Arc<Self>, payload: &T) {
        if self.ctx.shared.instrumented {
            // Shared by the failures of this emit (serialised once).
            let mut json = None;
            self.listeners
                .dispatch_timed(payload, |listener, outcome, elapsed| match outcome {
                    Ok(()) => {
                        if matches!(listener.info.kind, HandlerKind::Sync) {
                            listener.info.record(true, Some(elapsed));
                            self.ctx.counters.add(Stat::Delivered, 1);
                        }
                    }
                    Err(error) => {
                        listener.info.record(false, Some(elapsed));
                        self.after_failure(listener, error, payload, &mut json);
                    }
                });
        } else {
            self.listeners.dispatch(payload, &**self);
        }
    }

    /// A sync handler failed its first attempt: report, then retry or dead-letter.
    #[cold]
    fn after_failure(
        &self,
        listener: &Entry<T>,
        error: CallError,
        payload: &T,
        json: &mut Option<Value>,
    ) {
        // A retry would be a new task holding a copy of the payload: only if the handler has
        // room for one more (see `HandlerOptions::retry_queue`).
        #[cfg(feature = "async")]
        let slot = crate::retry::RetrySlot::reserve(&listener.info);
        #[cfg(feature = "async")]
        let room = slot.is_some();
        #[cfg(not(feature = "async"))]
        let room = true;
        match self
            .ctx
            .fail_with_room(&listener.info, 1, error, payload, json, false, room)
        {
            crate::shared::Next::Done => {}
            #[cfg(feature = "async")]
            Next::Retry(delay) => {
                let listener = listener.clone();
                crate::retry::retry_later(
                    self.ctx.clone(),
                    listener.info.clone(),
                    payload.clone(),
                    1,
                    delay,
                    false,
                    slot.expect("a retry is only scheduled with a reserved slot"),
                    move |payload: &T| listener.call(payload),
                );
            }
        }
    }

    /// Calls one sync listener with a re-dispatched payload, through the failure pipeline.
    fn deliver_to(self: &Arc<Self>, listener: &Entry<T>, payload: T) {
        match listener.call(&payload) {
            Ok(()) => {
                if self.ctx.shared.instrumented {
                    listener.info.record(true, None);
                    self.ctx.counters.add(Stat::Delivered, 1);
                }
            }
            Err(error) => self.after_failure(listener, error, &payload, &mut None),
        }
    }

    /// Reads a payload given as JSON: for a [`Signal`](crate::Signal), `null` or `{}` only.
    fn decode(&self, json: &str) -> Result<T, DispatchError> {
        let event = self.ctx.meta.name;
        if self.payload_less {
            let value: Value = serde_json::from_str(json)
                .map_err(|e| DispatchError::invalid_payload(event, json, &e))?;
            let empty = match &value {
                Value::Null => true,
                Value::Object(fields) => fields.is_empty(),
                _ => false,
            };
            if !empty {
                return Err(DispatchError::UnexpectedPayload { event });
            }
            // `T` is `()` here; `null` is its JSON form.
            serde_json::from_value(Value::Null)
                .map_err(|e| DispatchError::invalid_payload(event, "null", &e))
        } else {
            serde_json::from_str(json).map_err(|e| DispatchError::invalid_payload(event, json, &e))
        }
    }

    /// Whether an emit of this event can fail before delivery (it is written to the store, or
    /// published to JetStream, first): `emit_json` then reports that failure.
    fn confirms(&self) -> bool {
        #[cfg(feature = "store")]
        if crate::store::persists(&self.ctx) {
            return true;
        }
        #[cfg(feature = "nats")]
        if self.ctx.meta.persist && crate::nats::publishes(&self.ctx) {
            return true;
        }
        false
    }

    /// Moves the event to the slow path (shutdown, or async handlers that share one copy).
    fn set_slow(&self) {
        self.listeners.set_slow();
    }
}

/// Where the emit loop's calls report: failures go through the failure pipeline, a `once`
/// listener that fired is removed. No JSON is shared between the failures of one emit here:
/// keeping that cache would cost every emit, failing or not.
impl<T: Payload> crate::snapshot::Sink<T> for EventInner<T> {
    fn report(&self, listener: &Entry<T>, payload: &T, report: crate::snapshot::Report) {
        if let Some(error) = self.listeners.settle(listener, report) {
            self.after_failure(listener, error, payload, &mut None);
        }
    }
}

impl<T: Payload> Detach for EventInner<T> {
    fn detach(&self, id: u64) -> bool {
        self.listeners.remove(id)
    }

    fn is_attached(&self, id: u64) -> bool {
        self.listeners.is_active(id)
    }
}

impl<T: Payload> ErasedEvent for EventInner<T> {
    fn meta(&self) -> &'static EventMeta {
        self.ctx.meta
    }

    fn emit_json(self: Arc<Self>, json: &str) -> Result<(), DispatchError> {
        let event = self.ctx.meta.name;
        let payload = self.decode(json)?;
        if self.ctx.shared.is_closed() {
            return Err(DispatchError::ShutDown { event });
        }
        if self.confirms() {
            // Stored and published first: a store or publish failure is the caller's error,
            // and nothing ran.
            return self
                .emit_tracked(payload)
                .map(drop)
                .map_err(|error| match error {
                    crate::store::PersistError::ShutDown { event } => {
                        DispatchError::ShutDown { event }
                    }
                    error => DispatchError::NotStored {
                        event,
                        message: error.to_string(),
                    },
                });
        }
        Event { inner: self }.emit(payload);
        Ok(())
    }

    #[cfg(feature = "nats")]
    fn remote(self: Arc<Self>, json: &str) -> Result<Redelivery, DispatchError> {
        let payload = self.decode(json)?;
        Ok(Box::new(move || {
            let _ = self.emit_from(payload, Origin::Remote);
        }))
    }

    fn close(&self) {
        self.set_slow();
    }

    #[cfg(feature = "async")]
    fn flush(self: Arc<Self>) {
        self.flush_gate();
        let batches: Vec<_> = self
            .batches
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .iter()
            .filter_map(Weak::upgrade)
            .collect();
        for batch in batches {
            batch.flush();
        }
    }

    #[cfg(feature = "async")]
    fn close_streams(&self) {
        self.streams.close();
    }

    fn stats(&self) -> EventStats {
        let mut stats = EventStats::new(
            self.ctx.meta.name,
            &self.ctx.counters,
            self.listener_count(),
        );
        stats.handlers = self
            .listeners
            .entries()
            .iter()
            .filter(|l| l.is_active())
            .map(|l| HandlerStats {
                label: l.info.label.to_string(),
                delivered: l.info.delivered.load(Ordering::Relaxed),
                failed: l.info.failed.load(Ordering::Relaxed),
                circuit: l.info.breaker.as_ref().map(|b| b.state()),
            })
            .collect();
        stats
    }

    fn prepare_redispatch(
        self: Arc<Self>,
        letter: &DeadLetter,
    ) -> Result<Redelivery, RedispatchError> {
        if self.ctx.shared.is_closed() {
            return Err(RedispatchError::ShutDown);
        }
        let event = self.ctx.meta.name;
        let Some(handler_id) = letter.handler_id else {
            let payload: T = from_json(event, letter.payload.clone())?;
            // Delivered here again, not published again (other processes had their copy).
            return Ok(Box::new(move || {
                let _ = self.emit_from(payload, Origin::Redispatch);
            }));
        };
        // The same id and label; else the one handler with that label (ids restart with the
        // process, labels given in code do not).
        let label = letter.handler.as_deref().unwrap_or_default();
        let entries = self.listeners.entries();
        let listener = entries
            .iter()
            .find(|l| l.is_active() && l.id == handler_id && l.info.label == label)
            .or_else(|| {
                let mut same = entries
                    .iter()
                    .filter(|l| l.is_active() && l.info.label == label);
                match (same.next(), same.next()) {
                    (Some(only), None) => Some(only),
                    _ => None,
                }
            })
            .cloned()
            .ok_or_else(|| RedispatchError::HandlerGone {
                event: event.to_owned(),
                handler: label.to_owned(),
            })?;
        if let Some(hook) = &listener.redispatch {
            return hook(letter.payload.clone());
        }
        let payload: T = from_json(event, letter.payload.clone())?;
        Ok(Box::new(move || self.deliver_to(&listener, payload)))
    }

    #[cfg(feature = "bridge")]
    fn observe(
        self: Arc<Self>,
        label: &'static str,
        observer: crate::bus::JsonObserver,
    ) -> Subscription {
        let options = HandlerOptions::new()
            .label(label)
            .no_retry()
            .no_circuit_breaker();
        Event { inner: self }.on_with(options, move |payload: &T| {
            observer(&|| serde_json::to_string(payload))
        })
    }
}
