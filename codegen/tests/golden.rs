//! Golden outputs: for every `tests/golden/*.yaml` and the repository's `events.yaml`, the
//! generated Rust must equal the committed `tests/golden/<name>.rs`. `EVENTBUS_BLESS=1`
//! rewrites them; review the diff. The facade's `tests/golden.rs` compiles and uses them.

use std::path::PathBuf;

mod support;
use support::repo;

fn cases() -> Vec<(String, PathBuf)> {
    let mut cases: Vec<_> = std::fs::read_dir(repo().join("tests/golden"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| (p.file_stem().unwrap().to_string_lossy().into_owned(), p))
        .collect();
    cases.push(("dappnode".to_owned(), repo().join("events.yaml")));
    cases.sort();
    cases
}

#[test]
fn generated_rust_matches_the_golden_files() {
    let bless = std::env::var_os("EVENTBUS_BLESS").is_some();
    let mut stale = Vec::new();
    let cases = cases();
    assert!(cases.len() >= 4);
    for (name, manifest) in cases {
        let model = eventbus_codegen::Model::load(&manifest).unwrap_or_else(|e| panic!("{e}"));
        let code = eventbus_codegen::rust::file(&model);
        let golden = repo().join(format!("tests/golden/{name}.rs"));
        if bless {
            eventbus_codegen::write_if_changed(&golden, code.as_bytes()).unwrap();
        } else if std::fs::read_to_string(&golden).ok().as_deref() != Some(code.as_str()) {
            stale.push(golden.display().to_string());
        }
    }
    assert!(
        stale.is_empty(),
        "stale golden files (rerun with EVENTBUS_BLESS=1 and review the diff): {stale:?}"
    );
}

/// The build-script and the in-memory routes produce the same code.
#[test]
fn builder_writes_what_the_core_generates() {
    let out = std::env::temp_dir().join(format!("eventbus-golden-{}", std::process::id()));
    let manifest = repo().join("tests/golden/shapes.yaml");
    let path = eventbus_codegen::Builder::new(&manifest)
        .out_dir(&out)
        .build()
        .unwrap();
    let written = std::fs::read_to_string(&path).unwrap();
    let model = eventbus_codegen::Model::load(&manifest).unwrap();
    assert_eq!(written, eventbus_codegen::rust::file(&model));
    // Unchanged output is not rewritten (its timestamp stays, so nothing rebuilds).
    let before = std::fs::metadata(&path).unwrap().modified().unwrap();
    assert!(!eventbus_codegen::write_if_changed(&path, written.as_bytes()).unwrap());
    assert_eq!(
        std::fs::metadata(&path).unwrap().modified().unwrap(),
        before
    );
    std::fs::remove_dir_all(out).unwrap();
}
