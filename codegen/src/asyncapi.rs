//! An AsyncAPI 3.0 document for a manifest: one channel per event (its NATS subject), a send
//! and/or receive operation per event depending on its bridge direction, and a JSON Schema per
//! type that describes exactly the JSON wire form (64-bit integers as decimal strings).

use serde_json::{Map, Value, json};

use crate::model::{EventDef, Model, Primitive, TypeDef, TypeKind, TypeRef};

/// The AsyncAPI version this module writes.
pub const ASYNCAPI_VERSION: &str = "3.0.0";

/// The AsyncAPI 3.0 document of `model`, as JSON.
///
/// ```
/// let model: eventbus_codegen::Model =
///     "version: 1\npackage: demo\nevents:\n  ping: { ui: to_ui }\n".parse().unwrap();
/// let doc = eventbus_codegen::asyncapi::document(&model);
/// assert_eq!(doc["asyncapi"], "3.0.0");
/// assert_eq!(doc["channels"]["ping"]["address"], "demo.events.ping");
/// ```
pub fn document(model: &Model) -> Value {
    let mut channels = Map::new();
    let mut operations = Map::new();
    let mut messages = Map::new();
    for e in &model.events {
        channels.insert(
            e.name.clone(),
            json!({
                "address": format!("{}.events.{}", model.package, e.name),
                "description": e.description.clone().unwrap_or_default(),
                "messages": { e.name.clone(): { "$ref": format!("#/components/messages/{}", e.name) } },
            }),
        );
        messages.insert(e.name.clone(), message(model, e));
        let op = |action: &str| {
            json!({
                "action": action,
                "channel": { "$ref": format!("#/channels/{}", e.name) },
                "messages": [{ "$ref": format!("#/channels/{}/messages/{}", e.name, e.name) }],
                "tags": [{ "name": e.category.clone() }],
            })
        };
        // Seen from the server: it sends what goes to browsers (and what stays local, to its
        // own subscribers) and receives what browsers may send.
        if e.ui.to_ui() || !e.ui.from_ui() {
            operations.insert(format!("send.{}", e.name), op("send"));
        }
        if e.ui.from_ui() {
            operations.insert(format!("receive.{}", e.name), op("receive"));
        }
    }
    let schemas: Map<String, Value> = model
        .types
        .iter()
        .map(|t| (t.name.clone(), type_schema(t)))
        .collect();
    let mut info = json!({
        "title": model.package,
        "version": format!("{}", model.version),
    });
    if let Some(d) = &model.description {
        info["description"] = json!(d);
    }
    json!({
        "asyncapi": ASYNCAPI_VERSION,
        "info": info,
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": { "messages": messages, "schemas": schemas },
    })
}

fn message(model: &Model, e: &EventDef) -> Value {
    let mut m = json!({
        "name": e.name,
        "title": e.name,
        "contentType": "application/json",
        "tags": [{ "name": e.category }],
        "x-eventbus": {
            "type": format!("{}.{}", model.package, e.name),
            "persist": e.persist,
            "ui": e.ui.as_str(),
            "policies": crate::docs::policies_summary(&e.policies),
        },
    });
    if let Some(d) = &e.description {
        m["summary"] = json!(d.lines().next().unwrap_or_default());
        m["description"] = json!(d);
    }
    if let Some(note) = &e.deprecated {
        m["x-deprecated"] = json!(note);
    }
    if e.scope.is_distributed() {
        m["x-eventbus"]["scope"] = json!(e.scope.as_str());
        m["x-eventbus"]["subject"] = json!(format!("{}.events.{}", model.package, e.name));
    }
    m["payload"] = match &e.payload {
        Some(p) => json!({ "$ref": format!("#/components/schemas/{p}") }),
        None => json!({ "type": "null" }),
    };
    if let Some(example) = &e.example {
        m["examples"] = json!([{ "name": "example", "payload": example }]);
    }
    m
}

/// The JSON Schema (draft 7 subset, as AsyncAPI's default schema format) of a type's wire form.
pub fn type_schema(t: &TypeDef) -> Value {
    let mut schema = match &t.kind {
        TypeKind::Enum(values) => json!({
            "type": "string",
            "enum": values.iter().map(|v| v.value.clone()).collect::<Vec<_>>(),
        }),
        TypeKind::Struct(fields) => {
            let properties: Map<String, Value> = fields
                .iter()
                .map(|f| {
                    let mut s = ref_schema(&f.ty);
                    if let Some(d) = &f.description {
                        s = json!({ "allOf": [s], "description": d });
                    }
                    (f.name.clone(), s)
                })
                .collect();
            let required: Vec<&str> = fields
                .iter()
                .filter(|f| !f.optional)
                .map(|f| f.name.as_str())
                .collect();
            json!({ "type": "object", "properties": properties, "required": required })
        }
    };
    if let Some(d) = &t.description {
        schema["description"] = json!(d);
    }
    schema
}

fn ref_schema(ty: &TypeRef) -> Value {
    match ty {
        TypeRef::Primitive(p) => primitive_schema(*p),
        TypeRef::List(t) => json!({ "type": "array", "items": ref_schema(t) }),
        TypeRef::Map(t) => json!({ "type": "object", "additionalProperties": ref_schema(t) }),
        TypeRef::Named(n) => json!({ "$ref": format!("#/components/schemas/{n}") }),
    }
}

fn primitive_schema(p: Primitive) -> Value {
    match p {
        Primitive::String => json!({ "type": "string" }),
        Primitive::Bool => json!({ "type": "boolean" }),
        Primitive::F32 | Primitive::F64 => json!({ "type": "number" }),
        Primitive::Json => json!({}),
        Primitive::I64 => json!({
            "type": "string", "pattern": "^(0|-?[1-9][0-9]*)$", "format": "int64",
            "description": "A 64-bit integer as a decimal string."
        }),
        Primitive::U64 => json!({
            "type": "string", "pattern": "^(0|[1-9][0-9]*)$", "format": "uint64",
            "description": "A 64-bit unsigned integer as a decimal string."
        }),
        Primitive::Timestamp => json!({
            "type": "integer", "minimum": -9_007_199_254_740_991_i64, "maximum": 9_007_199_254_740_991_i64,
            "description": "Milliseconds since the Unix epoch."
        }),
        _ => {
            let (lo, hi) = p.int_range().unwrap_or((0, 0));
            json!({ "type": "integer", "minimum": lo as i64, "maximum": hi as i64 })
        }
    }
}
