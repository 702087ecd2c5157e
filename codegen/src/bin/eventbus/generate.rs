//! `eventbus generate` and `eventbus docs`.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use eventbus_codegen::{Model, asyncapi, docs as markdown, rust, typescript, write_if_changed};

use crate::{Fatal, check};

/// Which outputs to produce.
pub struct Outputs {
    pub rust: Option<PathBuf>,
    pub ts: Option<PathBuf>,
    /// Also `client.ts` next to `ts`.
    pub ts_client: bool,
    pub docs: Option<PathBuf>,
    pub asyncapi: Option<PathBuf>,
}

fn render(model: &Model, outputs: &Outputs) -> Vec<(PathBuf, String)> {
    let mut files = Vec::new();
    if let Some(dir) = &outputs.rust {
        files.push((dir.join("events.rs"), rust::file(model)));
    }
    if let Some(path) = &outputs.ts {
        files.push((path.clone(), typescript::file(model)));
        if outputs.ts_client {
            let (client, module) = eventbus_codegen::ts_client::beside(path);
            files.push((client, eventbus_codegen::ts_client::file(&module)));
        }
    }
    if let Some(path) = &outputs.docs {
        files.push((path.clone(), markdown::markdown(model)));
    }
    if let Some(path) = &outputs.asyncapi {
        let doc = asyncapi::document(model);
        files.push((
            path.clone(),
            serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n",
        ));
    }
    files
}

/// Writes each file if it changed, or with `check` only compares. Exit 1 if stale. Two
/// outputs on one path (`--ts client.ts --ts-client`) are refused before anything is written.
fn write_all(files: Vec<(PathBuf, String)>, check: bool) -> Result<ExitCode, Fatal> {
    for (i, (path, _)) in files.iter().enumerate() {
        if files[..i].iter().any(|(other, _)| other == path) {
            return Err(Fatal(format!(
                "two outputs would be written to `{}`: give them different paths",
                path.display()
            )));
        }
    }
    let mut stale = 0;
    for (path, contents) in files {
        if check {
            if std::fs::read(&path).ok().as_deref() != Some(contents.as_bytes()) {
                eprintln!(
                    "stale: {} (run `eventbus generate` and commit the result)",
                    path.display()
                );
                stale += 1;
            }
        } else {
            let written = write_if_changed(&path, contents.as_bytes())
                .map_err(|e| Fatal(format!("cannot write `{}`: {e}", path.display())))?;
            eprintln!(
                "{} {}",
                if written { "wrote" } else { "unchanged" },
                path.display()
            );
        }
    }
    Ok(if stale > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    })
}

pub fn run(manifest: &Path, outputs: Outputs, check: bool) -> Result<ExitCode, Fatal> {
    if outputs.rust.is_none()
        && outputs.ts.is_none()
        && outputs.docs.is_none()
        && outputs.asyncapi.is_none()
    {
        return Err(Fatal("nothing to generate: give at least one of --rust DIR, --ts FILE, --docs FILE, --asyncapi FILE".into()));
    }
    let model = match check::load_or_report(manifest)? {
        Ok(model) => model,
        Err(code) => return Ok(code),
    };
    write_all(render(&model, &outputs), check)
}

pub fn docs(manifest: &Path, out: Option<PathBuf>, check: bool) -> Result<ExitCode, Fatal> {
    let model = match check::load_or_report(manifest)? {
        Ok(model) => model,
        Err(code) => return Ok(code),
    };
    match out {
        Some(path) => write_all(vec![(path, markdown::markdown(&model))], check),
        None => {
            crate::out_raw!("{}", markdown::markdown(&model));
            Ok(ExitCode::SUCCESS)
        }
    }
}
