//! Terminal styling: ANSI colors on a terminal, plain text when piped or `NO_COLOR` is set.

use std::io::IsTerminal;

fn enabled() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// `error: message` for file and argument problems.
pub fn error_line(message: &str) -> String {
    if enabled() {
        format!("\x1b[1;31merror\x1b[0m: {message}")
    } else {
        format!("error: {message}")
    }
}

/// A manifest's report: rustc-style and colored on a terminal; on a pipe the compact form
/// whose first line is `path:line:column: error: message`, for editors and CI annotations.
pub fn report(err: &eventbus_codegen::Error) -> String {
    if !enabled() {
        return err.render_compact();
    }
    colored(&err.to_string())
}

/// Colors a rendered report the way rustc does: red/yellow headlines, blue gutters and arrows,
/// bold help.
fn colored(text: &str) -> String {
    text.lines()
        .map(|line| {
            if let Some(rest) = line.strip_prefix("error:") {
                format!("\x1b[1;31merror\x1b[0m\x1b[1m:{rest}\x1b[0m")
            } else if let Some(rest) = line.strip_prefix("warning:") {
                format!("\x1b[1;33mwarning\x1b[0m\x1b[1m:{rest}\x1b[0m")
            } else if let Some((gutter, rest)) = line.split_once('|') {
                let rest = if rest.trim_start().starts_with('^') {
                    format!("\x1b[1;31m{rest}\x1b[0m")
                } else {
                    rest.to_owned()
                };
                format!("\x1b[1;34m{gutter}|\x1b[0m{rest}")
            } else if line.trim_start().starts_with("-->") {
                let (pad, rest) = line.split_at(line.find("-->").unwrap_or(0));
                format!("{pad}\x1b[1;34m-->\x1b[0m{}", &rest[3..])
            } else if let Some(pos) = line.find("= help:") {
                format!(
                    "{}\x1b[1;34m=\x1b[0m \x1b[1mhelp\x1b[0m:{}",
                    &line[..pos],
                    &line[pos + 7..]
                )
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
        + if text.ends_with('\n') { "\n" } else { "" }
}
