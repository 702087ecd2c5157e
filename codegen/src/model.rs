//! The checked model (IR) of a manifest: what every generator consumes.
//!
//! A [`Model`] only exists for a manifest that passed validation, so generators can rely on
//! its invariants: every named type resolves, names are unique after case conversion, no
//! type contains itself without indirection, examples match their payloads. Spans are gone;
//! everything here is about the meaning, not the text.
//!
//! # Stability
//!
//! The IR grows with the manifest language: a minor version may add fields to these structs
//! and variants to these enums (as `scope` and `circuit_breaker` were added). So, outside
//! this crate:
//!
//! - get a [`Model`] by parsing ([`Model::parse`], [`Model::load`], `str::parse`), never by a
//!   struct literal: a literal stops compiling when a field is added, and would skip the
//!   validation the invariants above rest on;
//! - read fields by name, and give a `match` on an enum of this module a `_` arm when it is
//!   not meant to break on a new DSL feature.
//!
//! Renaming or removing a field or variant, or changing what one means, is a breaking change
//! and waits for a major version.

use std::time::Duration;

pub use eventbus_runtime::{Scope, UiDirection};

/// A checked manifest.
///
/// ```
/// let model: eventbus_codegen::Model =
///     "version: 1\npackage: demo\nevents:\n  ping:\n    category: health\n".parse().unwrap();
/// assert_eq!(model.package, "demo");
/// assert_eq!(model.events[0].name, "ping");
/// assert!(model.events[0].payload.is_none());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Model {
    /// The DSL version (`1`).
    pub version: u32,
    /// The namespace: docs title, CloudEvents type prefix, NATS subject root.
    pub package: String,
    /// The manifest's top-level `description`, if any.
    pub description: Option<String>,
    /// Every type: declared ones in manifest order, then the inline payload types in event order.
    pub types: Vec<TypeDef>,
    /// Every event, in manifest order.
    pub events: Vec<EventDef>,
}

impl Model {
    /// Looks a type up by name.
    ///
    /// ```
    /// use eventbus_codegen::{Model, TypeKind};
    ///
    /// let model: Model = "version: 1\npackage: demo\ntypes:\n  Level:\n    enum: [low, high]\nevents:\n  alarm: { payload: { level: Level } }\n"
    ///     .parse()
    ///     .unwrap();
    /// assert!(matches!(model.type_def("Level").unwrap().kind, TypeKind::Enum(_)));
    /// assert!(model.type_def("Alarm").is_some()); // the inline payload type
    /// assert!(model.type_def("Nope").is_none());
    /// ```
    pub fn type_def(&self, name: &str) -> Option<&TypeDef> {
        self.types.iter().find(|t| t.name == name)
    }

    /// Looks an event up by its manifest name.
    ///
    /// ```
    /// use eventbus_codegen::Model;
    ///
    /// let model: Model = "version: 1\npackage: demo\nevents:\n  chainSync: { category: chain, payload: { peers: u32 } }\n"
    ///     .parse()
    ///     .unwrap();
    /// assert_eq!(model.event("chainSync").unwrap().payload.as_deref(), Some("ChainSync"));
    /// assert!(model.event("chain_sync").is_none()); // the manifest name, as written
    /// ```
    pub fn event(&self, name: &str) -> Option<&EventDef> {
        self.events.iter().find(|e| e.name == name)
    }

    /// The categories in order of first appearance.
    ///
    /// ```
    /// use eventbus_codegen::Model;
    ///
    /// let model: Model = "version: 1\npackage: demo\nevents:\n  a: { category: chain }\n  b: {}\n  c: { category: chain }\n"
    ///     .parse()
    ///     .unwrap();
    /// assert_eq!(model.categories(), ["chain", "general"]);
    /// ```
    pub fn categories(&self) -> Vec<&str> {
        let mut seen: Vec<&str> = Vec::new();
        for e in &self.events {
            if !seen.contains(&e.category.as_str()) {
                seen.push(&e.category);
            }
        }
        seen
    }

