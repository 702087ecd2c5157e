//! The `#[event_bus("events.yaml")]` attribute macro: typed events from a manifest, generated
//! at compile time, without a build script.
//!
//! Use it through the facade, as `eventbus::event_bus`: depend on `eventbus` only. The macro
//! is a thin front-end over `eventbus-codegen`, the same generator core as the build-script
//! route (`eventbus_codegen::Builder`), so both routes generate the same code for the same
//! manifest. See [`macro@event_bus`] for the options, the errors and when to choose which
//! route.
//!
//! ```
//! #[eventbus::event_bus("events.yaml")]
//! pub mod events {}
//!
//! let bus = events::EventBus::new();
//! bus.package_install.on(|e| println!("{} {:?}", e.dnp_name, e.status));
//! bus.package_install.emit(events::PackageEvent {
//!     dnp_name: "bitcoin.dnp.dappnode.eth".into(),
//!     status: events::PackageStatus::Started,
//!     progress: None,
//! });
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod args;
mod expand;
mod names;

/// Generates the typed events of a manifest inside a module.
///
/// ```
/// #[eventbus::event_bus("events.yaml")]
/// pub mod events {
///     // Your items stay, next to the generated ones, and may use them.
///     impl PackageEvent {
///         /// Whether the operation is over, one way or the other.
///         pub fn is_done(&self) -> bool {
///             matches!(self.status, PackageStatus::Completed | PackageStatus::Error)
///         }
///     }
/// }
///
/// use std::sync::atomic::{AtomicUsize, Ordering};
/// static DONE: AtomicUsize = AtomicUsize::new(0);
///
/// let bus = events::EventBus::new(); // Clone + Send + Sync; clones share listeners
/// bus.package_install.on(|e| {
///     if e.is_done() {
///         DONE.fetch_add(1, Ordering::Relaxed);
///     }
/// });
/// bus.package_install.emit(events::PackageEvent {
///     dnp_name: "bitcoin.dnp.dappnode.eth".into(),
///     status: events::PackageStatus::Completed,
///     progress: Some(1.0),
/// });
/// bus.request_packages.emit(); // an event without payload
/// assert_eq!(DONE.load(Ordering::Relaxed), 1);
/// assert_eq!(events::MANIFEST.package, "demo");
/// ```
///
/// # The path
///
/// The first argument is the manifest's path as a string literal, relative to the root of the
/// crate being compiled (the directory of its `Cargo.toml`, `CARGO_MANIFEST_DIR`), as for the
/// build script. An absolute path works too. Macros such as `concat!` are not expanded there.
///
/// # Options
///
/// - `events = ["packageInstall", ..]` keeps only these events (manifest names);
/// - `categories = ["chain", ..]` keeps only the events of these categories.
///
/// Given both, an event is kept if either selects it. Only the types the kept events use are
/// generated, and `MANIFEST` describes the subset. Use them so that a service sees only the
/// events it handles, and several modules can take different subsets of one manifest:
///
/// ```
/// #[eventbus::event_bus("events.yaml", categories = ["chain"])]
/// pub mod chain {}
///
/// #[eventbus::event_bus("events.yaml", events = ["packageInstall"])]
/// pub mod packages {}
///
/// assert_eq!(chain::MANIFEST.events.len(), 1);
/// let bus = chain::EventBus::new();
/// bus.chain_sync.on(|s: &chain::ChainSync| println!("{} peers", s.peers));
/// let _install = packages::EventBus::new().package_install;
/// ```
///
/// A name the manifest lacks is an error at that name, with a suggestion and the list of
/// what exists. Any other option is an error listing the known ones.
///
/// # What the module contains
///
/// - the payload types (`Debug, Clone, PartialEq`, serde), named as in the manifest; an inline
///   payload is named after its event (`chainSync` → `ChainSync`);
/// - `pub static MANIFEST: eventbus::ManifestMeta`: names, categories, policies;
/// - `pub struct EventBus`: one field per event (`bus.package_install`), `new()`, `Default`,
///   `Clone`, `core()`;
/// - a hidden `const _: &str = include_str!("<manifest>");`, so that cargo rebuilds the crate
///   when the manifest changes (and only then);
/// - then your items, unchanged. Attributes and doc comments of the module are kept.
///
/// The generated code names everything by absolute paths (`::eventbus::Event`, …), so it
/// compiles whatever your module imports, in a crate whose only dependency is `eventbus`.
///
/// An item of yours that takes a generated name (`struct EventBus`, a type named like one of
/// the manifest, `MANIFEST`, a `use` that imports such a name) is an error at your item: rename
/// it, or write `impl PackageEvent { .. }` to extend a generated type.
///
/// ```compile_fail
/// #[eventbus::event_bus("events.yaml")]
/// pub mod events {
///     pub struct EventBus; // error: `EventBus` is defined twice
/// }
/// ```
///
/// # Errors
///
/// Every problem of the manifest is a compiler error at the path literal, one per problem, all
/// at once, each carrying `path:line:column`, the message, the manifest line with carets and
/// the hint:
///
/// ```text
/// error: events.yaml:10:14: unknown type `PackageEvnt`
///           |
///        10 |     payload: PackageEvnt
///           |              ^^^^^^^^^^^ not a primitive or a declared type
///           |
///           = help: did you mean `PackageEvent`?
///  --> src/lib.rs:1:23
///   |
/// 1 | #[eventbus::event_bus("events.yaml")]
///   |                       ^^^^^^^^^^^^^
/// ```
///
/// Misuse is an error too, never a panic: on an item that is not a module, on `mod x;`
/// without a body, without a path or with a path that is not a string literal, a file that
/// does not exist (the message shows the resolved absolute path and `CARGO_MANIFEST_DIR`), an
/// unknown option or a bad option value. On any error the module is still emitted with your
/// items, so that paths to the module itself still resolve; code that names a generated type
/// (`impl PackageEvent`, `events::EventBus`) gets a "cannot find" error as well, which goes
/// away with the manifest error.
///
/// # Macro or build script
///
/// Choose the macro for no `build.rs` and per-module subsets. Choose the build script
/// (`eventbus_codegen::Builder` and `eventbus::include_events!()`) to also write TypeScript
/// and docs from the same build, to inspect the generated file in `OUT_DIR`, or for a huge
/// manifest: the build script regenerates only when the manifest changes, while the macro
/// re-expands whenever the crate recompiles.
#[proc_macro_attribute]
pub fn event_bus(
    attr: proc_macro::TokenStream,
    item: proc_macro::TokenStream,
) -> proc_macro::TokenStream {
    expand::expand(attr.into(), item.into()).into()
}
