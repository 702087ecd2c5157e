//! What the integration tests of `eventbus-codegen` share: where the repository is, and the
//! npm tools (installed on demand by [`npm`]). Each test crate uses part of it.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// The repository root (the workspace, one above `codegen/`).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_owned()
}

/// The on-demand `npm ci`, shared with the root crate's tests.
#[path = "../../../tests/support/npm.rs"]
pub mod npm;

/// `node_modules/.bin/tsc`, after `npm ci` if `node_modules` is missing or stale.
pub fn tsc() -> PathBuf {
    npm::tsc()
}
