//! Static descriptions of a manifest and its events, emitted by the generator as `const`s.
//!
//! Generated code builds these with struct literals, so every field is public. Runtime layers
//! (dispatch, store, bridge, policies) read them instead of re-parsing the manifest.

use std::time::Duration;

use crate::breaker::CircuitBreakerConfig;

/// The manifest a generated `EventBus` was built from.
///
/// ```
/// use eventbus_runtime::{ManifestMeta, EventMeta};
/// static EVENTS: [EventMeta; 0] = [];
/// static MANIFEST: ManifestMeta = ManifestMeta {
///     package: "demo", version: 1, fingerprint: "0000000000000000", events: &EVENTS,
/// };
/// assert_eq!(MANIFEST.event("nope"), None);
/// ```
#[derive(Debug, PartialEq)]
pub struct ManifestMeta {
    /// The manifest's `package`: docs title, CloudEvents type prefix, NATS subject root.
    pub package: &'static str,
    /// The manifest's `version` key (the DSL version).
    pub version: u32,
    /// A stable hash of the checked model, in hex. Stored with persisted events so that a
    /// record can be traced to the manifest that wrote it.
    pub fingerprint: &'static str,
    /// Every event, in manifest order.
    pub events: &'static [EventMeta],
}

impl ManifestMeta {
    /// Looks an event up by its manifest name (`"packageInstall"`).
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("packageInstall", Some("PackageEvent"))]);
    /// assert_eq!(manifest.event("packageInstall").unwrap().payload, Some("PackageEvent"));
    /// assert!(manifest.event("packageinstall").is_none()); // names are case-sensitive
    /// ```
    pub fn event(&self, name: &str) -> Option<&'static EventMeta> {
        self.events.iter().find(|e| e.name == name)
    }
}

/// One event as declared in the manifest.
///
/// ```
/// use eventbus_runtime::{EventMeta, Policies, Scope, UiDirection};
///
/// // What the generator emits for an event of the manifest.
/// static PACKAGE_INSTALL: EventMeta = EventMeta {
///     name: "packageInstall",
///     category: "packages",
///     description: "Progress of a package installation.",
///     payload: Some("PackageEvent"),
///     persist: true,
///     ui: UiDirection::ToUi,
///     scope: Scope::Local,
///     deprecated: None,
///     policies: Policies::NONE,
/// };
/// assert!(PACKAGE_INSTALL.ui.to_ui() && !PACKAGE_INSTALL.ui.from_ui());
/// assert!(!PACKAGE_INSTALL.scope.is_distributed());
/// ```
#[derive(Debug, PartialEq)]
pub struct EventMeta {
    /// The manifest name, camelCase: `"packageInstall"`. Also the JSON / wire name.
    pub name: &'static str,
    /// The `category` key; groups docs and the TypeScript namespace.
    pub category: &'static str,
    /// The `description` key (empty when absent).
    pub description: &'static str,
    /// The payload type's name as written in the manifest (`"PackageEvent"`), or `None` for an
    /// event without payload.
    pub payload: Option<&'static str>,
    /// `persist: true`: written to the store before dispatch.
    pub persist: bool,
    /// What may cross the browser bridge.
    pub ui: UiDirection,
    /// Whether the event stays in the process or travels between processes over NATS.
    pub scope: Scope,
    /// The `deprecated` notice, if any.
    pub deprecated: Option<&'static str>,
    /// Delivery policies from the manifest.
    pub policies: Policies,
}

/// The manifest's `ui` key: which way an event may cross the WebSocket bridge.
///
/// ```
/// use eventbus_runtime::UiDirection;
///
/// let directions = [UiDirection::None, UiDirection::ToUi, UiDirection::FromUi, UiDirection::Both];
/// let to_browsers: Vec<_> = directions.iter().filter(|d| d.to_ui()).map(|d| d.as_str()).collect();
/// assert_eq!(to_browsers, ["to_ui", "both"]);
/// assert_eq!(UiDirection::default(), UiDirection::None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum UiDirection {
    /// Never crosses the bridge (the default).
    #[default]
    None,
    /// Server to browser only.
    ToUi,
    /// Browser to server only.
    FromUi,
    /// Both ways.
    Both,
}

