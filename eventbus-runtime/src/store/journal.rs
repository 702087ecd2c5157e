//! The bus side of an event store: one writer thread that turns concurrent emits into group
//! commits, and records the outcome of deliveries.
//!
//! An emitter queues its event and waits on its own slot. The writer takes everything queued
//! (up to [`MAX_BATCH`]) and appends it with one [`EventStore::append`] — one transaction, one
//! fsync — then wakes each emitter with its sequence number or the shared error. While it
//! commits, new emits queue up and form the next group, so the number of fsyncs per second
//! stays bounded by the disk, not by the number of emitters. Status updates (processed,
//! failed) queue without waiting and are written by the same thread before the next group.
//!
//! A re-dispatched or discarded dead letter *resolves* its stored event: the writer marks the
//! event processed if, when it gets to the update, no dead letter is linked to the event any
//! more. Deciding this in the writer, in queue order, means a letter pushed by a concurrent
//! failure (whose `failed` update is queued after it) always wins.

use std::collections::HashSet;
use std::error::Error;
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::dead_letter::{DeadLetterStore, StoreError};
use crate::meta::ManifestMeta;
use crate::store::record::{NewEvent, Status};
use crate::store::{EventId, EventStore};
use crate::timestamp::Timestamp;

/// The most events in one group commit.
pub(crate) const MAX_BATCH: usize = 1024;

/// How long status updates wait for an append to share its transaction before they are written
/// on their own.
const STATUS_DELAY: Duration = Duration::from_millis(50);

type SharedError = Arc<dyn Error + Send + Sync>;

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A message as an error, for failures that have no error value (a panic, a stopped writer).
#[derive(Debug)]
pub(crate) struct Message(pub(crate) String);

impl fmt::Display for Message {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl Error for Message {}

/// Where one emitter waits for its event to be committed.
struct Slot {
    result: Mutex<Option<Result<u64, SharedError>>>,
    ready: Condvar,
}

impl Slot {
    fn fill(&self, result: Result<u64, SharedError>) {
        *lock(&self.result) = Some(result);
        self.ready.notify_one();
    }

    fn wait(&self) -> Result<u64, SharedError> {
        let mut result = lock(&self.result);
        loop {
            if let Some(result) = result.take() {
                return result;
            }
            result = self
                .ready
                .wait(result)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

struct Request {
    id: EventId,
    event: &'static str,
    time: Timestamp,
    payload: String,
    slot: Arc<Slot>,
}

/// A delivery's outcome as queued for the writer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Set(Status),
    /// Processed, unless a dead letter is still linked to the event when it is written.
    Resolved,
}

#[derive(Default)]
struct State {
    appends: Vec<Request>,
    statuses: Vec<(u64, Outcome)>,
    /// The writer is working on a batch taken from the queue.
    busy: bool,
    stop: bool,
    /// Callers of [`Journal::flush`] waiting: write status updates at once.
    flushing: usize,
    /// Sequence numbers being re-dispatched by recovery in this process.
    recovering: HashSet<u64>,
}

/// The queue between emitters and the writer thread.
pub(crate) struct Queue {
    state: Mutex<State>,
    /// Wakes the writer.
    work: Condvar,
    /// Wakes [`Journal::flush`] callers.
    idle: Condvar,
}

impl Queue {
    /// Records the outcome of a delivery (without waiting for the write).
    pub(crate) fn finish(&self, sequence: u64, status: Status) {
        let mut state = lock(&self.state);
        state.recovering.remove(&sequence);
        state.statuses.push((sequence, Outcome::Set(status)));
        drop(state);
        self.work.notify_one();
    }

    /// A dead letter of the stored event `sequence` was resolved (re-dispatched successfully,
    /// or discarded): mark it processed if no other letter of it remains.
    pub(crate) fn resolve(&self, sequence: u64) {
        lock(&self.state)
            .statuses
            .push((sequence, Outcome::Resolved));
        self.work.notify_one();
    }

    /// Gives up a claim without recording an outcome (the event stays pending).
    pub(crate) fn finish_unclaimed(&self, sequence: u64) {
        lock(&self.state).recovering.remove(&sequence);
    }

    /// Claims `sequence` for re-dispatch by recovery: `false` if it is already being
    /// re-dispatched.
    pub(crate) fn claim_recovery(&self, sequence: u64) -> bool {
        lock(&self.state).recovering.insert(sequence)
    }

    /// How many emits wait for the writer to take them (not those it is writing now).
    pub(crate) fn queued_appends(&self) -> usize {
        lock(&self.state).appends.len()
    }
}

/// The journal of one bus: its store, the writer thread and the queue.
pub(crate) struct Journal {
    pub(crate) store: Arc<dyn EventStore>,
    pub(crate) queue: Arc<Queue>,
    /// The last sequence number when the bus was built: recovery re-dispatches only events up
    /// to it (later ones belong to this process's own emits).
    pub(crate) boot: Result<u64, String>,
    /// The catch-up subscriptions' wake-ups, rung by [`flush`](Self::flush) (the end of
    /// `shutdown()`) and when the bus goes, so that they notice the bus is shut down.
    #[cfg(feature = "async")]
    bells: Mutex<Vec<std::sync::Weak<super::catch_up::Bell>>>,
    writer: Option<JoinHandle<()>>,
}

impl fmt::Debug for Journal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Journal")
            .field("boot", &self.boot)
            .finish_non_exhaustive()
    }
}

impl Journal {
    /// Starts the writer thread of `store` for a bus of `manifest`.
    pub(crate) fn start(
        manifest: &'static ManifestMeta,
        store: Arc<dyn EventStore>,
        letters: Arc<dyn DeadLetterStore>,
    ) -> Self {
        let queue = Arc::new(Queue {
            state: Mutex::new(State::default()),
            work: Condvar::new(),
            idle: Condvar::new(),
        });
        let boot = store.last_sequence().map_err(|e| e.to_string());
        if let Ok(boot) = boot {
            warn_if_pending(&*store, boot);
        }
        let writer = {
            let (queue, store) = (queue.clone(), store.clone());
            std::thread::Builder::new()
                .name("eventbus-store".into())
                .spawn(move || write_loop(manifest, &*store, &*letters, &queue))
                .expect("eventbus: cannot start the event store's writer thread")
        };
        Journal {
            store,
            queue,
            boot,
            #[cfg(feature = "async")]
            bells: Mutex::new(Vec::new()),
            writer: Some(writer),
        }
    }

