//! The bridge's counters, and the Prometheus text format of them and of the bus's stats.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

use super::frame::ErrorCode;
use crate::stats::BusStats;

/// Counters updated by connections.
#[derive(Default)]
pub(crate) struct Counters {
    pub(crate) connections: AtomicU64,
    pub(crate) refused_origin: AtomicU64,
    pub(crate) refused_token: AtomicU64,
    pub(crate) refused_other: AtomicU64,
    pub(crate) refused_busy: AtomicU64,
    pub(crate) auth_failures: AtomicU64,
    pub(crate) frames_in: AtomicU64,
    pub(crate) frames_out: AtomicU64,
    pub(crate) accepted: AtomicU64,
    pub(crate) errors: [AtomicU64; ErrorCode::ALL.len()],
    pub(crate) slow: AtomicU64,
    pub(crate) resumed: AtomicU64,
    pub(crate) history: AtomicU64,
    pub(crate) replayed: AtomicU64,
    pub(crate) store_errors: AtomicU64,
}

impl Counters {
    pub(crate) fn error(&self, code: ErrorCode) {
        let index = ErrorCode::ALL
            .iter()
            .position(|c| *c == code)
            .expect("every code is listed");
        self.errors[index].fetch_add(1, Ordering::Relaxed);
    }

    pub(crate) fn snapshot(&self, clients: usize) -> BridgeStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        BridgeStats {
            clients,
            connections: get(&self.connections),
            refused_origin: get(&self.refused_origin),
            refused_token: get(&self.refused_token),
            refused_other: get(&self.refused_other),
            refused_busy: get(&self.refused_busy),
            auth_failures: get(&self.auth_failures),
            frames_received: get(&self.frames_in),
            frames_sent: get(&self.frames_out),
            accepted: get(&self.accepted),
            errors: ErrorCode::ALL
                .iter()
                .zip(&self.errors)
                .map(|(code, n)| (*code, get(n)))
                .collect(),
            too_slow: get(&self.slow),
            resumed: get(&self.resumed),
            history: get(&self.history),
            replayed: get(&self.replayed),
            store_errors: get(&self.store_errors),
        }
    }
}

/// A snapshot of a bridge's counters, from [`Bridge::stats`](super::Bridge::stats).
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct BridgeStats {
    /// Clients receiving live events now.
    pub clients: usize,
    /// Connections accepted since the bridge was created (upgraded and authenticated).
    pub connections: u64,
    /// Upgrades refused for their `Origin` (403).
    pub refused_origin: u64,
    /// Upgrades refused for a missing or wrong token (401).
    pub refused_token: u64,
    /// Upgrades refused otherwise (no subprotocol, bad `since`, bridge closed).
    pub refused_other: u64,
    /// Upgrades refused because [`max_connections`](super::BridgeConfig::max_connections)
    /// were open (503).
    pub refused_busy: u64,
    /// Connections closed because their first-frame authentication failed (4001).
    pub auth_failures: u64,
    /// Data frames received from clients.
    pub frames_received: u64,
    /// Frames sent to clients (events and control frames).
    pub frames_sent: u64,
    /// Client events accepted and emitted on the bus.
    pub accepted: u64,
    /// Error frames sent, per code.
    pub errors: Vec<(ErrorCode, u64)>,
    /// Clients disconnected because their queue was full (4008).
    pub too_slow: u64,
    /// Connections that resumed from a sequence number.
    pub resumed: u64,
    /// Connections without a resume point that were sent recent stored events (`history=N`).
    pub history: u64,
    /// Stored events sent from the store to resuming clients and as history.
    pub replayed: u64,
    /// Failed reads of the event store.
    pub store_errors: u64,
}

impl BridgeStats {
    /// Error frames sent with this code.
    pub fn errors_of(&self, code: ErrorCode) -> u64 {
        self.errors
            .iter()
            .find(|(c, _)| *c == code)
            .map_or(0, |(_, n)| *n)
    }
}

fn escape(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
}

