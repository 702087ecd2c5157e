//! Breaking-change detection between two checked manifests, in the spirit of buf's breaking
//! rules and the Schema Registry's compatibility modes: every change that a producer or a
//! consumer of the old manifest could observe is classified, with a rule id and the manifest
//! path it concerns. The rule table is documented in `docs/diff.md`.
//!
//! Compatibility is judged both ways, because events flow both ways (a service emits what
//! another consumes, a browser on an old build talks to a new server). A change is *breaking*
//! when JSON valid under the old manifest is rejected or misread by the new types, when JSON of
//! the new manifest is rejected by the old types whatever its values, or when something sent or
//! received disappears; a *warning* when the old types reject only new values the old manifest
//! could not express (a widened integer, a field made optional, a new enum value) or when no
//! JSON changes but code or behaviour needs a look (a renamed type, persistence, policies);
//! *safe* otherwise.

use std::collections::HashSet;
use std::fmt::Write as _;

use serde::Serialize;

use crate::model::{EventDef, Field, Model, Primitive, TypeKind, TypeRef};

/// How serious a change is.
///
/// ```
/// use eventbus_codegen::{Model, diff};
///
/// let old: Model = "version: 1\npackage: demo\nevents:\n  a: {}\n".parse().unwrap();
/// let new: Model = "version: 1\npackage: demo\nevents:\n  a: {}\n  b: {}\n".parse().unwrap();
/// let changes = diff::diff(&old, &new);
/// assert_eq!(changes[0].level, diff::Level::Safe); // a new event breaks nobody
/// assert_eq!(diff::diff(&new, &old)[0].level, diff::Level::Breaking); // a removed one does
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Consumers or producers of the old manifest break.
    Breaking,
    /// Old code keeps working; behaviour or data may differ.
    Warning,
    /// Nothing observable breaks.
    Safe,
}

impl Level {
    /// `breaking`, `warning` or `safe`.
    ///
    /// ```
    /// use eventbus_codegen::diff::Level;
    ///
    /// assert_eq!(Level::Breaking.as_str(), "breaking");
    /// assert!(Level::Breaking < Level::Warning); // most serious first
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Breaking => "breaking",
            Level::Warning => "warning",
            Level::Safe => "safe",
        }
    }
}

/// One classified change.
///
/// ```
/// use eventbus_codegen::{Model, diff};
///
/// let old: Model = "version: 1\npackage: demo\nevents:\n  a: { payload: { x: u32 } }\n".parse().unwrap();
/// let new: Model = "version: 1\npackage: demo\nevents:\n  a: { payload: { x: string } }\n".parse().unwrap();
/// let change = &diff::diff(&old, &new)[0];
/// assert_eq!((change.level, change.path.as_str()), (diff::Level::Breaking, "events.a.payload.x"));
/// println!("{} [{}]: {}", change.path, change.rule, change.message);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Change {
    /// Breaking, warning or safe.
    pub level: Level,
    /// The rule's id, e.g. `FIELD_REMOVED` (see `docs/diff.md`).
    pub rule: &'static str,
    /// The manifest path, e.g. `events.packageInstall.payload.progress`.
    pub path: String,
    /// What changed, in words.
    pub message: String,
}

/// All changes from `old` to `new`, breaking first, then by path.
///
/// ```
/// let old: eventbus_codegen::Model =
///     "version: 1\npackage: demo\nevents:\n  a: { payload: { x: u32, y: string? } }\n".parse().unwrap();
/// let new: eventbus_codegen::Model =
///     "version: 1\npackage: demo\nevents:\n  a: { payload: { x: u32 } }\n".parse().unwrap();
/// let changes = eventbus_codegen::diff::diff(&old, &new);
/// assert_eq!(changes[0].rule, "FIELD_REMOVED");
/// assert_eq!(changes[0].path, "events.a.payload.y");
/// ```
pub fn diff(old: &Model, new: &Model) -> Vec<Change> {
    let mut d = Differ {
        old,
        new,
        out: Vec::new(),
    };
    d.run();
    let mut out = d.out;
    out.sort_by(|a, b| (a.level, &a.path, a.rule).cmp(&(b.level, &b.path, b.rule)));
    out.dedup();
    out
}

struct Differ<'a> {
    old: &'a Model,
    new: &'a Model,
    out: Vec<Change>,
}

