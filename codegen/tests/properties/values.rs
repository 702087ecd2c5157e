//! Random JSON values of a checked model's types, the exact text Rust must write back for each
//! (the wire's canonical form), and near-miss mutants of them.
//!
//! The canonical form (docs/typescript.md, codegen/src/rust.rs):
//! - struct fields in manifest order, absent optional fields left out, unknown keys dropped;
//!   `null` for an optional field is an error, except for `json?` where it is the value `null`;
//! - `i64`/`u64` always as decimal strings (read from a string or a safe JSON integer);
//! - `f64` as Rust's shortest round-trip text of the number (`3` is written `3.0`); `f32` the
//!   same of the number rounded to the nearest `f32` (one beyond ±3.4028235e38 is refused);
//! - maps with their keys in byte order (`BTreeMap`), `json` values as serde_json writes them.

use eventbus_codegen::{Model, Primitive, TypeKind, TypeRef};
use serde_json::{Value, json};

pub const SAFE: i64 = (1 << 53) - 1;

/// xorshift64*, seeded from proptest: values are a pure function of (model, seed).
pub struct Rng(pub u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed | 1)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    pub fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
    fn range(&mut self, min: i128, max: i128) -> i128 {
        // Boundaries half of the time.
        match self.below(8) {
            0 => min,
            1 => max,
            2 => 0.clamp(min, max),
            3 => (-1i128).clamp(min, max),
            _ => {
                let span = (max - min) as u128 + 1;
                let r = (u128::from(self.next()) << 64 | u128::from(self.next())) % span;
                min + r as i128
            }
        }
    }
}

/// The expected output, as a tree rendered to text at the end.
#[derive(Debug, Clone)]
pub enum Canon {
    Raw(String),
    Array(Vec<Canon>),
    Object(Vec<(String, Canon)>),
}

impl Canon {
    pub fn text(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }
    fn write(&self, out: &mut String) {
        match self {
            Canon::Raw(s) => out.push_str(s),
            Canon::Array(items) => {
                out.push('[');
                for (i, c) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    c.write(out);
                }
                out.push(']');
            }
            Canon::Object(entries) => {
                out.push('{');
                for (i, (k, c)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    out.push_str(&serde_json::to_string(k).unwrap());
                    out.push(':');
                    c.write(out);
                }
                out.push('}');
            }
        }
    }
}

fn raw<T: serde::Serialize + ?Sized>(v: &T) -> Canon {
    Canon::Raw(serde_json::to_string(v).unwrap())
}

/// Strings and keys that have tripped JSON layers before.
const STRINGS: &[&str] = &[
    "",
    "plain",
    "héllo wörld",
    "😀 emoji 👍🏽",
    "日本語",
    "quote \" backslash \\ slash /",
    "line\nbreak\ttab\r",
    "\u{2028}\u{2029}",
    "nul \u{0} char \u{1f}",
    "\u{FFFF}\u{10FFFF}",
    "</script><!--",
    "__proto__",
    "constructor",
    "${x}`*/",
];

/// A lone surrogate cannot live in a Rust string: this marker is swapped for `\ud800` in the
/// JSON text (see [`text`]).
pub const LONE: &str = "\u{E000}lone\u{E000}";
/// Swapped for the number `1e400` (beyond f64) in the JSON text.
pub const HUGE: &str = "\u{E000}huge\u{E000}";

/// The JSON text of a value, with the markers replaced.
pub fn text(v: &Value) -> String {
    serde_json::to_string(v)
        .unwrap()
        .replace(LONE, "\\ud800")
        .replace(&format!("\"{HUGE}\""), "1e400")
}

fn random_string(rng: &mut Rng) -> String {
    if rng.chance(60) {
        return (*rng.pick(STRINGS)).to_owned();
    }
    let pool = [
        'a', 'Z', '0', ' ', 'é', '😀', '"', '\\', '\n', '\u{7f}', '\u{2028}', '日',
    ];
    (0..rng.below(12)).map(|_| *rng.pick(&pool)).collect()
}

