//! Buses across processes and machines: the events whose manifest `scope` is `distributed`
//! travel through NATS (feature `nats`). See `docs/nats.md`.
//!
//! - Subjects are `<package>.events.<eventName>`; each message is the event as a CloudEvents
//!   1.0 JSON document (`specversion`, `id`, `source`, `type`, `time`, `datacontenttype`,
//!   `data`, and `sequence` when the emitter's event store numbered it).
//! - A local emit reaches the local handlers once, directly: the copy the broker sends back is
//!   recognised by its `source` (`/<package>/<service>/<instance>`) and skipped.
//! - `persist: true` events go through a JetStream stream: `emit` returns once the stream has
//!   stored the event (`Nats-Msg-Id` = the event id, so a publish retried after a timeout is
//!   stored once); each service reads it through a durable consumer of its own (shared by its
//!   instances), so a service that was down receives what it missed; a delivery is
//!   acknowledged once every handler succeeded, redelivered by the broker after the event's
//!   `retry` backoff when one failed, and dead-lettered after the last attempt. A message whose
//!   deliveries were all used up without an acknowledgement (the processes handling it died)
//!   is dead-lettered too, from the broker's `MAX_DELIVERIES` advisory.
//! - Other distributed events are plain NATS publish/subscribe: every connected process gets
//!   them, at most once; or, for an event named in [`NatsConfig::queue_group`], one instance
//!   of each service.
//!
//! ```no_run
//! use eventbus_runtime::BusCore;
//! use eventbus_runtime::nats::NatsConfig;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
//! # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
//! // A generated bus: `events::EventBus::builder().nats(..).build()?`.
//! let core: BusCore = BusCore::builder(manifest)
//!     .nats("nats://127.0.0.1:4222", NatsConfig::new("installer"))
//!     .build()?;
//! // … subscribe the handlers, then start receiving from the other processes:
//! core.nats().unwrap().start().await?;
//! # Ok(())
//! # }
//! ```

mod config;
mod consume;
mod exhausted;
mod link;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use std::{error, fmt};

use serde::Serialize;
use serde_json::Value;

pub use config::{DeliverFrom, NatsConfig, defaults};
pub(crate) use link::Link;

use crate::builder::{BuildError, BusBuilder, FromCore};
use crate::bus::BusCore;
use crate::handler::{FailureKind, HandlerFailure};
use crate::meta::ManifestMeta;
use crate::shared::{EventConfig, EventCtx};
use crate::store::{EventId, PersistError, Receipt};
use crate::timestamp::Timestamp;

impl<B: FromCore> BusBuilder<B> {
    /// Connects the bus to NATS at `url` (`nats://host:4222`; several servers of a cluster
    /// separated by commas): events whose manifest `scope` is `distributed` are published
    /// there when emitted, and, once [`NatsLink::start`] ran, received from the other
    /// processes. See the [module](crate::nats) and `docs/nats.md`.
    ///
    /// The connection is made in the background, so `build()` does not wait for the broker
    /// (nor fail when it is down); a bad URL or configuration fails `build()` with
    /// [`BuildError::Invalid`].
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::BusCore;
    /// use eventbus_runtime::nats::NatsConfig;
    ///
    /// // A URL that cannot be parsed fails `build()`; an unreachable broker does not.
    /// let err = BusCore::builder(manifest)
    ///     .nats("not a url at all", NatsConfig::new("installer"))
    ///     .build()
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("NATS URL"), "{err}");
    /// ```
    pub fn nats(mut self, url: impl Into<String>, config: NatsConfig) -> Self {
        self.nats = Some((url.into(), config));
        self
    }
}

