//! One copy of an emitted payload for every consumer that keeps it past the emit: the
//! `subscribe()` streams' buffers (see `stream`) and the async handlers' queues (see
//! `async_handler`).
//!
//! A payload that owns heap memory (its type needs drop) is cloned once per emit into an `Arc`
//! that every consumer holds, as `tokio::sync::broadcast` keeps one value per message; each
//! consumer clones its own value out when it runs. Plain data is copied into each consumer
//! instead, which allocates nothing.
//!
//! Async handlers are separate listeners, each called with `&T` by the emit loop. So an event
//! with two or more of them takes the slow path, which owns the payload: it moves it into an
//! `Arc` and opens an [`EmitScope`] around its listener calls, where every async handler finds
//! it ([`item`]) instead of cloning.

use std::any::Any;
use std::cell::Cell;
use std::sync::Arc;

use serde::{Serialize, Serializer};

/// One consumer's copy of an emitted payload.
pub(crate) enum Item<T> {
    /// This consumer's own copy.
    Owned(T),
    /// A copy shared with the emit's other consumers.
    Shared(Arc<T>),
}

impl<T> Item<T> {
    /// The payload.
    pub(crate) fn get(&self) -> &T {
        match self {
            Item::Owned(payload) => payload,
            Item::Shared(payload) => payload,
        }
    }
}

impl<T: Clone> Item<T> {
    /// The payload, cloned only if another consumer still holds it.
    pub(crate) fn into_inner(self) -> T {
        match self {
            Item::Owned(payload) => payload,
            Item::Shared(payload) => Arc::unwrap_or_clone(payload),
        }
    }
}

/// Dead letters and failure reports serialise the payload itself.
impl<T: Serialize> Serialize for Item<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        self.get().serialize(serializer)
    }
}

/// The shared copy of the payload the current emit on this thread delivers.
struct Current {
    /// The address of the emitted payload (inside `shared`): a listener called with another
    /// one (an emit it is not part of) makes its own copy.
    payload: usize,
    shared: Arc<dyn Any + Send + Sync>,
}

thread_local! {
    static CURRENT: Cell<Option<Current>> = const { Cell::new(None) };
}

/// Open while one emit calls its listeners: [`item`] hands them the emit's payload, already
/// moved into an `Arc`. Nested emits (a handler that emits) open their own and restore the
/// outer one when they end.
pub(crate) struct EmitScope {
    outer: Option<Current>,
}

impl EmitScope {
    /// Opens the scope of the emit of `shared`: consumers take it without a clone.
    pub(crate) fn enter<T: Send + Sync + 'static>(shared: Arc<T>) -> Self {
        let current = Current {
            // The scope holds the `Arc`, so the payload stays at this address while it is open.
            payload: &*shared as *const T as usize,
            shared,
        };
        // During thread teardown there is no scope: every consumer copies.
        let outer = CURRENT
            .try_with(|c| c.replace(Some(current)))
            .ok()
            .flatten();
        EmitScope { outer }
    }
}

impl Drop for EmitScope {
    fn drop(&mut self) {
        // Drops this emit's reference to the shared copy; the consumers hold theirs.
        let _ = CURRENT.try_with(|c| c.set(self.outer.take()));
    }
}

/// A consumer's copy of `payload`, which an emit is delivering: the emit's shared copy when
/// `T` owns heap memory and the emit opened an [`EmitScope`], else a clone.
///
/// The address identifies the emit: the scope holds its payload, so another value of type `T`
/// at that address is that same value (or a zero-sized one, with nothing to differ in); a
/// value of another type there (an enclosing struct or its first field) fails the type check
/// below and is cloned.
pub(crate) fn item<T: Clone + Send + Sync + 'static>(payload: &T) -> Item<T> {
    if !std::mem::needs_drop::<T>() {
        return Item::Owned(payload.clone());
    }
    let address = payload as *const T as usize;
    let shared = CURRENT
        .try_with(|c| {
            let current = c.take();
            let shared = match &current {
                Some(scope) if scope.payload == address => {
                    scope.shared.clone().downcast::<T>().ok()
                }
                _ => None,
            };
            c.set(current);
            shared
        })
        .ok()
        .flatten();
    match shared {
        Some(shared) => Item::Shared(shared),
        None => Item::Owned(payload.clone()),
    }
}
