//! The manifest as written: its structure read from the located YAML tree, every key checked
//! against the DSL, every node kept with its position for the semantic checks in
//! `validate`.

use std::collections::HashMap;

use crate::diagnostic::{Diagnostic, Sink, did_you_mean};
use crate::yaml::{Key, Node, Value};

/// The top-level keys of a manifest.
pub const TOP_KEYS: &[&str] = &["version", "package", "description", "types", "events"];
/// The keys of a type declaration.
pub const TYPE_KEYS: &[&str] = &["description", "fields", "enum"];
/// The keys of a field in its long form.
pub const FIELD_KEYS: &[&str] = &["type", "description"];
/// The keys of an event.
pub const EVENT_KEYS: &[&str] = &[
    "category",
    "description",
    "payload",
    "persist",
    "ui",
    "scope",
    "deprecated",
    "example",
    "throttle",
    "debounce",
    "rate_limit",
    "batch",
    "retry",
    "circuit_breaker",
    "concurrency",
    "queue",
];

/// A manifest with its structure checked; values still unchecked, each with its node.
#[derive(Debug)]
pub struct Manifest<'a> {
    /// The whole document (for errors about missing top-level keys).
    pub root: &'a Node,
    /// `version:`.
    pub version: Option<&'a Node>,
    /// `package:`.
    pub package: Option<&'a Node>,
    /// `description:`.
    pub description: Option<&'a Node>,
    /// `types:`, in order.
    pub types: Vec<TypeDecl<'a>>,
    /// `events:`, in order.
    pub events: Vec<EventDecl<'a>>,
}

/// A declared type.
#[derive(Debug)]
pub struct TypeDecl<'a> {
    /// The name key.
    pub name: &'a Key,
    /// `description:`.
    pub description: Option<&'a Node>,
    /// Fields or enum values.
    pub body: TypeBody<'a>,
}

/// What a type declaration holds.
#[derive(Debug)]
pub enum TypeBody<'a> {
    /// `fields:` (or a plain mapping of fields).
    Fields(Vec<FieldDecl<'a>>),
    /// `enum: [..]`, the value nodes.
    Enum(Vec<&'a Node>),
    /// Already reported as malformed; validation skips it (no cascade).
    Invalid,
}

/// A field: `name: type` or `name: { type, description }`.
#[derive(Debug)]
pub struct FieldDecl<'a> {
    /// The name key.
    pub name: &'a Key,
    /// The type expression node (a string scalar, checked later).
    pub ty: &'a Node,
    /// `description:` in the long form.
    pub description: Option<&'a Node>,
}

/// An event's payload as written.
#[derive(Debug)]
pub enum PayloadDecl<'a> {
    /// No payload key.
    None,
    /// `payload: TypeName`.
    Named(&'a Node),
    /// `payload:` with inline fields.
    Inline(&'a Node, Vec<FieldDecl<'a>>),
    /// Reported as malformed.
    Invalid,
}

/// An event as written.
#[derive(Debug)]
pub struct EventDecl<'a> {
    /// The name key.
    pub name: &'a Key,
    /// The event's mapping node (empty events are allowed: `ping: {}` or `ping:`).
    pub node: &'a Node,
    /// Every recognised key's value node.
    pub keys: HashMap<&'static str, &'a Node>,
    /// The payload.
    pub payload: PayloadDecl<'a>,
}

impl<'a> EventDecl<'a> {
    /// The node of a recognised key.
    pub fn get(&self, key: &str) -> Option<&'a Node> {
        self.keys.get(key).copied()
    }
}

/// Reads the manifest structure, reporting every structural problem into `sink`.
pub(crate) fn read<'a>(root: &'a Node, sink: &mut Sink) -> Manifest<'a> {
    let mut manifest = Manifest {
        root,
        version: None,
        package: None,
        description: None,
        types: Vec::new(),
        events: Vec::new(),
    };
    let entries = match &root.value {
        Value::Map(entries) => entries,
        Value::Null => {
            sink.push(
                Diagnostic::error(root.span, "the manifest is empty")
                    .help("start with `version: 1`, `package: <name>` and an `events:` mapping"),
            );
            return manifest;
        }
        other => {
            sink.push(
                Diagnostic::error(
                    root.span,
                    format!("a manifest is a mapping, found {}", other.kind()),
                )
                .help("start with `version: 1`, `package: <name>` and an `events:` mapping"),
            );
            return manifest;
        }
    };
    let top = known_keys(entries, TOP_KEYS, "at the top level", sink);
    manifest.version = top.get("version").copied();
    manifest.package = top.get("package").copied();
    manifest.description = top.get("description").copied();
    if let Some(types) = top.get("types") {
        for (name, node) in entries_of(types, "`types`", "type", sink) {
            manifest.types.push(read_type(name, node, sink));
        }
    }
    if let Some(events) = top.get("events") {
        for (name, node) in entries_of(events, "`events`", "event", sink) {
            manifest.events.push(read_event(name, node, sink));
        }
    }
    manifest
}

