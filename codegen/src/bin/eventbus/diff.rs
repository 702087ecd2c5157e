//! `eventbus diff OLD NEW`.

use std::path::Path;
use std::process::{Command, ExitCode};

use eventbus_codegen::{Model, diff};

use crate::{DiffFormat, Fatal, style};

/// Reads `git:REV:path` through `git show`, or a file.
fn read_old(spec: &str) -> Result<(String, String), Fatal> {
    match spec.strip_prefix("git:") {
        Some(rest) => {
            let (rev, path) = rest.split_once(':').ok_or_else(|| {
                Fatal(format!(
                    "`{spec}`: expected `git:REV:path`, e.g. `git:HEAD~1:events.yaml`"
                ))
            })?;
            // A leading `-` would make git read the argument as an option
            // (`git:--output=/tmp/x:y` writes a file): refuse it outright, and also end git's
            // options explicitly so nothing after them can be one.
            if rev.starts_with('-') || path.starts_with('-') {
                return Err(Fatal(format!(
                    "`{spec}`: a revision or path starting with `-` is refused (git would read it \
                     as an option); name the revision, e.g. `git:HEAD~1:events.yaml`"
                )));
            }
            let output = Command::new("git")
                .args(["show", "--end-of-options", &format!("{rev}:{path}")])
                .output()
                .map_err(|e| Fatal(format!("cannot run git: {e}")))?;
            if !output.status.success() {
                let why = String::from_utf8_lossy(&output.stderr);
                return Err(Fatal(format!("`{spec}`: {}", why.trim())));
            }
            let text = String::from_utf8(output.stdout)
                .map_err(|_| Fatal(format!("`{spec}` is not UTF-8 text")))?;
            Ok((format!("{rev}:{path}"), text))
        }
        None => {
            let text = eventbus_codegen::read_manifest(spec).map_err(Fatal)?;
            Ok((spec.to_owned(), text))
        }
    }
}

fn parse(label: &str, text: &str) -> Result<Model, ExitCode> {
    Model::parse(label, text).map_err(|err| {
        eprint!("{}", style::report(&err));
        ExitCode::from(1)
    })
}

pub fn run(
    old: &str,
    new: &Path,
    format: DiffFormat,
    allow_breaking: bool,
) -> Result<ExitCode, Fatal> {
    let (old_label, old_text) = read_old(old)?;
    let new_text = eventbus_codegen::read_manifest(new).map_err(Fatal)?;
    let (old_model, new_model) = match (
        parse(&old_label, &old_text),
        parse(&new.display().to_string(), &new_text),
    ) {
        (Ok(o), Ok(n)) => (o, n),
        (Err(code), _) | (_, Err(code)) => return Ok(code),
    };
    let changes = diff::diff(&old_model, &new_model);
    match format {
        DiffFormat::Text => crate::out_raw!("{}", diff::text_report(&changes)),
        DiffFormat::Markdown => crate::out_raw!("{}", diff::markdown_report(&changes)),
        DiffFormat::Json => crate::out!(
            "{}",
            serde_json::to_string_pretty(&changes).unwrap_or_default()
        ),
    }
    Ok(if diff::has_breaking(&changes) && !allow_breaking {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}
