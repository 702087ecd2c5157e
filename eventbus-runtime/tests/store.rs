//! The event store: write-ahead, receipts, group commit, processed tracking, recovery, replay,
//! queries, retention, old data after a manifest change, and store failures. Every test uses a
//! real SQLite file in its own temporary directory.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Barrier, Mutex};
use std::time::{Duration, Instant};

use eventbus_runtime::{
    Appended, BusCore, Compacted, DeadLetterReason, DeadLetterStore, DispatchError, EventId,
    EventMeta, EventStore, FailureKind, HandlerFailure, ManifestMeta, NewEvent, Order,
    PersistError, PersistedEvent, PersistedSignal, Policies, Query, Retention, Since,
    SqliteOptions, SqliteStore, Status, StoreError, StoredEvent, Timestamp, UiDirection,
};
use serde::{Deserialize, Serialize};
use tempfile::TempDir;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Install {
    #[serde(rename = "dnpName")]
    dnp_name: String,
    progress: u32,
}

fn install(progress: u32) -> Install {
    Install {
        dnp_name: "bitcoin.dnp.dappnode.eth".into(),
        progress,
    }
}

const fn meta(name: &'static str, payload: Option<&'static str>, persist: bool) -> EventMeta {
    EventMeta {
        name,
        category: "test",
        description: "",
        payload,
        persist,
        ui: UiDirection::None,
        scope: eventbus_runtime::Scope::Local,
        deprecated: None,
        policies: Policies::NONE,
    }
}

static EVENTS: [EventMeta; 4] = [
    meta("packageInstall", Some("Install"), true),
    meta("counter", Some("u32"), true),
    meta("systemRestart", None, true),
    meta("chatter", Some("u32"), false),
];

static MANIFEST: ManifestMeta = ManifestMeta {
    package: "demo",
    version: 1,
    fingerprint: "00000000000000aa",
    events: &EVENTS,
};

/// A generated bus, written by hand.
#[derive(Clone)]
struct Bus {
    core: BusCore,
    package_install: PersistedEvent<Install>,
    counter: PersistedEvent<u32>,
    system_restart: PersistedSignal,
    chatter: eventbus_runtime::Event<u32>,
}

impl eventbus_runtime::FromCore for Bus {
    fn from_core(core: BusCore) -> Self {
        Bus {
            package_install: PersistedEvent::new(&core, &EVENTS[0]),
            counter: PersistedEvent::new(&core, &EVENTS[1]),
            system_restart: PersistedSignal::new(&core, &EVENTS[2]),
            chatter: eventbus_runtime::Event::new(&core, &EVENTS[3]),
            core,
        }
    }
}

fn dir() -> TempDir {
    tempfile::tempdir().unwrap()
}

fn open(dir: &TempDir) -> SqliteStore {
    SqliteStore::open(dir.path().join("events.db")).unwrap()
}

fn bus_on(store: SqliteStore) -> Bus {
    eventbus_runtime::BusBuilder::<Bus>::new(&MANIFEST)
        .event_store(store)
        .build()
        .unwrap()
}

fn failures(core: &BusCore) -> Arc<Mutex<Vec<HandlerFailure>>> {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    core.on_failure(move |f| sink.lock().unwrap().push(f.clone()));
    seen
}

fn all(store: &SqliteStore) -> Vec<StoredEvent> {
    store.query(&Query::new()).unwrap()
}

fn statuses(store: &SqliteStore) -> Vec<(u64, Status)> {
    all(store).iter().map(|r| (r.sequence, r.status)).collect()
}

