//! `Event<T>`: one typed event of a bus.

use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bus::{BusCore, ErasedEvent};
use crate::error::DispatchError;
use crate::handler::{FailureSink, HandlerResult, report_call_error};
use crate::listeners::ListenerList;
use crate::meta::EventMeta;
use crate::subscription::{Detach, Subscription};

/// What an event payload must be: JSON-serialisable (for the wire, the store and failure
/// reports), cloneable, and shareable between threads. Implemented for every such type.
pub trait Payload: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {}

impl<T> Payload for T where T: Serialize + DeserializeOwned + Clone + Send + Sync + 'static {}

/// One typed event of a bus: `bus.package_install` is an `Event<PackageEvent>`.
///
/// Cloning is cheap and clones share the listeners. Handlers run synchronously on the emitting
/// thread, in subscription order.
///
/// # Reentrancy and snapshots
///
/// A handler may subscribe, unsubscribe (itself or another listener), call
/// [`remove_all_listeners`](Self::remove_all_listeners) or emit any event, this one included,
/// without deadlock: handlers never run under a lock. Each emit works on a snapshot of the
/// listener list taken when it starts, so a listener added during an emit is first called by
/// the next emit. A listener removed during an emit is not called from that moment on.
pub struct Event<T: Payload> {
    inner: Arc<EventInner<T>>,
}

pub(crate) struct EventInner<T: Payload> {
    meta: &'static EventMeta,
    listeners: ListenerList<T>,
    failures: Arc<FailureSink>,
    /// Set for [`Signal`](crate::Signal)s: `emit_json` accepts `null` / `{}` only.
    payload_less: bool,
}

impl<T: Payload> Event<T> {
    /// Creates the event described by `meta` and registers it with `core`, so that
    /// [`BusCore::emit_json`] can reach it by name. Generated code calls this once per event.
    ///
    /// # Panics
    ///
    /// If `core` already has an event named `meta.name`.
    pub fn new(core: &BusCore, meta: &'static EventMeta) -> Event<T> {
        Event::create(core, meta, false)
    }

    pub(crate) fn create(core: &BusCore, meta: &'static EventMeta, payload_less: bool) -> Event<T> {
        let inner = Arc::new(EventInner {
            meta,
            listeners: ListenerList::new(),
            failures: core.failure_sink(),
            payload_less,
        });
        core.register(inner.clone());
        Event { inner }
    }

