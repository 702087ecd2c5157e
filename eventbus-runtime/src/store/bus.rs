//! The store on the bus: the builder option, write-ahead, recovery, replay, typed records.

use std::cell::Cell;
use std::sync::Arc;

use serde::Serialize;

use crate::builder::{BusBuilder, FromCore};
use crate::bus::BusCore;
use crate::dead_letter::{
    DeadLetter, DeadLetterReason, DeadLetterStore, RedispatchError, StoreError,
};
use crate::event::{Event, Payload};
use crate::handler::{FailureKind, HandlerFailure};
use crate::meta::ManifestMeta;
use crate::shared::EventCtx;
use crate::store::journal::{Journal, Message};
use crate::store::record::{Order, Query, Records, Status, StoredEvent};
use crate::store::track::{self, Delivery, Entered};
use crate::store::{EventStore, PersistError, Receipt};
use crate::timestamp::Timestamp;

/// Records per page when recovery or replay reads the store.
const PAGE: usize = 512;

impl<B: FromCore> BusBuilder<B> {
    /// Stores every `persist: true` event in `store` before its handlers run (write-ahead),
    /// tracks which were processed, and makes [`BusCore::recover`], [`BusCore::replay`] and
    /// [`Event::records`] available. Unless [`dead_letters`](Self::dead_letters) chose another
    /// queue, dead letters are kept in the same store when it offers one
    /// ([`SqliteStore`](crate::SqliteStore) does).
    ///
    /// The bus starts one writer thread for the store (see `docs/persistence.md`).
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::persisted(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::{BusCore, SqliteStore};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let core: BusCore = BusCore::builder(manifest)
    ///     .event_store(SqliteStore::open(dir.path().join("events.db"))?)
    ///     .build()?;
    /// assert!(core.event_store().is_some());
    /// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    /// ```
    pub fn event_store(mut self, store: impl EventStore) -> Self {
        self.event_store = Some(Arc::new(store));
        self
    }
}

/// The journal of an event store, whose writer consults `letters` (the bus's dead-letter
/// queue) to tell when a stored event has no dead letter left.
pub(crate) fn attach(
    manifest: &'static ManifestMeta,
    store: Option<Arc<dyn EventStore>>,
    letters: Arc<dyn DeadLetterStore>,
) -> Option<Arc<Journal>> {
    store.map(|store| Arc::new(Journal::start(manifest, store, letters)))
}

/// Whether emits of this event go through the store (and so take the slow path).
pub(crate) fn persists(ctx: &EventCtx) -> bool {
    ctx.meta.persist && ctx.shared.journal.is_some()
}

thread_local! {
    /// Set while recovery or replay re-delivers a stored event of this name: its emit must not
    /// store it again.
    static REDELIVERING: Cell<Option<&'static str>> = const { Cell::new(None) };
}

/// Stores a persisted event before dispatch and opens its delivery scope. `Ok((None,
/// NOT_STORED))` when the event is not persisted, the bus has no store, or the event is being
/// re-delivered from the store. On error the failure is reported and nothing may be
/// dispatched.
pub(crate) fn write_ahead<T: Serialize>(
    ctx: &EventCtx,
    payload: &T,
) -> Result<(Option<Entered>, Receipt), PersistError> {
    let event = ctx.meta.name;
    let journal = match &ctx.shared.journal {
        Some(journal) if ctx.meta.persist => journal,
        _ => return Ok((None, Receipt::NOT_STORED)),
    };
    if REDELIVERING.with(|r| r.get() == Some(event)) {
        REDELIVERING.with(|r| r.set(None));
        return Ok((None, Receipt::NOT_STORED));
    }
    let result = match serde_json::to_string(payload) {
        Ok(json) => journal
            .append(event, json)
            .map_err(|error| PersistError::Store { event, error }),
        Err(error) => Err(PersistError::Payload {
            event,
            message: error.to_string(),
        }),
    };
    match result {
        Ok((sequence, id)) => {
            let delivery = Delivery::new(journal.queue.clone(), event, sequence);
            Ok((
                Some(track::enter(Some(delivery))),
                Receipt::stored(sequence, id),
            ))
        }
        Err(error) => {
            let failure = HandlerFailure::other(
                event,
                None,
                FailureKind::NotStored,
                format!("{error}; it was not dispatched"),
                0,
                serde_json::to_value(payload).unwrap_or(serde_json::Value::Null),
            );
            ctx.shared.failures.report(&failure);
            Err(error)
        }
    }
}

/// Delivers a dead letter of the stored event `sequence` again (`deliver`, from
/// `prepare_redispatch`): inside a delivery scope of that event, so a new failure links its
/// letter to the event and marks it failed, and success resolves it (processed once no letter
/// of it remains). An event-level letter (`whole_event`) is emitted again without being stored
/// a second time: same id, same sequence.
pub(crate) fn redispatch_stored(
    core: &BusCore,
    event: &'static str,
    sequence: u64,
    whole_event: bool,
    deliver: impl FnOnce(),
) {
    let Some(journal) = &core.shared().journal else {
        return deliver();
    };
    let _entered = track::enter(Some(Delivery::resolving(
        journal.queue.clone(),
        event,
        sequence,
    )));
    // Only around the re-emit of the whole event: a handler-level letter does not emit, and a
    // handler's own emit of the same event must still be stored.
    if whole_event {
        REDELIVERING.with(|r| r.set(Some(event)));
    }
    deliver();
    REDELIVERING.with(|r| r.set(None));
}

/// A dead letter of the stored event `sequence` was discarded: the event is marked processed
/// once no letter of it remains (it was dealt with, by hand).
pub(crate) fn discarded(core: &BusCore, sequence: u64) {
    if let Some(journal) = &core.shared().journal {
        journal.queue.resolve(sequence);
    }
}

/// What [`BusCore::recover`] or [`BusCore::replay`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReplayReport {
    /// Events delivered to their handlers again.
    pub dispatched: u64,
    /// Stored events that could not be delivered, each with its sequence number: their
    /// payload no longer fits the event's type, or the event is no longer on the bus. The
    /// others were delivered anyway.
    pub unreadable: Vec<Unreadable>,
}