/// A finite f64, and the JSON the producer sends for it.
fn random_f64(rng: &mut Rng) -> f64 {
    loop {
        let x = match rng.below(6) {
            0 => f64::from_bits(rng.next()),
            1 => (rng.next() % 2_000_001) as f64 / 1000.0 - 1000.0,
            2 => *rng.pick(&[
                0.0,
                -0.0,
                0.1,
                -1.5,
                1e300,
                -1e-300,
                5e-324,
                f64::MAX,
                f64::MIN_POSITIVE,
            ]),
            3 => f64::from_bits(rng.next()) % 1e6,
            _ => (rng.next() as f64) / (rng.next() as f64 + 1.0),
        };
        if x.is_finite() {
            return x;
        }
    }
}

fn random_json(rng: &mut Rng, depth: usize) -> Value {
    let kinds = if depth >= 3 { 5 } else { 7 };
    match rng.below(kinds) {
        0 => Value::Null,
        1 => json!(rng.chance(50)),
        2 => match rng.below(4) {
            0 => json!(rng.next()),
            1 => json!(-(rng.next() as i64).abs()),
            2 => json!(rng.range(-SAFE as i128, SAFE as i128) as i64),
            _ => json!(random_f64(rng)),
        },
        3 | 4 => json!(random_string(rng)),
        5 => Value::Array(
            (0..rng.below(4))
                .map(|_| random_json(rng, depth + 1))
                .collect(),
        ),
        _ => Value::Object(
            (0..rng.below(4))
                .map(|_| (random_string(rng), random_json(rng, depth + 1)))
                .collect(),
        ),
    }
}

/// Which optional fields a value carries.
#[derive(Clone, Copy, PartialEq)]
pub enum Optionals {
    All,
    None,
    Random,
}

const MAX_DEPTH: usize = 4;

pub struct Generator<'a> {
    pub model: &'a Model,
    pub rng: Rng,
}

