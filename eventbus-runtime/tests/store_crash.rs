//! Crash safety, for real: a child process (this test binary, re-executed) emits persisted
//! events from several threads and prints the receipt of every acknowledged emit; the parent
//! kills it with SIGKILL after reading a random number (1 to 400) of those receipts, many
//! times. The child cannot finish first: it has 40,000 emits to make and can only get a pipe's
//! worth of lines ahead of the parent, so every kill lands while emits (and their handlers) are
//! running, by construction rather than by timing. After every kill the file must hold
//! every acknowledged event exactly once, under the sequence number its receipt gave, with
//! contiguous sequence numbers and a clean `PRAGMA integrity_check`. Each new child first
//! recovers what the killed one left unprocessed; a last child recovers and exits cleanly, and
//! then nothing may be left pending.
//!
//! `EVENTBUS_CRASH_ROUNDS` changes the number of rounds (default 30); the random seed is
//! printed, and `EVENTBUS_CRASH_SEED` replays one.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{RecvTimeoutError, sync_channel};
use std::time::Duration;

use eventbus_runtime::{
    BusCore, EventMeta, EventStore, ManifestMeta, PersistedEvent, Policies, Query, SqliteStore,
    Status, UiDirection,
};

const CHILD_DB: &str = "EVENTBUS_CRASH_CHILD_DB";
const CHILD_ROUND: &str = "EVENTBUS_CRASH_CHILD_ROUND";
const CHILD_MODE: &str = "EVENTBUS_CRASH_CHILD_MODE";
const THREADS: u64 = 4;
/// Emits per thread: far more than a child can make before it is killed (values stay unique:
/// `thread * 10_000 + i`).
const PER_THREAD: u64 = 10_000;
/// The most acknowledgements the parent reads before killing a child.
const MAX_ACKS_BEFORE_KILL: u64 = 400;
/// The longest wait for the child's next line: only a hung child takes that long.
const LINE_TIMEOUT: Duration = Duration::from_secs(60);

static EVENTS: [EventMeta; 1] = [EventMeta {
    name: "tick",
    category: "test",
    description: "",
    payload: Some("u64"),
    persist: true,
    ui: UiDirection::None,
    scope: eventbus_runtime::Scope::Local,
    deprecated: None,
    policies: Policies::NONE,
}];

static MANIFEST: ManifestMeta = ManifestMeta {
    package: "crash",
    version: 1,
    fingerprint: "00000000000000cc",
    events: &EVENTS,
};

/// Writes one line to stdout at once and flushes it, so a kill never tears a line.
fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    out.write_all(line.as_bytes()).unwrap();
    out.write_all(b"\n").unwrap();
    out.flush().unwrap();
}

/// The child: recover, then emit until done (or killed).
fn child(db: &str) -> ! {
    let round: u64 = std::env::var(CHILD_ROUND).unwrap().parse().unwrap();
    let store = SqliteStore::open(db).unwrap();
    let core: BusCore = BusCore::builder(&MANIFEST)
        .event_store(store)
        .build()
        .unwrap();
    let tick: PersistedEvent<u64> = PersistedEvent::new(&core, &EVENTS[0]);
    let handled = Arc::new(AtomicU64::new(0));
    let count = handled.clone();
    tick.on(move |n| {
        // A little work, so kills also land inside handlers.
        let mut x = *n;
        for _ in 0..2_000 {
            x = std::hint::black_box(x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1));
        }
        count.fetch_add(1, Ordering::Relaxed);
    });
    let report = core.recover().unwrap();
    assert!(report.unreadable.is_empty());
    say(&format!("RECOVERED {}", report.dispatched));
    if std::env::var(CHILD_MODE).as_deref() == Ok("recover") {
        drop(tick);
        drop(core); // the journal drains and the outcomes are written
        std::process::exit(0);
    }
    std::thread::scope(|scope| {
        for thread in 0..THREADS {
            let tick = tick.clone();
            scope.spawn(move || {
                for i in 0..PER_THREAD {
                    let value = round * 1_000_000 + thread * 10_000 + i;
                    let receipt = tick.emit(value).unwrap();
                    say(&format!(
                        "ACK {} {} {value}",
                        receipt.sequence().unwrap(),
                        receipt.id().unwrap()
                    ));
                }
            });
        }
    });
    core.flush_event_store().unwrap();
    say("DONE");
    std::process::exit(0);
}

struct Acked {
    sequence: u64,
    id: String,
    value: u64,
}

/// xorshift64*: how many acknowledgements to read before each kill.
struct Rng(u64);

impl Rng {
    fn below(&mut self, bound: u64) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D) % bound
    }
}

