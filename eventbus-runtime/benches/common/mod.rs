//! The payloads and the manifest the benchmarks share.

use eventbus_runtime::{EventMeta, ManifestMeta, Policies, Scope, UiDirection};
use serde::{Deserialize, Serialize};

/// A small payload.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Small {
    pub value: u32,
}

/// A realistic payload: DAppNode's package progress.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PackageEvent {
    pub dnp_name: String,
    pub version: String,
    pub operation: String,
    pub status: String,
    pub progress: Option<f64>,
}

const fn meta(name: &'static str) -> EventMeta {
    EventMeta {
        name,
        category: "bench",
        description: "",
        payload: Some("T"),
        persist: false,
        ui: UiDirection::None,
        scope: Scope::Local,
        deprecated: None,
        policies: Policies::NONE,
    }
}

/// `small` and `packageEvent`.
pub static EVENTS: [EventMeta; 2] = [meta("small"), meta("packageEvent")];

/// The benchmarks' manifest.
pub static MANIFEST: ManifestMeta = ManifestMeta {
    package: "bench",
    version: 1,
    fingerprint: "0000000000000000",
    events: &EVENTS,
};
