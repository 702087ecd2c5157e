//! `eventbus check`.

use std::path::Path;
use std::process::ExitCode;

use eventbus_codegen::{Error, Model};

use crate::{Fatal, Format, style};

/// Loads a manifest; a missing or unreadable file is a [`Fatal`] one-liner, a broken manifest
/// is returned as its report.
pub fn load(path: &Path) -> Result<Result<Model, Error>, Fatal> {
    let source = eventbus_codegen::read_manifest(path).map_err(Fatal)?;
    Ok(Model::parse(path, &source))
}

/// Loads a manifest or prints its report; `Err(code)` when it is broken.
pub fn load_or_report(path: &Path) -> Result<Result<Model, ExitCode>, Fatal> {
    Ok(load(path)?.map_err(|err| {
        eprint!("{}", style::report(&err));
        ExitCode::from(1)
    }))
}

pub fn run(path: &Path, format: Format) -> Result<ExitCode, Fatal> {
    let result = match load(path) {
        Ok(result) => result,
        Err(Fatal(message)) => {
            // Tools parsing stdout get a diagnostic too (with no position: there is no file
            // to point into); stderr keeps its one line and the exit code stays 2.
            if let Format::Json = format {
                let item = serde_json::json!({
                    "path": path.display().to_string(),
                    "line": null,
                    "column": null,
                    "severity": "error",
                    "message": message,
                    "label": null,
                    "hint": null,
                });
                crate::out!(
                    "{}",
                    serde_json::to_string_pretty(&[item]).unwrap_or_default()
                );
            }
            return Err(Fatal(message));
        }
    };
    match format {
        Format::Human => match result {
            Ok(model) => {
                crate::out!(
                    "{}: ok ({} events, {} types, package `{}`)",
                    path.display(),
                    model.events.len(),
                    model.types.len(),
                    model.package
                );
                Ok(ExitCode::SUCCESS)
            }
            Err(err) => {
                eprint!("{}", style::report(&err));
                Ok(ExitCode::from(1))
            }
        },
        Format::Json => {
            let diagnostics = match &result {
                Ok(_) => Vec::new(),
                Err(err) => err
                    .diagnostics
                    .iter()
                    .map(|d| {
                        serde_json::json!({
                            "path": path.display().to_string(),
                            "line": d.span.line,
                            "column": d.span.column,
                            "severity": d.severity.as_str(),
                            "message": d.message,
                            "label": d.label,
                            "hint": d.help,
                        })
                    })
                    .collect(),
            };
            crate::out!(
                "{}",
                serde_json::to_string_pretty(&diagnostics).unwrap_or_default()
            );
            Ok(if result.is_ok() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}