    /// A 64-bit FNV-1a hash of the model, in hex: changes whenever anything a consumer could
    /// observe changes, and is the same for the same manifest whatever toolchain computes it
    /// (it hashes a canonical JSON text of the model, written out field by field, not Rust's
    /// `Debug` output). Keys added to the manifest language later leave it unchanged when
    /// unused.
    ///
    /// ```
    /// use eventbus_codegen::Model;
    ///
    /// let v1: Model = "version: 1\npackage: demo\nevents:\n  ping: { payload: { n: u32 } }\n".parse().unwrap();
    /// let v2: Model = "version: 1\npackage: demo\nevents:\n  ping: { payload: { n: u64 } }\n".parse().unwrap();
    /// assert_eq!(v1.fingerprint().len(), 16);
    /// assert_eq!(v1.fingerprint(), v1.clone().fingerprint());
    /// assert_ne!(v1.fingerprint(), v2.fingerprint());
    /// ```
    pub fn fingerprint(&self) -> String {
        crate::fingerprint::fingerprint(self)
    }
}

/// A named type: a struct of fields or a string enum.
///
/// ```
/// use eventbus_codegen::{Model, TypeKind};
///
/// let source = "version: 1\npackage: demo\ntypes:\n  Peer:\n    description: A node we sync from.\n    fields: { host: string, port: u16 }\nevents:\n  ping: {}\n";
/// let model: Model = source.parse().unwrap();
/// let peer = model.type_def("Peer").unwrap();
/// assert_eq!(peer.description.as_deref(), Some("A node we sync from."));
/// let TypeKind::Struct(fields) = &peer.kind else { panic!("a struct") };
/// assert_eq!(fields.len(), 2);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct TypeDef {
    /// PascalCase name, the same in Rust and TypeScript.
    pub name: String,
    /// The `description` key.
    pub description: Option<String>,
    /// Struct or enum.
    pub kind: TypeKind,
    /// Declared under `types`, or made from an event's inline payload.
    pub origin: TypeOrigin,
}

/// Where a type came from.
///
/// ```
/// use eventbus_codegen::Model;
/// use eventbus_codegen::model::TypeOrigin;
///
/// let source = "version: 1\npackage: demo\ntypes:\n  Peer:\n    fields: { host: string }\nevents:\n  ping: { payload: { n: u32 } }\n";
/// let model: Model = source.parse().unwrap();
/// assert_eq!(model.type_def("Peer").unwrap().origin, TypeOrigin::Declared);
/// assert_eq!(model.type_def("Ping").unwrap().origin, TypeOrigin::InlinePayload("ping".into()));
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeOrigin {
    /// Declared under `types:`.
    Declared,
    /// The inline `payload:` of this event (by manifest name).
    InlinePayload(String),
}

/// The shape of a named type.
///
/// ```
/// use eventbus_codegen::{Model, TypeKind};
///
/// let source = "version: 1\npackage: demo\ntypes:\n  Level:\n    enum: [low, high]\nevents:\n  alarm: { payload: { level: Level, note: string? } }\n";
/// let model: Model = source.parse().unwrap();
/// for t in &model.types {
///     match &t.kind {
///         TypeKind::Struct(fields) => assert_eq!((t.name.as_str(), fields.len()), ("Alarm", 2)),
///         TypeKind::Enum(values) => assert_eq!((t.name.as_str(), values.len()), ("Level", 2)),
///     }
/// }
/// ```
#[derive(Debug, Clone, PartialEq)]
pub enum TypeKind {
    /// An object with named fields.
    Struct(Vec<Field>),
    /// A string enum; values as written in the manifest (the JSON form).
    Enum(Vec<EnumValue>),
}

