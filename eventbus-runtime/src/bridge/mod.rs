//! The WebSocket bridge: events cross between the bus and browsers, as the manifest allows.
//!
//! Events whose manifest `ui` is `to_ui` or `both` go to every connected client as
//! CloudEvents 1.0 JSON frames (subprotocol `cloudevents.json`); a client may send the events
//! whose `ui` is `from_ui` or `both`, each validated against its payload type and emitted with
//! [`BusCore::emit_json`]. Anything else a client sends is refused with an error frame and
//! changes nothing. Clients need the token; browser origins are checked; each client has a
//! rate limit on what it sends and a bounded queue for what it receives. With an event store
//! (feature `store`), persisted events carry their sequence number and a client that
//! reconnects with `?since=<sequence>` receives every one it missed, once, then live events;
//! a client without a resume point may ask for the last stored ones with `?history=<count>`.
//! The protocol is specified in `docs/bridge.md`.
//!
//! ```no_run
//! use eventbus_runtime::BusCore;
//! use eventbus_runtime::bridge::{Bridge, BridgeConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> std::io::Result<()> {
//! # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
//! let core = BusCore::new(manifest); // a generated `EventBus` derefs to its `BusCore`
//! let bridge = Bridge::new(&core, BridgeConfig::new(std::env::var("EVENTS_TOKEN").unwrap()));
//!
//! // Mounted into your own axum app, next to your routes…
//! let app = axum::Router::new()
//!     .route("/health", axum::routing::get(|| async { "ok" }))
//!     .merge(bridge.router())
//!     .merge(bridge.metrics_router());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:8080").await?;
//! axum::serve(listener, app).await
//! // … or on its own: `bridge::serve("127.0.0.1:8080", &core, config).await`.
//! # }
//! ```

mod auth;
mod config;
mod conn;
mod frame;
mod http;
mod hub;
mod start;
mod stats;

use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use axum::serve::ListenerExt;

pub use config::{
    AllowedOrigins, BridgeConfig, DEFAULT_AUTH_TIMEOUT, DEFAULT_BURST, DEFAULT_MAX_CONNECTIONS,
    DEFAULT_MAX_FRAME_BYTES, DEFAULT_MAX_HISTORY, DEFAULT_PATH, DEFAULT_PING_INTERVAL,
    DEFAULT_PONG_TIMEOUT, DEFAULT_QUEUE, DEFAULT_RATE_PER_SECOND, DEFAULT_WRITE_TIMEOUT,
};
pub use frame::{
    ACK, AUTH, CLOSE_GOING_AWAY, CLOSE_INTERNAL, CLOSE_POLICY, CLOSE_TOO_BIG, CLOSE_TOO_SLOW,
    CLOSE_TRY_LATER, CLOSE_UNAUTHORIZED, ERROR, ErrorCode, HEARTBEAT, SUBPROTOCOL, WELCOME,
};
pub use stats::{BridgeStats, prometheus_text};

use crate::bus::BusCore;

/// A bridge between one bus and its WebSocket clients. Cloning is cheap; clones share the
/// clients.
///
/// Creating it subscribes one listener (labelled `eventbus-bridge`) to every `to_ui` / `both`
/// event of the bus, so `listener_count()` counts it; dropping the last clone (and the routers
/// made from it) unsubscribes them. Until a client connects the listeners return at once: no
/// payload is serialised for nobody.
#[derive(Clone)]
pub struct Bridge {
    hub: Arc<hub::Hub>,
}

impl std::fmt::Debug for Bridge {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Bridge")
            .field("package", &self.hub.core.manifest().package)
            .field("path", &self.hub.config.path)
            .field("clients", &self.hub.client_count())
            .finish()
    }
}

impl Bridge {
    /// A bridge for `bus` (a generated `EventBus` derefs to its [`BusCore`], so `&bus` works).
    /// With the `store` feature and a bus built with an event store, persisted events are sent
    /// with their sequence number and clients can resume.
    pub fn new(bus: &BusCore, config: BridgeConfig) -> Bridge {
        Bridge {
            hub: hub::Hub::new(bus, config),
        }
    }

    /// An axum router with the WebSocket endpoint at the configured
    /// [`path`](BridgeConfig::path) (`GET /events`), to `merge` into your app. It needs a
    /// tokio runtime (as any axum app).
    pub fn router(&self) -> Router {
        Router::new()
            .route(&self.hub.config.path, get(http::upgrade))
            .with_state(self.hub.clone())
    }

