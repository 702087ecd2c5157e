//! JSON crosses between Rust and the generated TypeScript without changing, and the TypeScript
//! guards accept exactly what Rust accepts.
//!
//! 1. Rust makes values of every type and event of the golden manifests (`tests/golden/*.yaml`
//!    and `events.yaml`): the manifest examples, plus values from a deterministic generator
//!    that walks the boundaries (2^53 − 1, 2^53 + 1, `u64::MAX`, `i64::MIN`, negative values,
//!    empty lists and maps, absent optionals, Unicode text and keys). Each goes through the
//!    golden Rust type (`tests/golden/*.rs`) and is serialised by serde.
//! 2. tsc compiles the golden TypeScript to JavaScript, and `tests/ts/roundtrip.mjs` checks in
//!    Node that every guard accepts those values, that mutated ones (wrong type, missing
//!    field, out-of-range integer, 64-bit integer as an unsafe number, `null` optional, unknown
//!    enum value, lone surrogate, too deep...) are rejected, and writes values built on the
//!    Node side with the guards' verdicts.
//! 3. Rust deserialises everything Node wrote: it must accept exactly what the guards
//!    accepted, and read the same values.
//!
//! Needs Node and npm: the pinned TypeScript compiler is installed on demand (`tests/support/npm.rs`);
//! fails, never skips, without them.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use eventbus_codegen::{Model, Primitive, TypeKind, TypeRef};
use serde_json::{Value, json};

#[allow(dead_code, clippy::all)] // generated code, linted where it is generated
mod generated {
    pub mod minimal {
        include!("golden/minimal.rs");
    }
    pub mod shapes {
        include!("golden/shapes.rs");
    }
    pub mod keywords {
        include!("golden/keywords.rs");
    }
    pub mod dappnode {
        include!("golden/dappnode.rs");
    }
}

fn through<T: serde::de::DeserializeOwned + serde::Serialize>(json: &str) -> Result<Value, String> {
    let value: T = serde_json::from_str(json).map_err(|e| e.to_string())?;
    serde_json::to_value(&value).map_err(|e| e.to_string())
}

macro_rules! registry {
    ($($module:ident { $($ty:ident),* $(,)? })*) => {
        /// Deserialises `json` into the golden Rust type `module::ty` and serialises it back;
        /// `None` for a type this list does not know.
        fn rust_parse(module: &str, ty: &str, json: &str) -> Option<Result<Value, String>> {
            match (module, ty) {
                $($((stringify!($module), stringify!($ty)) => Some(through::<generated::$module::$ty>(json)),)*)*
                _ => None,
            }
        }

        /// What the bus does with a payload given as JSON (the bridge's entry point).
        fn rust_emit(module: &str, event: &str, json: &str) -> Result<(), String> {
            match module {
                $(stringify!($module) => generated::$module::EventBus::new()
                    .core()
                    .emit_json(event, json)
                    .map_err(|e| e.to_string()),)*
                _ => panic!("unknown module {module}"),
            }
        }
    };
}

// Every type of every golden manifest; `every_type_is_registered` keeps this list complete.
registry! {
    minimal {}
    shapes { Level, Everything, Tree, InlineThing, Batched, Guarded }
    keywords { Kind, Keywords, Delete, Match }
    dappnode {
        NotificationType, NotificationAction, NotificationEvent, PackageOperation, PackageStatus,
        PackageEvent, ContainerState, ContainerSummary, InstalledPackage, DirectoryItemStatus,
        DirectoryItem, SystemEventType, SystemEvent, ChainEvent, ChainDataItem, ValidatorState,
        LogLevel, ProgressLog, UserActionLog, Packages, PackagesModified, ChainData,
        ValidatorStatus, RunStakerCacheUpdate, RunEthClientInstaller, Directory, Registry,
        TelegramStatusChanged,
    }
}

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// (module name, manifest, generated TypeScript)
fn modules() -> Vec<(&'static str, PathBuf, PathBuf)> {
    let golden = |name: &str| {
        (
            repo().join(format!("tests/golden/{name}.yaml")),
            repo().join(format!("tests/golden/{name}.ts")),
        )
    };
    let (m, t) = golden("minimal");
    let (s, st) = golden("shapes");
    let (k, kt) = golden("keywords");
    vec![
        ("minimal", m, t),
        ("shapes", s, st),
        ("keywords", k, kt),
        (
            "dappnode",
            repo().join("events.yaml"),
            repo().join("ui/src/generated/events.ts"),
        ),
    ]
}

