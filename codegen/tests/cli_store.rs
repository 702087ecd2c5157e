//! `eventbus store query|tail|compact` on a real SQLite store written by the runtime.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use eventbus_runtime::{EventId, EventStore, NewEvent, Query, SqliteStore, Status, Timestamp};

fn eventbus(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eventbus"))
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// `eventbus store query --db <db> <args>`, which must succeed: its stdout.
fn query(db: &Path, args: &[&str]) -> String {
    let mut all = vec!["store", "query", "--db", db.to_str().unwrap()];
    all.extend_from_slice(args);
    let out = eventbus(&all);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    text(&out.stdout)
}

/// An event of this package's manifest, as the runtime stores it.
fn stamped<'a>(event: &'a str, payload: &'a str, time: Timestamp) -> NewEvent<'a> {
    NewEvent {
        id: EventId::new_v4(),
        event,
        time,
        payload,
        package: "demo",
        manifest_version: 1,
        fingerprint: "00000000000000aa",
    }
}

/// A store with five events, three `packageInstall` and two `ping`, one an hour from
/// 2024-05-01T12:00:00Z on; 1–4 processed, 5 pending.
fn store(name: &str) -> (PathBuf, PathBuf) {
    let dir =
        std::env::temp_dir().join(format!("eventbus-cli-store-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let db = dir.join("events.db");
    let store = SqliteStore::open(&db).unwrap();
    let base = 1_714_564_800_000; // 2024-05-01T12:00:00Z
    let payloads = [
        (
            "packageInstall",
            r#"{"dnpName":"bitcoin.dnp.dappnode.eth","status":"started"}"#.to_owned(),
        ),
        ("ping", "1".to_owned()),
        (
            "packageInstall",
            format!(
                r#"{{"dnpName":"geth.dnp.dappnode.eth","log":"{}"}}"#,
                "x".repeat(200)
            ),
        ),
        ("ping", "2".to_owned()),
        (
            "packageInstall",
            r#"{"dnpName":"bitcoin.dnp.dappnode.eth","status":"done"}"#.to_owned(),
        ),
    ];
    let events: Vec<NewEvent<'_>> = payloads
        .iter()
        .enumerate()
        .map(|(i, (event, payload))| {
            stamped(
                event,
                payload,
                Timestamp::from_millis(base + i as i64 * 3_600_000),
            )
        })
        .collect();
    store.append(&events).unwrap();
    store
        .set_status(&[
            (1, Status::Processed),
            (2, Status::Processed),
            (3, Status::Processed),
            (4, Status::Processed),
        ])
        .unwrap();
    (dir, db)
}

#[test]
fn query_prints_a_readable_table() {
    let (dir, db) = store("table");
    let stdout = query(&db, &["--event", "packageInstall"]);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert_eq!(
        lines[0],
        "SEQ  TIME                      EVENT           STATUS     PAYLOAD"
    );
    assert_eq!(
        lines[1],
        r#"  1  2024-05-01T12:00:00.000Z  packageInstall  processed  {"dnpName":"bitcoin.dnp.dappnode.eth","status":"started"}"#
    );
    assert!(lines[2].starts_with(
        "  3  2024-05-01T14:00:00.000Z  packageInstall  processed  {\"dnpName\":\"geth"
    ));
    assert!(
        lines[2].ends_with('…'),
        "long payloads are shortened: {}",
        lines[2]
    );
    assert!(lines[3].starts_with("  5  2024-05-01T16:00:00.000Z  packageInstall  pending"));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn query_filters_orders_limits_and_prints_json() {
    let (dir, db) = store("filters");
    let sequences = |args: &[&str]| -> Vec<u64> {
        let mut all = vec!["--format", "json"];
        all.extend_from_slice(args);
        query(&db, &all)
            .lines()
            .map(|line| {
                serde_json::from_str::<serde_json::Value>(line).unwrap()["sequence"]
                    .as_u64()
                    .unwrap()
            })
            .collect()
    };
    assert_eq!(sequences(&[]), [1, 2, 3, 4, 5]);
    assert_eq!(sequences(&["--since", "3"]), [3, 4, 5]);
    assert_eq!(sequences(&["--since", "2024-05-01T15:00:00Z"]), [4, 5]);
    assert_eq!(
        sequences(&["--since", "2024-05-01T16:30:00+03:00"]),
        [3, 4, 5]
    );
    assert_eq!(
        sequences(&[
            "--event",
            "ping",
            "--event",
            "packageInstall",
            "--order",
            "desc",
            "--limit",
            "2"
        ]),
        [5, 4]
    );
    assert_eq!(sequences(&["--status", "pending"]), [5]);
    // Every stored event is older than an hour.
    assert_eq!(sequences(&["--since", "1h"]), Vec::<u64>::new());

    let out = query(
        &db,
        &["--event", "ping", "--format", "json", "--limit", "1"],
    );
    let record: serde_json::Value = serde_json::from_str(out.trim()).unwrap();
    assert_eq!(record["event"], "ping");
    assert_eq!(record["payload"], 1);
    assert_eq!(record["status"], "processed");
    assert_eq!(record["fingerprint"], "00000000000000aa");
    assert!(record["id"].as_str().unwrap().parse::<EventId>().is_ok());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn tail_prints_the_newest_events_oldest_first() {
    let (dir, db) = store("tail");
    let out = eventbus(&["store", "tail", "--db", db.to_str().unwrap(), "-n", "2"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
    let sequences: Vec<&str> = stdout
        .lines()
        .skip(1)
        .map(|l| l.split_whitespace().next().unwrap())
        .collect();
    assert_eq!(sequences, ["4", "5"], "{stdout}");
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn compact_removes_processed_events_only() {
    let (dir, db) = store("compact");
    let out = eventbus(&[
        "store",
        "compact",
        "--db",
        db.to_str().unwrap(),
        "--max-count",
        "1",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "removed 4 processed events\n");
    let left = SqliteStore::open(&db)
        .unwrap()
        .query(&Query::new())
        .unwrap();
    assert_eq!(left.iter().map(|r| r.sequence).collect::<Vec<_>>(), [5]);
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn file_and_argument_problems_are_one_line_and_exit_2() {
    let (dir, db) = store("errors");
    let db = db.to_str().unwrap();
    let missing = dir.join("missing.db");
    let cases: [(Vec<&str>, &str); 4] = [
        (
            vec!["store", "query", "--db", missing.to_str().unwrap()],
            "error: no store at `",
        ),
        (
            vec!["store", "query", "--db", db, "--since", "yesterday"],
            "error: `yesterday` is not a sequence number",
        ),
        (
            vec!["store", "compact", "--db", db],
            "error: nothing to do: give --max-age and/or --max-count",
        ),
        (
            vec!["store", "compact", "--db", db, "--max-age", "12"],
            "error: `--max-age 12`: expected an age",
        ),
    ];
    for (args, expected) in cases {
        let out = eventbus(&args);
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = text(&out.stderr);
        assert!(stderr.starts_with(expected), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
    }
    let not_a_store = dir.join("notes.txt");
    std::fs::write(&not_a_store, "hello").unwrap();
    let out = eventbus(&["store", "query", "--db", not_a_store.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("not a SQLite database"),
        "{}",
        text(&out.stderr)
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// Appends one event stamped now, as the runtime would.
fn append_now(db: &Path, event: &str, payload: &str) -> u64 {
    let store = SqliteStore::open(db).unwrap();
    let appended = store
        .append(&[stamped(event, payload, Timestamp::now())])
        .unwrap();
    appended[0].sequence
}

#[test]
fn query_by_event_since_an_hour_shows_the_recent_matching_events_only() {
    let (dir, db) = store("since-1h");
    // 1–5 are from 2024 (three of them `packageInstall`); 6 matches; 7 is recent but a `ping`.
    let recent = append_now(
        &db,
        "packageInstall",
        r#"{"dnpName":"lighthouse","status":"done"}"#,
    );
    append_now(&db, "ping", "3");
    let stdout = query(&db, &["--event", "packageInstall", "--since", "1h"]);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 2, "the header and one event: {stdout}");
    assert!(lines[0].starts_with("SEQ  TIME"), "{stdout}");
    let columns: Vec<&str> = lines[1].split_whitespace().collect();
    assert_eq!(recent, 6);
    assert_eq!(
        (columns[0], columns[2], columns[3], columns[4]),
        (
            "6",
            "packageInstall",
            "pending",
            r#"{"dnpName":"lighthouse","status":"done"}"#
        ),
        "{stdout}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}

/// Kills the child process when dropped, also when an assertion fails first.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn tail_follow_prints_events_appended_after_it_started() {
    let (dir, db) = store("follow");
    let child = Command::new(env!("CARGO_BIN_EXE_eventbus"))
        .args(["store", "tail", "--db", db.to_str().unwrap(), "-n", "1"])
        .args(["--follow", "--interval", "20"])
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut child = KillOnDrop(child);
    // Lines arrive on another thread, so a hung child fails the test instead of blocking it.
    let (send, lines) = mpsc::channel();
    let stdout = child.0.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if send.send(line).is_err() {
                break;
            }
        }
    });
    let next_line = || {
        lines
            .recv_timeout(Duration::from_secs(30))
            .expect("`tail --follow` printed no further line")
    };
    let sequence = |line: &str| line.split_whitespace().next().unwrap_or("").to_owned();
    assert!(next_line().starts_with("SEQ"));
    assert_eq!(sequence(&next_line()), "5", "the newest stored event first");

    // Appended while it runs (the CLI only reads): it shows up on its next poll.
    append_now(&db, "ping", "42");
    let line = next_line();
    assert_eq!(
        (sequence(&line), line.contains("ping"), line.ends_with("42")),
        ("6".to_owned(), true, true),
        "{line}"
    );
    drop(child);
    // Killed: its stdout closes and the reader ends.
    reader.join().unwrap();
    std::fs::remove_dir_all(dir).unwrap();
}
