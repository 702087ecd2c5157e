//! Counters per event, their `metrics` handles, and the `stats()` snapshot.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::breaker::CircuitState;

/// What is counted per event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stat {
    Emitted,
    Delivered,
    Failed,
    Retried,
    DeadLettered,
    Rejected,
    Suppressed,
    Lagged,
}

impl Stat {
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    const ALL: [Stat; 8] = [
        Stat::Emitted,
        Stat::Delivered,
        Stat::Failed,
        Stat::Retried,
        Stat::DeadLettered,
        Stat::Rejected,
        Stat::Suppressed,
        Stat::Lagged,
    ];

    /// The `metrics` counter name.
    #[cfg_attr(not(feature = "metrics"), allow(dead_code))]
    pub(crate) const fn metric(self) -> &'static str {
        match self {
            Stat::Emitted => "eventbus_events_emitted_total",
            Stat::Delivered => "eventbus_events_delivered_total",
            Stat::Failed => "eventbus_handler_failures_total",
            Stat::Retried => "eventbus_handler_retries_total",
            Stat::DeadLettered => "eventbus_dead_lettered_total",
            Stat::Rejected => "eventbus_events_rejected_total",
            Stat::Suppressed => "eventbus_events_suppressed_total",
            Stat::Lagged => "eventbus_stream_lagged_total",
        }
    }
}

/// Metric names, for dashboards and alerts. Every metric has the label `event` (the manifest
/// name); the handler histogram also has `handler` (its label).
pub mod metric_names {
    /// Counter: emits accepted by the bus (instrumented buses only).
    pub const EMITTED: &str = "eventbus_events_emitted_total";
    /// Counter: successful handler calls (instrumented buses, async and batch handlers).
    pub const DELIVERED: &str = "eventbus_events_delivered_total";
    /// Counter: failed handler calls, every attempt counted.
    pub const FAILED: &str = "eventbus_handler_failures_total";
    /// Counter: retries scheduled.
    pub const RETRIED: &str = "eventbus_handler_retries_total";
    /// Counter: letters pushed to the dead-letter queue.
    pub const DEAD_LETTERED: &str = "eventbus_dead_lettered_total";
    /// Counter: emits refused (after shutdown) or dropped by a full rate-limit queue.
    pub const REJECTED: &str = "eventbus_events_rejected_total";
    /// Counter: events superseded by a later one under `throttle` or `debounce`, by design.
    pub const SUPPRESSED: &str = "eventbus_events_suppressed_total";
    /// Counter: events a slow `subscribe()` stream skipped (its consumer saw `Lagged`).
    pub const LAGGED: &str = "eventbus_stream_lagged_total";
    /// Histogram (seconds): handler call duration (instrumented buses only), labels `event`
    /// and `handler`.
    pub const HANDLER_DURATION: &str = "eventbus_handler_duration_seconds";
    /// Gauge: listeners subscribed to the event.
    pub const LISTENERS: &str = "eventbus_listeners";
    /// Gauge: letters in the dead-letter queue (no labels).
    pub const DEAD_LETTERS: &str = "eventbus_dead_letters";
    /// Counter: letters evicted from a full dead-letter queue (no labels).
    pub const DEAD_LETTERS_EVICTED: &str = "eventbus_dead_letters_evicted_total";
}

/// The counters of one event, with their `metrics` handles (registered when the event is
/// created, so install a recorder before building the bus). `emitted` and `delivered` are only
/// registered and counted on instrumented buses.
pub(crate) struct EventCounters {
    values: [AtomicU64; 8],
    #[cfg(feature = "metrics")]
    handles: Option<[metrics::Counter; 8]>,
}

impl EventCounters {
    pub(crate) fn new(event: &'static str, instrumented: bool) -> Self {
        #[cfg(not(feature = "metrics"))]
        let _ = (event, instrumented);
        EventCounters {
            values: Default::default(),
            #[cfg(feature = "metrics")]
            handles: Some(Stat::ALL.map(|stat| {
                if instrumented || !matches!(stat, Stat::Emitted | Stat::Delivered) {
                    metrics::counter!(stat.metric(), "event" => event)
                } else {
                    metrics::Counter::noop()
                }
            })),
        }
    }

    pub(crate) fn add(&self, stat: Stat, n: u64) {
        self.values[stat as usize].fetch_add(n, Ordering::Relaxed);
        #[cfg(feature = "metrics")]
        if let Some(handles) = &self.handles {
            handles[stat as usize].increment(n);
        }
    }

    pub(crate) fn get(&self, stat: Stat) -> u64 {
        self.values[stat as usize].load(Ordering::Relaxed)
    }
}