/// The builder's part: checks the configuration and opens the link.
pub(crate) fn attach(
    manifest: &'static ManifestMeta,
    configs: &[EventConfig],
    url: String,
    config: NatsConfig,
) -> Result<Arc<Link>, BuildError> {
    let invalid = |message: String| BuildError::Invalid {
        event: None,
        message,
    };
    config.check().map_err(invalid)?;
    for name in &config.queue_groups {
        match manifest.events.iter().find(|e| e.name == name.as_str()) {
            Some(meta) if meta.scope.is_distributed() && !meta.persist => {}
            Some(meta) if meta.scope.is_distributed() => {
                return Err(invalid(format!(
                    "NatsConfig::queue_group(\"{name}\"): `{name}` is `persist: true`; its \
                     service's instances already share it through their durable consumer, \
                     remove the call"
                )));
            }
            Some(_) => {
                return Err(invalid(format!(
                    "NatsConfig::queue_group(\"{name}\"): `{name}` is a local event; give it \
                     `scope: distributed` in the manifest or remove the call"
                )));
            }
            None => {
                return Err(invalid(format!(
                    "NatsConfig::queue_group(\"{name}\"): the manifest has no event `{name}`"
                )));
            }
        }
    }
    let routes = manifest
        .events
        .iter()
        .zip(configs)
        .filter(|(meta, _)| meta.scope.is_distributed())
        .map(|(meta, event)| link::Route {
            name: meta.name,
            subject: format!("{}.events.{}", manifest.package, meta.name).into(),
            kind: format!("{}.{}", manifest.package, meta.name),
            persist: meta.persist,
            retry: event.retry,
            // `build` already refused a queue group on a persisted event.
            queue_group: config.queue_groups.iter().any(|g| g == meta.name),
        })
        .collect();
    Link::open(manifest, routes, &url, config)
        .map(Arc::new)
        .map_err(invalid)
}

/// Whether emits of this event are published (and so take the slow path).
pub(crate) fn publishes(ctx: &EventCtx) -> bool {
    ctx.meta.scope.is_distributed() && ctx.shared.nats.is_some()
}

/// Publishes a local emit of a distributed event, before its local delivery. A persisted
/// event waits for the stream's acknowledgement and fails the emit without it; any other is
/// handed to the connection, and a failure to do so is reported (it is still delivered here).
pub(crate) fn publish<T: Serialize>(
    ctx: &EventCtx,
    payload: &T,
    receipt: Receipt,
) -> Result<Receipt, PersistError> {
    let Some(link) = ctx.shared.nats.as_ref() else {
        return Ok(receipt);
    };
    let Some(route) = link.route(ctx.meta.name) else {
        return Ok(receipt);
    };
    let event = ctx.meta.name;
    let id = receipt.id().unwrap_or_else(EventId::new_v4);
    let report = |message: String| {
        let failure = HandlerFailure::other(
            event,
            None,
            FailureKind::NotPublished,
            message,
            0,
            serde_json::to_value(payload).unwrap_or(Value::Null),
        );
        ctx.shared.failures.report(&failure);
    };
    let data = match ctx.meta.payload {
        None => None,
        Some(_) => match serde_json::to_string(payload) {
            Ok(json) => Some(json),
            Err(error) if route.persist => {
                return Err(PersistError::Payload {
                    event,
                    message: error.to_string(),
                });
            }
            Err(error) => {
                report(format!("not published: the payload is not JSON: {error}"));
                return Ok(receipt);
            }
        },
    };
    let id_text = id.to_string();
    let body = crate::cloudevents::write(
        &crate::cloudevents::Envelope {
            id: &id_text,
            source: &link.source,
            kind: &route.kind,
            time: Timestamp::now(),
        },
        receipt.sequence(),
        data.as_deref(),
    );
    if route.persist {
        match link.send_confirmed(route, id, body) {
            Ok(sequence) => Ok(receipt.published(id, sequence)),
            Err(message) => {
                report(format!("{message}; it was not dispatched"));
                Err(PersistError::NotPublished { event, id, message })
            }
        }
    } else {
        if let Err(message) = link.send(route, id, body) {
            report(format!(
                "not published: {message}; it was delivered in this process only"
            ));
        }
        Ok(receipt)
    }
}

/// Why [`NatsLink::start`] or [`NatsLink::flush`] failed.
///
/// ```no_run
/// use eventbus_runtime::BusCore;
/// use eventbus_runtime::nats::{NatsConfig, NatsError};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
/// let core: BusCore = BusCore::builder(manifest)
///     .nats("nats://127.0.0.1:4222", NatsConfig::new("installer"))
///     .build()
///     .unwrap();
/// let link = core.nats().unwrap();
/// loop {
///     match link.start().await {
///         Ok(()) => break,
///         // The broker is not up yet: the link keeps connecting, try again.
///         Err(NatsError::Unavailable(why)) => eprintln!("waiting for NATS: {why}"),
///         Err(other) => panic!("cannot use NATS: {other}"),
///     }
/// }
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum NatsError {
    /// The broker did not answer within the connect timeout
    /// ([`NatsConfig::connect_timeout`]); the link keeps trying in the background.
    Unavailable(String),
    /// The stream or a consumer could not be set up (JetStream disabled, a conflicting stream,
    /// a refused consumer update): retrying will not help until that is fixed.
    Setup(String),
    /// Work was still pending when the timeout passed.
    TimedOut(String),
    /// The bus is shut down.
    ShutDown,
}