impl Generator<'_> {
    /// A valid value of `ty` (the JSON a producer may send) and what Rust must write back.
    pub fn value(&mut self, ty: &TypeRef, depth: usize, optionals: Optionals) -> (Value, Canon) {
        match ty {
            TypeRef::Primitive(p) => self.primitive(*p),
            TypeRef::List(t) => {
                let n = if depth >= MAX_DEPTH {
                    0
                } else {
                    self.rng.below(4)
                };
                let (values, canon) = (0..n).map(|_| self.value(t, depth + 1, optionals)).unzip();
                (Value::Array(values), Canon::Array(canon))
            }
            TypeRef::Map(t) => {
                let n = if depth >= MAX_DEPTH {
                    0
                } else {
                    self.rng.below(4)
                };
                let mut entries: Vec<(String, Value, Canon)> = Vec::new();
                for _ in 0..n {
                    let key = random_string(&mut self.rng);
                    if entries.iter().any(|(k, _, _)| *k == key) {
                        continue;
                    }
                    let (v, c) = self.value(t, depth + 1, optionals);
                    entries.push((key, v, c));
                }
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                let value = Value::Object(
                    entries
                        .iter()
                        .map(|(k, v, _)| (k.clone(), v.clone()))
                        .collect(),
                );
                let canon = Canon::Object(entries.into_iter().map(|(k, _, c)| (k, c)).collect());
                (value, canon)
            }
            TypeRef::Named(name) => self.named(name, depth, optionals),
        }
    }

    pub fn named(&mut self, name: &str, depth: usize, optionals: Optionals) -> (Value, Canon) {
        let t = self.model.type_def(name).expect("a checked model");
        match &t.kind {
            TypeKind::Enum(values) => {
                let v = &self.rng.pick(values).value;
                (json!(v), raw(v))
            }
            TypeKind::Struct(fields) => {
                let mut object = serde_json::Map::new();
                let mut canon = Vec::new();
                for f in fields {
                    let present = !f.optional
                        || depth < MAX_DEPTH
                            && match optionals {
                                Optionals::All => true,
                                Optionals::None => false,
                                Optionals::Random => self.rng.chance(50),
                            };
                    if !present {
                        continue;
                    }
                    if f.optional
                        && f.ty == TypeRef::Primitive(Primitive::Json)
                        && self.rng.chance(25)
                    {
                        // `json?`: `null` is a value, written back.
                        object.insert(f.name.clone(), Value::Null);
                        canon.push((f.name.clone(), Canon::Raw("null".into())));
                        continue;
                    }
                    let (v, c) = self.value(&f.ty, depth + 1, optionals);
                    object.insert(f.name.clone(), v);
                    canon.push((f.name.clone(), c));
                }
                if self.rng.chance(20) {
                    // Unknown keys are ignored (and not written back).
                    let key = format!("unknown{}", self.rng.below(100));
                    if !fields.iter().any(|f| f.name == key) {
                        object.insert(key, random_json(&mut self.rng, 2));
                    }
                }
                (Value::Object(object), Canon::Object(canon))
            }
        }
    }

    fn primitive(&mut self, p: Primitive) -> (Value, Canon) {
        let rng = &mut self.rng;
        match p {
            Primitive::String => {
                let s = random_string(rng);
                (json!(s), raw(&s))
            }
            Primitive::Bool => {
                let b = rng.chance(50);
                (json!(b), raw(&b))
            }
            Primitive::I64 | Primitive::U64 => {
                let (min, max) = p.int_range().unwrap();
                let n = match rng.below(4) {
                    0 => rng
                        .range(-SAFE as i128 - 2, SAFE as i128 + 2)
                        .clamp(min, max),
                    _ => rng.range(min, max),
                };
                let canon = Canon::Raw(format!("\"{n}\""));
                // A safe integer may also come as a JSON number.
                if n.abs() <= SAFE as i128 && rng.chance(40) {
                    (json!(n as i64), canon)
                } else {
                    (json!(n.to_string()), canon)
                }
            }
            Primitive::F64 => {
                if rng.chance(20) {
                    // An integer: read as a float, written back with `.0`.
                    let n = rng.range(-(1 << 60), 1 << 60) as i64;
                    return (json!(n), raw(&(n as f64)));
                }
                let x = random_f64(rng);
                (json!(x), raw(&x))
            }
            Primitive::F32 => {
                // Any number within f32's range; read rounded to f32.
                let x = loop {
                    let x = match rng.below(3) {
                        0 => f64::from(f32::from_bits(rng.next() as u32)),
                        1 => random_f64(rng),
                        _ => (rng.next() % 20001) as f64 / 100.0 - 100.0,
                    };
                    if x.is_finite() && x.abs() <= f64::from(f32::MAX) {
                        break x;
                    }
                };
                // serde rounds the decimal text to the nearest f32 (not the f64 it denotes).
                let f: f32 = serde_json::to_string(&x).unwrap().parse().unwrap();
                (json!(x), raw(&f))
            }
            Primitive::Json => {
                let v = random_json(rng, 0);
                let canon = raw(&v);
                (v, canon)
            }
            _ => {
                let (min, max) = p.int_range().expect("an integer type");
                let n = rng.range(min, max) as i64;
                (json!(n), raw(&n))
            }
        }
    }
}

// ---- mutants -------------------------------------------------------------------------------

/// What both sides must decide about a value.
#[derive(Debug, Clone, PartialEq)]
pub enum Expect {
    /// Accepted, and written back exactly as this text.
    Exact(String),
    /// Accepted (what is written back is not predicted).
    Accept,
    /// Rejected.
    Reject,
    /// Either, as long as Rust and the guards agree.
    Either,
}

#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

/// A place in a value and the type expected there.
#[derive(Debug, Clone)]
struct Slot {
    path: Vec<Seg>,
    ty: TypeRef,
    /// The slot is a struct field: (optional, present).
    field: Option<(bool, bool)>,
    /// Containers around the slot (serde_json counts nesting from the root).
    depth: usize,
}