/// A field of a struct type.
///
/// ```
/// use eventbus_codegen::{Model, TypeKind};
///
/// let source = "version: 1\npackage: demo\nevents:\n  alarm:\n    payload:\n      note: string?\n      level: { type: u8, description: \"1 to 5\" }\n";
/// let model: Model = source.parse().unwrap();
/// let TypeKind::Struct(fields) = &model.type_def("Alarm").unwrap().kind else { panic!("a struct") };
/// assert_eq!((fields[0].name.as_str(), fields[0].optional), ("note", true));
/// assert_eq!((fields[1].ty.to_string(), fields[1].description.as_deref()), ("u8".to_owned(), Some("1 to 5")));
/// assert!(!fields[1].boxed);
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    /// The JSON name, exactly as written in the manifest.
    pub name: String,
    /// Its type.
    pub ty: TypeRef,
    /// `T?`: may be absent (`Option<T>` in Rust, `name?: T` in TypeScript).
    pub optional: bool,
    /// The field's `description`, if the long form `{ type, description }` was used.
    pub description: Option<String>,
    /// Set by validation when this field closes a cycle of types (`parent: Node?`), so Rust
    /// must put it behind a `Box`.
    pub boxed: bool,
}

/// A value of a string enum.
///
/// ```
/// use eventbus_codegen::{Model, TypeKind};
///
/// let source = "version: 1\npackage: demo\ntypes:\n  Status:\n    enum: [in_progress, done]\nevents:\n  ping: {}\n";
/// let model: Model = source.parse().unwrap();
/// let TypeKind::Enum(values) = &model.type_def("Status").unwrap().kind else { panic!("an enum") };
/// let values: Vec<_> = values.iter().map(|v| v.value.as_str()).collect();
/// assert_eq!(values, ["in_progress", "done"]); // the JSON form, as written
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnumValue {
    /// The JSON form, exactly as written.
    pub value: String,
}

/// A type expression.
///
/// ```
/// use eventbus_codegen::{Model, Primitive, TypeKind, TypeRef};
///
/// let source = "version: 1\npackage: demo\nevents:\n  tagged:\n    payload:\n      tags: string[]\n      scores: map<u64>\n";
/// let model: Model = source.parse().unwrap();
/// let TypeKind::Struct(fields) = &model.type_def("Tagged").unwrap().kind else { panic!("a struct") };
/// assert_eq!(fields[0].ty, TypeRef::List(Box::new(TypeRef::Primitive(Primitive::String))));
/// assert_eq!(fields[1].ty.to_string(), "map<u64>");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum TypeRef {
    /// A built-in type.
    Primitive(Primitive),
    /// `T[]`.
    List(Box<TypeRef>),
    /// `map<T>`: an object with string keys.
    Map(Box<TypeRef>),
    /// A type from `types` or an inline payload, by name.
    Named(String),
}

impl TypeRef {
    /// Whether a 64-bit integer occurs anywhere in this expression (such values travel as
    /// JSON strings).
    ///
    /// ```
    /// use eventbus_codegen::{Primitive, TypeRef};
    ///
    /// let ids = TypeRef::List(Box::new(TypeRef::Primitive(Primitive::U64)));
    /// assert!(ids.has_int64()); // sent as `["1", "2"]` in JSON
    /// assert!(!TypeRef::Primitive(Primitive::U32).has_int64());
    /// ```
    pub fn has_int64(&self) -> bool {
        match self {
            TypeRef::Primitive(p) => p.is_int64(),
            TypeRef::List(t) | TypeRef::Map(t) => t.has_int64(),
            TypeRef::Named(_) => false,
        }
    }
}

impl std::fmt::Display for TypeRef {
    /// The manifest spelling: `string`, `u64[]`, `map<PackageEvent>`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TypeRef::Primitive(p) => f.write_str(p.as_str()),
            TypeRef::List(t) => write!(f, "{t}[]"),
            TypeRef::Map(t) => write!(f, "map<{t}>"),
            TypeRef::Named(n) => f.write_str(n),
        }
    }
}