/// Runs one child; kills it once `kill_after_acks` `ACK` lines were read from it (if given).
/// Returns all its stdout lines (those it wrote before dying too) and whether it finished by
/// itself.
fn run_child(
    db: &Path,
    round: u64,
    mode: &str,
    kill_after_acks: Option<u64>,
) -> (Vec<String>, bool) {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "sigkill_at_random_moments_loses_no_acknowledged_event",
            "--exact",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_DB, db)
        .env(CHILD_ROUND, round.to_string())
        .env(CHILD_MODE, mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    // A small channel: the reader thread, and through the pipe the child, get at most a
    // pipe's worth of lines ahead of this loop.
    let (lines_tx, lines_rx) = sync_channel::<String>(16);
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if lines_tx.send(line).is_err() {
                return;
            }
        }
    });
    let mut lines = Vec::new();
    let mut acks = 0;
    let mut killed = false;
    loop {
        match lines_rx.recv_timeout(LINE_TIMEOUT) {
            Ok(line) => {
                acks += u64::from(line.contains("ACK "));
                lines.push(line);
                if !killed && kill_after_acks.is_some_and(|n| acks >= n) {
                    // SIGKILL on Unix; an error only means it already exited.
                    let _ = child.kill();
                    killed = true;
                }
            }
            // The child is gone and every line it wrote was read.
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => {
                let _ = child.kill();
                panic!(
                    "round {round}: no line from the child for {LINE_TIMEOUT:?} (after {acks} \
                     acknowledgements)"
                );
            }
        }
    }
    reader.join().unwrap();
    let status = child.wait().unwrap();
    let finished = lines.iter().any(|l| l.ends_with("DONE"));
    if !killed {
        assert!(status.success(), "child of round {round} failed: {status}");
    }
    (lines, finished)
}

/// Checks the file after a round: every acknowledged event once, under its sequence number,
/// contiguous sequences, integrity.
fn check(db: &Path, acked: &HashMap<String, Acked>, round: u64) {
    let store = SqliteStore::open(db).unwrap();
    store
        .integrity_check()
        .unwrap_or_else(|e| panic!("round {round}: {e}"));
    let records = store.query(&Query::new()).unwrap();
    let last = store.last_sequence().unwrap();
    let sequences: Vec<u64> = records.iter().map(|r| r.sequence).collect();
    assert_eq!(
        sequences,
        (1..=last).collect::<Vec<_>>(),
        "round {round}: sequence numbers are contiguous"
    );
    let mut by_id: HashMap<String, (u64, u64)> = HashMap::new();
    for record in &records {
        let previous = by_id.insert(
            record.id.to_string(),
            (record.sequence, record.payload.as_u64().unwrap()),
        );
        assert!(
            previous.is_none(),
            "round {round}: id {} stored twice",
            record.id
        );
    }
    let mut values: Vec<u64> = records
        .iter()
        .map(|r| r.payload.as_u64().unwrap())
        .collect();
    values.sort_unstable();
    values.dedup();
    assert_eq!(
        values.len(),
        records.len(),
        "round {round}: an emit stored twice"
    );
    for (id, ack) in acked {
        assert_eq!(
            by_id.get(id),
            Some(&(ack.sequence, ack.value)),
            "round {round}: acknowledged event {id} (sequence {}) missing or changed",
            ack.sequence
        );
    }
}

#[test]
fn sigkill_at_random_moments_loses_no_acknowledged_event() {
    if let Ok(db) = std::env::var(CHILD_DB) {
        child(&db);
    }
    let rounds: u64 = std::env::var("EVENTBUS_CRASH_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(30);
    let seed: u64 = std::env::var("EVENTBUS_CRASH_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            use std::hash::{BuildHasher, RandomState};
            RandomState::new().hash_one(std::process::id()) | 1
        });
    println!("EVENTBUS_CRASH_SEED={seed}");
    let mut rng = Rng(seed);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("events.db");

    let mut acked: HashMap<String, Acked> = HashMap::new();
    let mut recovered = 0;
    for round in 1..=rounds {
        let kill_after = 1 + rng.below(MAX_ACKS_BEFORE_KILL);
        let (lines, finished) = run_child(&db, round, "emit", Some(kill_after));
        let mut this_round = 0;
        for line in &lines {
            if let Some(at) = line.find("RECOVERED ") {
                recovered += line[at + 10..].trim().parse::<u64>().unwrap();
            }
            // libtest may have started the child's first line ("test … ").
            let Some(rest) = line.find("ACK ").map(|at| &line[at + 4..]) else {
                continue;
            };
            let parts: Vec<&str> = rest.split(' ').collect();
            let ack = Acked {
                sequence: parts[0].parse().unwrap(),
                id: parts[1].to_owned(),
                value: parts[2].parse().unwrap(),
            };
            assert!(
                acked.insert(ack.id.clone(), ack).is_none(),
                "an id acknowledged twice"
            );
            this_round += 1;
        }
        // Killed while emitting: it had acknowledged what we waited for, and had not finished.
        assert!(
            !finished && this_round >= kill_after,
            "round {round}: the child was to be killed mid-emit after {kill_after} \
             acknowledgements, but finished={finished} with {this_round}"
        );
        check(&db, &acked, round);
    }
    println!(
        "{rounds} rounds, each killed mid-emit: {} emits acknowledged, {recovered} events \
         re-dispatched by recovery",
        acked.len()
    );

    // A clean start recovers everything the kills left unprocessed.
    let (lines, _) = run_child(&db, rounds + 1, "recover", None);
    assert!(lines.iter().any(|l| l.contains("RECOVERED ")), "{lines:?}");
    check(&db, &acked, rounds + 1);
    let store = SqliteStore::open(&db).unwrap();
    let pending = store.query(&Query::new().status(Status::Pending)).unwrap();
    assert!(
        pending.is_empty(),
        "{} events still pending after recovery",
        pending.len()
    );
    assert!(!acked.is_empty());
}