fn load(path: &Path) -> Model {
    Model::load(path).unwrap_or_else(|e| panic!("{e}"))
}

// ---- the deterministic generator ---------------------------------------------------------

/// xorshift64*: small, deterministic, good enough to vary shapes.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
    fn chance(&mut self) -> bool {
        self.next() & 1 == 1
    }
}

const SAFE: i64 = (1 << 53) - 1;

/// The boundary values of a primitive, as the JSON a producer may send.
fn pool(p: Primitive) -> Vec<Value> {
    let strings = |v: &[String]| v.iter().map(|s| json!(s)).collect::<Vec<_>>();
    match p {
        Primitive::String => [
            "",
            "plain",
            "héllo wörld",
            "😀 emoji 👍🏽",
            "日本語テキスト",
            "quote \" backslash \\ slash /",
            "line\nbreak\ttab\r",
            "\u{2028}\u{2029}",
            "nul \u{0} char",
            "\u{FFFF}\u{10FFFF}",
            "<script>&amp;</script>",
            &"long ".repeat(60),
        ]
        .iter()
        .map(|s| json!(s))
        .collect(),
        Primitive::Bool => vec![json!(true), json!(false)],
        Primitive::I8 => vec![
            json!(i8::MIN),
            json!(i8::MAX),
            json!(0),
            json!(-1),
            json!(1),
        ],
        Primitive::I16 => vec![json!(i16::MIN), json!(i16::MAX), json!(0), json!(-1)],
        Primitive::I32 => vec![json!(i32::MIN), json!(i32::MAX), json!(0), json!(-1)],
        Primitive::U8 => vec![json!(0), json!(u8::MAX), json!(1), json!(128)],
        Primitive::U16 => vec![json!(0), json!(u16::MAX), json!(1)],
        Primitive::U32 => vec![json!(0), json!(u32::MAX), json!(1), json!(1u32 << 31)],
        Primitive::I64 => strings(&[
            i64::MIN.to_string(),
            i64::MAX.to_string(),
            "0".into(),
            "-1".into(),
            SAFE.to_string(),
            (SAFE + 1).to_string(),
            (SAFE + 2).to_string(),
            (-SAFE).to_string(),
            (-SAFE - 2).to_string(),
            "1".into(),
        ]),
        Primitive::U64 => strings(&[
            "0".into(),
            u64::MAX.to_string(),
            SAFE.to_string(),
            (SAFE + 1).to_string(),
            (SAFE + 2).to_string(),
            "1".into(),
            (1u64 << 63).to_string(),
            "19876543".into(),
        ]),
        Primitive::Timestamp => vec![
            json!(0),
            json!(SAFE),
            json!(-SAFE),
            json!(1_718_000_000_000i64),
            json!(-1),
        ],
        Primitive::F32 => vec![
            json!(0.0),
            json!(0.5),
            json!(-1.25),
            json!(f32::MAX),
            json!(f32::MIN),
            json!(1.0e-45),
            json!(0.1),
            json!(16_777_217.0),
        ],
        Primitive::F64 => vec![
            json!(0.0),
            json!(-0.0),
            json!(0.1),
            json!(-1.5),
            json!(1e300),
            json!(-1e-300),
            json!(5e-324),
            json!(f64::MAX),
            json!(9_007_199_254_740_993.0),
            json!(0.9871),
        ],
        Primitive::Json => vec![
            Value::Null,
            json!(true),
            json!(0),
            json!(-1.5),
            json!("text 😀"),
            json!([]),
            json!({}),
            json!({ "nested": [1, { "deep": [null, "x"] }], "n": SAFE, "m": -SAFE }),
            json!([1, "2", [3]]),
            json!({ "": "" }),
        ],
    }
}

const MAP_KEYS: &[&str] = &[
    "a",
    "",
    "😀",
    "key with spaces",
    "__proto__",
    "constructor",
    "toString",
    "日本",
];

struct Generator<'a> {
    model: &'a Model,
    rng: Rng,
    /// How many values of each primitive were drawn: cycles through every boundary.
    drawn: BTreeMap<&'static str, usize>,
}

/// Which optional fields a generated object carries.
#[derive(Clone, Copy)]
enum Optionals {
    All,
    None,
    Random,
}