impl Differ<'_> {
    fn push(
        &mut self,
        level: Level,
        rule: &'static str,
        path: impl Into<String>,
        message: impl Into<String>,
    ) {
        self.out.push(Change {
            level,
            rule,
            path: path.into(),
            message: message.into(),
        });
    }

    fn run(&mut self) {
        if self.old.package != self.new.package {
            self.push(
                Level::Breaking,
                "PACKAGE_CHANGED",
                "package",
                format!(
                    "package renamed from `{}` to `{}`: every CloudEvents type and NATS subject changes",
                    self.old.package, self.new.package
                ),
            );
        }
        for o in &self.old.events {
            match self.new.event(&o.name) {
                None if o.deprecated.is_some() => self.push(
                    Level::Warning,
                    "DEPRECATED_EVENT_REMOVED",
                    format!("events.{}", o.name),
                    format!("deprecated event `{}` removed", o.name),
                ),
                None => self.push(
                    Level::Breaking,
                    "EVENT_REMOVED",
                    format!("events.{}", o.name),
                    format!("event `{}` removed; deprecate it first (`deprecated: \"...\"`), remove it later", o.name),
                ),
                Some(n) => self.event(o, n),
            }
        }
        for n in &self.new.events {
            if self.old.event(&n.name).is_none() {
                self.push(
                    Level::Safe,
                    "EVENT_ADDED",
                    format!("events.{}", n.name),
                    format!("event `{}` added", n.name),
                );
            }
        }
    }

    fn event(&mut self, o: &EventDef, n: &EventDef) {
        let path = format!("events.{}", o.name);
        match (&o.payload, &n.payload) {
            (None, None) => {}
            (Some(_), None) => self.push(
                Level::Breaking,
                "PAYLOAD_REMOVED",
                format!("{path}.payload"),
                "the payload was removed",
            ),
            (None, Some(_)) => self.push(
                Level::Breaking,
                "PAYLOAD_ADDED",
                format!("{path}.payload"),
                "a payload was added to an event that had none",
            ),
            (Some(ot), Some(nt)) => {
                if ot != nt {
                    self.push(
                        Level::Warning,
                        "PAYLOAD_TYPE_RENAMED",
                        format!("{path}.payload"),
                        format!("payload type `{ot}` is now `{nt}`: Rust and TypeScript code naming it must change"),
                    );
                }
                let mut seen = HashSet::new();
                self.named(ot, nt, &format!("{path}.payload"), &mut seen);
            }
        }
        let (ou, nu) = (o.ui, n.ui);
        let narrowed = (ou.to_ui() && !nu.to_ui()) || (ou.from_ui() && !nu.from_ui());
        if narrowed {
            self.push(
                Level::Breaking,
                "UI_NARROWED",
                format!("{path}.ui"),
                format!(
                    "`ui` narrowed from `{}` to `{}`: browsers lose a direction they used",
                    ou.as_str(),
                    nu.as_str()
                ),
            );
        } else if ou != nu {
            self.push(
                Level::Safe,
                "UI_WIDENED",
                format!("{path}.ui"),
                format!("`ui` widened from `{}` to `{}`", ou.as_str(), nu.as_str()),
            );
        }
        match (o.scope.is_distributed(), n.scope.is_distributed()) {
            (true, false) => self.push(
                Level::Breaking,
                "SCOPE_NARROWED",
                format!("{path}.scope"),
                "`scope` narrowed from `distributed` to `local`: other processes no longer receive it",
            ),
            (false, true) => self.push(
                Level::Safe,
                "SCOPE_WIDENED",
                format!("{path}.scope"),
                "`scope` widened from `local` to `distributed`: now published on NATS too",
            ),
            _ => {}
        }
        if o.persist && !n.persist {
            self.push(
                Level::Warning,
                "PERSIST_DROPPED",
                format!("{path}.persist"),
                "no longer persisted: replay and the audit trail lose it",
            );
        } else if !o.persist && n.persist {
            self.push(
                Level::Safe,
                "PERSIST_ADDED",
                format!("{path}.persist"),
                "now persisted",
            );
        }
        if o.policies != n.policies {
            self.push(
                Level::Warning,
                "POLICY_CHANGED",
                format!("{path}.policies"),
                "delivery policies changed: consumers may see events at a different rate",
            );
        }
        if o.deprecated.is_none() && n.deprecated.is_some() {
            self.push(
                Level::Safe,
                "EVENT_DEPRECATED",
                format!("{path}.deprecated"),
                "event deprecated",
            );
        }
    }

    /// Compares the named types `o` (old) and `n` (new) used at `path`.
    fn named(&mut self, o: &str, n: &str, path: &str, seen: &mut HashSet<(String, String)>) {
        if !seen.insert((o.to_owned(), n.to_owned())) {
            return; // recursive types: each pair once
        }
        let (Some(ot), Some(nt)) = (self.old.type_def(o), self.new.type_def(n)) else {
            return;
        };
        match (&ot.kind, &nt.kind) {
            (TypeKind::Enum(ov), TypeKind::Enum(nv)) => {
                for v in ov.iter().filter(|v| !nv.contains(v)) {
                    self.push(
                        Level::Breaking,
                        "ENUM_VALUE_REMOVED",
                        format!("{path}.{}", v.value),
                        format!("enum value `{}` removed from `{n}`", v.value),
                    );
                }
                for v in nv.iter().filter(|v| !ov.contains(v)) {
                    self.push(
                        Level::Warning,
                        "ENUM_VALUE_ADDED",
                        format!("{path}.{}", v.value),
                        format!(
                            "enum value `{}` added to `{n}`: old consumers reject it",
                            v.value
                        ),
                    );
                }
            }
            (TypeKind::Struct(of), TypeKind::Struct(nf)) => self.fields(of, nf, path, seen),
            (ok, nk) => {
                let kind = |k: &TypeKind| match k {
                    TypeKind::Struct(_) => "a struct",
                    TypeKind::Enum(_) => "an enum",
                };
                let now = if o == n {
                    format!("now {}", kind(nk))
                } else {
                    format!("`{n}` is {}", kind(nk))
                };
                self.push(
                    Level::Breaking,
                    "TYPE_KIND_CHANGED",
                    path,
                    format!("`{o}` was {}, {now}: the JSON shape changes", kind(ok)),
                );
            }
        }
    }

    fn fields(
        &mut self,
        old: &[Field],
        new: &[Field],
        path: &str,
        seen: &mut HashSet<(String, String)>,
    ) {
        for of in old {
            let fpath = format!("{path}.{}", of.name);
            let Some(nf) = new.iter().find(|f| f.name == of.name) else {
                self.push(
                    Level::Breaking,
                    "FIELD_REMOVED",
                    fpath,
                    format!("field `{}` removed", of.name),
                );
                continue;
            };
            match (of.optional, nf.optional) {
                (true, false) => self.push(
                    Level::Breaking,
                    "FIELD_NOW_REQUIRED",
                    fpath.clone(),
                    format!(
                        "field `{}` became required: old producers may omit it",
                        of.name
                    ),
                ),
                (false, true) => self.push(
                    Level::Warning,
                    "FIELD_NOW_OPTIONAL",
                    fpath.clone(),
                    format!(
                        "field `{}` became optional: old consumers expect it always",
                        of.name
                    ),
                ),
                _ => {}
            }
            self.type_ref(&of.ty, &nf.ty, &fpath, seen);
        }
        for nf in new.iter().filter(|f| !old.iter().any(|o| o.name == f.name)) {
            let fpath = format!("{path}.{}", nf.name);
            if nf.optional {
                self.push(
                    Level::Safe,
                    "OPTIONAL_FIELD_ADDED",
                    fpath,
                    format!("optional field `{}` added", nf.name),
                );
            } else {
                self.push(
                    Level::Breaking,
                    "REQUIRED_FIELD_ADDED",
                    fpath,
                    format!("required field `{}` added: old producers do not send it (add it as optional)", nf.name),
                );
            }
        }
    }

    fn type_ref(
        &mut self,
        o: &TypeRef,
        n: &TypeRef,
        path: &str,
        seen: &mut HashSet<(String, String)>,
    ) {
        match (o, n) {
            (TypeRef::List(a), TypeRef::List(b)) => self.type_ref(a, b, &format!("{path}[]"), seen),
            (TypeRef::Map(a), TypeRef::Map(b)) => self.type_ref(a, b, &format!("{path}{{}}"), seen),
            (TypeRef::Named(a), TypeRef::Named(b)) => {
                if a != b {
                    self.push(
                        Level::Warning,
                        "FIELD_TYPE_RENAMED",
                        path,
                        format!("type `{a}` is now `{b}`"),
                    );
                }
                self.named(a, b, path, seen);
            }
            (TypeRef::Primitive(a), TypeRef::Primitive(b)) if a == b => {}
            (TypeRef::Primitive(a), TypeRef::Primitive(b)) if widens(*a, *b) => self.push(
                Level::Warning,
                "FIELD_TYPE_WIDENED",
                path,
                format!(
                    "`{}` widened to `{}`: old consumers reject values beyond the old range",
                    a.as_str(),
                    b.as_str()
                ),
            ),
            _ if cardinality(o) != cardinality(n) => self.push(
                Level::Breaking,
                "CARDINALITY_CHANGED",
                path,
                format!(
                    "`{o}` changed to `{n}` ({} → {})",
                    cardinality(o),
                    cardinality(n)
                ),
            ),
            _ => self.push(
                Level::Breaking,
                "FIELD_TYPE_CHANGED",
                path,
                format!("type changed from `{o}` to `{n}`"),
            ),
        }
    }
}

