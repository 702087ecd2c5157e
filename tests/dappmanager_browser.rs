//! The dappmanager demo in a real browser: headless Chromium (Debian's `chromium`) driven by
//! npm `playwright-core` through `tests/browser/dappmanager.mjs`.
//!
//! The demo server runs in this process, on an ephemeral port with a temporary data
//! directory. The script loads the page, sees live events, clicks "Refresh packages" and sees
//! the answer; then this test stops the server and starts a new one on the same port and data
//! directory, and the script checks that the page reconnected by itself and shows, once each,
//! the notifications emitted while it was away. It saves `target/browser/dappmanager.png`.
//!
//! Without Chromium or `node_modules` the test fails and says how to install them.

#[path = "../examples/dappmanager/app.rs"]
#[allow(dead_code)]
mod app;

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

const CHROMIUM: &str = "/usr/bin/chromium";
const TOKEN: &str = "browser-test-token";
/// The longest one step may take before the test fails.
const WAIT: Duration = Duration::from_secs(120);

/// One run of the demo server on its own runtime and thread.
struct Demo {
    addr: SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<Result<(), String>>>,
}

impl Demo {
    fn start(addr: SocketAddr, data_dir: &Path) -> Demo {
        let options = app::Options {
            addr,
            data_dir: data_dir.to_owned(),
            token: TOKEN.into(),
            pace: 0.3,
        };
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

    wait_for("RESTART", &mut transcript);
    first.stop();
    let second = Demo::start(addr, data.path());
    writeln!(stdin, "RESTARTED").unwrap();
    stdin.flush().unwrap();

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
    second.stop();
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
    let png = std::fs::read(&screenshot).expect("the script saved a screenshot");
    assert!(png.starts_with(b"\x89PNG"), "the screenshot is a PNG");
}
