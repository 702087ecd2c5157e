//! Checks an `example` against its payload type and converts it to the JSON wire form.

use serde_json::{Map, Number, Value as Json};

use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::model::{Primitive, TypeDef, TypeKind, TypeRef};
use crate::yaml::{Node, Value};

/// Checks `node` against the type named `type_name`; returns the wire JSON, or every mismatch.
pub(crate) fn check(
    node: &Node,
    type_name: &str,
    types: &[TypeDef],
) -> Result<Json, Vec<Diagnostic>> {
    let mut errors = Vec::new();
    let json = value(
        node,
        &TypeRef::Named(type_name.to_owned()),
        types,
        "example",
        &mut errors,
    );
    if errors.is_empty() {
        Ok(json)
    } else {
        Err(errors)
    }
}

fn mismatch(node: &Node, path: &str, expected: &str) -> Diagnostic {
    let found = match &node.value {
        Value::Str(s) => format!("the string \"{}\"", s.chars().take(40).collect::<String>()),
        Value::Int(i) => format!("the integer {i}"),
        Value::Float(f) => format!("the number {f:?}"),
        other => other.kind().to_owned(),
    };
    let mut d = Diagnostic::error(
        node.span,
        format!("{path}: expected {expected}, found {found}"),
    )
    .label("does not match the payload type");
    if expected == "a string" && !matches!(node.value, Value::Map(_) | Value::Seq(_) | Value::Null)
    {
        d = d.help("quote the value to make it a string");
    }
    d
}

fn value(
    node: &Node,
    ty: &TypeRef,
    types: &[TypeDef],
    path: &str,
    errors: &mut Vec<Diagnostic>,
) -> Json {
    match ty {
        TypeRef::Primitive(p) => primitive(node, *p, path, errors),
        TypeRef::List(item) => match &node.value {
            Value::Seq(items) => Json::Array(
                items
                    .iter()
                    .enumerate()
                    .map(|(i, n)| value(n, item, types, &format!("{path}[{i}]"), errors))
                    .collect(),
            ),
            _ => {
                errors.push(mismatch(node, path, &format!("a list of {item}")));
                Json::Null
            }
        },
        TypeRef::Map(item) => match &node.value {
            Value::Map(entries) => Json::Object(
                entries
                    .iter()
                    .map(|(k, n)| {
                        (
                            k.name.clone(),
                            value(n, item, types, &format!("{path}.{}", k.name), errors),
                        )
                    })
                    .collect(),
            ),
            _ => {
                errors.push(mismatch(node, path, &format!("a mapping of {item}")));
                Json::Null
            }
        },
        TypeRef::Named(name) => {
            let Some(def) = types.iter().find(|t| &t.name == name) else {
                return Json::Null; // unresolved names are reported elsewhere
            };
            match &def.kind {
                TypeKind::Enum(values) => match &node.value {
                    Value::Str(s) if values.iter().any(|v| &v.value == s) => {
                        Json::String(s.clone())
                    }
                    Value::Str(s) => {
                        let names: Vec<&str> = values.iter().map(|v| v.value.as_str()).collect();
                        let help = match did_you_mean(s, names.iter().copied()) {
                            Some(m) => format!("did you mean `{m}`?"),
                            None => format!("one of: {}", names.join(", ")),
                        };
                        errors.push(
                            Diagnostic::error(
                                node.span,
                                format!("{path}: `{s}` is not a value of enum `{name}`"),
                            )
                            .label("unknown enum value")
                            .help(help),
                        );
                        Json::Null
                    }
                    _ => {
                        errors.push(mismatch(node, path, &format!("a value of enum `{name}`")));
                        Json::Null
                    }
                },
                TypeKind::Struct(fields) => {
                    let Value::Map(entries) = &node.value else {
                        errors.push(mismatch(node, path, &format!("a `{name}` mapping")));
                        return Json::Null;
                    };
                    let mut out = Map::new();
                    for (k, n) in unique(entries, path, errors) {
                        match fields.iter().find(|f| f.name == k.name) {
                            Some(f) => {
                                let v =
                                    value(n, &f.ty, types, &format!("{path}.{}", k.name), errors);
                                out.insert(k.name.clone(), v);
                            }
                            None => {
                                let help = match did_you_mean(
                                    &k.name,
                                    fields.iter().map(|f| f.name.as_str()),
                                ) {
                                    Some(m) => format!("did you mean `{m}`?"),
                                    None => format!(
                                        "`{name}` has the fields: {}",
                                        fields
                                            .iter()
                                            .map(|f| f.name.as_str())
                                            .collect::<Vec<_>>()
                                            .join(", ")
                                    ),
                                };
                                errors.push(
                                    Diagnostic::error(
                                        k.span,
                                        format!("{path}: `{name}` has no field `{}`", k.name),
                                    )
                                    .label("unknown field")
                                    .help(help),
                                );
                            }
                        }
                    }
                    let missing: Vec<&str> = fields
                        .iter()
                        .filter(|f| !f.optional && !entries.iter().any(|(k, _)| k.name == f.name))
                        .map(|f| f.name.as_str())
                        .collect();
                    if !missing.is_empty() {
                        errors.push(
                            Diagnostic::error(
                                node.span,
                                format!(
                                    "{path}: missing required field{} {}",
                                    if missing.len() > 1 { "s" } else { "" },
                                    missing
                                        .iter()
                                        .map(|m| format!("`{m}`"))
                                        .collect::<Vec<_>>()
                                        .join(", ")
                                ),
                            )
                            .label(format!("this `{name}` is incomplete")),
                        );
                    }
                    Json::Object(out)
                }
            }
        }
    }
}