/// A stored event that recovery or replay could not deliver.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// Its sequence number.
    pub sequence: u64,
    /// Its event's name.
    pub event: String,
    /// Why.
    pub error: String,
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "stored event #{} (`{}`): {}",
            self.sequence, self.event, self.error
        )
    }
}

fn no_store() -> StoreError {
    Box::new(Message(
        "this bus has no event store (see BusBuilder::event_store)".into(),
    ))
}

impl BusCore {
    /// The bus's event store, if [`BusBuilder::event_store`] set one: for queries
    /// ([`EventStore::query`]) and retention ([`EventStore::compact`]).
    pub fn event_store(&self) -> Option<Arc<dyn EventStore>> {
        self.shared().journal.as_ref().map(|j| j.store.clone())
    }

    fn journal(&self) -> Result<&Arc<Journal>, StoreError> {
        self.shared().journal.as_ref().ok_or_else(no_store)
    }

    /// How many emits wait in the event-store queue for the writer (0 without a store); for
    /// tests, through `__doc::queued_appends`.
    pub(crate) fn queued_appends(&self) -> usize {
        self.shared()
            .journal
            .as_ref()
            .map_or(0, |j| j.queue.queued_appends())
    }

    /// Recovery after a crash: delivers again, in sequence order, every stored event whose
    /// dispatch did not finish in an earlier run (status [`Status::Pending`]), and records
    /// the outcome as for a new emit. Call it once at start, **after** subscribing the
    /// handlers (events go to the handlers subscribed at that moment).
    ///
    /// Delivery is therefore *at least once*: a handler that had already handled an event
    /// before the crash sees it again. Events emitted by this process since the bus was built
    /// are not touched. A stored event whose payload no longer fits its type (or whose event
    /// left the manifest) is reported in [`ReplayReport::unreadable`], marked
    /// [`Status::Failed`], and does not stop the others.
    ///
    /// # Errors
    ///
    /// The bus has no event store, or the store cannot be read.
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::persisted(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::{BusCore, PersistedEvent, SqliteStore};
    /// use std::sync::{Arc, Mutex};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let path = dir.path().join("events.db");
    /// # {
    /// #     // An earlier run stored 7 and crashed before its handler finished.
    /// #     use eventbus_runtime::{EventStore, EventId, NewEvent, Timestamp};
    /// #     let store = SqliteStore::open(&path)?;
    /// #     store.append(&[NewEvent { id: EventId::new_v4(), event: "ping", time: Timestamp::now(),
    /// #         payload: "7", package: "demo", manifest_version: 1, fingerprint: "0000000000000000" }])?;
    /// # }
    /// let core: BusCore = BusCore::builder(manifest).event_store(SqliteStore::open(&path)?).build()?;
    /// let ping: PersistedEvent<u32> = PersistedEvent::new(&core, manifest.event("ping").unwrap());
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = seen.clone();
    /// ping.on(move |n| log.lock().unwrap().push(*n));
    ///
    /// let report = core.recover()?;
    /// assert_eq!(report.dispatched, 1);
    /// assert_eq!(*seen.lock().unwrap(), [7]);
    /// assert_eq!(core.recover()?.dispatched, 0); // processed now
    /// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    /// ```
    pub fn recover(&self) -> Result<ReplayReport, StoreError> {
        let journal = self.journal()?;
        let boot = journal
            .boot
            .clone()
            .map_err(|e| Box::new(Message(e)) as StoreError)?;
        let query = Query::new().status(Status::Pending).to_sequence(boot);
        let mut report = ReplayReport::default();
        self.redeliver(journal, query, true, &mut report)?;
        // Statuses of synchronous deliveries are queued; write them before returning, so a
        // second call does not see these events pending.
        journal.flush()?;
        Ok(report)
    }

    /// Delivers the stored events that `query` selects to the handlers subscribed now, in the
    /// query's order: to rebuild a projection, or to feed a new handler the history. Replayed
    /// events are not stored again and their status does not change; the event's policies
    /// apply as for a new emit. Unreadable events are reported, not fatal.
    ///
    /// # Errors
    ///
    /// The bus has no event store, or the store cannot be read.
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::persisted(&[("ping", Some("u32")), ("pong", Some("u32"))]);
    /// use eventbus_runtime::{BusCore, PersistedEvent, Query, Since, SqliteStore};
    /// use std::sync::{Arc, Mutex};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let core: BusCore = BusCore::builder(manifest)
    ///     .event_store(SqliteStore::open(dir.path().join("events.db"))?)
    ///     .build()?;
    /// let ping: PersistedEvent<u32> = PersistedEvent::new(&core, manifest.event("ping").unwrap());
    /// let pong: PersistedEvent<u32> = PersistedEvent::new(&core, manifest.event("pong").unwrap());
    /// for n in 1..=3 {
    ///     ping.emit(n)?;
    ///     pong.emit(n * 10)?;
    /// }
    ///
    /// let seen = Arc::new(Mutex::new(Vec::new()));
    /// let log = seen.clone();
    /// ping.on(move |n| log.lock().unwrap().push(*n));
    /// let report = core.replay(&Query::new().event("ping").since(Since::Sequence(3)))?;
    /// assert_eq!(report.dispatched, 2);
    /// assert_eq!(*seen.lock().unwrap(), [2, 3]);
    /// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    /// ```
    pub fn replay(&self, query: &Query) -> Result<ReplayReport, StoreError> {
        let journal = self.journal()?;
        let mut report = ReplayReport::default();
        self.redeliver(journal, query.clone(), false, &mut report)?;
        Ok(report)
    }

    /// Waits until every event outcome recorded so far (processed, failed) is written to the
    /// store and durable. Dropping the last handle of the bus does the same, and so does the
    /// end of [`shutdown`](BusCore::shutdown) (feature `async`); call this before a process
    /// exits without either, or recovery delivers those events again at the next start.
    ///
    /// # Errors
    ///
    /// The bus has no event store, or the store failed to sync.
    pub fn flush_event_store(&self) -> Result<(), StoreError> {
        self.journal()?.flush()
    }

    fn redeliver(
        &self,
        journal: &Arc<Journal>,
        mut query: Query,
        recovery: bool,
        report: &mut ReplayReport,
    ) -> Result<(), StoreError> {
        let mut remaining = query.limit;
        loop {
            let page = remaining.map_or(PAGE, |r| r.min(PAGE));
            if page == 0 {
                return Ok(());
            }
            query.limit = Some(page);
            let records = journal.store.query(&query)?;
            let Some(last) = records.last() else {
                return Ok(());
            };
            match query.order {
                Order::Asc => query.from_sequence = Some(last.sequence + 1),
                Order::Desc if last.sequence == 0 => return Ok(()),
                Order::Desc => query.to_sequence = Some(last.sequence - 1),
            }
            let count = records.len();
            for record in records {
                if self.is_shut_down() {
                    return Ok(());
                }
                self.redeliver_one(journal, record, recovery, report);
            }
            if let Some(remaining) = &mut remaining {
                *remaining -= count;
            }
            if count < page {
                return Ok(());
            }
        }
    }

    fn redeliver_one(
        &self,
        journal: &Arc<Journal>,
        record: StoredEvent,
        recovery: bool,
        report: &mut ReplayReport,
    ) {
        let sequence = record.sequence;
        if recovery && !journal.queue.claim_recovery(sequence) {
            return; // already being re-delivered by an earlier call
        }
        let unreadable = |report: &mut ReplayReport, error: String| {
            if recovery {
                journal.queue.finish(sequence, Status::Failed);
            }
            report.unreadable.push(Unreadable {
                sequence,
                event: record.event.clone(),
                error,
            });
        };
        let Some(meta) = self.manifest().event(&record.event) else {
            return unreadable(report, "the event is not in this bus's manifest".into());
        };
        let event = match self.find(meta.name) {
            Ok(event) => event,
            Err(_) => return unreadable(report, "the event is not on this bus".into()),
        };
        let letter = DeadLetter {
            id: 0,
            event: record.event.clone(),
            handler: None,
            handler_id: None,
            reason: DeadLetterReason::Failed,
            error: String::new(),
            attempts: 0,
            batch: false,
            payload: record.payload.clone(),
            at: Timestamp::now(),
        };
        let deliver = match event.prepare_redispatch(&letter) {
            Ok(deliver) => deliver,
            Err(RedispatchError::InvalidPayload(error)) => {
                return unreadable(report, error.to_string());
            }
            Err(_) => {
                // Shut down meanwhile: the event stays pending for the next start.
                if recovery {
                    journal.queue.finish_unclaimed(sequence);
                }
                return;
            }
        };
        let scope = recovery.then(|| Delivery::new(journal.queue.clone(), meta.name, sequence));
        let _entered = track::enter(scope);
        REDELIVERING.with(|r| r.set(Some(meta.name)));
        deliver();
        REDELIVERING.with(|r| r.set(None));
        report.dispatched += 1;
    }
}

impl<T: Payload> Event<T> {
    /// This event's stored records that `query` selects (its event filter is replaced by this
    /// event), with their payloads typed; records whose payload no longer fits `T` are listed
    /// apart with their sequence numbers.
    ///
    /// # Errors
    ///
    /// The bus has no event store, or the store cannot be read.
    ///
    /// ```
    /// # let manifest = eventbus_runtime::__doc::persisted(&[("ping", Some("u32"))]);
    /// use eventbus_runtime::{BusCore, Order, PersistedEvent, Query, SqliteStore};
    ///
    /// let dir = tempfile::tempdir()?;
    /// let core: BusCore = BusCore::builder(manifest)
    ///     .event_store(SqliteStore::open(dir.path().join("events.db"))?)
    ///     .build()?;
    /// let ping: PersistedEvent<u32> = PersistedEvent::new(&core, manifest.event("ping").unwrap());
    /// for n in [5, 6, 7] {
    ///     ping.emit(n)?;
    /// }
    /// let latest = ping.records(Query::new().order(Order::Desc).limit(2))?;
    /// let payloads: Vec<u32> = latest.records.iter().map(|r| r.payload).collect();
    /// assert_eq!(payloads, [7, 6]);
    /// assert!(latest.unreadable.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error + Send + Sync>>(())
    /// ```
    pub fn records(&self, mut query: Query) -> Result<Records<T>, StoreError> {
        let ctx = &self.inner.ctx;
        let journal = ctx.shared.journal.as_ref().ok_or_else(no_store)?;
        query.events = vec![ctx.meta.name.to_owned()];
        let mut records = Records {
            records: Vec::new(),
            unreadable: Vec::new(),
        };
        for stored in journal.store.query(&query)? {
            match stored.decode::<T>() {
                Ok(record) => records.records.push(record),
                Err(error) => records.unreadable.push(error),
            }
        }
        Ok(records)
    }
}
