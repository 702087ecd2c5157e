//! Terminal styling: ANSI colors on a terminal, plain text when piped; `--color` and the
//! `NO_COLOR` / `CLICOLOR_FORCE` conventions override the guess.

use std::ffi::OsStr;
use std::io::IsTerminal;
use std::sync::OnceLock;

use clap::ValueEnum;

/// When to color diagnostics: the global `--color` flag.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    /// Color when stderr is a terminal, unless `NO_COLOR` is set; `CLICOLOR_FORCE` colors pipes.
    #[default]
    Auto,
    /// Always color, even on a pipe (CI logs that render ANSI, `less -R`).
    Always,
    /// Never color.
    Never,
}

/// Whether to color, and whether stderr is a terminal; fixed once by [`init`].
#[derive(Clone, Copy)]
struct Mode {
    color: bool,
    terminal: bool,
}

static MODE: OnceLock<Mode> = OnceLock::new();

/// Fixes the styling for this run from `--color` and the environment; call once, before printing.
pub fn init(choice: ColorChoice) {
    let terminal = std::io::stderr().is_terminal();
    let color = resolve(
        choice,
        terminal,
        std::env::var_os("NO_COLOR").as_deref(),
        std::env::var_os("CLICOLOR_FORCE").as_deref(),
    );
    let _ = MODE.set(Mode { color, terminal });
}

fn mode() -> Mode {
    // `init` runs first in `main`; the fallback only keeps a forgotten call from panicking.
    *MODE.get_or_init(|| Mode {
        color: false,
        terminal: std::io::stderr().is_terminal(),
    })
}

/// The flag wins over the environment; under `auto` a non-empty `NO_COLOR` turns colors off
/// (no-color.org), then a `CLICOLOR_FORCE` other than `0` turns them on, then the terminal decides.
fn resolve(
    choice: ColorChoice,
    terminal: bool,
    no_color: Option<&OsStr>,
    clicolor_force: Option<&OsStr>,
) -> bool {
    match choice {
        ColorChoice::Always => true,
        ColorChoice::Never => false,
        ColorChoice::Auto => {
            if no_color.is_some_and(|v| !v.is_empty()) {
                false
            } else if clicolor_force.is_some_and(|v| !v.is_empty() && v != "0") {
                true
            } else {
                terminal
            }
        }
    }
}

fn enabled() -> bool {
    mode().color
}

/// `error: message` for file and argument problems.
pub fn error_line(message: &str) -> String {
    if enabled() {
        format!("\x1b[1;31merror\x1b[0m: {message}")
    } else {
        format!("error: {message}")
    }
}

/// A manifest's report: rustc-style on a terminal (colored unless turned off) or whenever colors
/// are forced; otherwise the compact form whose first line is `path:line:column: error: message`,
/// for editors and CI annotations.
pub fn report(err: &eventbus_codegen::Error) -> String {
    let Mode { color, terminal } = mode();
    match (color, terminal) {
        (true, _) => colored(&err.to_string()),
        (false, true) => err.to_string(),
        (false, false) => err.render_compact(),
    }
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

#[cfg(test)]
mod tests {
    use super::{ColorChoice, resolve};
    use std::ffi::OsStr;

    fn os(s: &str) -> Option<&OsStr> {
        Some(OsStr::new(s))
    }

    #[test]
    fn the_flag_wins_over_the_environment() {
        assert!(resolve(ColorChoice::Always, false, os("1"), None));
        assert!(!resolve(ColorChoice::Never, true, None, os("1")));
    }

    #[test]
    fn auto_follows_no_color_then_clicolor_force_then_the_terminal() {
        assert!(resolve(ColorChoice::Auto, true, None, None));
        assert!(!resolve(ColorChoice::Auto, false, None, None));
        assert!(!resolve(ColorChoice::Auto, true, os("1"), None));
        // An empty NO_COLOR does not count (no-color.org).
        assert!(resolve(ColorChoice::Auto, true, os(""), None));
        assert!(resolve(ColorChoice::Auto, false, None, os("1")));
        assert!(!resolve(ColorChoice::Auto, false, None, os("0")));
        assert!(!resolve(ColorChoice::Auto, false, os("1"), os("1")));
    }
}
