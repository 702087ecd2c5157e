//! `BridgeConfig`: token, origins, limits and timeouts of a bridge.

use std::fmt;
use std::time::Duration;

/// Which browser origins may open a connection (the `Origin` header of the upgrade request).
///
/// Browsers send `Origin` with every WebSocket upgrade, and WebSockets are not covered by the
/// same-origin policy, so without this check any web page the user visits could connect with
/// the user's cookies (cross-site WebSocket hijacking). Requests without an `Origin` header
/// come from programs, not browsers, and are judged by their token alone.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AllowedOrigins {
    /// Only pages served from the host the request was sent to: the origin's `host[:port]`
    /// must equal the `Host` header (the default, right when the bridge is mounted into the
    /// app that serves the UI).
    #[default]
    SameHost,
    /// Only these origins, compared case-insensitively, e.g. `"http://localhost:5173"` (no
    /// trailing slash, no path).
    List(Vec<String>),
    /// Every origin. Only for development: the token is then the only protection.
    Any,
}

impl AllowedOrigins {
    /// Whether a request with this `Origin` header sent to this `Host` may connect.
    pub fn allows(&self, origin: &str, host: Option<&str>) -> bool {
        match self {
            AllowedOrigins::Any => true,
            AllowedOrigins::List(list) => list
                .iter()
                .any(|allowed| allowed.trim_end_matches('/').eq_ignore_ascii_case(origin)),
            AllowedOrigins::SameHost => {
                let Some(host) = host else { return false };
                let authority = origin
                    .split_once("://")
                    .map(|(_, rest)| rest)
                    .unwrap_or_default();
                !authority.is_empty() && authority.eq_ignore_ascii_case(host)
            }
        }
    }
}

/// The settings of a [`Bridge`](super::Bridge): the token, where it is mounted, which origins
/// may connect, and the limits that keep one client from hurting the others.
///
/// Only the token is required; every other setting has a default (see `docs/bridge.md`).
///
/// ```
/// use eventbus_runtime::bridge::{AllowedOrigins, BridgeConfig};
/// use std::time::Duration;
///
/// let config = BridgeConfig::new("s3cret-token")
///     .path("/api/events")
///     .allowed_origins(AllowedOrigins::List(vec!["http://localhost:5173".into()]))
///     .queue(256)
///     .rate_limit(20, 40)
///     .ping(Duration::from_secs(15), Duration::from_secs(10));
/// assert_eq!(config.max_frame_bytes_value(), 64 * 1024);
/// ```
#[derive(Clone)]
pub struct BridgeConfig {
    pub(crate) token: String,
    pub(crate) path: String,
    pub(crate) origins: AllowedOrigins,
    pub(crate) source: Option<String>,
    pub(crate) queue: usize,
    pub(crate) max_frame_bytes: usize,
    pub(crate) rate_per_second: u32,
    pub(crate) burst: u32,
    pub(crate) first_frame_auth: bool,
    pub(crate) auth_timeout: Duration,
    pub(crate) ping_interval: Duration,
    pub(crate) pong_timeout: Duration,
    pub(crate) write_timeout: Duration,
    pub(crate) max_connections: usize,
    pub(crate) max_history: u64,
}

impl fmt::Debug for BridgeConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("BridgeConfig")
            .field("token", &"<hidden>")
            .field("path", &self.path)
            .field("origins", &self.origins)
            .field("source", &self.source)
            .field("queue", &self.queue)
            .field("max_frame_bytes", &self.max_frame_bytes)
            .field("rate_per_second", &self.rate_per_second)
            .field("burst", &self.burst)
            .field("first_frame_auth", &self.first_frame_auth)
            .field("auth_timeout", &self.auth_timeout)
            .field("ping_interval", &self.ping_interval)
            .field("pong_timeout", &self.pong_timeout)
            .field("write_timeout", &self.write_timeout)
            .field("max_connections", &self.max_connections)
            .field("max_history", &self.max_history)
            .finish()
    }
}

