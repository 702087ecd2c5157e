//! The eventbus generator core: `events.yaml` → checked [`Model`] → Rust, TypeScript and docs.
//!
//! One library behind three front-ends (the `#[event_bus]` macro, the [`Builder`] for build
//! scripts, and the `eventbus` CLI). Each front-end maps its inputs onto [`Settings`] and calls
//! the same functions, so they cannot drift apart. The core itself never prints and never
//! writes files: [`Builder`] is the one place that does, for build scripts.
//!
//! ```
//! let source = r#"
//! version: 1
//! package: demo
//! events:
//!   chainSync:
//!     category: chain
//!     payload: { network: string, peers: u32 }
//! "#;
//! let model = eventbus_codegen::Model::parse("events.yaml", source).unwrap();
//! let code = eventbus_codegen::rust::file(&model);
//! assert!(code.contains("pub struct ChainSync"));
//! assert!(code.contains("pub chain_sync: ::eventbus::Event<ChainSync>"));
//! ```
//!
//! A broken manifest yields an [`Error`] holding every finding, rendered like rustc:
//!
//! ```
//! let err = eventbus_codegen::Model::parse("events.yaml", "version: 1\npackage: demo\nevents:\n  x:\n    payload: Strng\n")
//!     .unwrap_err();
//! assert_eq!(err.diagnostics[0].message, "unknown type `Strng`");
//! assert!(err.to_string().contains("--> events.yaml:5:14"));
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod asyncapi;
mod builder;
mod diagnostic;
pub mod diff;
pub mod docs;
mod example;
mod fingerprint;
pub mod manifest;
pub mod model;
pub mod names;
pub mod policy;
pub mod rust;
mod settings;
pub mod ts_client;
pub mod type_expr;
pub mod typescript;
mod validate;
pub mod yaml;

/// Fuzz target bodies (`fuzz/`, `codegen/tests/fuzz_corpus.rs`); not part of the API.
#[doc(hidden)]
#[path = "fuzz.rs"]
pub mod __fuzz;

use std::path::Path;

pub use builder::{Builder, compile, write_if_changed};
pub use diagnostic::{Diagnostic, Error, Severity, Span, did_you_mean};
pub use model::{EventDef, Field, Model, Primitive, TypeDef, TypeKind, TypeRef};
pub use settings::Settings;

impl Model {
    /// Parses and checks a manifest. `path` is only used in error reports.
    ///
    /// ```
    /// use eventbus_codegen::Model;
    ///
    /// let model = Model::parse("events.yaml", "version: 1\npackage: demo\nevents:\n  ping: { payload: { n: u32 } }\n").unwrap();
    /// assert_eq!(model.events[0].payload.as_deref(), Some("Ping"));
    ///
    /// // `path` only names the file in reports.
    /// let err = Model::parse("config/bus.yaml", "version: 1\npackage: demo\nevents: {}\nfoo: 1\n").unwrap_err();
    /// assert!(err.to_string().contains("--> config/bus.yaml:"));
    /// ```
    pub fn parse(path: impl AsRef<Path>, source: &str) -> Result<Model, Error> {
        let path = path.as_ref();
        let fail = |diagnostics| Error {
            path: path.to_owned(),
            source_text: source.to_owned(),
            diagnostics,
        };
        let root = match yaml::parse(source) {
            Ok(root) => root,
            Err(e) => {
                return Err(fail(vec![
                    Diagnostic::error(e.span, format!("invalid YAML: {}", e.message))
                        .label("the YAML parser stopped here")
                        .help("check indentation, quotes and `key: value` syntax"),
                ]));
            }
        };
        let mut sink = diagnostic::Sink::default();
        let manifest = manifest::read(&root, &mut sink);
        let model = validate::check(&manifest, &mut sink);
        match model {
            Some(model) if !sink.has_errors() => Ok(model),
            _ => Err(fail(sink.sorted())),
        }
    }

    /// Reads and checks the manifest at `path`.
    ///
    /// ```
    /// use eventbus_codegen::Model;
    ///
    /// let path = std::env::temp_dir().join(format!("eventbus-doc-load-{}.yaml", std::process::id()));
    /// std::fs::write(&path, "version: 1\npackage: demo\nevents:\n  ping: {}\n").unwrap();
    /// assert_eq!(Model::load(&path).unwrap().package, "demo");
    /// # std::fs::remove_file(&path).unwrap();
    ///
    /// let err = Model::load("no/such/events.yaml").unwrap_err();
    /// assert!(err.diagnostics[0].message.starts_with("cannot read `no/such/events.yaml`"));
    /// ```
    pub fn load(path: impl AsRef<Path>) -> Result<Model, Error> {
        let path = path.as_ref();
        let source = read_manifest(path).map_err(|message| Error::io(path, message))?;
        Model::parse(path, &source)
    }
}

/// Reads a manifest file as UTF-8 text, never more than [`yaml::MAX_MANIFEST_BYTES`] (plus one
/// byte to tell that it is too large), so that `/dev/zero` or a huge file is refused rather
/// than read into memory. The error is one line naming the file.
///
/// ```
/// let err = eventbus_codegen::read_manifest("does/not/exist.yaml").unwrap_err();
/// assert!(err.starts_with("cannot read `does/not/exist.yaml`"));
/// ```
pub fn read_manifest(path: impl AsRef<Path>) -> Result<String, String> {
    use std::io::Read as _;
    let path = path.as_ref();
    let cannot = |e: std::io::Error| format!("cannot read `{}`: {e}", path.display());
    let mut bytes = Vec::new();
    std::fs::File::open(path)
        .map_err(cannot)?
        .take(yaml::MAX_MANIFEST_BYTES as u64 + 1)
        .read_to_end(&mut bytes)
        .map_err(cannot)?;
    if bytes.len() > yaml::MAX_MANIFEST_BYTES {
        return Err(format!(
            "`{}` is larger than the manifest limit of {} bytes",
            path.display(),
            yaml::MAX_MANIFEST_BYTES
        ));
    }
    String::from_utf8(bytes).map_err(|e| {
        format!(
            "`{}` is not UTF-8 text (invalid byte at offset {})",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

impl std::str::FromStr for Model {
    type Err = Error;

    /// Parses a manifest given as text; errors name the file `events.yaml`.
    fn from_str(source: &str) -> Result<Model, Error> {
        Model::parse("events.yaml", source)
    }
}