    /// An axum router with `GET /metrics`: the bus's stats and this bridge's counters in the
    /// Prometheus text format (see [`prometheus_text`]). It is not behind the token: mount it
    /// only where your scraper (not the world) can reach it, or wrap it in your own auth.
    pub fn metrics_router(&self) -> Router {
        let bridge = self.clone();
        Router::new().route(
            "/metrics",
            get(move || {
                let bridge = bridge.clone();
                async move {
                    (
                        [(
                            axum::http::header::CONTENT_TYPE,
                            "text/plain; version=0.0.4; charset=utf-8",
                        )],
                        bridge.prometheus_text(),
                    )
                }
            }),
        )
    }

    /// The bus's stats and this bridge's counters in the Prometheus text format.
    pub fn prometheus_text(&self) -> String {
        prometheus_text(&self.hub.core.stats(), Some(&self.stats()))
    }

    /// A snapshot of the bridge's counters.
    pub fn stats(&self) -> BridgeStats {
        self.hub.counters.snapshot(self.hub.client_count())
    }

    /// Stops the bridge: new upgrades get 503, and every client is sent what was already
    /// queued for it, then a close frame (1001) whose reason carries its resume point. Call it
    /// before shutting the server down so browsers reconnect where they left off.
    pub fn close(&self) {
        self.hub.close();
    }

    /// Whether [`close`](Self::close) was called.
    pub fn is_closed(&self) -> bool {
        self.hub.is_closed()
    }
}

/// A router with the bridge of `bus` mounted at the configured path: the same as
/// `Bridge::new(bus, config).router()`.
pub fn router(bus: &BusCore, config: BridgeConfig) -> Router {
    Bridge::new(bus, config).router()
}

/// Serves the bridge of `bus` on its own: binds `addr` and runs until the listener fails.
/// Accepted connections get `TCP_NODELAY` (as Node's http server does by default): without
/// it, a frame written while the previous one is unacknowledged waits for the client's
/// delayed ACK, up to 40 ms on Linux. An app that serves `router()` itself should do the same
/// (`axum::serve::ListenerExt::tap_io`).
///
/// ```no_run
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
/// let core = eventbus_runtime::BusCore::new(manifest);
/// let config = eventbus_runtime::bridge::BridgeConfig::new("s3cret");
/// eventbus_runtime::bridge::serve("127.0.0.1:8080", &core, config).await
/// # }
/// ```
pub async fn serve(
    addr: impl tokio::net::ToSocketAddrs,
    bus: &BusCore,
    config: BridgeConfig,
) -> std::io::Result<()> {
    let listener = tokio::net::TcpListener::bind(addr).await?.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    axum::serve(listener, router(bus, config)).await
}

/// The bridge's reading of one client text frame, for `crate::__fuzz::bridge_frame`: the
/// envelope; on refusal, the error frame's data (which must be JSON); on success, an `auth`
/// frame's token, resume point and history, and the payload handed to `payload`.
pub(crate) fn fuzz_frame(text: &str, payload: fn(&str)) {
    // The id a rate-limit refusal quotes.
    let _ = serde_json::from_str::<serde_json::Value>(text)
        .ok()
        .and_then(|v| {
            v.get("id")
                .and_then(serde_json::Value::as_str)
                .map(str::to_owned)
        });
    match frame::parse(text) {
        Err(refusal) => {
            let data = frame::error_data(&refusal);
            serde_json::from_str::<serde_json::Value>(&data).expect("an error frame is JSON");
        }
        Ok(event) => {
            assert!(!event.id.is_empty() && !event.kind.is_empty());
            // `data` is only checked to be JSON text up to string escapes: a lone surrogate
            // (`"\\ud800"`) passes the envelope and is refused by the payload's decoder
            // (`invalid_payload`), or fails the `auth` frame.
            let Ok(data) = serde_json::from_str::<serde_json::Value>(event.data) else {
                payload(event.data);
                return;
            };
            if event.kind == frame::AUTH {
                let _ = data.get("token").and_then(serde_json::Value::as_str);
                if let Some(start) = start::StartRequest::from_auth(&data) {
                    for n in [start.since, start.history].into_iter().flatten() {
                        assert_eq!(frame::parse_sequence(&frame::sequence_text(n)), Some(n));
                    }
                    assert!(start.history(DEFAULT_MAX_HISTORY) <= DEFAULT_MAX_HISTORY);
                }
            }
            payload(event.data);
        }
    }
}
