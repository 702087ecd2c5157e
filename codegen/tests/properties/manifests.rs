//! Random valid manifests: proptest strategies, the YAML they are written as, and random
//! changes to them (for the breaking-change property).
//!
//! A strategy draws a loose [`Spec`] (indexes that may point anywhere, names that may clash),
//! and [`Spec::normalize`] turns it into one the validator must accept: names unique after case
//! conversion, no reserved or clashing type names, payloads that name structs, and no type that
//! contains itself through required fields. Shrinking works on the loose form; normalising is
//! deterministic, so a shrunk case is still a valid manifest.

use std::collections::HashSet;
use std::fmt::Write as _;

use eventbus_codegen::Primitive;
use eventbus_codegen::names;
use proptest::prelude::*;
use proptest::sample::select;

/// A type expression; `Named` is an index into [`Spec::types`] (taken modulo its length).
#[derive(Debug, Clone, PartialEq)]
pub enum Ty {
    Prim(Primitive),
    List(Box<Ty>),
    Map(Box<Ty>),
    Named(usize),
}

#[derive(Debug, Clone, PartialEq)]
pub struct FieldSpec {
    pub name: String,
    pub ty: Ty,
    pub optional: bool,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Body {
    Struct(Vec<FieldSpec>),
    Enum(Vec<String>),
}

#[derive(Debug, Clone, PartialEq)]
pub struct TypeSpec {
    pub name: String,
    pub body: Body,
    pub description: Option<String>,
    /// `Some(event index)`: the inline payload of that event (named after it, written there).
    pub inline_of: Option<usize>,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Payload {
    None,
    /// A declared struct, by type index.
    Named(usize),
    /// The event's inline payload, by type index.
    Inline(usize),
}

#[derive(Debug, Clone, PartialEq)]
pub struct EventSpec {
    pub name: String,
    pub category: String,
    pub payload: Payload,
    pub persist: bool,
    pub ui: &'static str,
    pub scope: &'static str,
    pub deprecated: Option<String>,
    pub throttle: Option<&'static str>,
    pub description: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    pub package: String,
    pub types: Vec<TypeSpec>,
    pub events: Vec<EventSpec>,
}

// ---- names ---------------------------------------------------------------------------------

/// Field names that are keywords in Rust or TypeScript, or names JavaScript objects already
/// have: they must be escaped in Rust (`r#type`, `self_`) and be property names in TypeScript.
const FIELD_NAMES: &[&str] = &[
    "type",
    "self",
    "super",
    "crate",
    "Self",
    "async",
    "await",
    "match",
    "fn",
    "move",
    "impl",
    "ref",
    "box",
    "yield",
    "gen",
    "raw",
    "union",
    "safe",
    "macro_rules",
    "try",
    "dyn",
    "abstract",
    "delete",
    "class",
    "new",
    "default",
    "function",
    "var",
    "let",
    "const",
    "enum",
    "return",
    "constructor",
    "toString",
    "hasOwnProperty",
    "valueOf",
    "prototype",
    "in",
    "of",
    "typeof",
    "instanceof",
    "null",
    "undefined",
    "true",
    "false",
    "void",
    "this",
    "with",
    "Type",
    "SELF",
    "value",
    "id",
    "x",
    "a1",
    "A",
    "v2_b",
    "dnpName",
    "blockHeight",
    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
];

/// Type names that are Rust prelude or std names, TypeScript globals, or names the generated
/// code uses itself (a generated enum `Level` also defines `LevelValues`).
const TYPE_NAMES: &[&str] = &[
    "String",
    "Option",
    "Vec",
    "Box",
    "Result",
    "Some",
    "None",
    "Ok",
    "Err",
    "Default",
    "Clone",
    "Debug",
    "Serialize",
    "Deserialize",
    "Formatter",
    "Record",
    "Array",
    "Object",
    "Number",
    "Boolean",
    "Date",
    "Map",
    "Set",
    "Promise",
    "Symbol",
    "Function",
    "Error",
    "Partial",
    "Readonly",
    "Json",
    "Timestamp",
    "Event",
    "Signal",
    "BusCore",
    "MANIFEST",
    "EVENTS",
    "T",
    "Level",
    "LevelValues",
    "Kind",
    "KindValues",
    "Values",
    "PackageEvent",
    "A",
];

/// Event names that are keywords or names of the generated `EventBus` and of JavaScript.
const EVENT_NAMES: &[&str] = &[
    "type",
    "match",
    "async",
    "self",
    "super",
    "crate",
    "fn",
    "new",
    "delete",
    "class",
    "default",
    "constructor",
    "toString",
    "hasOwnProperty",
    "valueOf",
    "prototype",
    "core",
    "emit",
    "on",
    "builder",
    "withCore",
    "clone",
    "ping",
    "packageInstall",
    "chainSync",
    "x",
];

const ENUM_VALUES: &[&str] = &[
    "a",
    "b",
    "info",
    "self",
    "Self",
    "type",
    "null",
    "true",
    "false",
    "1",
    "2fa",
    "0.5",
    "config-change",
    "high.v2",
    "active_ongoing",
    "constructor",
    "toString",
    "None",
    "Some",
    "A",
    "x-y-z",
    "1e3",
    "0x10",
    "V1",
];

const CATEGORIES: &[&str] = &[
    "general",
    "chain",
    "package",
    "constructor",
    "to-string",
    "a_1",
];

fn chars(first: &'static str, rest: &'static str, max: usize) -> impl Strategy<Value = String> {
    let first: Vec<char> = first.chars().collect();
    let rest: Vec<char> = rest.chars().collect();
    (
        select(first),
        proptest::collection::vec(select(rest), 0..max),
    )
        .prop_map(|(f, r)| std::iter::once(f).chain(r).collect())
}

const LOWER: &str = "abcdefghijklmnopqrstuvwxyz";
const UPPER: &str = "ABCDEFGHIJKLMNOPQRSTUVWXYZ";
const ALNUM: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
const ALNUM_: &str = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_";

fn pool_or(pool: &'static [&'static str], other: BoxedStrategy<String>) -> BoxedStrategy<String> {
    prop_oneof![
        1 => select(pool).prop_map(str::to_owned),
        1 => other,
    ]
    .boxed()
}

fn field_name() -> BoxedStrategy<String> {
    pool_or(FIELD_NAMES, chars("abcxyzABQ", ALNUM_, 10).boxed())
}

fn type_name() -> BoxedStrategy<String> {
    pool_or(TYPE_NAMES, chars(UPPER, ALNUM, 8).boxed())
}

fn event_name() -> BoxedStrategy<String> {
    pool_or(EVENT_NAMES, chars(LOWER, ALNUM, 10).boxed())
}

fn enum_value() -> BoxedStrategy<String> {
    pool_or(ENUM_VALUES, chars(ALNUM, "abcXYZ019_.-", 8).boxed())
}

fn description() -> impl Strategy<Value = Option<String>> {
    proptest::option::weighted(
        0.2,
        select(
            &[
                "A plain description.",
                "Ends a comment */ and opens one /* with `backticks` and ${x}",
                "Quotes \" ' \\ and </script> | pipes |",
                "Line one.\n\n# not a heading\n```\nlet x = 1 +\n```",
            ][..],
        )
        .prop_map(str::to_owned),
    )
}

// ---- strategies ----------------------------------------------------------------------------

pub fn primitive() -> impl Strategy<Value = Primitive> {
    select(Primitive::ALL.to_vec())
}

pub fn ty() -> BoxedStrategy<Ty> {
    let leaf = prop_oneof![
        3 => primitive().prop_map(Ty::Prim),
        2 => any::<usize>().prop_map(Ty::Named),
    ];
    leaf.prop_recursive(3, 8, 1, |inner| {
        prop_oneof![
            inner.clone().prop_map(|t| Ty::List(Box::new(t))),
            inner.prop_map(|t| Ty::Map(Box::new(t))),
        ]
    })
    .boxed()
}

pub fn field() -> BoxedStrategy<FieldSpec> {
    (
        field_name(),
        ty(),
        proptest::bool::weighted(0.35),
        description(),
    )
        .prop_map(|(name, ty, optional, description)| FieldSpec {
            name,
            ty,
            optional,
            description,
        })
        .boxed()
}

fn body() -> impl Strategy<Value = Body> {
    prop_oneof![
        3 => proptest::collection::vec(field(), 0..6).prop_map(Body::Struct),
        1 => proptest::collection::vec(enum_value(), 1..5).prop_map(Body::Enum),
    ]
}

fn declared_type() -> impl Strategy<Value = TypeSpec> {
    (type_name(), body(), description()).prop_map(|(name, body, description)| TypeSpec {
        name,
        body,
        description,
        inline_of: None,
    })
}

/// An event before normalising, with the fields of its inline payload (if it gets one).
#[derive(Debug, Clone)]
pub struct RawEvent {
    event: EventSpec,
    /// 0: none, 1: named, 2: inline.
    payload_kind: u8,
    named: usize,
    inline: Vec<FieldSpec>,
}

fn event() -> impl Strategy<Value = RawEvent> {
    (
        (event_name(), select(CATEGORIES), description()),
        (
            0u8..3,
            any::<usize>(),
            proptest::collection::vec(field(), 0..6),
        ),
        (
            any::<bool>(),
            select(&["none", "to_ui", "from_ui", "both"][..]),
            select(&["local", "distributed"][..]),
            proptest::option::weighted(0.15, select(&["", "use something else"][..])),
            proptest::option::weighted(0.1, select(&["500ms", "1s", "1m30s"][..])),
        ),
    )
        .prop_map(
            |(
                (name, category, description),
                (payload_kind, named, inline),
                (persist, ui, scope, deprecated, throttle),
            )| RawEvent {
                event: EventSpec {
                    name,
                    category: category.to_owned(),
                    payload: Payload::None,
                    persist,
                    ui,
                    scope,
                    deprecated: deprecated.map(str::to_owned),
                    throttle,
                    description,
                },
                payload_kind,
                named,
                inline,
            },
        )
}

fn package() -> impl Strategy<Value = String> {
    pool_or(
        &["demo", "dappnode", "a", "my-app_2"],
        chars(LOWER, "abcxyz019_-", 12).boxed(),
    )
}

/// A random valid manifest.
pub fn spec() -> impl Strategy<Value = Spec> {
    (
        package(),
        proptest::collection::vec(declared_type(), 0..7),
        proptest::collection::vec(event(), 1..6),
    )
        .prop_map(|(package, types, raw_events)| {
            let mut spec = Spec {
                package,
                types,
                events: Vec::new(),
            };
            for raw in raw_events {
                let mut e = raw.event;
                e.payload = match raw.payload_kind {
                    0 => Payload::None,
                    1 => Payload::Named(raw.named),
                    _ => {
                        spec.types.push(TypeSpec {
                            name: String::new(), // named after the event by `normalize`
                            body: Body::Struct(raw.inline),
                            description: None,
                            inline_of: Some(spec.events.len()),
                        });
                        Payload::Inline(spec.types.len() - 1)
                    }
                };
                spec.events.push(e);
            }
            spec.normalize();
            spec
        })
}

// ---- normalising -------------------------------------------------------------------------------

impl Spec {
    /// Makes the spec valid (see the module documentation). Idempotent.
    pub fn normalize(&mut self) {
        // Events: unique snake_case names.
        let mut snakes = HashSet::new();
        let mut keep_event = Vec::new();
        for e in &self.events {
            keep_event.push(snakes.insert(names::snake(&e.name)));
        }
        // Drop duplicate events, and the inline types that belonged to them.
        let mut event_map = Vec::new(); // old event index -> new
        let mut events = Vec::new();
        for (i, e) in self.events.drain(..).enumerate() {
            if keep_event[i] {
                event_map.push(Some(events.len()));
                events.push(e);
            } else {
                event_map.push(None);
            }
        }
        self.events = events;
        for t in &mut self.types {
            if let Some(owner) = t.inline_of {
                t.inline_of = event_map.get(owner).copied().flatten();
                if t.inline_of.is_none() {
                    // Its event is gone: keep it as a declared type with a fresh name.
                    t.name = format!("Orphan{}", t.name);
                }
            }
        }
        // Inline types are named after their event.
        for t in &mut self.types {
            if let Some(owner) = t.inline_of {
                t.name = names::inline_type_name(&self.events[owner].name);
            }
        }
        // Type names: unique, not reserved; inline names win over declared ones (an inline name
        // that is reserved or taken turns its event's payload into a declared-type one later).
        let mut taken: HashSet<String> = HashSet::new();
        let mut ok_inline = vec![false; self.types.len()];
        for (i, t) in self.types.iter().enumerate() {
            if t.inline_of.is_some()
                && !names::is_reserved_type_name(&t.name)
                && taken.insert(t.name.clone())
            {
                ok_inline[i] = true;
            }
        }
        for (i, t) in self.types.iter_mut().enumerate() {
            if t.inline_of.is_some() && ok_inline[i] {
                continue;
            }
            t.inline_of = None;
            let mut name = if is_pascal(&t.name) {
                t.name.clone()
            } else {
                "T".to_owned()
            };
            let mut n = 1;
            while names::is_reserved_type_name(&name) || taken.contains(&name) {
                name = format!(
                    "{}{n}",
                    t.name
                        .chars()
                        .filter(char::is_ascii_alphanumeric)
                        .collect::<String>()
                );
                if !is_pascal(&name) {
                    name = format!("T{n}");
                }
                n += 1;
            }
            taken.insert(name.clone());
            t.name = name;
        }
        let count = self.types.len();
        let is_struct: Vec<bool> = self
            .types
            .iter()
            .map(|t| matches!(t.body, Body::Struct(_)))
            .collect();
        // Fields and enum values: unique after case conversion; references resolved; no type
        // contains itself through required fields (a required field may name a struct only if
        // it comes earlier in the list).
        for (i, t) in self.types.iter_mut().enumerate() {
            match &mut t.body {
                Body::Struct(fields) => {
                    let mut seen = HashSet::new();
                    fields.retain(|f| seen.insert(names::snake(&f.name)));
                    for f in fields.iter_mut() {
                        resolve(&mut f.ty, count);
                        if let Ty::Named(j) = f.ty
                            && is_struct[j]
                            && j >= i
                        {
                            f.optional = true;
                        }
                    }
                }
                Body::Enum(values) => {
                    let mut seen = HashSet::new();
                    values.retain(|v| seen.insert(names::variant_name(v)));
                    if values.is_empty() {
                        values.push("a".to_owned());
                    }
                }
            }
        }
        // Payloads: a named payload is a declared struct; an inline one is this event's.
        let structs: Vec<usize> = (0..count)
            .filter(|&j| is_struct[j] && self.types[j].inline_of.is_none())
            .collect();
        for (k, e) in self.events.iter_mut().enumerate() {
            let inline = self.types.iter().position(|t| t.inline_of == Some(k));
            e.payload = match (&e.payload, inline) {
                (_, Some(j)) => Payload::Inline(j),
                (Payload::Inline(j) | Payload::Named(j), None) if structs.contains(j) => {
                    Payload::Named(*j)
                }
                (Payload::Inline(j) | Payload::Named(j), None) if !structs.is_empty() => {
                    Payload::Named(structs[*j % structs.len()])
                }
                _ => Payload::None,
            };
        }
    }