    /// Registers a catch-up subscription's wake-up.
    #[cfg(feature = "async")]
    pub(crate) fn add_bell(&self, bell: &Arc<super::catch_up::Bell>) {
        let mut bells = lock(&self.bells);
        bells.retain(|b| b.strong_count() > 0);
        bells.push(Arc::downgrade(bell));
    }

    /// Wakes every catch-up subscription (a spurious wake-up unless the bus is shut down).
    #[cfg(feature = "async")]
    fn ring_bells(&self) {
        let bells: Vec<_> = lock(&self.bells)
            .iter()
            .filter_map(|b| b.upgrade())
            .collect();
        for bell in bells {
            bell.ring();
        }
    }

    /// Queues an event and waits until it is durably stored.
    pub(crate) fn append(
        &self,
        event: &'static str,
        payload: String,
    ) -> Result<(u64, EventId), SharedError> {
        let id = EventId::new_v4();
        let slot = Arc::new(Slot {
            result: Mutex::new(None),
            ready: Condvar::new(),
        });
        {
            let mut state = lock(&self.queue.state);
            if state.stop {
                return Err(Arc::new(Message("the event store is closed".into())));
            }
            state.appends.push(Request {
                id,
                event,
                time: Timestamp::now(),
                payload,
                slot: slot.clone(),
            });
        }
        self.queue.work.notify_one();
        slot.wait().map(|sequence| (sequence, id))
    }

