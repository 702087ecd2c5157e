//! A NATS server with JetStream for the NATS tests, shared (through `#[path]`) by the facade's
//! `tests/nats.rs` and the runtime's `eventbus-runtime/tests/nats.rs`.
//!
//! [`url`] gives, in this order:
//! 1. the server at `EVENTBUS_TEST_NATS_ADDRESS` (default `127.0.0.1:4222`) if something
//!    listens there;
//! 2. else a server of this test process: `nats-server` (`EVENTBUS_TEST_NATS_SERVER`, default
//!    `/usr/sbin/nats-server`) on a free port with a temporary store, started once and killed
//!    when the process ends (a watchdog shell kills it if the process dies first);
//! 3. else nothing: with `CI` set the test panics with what to install; otherwise the skip is
//!    written straight to the process's stderr, which libtest does not capture (it only
//!    captures the `print!`/`eprint!` macros), so it shows in a plain `cargo test` run.

// Each including test binary uses a part of this.
#![allow(dead_code)]

use std::io::Write;
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The longest any single wait may take before the test fails.
pub const WAIT: Duration = Duration::from_secs(60);

/// The address of the shared server (`EVENTBUS_TEST_NATS_ADDRESS` overrides it, e.g. to
/// exercise the fallback to a server of the tests' own).
pub fn shared_address() -> String {
    std::env::var("EVENTBUS_TEST_NATS_ADDRESS").unwrap_or_else(|_| "127.0.0.1:4222".into())
}

/// The `nats-server` binary (`EVENTBUS_TEST_NATS_SERVER` overrides it, e.g. to exercise the
/// skip path with a path that does not exist).
pub fn server_binary() -> PathBuf {
    std::env::var_os("EVENTBUS_TEST_NATS_SERVER")
        .map_or_else(|| PathBuf::from("/usr/sbin/nats-server"), PathBuf::from)
}

/// Whether something accepts TCP connections at `address`.
pub fn reachable(address: &str) -> bool {
    TcpStream::connect_timeout(&address.parse().unwrap(), Duration::from_millis(500)).is_ok()
}

/// A TCP port nothing listens on now.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `nats-server` of this test process, killed when dropped or, at the latest, when the
/// process ends (a watchdog shell then kills it and removes its store).
pub struct OwnServer {
    child: Child,
    port: u16,
    dir: PathBuf,
}

impl OwnServer {
    /// Starts `nats-server -js` on `port` with its store in `dir`, and waits until it listens.
    pub fn start(port: u16, dir: &Path) -> Result<OwnServer, String> {
        let binary = server_binary();
        if !binary.exists() {
            return Err(format!("{} is not installed", binary.display()));
        }
        let child = Command::new(&binary)
            .args(["-a", "127.0.0.1", "-p", &port.to_string(), "-js", "-sd"])
            .arg(dir)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
        // The watchdog: kills the server if this process dies without dropping it.
        let _ = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "while kill -0 {} 2>/dev/null; do sleep 1; done; kill -9 {} 2>/dev/null; rm -rf '{}'",
                std::process::id(),
                child.id(),
                dir.display()
            ))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let server = OwnServer {
            child,
            port,
            dir: dir.to_owned(),
        };
        let deadline = Instant::now() + WAIT;
        while !reachable(&server.address()) {
            if Instant::now() > deadline {
                return Err(format!(
                    "{} did not listen on port {port}",
                    binary.display()
                ));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Ok(server)
    }

    pub fn address(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    pub fn url(&self) -> String {
        format!("nats://{}", self.address())
    }

    /// SIGKILLs the server.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Kills the server and starts it again on the same port and store.
    pub fn restart(&mut self) {
        self.kill();
        *self = OwnServer::start(self.port, &self.dir.clone()).unwrap();
    }
}

impl Drop for OwnServer {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Says that the calling test cannot run because `why`: a panic under `CI`, else a skip
/// notice written to the process's stderr directly (not captured by libtest). `None`.
pub fn unavailable(why: &str) -> Option<String> {
    let message = format!(
        "no NATS server with JetStream: {why}. Start one with `nats-server -a 127.0.0.1 -p 4222 \
         -js` (Debian package `nats-server`), or set EVENTBUS_TEST_NATS_ADDRESS to its address"
    );
    if std::env::var_os("CI").is_some() {
        panic!("{message}");
    }
    let test = std::thread::current()
        .name()
        .unwrap_or("a NATS test")
        .to_owned();
    let _ = std::io::stderr()
        .lock()
        .write_all(format!("\n*** SKIPPED {test}: {message} ***\n").as_bytes());
    None
}

/// The URL of a server for the tests (see the module), or `None` after a skip notice.
pub fn url() -> Option<String> {
    static OWN: OnceLock<Result<(OwnServer, tempfile::TempDir), String>> = OnceLock::new();
    let shared = shared_address();
    if reachable(&shared) {
        return Some(format!("nats://{shared}"));
    }
    let own = OWN.get_or_init(|| {
        let dir = tempfile::tempdir().map_err(|e| e.to_string())?;
        let server = OwnServer::start(free_port(), dir.path())?;
        Ok((server, dir))
    });
    match own {
        Ok((server, _)) => Some(server.url()),
        Err(why) => unavailable(&format!("nothing listens on {shared} and {why}")),
    }
}
