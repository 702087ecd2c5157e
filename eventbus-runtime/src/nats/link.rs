//! The link of one bus to NATS: a connection driven by a runtime on a thread of its own, the
//! JetStream stream, and the publishing side (an outbox drained in emit order).

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::{self, message::PublishMessage};
use bytes::Bytes;
use tokio::sync::{mpsc, watch};

use super::config::{Auth, DeliverFrom, NatsConfig};
use super::{NatsError, NatsStats};
use crate::meta::{ManifestMeta, Retry};
use crate::store::EventId;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Counters behind [`NatsStats`].
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) published: AtomicU64,
    pub(crate) publish_retries: AtomicU64,
    pub(crate) duplicates: AtomicU64,
    pub(crate) publish_failed: AtomicU64,
    pub(crate) received: AtomicU64,
    pub(crate) skipped_own: AtomicU64,
    pub(crate) delivered: AtomicU64,
    pub(crate) acked: AtomicU64,
    pub(crate) redelivery_requested: AtomicU64,
    pub(crate) terminated: AtomicU64,
    pub(crate) malformed: AtomicU64,
    pub(crate) ack_failed: AtomicU64,
    pub(crate) exhausted: AtomicU64,
}

pub(crate) fn add(counter: &AtomicU64) {
    counter.fetch_add(1, Ordering::Relaxed);
}

/// Work the link still owes: publishes waiting for their acknowledgement, deliveries waiting
/// to be settled with the broker. [`Link::settled`] waits for it to reach zero.
#[derive(Default)]
pub(crate) struct Owed {
    count: Mutex<u64>,
    zero: Condvar,
    notify: tokio::sync::Notify,
}

impl Owed {
    pub(crate) fn take(self: &Arc<Self>) -> OwedToken {
        *lock(&self.count) += 1;
        OwedToken(self.clone())
    }

    pub(crate) fn count(&self) -> u64 {
        *lock(&self.count)
    }

