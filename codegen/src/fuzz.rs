//! The bodies of the fuzz targets in `fuzz/` (cargo-fuzz), also run by
//! `codegen/tests/fuzz_corpus.rs` over the committed corpus and its mutations. Each takes any
//! bytes and panics only on a bug. Not part of the API.

use crate::Model;

/// `fuzz/fuzz_targets/manifest.rs`: any bytes → [`Model::parse`]; when the manifest is valid,
/// every generator (Rust, TypeScript, Markdown, AsyncAPI) runs on it, the AsyncAPI document
/// serialises, and [`diff`](crate::diff::diff) of the model with itself reports nothing.
pub fn manifest(data: &[u8]) {
    let Ok(source) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(model) = Model::parse("events.yaml", source) else {
        return;
    };
    let _ = crate::rust::file(&model);
    let _ = crate::typescript::file(&model);
    let _ = crate::docs::markdown(&model);
    let document = crate::asyncapi::document(&model);
    serde_json::to_string(&document).expect("the AsyncAPI document serialises");
    let changes = crate::diff::diff(&model, &model);
    assert!(
        changes.is_empty(),
        "diff(m, m) reported changes: {changes:?}"
    );
}

/// `fuzz/fuzz_targets/diff.rs`: the bytes split at the first NUL (or in the middle when there
/// is none) into two manifests; when both are valid, [`diff`](crate::diff::diff) runs both
/// ways and its reports render.
pub fn diff(data: &[u8]) {
    let (old, new) = split(data);
    let (Ok(old), Ok(new)) = (std::str::from_utf8(old), std::str::from_utf8(new)) else {
        return;
    };
    let (Ok(old), Ok(new)) = (Model::parse("old.yaml", old), Model::parse("new.yaml", new)) else {
        return;
    };
    for changes in [crate::diff::diff(&old, &new), crate::diff::diff(&new, &old)] {
        let _ = crate::diff::has_breaking(&changes);
        let _ = crate::diff::text_report(&changes);
        let _ = crate::diff::markdown_report(&changes);
    }
}

/// Splits fuzz input into two parts: at the first NUL byte (which is dropped), else in the
/// middle (on a byte boundary; a part that is not UTF-8 is skipped by the caller).
pub fn split(data: &[u8]) -> (&[u8], &[u8]) {
    match data.iter().position(|&b| b == 0) {
        Some(at) => (&data[..at], &data[at + 1..]),
        None => data.split_at(data.len() / 2),
    }
}