fn cardinality(t: &TypeRef) -> &'static str {
    match t {
        TypeRef::List(_) => "list",
        TypeRef::Map(_) => "map",
        _ => "single value",
    }
}

/// Widenings that keep the JSON form (a number stays a number): old values stay valid.
fn widens(a: Primitive, b: Primitive) -> bool {
    use Primitive::*;
    let rank = |p: Primitive| match p {
        I8 => Some((true, 1)),
        I16 => Some((true, 2)),
        I32 => Some((true, 3)),
        U8 => Some((false, 1)),
        U16 => Some((false, 2)),
        U32 => Some((false, 3)),
        _ => None,
    };
    match (a, b) {
        (F32, F64) => true,
        _ => match (rank(a), rank(b)) {
            (Some((sa, ra)), Some((sb, rb))) => (sa == sb && ra < rb) || (!sa && sb && ra < rb),
            _ => false,
        },
    }
}

/// Whether any change is breaking.
///
/// ```
/// use eventbus_codegen::{Model, diff};
///
/// let old: Model = "version: 1\npackage: demo\nevents:\n  a: {}\n".parse().unwrap();
/// let new: Model = "version: 1\npackage: demo\nevents:\n  a: {}\n  b: {}\n".parse().unwrap();
/// assert!(!diff::has_breaking(&diff::diff(&old, &new))); // an event added
/// assert!(diff::has_breaking(&diff::diff(&new, &old))); // an event removed
/// ```
pub fn has_breaking(changes: &[Change]) -> bool {
    changes.iter().any(|c| c.level == Level::Breaking)
}