fn slots(
    model: &Model,
    ty: &TypeRef,
    value: &Value,
    path: Vec<Seg>,
    depth: usize,
    out: &mut Vec<Slot>,
) {
    // One slot per element of a list or map, then the slots inside it.
    let mut elements = |t: &TypeRef, elements: &mut dyn Iterator<Item = (Seg, &Value)>| {
        for (seg, v) in elements {
            let mut p = path.clone();
            p.push(seg);
            out.push(Slot {
                path: p.clone(),
                ty: t.clone(),
                field: None,
                depth: depth + 1,
            });
            slots(model, t, v, p, depth + 1, out);
        }
    };
    match (ty, value) {
        (TypeRef::List(t), Value::Array(items)) => elements(
            t,
            &mut items.iter().enumerate().map(|(i, v)| (Seg::Index(i), v)),
        ),
        (TypeRef::Map(t), Value::Object(entries)) => elements(
            t,
            &mut entries.iter().map(|(k, v)| (Seg::Key(k.clone()), v)),
        ),
        (TypeRef::Named(name), Value::Object(object)) => {
            if let TypeKind::Struct(fields) = &model.type_def(name).unwrap().kind {
                for f in fields {
                    let mut p = path.clone();
                    p.push(Seg::Key(f.name.clone()));
                    let v = object.get(&f.name);
                    out.push(Slot {
                        path: p.clone(),
                        ty: f.ty.clone(),
                        field: Some((f.optional, v.is_some())),
                        depth: depth + 1,
                    });
                    if let Some(v) = v {
                        slots(model, &f.ty, v, p, depth + 1, out);
                    }
                }
            }
        }
        _ => {}
    }
}

/// The parent container of a path and the last segment.
fn parent<'v>(root: &'v mut Value, path: &[Seg]) -> (&'v mut Value, Seg) {
    let (last, init) = path.split_last().expect("not the root");
    let mut v = root;
    for seg in init {
        v = match seg {
            Seg::Key(k) => v.get_mut(k.as_str()).unwrap(),
            Seg::Index(i) => v.get_mut(*i).unwrap(),
        };
    }
    (v, last.clone())
}

fn set(root: &Value, path: &[Seg], new: Option<Value>) -> Value {
    let mut root = root.clone();
    if path.is_empty() {
        return new.unwrap_or(Value::Null);
    }
    let (p, last) = parent(&mut root, path);
    match (last, new) {
        (Seg::Key(k), Some(v)) => {
            p.as_object_mut().unwrap().insert(k, v);
        }
        (Seg::Key(k), None) => {
            p.as_object_mut().unwrap().remove(&k);
        }
        (Seg::Index(i), Some(v)) => p[i] = v,
        (Seg::Index(i), None) => {
            p.as_array_mut().unwrap().remove(i);
        }
    }
    root
}

