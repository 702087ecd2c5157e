//! trybuild cases: every misuse of `#[event_bus]` and every broken manifest is a compiler error
//! that says what is wrong and where, never a panic. The expected output is in
//! `tests/ui/*.stderr`; regenerate with `TRYBUILD=overwrite cargo test -p eventbus-macros --test
//! compile_fail` and review the diff.

use std::path::{Path, PathBuf};

#[test]
fn ui() {
    let target = workspace_target();
    stage_manifests(&target);
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}

/// The target directory trybuild builds the cases in: always `<workspace>/target`.
///
/// Two cases (`file_not_found`, `path_is_directory`) show the absolute path of the crate
/// trybuild makes, which it writes as `$WORKSPACE/target/...` only when that crate is inside the
/// workspace. trybuild takes its target directory from cargo, so a `CARGO_TARGET_DIR` set for
/// the outer build (common for CI caches) is overridden for trybuild's own cargo runs.
fn workspace_target() -> PathBuf {
    let target = Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("eventbus-macros is in the workspace")
        .join("target");
    // SAFETY: `ui` is the only test of this binary, and no other thread of it reads the
    // environment while it is changed.
    unsafe {
        std::env::set_var("CARGO_TARGET_DIR", &target);
        std::env::remove_var("CARGO_BUILD_TARGET_DIR");
    }
    target
}

/// trybuild compiles the cases as a crate of its own, in `<target>/tests/trybuild/<crate>`, and
/// the macro reads manifests relative to that crate's root (its `CARGO_MANIFEST_DIR`, as for
/// any user). Put the manifests the cases name there: `events.yaml` (this crate's demo
/// manifest) and `manifests/` (the broken ones, from `tests/ui/manifests`).
fn stage_manifests(target: &Path) {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let project = target.join("tests/trybuild").join(env!("CARGO_PKG_NAME"));
    let manifests = project.join("manifests");
    std::fs::create_dir_all(&manifests).unwrap();
    copy(&here.join("events.yaml"), &project.join("events.yaml"));
    for entry in std::fs::read_dir(here.join("tests/ui/manifests")).unwrap() {
        let from = entry.unwrap().path();
        copy(&from, &manifests.join(from.file_name().unwrap()));
    }
}

/// Copies unless the destination already holds the same bytes (keeps it fresh for cargo).
fn copy(from: &Path, to: &Path) {
    let bytes = std::fs::read(from).unwrap();
    if std::fs::read(to).ok().as_deref() != Some(&bytes[..]) {
        std::fs::write(to, bytes).unwrap();
    }
}
