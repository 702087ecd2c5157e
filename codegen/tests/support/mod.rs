//! What the integration tests of `eventbus-codegen` share: where the repository is, and the
//! TypeScript compiler from `npm ci`. Each test crate uses part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The repository root (the workspace, one above `codegen/`).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// `node_modules/.bin/tsc`, or a failure that says how to get it: never a silent pass.
pub fn tsc() -> PathBuf {
    let tsc = repo().join("node_modules/.bin/tsc");
    assert!(
        tsc.exists(),
        "`{}` is missing: run `npm ci` in the repository root (it installs the TypeScript compiler \
         pinned in package-lock.json), then rerun the tests",
        tsc.display()
    );
    tsc
}
