//! # eventbus
//!
//! Typed events from one manifest. Declare events once in `events.yaml`; get typed Rust
//! emitters, TypeScript types and docs from it, and dispatch them with this runtime.
//!
//! This is the facade crate: depend on it alone. The generated code refers to it by absolute
//! paths (`::eventbus::Event`, …), so a crate that uses generated events needs no other
//! dependency, not even serde.
//!
//! ## The build-script route
//!
//! ```toml
//! [dependencies]
//! eventbus = "0.1"
//! [build-dependencies]
//! eventbus-codegen = "0.1"
//! ```
//!
//! ```no_run
//! // build.rs, in `fn main()`:
//! eventbus_codegen::compile("events.yaml");
//! ```
//!
//! ```ignore
//! // src/lib.rs
//! pub mod events {
//!     eventbus::include_events!();
//! }
//!
//! let bus = events::EventBus::new();
//! bus.package_install.on(|e| println!("{} {:?}", e.dnp_name, e.status));
//! ```
//!
//! See `README.md` and `docs/manifest.md` in the repository for the manifest language.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub use eventbus_runtime::*;

/// Generates the typed events of a manifest inside a module, at compile time: the route
/// without a build script.
///
/// ```
/// #[eventbus::event_bus("events.yaml")] // relative to the crate root (CARGO_MANIFEST_DIR)
/// pub mod events {}
///
/// let bus = events::EventBus::new();
/// bus.request_packages.on(|| println!("refresh"));
/// bus.request_packages.emit();
/// ```
///
/// Options select the events a crate sees: `#[event_bus("events.yaml", categories = ["chain"])]`.
/// The rest of this page tells the options, the errors and when to prefer the build script.
pub use eventbus_macros::event_bus;

/// Any JSON value: the Rust type of the manifest's `json` primitive.
///
/// ```
/// // A `json` field holds any JSON value.
/// let settings: eventbus::Json = serde_json::from_str(r#"{"theme": "dark", "fontSize": 14}"#).unwrap();
/// assert_eq!(settings["fontSize"], 14);
/// ```
pub type Json = serde_json::Value;

/// Includes the Rust code that `eventbus_codegen::Builder` wrote to `OUT_DIR`.
///
/// `include_events!()` includes `events.rs`; `include_events!("other.rs")` includes a file
/// written with `Builder::file_name("other.rs")`. Use it inside a module:
///
/// ```ignore
/// pub mod events {
///     eventbus::include_events!();
/// }
/// ```
#[macro_export]
macro_rules! include_events {
    () => {
        include!(concat!(env!("OUT_DIR"), "/events.rs"));
    };
    ($file:literal) => {
        include!(concat!(env!("OUT_DIR"), "/", $file));
    };
}

/// Re-exports for generated code. Not part of the public API: no semver guarantees.
#[doc(hidden)]
pub mod __private {
    pub use eventbus_runtime::__private::ASYNC;
    pub use eventbus_runtime::wire;
    pub use serde;
    pub use serde_json;
}
