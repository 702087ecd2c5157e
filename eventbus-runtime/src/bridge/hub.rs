//! The hub: connected clients, the listeners that feed them, and the store's tail.
//!
//! Events that are not stored are serialised once by their listener and queued for every
//! client. Events that are stored take another way, so that clients get them in sequence
//! order whatever the emitting threads do: their listener only triggers a read of the store
//! after the hub's cursor, under the hub's lock, and the records read are queued in order.
//! Each client's queue is bounded: a client whose queue is full is dropped from the hub, and
//! its connection closes with its resume point once it has sent what was queued.

use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU8, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};

use axum::extract::ws::Utf8Bytes;
use tokio::sync::mpsc;

use super::config::BridgeConfig;
use super::frame::{self, Envelope};
use super::stats::Counters;
use crate::bus::{BusCore, JsonObserver};
use crate::meta::EventMeta;
use crate::subscription::Subscription;
use crate::timestamp::Timestamp;

/// The label of the listeners the bridge adds.
pub(crate) const LABEL: &str = "eventbus-bridge";

/// Records per read of the store.
#[cfg(feature = "store")]
pub(crate) const PAGE: usize = 256;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A frame queued for a client.
#[derive(Debug, Clone)]
pub(crate) struct Outgoing {
    pub(crate) text: Utf8Bytes,
    /// The store sequence of a persisted event.
    pub(crate) sequence: Option<u64>,
}

/// Why the hub let go of a client (read by its connection when its queue ends).
pub(crate) mod end {
    /// Still connected.
    pub(crate) const NONE: u8 = 0;
    /// Its queue was full.
    pub(crate) const TOO_SLOW: u8 = 1;
    /// The bridge was closed.
    pub(crate) const SHUT_DOWN: u8 = 2;
}

struct Client {
    tx: mpsc::Sender<Outgoing>,
    end: Arc<AtomicU8>,
}

#[derive(Default)]
struct State {
    clients: HashMap<u64, Client>,
    next_client: u64,
    /// The last store sequence already queued for the clients (valid while there are some).
    #[cfg_attr(not(feature = "store"), allow(dead_code))]
    cursor: u64,
    cursor_valid: bool,
    closed: bool,
}

/// What a new connection gets from [`Hub::register`].
pub(crate) struct Registration {
    pub(crate) id: u64,
    pub(crate) rx: mpsc::Receiver<Outgoing>,
    pub(crate) end: Arc<AtomicU8>,
    /// The store sequence after which its live stream starts (`None` without a store).
    pub(crate) start: Option<u64>,
}

/// Why a connection could not be registered.
#[derive(Debug)]
pub(crate) enum RegisterError {
    Closed,
    #[cfg_attr(not(feature = "store"), allow(dead_code))]
    Store(String),
}

/// The shared state of one bridge.
pub(crate) struct Hub {
    pub(crate) core: BusCore,
    pub(crate) config: BridgeConfig,
    pub(crate) source: String,
    /// `<package>.`
    pub(crate) prefix: String,
    #[cfg(feature = "store")]
    pub(crate) store: Option<Arc<dyn crate::store::EventStore>>,
    /// The `to_ui` events whose live feed is the store (persisted, and the bus has a store).
    #[cfg_attr(not(feature = "store"), allow(dead_code))]
    pub(crate) stored_events: Vec<&'static str>,
    state: Mutex<State>,
    clients: AtomicUsize,
    /// Open WebSocket connections, authenticated or not (`max_connections`).
    pub(crate) open: AtomicUsize,
    subscriptions: Mutex<Vec<Subscription>>,
    pub(crate) counters: Counters,
    boot: u64,
    next_id: AtomicU64,
}

