//! The build-script front-end: reads the manifest, generates, writes only what changed.

use std::io;
use std::path::{Path, PathBuf};

use crate::{Error, Model, Settings, rust, typescript};

/// Generates the typed bus from a manifest in `build.rs`.
///
/// ```no_run
/// // build.rs, in `fn main()`:
/// eventbus_codegen::Builder::new("events.yaml").build().unwrap();
/// ```
///
/// and in the crate:
///
/// ```ignore
/// pub mod events {
///     eventbus::include_events!();
/// }
/// ```
///
/// The Rust output goes to `$OUT_DIR/events.rs`, formatted, under an `@generated` header, and
/// is rewritten only when its content changed. Cargo is told to rerun the script when the
/// manifest file changes (the file, not its directory).
#[derive(Debug, Clone)]
#[must_use = "call .build() to generate"]
pub struct Builder {
    manifest: PathBuf,
    out_dir: Option<PathBuf>,
    file_name: String,
    settings: Settings,
    typescript: Option<PathBuf>,
    typescript_client: bool,
}

impl Builder {
    /// A builder for the manifest at `path` (relative paths are relative to the crate root,
    /// where cargo runs build scripts).
    ///
    /// ```
    /// use eventbus_codegen::Builder;
    ///
    /// let dir = std::env::temp_dir().join(format!("eventbus-doc-builder-new-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let manifest = dir.join("events.yaml");
    /// std::fs::write(&manifest, "version: 1\npackage: demo\nevents:\n  ping: { payload: { n: u32 } }\n").unwrap();
    ///
    /// // In a build script the output goes to `$OUT_DIR`; here, next to the manifest.
    /// let rust = Builder::new(&manifest).out_dir(&dir).build().unwrap();
    /// assert_eq!(rust, dir.join("events.rs"));
    /// assert!(std::fs::read_to_string(&rust).unwrap().contains("pub struct Ping"));
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn new(path: impl Into<PathBuf>) -> Self {
        Builder {
            manifest: path.into(),
            out_dir: None,
            file_name: "events.rs".to_owned(),
            settings: Settings::default(),
            typescript: None,
            typescript_client: false,
        }
    }

