//! What the integration tests of `eventbus-codegen` share: where the repository is, and the
//! npm tools (installed on demand by [`npm`]). Each test crate uses part of it.
#![allow(dead_code)]

/// The on-demand `npm ci`, shared with the root crate's tests.
#[path = "../../../tests/support/npm.rs"]
pub mod npm;

/// The repository root, and `node_modules/.bin/tsc` after `npm ci` if needed.
#[allow(unused_imports)] // each test crate uses part of it
pub use npm::{root as repo, tsc};
