//! `compile()` as a build script runs it: a broken manifest fails with cargo errors and the
//! full report; a good one writes `OUT_DIR/events.rs` and asks cargo to watch the file.
//!
//! The first tests re-run their own binary as the "build script" so that `process::exit` can be
//! observed; the last builds a real consumer crate with cargo (see
//! `a_consumer_crate_builds_fails_and_rebuilds_through_cargo`).

#[path = "../../tests/support/scratch.rs"]
mod scratch;

use std::path::Path;
use std::process::Command;

use scratch::Scratch;

const CHILD: &str = "EVENTBUS_TEST_COMPILE_CHILD";

fn run_compile(manifest: &Path, out_dir: &Path) -> std::process::Output {
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "child_entry_point",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD, manifest)
        .env("OUT_DIR", out_dir)
        .output()
        .unwrap()
}

#[test]
fn child_entry_point() {
    if let Some(path) = std::env::var_os(CHILD) {
        eventbus_codegen::compile(path);
    }
}

#[test]
fn a_broken_manifest_fails_the_build_with_the_report() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = std::env::temp_dir().join(format!("eventbus-bs-broken-{}", std::process::id()));
    let output = run_compile(&dir.join("tests/broken/unknown_type.yaml"), &out);
    assert_eq!(output.status.code(), Some(1));
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stdout.contains("cargo:rerun-if-changed="), "{stdout}");
    assert!(
        stdout.contains("unknown_type.yaml:10:14: unknown type `PackageEvnt` (help: did you mean `PackageEvent`?)"),
        "{stdout}"
    );
    assert!(stderr.contains("10 |     payload: PackageEvnt"), "{stderr}");
    assert!(!out.join("events.rs").exists());
}

#[test]
fn a_good_manifest_writes_the_file_and_watches_it() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let out = std::env::temp_dir().join(format!("eventbus-bs-good-{}", std::process::id()));
    let manifest = repo.join("tests/golden/minimal.yaml");
    let output = run_compile(&manifest, &out);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!("cargo:rerun-if-changed={}", manifest.display())),
        "{stdout}"
    );
    let code = std::fs::read_to_string(out.join("events.rs")).unwrap();
    assert!(code.starts_with("// @generated"));
    std::fs::remove_dir_all(out).unwrap();
}

// ---- a real consumer crate, built by cargo ---------------------------------------------------

const CONSUMER_BUILD_RS: &str = r#"fn main() {
    eventbus_codegen::Builder::new("events.yaml").build().unwrap();
}
"#;

const CONSUMER_MAIN_RS: &str = r#"mod events {
    eventbus::include_events!();
}

fn main() {
    println!("{}", env!("OUT_DIR"));
    let bus = events::EventBus::new();
    bus.ping.on(|p| println!("ping {}", p.n));
    bus.ping.emit(events::Ping { n: 7 });
}
"#;

const CONSUMER_EVENTS: &str = "\
version: 1
package: scratch
events:
  ping:
    category: health
    payload: { n: u32 }
";

/// `payload: Pingg` at 6:20: unknown, with `Ping` a declared type to suggest.
const CONSUMER_BROKEN: &str = "\
version: 1
package: scratch
types:
  Ping: { fields: { n: u32 } }
events:
  ping: { payload: Pingg }
";

fn modified(path: &Path) -> std::time::SystemTime {
    std::fs::metadata(path).unwrap().modified().unwrap()
}

/// A scratch crate outside the workspace on the build-script route: `eventbus` (default
/// features) is its only dependency, `eventbus-codegen` its build-dependency, `Builder` in its
/// `build.rs`. Inside the workspace (`tests/build-script`) features unify with the facade's
/// dev-dependencies, so only a crate of its own proves the default-feature build.
#[test]
fn a_consumer_crate_builds_fails_and_rebuilds_through_cargo() {
    let consumer = Scratch::new(
        "build-script-consumer",
        "eventbus-scratch-build-script",
        &format!(
            "[build-dependencies]\neventbus-codegen = {{ path = {:?}, default-features = false }}\n\n",
            env!("CARGO_MANIFEST_DIR")
        ),
    );
    consumer.write("build.rs", CONSUMER_BUILD_RS);
    consumer.write("src/main.rs", CONSUMER_MAIN_RS);
    consumer.write("events.yaml", CONSUMER_EVENTS);

    // (a) It builds with eventbus's default features, and the generated event works.
    let (out, _) = consumer.run();
    let (out_dir, rest) = out.split_once('\n').unwrap();
    assert_eq!(rest, "ping 7\n");
    let generated = Path::new(out_dir).join("events.rs");
    assert!(
        std::fs::read_to_string(&generated)
            .unwrap()
            .starts_with("// @generated")
    );

    // (c) The manifest is rewritten unchanged: cargo reruns the build script, which leaves the
    // generated file alone. Its timestamp is first set in the past, so a rewrite would show
    // even on a file system with coarse timestamps.
    let past = std::time::SystemTime::now() - std::time::Duration::from_secs(3600);
    std::fs::File::options()
        .write(true)
        .open(&generated)
        .unwrap()
        .set_modified(past)
        .unwrap();
    consumer.write("events.yaml", CONSUMER_EVENTS);
    let (out, compiled) = consumer.run();
    assert!(
        compiled,
        "touching the manifest did not rerun the build script"
    );
    assert_eq!(out, format!("{out_dir}\nping 7\n"));
    assert_eq!(
        modified(&generated),
        past,
        "an unchanged manifest rewrote the generated file"
    );

    // (b) A broken manifest fails `cargo build` with the report: position, message, hint.
    consumer.write("events.yaml", CONSUMER_BROKEN);
    consumer.build_fails_with(&[
        "events.yaml:6:20",
        "unknown type `Pingg`",
        "did you mean `Ping`?",
    ]);

    // Fixing the manifest alone (no Rust file touched) makes it build again.
    consumer.write("events.yaml", CONSUMER_EVENTS);
    let (out, _) = consumer.run();
    assert_eq!(out, format!("{out_dir}\nping 7\n"));
}