/// The built-in types of the manifest.
///
/// ```
/// use eventbus_codegen::Primitive;
///
/// let p = Primitive::parse("timestamp").unwrap();
/// assert_eq!(p, Primitive::Timestamp);
/// assert_eq!(p.int_range(), Some((-(1 << 53) + 1, (1 << 53) - 1)));
/// assert_eq!(Primitive::ALL.len(), 14);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Primitive {
    /// UTF-8 text.
    String,
    /// true / false.
    Bool,
    /// Signed 8-bit integer.
    I8,
    /// Signed 16-bit integer.
    I16,
    /// Signed 32-bit integer.
    I32,
    /// Signed 64-bit integer; a decimal string in JSON.
    I64,
    /// Unsigned 8-bit integer.
    U8,
    /// Unsigned 16-bit integer.
    U16,
    /// Unsigned 32-bit integer.
    U32,
    /// Unsigned 64-bit integer; a decimal string in JSON.
    U64,
    /// 32-bit float.
    F32,
    /// 64-bit float.
    F64,
    /// Milliseconds since the Unix epoch, a JSON integer within ±(2^53 − 1).
    Timestamp,
    /// Any JSON value.
    Json,
}

impl Primitive {
    /// Every primitive, in documentation order.
    pub const ALL: [Primitive; 14] = [
        Primitive::String,
        Primitive::Bool,
        Primitive::I8,
        Primitive::I16,
        Primitive::I32,
        Primitive::I64,
        Primitive::U8,
        Primitive::U16,
        Primitive::U32,
        Primitive::U64,
        Primitive::F32,
        Primitive::F64,
        Primitive::Timestamp,
        Primitive::Json,
    ];

    /// The manifest spelling.
    ///
    /// ```
    /// use eventbus_codegen::Primitive;
    ///
    /// assert_eq!(Primitive::F64.as_str(), "f64");
    /// assert!(Primitive::ALL.iter().all(|p| Primitive::parse(p.as_str()) == Some(*p)));
    /// ```
    pub fn as_str(self) -> &'static str {
        match self {
            Primitive::String => "string",
            Primitive::Bool => "bool",
            Primitive::I8 => "i8",
            Primitive::I16 => "i16",
            Primitive::I32 => "i32",
            Primitive::I64 => "i64",
            Primitive::U8 => "u8",
            Primitive::U16 => "u16",
            Primitive::U32 => "u32",
            Primitive::U64 => "u64",
            Primitive::F32 => "f32",
            Primitive::F64 => "f64",
            Primitive::Timestamp => "timestamp",
            Primitive::Json => "json",
        }
    }

    /// Parses a manifest spelling.
    ///
    /// ```
    /// use eventbus_codegen::Primitive;
    ///
    /// assert_eq!(Primitive::parse("u64"), Some(Primitive::U64));
    /// assert_eq!(Primitive::parse("String"), None); // case matters
    /// ```
    pub fn parse(s: &str) -> Option<Primitive> {
        Primitive::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// `i64` or `u64`: these travel as JSON strings so no value changes in JavaScript.
    ///
    /// ```
    /// use eventbus_codegen::Primitive;
    ///
    /// assert!(Primitive::I64.is_int64());
    /// assert!(!Primitive::Timestamp.is_int64()); // a plain JSON number
    /// ```
    pub fn is_int64(self) -> bool {
        matches!(self, Primitive::I64 | Primitive::U64)
    }

    /// The inclusive range of an integer primitive (`timestamp` included), or `None`.
    ///
    /// ```
    /// use eventbus_codegen::Primitive;
    ///
    /// assert_eq!(Primitive::U8.int_range(), Some((0, 255)));
    /// assert_eq!(Primitive::F32.int_range(), None);
    /// ```
    pub fn int_range(self) -> Option<(i128, i128)> {
        const SAFE: i128 = (1 << 53) - 1;
        Some(match self {
            Primitive::I8 => (i8::MIN.into(), i8::MAX.into()),
            Primitive::I16 => (i16::MIN.into(), i16::MAX.into()),
            Primitive::I32 => (i32::MIN.into(), i32::MAX.into()),
            Primitive::I64 => (i64::MIN.into(), i64::MAX.into()),
            Primitive::U8 => (0, u8::MAX.into()),
            Primitive::U16 => (0, u16::MAX.into()),
            Primitive::U32 => (0, u32::MAX.into()),
            Primitive::U64 => (0, u64::MAX.into()),
            Primitive::Timestamp => (-SAFE, SAFE),
            _ => return None,
        })
    }
}