fn read_type<'a>(name: &'a Key, node: &'a Node, sink: &mut Sink) -> TypeDecl<'a> {
    let mut decl = TypeDecl {
        name,
        description: None,
        body: TypeBody::Invalid,
    };
    let Value::Map(entries) = &node.value else {
        sink.push(
            Diagnostic::error(
                node.span,
                format!(
                    "type `{}` must be a mapping, found {}",
                    name.name,
                    node.value.kind()
                ),
            )
            .label("expected `fields:` or `enum:`")
            .help("write `fields: { name: string }` or `enum: [a, b]`"),
        );
        return decl;
    };
    let keys = known_keys(
        entries,
        TYPE_KEYS,
        &format!("in type `{}`", name.name),
        sink,
    );
    decl.description = keys.get("description").copied();
    match (keys.get("fields"), keys.get("enum")) {
        (Some(_), Some(e)) => sink.push(
            Diagnostic::error(
                e.span,
                format!("type `{}` has both `fields` and `enum`", name.name),
            )
            .label("a type is a struct or an enum, not both")
            .help("declare two types"),
        ),
        (Some(fields), None) => {
            decl.body = match &fields.value {
                Value::Map(_) => TypeBody::Fields(read_fields(fields, sink)),
                Value::Null => TypeBody::Fields(Vec::new()),
                other => {
                    sink.push(
                        Diagnostic::error(
                            fields.span,
                            format!("`fields` must be a mapping, found {}", other.kind()),
                        )
                        .help("write one `name: type` line per field"),
                    );
                    TypeBody::Invalid
                }
            }
        }
        (None, Some(values)) => {
            decl.body = match &values.value {
                Value::Seq(items) if !items.is_empty() => TypeBody::Enum(items.iter().collect()),
                Value::Seq(_) => {
                    sink.push(
                        Diagnostic::error(
                            values.span,
                            format!("enum `{}` has no values", name.name),
                        )
                        .help("list at least one value: `enum: [a, b]`"),
                    );
                    TypeBody::Invalid
                }
                other => {
                    sink.push(
                        Diagnostic::error(
                            values.span,
                            format!("`enum` must be a list of strings, found {}", other.kind()),
                        )
                        .help("write `enum: [info, warning, error]`"),
                    );
                    TypeBody::Invalid
                }
            }
        }
        (None, None) => sink.push(
            Diagnostic::error(
                name.span,
                format!("type `{}` has neither `fields` nor `enum`", name.name),
            )
            .label("declared here")
            .help("add `fields: { name: string }` or `enum: [a, b]`"),
        ),
    }
    decl
}

/// Fields of a struct or an inline payload; duplicates reported.
fn read_fields<'a>(node: &'a Node, sink: &mut Sink) -> Vec<FieldDecl<'a>> {
    let mut fields = Vec::new();
    for (name, value) in entries_of(node, "fields", "field", sink) {
        match &value.value {
            Value::Map(entries) => {
                let keys = known_keys(
                    entries,
                    FIELD_KEYS,
                    &format!("in field `{}`", name.name),
                    sink,
                );
                match keys.get("type") {
                    Some(ty) => fields.push(FieldDecl {
                        name,
                        ty,
                        description: keys.get("description").copied(),
                    }),
                    None => sink.push(
                        Diagnostic::error(
                            value.span,
                            format!("field `{}` has no `type`", name.name),
                        )
                        .help("write `{ type: string, description: ... }` or just `string`"),
                    ),
                }
            }
            _ => fields.push(FieldDecl {
                name,
                ty: value,
                description: None,
            }),
        }
    }
    fields
}