impl Generator<'_> {
    fn primitive(&mut self, p: Primitive) -> Value {
        let pool = pool(p);
        let n = self.drawn.entry(p.as_str()).or_default();
        *n += 1;
        pool[*n % pool.len()].clone()
    }

    fn value(&mut self, ty: &TypeRef, depth: usize, optionals: Optionals) -> Value {
        match ty {
            TypeRef::Primitive(p) => self.primitive(*p),
            TypeRef::List(t) => {
                let n = if depth > 3 { 0 } else { self.rng.below(4) };
                Value::Array(
                    (0..n)
                        .map(|_| self.value(t, depth + 1, optionals))
                        .collect(),
                )
            }
            TypeRef::Map(t) => {
                let n = if depth > 3 { 0 } else { self.rng.below(4) };
                let start = self.rng.below(MAP_KEYS.len());
                Value::Object(
                    (0..n)
                        .map(|i| {
                            (
                                MAP_KEYS[(start + i) % MAP_KEYS.len()].to_owned(),
                                self.value(t, depth + 1, optionals),
                            )
                        })
                        .collect(),
                )
            }
            TypeRef::Named(name) => self.named(name, depth, optionals),
        }
    }

    fn named(&mut self, name: &str, depth: usize, optionals: Optionals) -> Value {
        let t = self.model.type_def(name).expect("checked model");
        match &t.kind {
            TypeKind::Enum(values) => json!(values[self.rng.below(values.len())].value),
            TypeKind::Struct(fields) => {
                let mut object = serde_json::Map::new();
                for f in fields {
                    let present = !f.optional
                        || match optionals {
                            Optionals::All => depth < 3,
                            Optionals::None => false,
                            Optionals::Random => depth < 3 && self.rng.chance(),
                        };
                    if present {
                        object.insert(f.name.clone(), self.value(&f.ty, depth + 1, optionals));
                    }
                }
                Value::Object(object)
            }
        }
    }
}

// ---- comparing values by their manifest type -------------------------------------------------

fn int64(v: &Value) -> Option<i128> {
    match v {
        Value::String(s) => s.parse().ok(),
        Value::Number(n) => n.as_i64().map(i128::from).or(n.as_u64().map(i128::from)),
        _ => None,
    }
}

/// Whether `a` and `b` (both accepted by Rust) mean the same value of `ty`: 64-bit integers
/// may be a number on one side and a string on the other, an `f32` compares as an `f32`, and
/// keys a struct does not declare are ignored.
fn same(model: &Model, ty: &TypeRef, a: &Value, b: &Value) -> Result<(), String> {
    let differ = || Err(format!("{a} != {b} (as `{ty}`)"));
    match ty {
        TypeRef::Primitive(p) if p.is_int64() => {
            if int64(a).is_some() && int64(a) == int64(b) {
                Ok(())
            } else {
                differ()
            }
        }
        TypeRef::Primitive(Primitive::F32) => {
            if a.as_f64().map(|x| x as f32) == b.as_f64().map(|x| x as f32) {
                Ok(())
            } else {
                differ()
            }
        }
        TypeRef::Primitive(Primitive::F64) => {
            if a.as_f64().is_some() && a.as_f64() == b.as_f64() {
                Ok(())
            } else {
                differ()
            }
        }
        TypeRef::Primitive(_) => {
            if a == b {
                Ok(())
            } else {
                differ()
            }
        }
        TypeRef::List(t) => match (a.as_array(), b.as_array()) {
            (Some(x), Some(y)) if x.len() == y.len() => {
                x.iter().zip(y).enumerate().try_for_each(|(i, (x, y))| {
                    same(model, t, x, y).map_err(|e| format!("[{i}]: {e}"))
                })
            }
            _ => differ(),
        },
        TypeRef::Map(t) => match (a.as_object(), b.as_object()) {
            (Some(x), Some(y)) if x.len() == y.len() => {
                x.iter().try_for_each(|(k, x)| match y.get(k) {
                    Some(y) => same(model, t, x, y).map_err(|e| format!("[{k:?}]: {e}")),
                    None => Err(format!("key {k:?} lost")),
                })
            }
            _ => differ(),
        },
        TypeRef::Named(name) => match &model.type_def(name).unwrap().kind {
            TypeKind::Enum(_) => {
                if a == b {
                    Ok(())
                } else {
                    differ()
                }
            }
            TypeKind::Struct(fields) => {
                fields
                    .iter()
                    .try_for_each(|f| match (a.get(&f.name), b.get(&f.name)) {
                        (None, None) => Ok(()),
                        (Some(x), Some(y)) => {
                            same(model, &f.ty, x, y).map_err(|e| format!(".{}: {e}", f.name))
                        }
                        _ => Err(format!(".{}: present on one side only", f.name)),
                    })
            }
        },
    }
}