/// Default of [`BridgeConfig::path`].
pub const DEFAULT_PATH: &str = "/events";
/// Default of [`BridgeConfig::queue`]: frames waiting for one client.
pub const DEFAULT_QUEUE: usize = 1024;
/// Default of [`BridgeConfig::max_frame_bytes`]: 64 KiB.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 64 * 1024;
/// Default of [`BridgeConfig::rate_limit`]: frames per second from one client.
pub const DEFAULT_RATE_PER_SECOND: u32 = 20;
/// Default of [`BridgeConfig::rate_limit`]: the burst a client may send at once.
pub const DEFAULT_BURST: u32 = 40;
/// Default of [`BridgeConfig::auth_timeout`].
pub const DEFAULT_AUTH_TIMEOUT: Duration = Duration::from_secs(10);
/// Default ping interval of [`BridgeConfig::ping`] (socket.io's `pingInterval`).
pub const DEFAULT_PING_INTERVAL: Duration = Duration::from_secs(25);
/// Default pong timeout of [`BridgeConfig::ping`] (socket.io's `pingTimeout`).
pub const DEFAULT_PONG_TIMEOUT: Duration = Duration::from_secs(20);
/// Default of [`BridgeConfig::write_timeout`].
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Default of [`BridgeConfig::max_connections`]: open WebSocket connections, authenticated
/// or still waiting for their first-frame token.
pub const DEFAULT_MAX_CONNECTIONS: usize = 10_000;
/// Default of [`BridgeConfig::max_history`]: stored events a client may ask to be replayed
/// with `history=N` when it has no resume point.
pub const DEFAULT_MAX_HISTORY: u64 = 1_000;

impl BridgeConfig {
    /// A configuration whose clients must present `token` (see `docs/bridge.md`, "Auth").
    ///
    /// # Panics
    ///
    /// If `token` is empty: a bridge always requires a token.
    pub fn new(token: impl Into<String>) -> BridgeConfig {
        let token = token.into();
        assert!(
            !token.is_empty(),
            "eventbus: the bridge token must not be empty"
        );
        BridgeConfig {
            token,
            path: DEFAULT_PATH.to_owned(),
            origins: AllowedOrigins::default(),
            source: None,
            queue: DEFAULT_QUEUE,
            max_frame_bytes: DEFAULT_MAX_FRAME_BYTES,
            rate_per_second: DEFAULT_RATE_PER_SECOND,
            burst: DEFAULT_BURST,
            first_frame_auth: true,
            auth_timeout: DEFAULT_AUTH_TIMEOUT,
            ping_interval: DEFAULT_PING_INTERVAL,
            pong_timeout: DEFAULT_PONG_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
            max_connections: DEFAULT_MAX_CONNECTIONS,
            max_history: DEFAULT_MAX_HISTORY,
        }
    }

    /// The URL path of the WebSocket endpoint in [`Bridge::router`](super::Bridge::router)
    /// (default `/events`).
    ///
    /// # Panics
    ///
    /// If `path` does not start with `/`.
    pub fn path(mut self, path: impl Into<String>) -> Self {
        let path = path.into();
        assert!(
            path.starts_with('/'),
            "eventbus: the bridge path must start with `/`"
        );
        self.path = path;
        self
    }

    /// Which browser origins may connect (default [`AllowedOrigins::SameHost`]).
    pub fn allowed_origins(mut self, origins: AllowedOrigins) -> Self {
        self.origins = origins;
        self
    }

    /// The CloudEvents `source` of the frames the bridge sends (default `/<package>`, e.g.
    /// `/dappnode`).
    pub fn source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// How many frames may wait for one client (default 1,024). A client that falls further
    /// behind is disconnected with close code 4008 and its resume point, instead of making the
    /// server hold more memory for it.
    ///
    /// # Panics
    ///
    /// If `frames` is 0.
    pub fn queue(mut self, frames: usize) -> Self {
        assert!(
            frames > 0,
            "eventbus: the bridge queue must hold at least one frame"
        );
        self.queue = frames;
        self
    }

    /// The largest frame a client may send, in bytes (default 64 KiB). A larger one is refused
    /// with a `too_large` error frame; one larger than `max(16 × bytes, 1 MiB)` cannot even be
    /// read and closes the connection (code 1009).
    ///
    /// # Panics
    ///
    /// If `bytes` is 0.
    pub fn max_frame_bytes(mut self, bytes: usize) -> Self {
        assert!(
            bytes > 0,
            "eventbus: the bridge frame limit must be positive"
        );
        self.max_frame_bytes = bytes;
        self
    }

    /// The configured [`max_frame_bytes`](Self::max_frame_bytes).
    pub fn max_frame_bytes_value(&self) -> usize {
        self.max_frame_bytes
    }

