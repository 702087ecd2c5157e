//! A short bounded run of the generator's fuzz targets (`fuzz/`): each over its committed
//! corpus and deterministic mutations of it. See docs/robustness.md.

use std::path::{Path, PathBuf};

use eventbus_codegen::__fuzz;
use eventbus_runtime::__fuzz::run_corpus;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus")
}

#[test]
fn manifest() {
    run_corpus(&corpus(), "manifest", 20_000, __fuzz::manifest);
}

#[test]
fn diff() {
    run_corpus(&corpus(), "diff", 20_000, __fuzz::diff);
}
