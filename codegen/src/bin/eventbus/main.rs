//! `eventbus`: check a manifest, generate code and docs from it, compare two versions, and
//! inspect the audit trail of an event store.
//!
//! A thin shell over `eventbus_codegen`: it parses arguments, reads files, calls the core and
//! prints. Exit codes: 0 success, 1 the manifest is invalid / an output is stale / a breaking
//! change was found, 2 a file or argument problem (one line on stderr). `--color` (or `NO_COLOR`,
//! `CLICOLOR_FORCE`) decides whether diagnostics carry ANSI colors.

mod check;
mod diff;
mod generate;
mod store;
mod style;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};

#[derive(Parser)]
#[command(
    name = "eventbus",
    version,
    about = "Typed events from one manifest: check, generate, document, diff; inspect event stores"
)]
struct Cli {
    /// When to color diagnostics (forced colors also keep the rustc-style layout on a pipe).
    #[arg(long, global = true, value_enum, value_name = "WHEN", default_value_t = style::ColorChoice::Auto)]
    color: style::ColorChoice,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a manifest and report every problem.
    Check {
        /// The manifest.
        #[arg(default_value = "events.yaml")]
        manifest: PathBuf,
        /// `human` (rustc-style and colored on a terminal, see `--color`) or `json`.
        #[arg(long, value_enum, default_value_t = Format::Human)]
        format: Format,
    },
    /// Generate Rust, TypeScript, Markdown docs and AsyncAPI from a manifest.
    Generate {
        /// The manifest.
        #[arg(default_value = "events.yaml")]
        manifest: PathBuf,
        /// Directory for the Rust module (`events.rs`).
        #[arg(long, value_name = "DIR")]
        rust: Option<PathBuf>,
        /// TypeScript file (types, guards, client).
        #[arg(long, value_name = "FILE")]
        ts: Option<PathBuf>,
        /// With --ts: also write the typed WebSocket client, `client.ts`, next to it.
        #[arg(long, requires = "ts")]
        ts_client: bool,
        /// Markdown documentation file.
        #[arg(long, value_name = "FILE")]
        docs: Option<PathBuf>,
        /// AsyncAPI 3.0 JSON file.
        #[arg(long, value_name = "FILE")]
        asyncapi: Option<PathBuf>,
        /// Write nothing; exit 1 if any output is missing or differs (for CI).
        #[arg(long)]
        check: bool,
    },
    /// Write the Markdown docs (to stdout, or to --out).
    Docs {
        /// The manifest.
        #[arg(default_value = "events.yaml")]
        manifest: PathBuf,
        /// Output file; stdout when absent.
        #[arg(long, short, value_name = "FILE")]
        out: Option<PathBuf>,
        /// With --out: write nothing; exit 1 if the file is stale.
        #[arg(long, requires = "out")]
        check: bool,
    },
    /// Classify the changes between two manifests as breaking, warning or safe.
    Diff {
        /// The old manifest: a file, or `git:REV:path` for a committed version (`path` from the
        /// repository's root, `./path` from the current directory).
        old: String,
        /// The new manifest.
        new: PathBuf,
        /// `text`, `json` or `markdown`.
        #[arg(long, value_enum, default_value_t = DiffFormat::Text)]
        format: DiffFormat,
        /// Exit 0 even when a change is breaking.
        #[arg(long)]
        allow_breaking: bool,
    },
    /// Inspect a SQLite event store: the audit trail of persisted events.
    Store {
        #[command(subcommand)]
        command: store::StoreCommand,
    },
}

#[derive(Clone, Copy, ValueEnum)]
enum Format {
    Human,
    Json,
}

#[derive(Clone, Copy, ValueEnum)]
enum DiffFormat {
    Text,
    Json,
    Markdown,
}

/// Prints to stdout; a closed pipe (`eventbus docs | head`) ends the program quietly instead
/// of panicking.
#[macro_export]
macro_rules! out_raw {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        if let Err(e) = ::std::write!(::std::io::stdout().lock(), $($arg)*) {
            if e.kind() == ::std::io::ErrorKind::BrokenPipe {
                ::std::process::exit(0);
            }
        }
    }};
}

/// [`out_raw!`] with a newline.
#[macro_export]
macro_rules! out {
    ($($arg:tt)*) => {{
        $crate::out_raw!("{}\n", ::std::format!($($arg)*));
    }};
}

/// A file or argument problem: printed as one line, exit code 2.
struct Fatal(String);

fn main() -> ExitCode {
    let cli = Cli::parse();
    style::init(cli.color);
    let result = match cli.command {
        Command::Check { manifest, format } => check::run(&manifest, format),
        Command::Generate {
            manifest,
            rust,
            ts,
            ts_client,
            docs,
            asyncapi,
            check,
        } => generate::run(
            &manifest,
            generate::Outputs {
                rust,
                ts,
                ts_client,
                docs,
                asyncapi,
            },
            check,
        ),
        Command::Docs {
            manifest,
            out,
            check,
        } => generate::docs(&manifest, out, check),
        Command::Diff {
            old,
            new,
            format,
            allow_breaking,
        } => diff::run(&old, &new, format, allow_breaking),
        Command::Store { command } => store::run(command),
    };
    match result {
        Ok(code) => code,
        Err(Fatal(message)) => {
            eprintln!("{}", style::error_line(&message));
            ExitCode::from(2)
        }
    }
}
