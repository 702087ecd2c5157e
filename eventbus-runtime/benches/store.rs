//! Persisted emits per second with full durability (`synchronous=FULL`, WAL), next to plain
//! rusqlite inserts of the same rows into the same table and indexes, in the same run (one
//! transaction per row, and 100 rows per transaction), and the replay rate. The figures are in docs/persistence.md.
//!
//! ```text
//! cargo bench -p eventbus-runtime --features store --bench store
//! ```
//!
//! Files go to a temporary directory on the default temp filesystem (set `TMPDIR` to measure
//! another disk); a tmpfs would make every fsync free and the comparison meaningless.

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use eventbus_runtime::{
    BusCore, EventId, EventMeta, ManifestMeta, PersistedEvent, Policies, Query, SqliteStore,
    UiDirection,
};
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Progress {
    #[serde(rename = "dnpName")]
    dnp_name: String,
    status: String,
    progress: f64,
}

fn payload(n: u64) -> Progress {
    Progress {
        dnp_name: "bitcoin.dnp.dappnode.eth".into(),
        status: "started".into(),
        progress: n as f64 / 100.0,
    }
}

static EVENTS: [EventMeta; 1] = [EventMeta {
    name: "packageInstall",
    category: "package",
    description: "",
    payload: Some("PackageEvent"),
    persist: true,
    ui: UiDirection::None,
    scope: eventbus_runtime::Scope::Local,
    deprecated: None,
    policies: Policies::NONE,
}];

static MANIFEST: ManifestMeta = ManifestMeta {
    package: "bench",
    version: 1,
    fingerprint: "0123456789abcdef",
    events: &EVENTS,
};

/// A bus on a fresh store, with one handler that counts.
fn bus(dir: &tempfile::TempDir) -> (BusCore, PersistedEvent<Progress>) {
    let store = SqliteStore::open(dir.path().join("events.db")).unwrap();
    let core: BusCore = BusCore::builder(&MANIFEST)
        .event_store(store)
        .build()
        .unwrap();
    let event = PersistedEvent::new(&core, &EVENTS[0]);
    let handled = Arc::new(AtomicU64::new(0));
    event.on(move |_| {
        handled.fetch_add(1, Ordering::Relaxed);
    });
    (core, event)
}

/// The same connection settings and row shape as the store, without eventbus.
fn plain_connection(dir: &tempfile::TempDir) -> rusqlite::Connection {
    let connection = rusqlite::Connection::open(dir.path().join("plain.db")).unwrap();
    connection
        .pragma_update_and_check(None, "journal_mode", "WAL", |_| Ok(()))
        .unwrap();
    connection
        .pragma_update(None, "synchronous", "FULL")
        .unwrap();
    connection
        .execute_batch(
            // The store's table and indexes (schema version 1).
            "CREATE TABLE events (
                sequence INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE, event TEXT NOT NULL,
                time INTEGER NOT NULL, payload TEXT NOT NULL, package TEXT NOT NULL,
                manifest_version INTEGER NOT NULL, fingerprint TEXT NOT NULL,
                status TEXT NOT NULL DEFAULT 'pending');
             CREATE INDEX events_by_event ON events (event, sequence);
             CREATE INDEX events_by_time ON events (time);
             CREATE INDEX events_unprocessed ON events (sequence) WHERE status <> 'processed';",
        )
        .unwrap();
    connection
}

fn plain_insert(transaction: &rusqlite::Transaction<'_>, sequence: u64) {
    let json = serde_json::to_string(&payload(sequence)).unwrap();
    transaction
        .execute(
            "INSERT INTO events (sequence, id, event, time, payload, package, manifest_version,
                                 fingerprint) VALUES (?1, ?2, 'packageInstall', ?3, ?4, 'bench', 1,
                                 '0123456789abcdef')",
            rusqlite::params![
                sequence as i64,
                EventId::new_v4().to_string(),
                1_700_000_000_000_i64,
                json
            ],
        )
        .unwrap();
}

fn append(c: &mut Criterion) {
    let mut group = c.benchmark_group("store_append");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(4));
    group.warm_up_time(Duration::from_millis(500));
    group.throughput(Throughput::Elements(1));

    for threads in [1_u64, 4, 16] {
        let dir = tempfile::tempdir().unwrap();
        let (core, event) = bus(&dir);
        group.bench_with_input(
            BenchmarkId::new("persisted_emit", format!("{threads}_threads")),
            &threads,
            |b, &threads| {
                // Time per event: `iters` events spread over `threads` emitters.
                b.iter_custom(|iters| {
                    let per_thread = iters.div_ceil(threads);
                    let start = Instant::now();
                    std::thread::scope(|scope| {
                        for _ in 0..threads {
                            scope.spawn(|| {
                                for n in 0..per_thread {
                                    black_box(event.emit(payload(n)).unwrap());
                                }
                            });
                        }
                    });
                    start
                        .elapsed()
                        .mul_f64(iters as f64 / (per_thread * threads) as f64)
                })
            },
        );
        core.flush_event_store().unwrap();
    }

    let dir = tempfile::tempdir().unwrap();
    let mut connection = plain_connection(&dir);
    let mut sequence = 0;
    group.bench_function("rusqlite_insert/transaction_per_row", |b| {
        b.iter(|| {
            sequence += 1;
            let transaction = connection.transaction().unwrap();
            plain_insert(&transaction, sequence);
            transaction.commit().unwrap();
        })
    });
    group.bench_function("rusqlite_insert/100_rows_per_transaction", |b| {
        b.iter_custom(|iters| {
            let start = Instant::now();
            let mut left = iters;
            while left > 0 {
                let rows = left.min(100);
                let transaction = connection.transaction().unwrap();
                for _ in 0..rows {
                    sequence += 1;
                    plain_insert(&transaction, sequence);
                }
                transaction.commit().unwrap();
                left -= rows;
            }
            start.elapsed()
        })
    });
    group.finish();
}

fn replay(c: &mut Criterion) {
    const STORED: u64 = 10_000;
    let dir = tempfile::tempdir().unwrap();
    let (core, event) = bus(&dir);
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                for n in 0..STORED / 8 {
                    event.emit(payload(n)).unwrap();
                }
            });
        }
    });
    core.flush_event_store().unwrap();

    let mut group = c.benchmark_group("store_replay");
    group.sample_size(10);
    group.measurement_time(Duration::from_secs(4));
    group.warm_up_time(Duration::from_millis(500));
    group.throughput(Throughput::Elements(STORED));
    group.bench_function("replay_10000_to_one_handler", |b| {
        b.iter(|| {
            let report = core.replay(&Query::new()).unwrap();
            assert_eq!(report.dispatched, STORED);
        })
    });
    group.bench_function("typed_records_10000", |b| {
        b.iter(|| {
            let records = event.records(Query::new()).unwrap();
            assert_eq!(records.records.len() as u64, STORED);
        })
    });
    group.finish();
}

criterion_group!(benches, append, replay);
criterion_main!(benches);