/// Replacement values for a slot of type `ty`: (value, what, must Rust and the guards reject it?).
fn near_misses(
    model: &Model,
    ty: &TypeRef,
    depth: usize,
    rng: &mut Rng,
) -> Vec<(Value, String, Expect)> {
    let no = |v: Value, what: &str| (v, what.to_owned(), Expect::Reject);
    let mut out = Vec::new();
    match ty {
        TypeRef::Primitive(Primitive::Json) => {
            // Nested up to and past serde_json's limit, counted from the root.
            for total in [126usize, 127, 128, 129] {
                let n = total.saturating_sub(depth);
                let mut v = json!(1);
                for _ in 0..n {
                    v = json!([v]);
                }
                out.push((v, format!("arrays nested to depth {total}"), Expect::Either));
            }
            out.push(no(json!(LONE), "a lone surrogate"));
            out.push(no(json!(HUGE), "1e400"));
            out.push((json!({"a": [1, null]}), "an object".into(), Expect::Accept));
        }
        TypeRef::Primitive(p) => {
            out.push(no(json!(null), "null"));
            out.push(no(json!([]), "an array"));
            out.push(no(json!({}), "an object"));
            match p {
                Primitive::String => {
                    out.push(no(json!(5), "a number"));
                    out.push(no(json!(true), "a boolean"));
                    out.push(no(json!(LONE), "a lone surrogate"));
                    out.push(no(
                        json!(format!("ok {LONE} ok")),
                        "a lone surrogate inside",
                    ));
                }
                Primitive::Bool => {
                    out.push(no(json!(0), "0"));
                    out.push(no(json!("true"), "a string"));
                }
                Primitive::F32 | Primitive::F64 => {
                    out.push(no(json!("1"), "a string"));
                    out.push(no(json!(true), "a boolean"));
                    out.push(no(json!(HUGE), "1e400"));
                    if *p == Primitive::F32 {
                        // Rounds to infinity as an f32: refused (it would be written back as null).
                        out.push(no(json!(1e39), "1e39"));
                        out.push(no(json!(-3.5e38), "-3.5e38"));
                        out.push((json!(3.4e38), "3.4e38".into(), Expect::Accept));
                    } else {
                        out.push((json!(1e39), "1e39".into(), Expect::Accept));
                    }
                    out.push((json!(SAFE + 2), "2^53 + 1".into(), Expect::Accept));
                }
                Primitive::I64 | Primitive::U64 => {
                    let (min, max) = p.int_range().unwrap();
                    out.push(no(json!(true), "a boolean"));
                    out.push(no(json!(SAFE + 1), "2^53 as a number"));
                    out.push(no(json!(SAFE + 2), "2^53 + 1 as a number"));
                    out.push(no(json!(-SAFE - 1), "-2^53 as a number"));
                    out.push(no(json!(1.5), "a fraction"));
                    out.push(no(json!((min - 1).to_string()), "min - 1 as a string"));
                    out.push(no(json!((max + 1).to_string()), "max + 1 as a string"));
                    for s in [
                        "01", "+1", " 1", "1 ", "1e3", "1.0", "", "-", "-0", "0x10", "١",
                    ] {
                        out.push(no(json!(s), &format!("the string {s:?}")));
                    }
                    out.push((json!(SAFE), "2^53 - 1 as a number".into(), Expect::Accept));
                    out.push((
                        json!(-7),
                        "-7 as a number".into(),
                        if *p == Primitive::U64 {
                            Expect::Reject
                        } else {
                            Expect::Accept
                        },
                    ));
                    out.push((
                        json!(max.to_string()),
                        "max as a string".into(),
                        Expect::Accept,
                    ));
                }
                _ => {
                    let (min, max) = p.int_range().unwrap();
                    out.push(no(json!((min - 1) as i64), "min - 1"));
                    out.push(no(json!((max + 1) as i64), "max + 1"));
                    out.push(no(json!(1.5), "a fraction"));
                    out.push(no(json!(SAFE + 2), "2^53 + 1"));
                    out.push(no(json!("1"), "a string"));
                    out.push(no(json!(true), "a boolean"));
                    out.push((json!(max as i64), "max".into(), Expect::Accept));
                }
            }
        }
        TypeRef::List(_) => {
            out.push(no(json!({}), "an object"));
            out.push(no(json!("[]"), "a string"));
            out.push(no(json!(null), "null"));
        }
        TypeRef::Map(_) => {
            out.push(no(json!([]), "an array"));
            out.push(no(json!(null), "null"));
            out.push(no(json!(7), "a number"));
        }
        TypeRef::Named(name) => match &model.type_def(name).unwrap().kind {
            TypeKind::Enum(values) => {
                let first = &values[0].value;
                for candidate in [
                    format!("{first}x"),
                    first.to_uppercase(),
                    first.to_lowercase(),
                    String::new(),
                    "no-such-value".into(),
                ] {
                    if !values.iter().any(|v| v.value == candidate) {
                        out.push(no(json!(candidate), "an unknown enum value"));
                    }
                }
                out.push(no(json!(0), "a number"));
                out.push(no(json!(null), "null"));
            }
            TypeKind::Struct(fields) => {
                out.push(no(json!("x"), "a string"));
                out.push(no(json!(null), "null"));
                out.push(no(json!(true), "a boolean"));
                if fields.iter().any(|f| !f.optional) {
                    out.push(no(json!({}), "an empty object"));
                }
            }
        },
    }
    // A few of them, not all: the cases stay many but cheap.
    let keep = 3 + rng.below(3);
    while out.len() > keep {
        let i = rng.below(out.len());
        out.swap_remove(i);
    }
    out
}

