//! `NatsConfig`: how a bus connects to NATS and how its JetStream stream and consumers look.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// Where a service's durable consumer starts when it is created (the first start of a service;
/// afterwards it resumes where it left off, whatever this says).
///
/// ```
/// use eventbus_runtime::nats::{DeliverFrom, NatsConfig};
///
/// assert_eq!(DeliverFrom::default(), DeliverFrom::New);
/// // An audit service that must see the whole history on its first start.
/// let config = NatsConfig::new("audit").deliver_from(DeliverFrom::All);
/// assert!(format!("{config:?}").contains("deliver_from: All"));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
#[non_exhaustive]
pub enum DeliverFrom {
    /// Events published from the moment the consumer is created (the default): a new service
    /// does not replay the stream's history.
    #[default]
    New,
    /// Every event still in the stream.
    All,
}

/// How a bus talks to NATS: the service it belongs to, the JetStream stream of its persisted
/// events, timeouts and credentials. Given to [`BusBuilder::nats`](crate::BusBuilder::nats).
///
/// Only [`new`](Self::new)'s service name is required; every setter documents its default
/// (see `docs/nats.md`).
///
/// ```
/// use eventbus_runtime::nats::{DeliverFrom, NatsConfig};
/// use std::time::Duration;
///
/// let config = NatsConfig::new("installer")
///     .stream("dappnode-events")
///     .replicas(3)                             // a 3-node cluster
///     .max_age(Duration::from_secs(3 * 86_400))
///     .deliver_from(DeliverFrom::All)
///     .token(std::env::var("NATS_TOKEN").unwrap_or_default());
/// assert_eq!(config.service_name(), "installer");
/// ```
#[derive(Clone)]
pub struct NatsConfig {
    pub(crate) service: String,
    pub(crate) instance: Option<String>,
    pub(crate) stream: Option<String>,
    pub(crate) replicas: usize,
    pub(crate) max_age: Option<Duration>,
    pub(crate) duplicate_window: Duration,
    pub(crate) deliver_from: DeliverFrom,
    pub(crate) ack_wait: Duration,
    pub(crate) max_ack_pending: u32,
    pub(crate) publish_timeout: Duration,
    pub(crate) publish_deadline: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) outbox: usize,
    pub(crate) auth: Auth,
    pub(crate) root_certificates: Vec<PathBuf>,
    pub(crate) require_tls: bool,
    /// Plain distributed events this service's instances share (a queue group each).
    pub(crate) queue_groups: Vec<String>,
}

#[derive(Clone, Default)]
pub(crate) enum Auth {
    #[default]
    None,
    Token(String),
    UserPassword(String, String),
}

impl fmt::Debug for NatsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let auth = match self.auth {
            Auth::None => "none",
            Auth::Token(_) => "token",
            Auth::UserPassword(..) => "user and password",
        };
        f.debug_struct("NatsConfig")
            .field("service", &self.service)
            .field("instance", &self.instance)
            .field("stream", &self.stream)
            .field("replicas", &self.replicas)
            .field("max_age", &self.max_age)
            .field("duplicate_window", &self.duplicate_window)
            .field("deliver_from", &self.deliver_from)
            .field("ack_wait", &self.ack_wait)
            .field("max_ack_pending", &self.max_ack_pending)
            .field("publish_timeout", &self.publish_timeout)
            .field("publish_deadline", &self.publish_deadline)
            .field("connect_timeout", &self.connect_timeout)
            .field("outbox", &self.outbox)
            .field("auth", &auth)
            .field("root_certificates", &self.root_certificates)
            .field("require_tls", &self.require_tls)
            .field("queue_groups", &self.queue_groups)
            .finish()
    }
}

/// The defaults of [`NatsConfig`].
pub mod defaults {
    use std::time::Duration;

