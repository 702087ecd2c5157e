//! The generated bridge client in Node, against a scripted fake WebSocket
//! (`tests/browser/client.mjs`): first-frame auth, typed and validated dispatch, reconnect with
//! resume, `history` asked for only without a resume point, handlers never duplicated, stored events never delivered twice, emit acks and
//! refusals, no reconnection after a refused token, the heartbeat watchdog and connect timeout,
//! and emits queued (bounded, in order, paced) while not connected. Fails (never skips) without
//! Node.

use std::path::Path;
use std::process::Command;

#[test]
fn the_client_behaves_in_node() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let output = Command::new("node")
        .arg(root.join("tests/browser/client.mjs"))
        .current_dir(root)
        .output()
        .expect("node runs (install Node.js)");
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "tests/browser/client.mjs failed:\n{text}"
    );
    assert!(text.contains("10 passed, 0 failed"), "{text}");
}