/// A snapshot of a bus's counters, from [`BusCore::stats`](crate::BusCore::stats).
///
/// ```
/// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32")), ("pong", Some("u32"))]);
/// use eventbus_runtime::{BusCore, Event};
///
/// let core = BusCore::new(manifest);
/// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
/// let _pong: Event<u32> = Event::new(&core, manifest.event("pong").unwrap());
/// ping.on(|_| Err::<(), _>("down"));
/// ping.emit(1);
/// core.close();
///
/// let stats = core.stats();
/// let names: Vec<_> = stats.events.iter().map(|e| e.event).collect();
/// assert_eq!(names, ["ping", "pong"]);
/// assert!(!stats.instrumented);
/// assert_eq!((stats.dead_letters, stats.dead_letters_evicted, stats.shut_down), (1, 0, true));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct BusStats {
    /// Whether emits, deliveries and handler latencies are counted (see
    /// [`BusBuilder::instrument`](crate::BusBuilder::instrument)); `emitted` and `delivered`
    /// stay 0 otherwise. Failures, retries, dead letters, rejections, suppressions and lag are
    /// always counted.
    pub instrumented: bool,
    /// One entry per event, in manifest order.
    pub events: Vec<EventStats>,
    /// Letters in the dead-letter queue now.
    pub dead_letters: usize,
    /// Letters evicted from the full dead-letter queue since the bus was built.
    pub dead_letters_evicted: u64,
    /// Whether the bus is shut down.
    pub shut_down: bool,
}

impl BusStats {
    /// The entry of the event with this manifest name.
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::{BusCore, Event};
    ///
    /// let core = BusCore::new(manifest);
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// ping.on(|_| ());
    /// let stats = core.stats();
    /// assert_eq!(stats.event("ping").unwrap().listeners, 1);
    /// assert!(stats.event("pong").is_none());
    /// ```
    pub fn event(&self, name: &str) -> Option<&EventStats> {
        self.events.iter().find(|e| e.event == name)
    }
}

/// The counters of one event. See [`metric_names`] for what each one counts.
///
/// ```
/// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
/// use eventbus_runtime::{BusCore, Event};
///
/// let core = BusCore::new(manifest); // not instrumented: `emitted` and `delivered` stay 0
/// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
/// ping.on(|_| ());
/// ping.on(|n| if *n > 1 { Err("too big") } else { Ok(()) });
/// for n in 1..=3 {
///     ping.emit(n);
/// }
/// let stats = core.stats();
/// let ping = stats.event("ping").unwrap();
/// assert_eq!((ping.listeners, ping.emitted, ping.delivered), (2, 0, 0));
/// assert_eq!((ping.failed, ping.retried, ping.dead_lettered), (2, 0, 2));
/// assert_eq!((ping.rejected, ping.suppressed, ping.lagged), (0, 0, 0));
/// assert_eq!(ping.handlers.len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct EventStats {
    /// The event's manifest name.
    pub event: &'static str,
    /// Listeners subscribed now.
    pub listeners: usize,
    /// Emits accepted (instrumented buses only).
    pub emitted: u64,
    /// Successful handler calls (instrumented buses only).
    pub delivered: u64,
    /// Failed handler calls, every attempt counted.
    pub failed: u64,
    /// Retries scheduled.
    pub retried: u64,
    /// Letters pushed to the dead-letter queue.
    pub dead_lettered: u64,
    /// Emits refused after shutdown or dropped by a full rate-limit queue (also dead-lettered).
    pub rejected: u64,
    /// Events superseded under `throttle` / `debounce`, by design.
    pub suppressed: u64,
    /// Events skipped by slow `subscribe()` streams.
    pub lagged: u64,
    /// Per handler, in subscription order.
    pub handlers: Vec<HandlerStats>,
}

/// The counters of one handler.
///
/// ```
/// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
/// use eventbus_runtime::{BusCore, Event};
///
/// let core = BusCore::builder(manifest).instrument(true).build().unwrap();
/// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
/// ping.on_labeled("picky", |n| if *n == 2 { Err("two") } else { Ok(()) });
/// for n in 1..=3 {
///     ping.emit(n);
/// }
/// let stats = core.stats();
/// let handler = &stats.event("ping").unwrap().handlers[0];
/// assert_eq!(handler.label, "picky");
/// assert_eq!((handler.delivered, handler.failed, handler.circuit), (2, 1, None));
/// ```
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct HandlerStats {
    /// Its label (`"handler #1"` unless given one).
    pub label: String,
    /// Successful calls (instrumented buses only).
    pub delivered: u64,
    /// Failed calls.
    pub failed: u64,
    /// Its circuit breaker's state, if it has one.
    pub circuit: Option<CircuitState>,
}

impl EventStats {
    pub(crate) fn new(event: &'static str, counters: &EventCounters, listeners: usize) -> Self {
        EventStats {
            event,
            listeners,
            emitted: counters.get(Stat::Emitted),
            delivered: counters.get(Stat::Delivered),
            failed: counters.get(Stat::Failed),
            retried: counters.get(Stat::Retried),
            dead_lettered: counters.get(Stat::DeadLettered),
            rejected: counters.get(Stat::Rejected),
            suppressed: counters.get(Stat::Suppressed),
            lagged: counters.get(Stat::Lagged),
            handlers: Vec::new(),
        }
    }
}
