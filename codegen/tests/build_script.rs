//! `compile()` as a build script runs it: a broken manifest fails with cargo errors and the
//! full report; a good one writes `OUT_DIR/events.rs` and asks cargo to watch the file.
//!
//! The test re-runs its own binary as the "build script" so that `process::exit` can be observed.

use std::path::Path;
use std::process::Command;

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
