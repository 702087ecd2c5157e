//! The checked model (IR) of a manifest: what every generator consumes.
//!
//! A [`Model`] only exists for a manifest that passed validation, so generators can rely on
//! its invariants: every named type resolves, names are unique after case conversion, no
//! type contains itself without indirection, examples match their payloads. Spans are gone;
//! everything here is about the meaning, not the text.

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
    pub fn type_def(&self, name: &str) -> Option<&TypeDef> {
        self.types.iter().find(|t| t.name == name)
    }

    /// Looks an event up by its manifest name.
    pub fn event(&self, name: &str) -> Option<&EventDef> {
        self.events.iter().find(|e| e.name == name)
    }

    /// The categories in order of first appearance.
    pub fn categories(&self) -> Vec<&str> {
        let mut seen: Vec<&str> = Vec::new();
        for e in &self.events {
            if !seen.contains(&e.category.as_str()) {
                seen.push(&e.category);
            }
        }
        seen
    }

    /// A stable 64-bit FNV-1a hash of the model, in hex: changes whenever anything a consumer
    /// could observe changes.
    pub fn fingerprint(&self) -> String {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in format!("{self:?}").bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        format!("{hash:016x}")
    }
}

/// A named type: a struct of fields or a string enum.
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TypeOrigin {
    /// Declared under `types:`.
    Declared,
    /// The inline `payload:` of this event (by manifest name).
    InlinePayload(String),
}

/// The shape of a named type.
#[derive(Debug, Clone, PartialEq)]
pub enum TypeKind {
    /// An object with named fields.
    Struct(Vec<Field>),
    /// A string enum; values as written in the manifest (the JSON form).
    Enum(Vec<EnumValue>),
}

/// A field of a struct type.
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
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EnumValue {
    /// The JSON form, exactly as written.
    pub value: String,
}

/// A type expression.
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
    pub fn parse(s: &str) -> Option<Primitive> {
        Primitive::ALL.into_iter().find(|p| p.as_str() == s)
    }

    /// `i64` or `u64`: these travel as JSON strings so no value changes in JavaScript.
    pub fn is_int64(self) -> bool {
        matches!(self, Primitive::I64 | Primitive::U64)
    }

    /// The inclusive range of an integer primitive (`timestamp` included), or `None`.
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
#[derive(Clone, PartialEq)]
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

/// As derived, except that `scope` is left out when it is the default: the model's
/// [`fingerprint`](Model::fingerprint) hashes this text, and a manifest that does not use
/// `scope` keeps the fingerprint it had before the key existed (stored events name it).
impl std::fmt::Debug for EventDef {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = f.debug_struct("EventDef");
        s.field("name", &self.name)
            .field("category", &self.category)
            .field("description", &self.description)
            .field("payload", &self.payload)
            .field("persist", &self.persist)
            .field("ui", &self.ui);
        if self.scope != Scope::Local {
            s.field("scope", &self.scope);
        }
        s.field("deprecated", &self.deprecated)
            .field("example", &self.example)
            .field("policies", &self.policies)
            .finish()
    }
}

/// Delivery policies of an event (see [`eventbus_runtime::Policies`] for their meaning).
#[derive(Clone, Copy, PartialEq, Default)]
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

/// As derived, except that the keys added after the first release (`circuit_breaker`,
/// `concurrency`, `queue`) are left out when unset: the model's
/// [`fingerprint`](Model::fingerprint) hashes this text, and a manifest that does not use them
/// keeps the fingerprint it had before they existed.
impl std::fmt::Debug for Policies {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut s = f.debug_struct("Policies");
        s.field("throttle", &self.throttle)
            .field("debounce", &self.debounce)
            .field("rate_limit", &self.rate_limit)
            .field("batch", &self.batch)
            .field("retry", &self.retry);
        if let Some(breaker) = &self.circuit_breaker {
            s.field("circuit_breaker", breaker);
        }
        if let Some(n) = &self.concurrency {
            s.field("concurrency", n);
        }
        if let Some(n) = &self.queue {
            s.field("queue", n);
        }
        s.finish()
    }
}

impl Policies {
    /// Whether no policy is set.
    pub fn is_empty(&self) -> bool {
        *self == Policies::default()
    }
}