/// Polls until `done` holds (work on another thread); panics after 10 s.
fn eventually(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn new_event<'a>(event: &'a str, payload: &'a str) -> NewEvent<'a> {
    NewEvent {
        id: EventId::new_v4(),
        event,
        time: Timestamp::now(),
        payload,
        package: "demo",
        manifest_version: 1,
        fingerprint: "00000000000000aa",
    }
}

#[test]
fn an_event_is_stored_before_its_handlers_run() {
    let dir = dir();
    let store = open(&dir);
    let bus = bus_on(store.clone());
    let seen_in_store = Arc::new(Mutex::new(Vec::new()));
    let (reader, log) = (store.clone(), seen_in_store.clone());
    bus.package_install.on(move |e| {
        // The handler runs after the commit: a second connection already sees the row.
        let stored = reader.query(&Query::new().event("packageInstall")).unwrap();
        log.lock()
            .unwrap()
            .push((e.progress, stored.last().map(|r| r.payload.clone())));
    });

    let receipt = bus.package_install.emit(install(40)).unwrap();
    assert!(receipt.is_stored());
    assert_eq!(receipt.sequence(), Some(1));
    assert_eq!(
        *seen_in_store.lock().unwrap(),
        [(
            40,
            Some(serde_json::json!({"dnpName": "bitcoin.dnp.dappnode.eth", "progress": 40}))
        )]
    );

    bus.core.flush_event_store().unwrap();
    let record = &all(&store)[0];
    assert_eq!(Some(record.id), receipt.id());
    assert_eq!(record.event, "packageInstall");
    assert_eq!(
        (
            record.package.as_str(),
            record.manifest_version,
            record.fingerprint.as_str()
        ),
        ("demo", 1, "00000000000000aa")
    );
    assert_eq!(record.status, Status::Processed);
}

#[test]
fn only_persisted_events_are_stored_and_signals_are_stored_as_null() {
    let dir = dir();
    let store = open(&dir);
    let bus = bus_on(store.clone());
    bus.chatter.emit(1);
    let receipt = bus.system_restart.emit().unwrap();
    assert_eq!(receipt.sequence(), Some(1));
    bus.core.emit_json("counter", "5").unwrap();
    bus.core.emit_json("chatter", "6").unwrap();
    let records = all(&store);
    let names: Vec<(&str, &serde_json::Value)> = records
        .iter()
        .map(|r| (r.event.as_str(), &r.payload))
        .collect();
    assert_eq!(
        names,
        [
            ("systemRestart", &serde_json::Value::Null),
            ("counter", &serde_json::json!(5))
        ]
    );
}

#[test]
fn concurrent_emitters_get_gap_free_sequences_in_group_commits() {
    /// Counts the events of every `append` call, holding the first until the test says so.
    struct Counting {
        inner: SqliteStore,
        batches: Mutex<Vec<usize>>,
        gate: Barrier,
        first: AtomicBool,
        /// The size of the held first group, once the writer is inside it.
        held: AtomicUsize,
    }
    impl EventStore for Counting {
        fn append(&self, events: &[NewEvent<'_>]) -> Result<Vec<Appended>, StoreError> {
            if !self.first.swap(true, Ordering::SeqCst) {
                self.held.store(events.len(), Ordering::SeqCst);
                self.gate.wait();
            }
            self.batches.lock().unwrap().push(events.len());
            self.inner.append(events)
        }
        fn set_status(&self, updates: &[(u64, Status)]) -> Result<(), StoreError> {
            self.inner.set_status(updates)
        }
        fn query(&self, query: &Query) -> Result<Vec<StoredEvent>, StoreError> {
            self.inner.query(query)
        }
        fn last_sequence(&self) -> Result<u64, StoreError> {
            self.inner.last_sequence()
        }
        fn compact(&self, retention: &Retention) -> Result<Compacted, StoreError> {
            self.inner.compact(retention)
        }
    }

    const THREADS: usize = 8;
    const EACH: usize = 50;
    let dir = dir();
    let store = open(&dir);
    let counting = Arc::new(Counting {
        inner: store.clone(),
        batches: Mutex::new(Vec::new()),
        gate: Barrier::new(2),
        first: AtomicBool::new(false),
        held: AtomicUsize::new(0),
    });
    struct Shared(Arc<Counting>);
    impl EventStore for Shared {
        fn append(&self, events: &[NewEvent<'_>]) -> Result<Vec<Appended>, StoreError> {
            self.0.append(events)
        }
        fn set_status(&self, updates: &[(u64, Status)]) -> Result<(), StoreError> {
            self.0.set_status(updates)
        }
        fn query(&self, query: &Query) -> Result<Vec<StoredEvent>, StoreError> {
            self.0.query(query)
        }
        fn last_sequence(&self) -> Result<u64, StoreError> {
            self.0.last_sequence()
        }
        fn compact(&self, retention: &Retention) -> Result<Compacted, StoreError> {
            self.0.compact(retention)
        }
    }
    let bus: Bus = eventbus_runtime::BusBuilder::new(&MANIFEST)
        .event_store(Shared(counting.clone()))
        .build()
        .unwrap();
    let handled = Arc::new(AtomicUsize::new(0));
    let count = handled.clone();
    bus.counter.on(move |_| {
        count.fetch_add(1, Ordering::SeqCst);
    });

    let started = Arc::new(Barrier::new(THREADS + 1));
    let receipts: Vec<Vec<u64>> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..THREADS)
            .map(|t| {
                let (bus, started) = (bus.clone(), started.clone());
                scope.spawn(move || {
                    started.wait();
                    (0..EACH)
                        .map(|i| {
                            let value = (t * EACH + i) as u32;
                            bus.counter.emit(value).unwrap().sequence().unwrap()
                        })
                        .collect()
                })
            })
            .collect();
        started.wait();
        // The first commit is held until every emitter has an event in it or queued behind
        // it (each emitter has one emit in flight), so the next commit groups whatever is
        // queued: with 8 emitters one of the two groups holds more than one event.
        eventually("every emitter queued behind the held commit", || {
            let held = counting.held.load(Ordering::SeqCst);
            held > 0 && held + eventbus_runtime::__doc::queued_appends(&bus.core) == THREADS
        });
        counting.gate.wait();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });

    let mut sequences: Vec<u64> = receipts.iter().flatten().copied().collect();
    sequences.sort_unstable();
    let expected: Vec<u64> = (1..=(THREADS * EACH) as u64).collect();
    assert_eq!(
        sequences, expected,
        "every emit got its own sequence, no gap"
    );
    for own in &receipts {
        assert!(
            own.windows(2).all(|w| w[0] < w[1]),
            "one emitter's events stay in order"
        );
    }
    assert_eq!(handled.load(Ordering::SeqCst), THREADS * EACH);
    let batches = counting.batches.lock().unwrap().clone();
    assert_eq!(batches.iter().sum::<usize>(), THREADS * EACH);
    assert!(
        batches.len() < THREADS * EACH && batches.iter().any(|&n| n > 1),
        "concurrent emits share commits: {batches:?}"
    );
    // The payloads are where their receipts say.
    let records = all(&store);
    for (t, own) in receipts.iter().enumerate() {
        for (i, sequence) in own.iter().enumerate() {
            let record = &records[*sequence as usize - 1];
            assert_eq!(record.payload, serde_json::json!(t * EACH + i));
        }
    }
}

#[test]
fn outcomes_are_recorded_and_failures_keep_their_sequence_in_the_dead_letter_queue() {
    let dir = dir();
    let store = open(&dir);
    let bus = bus_on(store.clone());
    let _failures = failures(&bus.core);
    bus.counter.on(|_| ());
    bus.counter
        .on_labeled("picky", |n| if *n == 2 { Err("two") } else { Ok(()) });
    for n in 1..=3 {
        bus.counter.emit(n).unwrap();
    }
    bus.core.flush_event_store().unwrap();
    assert_eq!(
        statuses(&store),
        [
            (1, Status::Processed),
            (2, Status::Failed),
            (3, Status::Processed)
        ]
    );
    // The bus keeps its dead letters in the same file.
    let letters = bus.core.dead_letters().list().unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(letters[0].handler.as_deref(), Some("picky"));
    assert_eq!(letters[0].reason, DeadLetterReason::Failed);
    assert_eq!(store.dead_letter_sequence(letters[0].id).unwrap(), Some(2));
    assert_eq!(DeadLetterStore::len(&store).unwrap(), 1);
}

#[test]
fn a_handler_that_emits_another_event_does_not_blame_the_outer_event() {
    let dir = dir();
    let store = open(&dir);
    let bus = bus_on(store.clone());
    let _failures = failures(&bus.core);
    let inner = bus.clone();
    bus.counter.on(move |n| {
        if *n == 1 {
            inner.package_install.emit(install(1)).unwrap();
        }
    });
    bus.package_install
        .on(|_| Err::<(), _>("install handler failed"));
    bus.counter.emit(1).unwrap();
    bus.core.flush_event_store().unwrap();
    let outcome: Vec<(String, Status)> = all(&store)
        .into_iter()
        .map(|r| (r.event, r.status))
        .collect();
    assert_eq!(
        outcome,
        [
            ("counter".to_owned(), Status::Processed),
            ("packageInstall".to_owned(), Status::Failed)
        ]
    );
}

#[cfg(feature = "async")]
#[test]
fn a_retried_handler_that_recovers_leaves_the_event_processed() {
    let dir = dir();
    let store = open(&dir);
    let bus: Bus = eventbus_runtime::BusBuilder::new(&MANIFEST)
        .event_store(store.clone())
        .event("counter", |e| {
            e.retry(eventbus_runtime::Retry {
                attempts: 3,
                backoff: Duration::from_millis(1),
                max_backoff: Duration::from_millis(1),
            })
        })
        .build()
        .unwrap();
    let _failures = failures(&bus.core);
    let calls = Arc::new(AtomicUsize::new(0));
    let count = calls.clone();
    bus.counter.on(move |_| {
        if count.fetch_add(1, Ordering::SeqCst) == 0 {
            Err("first attempt fails")
        } else {
            Ok(())
        }
    });
    bus.counter.emit(9).unwrap();
    eventually("the retry", || calls.load(Ordering::SeqCst) == 2);
    eventually("the outcome", || {
        bus.core.flush_event_store().unwrap();
        statuses(&store) == [(1, Status::Processed)]
    });
    assert!(bus.core.dead_letters().is_empty().unwrap());
}

