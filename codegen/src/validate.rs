//! Semantic checks: from the manifest as written to the checked [`Model`]. Every independent
//! problem is reported; a problem in one place never causes follow-up errors elsewhere (an
//! unresolved type is reported once, where it is named, and not again in the examples).

use std::collections::{HashMap, HashSet};

use crate::diagnostic::{Diagnostic, Sink, Span, did_you_mean};
use crate::manifest::{EventDecl, FieldDecl, Manifest, PayloadDecl, TypeBody};
use crate::model::{
    EnumValue, EventDef, Field, Model, Policies, Primitive, Scope, TypeDef, TypeKind, TypeOrigin,
    TypeRef, UiDirection,
};
use crate::names;
use crate::yaml::{Key, Node, Value};
use crate::{example, policy, type_expr};

/// The manifest versions this release understands.
pub const SUPPORTED_VERSIONS: &[u32] = &[1];

fn is_pascal(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_uppercase()) && s.chars().all(|c| c.is_ascii_alphanumeric())
}
fn is_camel(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase()) && s.chars().all(|c| c.is_ascii_alphanumeric())
}
fn is_field_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphabetic())
        && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}
fn is_enum_value(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_alphanumeric())
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}
fn is_lower_name(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_lowercase())
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '_' | '-'))
}

const MAX_NAME_LEN: usize = 64;

/// A field whose type expression parsed, before names are resolved.
struct PendingField<'a> {
    decl: &'a FieldDecl<'a>,
    ty: Option<TypeRef>,
    optional: bool,
}