impl UiDirection {
    /// May the server send this event to browsers?
    ///
    /// ```
    /// use eventbus_runtime::UiDirection;
    ///
    /// assert!(UiDirection::Both.to_ui());
    /// assert!(!UiDirection::FromUi.to_ui());
    /// ```
    pub const fn to_ui(self) -> bool {
        matches!(self, Self::ToUi | Self::Both)
    }
    /// May a browser send this event to the server?
    ///
    /// ```
    /// use eventbus_runtime::UiDirection;
    ///
    /// assert!(UiDirection::FromUi.from_ui());
    /// assert!(!UiDirection::ToUi.from_ui());
    /// ```
    pub const fn from_ui(self) -> bool {
        matches!(self, Self::FromUi | Self::Both)
    }
    /// The manifest spelling: `none`, `to_ui`, `from_ui` or `both`.
    ///
    /// ```
    /// use eventbus_runtime::UiDirection;
    ///
    /// assert_eq!(UiDirection::FromUi.as_str(), "from_ui");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::None => "none",
            Self::ToUi => "to_ui",
            Self::FromUi => "from_ui",
            Self::Both => "both",
        }
    }
}

/// The manifest's `scope` key: whether an event stays in the process that emits it or travels
/// between processes (through NATS, with the `nats` feature and `BusBuilder::nats`).
///
/// ```
/// use eventbus_runtime::Scope;
///
/// assert_eq!(Scope::default(), Scope::Local);
/// assert!(Scope::Distributed.is_distributed());
/// assert_eq!(Scope::Distributed.as_str(), "distributed");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Scope {
    /// Delivered to the handlers of the emitting process only (the default).
    #[default]
    Local,
    /// Also published on the NATS subject `<package>.events.<eventName>` and delivered to the
    /// other processes of the system; `persist: true` events go through a JetStream stream.
    Distributed,
}

impl Scope {
    /// Whether the event travels between processes.
    ///
    /// ```
    /// use eventbus_runtime::Scope;
    ///
    /// assert!(Scope::Distributed.is_distributed());
    /// assert!(!Scope::Local.is_distributed());
    /// ```
    pub const fn is_distributed(self) -> bool {
        matches!(self, Self::Distributed)
    }
    /// The manifest spelling: `local` or `distributed`.
    ///
    /// ```
    /// use eventbus_runtime::Scope;
    ///
    /// assert_eq!(Scope::Local.as_str(), "local");
    /// ```
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Local => "local",
            Self::Distributed => "distributed",
        }
    }
}

/// Delivery policies declared on an event. All are off unless the manifest sets them.
///
/// Each is the event's default; code overrides it with [`BusBuilder::event`](crate::BusBuilder::event)
/// and [`HandlerOptions`](crate::HandlerOptions) (see `docs/reliability.md`).
///
/// ```
/// use eventbus_runtime::{Policies, Retry};
/// use std::time::Duration;
///
/// // `throttle: 500ms` and `retry: 3` in the manifest.
/// const POLICIES: Policies = Policies {
///     throttle: Some(Duration::from_millis(500)),
///     retry: Some(Retry { attempts: 3, backoff: Retry::DEFAULT_BACKOFF, max_backoff: Retry::DEFAULT_MAX_BACKOFF }),
///     ..Policies::NONE
/// };
/// assert_eq!(POLICIES.retry.unwrap().backoff, Duration::from_millis(100));
/// assert!(POLICIES.debounce.is_none());
/// assert_eq!(Policies::NONE, Policies::default());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Policies {
    /// `throttle: 500ms`: at most one delivery per interval.
    pub throttle: Option<Duration>,
    /// `debounce: 300ms`: deliver once the events have been quiet for the interval.
    pub debounce: Option<Duration>,
    /// `rate_limit: 100/s` or `{ count, per, burst }`: a token bucket.
    pub rate_limit: Option<RateLimit>,
    /// `batch: { max_size, max_wait }`: handlers receive a `Vec`.
    pub batch: Option<Batch>,
    /// `retry: 3` or `{ attempts, backoff, max_backoff }`.
    pub retry: Option<Retry>,
    /// `circuit_breaker: true` or `{ failure_rate, minimum_calls, window, open_for,
    /// half_open_calls }`: a circuit breaker for each handler of the event.
    pub circuit_breaker: Option<CircuitBreakerConfig>,
    /// `concurrency: 4`: how many calls of each async handler of the event may run at once.
    pub concurrency: Option<u32>,
    /// `queue: 100`: how many events each async handler of the event holds waiting for a free
    /// slot; more are dead-lettered.
    pub queue: Option<u32>,
}

