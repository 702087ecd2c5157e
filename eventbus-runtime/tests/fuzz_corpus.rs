//! A short bounded run of the runtime's fuzz targets (`fuzz/`): each over its committed corpus
//! and 20,000 deterministic mutations of it. See docs/robustness.md.

use std::path::{Path, PathBuf};

use eventbus_runtime::__fuzz;

const ITERATIONS: usize = 20_000;

fn corpus() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz/corpus")
}

#[test]
fn bridge_frame() {
    let runs = __fuzz::run_corpus(&corpus(), "bridge_frame", ITERATIONS, __fuzz::bridge_frame);
    assert!(runs > ITERATIONS);
}

#[test]
fn nats_message() {
    let runs = __fuzz::run_corpus(&corpus(), "nats_message", ITERATIONS, __fuzz::nats_message);
    assert!(runs > ITERATIONS);
}

#[test]
fn stored_record() {
    let runs = __fuzz::run_corpus(
        &corpus(),
        "stored_record",
        ITERATIONS,
        __fuzz::stored_record,
    );
    assert!(runs > ITERATIONS);
}
