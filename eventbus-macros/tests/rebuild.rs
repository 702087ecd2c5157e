//! Editing the manifest rebuilds the consumer, without `cargo clean`.
//!
//! Builds a scratch crate whose only dependency is `eventbus` (two manifests, two modules),
//! appends an event to one manifest, and runs it again: the new event is there although no
//! Rust file changed. Then the code uses the new event, and a last run with nothing changed
//! must not recompile (the hidden `include_str!` adds no spurious rebuilds). Last, a broken
//! manifest fails the build with its report, and fixing it alone builds again.
//!
//! The scratch crate lives in `<target>/tmp/rebuild-consumer` and builds into
//! `<target>/scratch` (not this test's own target dir, which the running `cargo test` holds),
//! so its dependencies compile once and later runs are incremental. `--offline` with a copy of
//! the workspace's `Cargo.lock`: no network, the versions this workspace tested.

use std::path::{Path, PathBuf};
use std::process::Command;

const EVENTS_V1: &str = "\
version: 1
package: scratch
events:
  ping:
    category: health
    payload: { n: u32 }
";

const NEW_EVENT: &str = concat!(
    "  pong:\n",
    "    category: health\n",
    "    description: Added after the first build.\n",
    "    payload: { text: string }\n",
);

const OTHER: &str = "\
version: 1
package: other
events:
  hello:
    category: greeting
";

const MAIN_V1: &str = r#"
#[eventbus::event_bus("events.yaml")]
mod events {}

#[eventbus::event_bus("other/events.yaml")]
mod other {}

fn main() {
    let names: Vec<&str> = events::MANIFEST.events.iter().map(|e| e.name).collect();
    println!("events: {}", names.join(","));
    let bus = events::EventBus::new();
    bus.ping.on(|p| println!("ping {}", p.n));
    bus.ping.emit(events::Ping { n: 1 });
    let other = other::EventBus::new();
    other.hello.on(|| println!("hello"));
    other.hello.emit();
    // USE PONG
}
"#;

const USE_PONG: &str = r#"bus.pong.on(|p| println!("pong {}", p.text));
    bus.pong.emit(events::Pong { text: "new".into() });"#;

struct Scratch {
    dir: PathBuf,
    target: PathBuf,
}

impl Scratch {
    fn write(&self, path: &str, text: &str) {
        let path = self.dir.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    /// `cargo run`: the program's stdout, and whether cargo compiled the consumer.
    fn run(&self) -> (String, bool) {
        let out = self.cargo_run();
        let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
        assert!(
            out.status.success(),
            "cargo run failed:\n{stderr}\n{stdout}"
        );
        let compiled = stderr.contains("Compiling eventbus-scratch-consumer");
        (stdout, compiled)
    }

    /// `cargo run`, successful or not.
    fn cargo_run(&self) -> std::process::Output {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        Command::new(cargo)
            .args(["run", "--offline", "--color", "never"])
            .current_dir(&self.dir)
            .env("CARGO_TARGET_DIR", &self.target)
            // Only the consumer is under test; keep the dependency build small.
            .env("CARGO_PROFILE_DEV_DEBUG", "0")
            .env_remove("CARGO_BUILD_TARGET_DIR")
            .env_remove("RUSTFLAGS")
            .output()
            .expect("cannot run cargo")
    }
}

#[test]
fn editing_the_manifest_rebuilds_the_consumer() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let scratch = Scratch {
        dir: tmp.join("rebuild-consumer"),
        target: tmp.parent().unwrap().join("scratch"),
    };
    let _ = std::fs::remove_dir_all(scratch.dir.join("src"));
    scratch.write(
        "Cargo.toml",
        &format!(
            "[package]\nname = \"eventbus-scratch-consumer\"\nversion = \"0.0.0\"\n\
             edition = \"2024\"\npublish = false\n\n[dependencies]\neventbus = {{ path = {:?} }}\n\n\
             # Not a member of the repository's workspace.\n[workspace]\n",
            repo.to_str().unwrap()
        ),
    );
    scratch.write(
        "Cargo.lock",
        &std::fs::read_to_string(repo.join("Cargo.lock")).unwrap(),
    );
    scratch.write("events.yaml", EVENTS_V1);
    scratch.write("other/events.yaml", OTHER);
    scratch.write("src/main.rs", MAIN_V1);

    let (out, _) = scratch.run();
    assert_eq!(out, "events: ping\nping 1\nhello\n");

    // Only the manifest changes: cargo must rebuild because of the hidden include_str!.
    scratch.write("events.yaml", &format!("{EVENTS_V1}{NEW_EVENT}"));
    let (out, compiled) = scratch.run();
    assert!(
        compiled,
        "editing the manifest did not rebuild the consumer"
    );
    assert_eq!(out, "events: ping,pong\nping 1\nhello\n");

    // The new event is a typed field with its payload type.
    scratch.write("src/main.rs", &MAIN_V1.replace("// USE PONG", USE_PONG));
    let (out, _) = scratch.run();
    assert_eq!(out, "events: ping,pong\nping 1\nhello\npong new\n");

    // Nothing changed: nothing is recompiled.
    let (out, compiled) = scratch.run();
    assert!(!compiled, "an unchanged consumer was recompiled");
    assert_eq!(out, "events: ping,pong\nping 1\nhello\npong new\n");

    // A broken manifest fails the build with its report; fixing only the manifest (no Rust
    // file touched) builds it again: the hidden `include_str!` is emitted even on errors.
    let good = format!("{EVENTS_V1}{NEW_EVENT}");
    scratch.write(
        "events.yaml",
        &good.replace("{ text: string }", "{ text: strng }"),
    );
    let failed = scratch.cargo_run();
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert!(
        !failed.status.success(),
        "a broken manifest built:\n{stderr}"
    );
    for expected in [
        "events.yaml:10:22: unknown type `strng`",
        "did you mean `string`?",
    ] {
        assert!(
            stderr.contains(expected),
            "`{expected}` missing from:\n{stderr}"
        );
    }
    scratch.write("events.yaml", &good);
    let (out, compiled) = scratch.run();
    assert!(compiled, "fixing the manifest did not rebuild the consumer");
    assert_eq!(out, "events: ping,pong\nping 1\nhello\npong new\n");
}