impl Policies {
    /// No policy at all; usable in `const` context.
    pub const NONE: Policies = Policies {
        throttle: None,
        debounce: None,
        rate_limit: None,
        batch: None,
        retry: None,
        circuit_breaker: None,
        concurrency: None,
        queue: None,
    };
}

/// A token-bucket rate limit: `count` events per `per`, bursting up to `burst`.
///
/// ```
/// # #[cfg(feature = "async")] { // needs the `async` feature
/// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
/// use eventbus_runtime::{BusCore, RateLimit};
/// use std::time::Duration;
///
/// // `rate_limit: 100/s`.
/// let limit = RateLimit { count: 100, per: Duration::from_secs(1), burst: 100 };
/// let core: BusCore = BusCore::builder(manifest).event("ping", |e| e.rate_limit(limit)).build().unwrap();
/// # drop(core);
///
/// let none = RateLimit { count: 0, ..limit };
/// let err = BusCore::builder(manifest).event("ping", |e| e.rate_limit(none)).build().unwrap_err();
/// assert!(err.to_string().starts_with("event `ping`: `rate_limit` needs count ≥ 1"));
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Tokens added per period.
    pub count: u32,
    /// The period.
    pub per: Duration,
    /// Bucket size (defaults to `count`).
    pub burst: u32,
}

/// Batching: deliver when `max_size` events are waiting or `max_wait` passed since the first.
///
/// ```
/// # #[cfg(feature = "async")] { // needs the `async` feature
/// use eventbus_runtime::{Batch, BusCore, Event, Policies};
/// use std::sync::{Arc, Mutex};
/// use std::time::Duration;
///
/// // `batch: { max_size: 2, max_wait: 1m }`.
/// let batch = Batch { max_size: 2, max_wait: Duration::from_secs(60) };
/// # let manifest = eventbus_runtime::__doc::manifest_with(&[("ping", Some("u32"), Policies { batch: Some(batch), ..Policies::NONE })]);
/// let core = BusCore::new(manifest);
/// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
/// let batches = Arc::new(Mutex::new(Vec::new()));
/// let sink = batches.clone();
/// ping.on_batch(move |b: &[u32]| sink.lock().unwrap().push(b.to_vec()));
/// for n in 1..=4 {
///     ping.emit(n);
/// }
/// assert_eq!(*batches.lock().unwrap(), [vec![1, 2], vec![3, 4]]);
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    /// The most events in one batch.
    pub max_size: u32,
    /// The longest the first event of a batch waits.
    pub max_wait: Duration,
}

/// Retries of a failed handler with exponential backoff and jitter.
///
/// ```
/// # #[cfg(feature = "async")] { // needs the `async` feature
/// use eventbus_runtime::{BusCore, Event, Policies, Retry};
/// use std::sync::{Arc, Mutex};
/// use std::time::Duration;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() {
/// // `retry: 3`: three attempts; with the default (full) jitter the first retry waits up
/// // to 100ms, the second up to 200ms.
/// let retry = Retry { attempts: 3, backoff: Retry::DEFAULT_BACKOFF, max_backoff: Retry::DEFAULT_MAX_BACKOFF };
/// # let manifest = eventbus_runtime::__doc::manifest_with(&[("ping", Some("u32"), Policies { retry: Some(retry), ..Policies::NONE })]);
/// let core = BusCore::new(manifest);
/// let failures = Arc::new(Mutex::new(Vec::new()));
/// let log = failures.clone();
/// core.on_failure(move |f| log.lock().unwrap().push((f.attempt(), f.retry_in())));
/// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
/// ping.on(|_| Err::<(), _>("down"));
/// ping.emit(1);
///
/// let (attempt, retry_in) = failures.lock().unwrap()[0];
/// assert_eq!(attempt, 1);
/// assert!(retry_in.unwrap() <= Duration::from_millis(100));
/// # }
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Total attempts, the first included (`retry: 3` = one try and two retries).
    pub attempts: u32,
    /// Delay before the first retry; doubled each time.
    pub backoff: Duration,
    /// Upper bound of the delay.
    pub max_backoff: Duration,
}

impl Retry {
    /// Backoff used when the manifest gives only a number of attempts.
    pub const DEFAULT_BACKOFF: Duration = Duration::from_millis(100);
    /// Cap used when the manifest gives no `max_backoff`.
    pub const DEFAULT_MAX_BACKOFF: Duration = Duration::from_secs(30);
}