    /// Waits until everything queued so far is written, then makes it durable.
    pub(crate) fn flush(&self) -> Result<(), StoreError> {
        let mut state = lock(&self.queue.state);
        state.flushing += 1;
        self.queue.work.notify_one();
        while state.busy || !state.appends.is_empty() || !state.statuses.is_empty() {
            state = self
                .queue
                .idle
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state.flushing -= 1;
        drop(state);
        let synced = self.store.sync();
        #[cfg(feature = "async")]
        self.ring_bells();
        synced
    }
}

impl Drop for Journal {
    fn drop(&mut self) {
        #[cfg(feature = "async")]
        self.ring_bells();
        lock(&self.queue.state).stop = true;
        self.queue.work.notify_one();
        if let Some(writer) = self.writer.take() {
            // The writer drains the queue first; a panic there was already reported.
            let _ = writer.join();
        }
    }
}

/// Warns when `store` holds events of an earlier run (up to `boot`) whose dispatch did not
/// finish: recovery is the application's call ([`BusCore::recover`](crate::BusCore::recover),
/// once its handlers are subscribed), and forgetting it would leave them undelivered silently.
fn warn_if_pending(store: &dyn EventStore, boot: u64) {
    if boot == 0 {
        return;
    }
    let query = crate::store::Query::new()
        .status(Status::Pending)
        .to_sequence(boot);
    let pending = match store.count(&query) {
        // Nothing pending, or the store cannot be read now: `recover()` would say so.
        Ok(0) | Err(_) => return,
        Ok(pending) => pending,
    };
    let events = if pending == 1 { "event" } else { "events" };
    let are = if pending == 1 { "is" } else { "are" };
    let message = format!(
        "{pending} {events} stored by an earlier run {are} still pending (dispatch did not \
         finish); call recover() on the bus once its handlers are subscribed, or they are not \
         delivered again (see docs/persistence.md)"
    );
    #[cfg(feature = "tracing")]
    if tracing::dispatcher::has_been_set() {
        tracing::warn!(target: "eventbus::store", pending, "{message}");
        return;
    }
    eprintln!("eventbus: {message}");
}

/// Runs `work`, turning a panic of the store into an error.
fn guarded<T>(what: &str, work: impl FnOnce() -> Result<T, StoreError>) -> Result<T, SharedError> {
    match catch_unwind(AssertUnwindSafe(work)) {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(error)) => Err(Arc::from(error)),
        Err(_) => Err(Arc::new(Message(format!(
            "the event store panicked in {what}"
        )))),
    }
}

/// What the writer takes from the queue at once: appends, and status updates.
type Batch = (Vec<Request>, Vec<(u64, Outcome)>);

/// Takes the next batch: every queued append (up to [`MAX_BATCH`]) with the queued status
/// updates. Status updates alone wait up to [`STATUS_DELAY`] for an append to share its
/// transaction, unless a flush or the stop asks for them. `None`: stopped and drained.
fn next_batch(queue: &Queue) -> Option<Batch> {
    let mut state = lock(&queue.state);
    let mut deadline: Option<Instant> = None;
    loop {
        if !state.appends.is_empty() || state.stop {
            break;
        }
        if state.statuses.is_empty() {
            deadline = None;
            state = queue
                .work
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
            continue;
        }
        if state.flushing > 0 || state.statuses.len() >= MAX_BATCH {
            break;
        }
        let now = Instant::now();
        let until = *deadline.get_or_insert(now + STATUS_DELAY);
        if now >= until {
            break;
        }
        state = queue
            .work
            .wait_timeout(state, until - now)
            .unwrap_or_else(PoisonError::into_inner)
            .0;
    }
    if state.appends.is_empty() && state.statuses.is_empty() {
        state.busy = false;
        queue.idle.notify_all();
        return None; // stopped and drained
    }
    state.busy = true;
    let take = state.appends.len().min(MAX_BATCH);
    let appends: Vec<Request> = state.appends.drain(..take).collect();
    Some((appends, std::mem::take(&mut state.statuses)))
}

fn report_lost_statuses(count: usize, error: &dyn fmt::Display) {
    // The events stay pending: recovery dispatches them again (at-least-once).
    eprintln!(
        "eventbus: could not record the outcome of {count} stored events ({error}); recovery \
         will dispatch them again"
    );
}

/// The status updates of `outcomes`, in order: a resolved event becomes processed when no dead
/// letter is linked to it now (checked here, after every earlier push of a letter).
fn settle(letters: &dyn DeadLetterStore, outcomes: Vec<(u64, Outcome)>) -> Vec<(u64, Status)> {
    outcomes
        .into_iter()
        .filter_map(|(sequence, outcome)| match outcome {
            Outcome::Set(status) => Some((sequence, status)),
            Outcome::Resolved => {
                match guarded("linked", || letters.linked(sequence)) {
                    Ok(0) => Some((sequence, Status::Processed)),
                    Ok(_) => None,
                    Err(error) => {
                        // It stays `failed`: the safe side (never compacted, listed as failed).
                        eprintln!(
                            "eventbus: could not tell whether stored event #{sequence} has dead \
                             letters left ({error}); it stays failed"
                        );
                        None
                    }
                }
            }
        })
        .collect()
}

fn write_loop(
    manifest: &'static ManifestMeta,
    store: &dyn EventStore,
    letters: &dyn DeadLetterStore,
    queue: &Queue,
) {
    while let Some((appends, outcomes)) = next_batch(queue) {
        let statuses = settle(letters, outcomes);
        if appends.is_empty() {
            // Empty when only resolutions that changed nothing were queued.
            if !statuses.is_empty()
                && let Err(error) = guarded("set_status", || store.set_status(&statuses))
            {
                report_lost_statuses(statuses.len(), &error);
            }
        } else {
            let events: Vec<NewEvent<'_>> = appends
                .iter()
                .map(|r| NewEvent {
                    id: r.id,
                    event: r.event,
                    time: r.time,
                    payload: &r.payload,
                    package: manifest.package,
                    manifest_version: manifest.version,
                    fingerprint: manifest.fingerprint,
                })
                .collect();
            // One transaction, one sync: the new events and the outcomes of earlier ones.
            match guarded("append", || store.append_with_status(&events, &statuses)) {
                Ok(appended) if appended.len() == appends.len() => {
                    for (request, appended) in appends.iter().zip(appended) {
                        request.slot.fill(Ok(appended.sequence));
                    }
                }
                result => {
                    let error: SharedError = match result {
                        Err(error) => error,
                        Ok(appended) => Arc::new(Message(format!(
                            "the event store returned {} results for {} events",
                            appended.len(),
                            appends.len()
                        ))),
                    };
                    for request in &appends {
                        request.slot.fill(Err(error.clone()));
                    }
                    // The outcomes may have been rolled back with the events: alone, they may
                    // still fit (a full disk has room for an update in place).
                    if !statuses.is_empty()
                        && let Err(error) = guarded("set_status", || store.set_status(&statuses))
                    {
                        report_lost_statuses(statuses.len(), &error);
                    }
                }
            }
        }
        let mut state = lock(&queue.state);
        state.busy = false;
        if state.appends.is_empty() && state.statuses.is_empty() {
            queue.idle.notify_all();
        }
    }
}
