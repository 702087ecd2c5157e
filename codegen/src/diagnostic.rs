//! Located errors, rendered the way rustc renders them: a headline, `--> path:line:column`,
//! the source line with a caret label, and a `help:` line.

use std::fmt::{self, Write as _};
use std::path::{Path, PathBuf};

/// A position in the manifest: 1-based line and column (in characters), and a length in
/// characters for the caret underline.
///
/// ```
/// use eventbus_codegen::Span;
///
/// // Line 5, columns 14 to 18 (`Strng`).
/// let span = Span::new(5, 14, 5);
/// assert_eq!((span.line, span.column, span.len), (5, 14, 5));
/// assert!(Span::new(2, 1, 1) < span); // ordered by position
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Span {
    /// 1-based line.
    pub line: usize,
    /// 1-based column, in characters.
    pub column: usize,
    /// How many characters to underline (at least 1 when rendered).
    pub len: usize,
}

impl Span {
    /// A span at `line:column`, `len` characters long.
    ///
    /// ```
    /// use eventbus_codegen::{Model, Span};
    ///
    /// let err = Model::parse("events.yaml", "version: 1\npackage: demo\nevents:\n  x:\n    payload: Strng\n").unwrap_err();
    /// assert_eq!(err.diagnostics[0].span, Span::new(5, 14, 5));
    /// ```
    pub const fn new(line: usize, column: usize, len: usize) -> Self {
        Span { line, column, len }
    }
}

/// How bad a finding is.
///
/// ```
/// use eventbus_codegen::{Diagnostic, Severity, Span};
///
/// let warning = Diagnostic::warning(Span::new(3, 5, 4), "event `ping` has no description");
/// assert_eq!(warning.severity, Severity::Warning);
/// assert!(Severity::Error < Severity::Warning); // errors sort first
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// The manifest is rejected.
    Error,
    /// Accepted, but probably not what was meant.
    Warning,
}

impl Severity {
    /// `"error"` or `"warning"`.
    ///
    /// ```
    /// use eventbus_codegen::Severity;
    ///
    /// assert_eq!(Severity::Error.as_str(), "error");
    /// assert_eq!(Severity::Warning.as_str(), "warning");
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Error => "error",
            Severity::Warning => "warning",
        }
    }
}

/// One finding about the manifest.
///
/// ```
/// use eventbus_codegen::{Model, Severity};
///
/// let err = Model::parse("events.yaml", "version: 1\npackage: demo\nevents:\n  x:\n    payload: Strng\n").unwrap_err();
/// let finding = &err.diagnostics[0];
/// assert_eq!(finding.severity, Severity::Error);
/// assert_eq!(finding.message, "unknown type `Strng`");
/// assert_eq!((finding.span.line, finding.span.column), (5, 14));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// Error or warning.
    pub severity: Severity,
    /// The headline: what is wrong.
    pub message: String,
    /// Where.
    pub span: Span,
    /// The short text printed under the carets.
    pub label: String,
    /// What to do about it, when we can tell.
    pub help: Option<String>,
}