pub(crate) fn check(m: &Manifest<'_>, sink: &mut Sink) -> Option<Model> {
    let version = check_version(m, sink);
    let package = check_package(m, sink);
    let description = m.description.and_then(|n| string(n, "description", sink));
    if m.root.value != Value::Null && !matches!(m.root.value, Value::Map(_)) {
        return None;
    }

    // Type names first: every later step resolves against them.
    let mut type_names: HashMap<String, Span> = HashMap::new();
    for t in &m.types {
        let name = &t.name.name;
        if !is_pascal(name) || name.len() > MAX_NAME_LEN {
            sink.push(
                Diagnostic::error(t.name.span, format!("type name `{name}` is not PascalCase"))
                    .label("type names start with an uppercase letter, letters and digits only")
                    .help(format!("rename it to `{}`", names::pascal(name))),
            );
        } else if names::is_reserved_type_name(name) {
            sink.push(
                Diagnostic::error(t.name.span, format!("type name `{name}` is reserved"))
                    .label("the generated module defines it")
                    .help("choose another name"),
            );
        }
        type_names.insert(name.clone(), t.name.span);
    }
    let mut inline_names: Vec<(String, &EventDecl<'_>)> = Vec::new();
    for e in &m.events {
        if let PayloadDecl::Inline(..) = &e.payload {
            let inline = names::inline_type_name(&e.name.name);
            if let Some(first) = type_names.get(&inline) {
                sink.push(
                    Diagnostic::error(
                        e.name.span,
                        format!("the inline payload of `{}` would be named `{inline}`, which is already declared", e.name.name),
                    )
                    .label(format!("its inline payload is a type named `{inline}`"))
                    .help(format!("declared at line {}:{}; write `payload: {inline}` to reuse it, or rename one", first.line, first.column)),
                );
            } else {
                if names::is_reserved_type_name(&inline) {
                    sink.push(
                        Diagnostic::error(
                            e.name.span,
                            format!("the inline payload of `{}` would be named `{inline}`, which is reserved", e.name.name),
                        )
                        .label("the generated module defines a type with that name")
                        .help("rename the event, or declare its payload under `types` with another name"),
                    );
                }
                type_names.insert(inline.clone(), e.name.span);
                inline_names.push((inline, e));
            }
        }
    }

    let known: Vec<&str> = type_names
        .keys()
        .map(String::as_str)
        .chain(Primitive::ALL.iter().map(|p| p.as_str()))
        .collect();

    // Types. A type that lost a field or value to an error is "incomplete": examples that
    // touch it are not checked, so that one mistake is not reported again as a missing field.
    let mut types: Vec<TypeDef> = Vec::new();
    let mut incomplete: HashSet<String> = HashSet::new();
    let mut type_spans: HashMap<String, Span> = HashMap::new();
    for t in &m.types {
        let description = t.description.and_then(|n| string(n, "description", sink));
        let kind = match &t.body {
            TypeBody::Invalid => continue,
            TypeBody::Enum(values) => {
                let checked = enum_values(&t.name.name, values, sink);
                if checked.len() < values.len() {
                    incomplete.insert(t.name.name.clone());
                }
                TypeKind::Enum(checked)
            }
            TypeBody::Fields(fields) => {
                let checked = struct_fields(fields, &known, sink);
                if checked.len() < fields.len() {
                    incomplete.insert(t.name.name.clone());
                }
                TypeKind::Struct(checked)
            }
        };
        type_spans.insert(t.name.name.clone(), t.name.span);
        types.push(TypeDef {
            name: t.name.name.clone(),
            description,
            kind,
            origin: TypeOrigin::Declared,
        });
    }
    for (inline, e) in &inline_names {
        if let PayloadDecl::Inline(_, fields) = &e.payload {
            type_spans.insert(inline.clone(), e.name.span);
            let checked = struct_fields(fields, &known, sink);
            if checked.len() < fields.len() {
                incomplete.insert(inline.clone());
            }
            types.push(TypeDef {
                name: inline.clone(),
                description: e
                    .get("description")
                    .and_then(|n| n.as_str().map(str::to_owned)),
                kind: TypeKind::Struct(checked),
                origin: TypeOrigin::InlinePayload(e.name.name.clone()),
            });
        }
    }
    check_cycles(&mut types, &type_spans, sink);

    // Events.
    let mut events = Vec::new();
    let mut snake_names: HashMap<String, &Key> = HashMap::new();
    for e in &m.events {
        let name = &e.name.name;
        if !is_camel(name) || name.len() > MAX_NAME_LEN {
            sink.push(
                Diagnostic::error(e.name.span, format!("event name `{name}` is not camelCase"))
                    .label("event names start with a lowercase letter, letters and digits only")
                    .help(format!(
                        "rename it to `{}`",
                        heck::ToLowerCamelCase::to_lower_camel_case(name.as_str())
                    )),
            );
        } else if let Some(first) = snake_names.get(&names::snake(name)) {
            sink.push(collision(e.name, first, "event", &names::snake(name)));
        } else {
            snake_names.insert(names::snake(name), e.name);
        }
        if let Some(event) = check_event(e, &types, &known, &incomplete, sink) {
            events.push(event);
        }
    }

    if sink.has_errors() {
        return None;
    }
    Some(Model {
        version: version?,
        package: package?,
        description,
        types,
        events,
    })
}

fn check_version(m: &Manifest<'_>, sink: &mut Sink) -> Option<u32> {
    let Some(node) = m.version else {
        if matches!(m.root.value, Value::Map(_)) {
            sink.push(
                Diagnostic::error(Span::new(1, 1, 1), "missing `version`")
                    .label("the manifest must say which DSL version it uses")
                    .help("add `version: 1` as the first line"),
            );
        }
        return None;
    };
    match &node.value {
        Value::Int(v) if SUPPORTED_VERSIONS.iter().any(|s| i128::from(*s) == *v) => Some(*v as u32),
        other => {
            let shown = match other {
                Value::Int(v) => v.to_string(),
                Value::Str(s) => format!("\"{s}\""),
                Value::Float(f) => f.to_string(),
                other => other.kind().to_owned(),
            };
            sink.push(
                Diagnostic::error(node.span, format!("unsupported manifest version {shown}"))
                    .label("this eventbus understands version 1")
                    .help("write `version: 1`"),
            );
            None
        }
    }
}

fn check_package(m: &Manifest<'_>, sink: &mut Sink) -> Option<String> {
    let Some(node) = m.package else {
        if matches!(m.root.value, Value::Map(_)) {
            sink.push(
                Diagnostic::error(Span::new(1, 1, 1), "missing `package`")
                    .label("the namespace of these events")
                    .help("add `package: myapp` (lowercase letters, digits, `-` and `_`)"),
            );
        }
        return None;
    };
    let name = string(node, "package", sink)?;
    if !is_lower_name(&name) || name.len() > MAX_NAME_LEN {
        sink.push(
            Diagnostic::error(node.span, format!("package name `{name}` is not valid"))
                .label("lowercase letters, digits, `-` and `_`, starting with a letter")
                .help("it becomes the CloudEvents type prefix and the NATS subject root"),
        );
        return None;
    }
    Some(name)
}

fn string(node: &Node, key: &str, sink: &mut Sink) -> Option<String> {
    match &node.value {
        Value::Str(s) => Some(s.clone()),
        other => {
            sink.push(
                Diagnostic::error(
                    node.span,
                    format!("`{key}` must be a string, found {}", other.kind()),
                )
                .help("quote the value"),
            );
            None
        }
    }
}

fn collision(again: &Key, first: &Key, what: &str, rust: &str) -> Diagnostic {
    Diagnostic::error(
        again.span,
        format!(
            "{what} `{}` collides with `{}`: both are `{rust}` in Rust",
            again.name, first.name
        ),
    )
    .label("same name after case conversion")
    .help(format!(
        "`{}` is at line {}:{}; rename one of them",
        first.name, first.span.line, first.span.column
    ))
}

fn enum_values(type_name: &str, nodes: &[&Node], sink: &mut Sink) -> Vec<EnumValue> {
    let mut out = Vec::new();
    let mut variants: HashMap<String, (String, Span)> = HashMap::new();
    for node in nodes {
        let Value::Str(value) = &node.value else {
            sink.push(
                Diagnostic::error(
                    node.span,
                    format!(
                        "enum `{type_name}`: values are strings, found {}",
                        node.value.kind()
                    ),
                )
                .help("quote the value"),
            );
            continue;
        };
        if !is_enum_value(value) || value.len() > MAX_NAME_LEN {
            sink.push(
                Diagnostic::error(node.span, format!("enum value `{value}` is not valid"))
                    .label("letters, digits, `-`, `_` and `.`, starting with a letter or digit")
                    .help("enum values become identifiers in Rust and TypeScript"),
            );
            continue;
        }
        let variant = names::variant_name(value);
        if let Some((first, span)) = variants.get(&variant) {
            let msg = if first == value {
                format!("duplicate value `{value}` in enum `{type_name}`")
            } else {
                format!("enum values `{first}` and `{value}` are both `{variant}` in Rust")
            };
            sink.push(
                Diagnostic::error(node.span, msg)
                    .label("defined again here")
                    .help(format!(
                        "first at line {}:{}; remove or rename one",
                        span.line, span.column
                    )),
            );
            continue;
        }
        variants.insert(variant, (value.clone(), node.span));
        out.push(EnumValue {
            value: value.clone(),
        });
    }
    out
}

fn struct_fields(decls: &[FieldDecl<'_>], known: &[&str], sink: &mut Sink) -> Vec<Field> {
    let mut pending = Vec::new();
    let mut snake_names: HashMap<String, &Key> = HashMap::new();
    for decl in decls {
        let name = &decl.name.name;
        if !is_field_name(name) || name.len() > MAX_NAME_LEN {
            sink.push(
                Diagnostic::error(decl.name.span, format!("field name `{name}` is not valid"))
                    .label("letters, digits and `_`, starting with a letter")
                    .help("field names are JSON keys and Rust/TypeScript identifiers"),
            );
            continue;
        }
        if let Some(first) = snake_names.get(&names::snake(name)) {
            sink.push(collision(decl.name, first, "field", &names::snake(name)));
            continue;
        }
        snake_names.insert(names::snake(name), decl.name);
        let description = decl
            .description
            .and_then(|n| string(n, "description", sink));
        let Some(text) = decl.ty.as_str() else {
            sink.push(
                Diagnostic::error(
                    decl.ty.span,
                    format!(
                        "field `{name}`: a type is a string, found {}",
                        decl.ty.value.kind()
                    ),
                )
                .help("write `string`, `u32?`, `PackageEvent[]`, `map<string>`, ..."),
            );
            continue;
        };
        let parsed = match type_expr::parse(text) {
            Ok(parsed) => parsed,
            Err(e) => {
                sink.push(
                    Diagnostic::error(decl.ty.span, e.message)
                        .label("bad type")
                        .help(e.help),
                );
                continue;
            }
        };
        let ok = resolve(&parsed.ty, decl.ty.span, known, sink);
        pending.push((
            PendingField {
                decl,
                ty: ok.then_some(parsed.ty),
                optional: parsed.optional,
            },
            description,
        ));
    }
    pending
        .into_iter()
        .filter_map(|(p, description)| {
            Some(Field {
                name: p.decl.name.name.clone(),
                ty: p.ty?,
                optional: p.optional,
                description,
                boxed: false,
            })
        })
        .collect()
}

/// Reports named types in `ty` that do not exist; true if all resolve.
fn resolve(ty: &TypeRef, span: Span, known: &[&str], sink: &mut Sink) -> bool {
    match ty {
        TypeRef::Primitive(_) => true,
        TypeRef::List(t) | TypeRef::Map(t) => resolve(t, span, known, sink),
        TypeRef::Named(name) if known.contains(&name.as_str()) => true,
        TypeRef::Named(name) => {
            let help = match did_you_mean(name, known.iter().copied()) {
                Some(s) => format!("did you mean `{s}`?"),
                None => "declare it under `types:`, or use a primitive: string, bool, i32, u64, f64, timestamp, json, ...".into(),
            };
            sink.push(
                Diagnostic::error(span, format!("unknown type `{name}`"))
                    .label("not a primitive or a declared type")
                    .help(help),
            );
            false
        }
    }
}

/// Rejects types that contain themselves through required fields only (no finite JSON value
/// exists), and marks optional fields on a cycle as boxed (Rust needs the indirection).
///
/// Linear in the number of types and fields: strongly connected components of the "contains
/// inline" graph (a field whose type is a named struct; lists and maps are heap indirections).
fn check_cycles(types: &mut [TypeDef], spans: &HashMap<String, Span>, sink: &mut Sink) {
    let index: HashMap<String, usize> = types
        .iter()
        .enumerate()
        .map(|(i, t)| (t.name.clone(), i))
        .collect();
    let edges = |required_only: bool| -> Vec<Vec<usize>> {
        types
            .iter()
            .map(|t| match &t.kind {
                TypeKind::Struct(fields) => fields
                    .iter()
                    .filter(|f| !required_only || !f.optional)
                    .filter_map(|f| match &f.ty {
                        TypeRef::Named(n) => index.get(n).copied(),
                        _ => None,
                    })
                    .collect(),
                TypeKind::Enum(_) => Vec::new(),
            })
            .collect()
    };
    let required = edges(true);
    let (strong, _) = components(&required);
    let mut by_component: HashMap<usize, Vec<usize>> = HashMap::new();
    for (t, c) in strong.iter().enumerate() {
        by_component.entry(*c).or_default().push(t);
    }
    let mut cycles: Vec<Vec<usize>> = by_component
        .into_values()
        .filter(|members| members.len() > 1 || required[members[0]].contains(&members[0]))
        .collect();
    cycles.sort();
    for members in cycles {
        let names: Vec<&str> = members.iter().map(|&m| types[m].name.as_str()).collect();
        let first = names[0];
        let shown = if names.len() > 8 {
            format!("{} → … ({} types)", names[..8].join(" → "), names.len())
        } else {
            names.join(" → ")
        };
        let span = spans.get(first).copied().unwrap_or(Span::new(1, 1, 1));
        sink.push(
            Diagnostic::error(span, format!("type `{first}` contains itself through required fields"))
                .label(format!("cycle: {shown} → {first}"))
                .help("no finite value of it exists: make one field on the cycle optional (`T?`) or a list (`T[]`)"),
        );
    }
    // An optional field needs a `Box` when its type can contain the field's own type again.
    let (inline, _) = components(&edges(false));
    for (t, def) in types.iter_mut().enumerate() {
        if let TypeKind::Struct(fields) = &mut def.kind {
            for f in fields.iter_mut() {
                if let TypeRef::Named(target) = &f.ty {
                    f.boxed =
                        f.optional && index.get(target).is_some_and(|&u| inline[u] == inline[t]);
                }
            }
        }
    }
}

/// Strongly connected components (Tarjan's algorithm, iterative so that deep chains of types
/// cannot overflow the stack): the component id of each node, and the number of components.
fn components(edges: &[Vec<usize>]) -> (Vec<usize>, usize) {
    const UNVISITED: usize = usize::MAX;
    let n = edges.len();
    let (mut index, mut low, mut component) = (vec![UNVISITED; n], vec![0; n], vec![UNVISITED; n]);
    let (mut on_stack, mut stack) = (vec![false; n], Vec::new());
    let (mut next_index, mut count) = (0, 0);
    for root in 0..n {
        if index[root] != UNVISITED {
            continue;
        }
        // Each frame: a node and how many of its edges were followed.
        let mut frames = vec![(root, 0usize)];
        index[root] = next_index;
        low[root] = next_index;
        next_index += 1;
        stack.push(root);
        on_stack[root] = true;
        while let Some(&mut (node, ref mut edge)) = frames.last_mut() {
            if let Some(&next) = edges[node].get(*edge) {
                *edge += 1;
                if index[next] == UNVISITED {
                    index[next] = next_index;
                    low[next] = next_index;
                    next_index += 1;
                    stack.push(next);
                    on_stack[next] = true;
                    frames.push((next, 0));
                } else if on_stack[next] {
                    low[node] = low[node].min(index[next]);
                }
                continue;
            }
            frames.pop();
            if let Some(&(parent, _)) = frames.last() {
                low[parent] = low[parent].min(low[node]);
            }
            if low[node] == index[node] {
                while let Some(member) = stack.pop() {
                    on_stack[member] = false;
                    component[member] = count;
                    if member == node {
                        break;
                    }
                }
                count += 1;
            }
        }
    }
    (component, count)
}

fn check_event(
    e: &EventDecl<'_>,
    types: &[TypeDef],
    known: &[&str],
    incomplete: &HashSet<String>,
    sink: &mut Sink,
) -> Option<EventDef> {
    let name = &e.name.name;
    // Problems found here do not stop the other keys from being checked.
    let mut failed = false;
    let category = match e.get("category") {
        Some(node) => {
            // A non-string is reported by `string`; an empty or malformed one here.
            let c = string(node, "category", sink);
            if let Some(c) = c.as_deref().filter(|c| !is_lower_name(c)) {
                sink.push(
                    Diagnostic::error(node.span, format!("category `{c}` is not valid"))
                        .label("lowercase letters, digits, `-` and `_`")
                        .help("categories group docs and the TypeScript namespace"),
                );
            }
            c.unwrap_or_default()
        }
        None => "general".to_owned(),
    };
    let description = e
        .get("description")
        .and_then(|n| string(n, "description", sink));
    let payload = match &e.payload {
        PayloadDecl::None => None,
        PayloadDecl::Invalid => {
            failed = true;
            None
        }
        PayloadDecl::Inline(..) => Some(names::inline_type_name(name)),
        PayloadDecl::Named(node) => {
            let text = node.as_str().unwrap_or_default().trim().to_owned();
            match type_expr::parse(&text) {
                Ok(p) if !p.optional && matches!(p.ty, TypeRef::Named(_)) => {
                    if !resolve(&p.ty, node.span, known, sink) {
                        failed = true;
                        None
                    } else if types
                        .iter()
                        .any(|t| t.name == text && matches!(t.kind, TypeKind::Enum(_)))
                    {
                        sink.push(
                            Diagnostic::error(node.span, format!("payload `{text}` is an enum"))
                                .label("a payload is a struct type")
                                .help(format!("wrap it: `payload: {{ value: {text} }}`")),
                        );
                        failed = true;
                        None
                    } else {
                        Some(text)
                    }
                }
                _ => {
                    sink.push(
                        Diagnostic::error(
                            node.span,
                            format!("payload `{text}` is not a struct type name"),
                        )
                        .label("a payload is a named type or inline fields")
                        .help(format!(
                            "write inline fields instead: `payload: {{ value: {text} }}`"
                        )),
                    );
                    failed = true;
                    None
                }
            }
        }
    };
    let persist = match e.get("persist") {
        None => false,
        Some(Node {
            value: Value::Bool(b),
            ..
        }) => *b,
        Some(node) => {
            sink.push(
                Diagnostic::error(
                    node.span,
                    format!(
                        "`persist` must be true or false, found {}",
                        node.value.kind()
                    ),
                )
                .help("write `persist: true`"),
            );
            false
        }
    };
    let ui = match e.get("ui") {
        None => UiDirection::None,
        Some(node) => {
            let all = [
                UiDirection::None,
                UiDirection::ToUi,
                UiDirection::FromUi,
                UiDirection::Both,
            ];
            match node
                .as_str()
                .and_then(|s| all.into_iter().find(|d| d.as_str() == s))
            {
                Some(d) => d,
                None => {
                    let text = node.as_str().unwrap_or("");
                    let help = match did_you_mean(text, all.iter().map(|d| d.as_str())) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => "one of: none, to_ui, from_ui, both".into(),
                    };
                    sink.push(
                        Diagnostic::error(node.span, "`ui` must be none, to_ui, from_ui or both")
                            .label("what may cross the browser bridge")
                            .help(help),
                    );
                    UiDirection::None
                }
            }
        }
    };
    let scope = match e.get("scope") {
        None => Scope::Local,
        Some(node) => {
            let all = [Scope::Local, Scope::Distributed];
            match node
                .as_str()
                .and_then(|s| all.into_iter().find(|d| d.as_str() == s))
            {
                Some(scope) => scope,
                None => {
                    let text = node.as_str().unwrap_or("");
                    let help = match did_you_mean(text, all.iter().map(|d| d.as_str())) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => "one of: local, distributed".into(),
                    };
                    sink.push(
                        Diagnostic::error(node.span, "`scope` must be local or distributed")
                            .label("whether the event travels between processes (NATS)")
                            .help(help),
                    );
                    Scope::Local
                }
            }
        }
    };
    let deprecated = match e.get("deprecated") {
        None
        | Some(Node {
            value: Value::Bool(false),
            ..
        }) => None,
        Some(Node {
            value: Value::Bool(true),
            ..
        }) => Some(String::new()),
        Some(Node {
            value: Value::Str(s),
            ..
        }) => Some(s.clone()),
        Some(node) => {
            sink.push(
                Diagnostic::error(node.span, "`deprecated` must be true or a notice string")
                    .help("write `deprecated: \"use packagesRefresh\"`"),
            );
            None
        }
    };
    let example = match (e.get("example"), &payload) {
        (None, _) => None,
        // The payload itself is wrong, reported already; checking the example would cascade.
        (Some(_), None) if failed => None,
        (Some(node), None) => {
            sink.push(
                Diagnostic::error(
                    node.span,
                    format!("event `{name}` has an example but no payload"),
                )
                .help("remove `example`, or declare a `payload`"),
            );
            None
        }
        // A type the example reaches lost a field or value to an error reported already.
        (Some(_), Some(ty)) if touches_incomplete(ty, types, incomplete) => None,
        (Some(node), Some(ty)) => match example::check(node, ty, types) {
            Ok(json) => Some(json),
            Err(errors) => {
                errors.into_iter().for_each(|d| sink.push(d));
                None
            }
        },
    };
    let mut policies = Policies::default();
    if let Some(n) = e.get("throttle") {
        policies.throttle = policy::duration(n, "throttle")
            .map_err(|d| sink.push(d))
            .ok();
    }
    if let Some(n) = e.get("debounce") {
        policies.debounce = policy::duration(n, "debounce")
            .map_err(|d| sink.push(d))
            .ok();
    }
    if let (Some(_), Some(n)) = (e.get("throttle"), e.get("debounce")) {
        sink.push(
            Diagnostic::error(n.span, format!("event `{name}` has both `throttle` and `debounce`"))
                .label("they contradict each other")
                .help("throttle delivers the first event of each interval, debounce the last after a pause: keep one"),
        );
    }
    if let Some(n) = e.get("rate_limit") {
        policies.rate_limit = many(policy::rate_limit(n), sink);
    }
    if let Some(n) = e.get("batch") {
        policies.batch = many(policy::batch(n), sink);
    }
    if let Some(n) = e.get("retry") {
        policies.retry = many(policy::retry(n), sink);
    }
    if let Some(n) = e.get("circuit_breaker") {
        policies.circuit_breaker = many(policy::circuit_breaker(n), sink).flatten();
    }
    if let Some(n) = e.get("concurrency") {
        policies.concurrency = policy::async_limit(n, "concurrency")
            .map_err(|d| sink.push(d))
            .ok();
    }
    if let Some(n) = e.get("queue") {
        policies.queue = policy::async_limit(n, "queue")
            .map_err(|d| sink.push(d))
            .ok();
    }
    if failed {
        return None;
    }
    Some(EventDef {
        name: name.clone(),
        category,
        description,
        payload,
        persist,
        ui,
        scope,
        deprecated,
        example,
        policies,
    })
}

