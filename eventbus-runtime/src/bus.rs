//! `BusCore`: the state one generated `EventBus` shares between its events.

use std::fmt;
use std::sync::{Arc, Mutex, PoisonError};

use arc_swap::ArcSwap;

use crate::error::DispatchError;
use crate::handler::{FailureSink, HandlerFailure};
use crate::meta::{EventMeta, ManifestMeta};

/// An event with its payload type erased, so layers can work by name (bridge, store, NATS).
pub(crate) trait ErasedEvent: Send + Sync {
    fn meta(&self) -> &'static EventMeta;
    fn emit_json(&self, json: &str) -> Result<(), DispatchError>;
}

/// The shared core of a bus: its manifest, its events by name, and where handler failures go.
///
/// A generated `EventBus` holds one `BusCore` and creates each of its events with
/// [`Event::new`](crate::Event::new) / [`Signal::new`](crate::Signal::new), which register
/// themselves here. Cloning is cheap; clones share everything.
#[derive(Clone)]
pub struct BusCore {
    inner: Arc<CoreInner>,
}

struct CoreInner {
    manifest: &'static ManifestMeta,
    failures: Arc<FailureSink>,
    /// Read lock-free by `emit_json`; copied on registration (rare: once per event and bus).
    registry: ArcSwap<Vec<Arc<dyn ErasedEvent>>>,
    register_lock: Mutex<()>,
}

impl BusCore {
    /// Creates an empty core for a bus built from `manifest`.
    pub fn new(manifest: &'static ManifestMeta) -> BusCore {
        BusCore {
            inner: Arc::new(CoreInner {
                manifest,
                failures: Arc::default(),
                registry: ArcSwap::from_pointee(Vec::new()),
                register_lock: Mutex::new(()),
            }),
        }
    }

    /// The manifest this bus was generated from.
    pub fn manifest(&self) -> &'static ManifestMeta {
        self.inner.manifest
    }

    /// Emits an event given by name, with its payload as JSON: the JSON is deserialised into
    /// the event's payload type and emitted exactly as [`Event::emit`](crate::Event::emit)
    /// would.
    ///
    /// For an event without payload (a [`Signal`](crate::Signal)) the JSON must be `null` or
    /// `{}` (surrounding whitespace allowed); anything else, including an empty string, is an
    /// error.
    ///
    /// Returns `Ok` once the handlers ran, whether or not they failed: handler failures go to
    /// the failure observer (see [`on_failure`](Self::on_failure)). On `Err` nothing was
    /// emitted.
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("chainSync", Some("ChainSync"))]);
    /// use eventbus_runtime::{BusCore, DispatchError, Event};
    ///
    /// #[derive(Clone, serde::Serialize, serde::Deserialize)]
    /// struct ChainSync { network: String, peers: u32 }
    ///
    /// let core = BusCore::new(manifest);
    /// let chain_sync: Event<ChainSync> = Event::new(&core, manifest.event("chainSync").unwrap());
    /// chain_sync.on(|e| assert_eq!(e.peers, 12));
    ///
    /// core.emit_json("chainSync", r#"{"network": "mainnet", "peers": 12}"#).unwrap();
    ///
    /// let err = core.emit_json("chainSync", r#"{"network": "mainnet", "peers": -1}"#).unwrap_err();
    /// assert!(matches!(err, DispatchError::InvalidPayload { ref path, .. } if path == "$.peers"));
    ///
    /// let err = core.emit_json("chainsync", "{}").unwrap_err();
    /// assert!(err.to_string().contains("did you mean `chainSync`?"));
    /// ```
    pub fn emit_json(&self, name: &str, json: &str) -> Result<(), DispatchError> {
        let event = {
            let registry = self.inner.registry.load();
            match registry.iter().find(|e| e.meta().name == name) {
                Some(event) => event.clone(),
                None => {
                    let known = registry.iter().map(|e| e.meta().name).collect();
                    return Err(DispatchError::unknown_event(name, known));
                }
            }
        };
        event.emit_json(json)
    }

    /// Sets the observer of handler failures: every handler that returns `Err` or panics, on
    /// any event of this bus, is reported to `observer` once, on the emitting thread, after the
    /// handler returned. Replaces the previous observer.
    ///
    /// Without an observer each failure is written to stderr, so failures are never silently
    /// lost. A panic in the observer is caught and written to stderr as well.
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::{BusCore, Event};
    /// use std::sync::{Arc, Mutex};
    ///
    /// let core = BusCore::new(manifest);
    /// let failures = Arc::new(Mutex::new(Vec::new()));
    /// let log = failures.clone();
    /// core.on_failure(move |failure| log.lock().unwrap().push(failure.to_string()));
    ///
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// ping.on(|n| if *n > 9 { Err(format!("{n} is too big")) } else { Ok(()) });
    /// ping.emit(10);
    /// assert_eq!(
    ///     failures.lock().unwrap().as_slice(),
    ///     ["handler #1 of event `ping` failed (attempt 1): 10 is too big"]
    /// );
    /// ```
    pub fn on_failure(&self, observer: impl Fn(&HandlerFailure) + Send + Sync + 'static) {
        self.inner.failures.set_observer(Box::new(observer));
    }

    pub(crate) fn failure_sink(&self) -> Arc<FailureSink> {
        self.inner.failures.clone()
    }

    pub(crate) fn register(&self, event: Arc<dyn ErasedEvent>) {
        let _guard = self
            .inner
            .register_lock
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let current = self.inner.registry.load();
        let name = event.meta().name;
        assert!(
            current.iter().all(|e| e.meta().name != name),
            "eventbus: event `{name}` is already registered on this bus"
        );
        let mut next = Vec::with_capacity(current.len() + 1);
        next.extend(current.iter().cloned());
        next.push(event);
        self.inner.registry.store(Arc::new(next));
    }
}

impl fmt::Debug for BusCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let registry = self.inner.registry.load();
        let events: Vec<&str> = registry.iter().map(|e| e.meta().name).collect();
        f.debug_struct("BusCore")
            .field("package", &self.inner.manifest.package)
            .field("events", &events)
            .field("failure_observer", &self.inner.failures.has_observer())
            .finish()
    }
}