#[cfg(feature = "async")]
#[test]
fn an_event_for_an_async_handler_is_processed_when_the_handler_finishes() {
    let dir = dir();
    let store = open(&dir);
    // Built outside any runtime: async handlers run on the bus's internal runtime thread.
    let bus = bus_on(store.clone());
    let release = Arc::new(tokio::sync::Semaphore::new(0));
    let gate = release.clone();
    let finished = Arc::new(AtomicUsize::new(0));
    let done = finished.clone();
    // Concurrency 1: the second event waits in the handler's queue.
    bus.counter.on_async_with(
        eventbus_runtime::HandlerOptions::new().concurrency(1),
        move |_| {
            let (gate, done) = (gate.clone(), done.clone());
            async move {
                gate.acquire().await.unwrap().forget();
                done.fetch_add(1, Ordering::SeqCst);
            }
        },
    );
    bus.counter.emit(1).unwrap();
    bus.counter.emit(2).unwrap();
    bus.core.flush_event_store().unwrap();
    assert_eq!(
        statuses(&store),
        [(1, Status::Pending), (2, Status::Pending)]
    );
    release.add_permits(1);
    eventually("the first call", || finished.load(Ordering::SeqCst) == 1);
    eventually("the first outcome", || {
        bus.core.flush_event_store().unwrap();
        statuses(&store)[0].1 == Status::Processed
    });
    assert_eq!(statuses(&store)[1], (2, Status::Pending));
    release.add_permits(1);
    eventually("the second outcome", || {
        bus.core.flush_event_store().unwrap();
        statuses(&store) == [(1, Status::Processed), (2, Status::Processed)]
    });
}

#[test]
fn recovery_redelivers_unprocessed_events_in_order_and_only_once() {
    let dir = dir();
    {
        // An earlier run: three events stored, the process died before handling two of them.
        let store = open(&dir);
        let appended = store
            .append(&[
                new_event("counter", "1"),
                new_event("counter", "2"),
                new_event("systemRestart", "null"),
                new_event("counter", "4"),
            ])
            .unwrap();
        assert_eq!(
            appended.iter().map(|a| a.sequence).collect::<Vec<_>>(),
            [1, 2, 3, 4]
        );
        store.set_status(&[(2, Status::Processed)]).unwrap();
    }
    let store = open(&dir);
    let bus = bus_on(store.clone());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    bus.counter
        .on(move |n| log.lock().unwrap().push(format!("counter {n}")));
    let log = seen.clone();
    bus.system_restart
        .on(move || log.lock().unwrap().push("restart".into()));
    // An event of this run that is still being handled is not recovery's business.
    let hold = Arc::new(Barrier::new(2));
    let (release, bus2) = (hold.clone(), bus.clone());
    bus.package_install.on(move |_| {
        release.wait();
        release.wait();
    });
    let emitter = std::thread::spawn(move || bus2.package_install.emit(install(1)).unwrap());
    hold.wait(); // the handler of sequence 5 is running

    let report = bus.core.recover().unwrap();
    assert_eq!(report.dispatched, 3);
    assert!(report.unreadable.is_empty());
    assert_eq!(*seen.lock().unwrap(), ["counter 1", "restart", "counter 4"]);
    assert_eq!(statuses(&store)[4], (5, Status::Pending));
    hold.wait();
    assert_eq!(emitter.join().unwrap().sequence(), Some(5));

    assert_eq!(bus.core.recover().unwrap().dispatched, 0);
    bus.core.flush_event_store().unwrap();
    assert!(
        statuses(&store)
            .iter()
            .all(|(_, s)| *s == Status::Processed)
    );
    assert_eq!(seen.lock().unwrap().len(), 3);
    assert_eq!(
        store.last_sequence().unwrap(),
        5,
        "recovery stores nothing again"
    );
}