impl fmt::Display for NatsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NatsError::Unavailable(message) => write!(f, "NATS is unavailable: {message}"),
            NatsError::Setup(message) => write!(f, "NATS setup failed: {message}"),
            NatsError::TimedOut(message) => write!(f, "NATS: {message}"),
            NatsError::ShutDown => write!(f, "the bus is shut down"),
        }
    }
}

impl error::Error for NatsError {}

/// Counters of a bus's NATS link, from [`NatsLink::stats`].
///
/// ```no_run
/// use eventbus_runtime::BusCore;
/// use eventbus_runtime::nats::NatsConfig;
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// # let base = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
/// # let events = Box::leak(Box::new([eventbus_runtime::EventMeta { scope: eventbus_runtime::Scope::Distributed, ..base.events[0] }]));
/// # let manifest: &'static eventbus_runtime::ManifestMeta = Box::leak(Box::new(eventbus_runtime::ManifestMeta { events, ..*base }));
/// // `ping` is `scope: distributed`.
/// let core: BusCore = BusCore::builder(manifest)
///     .nats("nats://127.0.0.1:4222", NatsConfig::new("installer"))
///     .build()?;
/// let link = core.nats().unwrap();
/// link.start().await?;
/// core.emit_json("ping", "1")?;
/// link.flush(Duration::from_secs(5)).await?;
///
/// let stats = link.stats();
/// assert!(stats.connected);
/// assert_eq!((stats.published, stats.publish_failed, stats.pending), (1, 0, 0));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct NatsStats {
    /// Whether the connection is up now.
    pub connected: bool,
    /// How many times the connection was re-established after it was lost (a broker restart,
    /// a failover to another server of the cluster).
    pub reconnects: u64,
    /// Events published: handed to the connection (plain), or acknowledged by the stream
    /// (persisted).
    pub published: u64,
    /// JetStream publishes sent again after a timeout or an error (same id).
    pub publish_retries: u64,
    /// Acknowledgements saying the stream already had the event (a retried publish that had
    /// arrived the first time): stored once.
    pub duplicates: u64,
    /// Publishes given up on (each was reported as `FailureKind::NotPublished`).
    pub publish_failed: u64,
    /// Messages received from NATS.
    pub received: u64,
    /// Received messages this bus had emitted itself (or, from JetStream, another instance of
    /// its service had): not delivered again.
    pub skipped_own: u64,
    /// Received events delivered to this bus's handlers.
    pub delivered: u64,
    /// JetStream deliveries acknowledged (every handler succeeded, or the event went to the
    /// dead-letter queue).
    pub acked: u64,
    /// JetStream deliveries nak'ed so the broker redelivers them after the retry backoff.
    pub redelivery_requested: u64,
    /// JetStream deliveries terminated: malformed, or dead-lettered after the last attempt.
    pub terminated: u64,
    /// Received messages refused as malformed (each was reported as
    /// `FailureKind::Malformed`).
    pub malformed: u64,
    /// Acknowledgements that could not be sent (the broker redelivers those events).
    pub ack_failed: u64,
    /// Events the broker stopped delivering to this service because their deliveries were used
    /// up without an acknowledgement (its `MAX_DELIVERIES` advisory), put in this bus's
    /// dead-letter queue (each was reported as `FailureKind::DeliveriesExhausted`).
    pub exhausted: u64,
    /// Publishes and deliveries not yet settled with the broker.
    pub pending: u64,
}

/// The NATS side of a bus built with [`BusBuilder::nats`], from [`BusCore::nats`]: starts
/// receiving, waits for publishes, counts. Cloning is cheap.
///
/// ```no_run
/// use eventbus_runtime::BusCore;
/// use eventbus_runtime::nats::NatsConfig;
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
/// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
/// let core: BusCore = BusCore::builder(manifest)
///     .nats("nats://127.0.0.1:4222", NatsConfig::new("installer").instance("installer-0"))
///     .build()?;
/// let link = core.nats().unwrap();
/// assert_eq!(link.source(), "/demo/installer/installer-0");
/// link.start().await?; // once the handlers are subscribed
/// // … emit …
/// link.flush(Duration::from_secs(5)).await?; // everything published
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct NatsLink {
    core: BusCore,
    link: Arc<Link>,
}