impl Hub {
    pub(crate) fn new(core: &BusCore, config: BridgeConfig) -> Arc<Hub> {
        let manifest = core.manifest();
        #[cfg(feature = "store")]
        let store = core.event_store();
        #[cfg(feature = "store")]
        let has_store = store.is_some();
        #[cfg(feature = "store")]
        let stored = move |meta: &EventMeta| meta.persist && has_store;
        #[cfg(not(feature = "store"))]
        let stored = |_: &EventMeta| false;
        let ui: Vec<&'static EventMeta> = manifest.events.iter().filter(|e| e.ui.to_ui()).collect();
        let hub = Arc::new(Hub {
            core: core.clone(),
            source: config
                .source
                .clone()
                .unwrap_or_else(|| format!("/{}", manifest.package)),
            prefix: format!("{}.", manifest.package),
            config,
            stored_events: ui.iter().filter(|e| stored(e)).map(|e| e.name).collect(),
            #[cfg(feature = "store")]
            store,
            state: Mutex::new(State::default()),
            clients: AtomicUsize::new(0),
            open: AtomicUsize::new(0),
            subscriptions: Mutex::new(Vec::new()),
            counters: Counters::default(),
            boot: std::collections::hash_map::RandomState::new()
                .build_hasher()
                .finish(),
            next_id: AtomicU64::new(1),
        });
        let mut subscriptions = Vec::new();
        for meta in ui {
            // Events of the manifest that this bus does not have (a subset module) are skipped.
            let Ok(event) = core.find(meta.name) else {
                continue;
            };
            let weak = Arc::downgrade(&hub);
            let observer: JsonObserver = if stored(meta) {
                Arc::new(move |_serialise| {
                    if let Some(hub) = weak.upgrade() {
                        hub.pump();
                    }
                    Ok(())
                })
            } else {
                Arc::new(move |serialise| live(&weak, meta, serialise))
            };
            subscriptions.push(event.observe(LABEL, observer));
        }
        *lock(&hub.subscriptions) = subscriptions;
        hub
    }

    /// A fresh frame id: unique within this process (a random boot prefix and a counter).
    pub(crate) fn next_id(&self) -> String {
        let n = self.next_id.fetch_add(1, Ordering::Relaxed);
        format!("{:016x}-{n}", self.boot)
    }

    /// A control frame (welcome, ack, error) with `data`.
    pub(crate) fn control(&self, kind: &str, data: &str) -> String {
        let id = self.next_id();
        let envelope = Envelope {
            id: &id,
            source: &self.source,
            kind,
            time: Timestamp::now(),
        };
        frame::write(&envelope, None, Some(data))
    }

    /// The frame of a stored event.
    #[cfg(feature = "store")]
    pub(crate) fn stored_frame(&self, record: &crate::store::StoredEvent) -> Outgoing {
        let id = record.id.to_string();
        let kind = format!("{}{}", self.prefix, record.event);
        let envelope = Envelope {
            id: &id,
            source: &self.source,
            kind: &kind,
            time: record.time,
        };
        let has_payload = self
            .core
            .manifest()
            .event(&record.event)
            .is_some_and(|meta| meta.payload.is_some());
        let data = has_payload.then(|| record.payload.to_string());
        Outgoing {
            text: frame::write(&envelope, Some(record.sequence), data.as_deref()).into(),
            sequence: Some(record.sequence),
        }
    }

    /// Adds a client. Its live stream starts after the hub's cursor.
    pub(crate) fn register(&self) -> Result<Registration, RegisterError> {
        let mut state = lock(&self.state);
        if state.closed {
            return Err(RegisterError::Closed);
        }
        #[cfg(feature = "store")]
        if let Some(store) = &self.store
            && !state.cursor_valid
        {
            state.cursor = store
                .last_sequence()
                .map_err(|e| RegisterError::Store(e.to_string()))?;
            state.cursor_valid = true;
        }
        let (tx, rx) = mpsc::channel(self.config.queue);
        let end = Arc::new(AtomicU8::new(end::NONE));
        let id = state.next_client;
        state.next_client += 1;
        state.clients.insert(
            id,
            Client {
                tx,
                end: end.clone(),
            },
        );
        self.clients.store(state.clients.len(), Ordering::Release);
        #[cfg(feature = "store")]
        let start = self.store.as_ref().map(|_| state.cursor);
        #[cfg(not(feature = "store"))]
        let start = None;
        Ok(Registration { id, rx, end, start })
    }

    /// Removes a client (its connection ended).
    pub(crate) fn unregister(&self, id: u64) {
        let mut state = lock(&self.state);
        state.clients.remove(&id);
        if state.clients.is_empty() {
            // Nobody follows the store's tail now: re-read the position for the next client.
            state.cursor_valid = false;
        }
        self.clients.store(state.clients.len(), Ordering::Release);
    }