    /// How many frames one client may send: `per_second` on average, `burst` at once (a token
    /// bucket; defaults 20 and 40). A frame over the limit is refused with a `rate_limited`
    /// error frame; a client that keeps sending through `burst` refusals in a row is
    /// disconnected (close code 1008).
    ///
    /// # Panics
    ///
    /// If either is 0.
    pub fn rate_limit(mut self, per_second: u32, burst: u32) -> Self {
        assert!(
            per_second > 0 && burst > 0,
            "eventbus: the bridge rate limit must be positive"
        );
        self.rate_per_second = per_second;
        self.burst = burst;
        self
    }

    /// Whether a client that presented no token at the upgrade may send it as its first frame
    /// (`eventbus.bridge.auth`) within [`auth_timeout`](Self::auth_timeout) (default `true`:
    /// browsers cannot set headers on a WebSocket, and a token in the URL ends up in logs).
    /// With `false`, every upgrade without a valid token is refused with 401.
    pub fn first_frame_auth(mut self, allowed: bool) -> Self {
        self.first_frame_auth = allowed;
        self
    }

    /// How long a connection may wait before its first-frame authentication (default 10 s).
    pub fn auth_timeout(mut self, timeout: Duration) -> Self {
        self.auth_timeout = timeout;
        self
    }

    /// Heartbeat: the server pings every `interval` and drops a connection from which nothing
    /// (not even a pong) arrived for `interval + timeout` (defaults 25 s and 20 s, as
    /// socket.io). This is how lost clients (a closed laptop) are noticed. For the other
    /// direction, a client that has been sent nothing for `interval` gets an
    /// `eventbus.bridge.heartbeat` frame (browsers cannot see pings); the welcome announces
    /// both values so a client can give up on a server silent for `interval + timeout`.
    ///
    /// # Panics
    ///
    /// If `interval` is zero.
    pub fn ping(mut self, interval: Duration, timeout: Duration) -> Self {
        assert!(
            !interval.is_zero(),
            "eventbus: the bridge ping interval must be positive"
        );
        self.ping_interval = interval;
        self.pong_timeout = timeout;
        self
    }

    /// How long sending one frame to a client may take before the connection is dropped
    /// (default 10 s): a client that stops reading cannot hold a server task forever.
    pub fn write_timeout(mut self, timeout: Duration) -> Self {
        self.write_timeout = timeout;
        self
    }

    /// The most WebSocket connections open at once (default
    /// [`DEFAULT_MAX_CONNECTIONS`]), counting those still waiting for their first-frame
    /// token: beyond it an upgrade gets `503 Service Unavailable` with `Retry-After`, so
    /// idle or unauthenticated sockets cannot exhaust the server's memory or file descriptors.
    ///
    /// ```
    /// let config = eventbus_runtime::bridge::BridgeConfig::new("s3cret").max_connections(500);
    /// assert_eq!(config.max_connections_value(), 500);
    /// ```
    ///
    /// # Panics
    ///
    /// If `max` is zero.
    pub fn max_connections(mut self, max: usize) -> Self {
        assert!(
            max > 0,
            "eventbus: the bridge must allow at least one connection"
        );
        self.max_connections = max;
        self
    }

    /// The configured [`max_connections`](Self::max_connections).
    pub fn max_connections_value(&self) -> usize {
        self.max_connections
    }

    /// The most stored events a client without a resume point may ask for with `history=N`
    /// (default [`DEFAULT_MAX_HISTORY`]): a larger `N` is clamped to it, not refused (the
    /// client cannot know the server's limit; the welcome's `history` says how many it got).
    /// `0` turns history off. The replayed events of one connection are read from the store at
    /// once, so this also bounds the memory a connecting client can make the server use.
    ///
    /// ```
    /// let config = eventbus_runtime::bridge::BridgeConfig::new("s3cret").max_history(200);
    /// assert_eq!(config.max_history_value(), 200);
    /// ```
    pub fn max_history(mut self, events: u64) -> Self {
        self.max_history = events;
        self
    }

    /// The configured [`max_history`](Self::max_history).
    pub fn max_history_value(&self) -> u64 {
        self.max_history
    }

    /// The largest message the WebSocket layer reads at all.
    pub(crate) fn hard_limit(&self) -> usize {
        self.max_frame_bytes.saturating_mul(16).max(1 << 20)
    }
}
