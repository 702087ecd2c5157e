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
    pub fn event(&self, name: &str) -> Option<&'static EventMeta> {
        self.events.iter().find(|e| e.name == name)
    }
}

/// One event as declared in the manifest.
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
    pub const fn to_ui(self) -> bool {
        matches!(self, Self::ToUi | Self::Both)
    }
    /// May a browser send this event to the server?
    pub const fn from_ui(self) -> bool {
        matches!(self, Self::FromUi | Self::Both)
    }
    /// The manifest spelling: `none`, `to_ui`, `from_ui` or `both`.
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
    pub const fn is_distributed(self) -> bool {
        matches!(self, Self::Distributed)
    }
    /// The manifest spelling: `local` or `distributed`.
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    /// The most events in one batch.
    pub max_size: u32,
    /// The longest the first event of a batch waits.
    pub max_wait: Duration,
}

/// Retries of a failed handler with exponential backoff and jitter.
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
