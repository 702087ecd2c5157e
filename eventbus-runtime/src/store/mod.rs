//! Persistence of `persist: true` events: write-ahead to an [`EventStore`] before dispatch,
//! processed tracking and recovery, replay and the audit trail (`docs/persistence.md`).
//!
//! Always compiled: [`PersistedEvent`], [`PersistedSignal`], [`Receipt`], [`PersistError`] and
//! [`EventId`], which generated code names whatever the features. Everything that touches a
//! store ([`EventStore`], [`SqliteStore`], queries, replay) needs the `store` feature, and
//! catch-up subscriptions (`PersistedEvent::subscribe_from`) need `async` as well.

mod persisted;
pub(crate) mod track;

pub use persisted::{
    EventId, ParseEventIdError, PersistError, PersistedEvent, PersistedSignal, Receipt,
};

#[cfg(feature = "store")]
mod bus;
#[cfg(all(feature = "store", feature = "async"))]
pub(crate) mod catch_up;
#[cfg(feature = "store")]
pub(crate) mod journal;
#[cfg(feature = "store")]
mod record;
#[cfg(feature = "store")]
mod sqlite;

#[cfg(feature = "store")]
pub use bus::{ReplayReport, Unreadable};
#[cfg(feature = "store")]
pub(crate) use bus::{attach, discarded, persists, redispatch_stored, write_ahead};
#[cfg(all(feature = "store", feature = "async"))]
pub use catch_up::{CatchUp, CatchUpError};
#[cfg(feature = "store")]
pub use record::{
    Appended, Compacted, DecodeError, NewEvent, Order, Query, Record, Records, Retention, Since,
    Status, StoredEvent,
};
#[cfg(feature = "store")]
pub use sqlite::{SqliteOptions, SqliteStore};

#[cfg(feature = "store")]
pub use store_trait::EventStore;

#[cfg(feature = "store")]
mod store_trait {
    use crate::dead_letter::{DeadLetterStore, StoreError};

    use super::record::{Appended, Compacted, NewEvent, Query, Retention, Status, StoredEvent};

    /// Where persisted events are kept: an append-only log with a sequence number per event,
    /// the outcome of each event's dispatch, queries and retention.
    ///
    /// [`SqliteStore`](super::SqliteStore) is the embedded implementation; the bus uses a store
    /// given to [`BusBuilder::event_store`](crate::BusBuilder::event_store). The bus calls
    /// `append` and `set_status` from one writer thread (batching concurrent emits into one
    /// call), and the other methods from any thread.
    ///
    /// ```
    /// use eventbus_runtime::{EventStore, NewEvent, Query, SqliteStore, Status, Timestamp, EventId};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let store = SqliteStore::open(dir.path().join("events.db"))?;
    /// let id = EventId::new_v4();
    /// let appended = store.append(&[NewEvent {
    ///     id, event: "ping", time: Timestamp::from_millis(1_700_000_000_000), payload: "7",
    ///     package: "demo", manifest_version: 1, fingerprint: "0123456789abcdef",
    /// }])?;
    /// assert_eq!((appended[0].sequence, appended[0].id), (1, id));
    /// store.set_status(&[(1, Status::Processed)])?;
    ///
    /// let records = store.query(&Query::new().event("ping"))?;
    /// assert_eq!(records[0].payload, 7);
    /// assert_eq!(records[0].status, Status::Processed);
    /// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    /// ```
    pub trait EventStore: Send + Sync + 'static {
        /// Appends `events` atomically and durably: when it returns `Ok` every event is stored
        /// and survives a crash of the process (and, for the SQLite store, of the machine);
        /// when it returns `Err` none is. Assigns each the next sequence number, without gaps,
        /// and returns them in the order given.
        fn append(&self, events: &[NewEvent<'_>]) -> Result<Vec<Appended>, StoreError>;

        /// Records the outcome of dispatching stored events. May be durable lazily (with the
        /// next `append`): losing an update only means the event is dispatched again by
        /// recovery, which at-least-once delivery allows.
        fn set_status(&self, updates: &[(u64, Status)]) -> Result<(), StoreError>;

        /// `set_status(updates)` and `append(events)` together; the bus's writer calls this
        /// when it has both, so a store can write them in one transaction (one sync). The
        /// default calls the two methods. On `Err` no event may be stored (the updates may
        /// or may not be).
        fn append_with_status(
            &self,
            events: &[NewEvent<'_>],
            updates: &[(u64, Status)],
        ) -> Result<Vec<Appended>, StoreError> {
            if !updates.is_empty() {
                self.set_status(updates)?;
            }
            self.append(events)
        }

        /// The events `query` selects, in its order.
        fn query(&self, query: &Query) -> Result<Vec<StoredEvent>, StoreError>;

        /// How many events `query` selects (at most its `limit`). The bus counts the pending
        /// events of an earlier run with it when it is built. The default runs `query`;
        /// [`SqliteStore`](super::SqliteStore) counts without reading the events.
        ///
        /// ```
        /// use eventbus_runtime::{EventId, EventStore, NewEvent, Query, SqliteStore, Status, Timestamp};
        ///
        /// let dir = tempfile::tempdir()?;
        /// let store = SqliteStore::open(dir.path().join("events.db"))?;
        /// let event = |payload| NewEvent {
        ///     id: EventId::new_v4(), event: "ping", time: Timestamp::now(), payload,
        ///     package: "demo", manifest_version: 1, fingerprint: "0123456789abcdef",
        /// };
        /// store.append(&[event("1"), event("2"), event("3")])?;
        /// store.set_status(&[(1, Status::Processed)])?;
        /// assert_eq!(store.count(&Query::new().status(Status::Pending))?, 2);
        /// assert_eq!(store.count(&Query::new().limit(1))?, 1);
        /// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
        /// ```
        fn count(&self, query: &Query) -> Result<u64, StoreError> {
            self.query(query).map(|events| events.len() as u64)
        }

        /// The highest sequence number ever assigned (0 for an empty store), even if that event
        /// was compacted away.
        fn last_sequence(&self) -> Result<u64, StoreError>;

        /// Removes **processed** events that `retention` no longer keeps. Never removes a
        /// pending or failed event, nor a dead letter.
        fn compact(&self, retention: &Retention) -> Result<Compacted, StoreError>;

        /// Makes every earlier `set_status` durable. The default does nothing.
        fn sync(&self) -> Result<(), StoreError> {
            Ok(())
        }

        /// A dead-letter queue kept in the same store, which the bus uses unless
        /// [`BusBuilder::dead_letters`](crate::BusBuilder::dead_letters) chose another. `None`
        /// (the default) keeps the in-memory queue.
        fn dead_letters(&self) -> Option<Box<dyn DeadLetterStore>> {
            None
        }
    }
}