#[test]
fn old_payloads_that_no_longer_fit_are_reported_with_their_sequence_and_skipped() {
    let dir = dir();
    {
        let store = open(&dir);
        store
            .append(&[
                new_event("counter", "1"),
                new_event("counter", r#"{"old": "shape"}"#),
                new_event("removedEvent", "{}"),
                new_event("counter", "4"),
            ])
            .unwrap();
    }
    let store = open(&dir);
    let bus = bus_on(store.clone());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    bus.counter.on(move |n| log.lock().unwrap().push(*n));

    let report = bus.core.recover().unwrap();
    assert_eq!(report.dispatched, 2);
    assert_eq!(*seen.lock().unwrap(), [1, 4]);
    let unreadable: Vec<(u64, &str)> = report
        .unreadable
        .iter()
        .map(|u| (u.sequence, u.event.as_str()))
        .collect();
    assert_eq!(unreadable, [(2, "counter"), (3, "removedEvent")]);
    assert!(
        report.unreadable[0].error.contains("invalid type"),
        "{}",
        report.unreadable[0]
    );
    assert!(
        report.unreadable[0]
            .to_string()
            .starts_with("stored event #2 (`counter`)")
    );
    assert_eq!(
        statuses(&store),
        [
            (1, Status::Processed),
            (2, Status::Failed),
            (3, Status::Failed),
            (4, Status::Processed)
        ]
    );

    // Typed reads and replay report the same record and go on.
    let records = bus.counter.records(Query::new()).unwrap();
    assert_eq!(
        records
            .records
            .iter()
            .map(|r| r.payload)
            .collect::<Vec<_>>(),
        [1, 4]
    );
    assert_eq!(records.unreadable.len(), 1);
    assert_eq!(records.unreadable[0].sequence, 2);
    let replayed = bus.core.replay(&Query::new()).unwrap();
    assert_eq!(replayed.dispatched, 2);
    assert_eq!(replayed.unreadable.len(), 2);
}

#[test]
fn replay_selects_by_sequence_time_and_name_and_changes_nothing() {
    let dir = dir();
    let store = open(&dir);
    let base = 1_700_000_000_000;
    let rows: Vec<(String, String, i64)> = (1..=6)
        .map(|n| {
            let event = if n % 2 == 0 {
                "packageInstall"
            } else {
                "counter"
            };
            let payload = if n % 2 == 0 {
                serde_json::to_string(&install(n)).unwrap()
            } else {
                n.to_string()
            };
            (event.to_owned(), payload, base + i64::from(n) * 60_000)
        })
        .collect();
    let events: Vec<NewEvent<'_>> = rows
        .iter()
        .map(|(event, payload, time)| NewEvent {
            time: Timestamp::from_millis(*time),
            ..new_event(event, payload)
        })
        .collect();
    store.append(&events).unwrap();
    store
        .set_status(&(1..=6).map(|s| (s, Status::Processed)).collect::<Vec<_>>())
        .unwrap();

    let bus = bus_on(store.clone());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    bus.counter
        .on(move |n| log.lock().unwrap().push(format!("c{n}")));
    let log = seen.clone();
    bus.package_install
        .on(move |e| log.lock().unwrap().push(format!("i{}", e.progress)));
    let replay = |query: Query| {
        let report = bus.core.replay(&query).unwrap();
        let seen: Vec<String> = std::mem::take(&mut *seen.lock().unwrap());
        assert_eq!(report.dispatched as usize, seen.len());
        seen
    };

    assert_eq!(replay(Query::new()), ["c1", "i2", "c3", "i4", "c5", "i6"]);
    assert_eq!(
        replay(Query::new().since(Since::Sequence(4))),
        ["i4", "c5", "i6"]
    );
    assert_eq!(replay(Query::new().after(4)), ["c5", "i6"]);
    assert_eq!(
        replay(Query::new().since(Since::Time(Timestamp::from_millis(base + 5 * 60_000)))),
        ["c5", "i6"]
    );
    assert_eq!(
        replay(Query::new().event("packageInstall")),
        ["i2", "i4", "i6"]
    );
    assert_eq!(
        replay(Query::new().event("counter").order(Order::Desc).limit(2)),
        ["c5", "c3"]
    );
    assert_eq!(
        replay(
            Query::new()
                .from_time(Timestamp::from_millis(base + 2 * 60_000))
                .to_time(Timestamp::from_millis(base + 4 * 60_000))
        ),
        ["i2", "c3"]
    );
    bus.core.flush_event_store().unwrap();
    assert_eq!(store.last_sequence().unwrap(), 6, "replay stores nothing");
    assert!(
        statuses(&store)
            .iter()
            .all(|(_, s)| *s == Status::Processed)
    );
}

#[test]
fn replay_pages_through_more_records_than_one_page() {
    let dir = dir();
    let store = open(&dir);
    let texts: Vec<String> = (0..1300).map(|n| n.to_string()).collect();
    let events: Vec<NewEvent<'_>> = texts.iter().map(|t| new_event("counter", t)).collect();
    store.append(&events).unwrap();
    let bus = bus_on(store);
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    bus.counter.on(move |n| log.lock().unwrap().push(*n));
    let report = bus.core.replay(&Query::new().limit(1100)).unwrap();
    assert_eq!(report.dispatched, 1100);
    assert_eq!(*seen.lock().unwrap(), (0..1100).collect::<Vec<u32>>());
    seen.lock().unwrap().clear();
    let report = bus.core.replay(&Query::new().order(Order::Desc)).unwrap();
    assert_eq!(report.dispatched, 1300);
    assert_eq!(*seen.lock().unwrap(), (0..1300).rev().collect::<Vec<u32>>());
}

#[test]
fn the_audit_trail_is_queryable_as_typed_records_or_json() {
    let dir = dir();
    let store = open(&dir);
    let bus = bus_on(store.clone());
    for n in 1..=3 {
        bus.package_install.emit(install(n * 10)).unwrap();
        bus.counter.emit(n).unwrap();
    }
    bus.core.flush_event_store().unwrap();
    let typed = bus
        .package_install
        .records(Query::new().order(Order::Desc).limit(2))
        .unwrap();
    let progress: Vec<(u64, u32)> = typed
        .records
        .iter()
        .map(|r| (r.sequence, r.payload.progress))
        .collect();
    assert_eq!(progress, [(5, 30), (3, 20)]);
    assert!(typed.records.iter().all(|r| r.status == Status::Processed));

    let json = serde_json::to_value(
        store
            .query(
                &Query::new()
                    .event("counter")
                    .status(Status::Processed)
                    .limit(1),
            )
            .unwrap(),
    )
    .unwrap();
    let record = &json[0];
    assert_eq!(record["sequence"], 2);
    assert_eq!(record["event"], "counter");
    assert_eq!(record["payload"], 1);
    assert_eq!(record["status"], "processed");
    assert_eq!(record["manifest_version"], 1);
    assert!(record["id"].as_str().unwrap().parse::<EventId>().is_ok());
    assert!(
        store
            .query(&Query::new().status(Status::Pending))
            .unwrap()
            .is_empty()
    );
}

#[test]
fn retention_removes_old_processed_events_only() {
    let dir = dir();
    let store = open(&dir);
    let old = Timestamp::from_millis(Timestamp::now().as_millis() - 3 * 86_400_000);
    let texts: Vec<String> = (1..=10).map(|n| n.to_string()).collect();
    let events: Vec<NewEvent<'_>> = texts
        .iter()
        .enumerate()
        .map(|(i, t)| NewEvent {
            time: if i < 5 { old } else { Timestamp::now() },
            ..new_event("counter", t)
        })
        .collect();
    store.append(&events).unwrap();
    let mut updates: Vec<(u64, Status)> = (1..=10).map(|s| (s, Status::Processed)).collect();
    updates[1].1 = Status::Pending; // 2: still pending
    updates[2].1 = Status::Failed; // 3: failed
    updates[6].1 = Status::Failed; // 7: failed
    store.set_status(&updates).unwrap();
    let bus = bus_on(store.clone());
    let _failures = failures(&bus.core);
    bus.counter.on(|_| Err::<(), _>("keep a dead letter"));
    bus.counter.emit(11).unwrap();
    bus.core.flush_event_store().unwrap();

    let by_age = store
        .compact(&Retention::new().max_age(Duration::from_secs(86_400)))
        .unwrap();
    assert_eq!(by_age.removed, 3, "1, 4 and 5 are old and processed");
    let kept: Vec<u64> = all(&store).iter().map(|r| r.sequence).collect();
    assert_eq!(kept, [2, 3, 6, 7, 8, 9, 10, 11]);

    let by_count = store.compact(&Retention::new().max_count(3)).unwrap();
    assert_eq!(
        by_count.removed, 2,
        "6 and 8 are processed and older than the newest 3"
    );
    let kept: Vec<u64> = all(&store).iter().map(|r| r.sequence).collect();
    assert_eq!(kept, [2, 3, 7, 9, 10, 11]);

    let everything = store.compact(&Retention::new().max_count(0)).unwrap();
    assert_eq!(everything.removed, 2);
    assert_eq!(
        statuses(&store),
        [
            (2, Status::Pending),
            (3, Status::Failed),
            (7, Status::Failed),
            (11, Status::Failed)
        ]
    );
    assert_eq!(
        bus.core.dead_letters().len().unwrap(),
        1,
        "dead letters stay"
    );

    // Sequence numbers are never reused, even once the newest events are gone.
    assert_eq!(bus.counter.emit(12).unwrap().sequence(), Some(12));
}

#[test]
fn the_schema_is_versioned_and_foreign_or_newer_files_are_refused() {
    let dir = dir();
    let path = dir.path().join("events.db");
    let store = SqliteStore::open(&path).unwrap();
    assert_eq!(store.schema_version().unwrap(), 1);
    store.integrity_check().unwrap();
    drop(store);
    // Reopening applies nothing twice.
    assert_eq!(
        SqliteStore::open(&path).unwrap().schema_version().unwrap(),
        1
    );

    let connection = rusqlite::Connection::open(&path).unwrap();
    connection
        .execute(
            "INSERT INTO eventbus_schema (version, description, applied_at) VALUES (99, 'future', 0)",
            [],
        )
        .unwrap();
    drop(connection);
    let error = SqliteStore::open(&path).unwrap_err().to_string();
    assert!(
        error.contains("schema version 99, newer than this eventbus reads (1)"),
        "{error}"
    );
    let error = SqliteStore::open_read_only(&path).unwrap_err().to_string();
    assert!(error.contains("schema version 99"), "{error}");

    let foreign = dir.path().join("other.db");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE accounts (id INTEGER PRIMARY KEY)")
        .unwrap();
    let error = SqliteStore::open(&foreign).unwrap_err().to_string();
    assert!(
        error.contains("another application, not an eventbus store"),
        "{error}"
    );

    let missing = dir.path().join("no-such-dir").join("events.db");
    let error = SqliteStore::open(&missing).unwrap_err().to_string();
    assert!(error.starts_with("cannot open `"), "{error}");
}

#[test]
fn a_read_only_store_acknowledges_nothing_and_runs_no_handler() {
    let dir = dir();
    let path = dir.path().join("events.db");
    drop(SqliteStore::open(&path).unwrap());
    let store = SqliteStore::open_read_only(&path).unwrap();
    let bus = bus_on(store.clone());
    let failures = failures(&bus.core);
    let ran = Arc::new(AtomicUsize::new(0));
    let count = ran.clone();
    bus.counter.on(move |_| {
        count.fetch_add(1, Ordering::SeqCst);
    });

    let error = bus.counter.emit(1).unwrap_err();
    assert!(matches!(
        error,
        PersistError::Store {
            event: "counter",
            ..
        }
    ));
    assert!(error.to_string().contains("read-only"), "{error}");
    let error = bus.core.emit_json("counter", "2").unwrap_err();
    assert!(
        matches!(
            error,
            DispatchError::NotStored {
                event: "counter",
                ..
            }
        ),
        "{error}"
    );
    bus.counter.event().emit(3); // the plain `Event::emit` refuses too, and reports it
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    let kinds: Vec<FailureKind> = failures.lock().unwrap().iter().map(|f| f.kind()).collect();
    assert_eq!(kinds, [FailureKind::NotStored; 3]);
    assert!(all(&store).is_empty());
    // A non-persisted event is unaffected.
    bus.chatter.emit(1);
}

#[test]
fn emit_ref_on_a_persisted_event_returns_the_receipt_or_the_error() {
    // Stored: the receipt of `emit_ref`, not `Event::emit_ref`'s `()` through `Deref`.
    let stored_dir = dir();
    let store = open(&stored_dir);
    let bus = bus_on(store.clone());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    bus.package_install
        .on(move |e| log.lock().unwrap().push(e.progress));
    let payload = install(42);
    let receipt: Result<eventbus_runtime::Receipt, PersistError> =
        bus.package_install.emit_ref(&payload);
    assert_eq!(receipt.unwrap().sequence(), Some(1));
    assert_eq!(*seen.lock().unwrap(), [42]);
    assert_eq!(all(&store)[0].payload["progress"], 42);

    // Not stored: the error comes back, and no handler ran.
    let read_only_dir = dir();
    let path = read_only_dir.path().join("events.db");
    drop(SqliteStore::open(&path).unwrap());
    let bus = bus_on(SqliteStore::open_read_only(&path).unwrap());
    let failures = failures(&bus.core);
    let ran = Arc::new(AtomicUsize::new(0));
    let count = ran.clone();
    bus.counter.on(move |_| {
        count.fetch_add(1, Ordering::SeqCst);
    });
    let error = bus.counter.emit_ref(&1).unwrap_err();
    assert!(
        matches!(
            error,
            PersistError::Store {
                event: "counter",
                ..
            }
        ),
        "{error}"
    );
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    // The untracked escape hatch stores (here: refuses) too, but only reports the failure.
    bus.counter.event().emit_ref(&2);
    assert_eq!(ran.load(Ordering::SeqCst), 0);
    let kinds: Vec<FailureKind> = failures.lock().unwrap().iter().map(|f| f.kind()).collect();
    assert_eq!(kinds, [FailureKind::NotStored; 2]);
}

#[test]
fn a_full_disk_acknowledges_exactly_what_was_stored_and_leaves_no_gap() {
    let dir = dir();
    let path = dir.path().join("events.db");
    let store = SqliteStore::open_with(&path, SqliteOptions::new().max_size(96 * 1024)).unwrap();
    let bus = bus_on(store.clone());
    let _failures = failures(&bus.core);
    let handled = Arc::new(Mutex::new(Vec::new()));
    let log = handled.clone();
    bus.package_install
        .on(move |e| log.lock().unwrap().push(e.progress));

    let big = |n: u32| Install {
        dnp_name: format!("{n}-{}", "x".repeat(2_000)),
        progress: n,
    };
    let mut acknowledged = Vec::new();
    let mut refused = Vec::new();
    for n in 0..200 {
        match bus.package_install.emit(big(n)) {
            Ok(receipt) => acknowledged.push((n, receipt.sequence().unwrap())),
            Err(error) => {
                assert!(error.to_string().contains("full"), "{error}");
                refused.push(n);
            }
        }
    }
    assert!(!acknowledged.is_empty() && !refused.is_empty());
    assert_eq!(
        *handled.lock().unwrap(),
        acknowledged.iter().map(|(n, _)| *n).collect::<Vec<_>>(),
        "handlers ran for stored events only"
    );
    let stored: Vec<(u32, u64)> = all(&store)
        .iter()
        .map(|r| (r.payload["progress"].as_u64().unwrap() as u32, r.sequence))
        .collect();
    assert_eq!(
        stored, acknowledged,
        "exactly the acknowledged events, under their sequences"
    );
    let last = acknowledged.last().unwrap().1;
    assert_eq!(store.last_sequence().unwrap(), last);

    // Room again: the next event continues the sequence without a gap.
    bus.core.flush_event_store().unwrap();
    store.compact(&Retention::new().max_count(0)).unwrap();
    assert_eq!(
        bus.package_install.emit(install(1)).unwrap().sequence(),
        Some(last + 1)
    );
    store.integrity_check().unwrap();
}

#[test]
fn without_an_event_store_persisted_events_are_delivered_unstored() {
    let bus: Bus = eventbus_runtime::BusBuilder::new(&MANIFEST)
        .build()
        .unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let count = ran.clone();
    bus.counter.on(move |_| {
        count.fetch_add(1, Ordering::SeqCst);
    });
    let receipt = bus.counter.emit(1).unwrap();
    assert!(!receipt.is_stored());
    assert_eq!(ran.load(Ordering::SeqCst), 1);
    assert!(bus.core.event_store().is_none());
    let error = bus.core.recover().unwrap_err().to_string();
    assert!(error.contains("no event store"), "{error}");
    assert!(bus.counter.records(Query::new()).is_err());
}

#[test]
fn an_emit_after_shutdown_is_refused_and_not_stored() {
    let dir = dir();
    let store = open(&dir);
    let bus = bus_on(store.clone());
    let _failures = failures(&bus.core);
    bus.core.close();
    let error = bus.counter.emit(1).unwrap_err();
    assert!(matches!(error, PersistError::ShutDown { event: "counter" }));
    assert!(all(&store).is_empty());
}

// ---------------------------------------------------------------------------------------------
// Dead letters of stored events: resolution, re-dispatch without a second write, restarts

/// Which stored events `--status failed` lists.
fn failed(store: &SqliteStore) -> Vec<u64> {
    store
        .query(&Query::new().status(Status::Failed))
        .unwrap()
        .iter()
        .map(|r| r.sequence)
        .collect()
}

#[test]
fn resolving_the_last_dead_letter_of_a_stored_event_marks_it_processed() {
    let dir = dir();
    let store = open(&dir);
    let bus = bus_on(store.clone());
    let _failures = failures(&bus.core);
    let down = Arc::new(AtomicBool::new(true));
    let (mailer_down, indexer_down) = (down.clone(), down.clone());
    bus.counter.on_labeled("mailer", move |n| {
        if *n == 2 && mailer_down.load(Ordering::SeqCst) {
            Err("smtp down")
        } else {
            Ok(())
        }
    });
    bus.counter.on_labeled("indexer", move |n| {
        if *n != 1 && indexer_down.load(Ordering::SeqCst) {
            Err("index offline")
        } else {
            Ok(())
        }
    });
    for n in 1..=3 {
        bus.counter.emit(n).unwrap();
    }
    bus.core.flush_event_store().unwrap();
    assert_eq!(failed(&store), [2, 3]);
    let dead = bus.core.dead_letters();
    let letter = |handler: &str, payload: u32| {
        dead.list()
            .unwrap()
            .into_iter()
            .find(|l| l.handler.as_deref() == Some(handler) && l.payload == payload)
            .unwrap()
            .id
    };

    // A re-dispatch that fails again keeps the event failed, its new letter linked to it.
    dead.redispatch(letter("mailer", 2)).unwrap();
    bus.core.flush_event_store().unwrap();
    assert_eq!(failed(&store), [2, 3]);
    let again = letter("mailer", 2);
    assert_eq!(store.dead_letter_sequence(again).unwrap(), Some(2));

    // One of two letters resolved: still failed, the other one is owed.
    down.store(false, Ordering::SeqCst);
    dead.redispatch(again).unwrap();
    bus.core.flush_event_store().unwrap();
    assert_eq!(failed(&store), [2, 3]);
    // The last one: processed.
    dead.redispatch(letter("indexer", 2)).unwrap();
    bus.core.flush_event_store().unwrap();
    assert_eq!(failed(&store), [3]);

    // Discarding the last letter settles the event too (dealt with by hand).
    dead.discard(letter("indexer", 3)).unwrap().unwrap();
    bus.core.flush_event_store().unwrap();
    assert!(failed(&store).is_empty());
    assert!(dead.is_empty().unwrap());
    assert_eq!(
        statuses(&store),
        [
            (1, Status::Processed),
            (2, Status::Processed),
            (3, Status::Processed)
        ]
    );
    // So retention can remove them now.
    let compacted = store.compact(&Retention::new().max_count(0)).unwrap();
    assert_eq!(compacted.removed, 3);
    assert!(all(&store).is_empty());
}

#[cfg(feature = "async")]
mod rate_limited {
    use super::*;
    use eventbus_runtime::RateLimit;

    static EVENTS: [EventMeta; 1] = [EventMeta {
        policies: Policies {
            rate_limit: Some(RateLimit {
                count: 1,
                per: Duration::from_secs(1),
                burst: 1,
            }),
            ..Policies::NONE
        },
        ..meta("counter", Some("u32"), true)
    }];

    static MANIFEST: ManifestMeta = ManifestMeta {
        package: "demo",
        version: 1,
        fingerprint: "00000000000000ab",
        events: &EVENTS,
    };

    #[tokio::test(start_paused = true)]
    async fn redispatching_an_event_level_letter_delivers_the_stored_record_without_storing_it_again()
     {
        let dir = dir();
        let store = open(&dir);
        let core: BusCore = BusCore::builder(&MANIFEST)
            .event_store(store.clone())
            .rate_limit_queue(1)
            .build()
            .unwrap();
        let _failures = failures(&core);
        let counter: PersistedEvent<u32> = PersistedEvent::new(&core, &EVENTS[0]);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        counter.on(move |n| log.lock().unwrap().push(*n));

        // 1 passes, 2 waits for a token, 3 overflows the queue of 1 into the dead letters.
        let receipts: Vec<_> = (1..=3).map(|n| counter.emit(n).unwrap()).collect();
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert_eq!(*seen.lock().unwrap(), [1, 2]);
        let letters = core.dead_letters().list().unwrap();
        assert_eq!(letters.len(), 1);
        assert_eq!(
            (letters[0].reason, letters[0].handler.as_deref()),
            (DeadLetterReason::Overflow, None)
        );
        assert_eq!(
            store.dead_letter_sequence(letters[0].id).unwrap(),
            receipts[2].sequence()
        );
        core.flush_event_store().unwrap();
        let before: Vec<(u64, EventId)> = all(&store).iter().map(|r| (r.sequence, r.id)).collect();
        assert_eq!(before.len(), 3);
        assert_eq!(failed(&store), [3]);

        core.dead_letters().redispatch(letters[0].id).unwrap();
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(*seen.lock().unwrap(), [1, 2, 3]);
        core.flush_event_store().unwrap();
        let after: Vec<(u64, EventId)> = all(&store).iter().map(|r| (r.sequence, r.id)).collect();
        assert_eq!(after, before, "the same records, no second write");
        assert_eq!(store.last_sequence().unwrap(), 3);
        assert_eq!(
            statuses(&store),
            [
                (1, Status::Processed),
                (2, Status::Processed),
                (3, Status::Processed)
            ]
        );
    }
}

#[test]
fn persisted_dead_letters_survive_a_restart_and_redispatch_on_the_new_bus() {
    let dir = dir();
    let first = bus_on(open(&dir));
    let _failures = failures(&first.core);
    first
        .package_install
        .on_labeled("notifier", |_| Err::<(), _>("push service down"));
    let receipt = first.package_install.emit(install(70)).unwrap();
    first.core.flush_event_store().unwrap();
    drop(first);

    // The next start: a new store handle, a new bus, the handler subscribed again.
    let store = open(&dir);
    let second = bus_on(store.clone());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    second
        .package_install
        .on_labeled("notifier", move |e| log.lock().unwrap().push(e.progress));
    assert_eq!(
        second.core.recover().unwrap().dispatched,
        0,
        "failed, not pending"
    );
    let letters = second.core.dead_letters().list().unwrap();
    assert_eq!(letters.len(), 1);
    assert_eq!(
        (letters[0].handler.as_deref(), letters[0].error.as_str()),
        (Some("notifier"), "push service down")
    );
    assert_eq!(
        store.dead_letter_sequence(letters[0].id).unwrap(),
        receipt.sequence()
    );

    second
        .core
        .dead_letters()
        .redispatch(letters[0].id)
        .unwrap();
    assert_eq!(*seen.lock().unwrap(), [70]);
    second.core.flush_event_store().unwrap();
    assert!(second.core.dead_letters().is_empty().unwrap());
    assert_eq!(statuses(&store), [(1, Status::Processed)]);
}

#[cfg(feature = "async")]
#[tokio::test]
async fn shutdown_makes_the_outcomes_durable_so_recovery_does_not_deliver_again() {
    let dir = dir();
    let bus = bus_on(open(&dir));
    bus.counter.on_async(|_| async {
        tokio::time::sleep(Duration::from_millis(20)).await;
    });
    bus.counter.emit(1).unwrap();
    let report = bus.core.shutdown().await;
    assert!(report.is_clean(), "{report:?}");
    assert_eq!(report.event_store_error, None);

    // The bus is still alive (the process could exit now): another handle on the file sees the
    // outcome, and a new bus's recovery has nothing to deliver.
    let store = open(&dir);
    assert_eq!(statuses(&store), [(1, Status::Processed)]);
    let next = bus_on(store);
    let delivered = Arc::new(AtomicUsize::new(0));
    let count = delivered.clone();
    next.counter.on(move |_| {
        count.fetch_add(1, Ordering::SeqCst);
    });
    assert_eq!(next.core.recover().unwrap().dispatched, 0);
    assert_eq!(delivered.load(Ordering::SeqCst), 0);
}

// ---------------------------------------------------------------------------------------------
// Catch-up subscriptions (streams: feature `async`)

#[cfg(feature = "async")]
mod catch_up {
    use super::*;

    /// Receives the next item, failing the test instead of hanging when none comes.
    async fn next_item<T: eventbus_runtime::Payload>(
        stream: &mut eventbus_runtime::CatchUp<T>,
    ) -> Option<Result<eventbus_runtime::Record<T>, eventbus_runtime::CatchUpError>> {
        tokio::time::timeout(Duration::from_secs(10), stream.recv())
            .await
            .expect("the catch-up stream delivered nothing for 10 s")
    }

    #[tokio::test]
    async fn a_catch_up_subscription_delivers_history_then_live_events_exactly_once_in_order() {
        const HISTORY: u32 = 600; // more than two pages of the stream's reads
        const THREADS: u32 = 3;
        const PER_THREAD: u32 = 200;
        let dir = dir();
        let store = open(&dir);
        let bus = bus_on(store.clone());
        for n in 0..HISTORY {
            bus.counter.emit(n).unwrap();
            if n % 7 == 0 {
                // Another event in between: the counter's sequence numbers are not consecutive.
                bus.package_install.emit(install(n)).unwrap();
            }
        }

        let mut stream = bus.counter.subscribe_from(Since::Sequence(1)).unwrap();
        assert_eq!(bus.counter.listener_count(), 1);
        let first = next_item(&mut stream).await.unwrap().unwrap();
        assert_eq!((first.sequence, first.payload), (1, 0));

        // The history is still being read (one page is buffered): emitters start now, on other
        // threads, and run while the consumer goes on.
        let go = Arc::new(Barrier::new(THREADS as usize + 1));
        let emitters: Vec<_> = (0..THREADS)
            .map(|t| {
                let (bus, go) = (bus.clone(), go.clone());
                std::thread::spawn(move || {
                    go.wait();
                    for i in 0..PER_THREAD {
                        let n = HISTORY + t * PER_THREAD + i;
                        bus.counter.emit(n).unwrap();
                        if i % 5 == 0 {
                            bus.package_install.emit(install(n)).unwrap();
                        }
                    }
                })
            })
            .collect();
        let end_of_history = store.last_sequence().unwrap();
        go.wait();
        // Live events are stored before the consumer reads the rest of the history, so the reads
        // cross the seam while the emitters go on.
        let deadline = Instant::now() + Duration::from_secs(10);
        while store.last_sequence().unwrap() <= end_of_history {
            assert!(Instant::now() < deadline, "the emitters stored nothing");
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        assert_eq!(stream.position(), 1, "the history is not read yet");
        let mut received = vec![(first.sequence, first.payload)];
        let total = (HISTORY + THREADS * PER_THREAD) as usize;
        while received.len() < total {
            let record = next_item(&mut stream).await.unwrap().unwrap();
            received.push((record.sequence, record.payload));
        }
        for emitter in emitters {
            emitter.join().unwrap();
        }
        assert!(stream.try_recv().is_none(), "nothing after the last event");

        // Exactly the stored counter events, each once, in sequence order.
        let stored: Vec<(u64, u32)> = store
            .query(&Query::new().event("counter"))
            .unwrap()
            .iter()
            .map(|r| (r.sequence, r.payload.as_u64().unwrap() as u32))
            .collect();
        assert_eq!(stored.len(), total);
        assert_eq!(received, stored);
        // Live events arrived too (not only the history read at the start).
        let mut payloads: Vec<u32> = received.iter().map(|(_, n)| *n).collect();
        payloads.sort_unstable();
        assert_eq!(payloads, (0..total as u32).collect::<Vec<_>>());
        assert_eq!(stream.position(), stored.last().unwrap().0);

        // A new event after catching up is delivered too; dropping the stream unsubscribes it.
        let receipt = bus.counter.emit(9_999).unwrap();
        let record = next_item(&mut stream).await.unwrap().unwrap();
        assert_eq!(
            (Some(record.sequence), record.id),
            (receipt.sequence(), receipt.id().unwrap())
        );
        drop(stream);
        assert_eq!(bus.counter.listener_count(), 0);
    }

    #[tokio::test]
    async fn a_catch_up_subscription_starts_at_a_time_and_resumes_from_its_position() {
        let dir = dir();
        {
            let at = |millis| NewEvent {
                time: Timestamp::from_millis(millis),
                ..new_event("counter", "0")
            };
            let store = open(&dir);
            let mut events = vec![at(1_000), at(2_000), at(3_000)];
            for (event, payload) in events.iter_mut().zip(["1", "2", "3"]) {
                event.payload = payload;
            }
            store.append(&events).unwrap();
        }
        let bus = bus_on(open(&dir));
        let mut stream = bus
            .counter
            .subscribe_from(Since::Time(Timestamp::from_millis(2_000)))
            .unwrap();
        assert_eq!(next_item(&mut stream).await.unwrap().unwrap().payload, 2);
        let position = stream.position();
        assert_eq!(position, 2);
        drop(stream);

        // A new stream from the position after the last one handed out: no duplicate.
        bus.counter.emit(4).unwrap();
        let mut resumed = bus
            .counter
            .subscribe_from(Since::Sequence(position + 1))
            .unwrap();
        let payloads = [
            next_item(&mut resumed).await.unwrap().unwrap().payload,
            next_item(&mut resumed).await.unwrap().unwrap().payload,
        ];
        assert_eq!(payloads, [3, 4]);

        // A time after every stored event: only new events.
        let mut later = bus
            .counter
            .subscribe_from(Since::Time(Timestamp::from_millis(i64::MAX / 2)))
            .unwrap();
        assert!(later.try_recv().is_none());
        bus.counter.emit(5).unwrap();
        let record = later.try_recv().unwrap().unwrap();
        assert_eq!((record.sequence, record.payload), (5, 5));
    }

    #[tokio::test]
    async fn a_stale_record_is_reported_with_its_sequence_and_the_catch_up_goes_on() {
        let dir = dir();
        {
            let store = open(&dir);
            store
                .append(&[
                    new_event("counter", "1"),
                    new_event("counter", r#"{"old": "shape"}"#),
                    new_event("counter", "3"),
                ])
                .unwrap();
        }
        let bus = bus_on(open(&dir));
        let mut stream = bus.counter.subscribe_from(Since::Sequence(1)).unwrap();
        assert_eq!(next_item(&mut stream).await.unwrap().unwrap().payload, 1);
        match next_item(&mut stream).await.unwrap() {
            Err(eventbus_runtime::CatchUpError::Unreadable(error)) => {
                assert_eq!((error.sequence, error.event.as_str()), (2, "counter"));
                assert!(error.message.contains("invalid type"), "{error}");
            }
            other => panic!("expected the stale record #2, got {other:?}"),
        }
        assert_eq!(stream.position(), 2);
        assert_eq!(next_item(&mut stream).await.unwrap().unwrap().payload, 3);
        bus.counter.emit(4).unwrap();
        let record = next_item(&mut stream).await.unwrap().unwrap();
        assert_eq!((record.sequence, record.payload), (4, 4));
    }

    #[tokio::test]
    async fn a_catch_up_subscription_ends_when_the_bus_shuts_down() {
        let dir = dir();
        let bus = bus_on(open(&dir));
        bus.system_restart.emit().unwrap();
        let mut stream = bus
            .system_restart
            .subscribe_from(Since::Sequence(1))
            .unwrap();
        let consumer = tokio::spawn(async move {
            let mut sequences = Vec::new();
            while let Some(item) = stream.recv().await {
                sequences.push(item.unwrap().sequence);
            }
            sequences
        });
        tokio::task::yield_now().await;
        bus.system_restart.emit().unwrap();
        let report = bus.core.shutdown().await;
        assert!(report.is_clean(), "{report:?}");
        let sequences = tokio::time::timeout(Duration::from_secs(10), consumer)
            .await
            .expect("the stream did not end at shutdown")
            .unwrap();
        assert_eq!(sequences, [1, 2]);
    }

    #[test]
    fn a_catch_up_subscription_needs_a_store_and_a_persisted_event() {
        let bus = eventbus_runtime::BusBuilder::<Bus>::new(&MANIFEST)
            .build()
            .unwrap();
        let error = bus.counter.subscribe_from(Since::Sequence(1)).unwrap_err();
        assert!(error.to_string().contains("no event store"), "{error}");
        assert_eq!(bus.counter.listener_count(), 0);
    }
}

// ---------------------------------------------------------------------------------------------
// A forgotten recovery is logged

#[cfg(feature = "tracing")]
#[path = "support/recorder.rs"]
mod recorder;

#[cfg(feature = "tracing")]
mod forgotten_recovery {
    use super::recorder::Recorder;
    use super::*;
    use tracing::Level;

    /// A store with the events an earlier run left: three stored, one of them processed.
    fn earlier_run(dir: &TempDir) {
        let store = open(dir);
        store
            .append(&[
                new_event("counter", "1"),
                new_event("counter", "2"),
                new_event("counter", "3"),
            ])
            .unwrap();
        store.set_status(&[(2, Status::Processed)]).unwrap();
    }

    #[test]
    fn building_a_bus_over_pending_events_of_an_earlier_run_warns_to_call_recover() {
        // Logs the warning once before the recorder is installed (see `Recorder::install`).
        let warm_up = dir();
        earlier_run(&warm_up);
        drop(bus_on(open(&warm_up)));

        let (recorder, _default) = Recorder::install();
        let dir = dir();
        earlier_run(&dir);
        assert!(
            recorder.take("eventbus::store").is_empty(),
            "opening alone says nothing"
        );

        let bus = bus_on(open(&dir));
        let logged = recorder.take("eventbus::store");
        assert_eq!(logged.len(), 1, "{logged:#?}");
        assert_eq!(logged[0].level, Level::WARN);
        assert_eq!(logged[0].field("pending"), "2");
        let message = logged[0].field("message");
        assert!(
            message.starts_with("2 events stored by an earlier run are still pending")
                && message.contains("call recover()"),
            "{message}"
        );

        // Once recovered (and this run's own events processed), the next start is quiet.
        bus.counter.on(|_| ());
        assert_eq!(bus.core.recover().unwrap().dispatched, 2);
        bus.counter.emit(4).unwrap();
        bus.core.flush_event_store().unwrap();
        drop(bus);
        let _next = bus_on(open(&dir));
        assert!(recorder.take("eventbus::store").is_empty());
    }
}

/// `emit_async` stores like `emit`, from tasks on a multi-thread runtime: every emit gets its
/// own gap-free sequence, every handler runs, and after shutdown the emit is refused.
#[cfg(feature = "async")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn emit_async_stores_from_concurrent_tasks_and_is_refused_after_shutdown() {
    const TASKS: u32 = 4;
    const EACH: u32 = 25;
    let dir = dir();
    let store = open(&dir);
    let bus = bus_on(store.clone());
    let handled = Arc::new(AtomicUsize::new(0));
    let sink = handled.clone();
    bus.package_install.on(move |_| {
        sink.fetch_add(1, Ordering::SeqCst);
    });
    let tasks: Vec<_> = (0..TASKS)
        .map(|task| {
            let event = bus.package_install.clone();
            tokio::spawn(async move {
                let mut sequences = Vec::new();
                for n in 0..EACH {
                    let receipt = event.emit_async(install(task * 100 + n)).await.unwrap();
                    sequences.push(receipt.sequence().expect("stored"));
                }
                sequences
            })
        })
        .collect();
    let mut sequences = Vec::new();
    for task in tasks {
        let mine = task.await.unwrap();
        // One task's emits, awaited one after the other, keep their order.
        assert!(mine.windows(2).all(|w| w[0] < w[1]), "{mine:?}");
        sequences.extend(mine);
    }
    sequences.sort_unstable();
    let total = u64::from(TASKS * EACH);
    assert_eq!(sequences, (1..=total).collect::<Vec<_>>());
    assert_eq!(handled.load(Ordering::SeqCst), (TASKS * EACH) as usize);
    assert_eq!(all(&store).len() as u64, total);
    assert_eq!(
        bus.system_restart.emit_async().await.unwrap().sequence(),
        Some(total + 1)
    );

    let report = bus.core.shutdown().await;
    assert!(report.is_clean(), "{report:?}");
    match bus.package_install.emit_async(install(0)).await {
        Err(PersistError::ShutDown { event }) => assert_eq!(event, "packageInstall"),
        other => panic!("expected a refusal after shutdown, got {other:?}"),
    }
}