/// An event.
///
/// ```
/// use eventbus_codegen::Model;
/// use eventbus_codegen::model::{Scope, UiDirection};
///
/// let source = r#"
/// version: 1
/// package: demo
/// events:
///   packageInstalled:
///     category: packages
///     description: A package was installed.
///     payload: { dnpName: string }
///     persist: true
///     ui: to_ui
///     scope: distributed
///     deprecated: "use packageInstall"
///     example: { dnpName: geth.dnp.dappnode.eth }
/// "#;
/// let model: Model = source.parse().unwrap();
/// let e = model.event("packageInstalled").unwrap();
/// assert_eq!((e.category.as_str(), e.payload.as_deref()), ("packages", Some("PackageInstalled")));
/// assert_eq!((e.persist, e.ui, e.scope), (true, UiDirection::ToUi, Scope::Distributed));
/// assert_eq!(e.deprecated.as_deref(), Some("use packageInstall"));
/// assert_eq!(e.example.as_ref().unwrap()["dnpName"], "geth.dnp.dappnode.eth");
/// assert!(e.policies.is_empty());
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct EventDef {
    /// The manifest name, camelCase (`packageInstall`): the JSON and wire name.
    pub name: String,
    /// Groups docs and the TypeScript namespace (`general` when not given).
    pub category: String,
    /// The `description` key.
    pub description: Option<String>,
    /// The payload type's name (declared, or the inline type named after the event), or `None`.
    pub payload: Option<String>,
    /// Written to the store before dispatch.
    pub persist: bool,
    /// What may cross the browser bridge.
    pub ui: UiDirection,
    /// `local` (the default) or `distributed`: whether the event travels between processes.
    pub scope: Scope,
    /// The deprecation notice (`deprecated: true` gives an empty string).
    pub deprecated: Option<String>,
    /// The example payload in its JSON wire form (64-bit integers as strings), checked
    /// against the payload type.
    pub example: Option<serde_json::Value>,
    /// Delivery policies.
    pub policies: Policies,
}

/// Delivery policies of an event (see [`eventbus_runtime::Policies`] for their meaning).
///
/// ```
/// use eventbus_codegen::Model;
/// use std::time::Duration;
///
/// let source = "version: 1\npackage: demo\nevents:\n  ping:\n    throttle: 500ms\n    retry: 3\n";
/// let model: Model = source.parse().unwrap();
/// let policies = model.event("ping").unwrap().policies;
/// assert_eq!(policies.throttle, Some(Duration::from_millis(500)));
/// assert_eq!(policies.retry.unwrap().attempts, 3);
/// assert!(policies.debounce.is_none());
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Policies {
    /// At most one delivery per interval.
    pub throttle: Option<Duration>,
    /// Deliver after the interval has been quiet.
    pub debounce: Option<Duration>,
    /// A token bucket.
    pub rate_limit: Option<eventbus_runtime::RateLimit>,
    /// Batching.
    pub batch: Option<eventbus_runtime::Batch>,
    /// Retries of failed handlers.
    pub retry: Option<eventbus_runtime::Retry>,
    /// A circuit breaker per handler.
    pub circuit_breaker: Option<eventbus_runtime::CircuitBreakerConfig>,
    /// Calls of each async handler that may run at once.
    pub concurrency: Option<u32>,
    /// Events each async handler holds waiting for a free slot.
    pub queue: Option<u32>,
}

impl Policies {
    /// Whether no policy is set.
    ///
    /// ```
    /// use eventbus_codegen::model::Policies;
    /// use std::time::Duration;
    ///
    /// assert!(Policies::default().is_empty());
    /// assert!(!Policies { throttle: Some(Duration::from_secs(1)), ..Policies::default() }.is_empty());
    /// ```
    pub fn is_empty(&self) -> bool {
        *self == Policies::default()
    }
}