    async fn zero(&self) {
        loop {
            let notified = self.notify.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            if self.count() == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// One unit of owed work; dropping it pays it.
pub(crate) struct OwedToken(Arc<Owed>);

impl Drop for OwedToken {
    fn drop(&mut self) {
        let mut count = lock(&self.0.count);
        *count -= 1;
        if *count == 0 {
            self.0.zero.notify_all();
            self.0.notify.notify_waiters();
        }
    }
}

/// Where a persisted emit waits for the stream's acknowledgement.
pub(crate) struct Slot {
    result: Mutex<Option<Result<u64, String>>>,
    ready: Condvar,
}

impl Slot {
    fn new() -> Arc<Slot> {
        Arc::new(Slot {
            result: Mutex::new(None),
            ready: Condvar::new(),
        })
    }

    fn fill(&self, result: Result<u64, String>) {
        let mut slot = lock(&self.result);
        if slot.is_none() {
            *slot = Some(result);
        }
        self.ready.notify_all();
    }

    fn wait(&self, timeout: Duration) -> Result<u64, String> {
        let deadline = Instant::now() + timeout;
        let mut result = lock(&self.result);
        loop {
            if let Some(result) = result.take() {
                return result;
            }
            let now = Instant::now();
            if now >= deadline {
                return Err("the NATS link did not answer in time".into());
            }
            result = self
                .ready
                .wait_timeout(result, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }
}

/// An event on its way to the connection.
struct Outgoing {
    subject: Arc<str>,
    id: EventId,
    body: Bytes,
    /// For a JetStream publish: where its emitter waits.
    confirm: Option<(Arc<Slot>, Instant)>,
    _owed: OwedToken,
}

/// One manifest event as the link sees it.
pub(crate) struct Route {
    pub(crate) name: &'static str,
    /// `<package>.events.<eventName>`.
    pub(crate) subject: Arc<str>,
    /// The CloudEvents `type`: `<package>.<eventName>`.
    pub(crate) kind: String,
    pub(crate) persist: bool,
    pub(crate) retry: Option<Retry>,
    /// A plain event this service's instances share through a queue group.
    pub(crate) queue_group: bool,
}

/// Whether the stream is set up: `None` while trying, then the outcome.
type Readiness = Option<Result<(), String>>;

/// The link of one bus: shared by the bus (publishing) and its consumers.
pub(crate) struct Link {
    pub(crate) manifest: &'static ManifestMeta,
    pub(crate) config: NatsConfig,
    pub(crate) stream: String,
    /// `/<package>/<service>/<instance>`.
    pub(crate) source: String,
    /// The distributed events of the manifest.
    pub(crate) routes: Vec<Route>,
    pub(crate) handle: tokio::runtime::Handle,
    pub(crate) client: async_nats::Client,
    pub(crate) jetstream: jetstream::Context,
    outbox: mpsc::Sender<Outgoing>,
    pub(crate) counters: Arc<Counters>,
    pub(crate) owed: Arc<Owed>,
    pub(crate) ready: watch::Receiver<Readiness>,
    /// Why the last setup attempt could not reach JetStream, while it keeps trying.
    waiting_for: Arc<Mutex<String>>,
    /// Tells the consumers to stop taking messages.
    pub(crate) stop: watch::Sender<bool>,
    pub(crate) started: tokio::sync::Mutex<bool>,
    /// Deliveries received and not yet handed to the bus.
    pub(crate) queued: Arc<AtomicU64>,
    pub(crate) consumers_done: Arc<tokio::sync::Notify>,
    pub(crate) consuming: Arc<AtomicU64>,
    closed: AtomicBool,
    /// Ends the link's thread when dropped (with the link).
    _exit: tokio::sync::oneshot::Sender<()>,
}

impl Link {
    /// Starts the link's thread and connection (in the background: an unreachable broker is
    /// retried, and `start` reports it).
    pub(crate) fn open(
        manifest: &'static ManifestMeta,
        routes: Vec<Route>,
        url: &str,
        config: NatsConfig,
    ) -> Result<Link, String> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| format!("cannot start the NATS runtime: {e}"))?;
        let handle = runtime.handle().clone();
        let (exit, exited) = tokio::sync::oneshot::channel::<()>();
        std::thread::Builder::new()
            .name("eventbus-nats".into())
            .spawn(move || {
                runtime.block_on(async {
                    let _ = exited.await;
                });
            })
            .map_err(|e| format!("cannot start the NATS thread: {e}"))?;

        let instance = config.instance.clone().unwrap_or_else(|| {
            let id = EventId::new_v4().to_string();
            id[..8].to_owned() + &id[9..13]
        });
        let source = format!("/{}/{}/{instance}", manifest.package, config.service);
        let stream = config
            .stream
            .clone()
            .unwrap_or_else(|| format!("{}-events", manifest.package));
        let mut options = async_nats::ConnectOptions::new()
            .name(format!("eventbus {source}"))
            .retry_on_initial_connect()
            .max_reconnects(None)
            .require_tls(config.require_tls);
        options = match &config.auth {
            Auth::None => options,
            Auth::Token(token) => options.token(token.clone()),
            Auth::UserPassword(user, password) => {
                options.user_and_password(user.clone(), password.clone())
            }
        };
        for path in &config.root_certificates {
            options = options.add_root_certificates(path.clone());
        }
        let addresses: Vec<String> = url
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
            .map(str::to_owned)
            .collect();
        if addresses.is_empty() {
            return Err("the NATS URL is empty".into());
        }
        let publish_timeout = config.publish_timeout;
        let (sender, receiver) = std::sync::mpsc::channel();
        handle.spawn(async move {
            let connected = options.connect(addresses).await.map(|client| {
                let jetstream = jetstream::ContextBuilder::new()
                    .timeout(publish_timeout)
                    .backpressure_on_inflight(true)
                    .build(client.clone());
                (client, jetstream)
            });
            let _ = sender.send(connected);
        });
        let (client, jetstream) = sender_result(receiver.recv())?;

        let (outbox, outgoing) = mpsc::channel(config.outbox);
        let (ready_tx, ready) = watch::channel(None);
        let counters = Arc::new(Counters::default());
        let link = Link {
            manifest,
            config,
            stream,
            source,
            routes,
            handle: handle.clone(),
            client,
            jetstream,
            outbox,
            counters,
            owed: Arc::new(Owed::default()),
            ready,
            waiting_for: Arc::new(Mutex::new(String::new())),
            stop: watch::channel(false).0,
            started: tokio::sync::Mutex::new(false),
            queued: Arc::new(AtomicU64::new(0)),
            consumers_done: Arc::new(tokio::sync::Notify::new()),
            consuming: Arc::new(AtomicU64::new(0)),
            closed: AtomicBool::new(false),
            _exit: exit,
        };
        handle.spawn(set_up(
            link.stream_plan(),
            ready_tx,
            link.waiting_for.clone(),
        ));
        handle.spawn(drain_outbox(
            outgoing,
            link.client.clone(),
            link.jetstream.clone(),
            link.ready.clone(),
            link.counters.clone(),
            link.config.publish_timeout,
        ));
        Ok(link)
    }

    /// The route of event `name`, if it is distributed.
    pub(crate) fn route(&self, name: &str) -> Option<&Route> {
        self.routes.iter().find(|r| r.name == name)
    }

    /// Hands a core NATS publish to the connection without waiting.
    pub(crate) fn send(&self, route: &Route, id: EventId, body: String) -> Result<(), String> {
        self.enqueue(route, id, body, None)
    }

    /// Publishes to the JetStream stream and waits for its acknowledgement (retried with the
    /// same id until the publish deadline): the stream sequence, or why not.
    pub(crate) fn send_confirmed(
        &self,
        route: &Route,
        id: EventId,
        body: String,
    ) -> Result<u64, String> {
        let deadline = self.config.publish_deadline;
        let slot = Slot::new();
        self.enqueue(
            route,
            id,
            body,
            Some((slot.clone(), Instant::now() + deadline)),
        )?;
        // The drain answers by the deadline; the margin covers the last attempt's timeout.
        slot.wait(deadline + self.config.publish_timeout + Duration::from_secs(5))
    }

    fn enqueue(
        &self,
        route: &Route,
        id: EventId,
        body: String,
        confirm: Option<(Arc<Slot>, Instant)>,
    ) -> Result<(), String> {
        if self.closed.load(Ordering::Acquire) {
            add(&self.counters.publish_failed);
            return Err("the NATS link is closed".into());
        }
        let outgoing = Outgoing {
            subject: route.subject.clone(),
            id,
            body: Bytes::from(body),
            confirm,
            _owed: self.owed.take(),
        };
        self.outbox.try_send(outgoing).map_err(|error| {
            add(&self.counters.publish_failed);
            match error {
                mpsc::error::TrySendError::Full(_) => format!(
                    "the NATS outbox is full ({} events waiting for the connection)",
                    self.config.outbox
                ),
                mpsc::error::TrySendError::Closed(_) => "the NATS link is closed".into(),
            }
        })
    }

    /// Waits until the stream is set up, for at most the connect timeout.
    /// The wait runs on the link's runtime, so any executor may await it.
    pub(crate) async fn wait_ready(&self) -> Result<(), NatsError> {
        let mut ready = self.ready.clone();
        let timeout = self.config.connect_timeout;
        let waited = self.handle.spawn(async move {
            tokio::time::timeout(timeout, async {
                loop {
                    if let Some(outcome) = ready.borrow_and_update().clone() {
                        return outcome;
                    }
                    if ready.changed().await.is_err() {
                        return Err("the NATS link stopped".to_owned());
                    }
                }
            })
            .await
        });
        match waited.await {
            Ok(Ok(Ok(()))) => Ok(()),
            Ok(Ok(Err(message))) => Err(NatsError::Setup(message)),
            Err(_) => Err(NatsError::Setup("the NATS runtime stopped".into())),
            Ok(Err(_)) => {
                let connected = matches!(
                    self.client.connection_state(),
                    async_nats::connection::State::Connected
                );
                let why = lock(&self.waiting_for).clone();
                Err(NatsError::Unavailable(format!(
                    "no answer within {:?} ({}{}{why})",
                    self.config.connect_timeout,
                    if connected {
                        "connected"
                    } else {
                        "not connected"
                    },
                    if why.is_empty() { "" } else { "; " },
                )))
            }
        }
    }

    /// What the stream's setup needs.
    fn stream_plan(&self) -> StreamPlan {
        StreamPlan {
            jetstream: self.jetstream.clone(),
            name: self.stream.clone(),
            subjects: self
                .routes
                .iter()
                .filter(|r| r.persist)
                .map(|r| r.subject.to_string())
                .collect(),
            replicas: self.config.replicas,
            max_age: self.config.max_age,
            duplicate_window: self.config.duplicate_window,
            package: self.manifest.package,
        }
    }

    /// The counters.
    pub(crate) fn stats(&self) -> NatsStats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        NatsStats {
            connected: matches!(
                self.client.connection_state(),
                async_nats::connection::State::Connected
            ),
            // The client counts its first connection too.
            reconnects: self
                .client
                .statistics()
                .connects
                .load(Ordering::Relaxed)
                .saturating_sub(1),
            published: get(&c.published),
            publish_retries: get(&c.publish_retries),
            duplicates: get(&c.duplicates),
            publish_failed: get(&c.publish_failed),
            received: get(&c.received),
            skipped_own: get(&c.skipped_own),
            delivered: get(&c.delivered),
            acked: get(&c.acked),
            redelivery_requested: get(&c.redelivery_requested),
            terminated: get(&c.terminated),
            malformed: get(&c.malformed),
            ack_failed: get(&c.ack_failed),
            exhausted: get(&c.exhausted),
            pending: self.owed.count(),
        }
    }

    /// Waits until nothing is owed (publishes acknowledged, deliveries settled), at most
    /// `timeout`: `false` if it passed.
    pub(crate) async fn settled(&self, timeout: Duration) -> bool {
        let owed = self.owed.clone();
        let wait = self
            .handle
            .spawn(async move { tokio::time::timeout(timeout, owed.zero()).await.is_ok() });
        wait.await.unwrap_or(false)
    }

    /// Stops publishing: later emits of distributed events fail.
    pub(crate) fn close(&self) {
        self.closed.store(true, Ordering::Release);
    }

    /// The consumer settings of a route.
    pub(crate) fn deliver_policy(&self) -> jetstream::consumer::DeliverPolicy {
        match self.config.deliver_from {
            DeliverFrom::New => jetstream::consumer::DeliverPolicy::New,
            DeliverFrom::All => jetstream::consumer::DeliverPolicy::All,
        }
    }
}

fn sender_result(
    received: Result<
        Result<(async_nats::Client, jetstream::Context), async_nats::ConnectError>,
        std::sync::mpsc::RecvError,
    >,
) -> Result<(async_nats::Client, jetstream::Context), String> {
    match received {
        Ok(Ok(connected)) => Ok(connected),
        Ok(Err(error)) => Err(format!("cannot use the NATS URL: {error}")),
        Err(_) => Err("the NATS thread stopped".into()),
    }
}

/// What the stream must look like.
struct StreamPlan {
    jetstream: jetstream::Context,
    name: String,
    subjects: Vec<String>,
    replicas: usize,
    max_age: Option<Duration>,
    duplicate_window: Duration,
    package: &'static str,
}

/// A setup attempt's failure: worth retrying (no connection, a timeout) or not.
enum SetupError {
    Transient(String),
    Permanent(String),
}

impl StreamPlan {
    /// Creates the stream with this bus's persisted distributed subjects or, when it exists,
    /// adds the subjects it lacks (its other settings are the operator's).
    async fn apply(&self) -> Result<(), SetupError> {
        use jetstream::ErrorCode;
        use jetstream::context::{CreateStreamErrorKind, GetStreamErrorKind};
        let name = &self.name;
        if self.subjects.is_empty() {
            return Ok(());
        }
        let transient = |what: String| SetupError::Transient(what);
        match self.jetstream.get_stream(name).await {
            Ok(mut stream) => {
                let info = stream
                    .info()
                    .await
                    .map_err(|e| transient(format!("cannot read stream `{name}`: {e}")))?;
                let mut config = info.config.clone();
                let missing: Vec<String> = self
                    .subjects
                    .iter()
                    .filter(|s| !config.subjects.contains(s))
                    .cloned()
                    .collect();
                if missing.is_empty() {
                    return Ok(());
                }
                config.subjects.extend(missing);
                self.jetstream
                    .update_stream(config)
                    .await
                    .map(drop)
                    .map_err(|e| {
                        SetupError::Permanent(format!(
                            "cannot add the subjects of this bus to stream `{name}`: {e}"
                        ))
                    })
            }
            Err(error) => match error.kind() {
                GetStreamErrorKind::JetStream(e)
                    if e.error_code() == ErrorCode::STREAM_NOT_FOUND =>
                {
                    let config = jetstream::stream::Config {
                        name: name.clone(),
                        description: Some(format!(
                            "eventbus: persisted distributed events of `{}`",
                            self.package
                        )),
                        subjects: self.subjects.clone(),
                        retention: jetstream::stream::RetentionPolicy::Limits,
                        storage: jetstream::stream::StorageType::File,
                        num_replicas: self.replicas,
                        max_age: self.max_age.unwrap_or_default(),
                        duplicate_window: self.duplicate_window,
                        ..Default::default()
                    };
                    match self.jetstream.create_stream(config).await {
                        Ok(_) => Ok(()),
                        Err(e) => match e.kind() {
                            CreateStreamErrorKind::TimedOut
                            | CreateStreamErrorKind::JetStreamUnavailable
                            | CreateStreamErrorKind::Response => {
                                Err(transient(format!("cannot create stream `{name}`: {e}")))
                            }
                            _ => Err(SetupError::Permanent(format!(
                                "cannot create stream `{name}`: {e}"
                            ))),
                        },
                    }
                }
                GetStreamErrorKind::Request => {
                    Err(transient(format!("cannot reach JetStream: {error}")))
                }
                _ => Err(SetupError::Permanent(format!(
                    "cannot read stream `{name}`: {error}"
                ))),
            },
        }
    }
}

/// Sets the stream up, retrying while the broker cannot be reached; publishes the outcome.
async fn set_up(
    plan: StreamPlan,
    ready: watch::Sender<Readiness>,
    waiting_for: Arc<Mutex<String>>,
) {
    let mut pause = Duration::from_millis(100);
    loop {
        match plan.apply().await {
            Ok(()) => {
                let _ = ready.send(Some(Ok(())));
                return;
            }
            Err(SetupError::Permanent(message)) => {
                let _ = ready.send(Some(Err(message)));
                return;
            }
            Err(SetupError::Transient(why)) => {
                *lock(&waiting_for) = why;
                if ready.is_closed() {
                    return;
                }
                tokio::time::sleep(pause).await;
                pause = (pause * 2).min(Duration::from_secs(2));
            }
        }
    }
}

/// Drains the outbox in emit order: core publishes are handed to the connection, JetStream
/// publishes are sent and their acknowledgements awaited (retried with the same
/// `Nats-Msg-Id` until the deadline) on tasks of their own, so they pipeline.
async fn drain_outbox(
    mut outgoing: mpsc::Receiver<Outgoing>,
    client: async_nats::Client,
    jetstream: jetstream::Context,
    mut ready: watch::Receiver<Readiness>,
    counters: Arc<Counters>,
    publish_timeout: Duration,
) {
    while let Some(out) = outgoing.recv().await {
        let Some((slot, deadline)) = out.confirm.clone() else {
            // Plain pub/sub: no headers (nothing deduplicates them); the body says it all.
            match client
                .publish(out.subject.to_string(), out.body.clone())
                .await
            {
                Ok(()) => add(&counters.published),
                Err(_) => add(&counters.publish_failed),
            }
            continue;
        };
        // JetStream needs the stream first.
        let readiness = tokio::time::timeout_at(deadline.into(), async {
            loop {
                if let Some(outcome) = ready.borrow_and_update().clone() {
                    return outcome;
                }
                if ready.changed().await.is_err() {
                    return Err("the NATS link stopped".to_owned());
                }
            }
        })
        .await;
        match readiness {
            Ok(Ok(())) => {}
            Ok(Err(message)) => {
                add(&counters.publish_failed);
                slot.fill(Err(message));
                continue;
            }
            Err(_) => {
                add(&counters.publish_failed);
                slot.fill(Err("the JetStream stream was not set up in time".into()));
                continue;
            }
        }
        let mut headers = HeaderMap::new();
        headers.insert("Content-Type", "application/cloudevents+json");
        let id = out.id.to_string();
        let body = out.body.clone();
        let publish = move |headers: HeaderMap| {
            PublishMessage::build()
                .payload(body.clone())
                .headers(headers)
                .message_id(id.clone())
        };
        // Sent here, in order; acknowledged on its own task.
        let first = jetstream
            .send_publish(out.subject.to_string(), publish(headers.clone()))
            .await;
        let subject = out.subject.to_string();
        let owed = out._owed;
        let jetstream = jetstream.clone();
        let counters = counters.clone();
        tokio::spawn(async move {
            let _owed = owed;
            let mut attempt = first;
            let mut tries = 1u32;
            loop {
                let error = match attempt {
                    Ok(ack) => match ack.await {
                        Ok(ack) => {
                            add(&counters.published);
                            if ack.duplicate {
                                add(&counters.duplicates);
                            }
                            slot.fill(Ok(ack.sequence));
                            return;
                        }
                        Err(error) => error.to_string(),
                    },
                    Err(error) => error.to_string(),
                };
                let now = Instant::now();
                if now >= deadline {
                    add(&counters.publish_failed);
                    slot.fill(Err(format!(
                        "no acknowledgement from the JetStream stream after {tries} attempts \
                         (last: {error})"
                    )));
                    return;
                }
                // A short pause (a timeout already waited `publish_timeout`), then the same
                // message again: the stream's duplicate window stores it once.
                let pause = Duration::from_millis(50 * u64::from(tries.min(20)))
                    .min(publish_timeout)
                    .min(deadline - now);
                tokio::time::sleep(pause).await;
                tries += 1;
                add(&counters.publish_retries);
                attempt = jetstream
                    .send_publish(subject.clone(), publish(headers.clone()))
                    .await;
            }
        });
    }
}