    /// The manifest text: block YAML, every name and type double-quoted.
    pub fn yaml(&self) -> String {
        let q = |s: &str| serde_json::to_string(s).unwrap();
        let mut out = format!("version: 1\npackage: {}\n", q(&self.package));
        let fields = |out: &mut String, fields: &[FieldSpec], indent: &str| {
            if fields.is_empty() {
                out.push_str(" {}\n");
                return;
            }
            out.push('\n');
            for f in fields {
                let ty = format!(
                    "{}{}",
                    self.ty_text(&f.ty),
                    if f.optional { "?" } else { "" }
                );
                match &f.description {
                    None => {
                        let _ = writeln!(out, "{indent}{}: {}", q(&f.name), q(&ty));
                    }
                    Some(d) => {
                        let _ = writeln!(
                            out,
                            "{indent}{}: {{ type: {}, description: {} }}",
                            q(&f.name),
                            q(&ty),
                            q(d)
                        );
                    }
                }
            }
        };
        let declared: Vec<&TypeSpec> = self
            .types
            .iter()
            .filter(|t| t.inline_of.is_none())
            .collect();
        if !declared.is_empty() {
            out.push_str("types:\n");
            for t in declared {
                let _ = writeln!(out, "  {}:", q(&t.name));
                if let Some(d) = &t.description {
                    let _ = writeln!(out, "    description: {}", q(d));
                }
                match &t.body {
                    Body::Struct(f) => {
                        out.push_str("    fields:");
                        fields(&mut out, f, "      ");
                    }
                    Body::Enum(values) => {
                        let values: Vec<String> = values.iter().map(|v| q(v)).collect();
                        let _ = writeln!(out, "    enum: [{}]", values.join(", "));
                    }
                }
            }
        }
        out.push_str("events:\n");
        for e in &self.events {
            let _ = writeln!(out, "  {}:", q(&e.name));
            let _ = writeln!(out, "    category: {}", q(&e.category));
            if let Some(d) = &e.description {
                let _ = writeln!(out, "    description: {}", q(d));
            }
            match &e.payload {
                Payload::None => {}
                Payload::Named(j) => {
                    let _ = writeln!(out, "    payload: {}", q(&self.types[*j].name));
                }
                Payload::Inline(j) => {
                    out.push_str("    payload:");
                    let Body::Struct(f) = &self.types[*j].body else {
                        unreachable!("inline payloads are structs")
                    };
                    fields(&mut out, f, "      ");
                }
            }
            if e.persist {
                out.push_str("    persist: true\n");
            }
            let _ = writeln!(out, "    ui: {}\n    scope: {}", e.ui, e.scope);
            match e.deprecated.as_deref() {
                None => {}
                Some("") => out.push_str("    deprecated: true\n"),
                Some(note) => {
                    let _ = writeln!(out, "    deprecated: {}", q(note));
                }
            }
            if let Some(t) = e.throttle {
                let _ = writeln!(out, "    throttle: {t}");
            }
        }
        out
    }

