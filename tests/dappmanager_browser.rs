//! The dappmanager demo in a real browser: headless Chromium (Debian's `chromium`) driven by
//! npm `playwright-core` through `tests/browser/dappmanager.mjs`.
//!
//! Three runs of the demo server share one port and one data directory:
//!
//! 1. in this process, with the simulated producers: the script loads the page, which has no
//!    resume point yet, so it connects once asking for `history` (the last stored events the
//!    bridge sends) and asks for the package list; it sees live events and filters the log. The test stops the server gracefully (pages get 1001 and
//!    their resume point) and, while it is down, emits notifications into its store.
//! 2. a child process (this test binary again) without producers: the page reconnected by
//!    itself and shows each missed notification once; "Refresh packages" is answered, proven
//!    by `/metrics` (one more `requestPackages`, one more `packages`, one more `packages`
//!    frame on the page: nothing else emits them in this run). The test SIGKILLs the child
//!    (the page sees 1006) and emits more notifications while it is down; the page, still
//!    reconnecting, emits `requestPackages` (queued by the client). Then the test starts
//! 3. in this process again, with producers: the page is back, the queued emit is accepted,
//!    the notifications missed across the crash are shown once each, and its stored sequences
//!    are exactly the store's `to_ui` persisted events over the same range: no gap, no
//!    duplicate. A fresh page (a new browser context, no `sessionStorage`) connects once with
//!    `history`, gets exactly the last stored events the first page had up to its history's
//!    newest (each history is also compared with the store here), shows their notifications
//!    and the package list; one opened with `&history=3` gets the last 3; a reload resumes from
//!    the point saved in `sessionStorage`, without `history`.
//!
//! The script saves `target/browser/dappmanager.png`. Without Chromium or `node_modules` the
//! test fails and says how to install them.

#[path = "../examples/dappmanager/app.rs"]
#[allow(dead_code)]
mod app;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use eventbus::{EventStore, Query, SqliteStore, Timestamp};
use std::sync::mpsc;
use std::time::Duration;

const CHROMIUM: &str = "/usr/bin/chromium";
const TOKEN: &str = "browser-test-token";
/// The longest one step may take before the test fails.
const WAIT: Duration = Duration::from_secs(120);
/// Set in the child process that runs the demo server (its address).
const CHILD_ADDR: &str = "DAPPMANAGER_TEST_CHILD_ADDR";
/// The child's data directory.
const CHILD_DATA: &str = "DAPPMANAGER_TEST_CHILD_DATA";

/// One run of the demo server on its own runtime and thread.
struct Demo {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
}

impl Demo {
    fn start(addr: SocketAddr, data_dir: &Path) -> Demo {
        let options = options(addr, data_dir, true);
        let (ready_tx, ready_rx) = mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            runtime
                .block_on(app::run(
                    options,
                    async {
                        let _ = stop_rx.await;
                    },
                    move |addr| {
                        let _ = ready_tx.send(addr);
                    },
                ))
                .map_err(|e| e.to_string())
        });
        let addr = match ready_rx.recv_timeout(WAIT) {
            Ok(addr) => addr,
            Err(_) => match thread.join() {
                Ok(Err(error)) => panic!("the demo server failed to start: {error}"),
                _ => panic!("the demo server did not start within {WAIT:?}"),
            },
        };
        Demo {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    fn stop(mut self) {
        let _ = self.stop.take().expect("running").send(());
        let result = self.thread.take().expect("running").join();
        match result {
            Ok(Ok(())) => {}
            Ok(Err(error)) => panic!("the demo server failed: {error}"),
            Err(_) => panic!("the demo server panicked"),
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn options(addr: SocketAddr, data_dir: &Path, simulate: bool) -> app::Options {
    app::Options {
        addr,
        data_dir: data_dir.to_owned(),
        token: TOKEN.into(),
        pace: 0.3,
        simulate,
    }
}

/// A run of the demo server in a child process, without simulated producers, to be killed.
struct ChildDemo(Child);

impl ChildDemo {
    fn start(addr: SocketAddr, data_dir: &Path) -> ChildDemo {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "demo_server_child",
                "--exact",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_ADDR, addr.to_string())
            .env(CHILD_DATA, data_dir)
            .stdout(Stdio::piped())
            .spawn()
            .expect("the test binary runs again as the demo server");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                // libtest may print `test demo_server_child ... ` before it on the same line.
                if let Some(at) = line.find("LISTENING ") {
                    let _ = tx.send(line[at..].to_owned());
                }
            }
        });
        let mut child = ChildDemo(child);
        match rx.recv_timeout(WAIT) {
            Ok(line) => assert_eq!(line, format!("LISTENING {addr}"), "the child's address"),
            Err(_) => {
                let status = child.0.try_wait().ok().flatten();
                panic!(
                    "the demo server child did not start within {WAIT:?} (exit status {status:?})"
                );
            }
        }
        child
    }

    /// SIGKILL: no close frame, no flush; the page sees the connection drop (1006).
    fn kill(mut self) {
        self.0.kill().expect("the child can be killed");
        self.0.wait().expect("the child is reaped");
    }
}