fn read_event<'a>(name: &'a Key, node: &'a Node, sink: &mut Sink) -> EventDecl<'a> {
    let mut decl = EventDecl {
        name,
        node,
        keys: HashMap::new(),
        payload: PayloadDecl::None,
    };
    let entries = match &node.value {
        Value::Map(entries) => entries,
        Value::Null => return decl,
        other => {
            sink.push(
                Diagnostic::error(
                    node.span,
                    format!(
                        "event `{}` must be a mapping, found {}",
                        name.name,
                        other.kind()
                    ),
                )
                .help("write `category:`, `description:` and `payload:` under the event name"),
            );
            return decl;
        }
    };
    decl.keys = known_keys(
        entries,
        EVENT_KEYS,
        &format!("in event `{}`", name.name),
        sink,
    );
    if let Some(payload) = decl.get("payload") {
        decl.payload = match &payload.value {
            Value::Str(_) => PayloadDecl::Named(payload),
            Value::Map(_) => PayloadDecl::Inline(payload, read_fields(payload, sink)),
            Value::Null => PayloadDecl::None,
            other => {
                sink.push(
                    Diagnostic::error(
                        payload.span,
                        format!(
                            "`payload` must be a type name or a mapping of fields, found {}",
                            other.kind()
                        ),
                    )
                    .help("write `payload: PackageEvent` or `payload: { name: string }`"),
                );
                PayloadDecl::Invalid
            }
        };
    }
    decl
}

/// The entries of a mapping node that must be one; duplicates keys reported (the first wins).
fn entries_of<'a>(
    node: &'a Node,
    what: &str,
    item: &str,
    sink: &mut Sink,
) -> Vec<(&'a Key, &'a Node)> {
    match &node.value {
        Value::Map(entries) => {
            let mut seen: HashMap<&str, &Key> = HashMap::new();
            let mut out = Vec::new();
            for (k, v) in entries {
                if let Some(first) = seen.get(k.name.as_str()) {
                    sink.push(duplicate(k, first, item));
                } else {
                    seen.insert(&k.name, k);
                    out.push((k, v));
                }
            }
            out
        }
        Value::Null => Vec::new(),
        other => {
            sink.push(Diagnostic::error(
                node.span,
                format!("{what} must be a mapping, found {}", other.kind()),
            ));
            Vec::new()
        }
    }
}

/// Picks the allowed keys out of a mapping; unknown and duplicate keys are reported.
fn known_keys<'a>(
    entries: &'a [(Key, Node)],
    allowed: &[&'static str],
    context: &str,
    sink: &mut Sink,
) -> HashMap<&'static str, &'a Node> {
    let mut found: HashMap<&'static str, &'a Node> = HashMap::new();
    let mut keys: HashMap<&'static str, &Key> = HashMap::new();
    for (key, value) in entries {
        match allowed.iter().find(|a| **a == key.name) {
            Some(name) => {
                if let Some(first) = keys.get(name) {
                    sink.push(duplicate_in(key, first, "key", context));
                } else {
                    keys.insert(name, key);
                    found.insert(name, value);
                }
            }
            None => {
                let help = match did_you_mean(&key.name, allowed.iter().copied()) {
                    Some(s) => format!("did you mean `{s}`?"),
                    None => format!("expected one of: {}", allowed.join(", ")),
                };
                sink.push(
                    Diagnostic::error(key.span, format!("unknown key `{}` {context}", key.name))
                        .label("not a key of the manifest DSL")
                        .help(help),
                );
            }
        }
    }
    found
}

pub(crate) fn duplicate(again: &Key, first: &Key, what: &str) -> Diagnostic {
    duplicate_in(again, first, what, "")
}

/// [`duplicate`] with where it happened: "duplicate key `attempts` in `retry`".
pub(crate) fn duplicate_in(again: &Key, first: &Key, what: &str, context: &str) -> Diagnostic {
    let context = if context.is_empty() {
        String::new()
    } else {
        format!(" {context}")
    };
    Diagnostic::error(
        again.span,
        format!("duplicate {what} `{}`{context}", again.name),
    )
    .label("defined again here")
    .help(format!(
        "first defined at line {}:{}; remove or rename one",
        first.span.line, first.span.column
    ))
}