/// The entries of an example mapping, each key once: a repeated key is an error, never a
/// silent "last one wins".
fn unique<'a>(
    entries: &'a [(crate::yaml::Key, Node)],
    path: &str,
    errors: &mut Vec<Diagnostic>,
) -> Vec<&'a (crate::yaml::Key, Node)> {
    let mut kept: Vec<&'a (crate::yaml::Key, Node)> = Vec::new();
    for entry in entries {
        match kept.iter().find(|(k, _)| k.name == entry.0.name) {
            Some((first, _)) => errors.push(crate::manifest::duplicate_in(
                &entry.0,
                first,
                "key",
                &format!("in {path}"),
            )),
            None => kept.push(entry),
        }
    }
    kept
}

fn primitive(node: &Node, p: Primitive, path: &str, errors: &mut Vec<Diagnostic>) -> Json {
    let expected = match p {
        Primitive::String => "a string",
        Primitive::Bool => "a boolean",
        Primitive::F32 | Primitive::F64 => "a number",
        Primitive::Json => "any value",
        Primitive::Timestamp => "a timestamp (integer milliseconds since the Unix epoch)",
        _ => "an integer",
    };
    match (p, &node.value) {
        (Primitive::Json, _) => to_json(node),
        (Primitive::String, Value::Str(s)) => Json::String(s.clone()),
        (Primitive::Bool, Value::Bool(b)) => Json::Bool(*b),
        (Primitive::F32 | Primitive::F64, Value::Float(f)) if f.is_finite() => {
            Number::from_f64(*f).map(Json::Number).unwrap_or(Json::Null)
        }
        (Primitive::F32 | Primitive::F64, Value::Int(i)) => Number::from_f64(*i as f64)
            .map(Json::Number)
            .unwrap_or(Json::Null),
        (_, Value::Int(i)) if p.int_range().is_some() => {
            let (lo, hi) = p.int_range().unwrap_or((0, 0));
            if *i < lo || *i > hi {
                errors.push(
                    Diagnostic::error(
                        node.span,
                        format!("{path}: {i} is out of range for `{}`", p.as_str()),
                    )
                    .label(format!("must be from {lo} to {hi}")),
                );
                Json::Null
            } else if p.is_int64() {
                // 64-bit integers travel as decimal strings (see docs/manifest.md).
                Json::String(i.to_string())
            } else {
                serde_json::to_value(*i as i64).unwrap_or(Json::Null)
            }
        }
        (_, Value::Str(s)) if p.is_int64() && s.parse::<i128>().is_ok() => {
            // Accept the wire form too: "18446744073709551615".
            primitive(
                &Node {
                    value: Value::Int(s.parse().unwrap_or(0)),
                    span: node.span,
                },
                p,
                path,
                errors,
            )
        }
        _ => {
            errors.push(mismatch(node, path, expected));
            Json::Null
        }
    }
}

fn to_json(node: &Node) -> Json {
    match &node.value {
        Value::Null => Json::Null,
        Value::Bool(b) => Json::Bool(*b),
        Value::Int(i) => i64::try_from(*i)
            .map(Json::from)
            .or_else(|_| u64::try_from(*i).map(Json::from))
            .unwrap_or_else(|_| Json::String(i.to_string())),
        Value::Float(f) => Number::from_f64(*f).map(Json::Number).unwrap_or(Json::Null),
        Value::Str(s) => Json::String(s.clone()),
        Value::Seq(items) => Json::Array(items.iter().map(to_json).collect()),
        Value::Map(entries) => Json::Object(
            entries
                .iter()
                .map(|(k, v)| (k.name.clone(), to_json(v)))
                .collect(),
        ),
    }
}