impl Diagnostic {
    /// An error at `span`.
    ///
    /// ```
    /// use eventbus_codegen::{Diagnostic, Severity, Span};
    ///
    /// let d = Diagnostic::error(Span::new(1, 10, 1), "unsupported manifest version 2");
    /// assert_eq!((d.severity, d.label.as_str(), d.help.as_deref()), (Severity::Error, "", None));
    /// ```
    pub fn error(span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            message: message.into(),
            span,
            label: String::new(),
            help: None,
        }
    }

    /// A warning at `span`.
    ///
    /// ```
    /// use eventbus_codegen::{Diagnostic, Span};
    ///
    /// let d = Diagnostic::warning(Span::new(4, 3, 4), "event `ping` is deprecated");
    /// assert_eq!(d.headline("events.yaml"), "events.yaml:4:3: warning: event `ping` is deprecated");
    /// ```
    pub fn warning(span: Span, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Diagnostic::error(span, message)
        }
    }

    /// Sets the caret label.
    ///
    /// ```
    /// use eventbus_codegen::{Diagnostic, Span};
    ///
    /// let d = Diagnostic::error(Span::new(1, 10, 1), "unsupported manifest version 2").label("only 1 exists");
    /// assert!(d.render("events.yaml", "version: 2\n").contains("^ only 1 exists"));
    /// ```
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = label.into();
        self
    }

    /// Sets the `help:` line.
    ///
    /// ```
    /// use eventbus_codegen::{Diagnostic, Span};
    ///
    /// let d = Diagnostic::error(Span::new(1, 10, 1), "unsupported manifest version 2").help("write `version: 1`");
    /// assert_eq!(d.help.as_deref(), Some("write `version: 1`"));
    /// assert!(d.render("events.yaml", "version: 2\n").ends_with("= help: write `version: 1`\n"));
    /// ```
    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Renders the finding against the manifest text, rustc style.
    ///
    /// ```
    /// use eventbus_codegen::{Diagnostic, Span};
    /// let source = "version: 2\n";
    /// let text = Diagnostic::error(Span::new(1, 10, 1), "unsupported manifest version 2")
    ///     .label("only version 1 exists")
    ///     .help("write `version: 1`")
    ///     .render("events.yaml", source);
    /// assert!(text.starts_with("error: unsupported manifest version 2\n --> events.yaml:1:10\n"));
    /// assert!(text.contains("1 | version: 2\n  |          ^ only version 1 exists"));
    /// assert!(text.ends_with("  |\n  = help: write `version: 1`\n"));
    /// ```
    pub fn render(&self, path: impl AsRef<Path>, source: &str) -> String {
        let path = path.as_ref().display();
        let Span { line, column, len } = self.span;
        let gutter = line.to_string().len();
        let pad = " ".repeat(gutter);
        let mut out = String::new();
        let _ = writeln!(out, "{}: {}", self.severity.as_str(), self.message);
        let _ = writeln!(out, "{pad}--> {path}:{line}:{column}");
        if let Some(text) = source.lines().nth(line.saturating_sub(1)) {
            let text = text.trim_end_matches('\r');
            // Keep snippets readable for minified or binary input.
            let shown: String = text.chars().take(200).collect();
            let width = shown.chars().count();
            let start = column.saturating_sub(1).min(width);
            let carets = len.max(1).min(width.saturating_sub(start).max(1));
            let _ = writeln!(out, "{pad} |");
            let _ = writeln!(out, "{line} | {shown}");
            let lead: String = shown
                .chars()
                .take(start)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let label = if self.label.is_empty() {
                String::new()
            } else {
                format!(" {}", self.label)
            };
            let _ = writeln!(out, "{pad} | {lead}{}{label}", "^".repeat(carets));
        }
        if let Some(help) = &self.help {
            if source.lines().nth(line.saturating_sub(1)).is_some() {
                let _ = writeln!(out, "{pad} |");
            }
            let _ = writeln!(out, "{pad} = help: {help}");
        }
        out
    }

    /// The form for logs and pipes: the first line is `path:line:column: error: message` (what
    /// editors and CI annotators parse), then the same snippet and help as [`render`](Self::render).
    ///
    /// ```
    /// use eventbus_codegen::{Diagnostic, Span};
    /// let text = Diagnostic::error(Span::new(1, 10, 1), "unsupported manifest version 2")
    ///     .help("write `version: 1`")
    ///     .render_compact("events.yaml", "version: 2\n");
    /// assert!(text.starts_with("events.yaml:1:10: error: unsupported manifest version 2\n  |\n1 | version: 2\n"));
    /// ```
    pub fn render_compact(&self, path: impl AsRef<Path>, source: &str) -> String {
        let path = path.as_ref();
        let full = self.render(path, source);
        // Drop rustc's headline and `-->` line; keep the snippet and help.
        let rest: String = full.split_inclusive('\n').skip(2).collect();
        format!("{}\n{rest}", self.headline(path))
    }

    /// The one-line form `path:line:column: error: message` used in compiler-error strings.
    ///
    /// ```
    /// use eventbus_codegen::{Diagnostic, Span};
    ///
    /// let d = Diagnostic::error(Span::new(5, 14, 5), "unknown type `Strng`");
    /// assert_eq!(d.headline("events.yaml"), "events.yaml:5:14: error: unknown type `Strng`");
    /// ```
    pub fn headline(&self, path: impl AsRef<Path>) -> String {
        format!(
            "{}:{}:{}: {}: {}",
            path.as_ref().display(),
            self.span.line,
            self.span.column,
            self.severity.as_str(),
            self.message
        )
    }
}