/// The bus's [`BusStats`] (and a bridge's [`BridgeStats`]) in the Prometheus text exposition
/// format (version 0.0.4), with the metric names of
/// [`metric_names`](crate::metric_names) plus `eventbus_bridge_*`.
///
/// ```
/// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
/// use eventbus_runtime::{BusCore, Event, bridge};
///
/// let core = BusCore::builder(manifest).instrument(true).build().unwrap();
/// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
/// ping.on(|_| ());
/// ping.emit(1);
/// let text = bridge::prometheus_text(&core.stats(), None);
/// assert!(text.contains("eventbus_events_emitted_total{event=\"ping\"} 1\n"));
/// assert!(text.contains("eventbus_listeners{event=\"ping\"} 1\n"));
/// ```
pub fn prometheus_text(stats: &BusStats, bridge: Option<&BridgeStats>) -> String {
    let mut out = String::new();
    type Field = fn(&crate::stats::EventStats) -> u64;
    let per_event: [(&str, &str, &str, Field); 9] = [
        (
            crate::metric_names::EMITTED,
            "counter",
            "Emits accepted by the bus (instrumented buses only).",
            |e| e.emitted,
        ),
        (
            crate::metric_names::DELIVERED,
            "counter",
            "Successful handler calls (instrumented buses only).",
            |e| e.delivered,
        ),
        (
            crate::metric_names::FAILED,
            "counter",
            "Failed handler calls, every attempt counted.",
            |e| e.failed,
        ),
        (
            crate::metric_names::RETRIED,
            "counter",
            "Retries scheduled.",
            |e| e.retried,
        ),
        (
            crate::metric_names::DEAD_LETTERED,
            "counter",
            "Letters pushed to the dead-letter queue.",
            |e| e.dead_lettered,
        ),
        (
            crate::metric_names::REJECTED,
            "counter",
            "Emits refused after shutdown or dropped by a full rate-limit queue.",
            |e| e.rejected,
        ),
        (
            crate::metric_names::SUPPRESSED,
            "counter",
            "Events superseded under throttle or debounce.",
            |e| e.suppressed,
        ),
        (
            crate::metric_names::LAGGED,
            "counter",
            "Events skipped by slow subscribe() streams.",
            |e| e.lagged,
        ),
        (
            crate::metric_names::LISTENERS,
            "gauge",
            "Listeners subscribed to the event.",
            |e| e.listeners as u64,
        ),
    ];
    for (name, kind, help, field) in per_event {
        family(&mut out, name, kind, help);
        for event in &stats.events {
            let _ = writeln!(
                out,
                "{name}{{event=\"{}\"}} {}",
                escape(event.event),
                field(event)
            );
        }
    }
    family(
        &mut out,
        crate::metric_names::DEAD_LETTERS,
        "gauge",
        "Letters in the dead-letter queue.",
    );
    let _ = writeln!(
        out,
        "{} {}",
        crate::metric_names::DEAD_LETTERS,
        stats.dead_letters
    );
    family(
        &mut out,
        crate::metric_names::DEAD_LETTERS_EVICTED,
        "counter",
        "Letters evicted from the full dead-letter queue.",
    );
    let _ = writeln!(
        out,
        "{} {}",
        crate::metric_names::DEAD_LETTERS_EVICTED,
        stats.dead_letters_evicted
    );
    if let Some(bridge) = bridge {
        let simple: [(&str, &str, &str, u64); 11] = [
            (
                "eventbus_bridge_clients",
                "gauge",
                "WebSocket clients receiving live events.",
                bridge.clients as u64,
            ),
            (
                "eventbus_bridge_connections_total",
                "counter",
                "Connections accepted (upgraded and authenticated).",
                bridge.connections,
            ),
            (
                "eventbus_bridge_auth_failures_total",
                "counter",
                "Connections closed because their first-frame authentication failed.",
                bridge.auth_failures,
            ),
            (
                "eventbus_bridge_frames_received_total",
                "counter",
                "Data frames received from clients.",
                bridge.frames_received,
            ),
            (
                "eventbus_bridge_frames_sent_total",
                "counter",
                "Frames sent to clients.",
                bridge.frames_sent,
            ),
            (
                "eventbus_bridge_events_accepted_total",
                "counter",
                "Client events accepted and emitted on the bus.",
                bridge.accepted,
            ),
            (
                "eventbus_bridge_too_slow_total",
                "counter",
                "Clients disconnected because their queue was full.",
                bridge.too_slow,
            ),
            (
                "eventbus_bridge_resumed_total",
                "counter",
                "Connections that resumed from a sequence number.",
                bridge.resumed,
            ),
            (
                "eventbus_bridge_history_total",
                "counter",
                "Connections without a resume point sent recent stored events (history=N).",
                bridge.history,
            ),
            (
                "eventbus_bridge_replayed_total",
                "counter",
                "Stored events sent to resuming clients and as history.",
                bridge.replayed,
            ),
            (
                "eventbus_bridge_store_errors_total",
                "counter",
                "Failed reads of the event store.",
                bridge.store_errors,
            ),
        ];
        for (name, kind, help, value) in simple {
            family(&mut out, name, kind, help);
            let _ = writeln!(out, "{name} {value}");
        }
        let name = "eventbus_bridge_upgrades_refused_total";
        family(
            &mut out,
            name,
            "counter",
            "Upgrade requests refused, by reason.",
        );
        for (reason, value) in [
            ("origin", bridge.refused_origin),
            ("token", bridge.refused_token),
            ("other", bridge.refused_other),
            ("busy", bridge.refused_busy),
        ] {
            let _ = writeln!(out, "{name}{{reason=\"{reason}\"}} {value}");
        }
        let name = "eventbus_bridge_errors_total";
        family(&mut out, name, "counter", "Error frames sent, by code.");
        for (code, value) in &bridge.errors {
            let _ = writeln!(out, "{name}{{code=\"{}\"}} {value}", code.as_str());
        }
    }
    out
}
