//! trybuild cases: every misuse of `#[event_bus]` and every broken manifest is a compiler error
//! that says what is wrong and where, never a panic. The expected output is in
//! `tests/ui/*.stderr`; regenerate with `TRYBUILD=overwrite cargo test -p eventbus-macros --test
//! compile_fail` and review the diff.

use std::path::Path;

#[test]
fn ui() {
    stage_manifests();
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/*.rs");
}

/// trybuild compiles the cases as a crate of its own, in `<target>/tests/trybuild/<crate>`, and
/// the macro reads manifests relative to that crate's root (its `CARGO_MANIFEST_DIR`, as for
/// any user). Put the manifests the cases name there: `events.yaml` (this crate's demo
/// manifest) and `manifests/` (the broken ones, from `tests/ui/manifests`).
///
/// Two cases (`file_not_found`, `path_is_directory`) show that crate's absolute path, which
/// trybuild writes as `$WORKSPACE/target/...`: they expect the default target directory inside
/// the workspace, as every other path in `.stderr` files does.
fn stage_manifests() {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("CARGO_TARGET_TMPDIR is <target>/tmp");
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