    /// Calls every listener with `payload`, synchronously on this thread, in subscription
    /// order.
    ///
    /// A handler that returns `Err` or panics does not stop the others; each failure becomes a
    /// [`HandlerFailure`](crate::HandlerFailure) for the bus's failure observer (see
    /// [`BusCore::on_failure`]). Emitting allocates nothing and takes no lock shared with other
    /// emitters (firing a `once` listener or reporting a failure does).
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("chainSync", Some("ChainSync"))]);
    /// use eventbus_runtime::{BusCore, Event};
    ///
    /// #[derive(Clone, serde::Serialize, serde::Deserialize)]
    /// struct ChainSync { network: String, peers: u32 }
    ///
    /// let core = BusCore::new(manifest);
    /// let chain_sync: Event<ChainSync> = Event::new(&core, manifest.event("chainSync").unwrap());
    /// chain_sync.on(|e| println!("{}: {} peers", e.network, e.peers));
    /// chain_sync.emit(ChainSync { network: "mainnet".into(), peers: 12 });
    /// ```
    pub fn emit(&self, payload: T) {
        self.inner.dispatch(&payload);
    }

    /// Adds a listener, called on every emit until unsubscribed. Returns its
    /// [`Subscription`]; dropping that does not remove the listener.
    ///
    /// The handler gets `&T` and returns `()` or `Result<(), E>` (see
    /// [`HandlerResult`]), so it may use `?`.
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("chainSync", Some("ChainSync"))]);
    /// use eventbus_runtime::{BusCore, Event};
    ///
    /// #[derive(Clone, serde::Serialize, serde::Deserialize)]
    /// struct ChainSync { network: String, block_height: String }
    ///
    /// let core = BusCore::new(manifest);
    /// let chain_sync: Event<ChainSync> = Event::new(&core, manifest.event("chainSync").unwrap());
    ///
    /// // A plain handler.
    /// chain_sync.on(|e| println!("syncing {}", e.network));
    /// // A fallible one: its `Err` is reported to the bus's failure observer.
    /// chain_sync.on(|e| {
    ///     let height: u64 = e.block_height.parse()?;
    ///     println!("at block {height}");
    ///     Ok::<(), std::num::ParseIntError>(())
    /// });
    /// assert_eq!(chain_sync.listener_count(), 2);
    /// chain_sync.emit(ChainSync { network: "mainnet".into(), block_height: "19000000".into() });
    /// ```
    pub fn on<F, R>(&self, handler: F) -> Subscription
    where
        F: Fn(&T) -> R + Send + Sync + 'static,
        R: HandlerResult,
    {
        self.subscribe(false, handler)
    }

    /// Adds a listener called by the next emit only, then removed. Even when many threads emit
    /// at once, exactly one of them runs it.
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::{BusCore, Event};
    /// use std::sync::{Arc, Mutex};
    ///
    /// let core = BusCore::new(manifest);
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// let first = Arc::new(Mutex::new(None));
    /// let slot = first.clone();
    /// let subscription = ping.once(move |n| *slot.lock().unwrap() = Some(*n));
    /// ping.emit(1);
    /// ping.emit(2);
    /// assert_eq!(*first.lock().unwrap(), Some(1));
    /// assert!(!subscription.is_active());
    /// assert_eq!(ping.listener_count(), 0);
    /// ```
    pub fn once<F, R>(&self, handler: F) -> Subscription
    where
        F: Fn(&T) -> R + Send + Sync + 'static,
        R: HandlerResult,
    {
        self.subscribe(true, handler)
    }

    fn subscribe<F, R>(&self, once: bool, handler: F) -> Subscription
    where
        F: Fn(&T) -> R + Send + Sync + 'static,
        R: HandlerResult,
    {
        let id = self
            .inner
            .listeners
            .add(once, move |payload: &T| handler(payload).into_result());
        let weak = Arc::downgrade(&self.inner);
        Subscription::new(weak, id)
    }

    /// Removes every listener of this event. Their subscriptions become inactive.
    pub fn remove_all_listeners(&self) {
        self.inner.listeners.clear();
    }

    /// The number of listeners an emit would call now.
    pub fn listener_count(&self) -> usize {
        self.inner.listeners.len()
    }

    /// The event's manifest name (`"packageInstall"`), also its JSON / wire name.
    pub fn name(&self) -> &'static str {
        self.inner.meta.name
    }

    /// The event as declared in the manifest.
    pub fn meta(&self) -> &'static EventMeta {
        self.inner.meta
    }
}

impl<T: Payload> Clone for Event<T> {
    fn clone(&self) -> Self {
        Event {
            inner: self.inner.clone(),
        }
    }
}

impl<T: Payload> fmt::Debug for Event<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("name", &self.name())
            .field("listeners", &self.listener_count())
            .finish()
    }
}

impl<T: Payload> EventInner<T> {
    fn dispatch(&self, payload: &T) {
        let mut payload_json = None;
        self.listeners.dispatch(payload, |handler_id, error| {
            report_call_error(
                &self.failures,
                self.meta.name,
                payload,
                &mut payload_json,
                handler_id,
                error,
            );
        });
    }
}

impl<T: Payload> Detach for EventInner<T> {
    fn detach(&self, id: u64) -> bool {
        self.listeners.remove(id)
    }

    fn is_attached(&self, id: u64) -> bool {
        self.listeners.is_active(id)
    }
}

impl<T: Payload> ErasedEvent for EventInner<T> {
    fn meta(&self) -> &'static EventMeta {
        self.meta
    }

    fn emit_json(&self, json: &str) -> Result<(), DispatchError> {
        let event = self.meta.name;
        let payload: T = if self.payload_less {
            let value: serde_json::Value = serde_json::from_str(json)
                .map_err(|e| DispatchError::invalid_payload(event, json, &e))?;
            let empty = match &value {
                serde_json::Value::Null => true,
                serde_json::Value::Object(fields) => fields.is_empty(),
                _ => false,
            };
            if !empty {
                return Err(DispatchError::UnexpectedPayload { event });
            }
            // `T` is `()` here; `null` is its JSON form.
            serde_json::from_value(serde_json::Value::Null)
                .map_err(|e| DispatchError::invalid_payload(event, "null", &e))?
        } else {
            serde_json::from_str(json)
                .map_err(|e| DispatchError::invalid_payload(event, json, &e))?
        };
        self.dispatch(&payload);
        Ok(())
    }
}