/// Near-miss mutants of the valid value `value` of `ty`: one change each, at random places.
pub fn mutants(
    model: &Model,
    ty: &TypeRef,
    value: &Value,
    rng: &mut Rng,
) -> Vec<(Value, String, Expect)> {
    let mut all = Vec::new();
    slots(model, ty, value, Vec::new(), 0, &mut all);
    let mut out = Vec::new();
    // The root itself.
    for (v, what, expect) in near_misses(model, ty, 0, rng) {
        out.push((v, format!("$: {what}"), expect));
    }
    if let TypeRef::Named(name) = ty
        && let TypeKind::Struct(fields) = &model.type_def(name).unwrap().kind
    {
        let key = format!("{LONE}key");
        let mut v = value.clone();
        v.as_object_mut().unwrap().insert(key, json!(1));
        out.push((
            v,
            "$: an unknown key that is a lone surrogate".into(),
            Expect::Reject,
        ));
        if fields.is_empty() {
            out.push((
                json!({ "x": [1] }),
                "$: an unknown key".into(),
                Expect::Accept,
            ));
        }
    }
    for _ in 0..6.min(all.len()) {
        let slot = all[rng.below(all.len())].clone();
        let at = show_path(&slot.path);
        match slot.field {
            Some((false, _)) if rng.chance(30) => {
                out.push((
                    set(value, &slot.path, None),
                    format!("{at}: required field removed"),
                    Expect::Reject,
                ));
                continue;
            }
            Some((true, _)) if rng.chance(30) => {
                let is_json = slot.ty == TypeRef::Primitive(Primitive::Json);
                let expect = if is_json {
                    Expect::Accept
                } else {
                    Expect::Reject
                };
                out.push((
                    set(value, &slot.path, Some(Value::Null)),
                    format!("{at}: null optional"),
                    expect,
                ));
                out.push((
                    set(value, &slot.path, None),
                    format!("{at}: optional field absent"),
                    Expect::Accept,
                ));
                continue;
            }
            _ => {}
        }
        if let TypeRef::Map(_) = slot.ty
            && let Some(Value::Object(_)) = get(value, &slot.path)
        {
            let mut v = value.clone();
            if let Some(Value::Object(m)) = get_mut(&mut v, &slot.path)
                && let Some(first) = m.values().next().cloned()
            {
                m.insert(LONE.to_owned(), first);
                out.push((v, format!("{at}: a lone surrogate key"), Expect::Reject));
            }
        }
        for (replacement, what, expect) in near_misses(model, &slot.ty, slot.depth, rng) {
            out.push((
                set(value, &slot.path, Some(replacement)),
                format!("{at}: {what}"),
                expect,
            ));
        }
    }
    out
}

fn get<'v>(v: &'v Value, path: &[Seg]) -> Option<&'v Value> {
    path.iter().try_fold(v, |v, seg| match seg {
        Seg::Key(k) => v.get(k.as_str()),
        Seg::Index(i) => v.get(*i),
    })
}

fn get_mut<'v>(v: &'v mut Value, path: &[Seg]) -> Option<&'v mut Value> {
    path.iter().try_fold(v, |v, seg| match seg {
        Seg::Key(k) => v.get_mut(k.as_str()),
        Seg::Index(i) => v.get_mut(*i),
    })
}

fn show_path(path: &[Seg]) -> String {
    let mut s = String::from("$");
    for seg in path {
        match seg {
            Seg::Key(k) => s.push_str(&format!("[{k:?}]")),
            Seg::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    s
}