/// A manifest that could not be turned into a model: every finding, with the text it was
/// found in, so it can be rendered anywhere (terminal, `compile_error!`, build-script output).
///
/// `Debug` prints the same rustc-style report as `Display`, so that `.unwrap()` and `?` in a
/// build script or `main` show the report rather than the struct.
///
/// ```
/// use eventbus_codegen::Model;
/// use std::path::Path;
///
/// let source = "version: 1\npackage: demo\nevents:\n  x:\n    payload: Strng\n";
/// let err = Model::parse("events.yaml", source).unwrap_err();
/// assert_eq!((err.path.as_path(), err.source_text.as_str()), (Path::new("events.yaml"), source));
/// assert_eq!(err.diagnostics.len(), 1);
/// assert!(err.to_string().starts_with("error: unknown type `Strng`\n --> events.yaml:5:14"));
/// assert_eq!(format!("{err:?}"), err.to_string()); // `.unwrap()` shows the report
/// ```
#[derive(Clone, PartialEq, Eq)]
pub struct Error {
    /// The manifest's path as given by the front-end.
    pub path: PathBuf,
    /// The manifest text (empty when it could not be read).
    pub source_text: String,
    /// Every finding, errors first, in source order. Never empty.
    pub diagnostics: Vec<Diagnostic>,
}

impl Error {
    /// Only the errors (the warnings left out).
    ///
    /// ```
    /// use eventbus_codegen::{Diagnostic, Error, Span};
    ///
    /// let err = Error {
    ///     path: "events.yaml".into(),
    ///     source_text: String::new(),
    ///     diagnostics: vec![
    ///         Diagnostic::error(Span::new(5, 14, 5), "unknown type `Strng`"),
    ///         Diagnostic::warning(Span::new(3, 3, 4), "event `ping` is deprecated"),
    ///     ],
    /// };
    /// let errors: Vec<_> = err.errors().map(|d| d.message.as_str()).collect();
    /// assert_eq!(errors, ["unknown type `Strng`"]);
    /// ```
    pub fn errors(&self) -> impl Iterator<Item = &Diagnostic> {
        self.diagnostics
            .iter()
            .filter(|d| d.severity == Severity::Error)
    }

    /// An error that is not about a place in the manifest (the file is missing, say).
    ///
    /// ```
    /// use eventbus_codegen::Error;
    ///
    /// let err = Error::io("events.yaml", "cannot read `events.yaml`: permission denied");
    /// assert_eq!(err.diagnostics[0].message, "cannot read `events.yaml`: permission denied");
    /// assert_eq!(err.errors().count(), 1);
    /// ```
    pub fn io(path: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        Error {
            path: path.into(),
            source_text: String::new(),
            diagnostics: vec![Diagnostic::error(Span::new(1, 1, 0), message)],
        }
    }
}