    /// Where to write the Rust file (default: `$OUT_DIR`).
    ///
    /// ```
    /// use eventbus_codegen::Builder;
    ///
    /// let dir = std::env::temp_dir().join(format!("eventbus-doc-builder-out-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// std::fs::write(dir.join("events.yaml"), "version: 1\npackage: demo\nevents:\n  ping: {}\n").unwrap();
    ///
    /// let rust = Builder::new(dir.join("events.yaml")).out_dir(dir.join("generated")).build().unwrap();
    /// assert_eq!(rust, dir.join("generated").join("events.rs")); // the directory is created
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn out_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.out_dir = Some(dir.into());
        self
    }

    /// The Rust file's name (default `events.rs`; then `include_events!("name.rs")`).
    ///
    /// ```
    /// use eventbus_codegen::Builder;
    ///
    /// let dir = std::env::temp_dir().join(format!("eventbus-doc-builder-name-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// std::fs::write(dir.join("billing.yaml"), "version: 1\npackage: billing\nevents:\n  invoicePaid: {}\n").unwrap();
    ///
    /// // A second manifest of the same crate, then `eventbus::include_events!("billing.rs")`.
    /// let rust = Builder::new(dir.join("billing.yaml")).out_dir(&dir).file_name("billing.rs").build().unwrap();
    /// assert_eq!(rust.file_name().unwrap(), "billing.rs");
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn file_name(mut self, name: impl Into<String>) -> Self {
        self.file_name = name.into();
        self
    }

    /// Also writes the TypeScript module ([`typescript::file`]) to `path`, only when its
    /// content changed. A relative path is relative to the crate root (`CARGO_MANIFEST_DIR`).
    ///
    /// ```no_run
    /// // build.rs, in `fn main()`:
    /// eventbus_codegen::Builder::new("events.yaml")
    ///     .typescript("ui/src/generated/events.ts")
    ///     .build()
    ///     .unwrap();
    /// ```
    pub fn typescript(mut self, path: impl Into<PathBuf>) -> Self {
        self.typescript = Some(path.into());
        self
    }

    /// Also writes the typed WebSocket client ([`ts_client::file`](crate::ts_client::file),
    /// `client.ts`) next to the TypeScript module set with [`typescript`](Self::typescript),
    /// only when its content changed.
    ///
    /// ```no_run
    /// // build.rs, in `fn main()`:
    /// eventbus_codegen::Builder::new("events.yaml")
    ///     .typescript("ui/src/generated/events.ts") // and ui/src/generated/client.ts
    ///     .typescript_client()
    ///     .build()
    ///     .unwrap();
    /// ```
    pub fn typescript_client(mut self) -> Self {
        self.typescript_client = true;
        self
    }

    /// Generates only these events (and the types they use).
    ///
    /// ```
    /// use eventbus_codegen::Builder;
    ///
    /// let dir = std::env::temp_dir().join(format!("eventbus-doc-builder-events-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let manifest = "version: 1\npackage: demo\nevents:\n  ping: { payload: { n: u32 } }\n  pong: { payload: { n: u32 } }\n";
    /// std::fs::write(dir.join("events.yaml"), manifest).unwrap();
    ///
    /// let rust = Builder::new(dir.join("events.yaml")).out_dir(&dir).events(["ping"]).build().unwrap();
    /// let code = std::fs::read_to_string(rust).unwrap();
    /// assert!(code.contains("pub struct Ping") && !code.contains("pub struct Pong"));
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn events<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.settings = self.settings.events(names);
        self
    }

    /// Generates only the events of these categories.
    ///
    /// ```
    /// use eventbus_codegen::Builder;
    ///
    /// let dir = std::env::temp_dir().join(format!("eventbus-doc-builder-categories-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// let manifest = "version: 1\npackage: demo\nevents:\n  \
    ///     chainSync: { category: chain, payload: { peers: u32 } }\n  \
    ///     invoicePaid: { category: billing, payload: { cents: u32 } }\n";
    /// std::fs::write(dir.join("events.yaml"), manifest).unwrap();
    ///
    /// let rust = Builder::new(dir.join("events.yaml")).out_dir(&dir).categories(["chain"]).build().unwrap();
    /// let code = std::fs::read_to_string(rust).unwrap();
    /// assert!(code.contains("pub struct ChainSync") && !code.contains("pub struct InvoicePaid"));
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn categories<I: IntoIterator<Item = S>, S: Into<String>>(mut self, names: I) -> Self {
        self.settings = self.settings.categories(names);
        self
    }

    /// Reads, checks and generates. Returns the path of the Rust file.
    ///
    /// The error renders every problem of the manifest rustc-style, both through `Display`
    /// and `Debug`, so `.unwrap()` in `build.rs` prints a readable report.
    ///
    /// ```
    /// use eventbus_codegen::Builder;
    ///
    /// let dir = std::env::temp_dir().join(format!("eventbus-doc-builder-build-{}", std::process::id()));
    /// std::fs::create_dir_all(&dir).unwrap();
    /// std::fs::write(dir.join("events.yaml"), "version: 1\npackage: demo\nevents:\n  x:\n    payload: Strng\n").unwrap();
    ///
    /// let err = Builder::new(dir.join("events.yaml")).out_dir(&dir).build().unwrap_err();
    /// assert_eq!(err.errors().next().unwrap().message, "unknown type `Strng`");
    /// assert!(!dir.join("events.rs").exists()); // nothing written
    /// # std::fs::remove_dir_all(&dir).unwrap();
    /// ```
    pub fn build(self) -> Result<PathBuf, Error> {
        // Emitted first so that a broken manifest is re-read once it is fixed.
        println!("cargo:rerun-if-changed={}", self.manifest.display());
        let model = Model::load(&self.manifest)?;
        let model = self
            .settings
            .apply(&model)
            .map_err(|msg| Error::io(&self.manifest, msg))?;
        let out_dir = match self.out_dir {
            Some(dir) => dir,
            None => std::env::var_os("OUT_DIR").map(PathBuf::from).ok_or_else(|| {
                Error::io(&self.manifest, "OUT_DIR is not set: call Builder::build from build.rs, or set .out_dir(..)")
            })?,
        };
        if let Some(ts) = &self.typescript {
            let ts = match std::env::var_os("CARGO_MANIFEST_DIR") {
                Some(root) if ts.is_relative() => Path::new(&root).join(ts),
                _ => ts.clone(),
            };
            write_if_changed(&ts, typescript::file(&model).as_bytes()).map_err(|e| {
                Error::io(
                    &self.manifest,
                    format!("cannot write `{}`: {e}", ts.display()),
                )
            })?;
            if self.typescript_client {
                let (client, module) = crate::ts_client::beside(&ts);
                if client == ts {
                    return Err(Error::io(
                        &self.manifest,
                        "the TypeScript module may not be named `client.ts` when the client is written next to it",
                    ));
                }
                write_if_changed(&client, crate::ts_client::file(&module).as_bytes()).map_err(
                    |e| {
                        Error::io(
                            &self.manifest,
                            format!("cannot write `{}`: {e}", client.display()),
                        )
                    },
                )?;
            }
        } else if self.typescript_client {
            return Err(Error::io(
                &self.manifest,
                "Builder::typescript_client needs Builder::typescript: the client goes next to the TypeScript module",
            ));
        }
        let path = out_dir.join(&self.file_name);
        write_if_changed(&path, rust::file(&model).as_bytes()).map_err(|e| {
            Error::io(
                &self.manifest,
                format!("cannot write `{}`: {e}", path.display()),
            )
        })?;
        Ok(path)
    }
}