impl fmt::Debug for NatsLink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsLink")
            .field("source", &self.link.source)
            .field("stream", &self.link.stream)
            .field("stats", &self.stats())
            .finish()
    }
}

impl BusCore {
    /// The bus's NATS link, if it was built with [`BusBuilder::nats`].
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::BusCore;
    ///
    /// let core = BusCore::new(manifest); // built without `.nats(..)`
    /// assert!(core.nats().is_none());
    /// ```
    pub fn nats(&self) -> Option<NatsLink> {
        self.shared().nats.clone().map(|link| NatsLink {
            core: self.clone(),
            link,
        })
    }
}

impl NatsLink {
    /// Starts receiving the distributed events of this bus from the other processes: waits
    /// for the connection and the stream (at most [`NatsConfig::connect_timeout`]), creates or
    /// resumes this service's durable consumer of each `persist: true` distributed event, and
    /// subscribes to the others. Call it once the handlers are subscribed (what a durable
    /// consumer delivers before that would reach no handler); calling it again does nothing.
    ///
    /// Publishing does not need it: emits are published from `build()` on.
    ///
    /// ```no_run
    /// use eventbus_runtime::{BusCore, Event};
    /// use eventbus_runtime::nats::NatsConfig;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    /// # let base = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// # let events = Box::leak(Box::new([eventbus_runtime::EventMeta { scope: eventbus_runtime::Scope::Distributed, ..base.events[0] }]));
    /// # let manifest: &'static eventbus_runtime::ManifestMeta = Box::leak(Box::new(eventbus_runtime::ManifestMeta { events, ..*base }));
    /// let core: BusCore = BusCore::builder(manifest)
    ///     .nats("nats://127.0.0.1:4222", NatsConfig::new("installer"))
    ///     .build()?;
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// ping.on(|n| println!("ping {n} from this or another process"));
    /// // Handlers first, then start receiving.
    /// core.nats().unwrap().start().await?;
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`NatsError::Unavailable`] when the broker did not answer in time (call it again later),
    /// [`NatsError::Setup`] when the stream or a consumer was refused,
    /// [`NatsError::ShutDown`] after shutdown.
    pub async fn start(&self) -> Result<(), NatsError> {
        if self.core.is_shut_down() {
            return Err(NatsError::ShutDown);
        }
        consume::start(&self.core, &self.link).await
    }

    /// Waits until every event emitted so far is published (acknowledged by the stream, for
    /// persisted ones) and every delivery received so far is settled with the broker, at most
    /// `timeout`.
    ///
    /// ```no_run
    /// use eventbus_runtime::BusCore;
    /// use eventbus_runtime::nats::NatsConfig;
    /// use std::time::Duration;
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), Box<dyn std::error::Error + Send + Sync>> {
    /// # let base = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// # let events = Box::leak(Box::new([eventbus_runtime::EventMeta { scope: eventbus_runtime::Scope::Distributed, ..base.events[0] }]));
    /// # let manifest: &'static eventbus_runtime::ManifestMeta = Box::leak(Box::new(eventbus_runtime::ManifestMeta { events, ..*base }));
    /// let core: BusCore = BusCore::builder(manifest)
    ///     .nats("nats://127.0.0.1:4222", NatsConfig::new("installer"))
    ///     .build()?;
    /// core.emit_json("ping", "1")?;
    /// // Before exiting: make sure the event left the process.
    /// core.nats().unwrap().flush(Duration::from_secs(5)).await?;
    /// assert_eq!(core.nats().unwrap().stats().published, 1);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    ///
    /// [`NatsError::TimedOut`] when work was still pending at the timeout.
    pub async fn flush(&self, timeout: Duration) -> Result<(), NatsError> {
        if !self.link.settled(timeout).await {
            return Err(NatsError::TimedOut(format!(
                "{} publishes or deliveries still pending after {timeout:?}",
                self.link.owed.count()
            )));
        }
        let client = self.link.client.clone();
        let flushed = self
            .link
            .handle
            .spawn(async move { tokio::time::timeout(timeout, client.flush()).await });
        match flushed.await {
            Ok(Ok(Ok(()))) => Ok(()),
            _ => Err(NatsError::TimedOut(format!(
                "the connection did not flush within {timeout:?}"
            ))),
        }
    }

    /// A snapshot of the link's counters.
    pub fn stats(&self) -> NatsStats {
        self.link.stats()
    }

    /// This bus's CloudEvents `source`: `/<package>/<service>/<instance>`.
    ///
    /// ```no_run
    /// use eventbus_runtime::BusCore;
    /// use eventbus_runtime::nats::NatsConfig;
    ///
    /// # let base = eventbus_runtime::__doc::manifest(&[("ping", Some("u32")), ("note", Some("String"))]);
    /// # let events = Box::leak(Box::new([eventbus_runtime::EventMeta { scope: eventbus_runtime::Scope::Distributed, persist: true, ..base.events[0] }, eventbus_runtime::EventMeta { ..base.events[1] }]));
    /// # let manifest: &'static eventbus_runtime::ManifestMeta = Box::leak(Box::new(eventbus_runtime::ManifestMeta { events, ..*base }));
    /// // `ping` is `scope: distributed` and `persist: true`; `note` is local.
    /// let config = NatsConfig::new("installer").instance("installer-0");
    /// let core: BusCore = BusCore::builder(manifest).nats("nats://127.0.0.1:4222", config).build().unwrap();
    /// let link = core.nats().unwrap();
    /// assert_eq!(link.source(), "/demo/installer/installer-0");
    /// assert_eq!(link.stream_name(), "demo-events");
    /// assert_eq!(link.subject("ping"), Some("demo.events.ping"));
    /// assert_eq!(link.consumer_name("ping").as_deref(), Some("installer_ping"));
    /// assert_eq!((link.subject("note"), link.consumer_name("note")), (None, None));
    /// ```
    pub fn source(&self) -> &str {
        &self.link.source
    }

    /// The JetStream stream of the persisted distributed events.
    pub fn stream_name(&self) -> &str {
        &self.link.stream
    }

    /// The NATS subject of a distributed event (`"dappnode.events.packageInstall"`), `None`
    /// for a local or unknown one.
    pub fn subject(&self, event: &str) -> Option<&str> {
        self.link.route(event).map(|r| &*r.subject)
    }

    /// The name of this service's durable consumer of a persisted distributed event
    /// (`<service>_<eventName>`), `None` for other events.
    pub fn consumer_name(&self, event: &str) -> Option<String> {
        self.link
            .route(event)
            .filter(|r| r.persist)
            .map(|r| consume::consumer_name(&self.link, r))
    }
}