impl Error {
    /// Every finding in the compact form ([`Diagnostic::render_compact`]), for logs and pipes.
    ///
    /// ```
    /// use eventbus_codegen::Model;
    ///
    /// let err = Model::parse("events.yaml", "version: 1\npackage: demo\nevents:\n  x:\n    payload: Strng\n").unwrap_err();
    /// let compact = err.render_compact();
    /// assert!(compact.starts_with("events.yaml:5:14: error: unknown type `Strng`\n"));
    /// assert!(compact.contains("5 |     payload: Strng\n"));
    /// ```
    pub fn render_compact(&self) -> String {
        let mut out: Vec<String> = self
            .diagnostics
            .iter()
            .map(|d| d.render_compact(&self.path, &self.source_text))
            .collect();
        let errors = self.errors().count();
        if errors > 1 {
            out.push(format!(
                "error: could not use `{}` due to {errors} errors\n",
                self.path.display()
            ));
        }
        out.join("\n")
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, d) in self.diagnostics.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            f.write_str(&d.render(&self.path, &self.source_text))?;
        }
        let errors = self.errors().count();
        if errors > 1 {
            write!(
                f,
                "\nerror: could not use `{}` due to {errors} errors\n",
                self.path.display()
            )?;
        }
        Ok(())
    }
}

impl fmt::Debug for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl std::error::Error for Error {}

/// Collects findings during validation.
#[derive(Debug, Default)]
pub(crate) struct Sink {
    pub(crate) found: Vec<Diagnostic>,
}

impl Sink {
    pub(crate) fn push(&mut self, d: Diagnostic) {
        self.found.push(d);
    }
    pub(crate) fn has_errors(&self) -> bool {
        self.found.iter().any(|d| d.severity == Severity::Error)
    }
    /// Errors before warnings, each in source order.
    pub(crate) fn sorted(mut self) -> Vec<Diagnostic> {
        self.found.sort_by_key(|d| (d.severity, d.span));
        self.found.dedup();
        self.found
    }
}

/// The closest candidate to `name` (edit distance at most a third of its length, at least 1),
/// for "did you mean" hints. Every front-end uses this one, so hints agree everywhere.
///
/// ```
/// assert_eq!(eventbus_codegen::did_you_mean("categroy", ["category", "payload"]), Some("category"));
/// assert_eq!(eventbus_codegen::did_you_mean("zzz", ["category"]), None);
/// ```
pub fn did_you_mean<'a>(
    name: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    let limit = (name.chars().count() / 3).max(1);
    candidates
        .into_iter()
        .map(|c| (edit_distance(&name.to_lowercase(), &c.to_lowercase()), c))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Optimal string alignment distance: Levenshtein plus the swap of two adjacent characters as
/// one edit, the commonest typo (`Pnig` for `Ping`).
fn edit_distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    // Three rows: the one two characters back is needed for a swap.
    let mut before: Vec<usize> = vec![0; b.len() + 1];
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for i in 0..a.len() {
        let mut cur = vec![i + 1; b.len() + 1];
        for j in 0..b.len() {
            let cost = usize::from(a[i] != b[j]);
            cur[j + 1] = (prev[j] + cost).min(prev[j + 1] + 1).min(cur[j] + 1);
            if i > 0 && j > 0 && a[i] == b[j - 1] && a[i - 1] == b[j] {
                cur[j + 1] = cur[j + 1].min(before[j - 1] + 1);
            }
        }
        before = std::mem::replace(&mut prev, cur);
    }
    prev[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggestions_are_close_names_only() {
        let names = ["PackageEvent", "ChainEvent", "string"];
        assert_eq!(did_you_mean("PackageEvnt", names), Some("PackageEvent"));
        assert_eq!(did_you_mean("strng", names), Some("string"));
        assert_eq!(did_you_mean("Totally", names), None);
        // A swap of two neighbours is one edit, so short names get a suggestion too.
        assert_eq!(did_you_mean("Pnig", ["Ping", "Pong"]), Some("Ping"));
        assert_eq!(did_you_mean("PackageEvnet", names), Some("PackageEvent"));
        assert_eq!(edit_distance("ab", "ba"), 1);
        assert_eq!(edit_distance("abc", "ca"), 3);
    }
}
