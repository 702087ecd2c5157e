//! The demo's compiled page assets (`examples/dappmanager/assets/*.js`, embedded by the demo)
//! are what `tsc -p ui/tsconfig.json` makes of `ui/src` now, and `ui/src/generated/client.ts`
//! is what the generator writes.
//!
//! Regenerate with `EVENTBUS_BLESS=1 cargo test -p eventbus --test dappmanager_assets`, or
//! `npx tsc -p ui/tsconfig.json` after changing `ui/src/main.ts`.

use std::path::{Path, PathBuf};
use std::process::Command;

/// The pinned TypeScript compiler, installed on demand.
#[path = "support/npm.rs"]
mod npm;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn bless() -> bool {
    std::env::var_os("EVENTBUS_BLESS").is_some()
}

/// Every `.js` file under `dir`, as absolute paths.
fn files(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "js") {
                found.push(path);
            }
        }
    }
    found.sort();
    found
}

#[test]
fn the_generated_client_is_fresh() {
    let path = root().join("ui/src/generated/client.ts");
    let expected = eventbus_codegen::ts_client::file("./events.js");
    if bless() {
        eventbus_codegen::write_if_changed(&path, expected.as_bytes()).unwrap();
    }
    let actual = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        actual == expected,
        "ui/src/generated/client.ts is stale: run EVENTBUS_BLESS=1 cargo test -p eventbus --test dappmanager_assets"
    );
}

#[test]
fn the_compiled_page_assets_are_fresh() {
    let tsc = npm::tsc();
    let assets = root().join("examples/dappmanager/assets");
    let out = tempfile::tempdir().unwrap();
    let output = Command::new(&tsc)
        .args(["-p", "ui/tsconfig.json", "--outDir"])
        .arg(out.path())
        .current_dir(root())
        .output()
        .expect("tsc runs");
    assert!(
        output.status.success(),
        "tsc -p ui/tsconfig.json failed:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    let made: Vec<PathBuf> = files(out.path())
        .into_iter()
        .map(|p| p.strip_prefix(out.path()).unwrap().to_path_buf())
        .collect();
    assert!(
        made.contains(&PathBuf::from("main.js"))
            && made.contains(&PathBuf::from("generated/client.js"))
            && made.contains(&PathBuf::from("generated/events.js")),
        "tsc made {made:?}"
    );
    let mut stale = Vec::new();
    for file in &made {
        let fresh = std::fs::read(out.path().join(file)).unwrap();
        let committed = assets.join(file);
        if bless() {
            std::fs::create_dir_all(committed.parent().unwrap()).unwrap();
            eventbus_codegen::write_if_changed(&committed, &fresh).unwrap();
        }
        if std::fs::read(&committed).ok().as_deref() != Some(fresh.as_slice()) {
            stale.push(file.display().to_string());
        }
    }
    let committed: Vec<PathBuf> = files(&assets)
        .into_iter()
        .map(|p| p.strip_prefix(&assets).unwrap().to_path_buf())
        .collect();
    let extra: Vec<_> = committed.iter().filter(|f| !made.contains(f)).collect();
    assert!(
        stale.is_empty() && extra.is_empty(),
        "examples/dappmanager/assets is stale ({stale:?}; not made by tsc: {extra:?}): run \
         `npx tsc -p ui/tsconfig.json` (or EVENTBUS_BLESS=1 cargo test -p eventbus --test dappmanager_assets)"
    );
}