    /// Whether the bridge was closed.
    pub(crate) fn is_closed(&self) -> bool {
        lock(&self.state).closed
    }

    /// Closes the bridge: new connections are refused; every client gets what was queued for
    /// it, then a close frame (1001) with its resume point.
    pub(crate) fn close(&self) {
        let mut state = lock(&self.state);
        state.closed = true;
        for (_, client) in state.clients.drain() {
            client.end.store(end::SHUT_DOWN, Ordering::Release);
        }
        self.clients.store(0, Ordering::Release);
    }

    /// The number of connected clients.
    pub(crate) fn client_count(&self) -> usize {
        self.clients.load(Ordering::Acquire)
    }

    /// Queues `frame` for every client; drops the clients whose queue is full.
    fn broadcast(&self, state: &mut State, frame: &Outgoing) {
        let counters = &self.counters;
        state
            .clients
            .retain(|_, client| match client.tx.try_send(frame.clone()) {
                Ok(()) => true,
                Err(mpsc::error::TrySendError::Full(_)) => {
                    client.end.store(end::TOO_SLOW, Ordering::Release);
                    counters.slow.fetch_add(1, Ordering::Relaxed);
                    false
                }
                Err(mpsc::error::TrySendError::Closed(_)) => false,
            });
        if state.clients.is_empty() {
            state.cursor_valid = false;
        }
        self.clients.store(state.clients.len(), Ordering::Release);
    }

    /// Queues every stored `to_ui` event after the cursor, in sequence order.
    fn pump(&self) {
        #[cfg(feature = "store")]
        {
            let Some(store) = &self.store else { return };
            if self.client_count() == 0 {
                return;
            }
            let mut state = lock(&self.state);
            while state.cursor_valid && !state.clients.is_empty() {
                let query = crate::store::Query::new()
                    .events(self.stored_events.iter().copied())
                    .after(state.cursor)
                    .limit(PAGE);
                let records = match store.query(&query) {
                    Ok(records) => records,
                    Err(error) => {
                        self.counters.store_errors.fetch_add(1, Ordering::Relaxed);
                        report(&format!(
                            "the bridge could not read the event store ({error}); clients get \
                             the stored events with the next one"
                        ));
                        return;
                    }
                };
                let count = records.len();
                for record in &records {
                    let frame = self.stored_frame(record);
                    state.cursor = record.sequence;
                    self.broadcast(&mut state, &frame);
                }
                if count < PAGE {
                    return;
                }
            }
        }
    }

    /// Unsubscribes the bridge's listeners.
    fn detach(&self) {
        for subscription in lock(&self.subscriptions).drain(..) {
            subscription.unsubscribe();
        }
    }
}

impl Drop for Hub {
    fn drop(&mut self) {
        self.detach();
    }
}

/// The listener of an event whose live feed is not the store: serialise once, queue for all.
fn live(
    hub: &Weak<Hub>,
    meta: &'static EventMeta,
    serialise: &dyn Fn() -> serde_json::Result<String>,
) -> serde_json::Result<()> {
    let Some(hub) = hub.upgrade() else {
        return Ok(());
    };
    if hub.client_count() == 0 {
        return Ok(());
    }
    let data = match meta.payload {
        Some(_) => Some(serialise()?),
        None => None,
    };
    let id = hub.next_id();
    let kind = format!("{}{}", hub.prefix, meta.name);
    let envelope = Envelope {
        id: &id,
        source: &hub.source,
        kind: &kind,
        time: Timestamp::now(),
    };
    let frame = Outgoing {
        text: frame::write(&envelope, None, data.as_deref()).into(),
        sequence: None,
    };
    let mut state = lock(&hub.state);
    hub.broadcast(&mut state, &frame);
    Ok(())
}

/// Reports a problem of the bridge itself (not of a client).
pub(crate) fn report(message: &str) {
    #[cfg(feature = "tracing")]
    if tracing::dispatcher::has_been_set() {
        tracing::error!(target: "eventbus::bridge", "{message}");
        return;
    }
    eprintln!("eventbus: {message}");
}