/// Whether `name`, or a type it contains, is missing or lost a field or value to an error.
fn touches_incomplete(name: &str, types: &[TypeDef], incomplete: &HashSet<String>) -> bool {
    let mut seen = HashSet::new();
    let mut stack = vec![name.to_owned()];
    while let Some(name) = stack.pop() {
        if incomplete.contains(&name) {
            return true;
        }
        if !seen.insert(name.clone()) {
            continue;
        }
        match types.iter().find(|t| t.name == name).map(|t| &t.kind) {
            None => return true,
            Some(TypeKind::Struct(fields)) => {
                for f in fields {
                    named_types(&f.ty, &mut stack);
                }
            }
            Some(TypeKind::Enum(_)) => {}
        }
    }
    false
}

fn named_types(ty: &TypeRef, out: &mut Vec<String>) {
    match ty {
        TypeRef::Named(n) => out.push(n.clone()),
        TypeRef::List(t) | TypeRef::Map(t) => named_types(t, out),
        TypeRef::Primitive(_) => {}
    }
}

/// Keeps the value, or reports every diagnostic.
fn many<T>(result: Result<T, Vec<Diagnostic>>, sink: &mut Sink) -> Option<T> {
    result
        .map_err(|ds| ds.into_iter().for_each(|d| sink.push(d)))
        .ok()
}