impl Drop for ChildDemo {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The demo server of `ChildDemo`: runs only in the child, until it is killed.
#[test]
fn demo_server_child() {
    let (Some(addr), Some(data)) = (std::env::var_os(CHILD_ADDR), std::env::var_os(CHILD_DATA))
    else {
        return; // the ordinary test run: nothing to do
    };
    let addr: SocketAddr = addr.to_str().unwrap().parse().unwrap();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    runtime
        .block_on(app::run(
            options(addr, Path::new(&data), false),
            std::future::pending(),
            |addr| {
                println!("LISTENING {addr}");
                let _ = std::io::stdout().flush();
            },
        ))
        .unwrap();
}

/// Emits `count` notifications into the store of `data_dir` while no server runs, as another
/// process of the service would; returns their ids.
fn emit_while_away(data_dir: &Path, label: &str, count: usize) -> Vec<String> {
    let store = SqliteStore::open(data_dir.join("events.db")).unwrap();
    let bus = app::events::EventBus::builder()
        .event_store(store)
        .build()
        .unwrap();
    let ids: Vec<String> = (1..=count).map(|n| format!("{label}-{n}")).collect();
    for id in &ids {
        bus.notification
            .emit(app::events::NotificationEvent {
                id: id.clone(),
                r#type: app::events::NotificationType::Info,
                title: format!("Missed while away: {id}"),
                body: "Emitted while the service was down.".into(),
                timestamp: Timestamp::now(),
                actions: None,
            })
            .unwrap();
    }
    bus.flush_event_store().unwrap();
    ids
}

/// The sequences of the stored events the bridge sends to pages, from `first` to `last`.
fn stored_to_ui(data_dir: &Path, first: u64, last: u64) -> Vec<u64> {
    let store = SqliteStore::open(data_dir.join("events.db")).unwrap();
    let names: Vec<&str> = app::events::MANIFEST
        .events
        .iter()
        .filter(|e| e.ui.to_ui() && e.persist)
        .map(|e| e.name)
        .collect();
    store
        .query(
            &Query::new()
                .events(names)
                .from_sequence(first)
                .to_sequence(last),
        )
        .unwrap()
        .iter()
        .map(|r| r.sequence)
        .collect()
}

/// The script's process, killed if the test fails.
struct Script(Child);

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return dir.into();
    }
    // target/<profile>/deps/<this test>
    let exe = std::env::current_exe().expect("the test's path");
    exe.ancestors()
        .nth(3)
        .map(Path::to_path_buf)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"))
}