    fn ty_text(&self, ty: &Ty) -> String {
        match ty {
            Ty::Prim(p) => p.as_str().to_owned(),
            Ty::List(t) => format!("{}[]", self.ty_text(t)),
            Ty::Map(t) => format!("map<{}>", self.ty_text(t)),
            Ty::Named(j) => self.types[*j].name.clone(),
        }
    }
}

fn is_pascal(s: &str) -> bool {
    s.starts_with(|c: char| c.is_ascii_uppercase()) && s.chars().all(|c| c.is_ascii_alphanumeric())
}

fn resolve(ty: &mut Ty, count: usize) {
    match ty {
        Ty::Prim(_) => {}
        Ty::List(t) | Ty::Map(t) => resolve(t, count),
        Ty::Named(j) => {
            if count == 0 {
                *ty = Ty::Prim(Primitive::String);
            } else {
                *j %= count;
            }
        }
    }
}

// ---- changes -----------------------------------------------------------------------------------

/// A change to a manifest; indexes are taken modulo the number of candidates.
#[derive(Debug, Clone)]
pub enum Change {
    AddOptionalField(usize, FieldSpec),
    AddRequiredField(usize, FieldSpec),
    RemoveField(usize, usize),
    ToggleOptional(usize, usize),
    RetypeField(usize, usize, Ty),
    AddEvent(String, usize),
    RemoveEvent(usize),
    AddEnumValue(usize, String),
    RemoveEnumValue(usize, usize),
    SetUi(usize, &'static str),
    SetScope(usize, &'static str),
    TogglePersist(usize),
    Deprecate(usize),
    Describe(usize),
}

/// One random change of every kind, in a fixed order of kinds: a run tries them starting at a
/// different kind for each manifest, so that a few manifests already cover every kind.
pub fn changes() -> impl Strategy<Value = Vec<Change>> {
    let i = || any::<usize>();
    let fields = (
        (i(), field()).prop_map(|(t, f)| Change::AddOptionalField(t, f)),
        (i(), field()).prop_map(|(t, f)| Change::AddRequiredField(t, f)),
        (i(), i()).prop_map(|(t, f)| Change::RemoveField(t, f)),
        (i(), i()).prop_map(|(t, f)| Change::ToggleOptional(t, f)),
        (i(), i(), ty()).prop_map(|(t, f, ty)| Change::RetypeField(t, f, ty)),
        (i(), enum_value()).prop_map(|(t, v)| Change::AddEnumValue(t, v)),
        (i(), i()).prop_map(|(t, v)| Change::RemoveEnumValue(t, v)),
    );
    let events = (
        (event_name(), i()).prop_map(|(n, p)| Change::AddEvent(n, p)),
        i().prop_map(Change::RemoveEvent),
        (i(), select(&["none", "to_ui", "from_ui", "both"][..]))
            .prop_map(|(e, u)| Change::SetUi(e, u)),
        (i(), select(&["local", "distributed"][..])).prop_map(|(e, s)| Change::SetScope(e, s)),
        i().prop_map(Change::TogglePersist),
        i().prop_map(Change::Deprecate),
        i().prop_map(Change::Describe),
    );
    (fields, events).prop_map(|((a, b, c, d, e, f, g), (h, i, j, k, l, m, n))| {
        // The two changes whose breakage must show on the wire come first (the default run
        // of 16 manifests tries them twice), then field and event changes alternate.
        vec![b, d, a, h, c, i, e, j, f, k, g, l, m, n]
    })
}

impl Spec {
    /// The spec after `change` (normalised, so still valid); `None` when the change does not
    /// apply (no struct to add a field to, ...).
    pub fn apply(&self, change: &Change) -> Option<Spec> {
        let mut s = self.clone();
        let structs: Vec<usize> = (0..s.types.len())
            .filter(|&j| matches!(s.types[j].body, Body::Struct(_)))
            .collect();
        let enums: Vec<usize> = (0..s.types.len())
            .filter(|&j| matches!(s.types[j].body, Body::Enum(_)))
            .collect();
        let pick = |v: &[usize], i: usize| (!v.is_empty()).then(|| v[i % v.len()]);
        // Two field changes in three hit a payload type itself, where the wire shows them.
        let payloads: Vec<usize> = s
            .events
            .iter()
            .filter_map(|e| match e.payload {
                Payload::Named(j) | Payload::Inline(j) => Some(j),
                Payload::None => None,
            })
            .collect();
        let pick_struct = |i: usize| match i % 3 {
            0 => pick(&structs, i / 3),
            _ => pick(&payloads, i / 3).or_else(|| pick(&structs, i / 3)),
        };
        let n_events = s.events.len();
        match change {
            Change::AddOptionalField(t, f) | Change::AddRequiredField(t, f) => {
                let t = pick_struct(*t)?;
                let mut f = f.clone();
                f.optional = matches!(change, Change::AddOptionalField(..));
                let Body::Struct(fields) = &mut s.types[t].body else {
                    return None;
                };
                if fields
                    .iter()
                    .any(|g| names::snake(&g.name) == names::snake(&f.name))
                {
                    return None;
                }
                fields.push(f);
            }
            Change::RemoveField(t, i)
            | Change::ToggleOptional(t, i)
            | Change::RetypeField(t, i, _) => {
                let t = pick_struct(*t)?;
                let Body::Struct(fields) = &mut s.types[t].body else {
                    return None;
                };
                if fields.is_empty() {
                    return None;
                }
                let i = i % fields.len();
                match change {
                    Change::RemoveField(..) => {
                        fields.remove(i);
                    }
                    Change::ToggleOptional(..) => fields[i].optional = !fields[i].optional,
                    Change::RetypeField(_, _, ty) => fields[i].ty = ty.clone(),
                    _ => unreachable!(),
                }
            }
            Change::AddEvent(name, p) => {
                if s.events
                    .iter()
                    .any(|e| names::snake(&e.name) == names::snake(name))
                {
                    return None;
                }
                let payload = match pick(&structs, *p) {
                    Some(j) if s.types[j].inline_of.is_none() && p % 3 != 0 => Payload::Named(j),
                    _ => Payload::None,
                };
                s.events.push(EventSpec {
                    name: name.clone(),
                    category: "general".to_owned(),
                    payload,
                    persist: false,
                    ui: "none",
                    scope: "local",
                    deprecated: None,
                    throttle: None,
                    description: None,
                });
            }
            Change::RemoveEvent(e) => {
                if n_events < 2 {
                    return None;
                }
                let e = e % n_events;
                s.events.remove(e);
                for t in &mut s.types {
                    match t.inline_of {
                        Some(k) if k == e => {
                            // Its inline type stays, declared under the same name.
                            t.inline_of = None;
                        }
                        Some(k) if k > e => t.inline_of = Some(k - 1),
                        _ => {}
                    }
                }
            }
            Change::AddEnumValue(t, v) => {
                let t = pick(&enums, *t)?;
                let Body::Enum(values) = &mut s.types[t].body else {
                    return None;
                };
                if values
                    .iter()
                    .any(|w| names::variant_name(w) == names::variant_name(v))
                {
                    return None;
                }
                values.push(v.clone());
            }
            Change::RemoveEnumValue(t, i) => {
                let t = pick(&enums, *t)?;
                let Body::Enum(values) = &mut s.types[t].body else {
                    return None;
                };
                if values.len() < 2 {
                    return None;
                }
                let i = i % values.len();
                values.remove(i);
            }
            Change::SetUi(e, ui) => s.events[e % n_events].ui = ui,
            Change::SetScope(e, scope) => s.events[e % n_events].scope = scope,
            Change::TogglePersist(e) => {
                let e = &mut s.events[e % n_events];
                e.persist = !e.persist;
            }
            Change::Deprecate(e) => s.events[e % n_events].deprecated = Some("gone soon".into()),
            Change::Describe(e) => {
                s.events[e % n_events].description = Some("A new description.".into())
            }
        }
        s.normalize();
        (s != *self).then_some(s)
    }
}
