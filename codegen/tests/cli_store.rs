//! `eventbus store query|tail|compact` on a real SQLite store written by the runtime.

use std::path::PathBuf;
use std::process::{Command, Output};

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
        .map(|(i, (event, payload))| NewEvent {
            id: EventId::new_v4(),
            event,
            time: Timestamp::from_millis(base + i as i64 * 3_600_000),
            payload,
            package: "demo",
            manifest_version: 1,
            fingerprint: "00000000000000aa",
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
    let out = eventbus(&[
        "store",
        "query",
        "--db",
        db.to_str().unwrap(),
        "--event",
        "packageInstall",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let stdout = text(&out.stdout);
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
    let db = db.to_str().unwrap();
    let sequences = |args: &[&str]| -> Vec<u64> {
        let mut all = vec!["store", "query", "--db", db, "--format", "json"];
        all.extend_from_slice(args);
        let out = eventbus(&all);
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
        text(&out.stdout)
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

    let out = eventbus(&[
        "store", "query", "--db", db, "--event", "ping", "--format", "json", "--limit", "1",
    ]);
    let record: serde_json::Value = serde_json::from_str(text(&out.stdout).trim()).unwrap();
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
