//! The handle returned by `on` / `once`.

use std::fmt;
use std::sync::Weak;

/// What a [`Subscription`] needs from the event it came from, with the payload type erased.
pub(crate) trait Detach: Send + Sync {
    fn detach(&self, id: u64) -> bool;
    fn is_attached(&self, id: u64) -> bool;
}

/// A handle to one listener, returned by `on` and `once`.
///
/// Dropping it does **not** remove the listener: as with Node's `EventEmitter`, a listener stays
/// until [`unsubscribe`](Self::unsubscribe) or `remove_all_listeners()`. Ignoring the handle is
/// fine when the listener should live as long as the bus.
///
/// The handle holds the event weakly, so it never keeps a bus alive.
///
/// ```
/// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
/// use eventbus_runtime::{BusCore, Event};
///
/// let core = BusCore::new(manifest);
/// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
/// ping.on(|n| println!("kept: {n}")); // handle dropped: the listener stays
/// let once = ping.once(|n| println!("first: {n}"));
/// assert_eq!(ping.listener_count(), 2);
///
/// ping.emit(1);
/// assert!(!once.is_active());
/// assert_eq!(ping.listener_count(), 1);
/// ```
pub struct Subscription {
    event: Weak<dyn Detach>,
    id: u64,
}

impl Subscription {
    pub(crate) fn new(event: Weak<dyn Detach>, id: u64) -> Self {
        Subscription { event, id }
    }

    /// Removes the listener. It is not called by any emit from now on, including emits already
    /// in progress on other threads that have not reached it yet; a call already running is not
    /// waited for. Does nothing if the listener is already gone.
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("Ping"))]);
    /// use eventbus_runtime::{BusCore, Event};
    /// use std::sync::atomic::{AtomicU32, Ordering};
    /// use std::sync::Arc;
    ///
    /// let core = BusCore::new(manifest);
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// let seen = Arc::new(AtomicU32::new(0));
    /// let counter = seen.clone();
    /// let subscription = ping.on(move |_| {
    ///     counter.fetch_add(1, Ordering::Relaxed);
    /// });
    /// ping.emit(1);
    /// subscription.unsubscribe();
    /// ping.emit(2);
    /// assert_eq!(seen.load(Ordering::Relaxed), 1);
    /// assert_eq!(ping.listener_count(), 0);
    /// ```
    pub fn unsubscribe(self) {
        if let Some(event) = self.event.upgrade() {
            event.detach(self.id);
        }
    }

    /// `true` while the listener is subscribed and may still be called: `false` after
    /// [`unsubscribe`](Self::unsubscribe), `remove_all_listeners()`, once a `once` listener has
    /// fired, or when the event is gone.
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::manifest(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::{BusCore, Event};
    ///
    /// let core = BusCore::new(manifest);
    /// let ping: Event<u32> = Event::new(&core, manifest.event("ping").unwrap());
    /// let subscription = ping.on(|_| ());
    /// assert!(subscription.is_active());
    /// ping.remove_all_listeners();
    /// assert!(!subscription.is_active());
    /// ```
    pub fn is_active(&self) -> bool {
        self.event
            .upgrade()
            .is_some_and(|event| event.is_attached(self.id))
    }
}

impl fmt::Debug for Subscription {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Subscription")
            .field("id", &self.id)
            .field("active", &self.is_active())
            .finish()
    }
}