// ---- the schema Node uses to mutate values -----------------------------------------------------

fn type_json(ty: &TypeRef) -> Value {
    match ty {
        TypeRef::Primitive(p) => json!({ "prim": p.as_str() }),
        TypeRef::List(t) => json!({ "list": type_json(t) }),
        TypeRef::Map(t) => json!({ "map": type_json(t) }),
        TypeRef::Named(n) => json!({ "named": n }),
    }
}

fn schema(model: &Model) -> Value {
    let types: serde_json::Map<String, Value> = model
        .types
        .iter()
        .map(|t| {
            let v = match &t.kind {
                TypeKind::Enum(values) => {
                    json!({ "kind": "enum", "values": values.iter().map(|v| &v.value).collect::<Vec<_>>() })
                }
                TypeKind::Struct(fields) => json!({
                    "kind": "struct",
                    "fields": fields.iter().map(|f| json!({
                        "name": f.name, "type": type_json(&f.ty), "optional": f.optional,
                    })).collect::<Vec<_>>(),
                }),
            };
            (t.name.clone(), v)
        })
        .collect();
    let events: serde_json::Map<String, Value> = model
        .events
        .iter()
        .map(|e| (e.name.clone(), json!(e.payload)))
        .collect();
    json!({ "types": types, "events": events })
}

// ---- the toolchain ------------------------------------------------------------------------------

#[path = "support/npm.rs"]
mod npm;

/// The pinned TypeScript compiler (`npm ci` first if `node_modules` is missing or stale).
fn tsc() -> PathBuf {
    npm::tsc()
}