    /// How long JetStream keeps an event: 7 days (then a service down longer misses it).
    pub const MAX_AGE: Duration = Duration::from_secs(7 * 24 * 3600);
    /// The stream's deduplication window (NATS's default): a publish retried within it with
    /// the same event id is stored once.
    pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);
    /// How long the broker waits for a delivery's acknowledgement before redelivering (NATS's
    /// default). Handlers that run longer keep the delivery alive with progress signals.
    pub const ACK_WAIT: Duration = Duration::from_secs(30);
    /// Deliveries of one consumer in flight at once (unacknowledged).
    pub const MAX_ACK_PENDING: u32 = 256;
    /// How long one JetStream publish waits for the stream's acknowledgement before it is sent
    /// again (same id: the stream stores it once).
    pub const PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);
    /// How long a persisted distributed `emit` keeps trying before it returns
    /// `PersistError::NotPublished`. Below [`DUPLICATE_WINDOW`], so every retry is deduplicated.
    pub const PUBLISH_DEADLINE: Duration = Duration::from_secs(30);
    /// How long [`NatsLink::start`](crate::nats::NatsLink::start) waits for the connection.
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
    /// Events waiting to be handed to the connection.
    pub const OUTBOX: usize = 8192;
}

impl NatsConfig {
    /// A configuration for the service `service`: the name of its durable JetStream consumers
    /// (`<service>_<eventName>`), shared by every instance of the service, and part of the
    /// CloudEvents `source` (`/<package>/<service>/<instance>`). Letters, digits, `-` and `_`.
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::BusCore;
    /// use eventbus_runtime::nats::NatsConfig;
    ///
    /// let config = NatsConfig::new("installer");
    /// assert_eq!(config.service_name(), "installer");
    ///
    /// // The name is checked by `build()`, before any connection is made.
    /// let err = BusCore::builder(manifest)
    ///     .nats("nats://127.0.0.1:4222", NatsConfig::new("the installer"))
    ///     .build()
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("service name `the installer`"));
    /// ```
    pub fn new(service: impl Into<String>) -> Self {
        NatsConfig {
            service: service.into(),
            instance: None,
            stream: None,
            replicas: 1,
            max_age: Some(defaults::MAX_AGE),
            duplicate_window: defaults::DUPLICATE_WINDOW,
            deliver_from: DeliverFrom::New,
            ack_wait: defaults::ACK_WAIT,
            max_ack_pending: defaults::MAX_ACK_PENDING,
            publish_timeout: defaults::PUBLISH_TIMEOUT,
            publish_deadline: defaults::PUBLISH_DEADLINE,
            connect_timeout: defaults::CONNECT_TIMEOUT,
            outbox: defaults::OUTBOX,
            auth: Auth::None,
            root_certificates: Vec::new(),
            require_tls: false,
            queue_groups: Vec::new(),
        }
    }

    /// The service name given to [`new`](Self::new).
    pub fn service_name(&self) -> &str {
        &self.service
    }

    /// This process's name within the service, in the CloudEvents `source` (default: a random
    /// hex id per bus). Letters, digits, `-` and `_`.
    ///
    /// ```
    /// use eventbus_runtime::nats::NatsConfig;
    ///
    /// // A stable name per replica, e.g. the Kubernetes pod name.
    /// let config = NatsConfig::new("installer").instance("installer-0");
    /// assert!(format!("{config:?}").contains(r#"instance: Some("installer-0")"#));
    /// ```
    pub fn instance(mut self, instance: impl Into<String>) -> Self {
        self.instance = Some(instance.into());
        self
    }

    /// The JetStream stream of the persisted distributed events (default `<package>-events`).
    /// Created if missing; an existing stream keeps its settings and only gains the subjects it
    /// lacks.
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::BusCore;
    /// use eventbus_runtime::nats::NatsConfig;
    ///
    /// let config = NatsConfig::new("installer").stream("dappnode-events");
    /// assert!(format!("{config:?}").contains(r#"stream: Some("dappnode-events")"#));
    ///
    /// // Stream names are letters, digits, `-` and `_`; checked by `build()`.
    /// let err = BusCore::builder(manifest)
    ///     .nats("nats://127.0.0.1:4222", NatsConfig::new("installer").stream("dappnode.events"))
    ///     .build()
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("stream name"));
    /// ```
    pub fn stream(mut self, name: impl Into<String>) -> Self {
        self.stream = Some(name.into());
        self
    }

    /// Replicas of a stream this bus creates (default 1; 3 in a cluster of 3 or more).
    ///
    /// ```
    /// use eventbus_runtime::nats::NatsConfig;
    ///
    /// let config = NatsConfig::new("installer").replicas(3);
    /// assert!(format!("{config:?}").contains("replicas: 3"));
    /// ```
    pub fn replicas(mut self, replicas: usize) -> Self {
        self.replicas = replicas;
        self
    }

    /// How long a stream this bus creates keeps events (default
    /// [`defaults::MAX_AGE`]); `None` keeps them until the stream's other limits.
    ///
    /// ```
    /// use eventbus_runtime::nats::NatsConfig;
    /// use std::time::Duration;
    ///
    /// let three_days = NatsConfig::new("installer").max_age(Duration::from_secs(3 * 86_400));
    /// assert!(format!("{three_days:?}").contains("max_age: Some(259200s)"));
    /// let forever = NatsConfig::new("installer").max_age(None);
    /// assert!(format!("{forever:?}").contains("max_age: None"));
    /// ```
    pub fn max_age(mut self, max_age: impl Into<Option<Duration>>) -> Self {
        self.max_age = max_age.into();
        self
    }

    /// The deduplication window of a stream this bus creates (default
    /// [`defaults::DUPLICATE_WINDOW`]). Must be longer than the publish deadline.
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::BusCore;
    /// use eventbus_runtime::nats::NatsConfig;
    /// use std::time::Duration;
    ///
    /// // Shorter than the publish deadline (30s by default): a retried publish could be stored twice.
    /// let config = NatsConfig::new("installer").duplicate_window(Duration::from_secs(10));
    /// let err = BusCore::builder(manifest).nats("nats://127.0.0.1:4222", config).build().unwrap_err();
    /// assert!(err.to_string().contains("must be shorter than `duplicate_window`"));
    /// ```
    pub fn duplicate_window(mut self, window: Duration) -> Self {
        self.duplicate_window = window;
        self
    }

    /// Where a new durable consumer starts (default [`DeliverFrom::New`]).
    ///
    /// ```
    /// use eventbus_runtime::nats::{DeliverFrom, NatsConfig};
    ///
    /// let config = NatsConfig::new("reporting").deliver_from(DeliverFrom::All);
    /// assert!(format!("{config:?}").contains("deliver_from: All"));
    /// ```
    pub fn deliver_from(mut self, from: DeliverFrom) -> Self {
        self.deliver_from = from;
        self
    }

    /// The consumers' acknowledgement wait (default [`defaults::ACK_WAIT`]): a delivery whose
    /// process died is redelivered after it.
    ///
    /// ```
    /// use eventbus_runtime::nats::NatsConfig;
    /// use std::time::Duration;
    ///
    /// let config = NatsConfig::new("installer").ack_wait(Duration::from_secs(120));
    /// assert!(format!("{config:?}").contains("ack_wait: 120s"));
    /// ```
    pub fn ack_wait(mut self, wait: Duration) -> Self {
        self.ack_wait = wait;
        self
    }

    /// Unacknowledged deliveries per consumer (default [`defaults::MAX_ACK_PENDING`]).
    ///
    /// ```
    /// use eventbus_runtime::nats::NatsConfig;
    ///
    /// // One delivery at a time: strictly in order, slower.
    /// let config = NatsConfig::new("ledger").max_ack_pending(1);
    /// assert!(format!("{config:?}").contains("max_ack_pending: 1,"));
    /// ```
    pub fn max_ack_pending(mut self, pending: u32) -> Self {
        self.max_ack_pending = pending;
        self
    }

    /// How long one JetStream publish waits for its acknowledgement before it is sent again
    /// (default [`defaults::PUBLISH_TIMEOUT`]).
    ///
    /// ```
    /// use eventbus_runtime::nats::NatsConfig;
    /// use std::time::Duration;
    ///
    /// let config = NatsConfig::new("installer").publish_timeout(Duration::from_millis(500));
    /// assert!(format!("{config:?}").contains("publish_timeout: 500ms"));
    /// ```
    pub fn publish_timeout(mut self, timeout: Duration) -> Self {
        self.publish_timeout = timeout;
        self
    }

    /// How long a persisted distributed emit keeps publishing before it fails (default
    /// [`defaults::PUBLISH_DEADLINE`]). Must be shorter than the duplicate window.
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::BusCore;
    /// use eventbus_runtime::nats::NatsConfig;
    /// use std::time::Duration;
    ///
    /// let config = NatsConfig::new("installer").publish_deadline(Duration::from_secs(5));
    /// assert!(format!("{config:?}").contains("publish_deadline: 5s"));
    ///
    /// // Not within the duplicate window (120s by default): refused by `build()`.
    /// let too_long = NatsConfig::new("installer").publish_deadline(Duration::from_secs(300));
    /// let err = BusCore::builder(manifest).nats("nats://127.0.0.1:4222", too_long).build().unwrap_err();
    /// assert!(err.to_string().contains("`publish_deadline` (300s)"));
    /// ```
    pub fn publish_deadline(mut self, deadline: Duration) -> Self {
        self.publish_deadline = deadline;
        self
    }

    /// How long [`NatsLink::start`](crate::nats::NatsLink::start) waits for the connection
    /// (default [`defaults::CONNECT_TIMEOUT`]).
    ///
    /// ```
    /// use eventbus_runtime::nats::NatsConfig;
    /// use std::time::Duration;
    ///
    /// let config = NatsConfig::new("installer").connect_timeout(Duration::from_secs(2));
    /// assert!(format!("{config:?}").contains("connect_timeout: 2s"));
    /// ```
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Events waiting for the connection at most (default [`defaults::OUTBOX`]); an emit that
    /// finds it full is reported as `FailureKind::NotPublished`.
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::BusCore;
    /// use eventbus_runtime::nats::NatsConfig;
    ///
    /// let config = NatsConfig::new("installer").outbox(100_000);
    /// assert!(format!("{config:?}").contains("outbox: 100000"));
    ///
    /// let err = BusCore::builder(manifest)
    ///     .nats("nats://127.0.0.1:4222", NatsConfig::new("installer").outbox(0))
    ///     .build()
    ///     .unwrap_err();
    /// assert!(err.to_string().contains("must be at least 1"));
    /// ```
    pub fn outbox(mut self, capacity: usize) -> Self {
        self.outbox = capacity;
        self
    }

    /// Authenticates with a token.
    ///
    /// ```
    /// use eventbus_runtime::nats::NatsConfig;
    ///
    /// let config = NatsConfig::new("installer").token("s3cret");
    /// let shown = format!("{config:?}");
    /// assert!(shown.contains(r#"auth: "token""#));
    /// assert!(!shown.contains("s3cret")); // never printed
    /// ```
    pub fn token(mut self, token: impl Into<String>) -> Self {
        self.auth = Auth::Token(token.into());
        self
    }

    /// Authenticates with a user name and password.
    ///
    /// ```
    /// use eventbus_runtime::nats::NatsConfig;
    ///
    /// let config = NatsConfig::new("installer").user_password("installer", "s3cret");
    /// let shown = format!("{config:?}");
    /// assert!(shown.contains(r#"auth: "user and password""#));
    /// assert!(!shown.contains("s3cret"));
    /// ```
    pub fn user_password(mut self, user: impl Into<String>, password: impl Into<String>) -> Self {
        self.auth = Auth::UserPassword(user.into(), password.into());
        self
    }

    /// Trusts the CA certificates in this PEM file for TLS (repeatable).
    ///
    /// ```
    /// use eventbus_runtime::nats::NatsConfig;
    ///
    /// let config = NatsConfig::new("installer")
    ///     .root_certificates("/etc/nats/ca.pem")
    ///     .root_certificates("/etc/nats/old-ca.pem");
    /// assert!(format!("{config:?}").contains(r#"root_certificates: ["/etc/nats/ca.pem", "/etc/nats/old-ca.pem"]"#));
    /// ```
    pub fn root_certificates(mut self, path: impl Into<PathBuf>) -> Self {
        self.root_certificates.push(path.into());
        self
    }

    /// Refuses to connect without TLS (default: TLS when the server or the URL asks for it).
    ///
    /// ```
    /// use eventbus_runtime::nats::NatsConfig;
    ///
    /// let config = NatsConfig::new("installer").require_tls(true);
    /// assert!(format!("{config:?}").contains("require_tls: true"));
    /// ```
    pub fn require_tls(mut self, required: bool) -> Self {
        self.require_tls = required;
        self
    }

    /// Shares the plain (not `persist: true`) distributed event `event` among the instances of
    /// this service: each one it receives from another process goes to one instance only (a
    /// NATS queue group named after the service), so instances split the work instead of each
    /// handling every event. Other services still each get it. Call it once per event; an
    /// event that is not plain and distributed fails `build()`. Persisted distributed events
    /// are always shared this way (through the service's durable consumer).
    ///
    /// ```
    /// use eventbus_runtime::nats::NatsConfig;
    ///
    /// // Every instance of `indexer` subscribes; each `blockSeen` is indexed by one of them.
    /// let config = NatsConfig::new("indexer").queue_group("blockSeen");
    /// assert!(format!("{config:?}").contains(r#"queue_groups: ["blockSeen"]"#));
    /// ```
    pub fn queue_group(mut self, event: impl Into<String>) -> Self {
        self.queue_groups.push(event.into());
        self
    }

    /// The problems of this configuration, for `BusBuilder::build`.
    pub(crate) fn check(&self) -> Result<(), String> {
        let name_ok = |name: &str| {
            !name.is_empty()
                && name.len() <= 64
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        };
        if !name_ok(&self.service) {
            return Err(format!(
                "NATS service name `{}` must be 1 to 64 letters, digits, `-` or `_`",
                self.service
            ));
        }
        for (what, name) in [("instance", &self.instance), ("stream", &self.stream)] {
            if let Some(name) = name
                && !name_ok(name)
            {
                return Err(format!(
                    "NATS {what} name `{name}` must be 1 to 64 letters, digits, `-` or `_`"
                ));
            }
        }
        for (what, value) in [
            ("ack_wait", self.ack_wait),
            ("publish_timeout", self.publish_timeout),
            ("publish_deadline", self.publish_deadline),
            ("duplicate_window", self.duplicate_window),
        ] {
            if value.is_zero() {
                return Err(format!("NATS `{what}` must be longer than 0"));
            }
        }
        if self.publish_deadline >= self.duplicate_window {
            return Err(format!(
                "NATS `publish_deadline` ({:?}) must be shorter than `duplicate_window` ({:?}), or a \
                 publish retried after the window could be stored twice",
                self.publish_deadline, self.duplicate_window
            ));
        }
        if self.replicas == 0 || self.max_ack_pending == 0 || self.outbox == 0 {
            return Err(
                "NATS `replicas`, `max_ack_pending` and `outbox` must be at least 1".into(),
            );
        }
        Ok(())
    }
}