/// What a JetStream delivery's outcome tells the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// Every handler succeeded (or the event is in the dead-letter queue after a failure
    /// that is not retried): acknowledge.
    Ack,
    /// A handler failed and will be retried: redeliver after this delay.
    Nak(Duration),
    /// Dead-lettered on the last attempt, or malformed: never redeliver.
    Term,
    /// Not handled here (the bus is shutting down): redeliver now, maybe elsewhere.
    Release,
}

/// A JetStream delivery in progress (held by its `store::track::Delivery`): which attempt it
/// is, and where its outcome goes.
pub(crate) struct RemoteDelivery {
    /// The broker's delivery count, from 1.
    pub(crate) attempt: u32,
    /// Whether no retry follows a failure (the event's `retry.attempts` are used up).
    pub(crate) last: bool,
    /// The backoff before the redelivery, when a handler fails.
    pub(crate) delay: Duration,
    retry: AtomicBool,
    outcome: Mutex<Option<tokio::sync::oneshot::Sender<Outcome>>>,
}

impl RemoteDelivery {
    pub(crate) fn new(
        attempt: u32,
        last: bool,
        delay: Duration,
        outcome: tokio::sync::oneshot::Sender<Outcome>,
    ) -> Self {
        RemoteDelivery {
            attempt,
            last,
            delay,
            retry: AtomicBool::new(false),
            outcome: Mutex::new(Some(outcome)),
        }
    }

    /// A handler failed and the broker should redeliver.
    pub(crate) fn retry(&self) {
        self.retry.store(true, Ordering::Release);
    }

    /// Every holder let go: tells the broker.
    pub(crate) fn finish(&self, dead_lettered: bool) {
        let outcome = if self.retry.load(Ordering::Acquire) {
            Outcome::Nak(self.delay)
        } else if dead_lettered {
            Outcome::Term
        } else {
            Outcome::Ack
        };
        if let Some(sender) = self
            .outcome
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = sender.send(outcome);
        }
    }
}