/// A plain-text report, one line per change.
///
/// ```
/// use eventbus_codegen::{Model, diff};
///
/// let old: Model = "version: 1\npackage: demo\nevents:\n  a: { payload: { x: u32, y: string? } }\n".parse().unwrap();
/// let new: Model = "version: 1\npackage: demo\nevents:\n  a: { payload: { x: u32 } }\n".parse().unwrap();
/// let report = diff::text_report(&diff::diff(&old, &new));
/// assert!(report.starts_with("breaking: events.a.payload.y [FIELD_REMOVED] "));
/// assert!(report.ends_with("\n1 breaking, 0 warning, 0 safe\n"));
/// assert_eq!(diff::text_report(&[]), "no changes\n");
/// ```
pub fn text_report(changes: &[Change]) -> String {
    if changes.is_empty() {
        return "no changes\n".to_owned();
    }
    let mut out = String::new();
    for c in changes {
        let _ = writeln!(
            out,
            "{}: {} [{}] {}",
            c.level.as_str(),
            c.path,
            c.rule,
            c.message
        );
    }
    let count = |l| changes.iter().filter(|c| c.level == l).count();
    let _ = writeln!(
        out,
        "\n{} breaking, {} warning, {} safe",
        count(Level::Breaking),
        count(Level::Warning),
        count(Level::Safe)
    );
    out
}

/// A Markdown report for pull-request comments.
///
/// ```
/// use eventbus_codegen::{Model, diff};
///
/// let old: Model = "version: 1\npackage: demo\nevents:\n  a: { payload: { x: u32, y: string? } }\n".parse().unwrap();
/// let new: Model = "version: 1\npackage: demo\nevents:\n  a: { payload: { x: u32 } }\n".parse().unwrap();
/// let report = diff::markdown_report(&diff::diff(&old, &new));
/// assert!(report.starts_with("### Event manifest changes\n\n| Level | Path | Rule | Change |\n"));
/// assert!(report.contains("| ❌ breaking | `events.a.payload.y` | `FIELD_REMOVED` |"));
/// ```
pub fn markdown_report(changes: &[Change]) -> String {
    let mut out = String::from("### Event manifest changes\n\n");
    if changes.is_empty() {
        out.push_str("No changes.\n");
        return out;
    }
    out.push_str("| Level | Path | Rule | Change |\n| --- | --- | --- | --- |\n");
    for c in changes {
        let icon = match c.level {
            Level::Breaking => "❌ breaking",
            Level::Warning => "⚠️ warning",
            Level::Safe => "✅ safe",
        };
        let _ = writeln!(
            out,
            "| {icon} | `{}` | `{}` | {} |",
            c.path,
            c.rule,
            c.message.replace('|', "\\|")
        );
    }
    out
}