/// Compiles the golden TypeScript to ES modules under `out`; returns module → `.js` path.
fn compile(out: &Path) -> BTreeMap<&'static str, PathBuf> {
    let js = out.join("js");
    let sources: Vec<_> = modules()
        .into_iter()
        .map(|(name, _, ts)| (name, ts))
        .collect();
    let files: Vec<String> = sources
        .iter()
        .map(|(_, ts)| json!(ts).to_string())
        .collect();
    let tsconfig = out.join("tsconfig.json");
    std::fs::write(
        &tsconfig,
        format!(
            r#"{{
  "extends": {base},
  "compilerOptions": {{
    "noEmit": false, "allowImportingTsExtensions": false, "declaration": false,
    "isolatedDeclarations": false, "outDir": {js}, "rootDir": {root}
  }},
  "include": [],
  "files": [{files}]
}}"#,
            base = json!(repo().join("tests/ts/tsconfig.json")),
            js = json!(js),
            root = json!(repo()),
            files = files.join(", "),
        ),
    )
    .unwrap();
    let output = Command::new(tsc())
        .args(["-p", tsconfig.to_str().unwrap(), "--pretty", "false"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "tsc could not compile the golden TypeScript:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // The output is ES modules: tell Node so.
    std::fs::write(js.join("package.json"), r#"{ "type": "module" }"#).unwrap();
    sources
        .into_iter()
        .map(|(name, ts)| {
            let rel = ts.strip_prefix(repo()).unwrap().with_extension("js");
            let path = js.join(rel);
            assert!(path.exists(), "tsc wrote no {}", path.display());
            (name, path)
        })
        .collect()
}

// ---- the test ------------------------------------------------------------------------------------

#[test]
fn every_type_is_registered() {
    for (module, manifest, _) in modules() {
        for t in &load(&manifest).types {
            assert!(
                rust_parse(module, &t.name, "null").is_some(),
                "add `{}` to `{module}` in the registry! of tests/typescript_roundtrip.rs",
                t.name
            );
        }
    }
}

#[test]
fn json_round_trips_between_rust_and_the_typescript_guards() {
    let out = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ts-roundtrip");
    let _ = std::fs::remove_dir_all(&out);
    std::fs::create_dir_all(&out).unwrap();
    let compiled = compile(&out);

    // 1. Values made in Rust.
    let mut cases = Vec::new();
    let mut models = BTreeMap::new();
    let mut schemas = serde_json::Map::new();
    let mut problems = Vec::new();
    for (module, manifest, _) in modules() {
        let model = load(&manifest);
        schemas.insert(module.to_owned(), schema(&model));
        let mut push =
            |ty: &str, event: Option<&str>, value: &Value, what: String, mutate: bool| {
                match rust_parse(module, ty, &value.to_string()).expect("registered") {
                    Ok(rust) => cases.push(json!({
                        "module": module, "type": ty, "event": event, "what": what,
                        "json": rust.to_string(), "mutate": mutate,
                    })),
                    Err(e) => problems.push(format!(
                        "{module}.{ty} ({what}): Rust rejects its own value {value}: {e}"
                    )),
                }
            };
        for e in &model.events {
            if let (Some(p), Some(example)) = (&e.payload, &e.example) {
                push(
                    p,
                    Some(&e.name),
                    example,
                    format!("example of {}", e.name),
                    true,
                );
            }
        }
        for (i, t) in model.types.iter().enumerate() {
            let mut g = Generator {
                model: &model,
                rng: Rng(0x9e37_79b9_7f4a_7c15 ^ (i as u64 + 1)),
                drawn: BTreeMap::new(),
            };
            let count = match &t.kind {
                TypeKind::Enum(values) => values.len(),
                TypeKind::Struct(_) => 14,
            };
            for n in 0..count {
                let optionals = match n {
                    0 => Optionals::All,
                    1 => Optionals::None,
                    _ => Optionals::Random,
                };
                let value = match &t.kind {
                    TypeKind::Enum(values) => json!(values[n].value),
                    TypeKind::Struct(_) => g.named(&t.name, 0, optionals),
                };
                let event = model
                    .events
                    .iter()
                    .find(|e| e.payload.as_deref() == Some(&t.name))
                    .map(|e| e.name.as_str());
                push(&t.name, event, &value, format!("generated #{n}"), n < 2);
            }
        }
        for e in model.events.iter().filter(|e| e.payload.is_none()) {
            for payload in [Value::Null, json!({})] {
                match rust_emit(module, &e.name, &payload.to_string()) {
                    Ok(()) => cases.push(json!({
                        "module": module, "type": null, "event": e.name, "what": "no payload",
                        "json": payload.to_string(), "mutate": true,
                    })),
                    Err(err) => problems.push(format!(
                        "{module}.{}: Rust rejects {payload}: {err}",
                        e.name
                    )),
                }
            }
        }
        models.insert(module, model);
    }
    assert!(
        problems.is_empty(),
        "the generator made values Rust rejects:\n{}",
        problems.join("\n")
    );
    let rust_count = cases.len();
    let input = json!({
        "modules": compiled.iter().map(|(m, p)| (m.to_string(), json!(p))).collect::<serde_json::Map<_, _>>(),
        "schemas": schemas,
        "cases": cases,
    });
    let rust_json = out.join("rust.json");
    let node_json = out.join("node.json");
    std::fs::write(&rust_json, serde_json::to_string_pretty(&input).unwrap()).unwrap();

    // 2. Node: the guards judge them and mutants of them.
    let status = Command::new("node")
        .arg(repo().join("tests/ts/roundtrip.mjs"))
        .args([&rust_json, &node_json])
        .status()
        .unwrap_or_else(|e| panic!("cannot run `node` (install Node.js 20 or later): {e}"));
    assert!(
        status.success(),
        "tests/ts/roundtrip.mjs failed (its report is above)"
    );

    // 3. Rust judges what Node wrote.
    let report: Value =
        serde_json::from_str(&std::fs::read_to_string(&node_json).unwrap()).unwrap();
    let mut mismatches = Vec::new();
    let (mut accepted, mut rejected, mut lenient) = (0, 0, 0);
    for c in report["cases"].as_array().unwrap() {
        let module = c["module"].as_str().unwrap();
        let model = &models[module];
        let text = c["json"].as_str().unwrap();
        let guard = c["accepted"].as_bool().unwrap();
        let faithful = c["faithful"].as_bool().unwrap();
        let what = format!(
            "{module} {} {}: {text}",
            c["target"].as_str().unwrap(),
            c["what"].as_str().unwrap()
        );
        let (rust, ty) = match (c["type"].as_str(), c["event"].as_str()) {
            (Some(ty), _) => (
                rust_parse(module, ty, text).unwrap(),
                Some(TypeRef::Named(ty.to_owned())),
            ),
            (None, Some(event)) => (rust_emit(module, event, text).map(|()| Value::Null), None),
            _ => panic!("bad case {c}"),
        };
        if c["lenient"].as_bool() == Some(true) {
            // A form serde accepts that the guards reject on purpose (documented in
            // docs/typescript.md); keep the documentation true.
            match (&rust, guard) {
                (Ok(_), false) => lenient += 1,
                _ => mismatches.push(format!(
                    "{what}\n    documented as accepted by Rust and rejected by the guards, but Rust says {rust:?}, the guard {guard}"
                )),
            }
            continue;
        }
        match (&rust, guard) {
            (Ok(back), true) => {
                accepted += 1;
                if let Some(ty) = &ty {
                    let sent: Value = serde_json::from_str(text).unwrap();
                    if let Err(e) = same(model, ty, &sent, back) {
                        mismatches.push(format!(
                            "{what}\n    the value changed on the way to Rust: {e}"
                        ));
                    }
                }
            }
            (Err(e), true) => mismatches.push(format!(
                "{what}\n    the guard accepts it, Rust rejects it: {e}"
            )),
            (Ok(_), false) if faithful => mismatches.push(format!(
                "{what}\n    the guard rejects it ({}), Rust accepts it",
                c["message"].as_str().unwrap_or("?")
            )),
            (_, false) => rejected += 1,
        }
    }
    // Rust → JSON → JavaScript → JSON → Rust gives back the same value.
    for c in report["echoes"].as_array().unwrap() {
        let module = c["module"].as_str().unwrap();
        let (Some(ty), Some(original), Some(echo)) = (
            c["type"].as_str(),
            c["original"].as_str(),
            c["json"].as_str(),
        ) else {
            continue;
        };
        let what = format!("{module}.{ty} {}", c["what"].as_str().unwrap());
        match rust_parse(module, ty, echo).unwrap() {
            Ok(back) => {
                let original: Value = serde_json::from_str(original).unwrap();
                if let Err(e) = same(
                    &models[module],
                    &TypeRef::Named(ty.to_owned()),
                    &original,
                    &back,
                ) {
                    mismatches.push(format!(
                        "{what}: changed after a trip through JavaScript: {e}"
                    ));
                }
            }
            Err(e) => mismatches.push(format!(
                "{what}: Rust rejects the JSON that JavaScript re-wrote ({echo}): {e}"
            )),
        }
    }
    assert!(
        mismatches.is_empty(),
        "{} disagreement(s) between Rust and the TypeScript guards:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
    let node_count = report["cases"].as_array().unwrap().len();
    assert!(
        rust_count > 300 && node_count > 3000,
        "too few cases: {rust_count} from Rust, {node_count} from Node"
    );
    assert!(
        accepted > 500 && rejected > 1000,
        "too few verdicts: {accepted} accepted, {rejected} rejected"
    );
    assert!(
        lenient > 10,
        "the documented serde leniencies were not exercised"
    );
    println!(
        "{rust_count} Rust values accepted by the guards; {node_count} Node values judged alike by the \
         guards and serde ({accepted} accepted, {rejected} rejected, {lenient} serde-only forms)"
    );
}

/// The freshness rule of `support/npm.rs` (tested here, not in every crate that includes it).
#[test]
fn node_modules_is_stale_when_missing_interrupted_or_older_than_the_lock_file() {
    use std::time::{Duration, SystemTime};
    let dir = std::env::temp_dir().join(format!("eventbus-npm-fresh-{}", std::process::id()));
    std::fs::create_dir_all(dir.join("node_modules")).unwrap();
    let touch = |path: &str, at: SystemTime| {
        let file = std::fs::File::create(dir.join(path)).unwrap();
        file.set_modified(at).unwrap();
    };
    let then = SystemTime::now() - Duration::from_secs(3600);
    touch("package-lock.json", then);
    assert!(
        !npm::fresh(&dir),
        "no .package-lock.json: never installed, or interrupted"
    );
    touch(
        "node_modules/.package-lock.json",
        then - Duration::from_secs(1),
    );
    assert!(
        !npm::fresh(&dir),
        "package-lock.json changed after the install"
    );
    touch(
        "node_modules/.package-lock.json",
        then + Duration::from_secs(1),
    );
    assert!(npm::fresh(&dir));
    std::fs::remove_dir_all(&dir).unwrap();
}