/// The one-line entry point for `build.rs`: generate from `path`, or fail the build with the
/// manifest's errors reported to cargo.
///
/// ```no_run
/// // build.rs, in `fn main()`:
/// eventbus_codegen::compile("events.yaml");
/// ```
pub fn compile(path: impl Into<PathBuf>) {
    if let Err(err) = Builder::new(path).build() {
        for d in err.errors() {
            let s = d.span;
            let help = d
                .help
                .as_deref()
                .map(|h| format!(" (help: {h})"))
                .unwrap_or_default();
            println!(
                "cargo::error={}:{}:{}: {}{help}",
                err.path.display(),
                s.line,
                s.column,
                d.message
            );
        }
        eprintln!("{err}");
        std::process::exit(1);
    }
}

/// Writes `contents` to `path` unless the file already holds exactly that, so that unchanged
/// output keeps its timestamp and does not trigger rebuilds. Creates parent directories.
/// Returns whether the file was written.
///
/// ```
/// use eventbus_codegen::write_if_changed;
///
/// let dir = std::env::temp_dir().join(format!("eventbus-doc-write-{}", std::process::id()));
/// let path = dir.join("ui").join("events.ts"); // `ui/` is created
///
/// assert!(write_if_changed(&path, b"export {};\n")?); // written
/// assert!(!write_if_changed(&path, b"export {};\n")?); // the same: left alone
/// assert!(write_if_changed(&path, b"export const x = 1;\n")?);
/// # std::fs::remove_dir_all(&dir)?;
/// # Ok::<(), std::io::Error>(())
/// ```
pub fn write_if_changed(path: &Path, contents: &[u8]) -> io::Result<bool> {
    if std::fs::read(path).is_ok_and(|old| old == contents) {
        return Ok(false);
    }
    if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::write(path, contents)?;
    Ok(true)
}