#[test]
fn dappmanager_in_headless_chromium() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    assert!(
        Path::new(CHROMIUM).exists(),
        "the browser test needs Chromium at {CHROMIUM}: install it with \
         `apt-get update && apt-get install -y chromium` (.ci/run does)"
    );
    assert!(
        root.join("node_modules/playwright-core").is_dir(),
        "the browser test needs npm playwright-core: run `npm ci` at the repository root"
    );
    let screenshot = target_dir().join("browser/dappmanager.png");
    std::fs::create_dir_all(screenshot.parent().unwrap()).unwrap();
    let _ = std::fs::remove_file(&screenshot);

    let data = tempfile::tempdir().unwrap();
    let first = Demo::start("127.0.0.1:0".parse().unwrap(), data.path());
    let addr = first.addr;

    let mut child = Command::new("node")
        .arg(root.join("tests/browser/dappmanager.mjs"))
        .current_dir(root)
        .env("DEMO_URL", format!("http://{addr}/#token={TOKEN}"))
        .env("SCREENSHOT", &screenshot)
        .env("CHROMIUM", CHROMIUM)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("node runs (install Node.js)");
    let mut stdin = child.stdin.take().unwrap();
    let (lines_tx, lines) = mpsc::channel::<String>();
    let stdout = child.stdout.take().unwrap();
    let out = lines_tx.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = out.send(line);
        }
    });
    let stderr = child.stderr.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = lines_tx.send(format!("stderr: {line}"));
        }
    });
    let mut script = Script(child);
    let mut transcript = Vec::new();
    let mut wait_for = |what: &str, transcript: &mut Vec<String>| loop {
        match lines.recv_timeout(WAIT) {
            Ok(line) => {
                let done = line == what;
                println!("{line}");
                transcript.push(line);
                if done {
                    return;
                }
            }
            Err(_) => {
                let status = script.0.try_wait().ok().flatten();
                panic!(
                    "the browser script did not print {what} (exit status {status:?}); it said:\n{}",
                    transcript.join("\n")
                );
            }
        }
    };

    let mut tell = |line: String| {
        writeln!(stdin, "{line}").unwrap();
        stdin.flush().unwrap();
    };

    // 1 → 2: a graceful stop, notifications emitted while down, a quiet server in a child.
    wait_for("RESTART", &mut transcript);
    first.stop();
    let missed = emit_while_away(data.path(), "away-graceful", 3);
    let second = ChildDemo::start(addr, data.path());
    tell(format!(
        "RESTARTED {}",
        serde_json::json!({ "missed": missed })
    ));

    // 2 → 3: SIGKILL, more notifications while down, a server with producers again.
    wait_for("KILL", &mut transcript);
    second.kill();
    let missed = emit_while_away(data.path(), "away-killed", 3);
    let third = Demo::start(addr, data.path());
    tell(format!(
        "RESTARTED {}",
        serde_json::json!({ "missed": missed })
    ));

    // The script ends by itself: collect what it says until then.
    let deadline = std::time::Instant::now() + WAIT;
    let status = loop {
        while let Ok(line) = lines.try_recv() {
            println!("{line}");
            transcript.push(line);
        }
        if let Some(status) = script.0.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the browser script did not finish within {WAIT:?}; it said:\n{}",
            transcript.join("\n")
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    std::thread::sleep(Duration::from_millis(100));
    while let Ok(line) = lines.try_recv() {
        println!("{line}");
        transcript.push(line);
    }
    third.stop();
    assert!(
        status.success(),
        "the browser script failed ({status}):\n{}",
        transcript.join("\n")
    );
    assert!(
        transcript.iter().any(|l| l.starts_with("step: verified")),
        "{}",
        transcript.join("\n")
    );
    // The page received exactly the stored to_ui events of its range: no gap, no duplicate.
    let received: Vec<u64> = transcript
        .iter()
        .find_map(|l| l.strip_prefix("SEQUENCES "))
        .map(|json| serde_json::from_str::<Vec<String>>(json).expect("a JSON list"))
        .expect("the script printed the sequences it received")
        .iter()
        .map(|s| s.parse().expect("a decimal sequence"))
        .collect();
    let (first_seq, last_seq) = (received[0], *received.last().unwrap());
    let stored = stored_to_ui(data.path(), first_seq, last_seq);
    assert_eq!(
        received, stored,
        "the page's stored events differ from the store's to_ui events {first_seq}..={last_seq}"
    );
    // The history of each fresh page (the default, then `&history=3`) is a run of the store's
    // to_ui events with nothing left out between its first and last.
    let histories: Vec<Vec<u64>> = transcript
        .iter()
        .filter_map(|l| l.strip_prefix("HISTORY "))
        .map(|json| {
            serde_json::from_str::<Vec<String>>(json)
                .expect("a JSON list")
                .iter()
                .map(|s| s.parse().expect("a decimal sequence"))
                .collect()
        })
        .collect();
    assert_eq!(
        histories.len(),
        2,
        "the script printed the history of two fresh pages"
    );
    assert_eq!(histories[1].len(), 3, "`&history=3`: {:?}", histories[1]);
    for history in &histories {
        let (first, last) = (history[0], *history.last().unwrap());
        assert_eq!(
            history,
            &stored_to_ui(data.path(), first, last),
            "a fresh page's history differs from the store's to_ui events {first}..={last}"
        );
    }
    let png = std::fs::read(&screenshot).expect("the script saved a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "the screenshot is a PNG");
}
