//! Property tests (proptest) over random valid manifests (issue 11, item 2).
//!
//! 1. The generated Rust of every random manifest compiles, and JSON made from random values
//!    of each of its types round-trips through serde to exactly the wire's canonical text.
//! 2. The generated TypeScript compiles under `tsc --strict`, and its guards accept exactly the
//!    values serde accepts: valid values and near-miss mutants of them.
//! 3. `diff(m, m)` reports nothing (in process, many cases, with shrinking).
//! 4. A random change classified safe (or a warning) by `diff` really reads the old types' JSON
//!    with the new types, to the same text; a safe one also the new JSON with the old types;
//!    and the breaking changes that must show on the wire (a required field added or made
//!    required, a required field removed) really reject some value.
//!
//! Properties 1, 2 and 4 share one build: every manifest of the run (and its changed version)
//! is a module of one crate under `target/proptest-crate/`, built once, whose binary judges a
//! file of cases; tsc compiles all the TypeScript once and one Node process runs the guards.
//!
//! `EVENTBUS_PROPTEST_CASES=N` sets the number of manifests (default 16 for the compiled
//! properties, 20 times that for property 3); `EVENTBUS_PROPTEST_SEED=N` another fixed seed.
//! A failure prints the manifest and the value; every manifest of the last run is kept in
//! `target/proptest-crate/crate/manifests/`.

#[path = "properties/harness.rs"]
mod harness;
#[path = "properties/manifests.rs"]
mod manifests;
#[path = "support/mod.rs"]
mod support;
#[path = "properties/values.rs"]
mod values;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};

use eventbus_codegen::diff::{self, Level};
use eventbus_codegen::{Model, TypeKind, TypeRef};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::{Config, RngAlgorithm, RngSeed, TestCaseError, TestRng, TestRunner};
use serde_json::Value;

use harness::{Case, Module, Verdict};
use manifests::Spec;
use values::{Canon, Expect, Generator, Optionals, Rng};

/// A manifest for the regression cases below.
const REGRESSIONS: &str = "version: 1\npackage: regressions\nevents:\n  floats:\n    payload: { f64: f64, f32: f32, list: \"f64[]\", any: json }\n";

/// Values of `Floats` that earlier runs got wrong, and what Rust must do with them.
const REGRESSION_CASES: &[(&str, &str)] = &[
    // serde_json without `float_roundtrip` read these numbers one unit in the last place off,
    // so Rust wrote back another number than JavaScript sent.
    (
        r#"{"f64":145.57799999999997,"f32":0.1,"list":[1.0715660391465826e-75,-1.81996730402717e-179,5.323826144815799e-125],"any":{"n":-1.603964615428183e+143}}"#,
        "exact",
    ),
    (
        r#"{"f64":0.23404472856163638,"f32":-2.5e-40,"list":[1.4967372641288985,4.527590378264921e-42],"any":[0.23404472856163638]}"#,
        "exact",
    ),
    // An f32 beyond ±3.4028235e38 became infinity, written back as `null`; now refused, and
    // the guard refuses it too.
    (r#"{"f64":0.0,"f32":1e39,"list":[],"any":null}"#, "reject"),
    (
        r#"{"f64":0.0,"f32":-3.5e38,"list":[],"any":null}"#,
        "reject",
    ),
    (
        r#"{"f64":0.0,"f32":3.4028235e+38,"list":[],"any":null}"#,
        "exact",
    ),
    (
        r#"{"f64":1e308,"f32":3.4e38,"list":[],"any":null}"#,
        "accept",
    ),
];

const DEFAULT_SEED: u64 = 0x00e7_e275_b005_0011;
const DEFAULT_MANIFESTS: u32 = 16;

fn env_u64(name: &str) -> Option<u64> {
    let v = std::env::var(name).ok()?;
    Some(
        v.trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, found {v:?}")),
    )
}

fn seed() -> u64 {
    env_u64("EVENTBUS_PROPTEST_SEED").unwrap_or(DEFAULT_SEED)
}

fn manifests_count() -> u32 {
    env_u64("EVENTBUS_PROPTEST_CASES").map_or(DEFAULT_MANIFESTS, |n| n as u32)
}

fn config(cases: u32) -> Config {
    Config {
        cases,
        rng_seed: RngSeed::Fixed(seed()),
        // Deterministic: no regression files, no environment overrides but ours.
        failure_persistence: None,
        max_shrink_iters: 2048,
        ..Config::default()
    }
}

fn parse(yaml: &str) -> Result<Model, String> {
    Model::parse("events.yaml", yaml).map_err(|e| format!("{e}"))
}

// ---- property 3: in process -------------------------------------------------------------------

#[test]
fn random_manifests_are_valid_generate_and_diff_empty_with_themselves() {
    let cases = manifests_count() * 20;
    let mut runner = TestRunner::new(config(cases));
    let result = runner.run(&(manifests::spec(), manifests::changes()), |(spec, changes)| {
        let yaml = spec.yaml();
        let model = parse(&yaml).map_err(|e| {
            TestCaseError::fail(format!(
                "the validator rejects a valid manifest:\n{e}\n--- manifest ---\n{yaml}"
            ))
        })?;
        let same = diff::diff(&model, &model);
        if !same.is_empty() {
            return Err(TestCaseError::fail(format!(
                "diff(m, m) reports {same:#?}\n--- manifest ---\n{yaml}"
            )));
        }
        // The same text gives the same model (the fingerprint, and so stored events, depend
        // on it), and every generator runs; the Rust is valid syntax.
        let again = parse(&yaml).map_err(TestCaseError::fail)?;
        if again != model || again.fingerprint() != model.fingerprint() {
            return Err(TestCaseError::fail(format!(
                "parsing the same text twice gives different models\n--- manifest ---\n{yaml}"
            )));
        }
        let rust = eventbus_codegen::rust::file(&model);
        syn::parse_file(&rust).map_err(|e| {
            TestCaseError::fail(format!("generated Rust does not parse: {e}\n--- manifest ---\n{yaml}"))
        })?;
        let _ = eventbus_codegen::typescript::file(&model);
        let _ = eventbus_codegen::docs::markdown(&model);
        serde_json::to_string(&eventbus_codegen::asyncapi::document(&model)).unwrap();
        // A changed manifest is valid too, and diff runs both ways.
        for change in &changes {
            let Some(new) = spec.apply(change) else {
                continue;
            };
            let new_yaml = new.yaml();
            let new_model = parse(&new_yaml).map_err(|e| {
                TestCaseError::fail(format!(
                    "the validator rejects a changed manifest ({change:?}):\n{e}\n--- manifest ---\n{new_yaml}"
                ))
            })?;
            let _ = diff::diff(&model, &new_model);
            let _ = diff::diff(&new_model, &model);
        }
        Ok(())
    });
    if let Err(e) = result {
        panic!("{e}\n(seed {}; EVENTBUS_PROPTEST_SEED changes it)", seed());
    }
}

// ---- the shared build for properties 1, 2 and 4 ----------------------------------------------------

/// Which property a case belongs to, and what it must show.
#[derive(Debug, Clone)]
enum Purpose {
    /// A value (or mutant) of the module's own type: properties 1 and 2.
    Value,
    /// JSON of one version of a changed manifest read by the other: property 4.
    Compat { pair: usize },
}

#[derive(Debug, Clone)]
struct CaseInfo {
    purpose: Purpose,
    expect: Expect,
    what: String,
}

/// A manifest and its changed version.
struct Pair {
    old: usize,
    new: usize,
    change: String,
    changes: Vec<diff::Change>,
}

struct Run {
    modules: Vec<Module>,
    pairs: Vec<Pair>,
    cases: Vec<Case>,
    info: Vec<CaseInfo>,
    rust: Result<Vec<Verdict>, String>,
    guards: Result<Vec<Verdict>, String>,
}

fn shared_run() -> Arc<Run> {
    static RUN: Mutex<Option<Arc<Run>>> = Mutex::new(None);
    let mut slot = RUN.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(run) = &*slot {
        return run.clone();
    }
    let run = Arc::new(make_run());
    *slot = Some(run.clone());
    run
}

fn make_run() -> Run {
    let started = std::time::Instant::now();
    let mut seed_bytes = [0u8; 32];
    seed_bytes[..8].copy_from_slice(&seed().to_le_bytes());
    let mut runner = TestRunner::new_with_rng(
        config(manifests_count()),
        TestRng::from_seed(RngAlgorithm::ChaCha, &seed_bytes),
    );
    let strategy = (
        manifests::spec(),
        manifests::changes(),
        proptest::prelude::any::<u64>(),
    );
    let mut modules = Vec::new();
    let mut pairs = Vec::new();
    let mut value_seeds = Vec::new();
    let mut spec_failures = Vec::new();
    for i in 0..manifests_count() {
        let (spec, changes, value_seed): (Spec, Vec<manifests::Change>, u64) =
            strategy.new_tree(&mut runner).unwrap().current();
        let yaml = spec.yaml();
        let model = match parse(&yaml) {
            Ok(m) => m,
            Err(e) => {
                spec_failures.push(format!("{e}\n--- manifest ---\n{yaml}"));
                continue;
            }
        };
        let old = modules.len();
        modules.push(Module {
            name: format!("m{i}_old"),
            yaml,
            model,
        });
        value_seeds.push(value_seed);
        // The first change that applies, trying the kinds from a different one each time.
        let changed = (0..changes.len())
            .map(|k| &changes[(i as usize + k) % changes.len()])
            .find_map(|change| Some((change, spec.apply(change)?)));
        if let Some((change, new)) = changed {
            let yaml = new.yaml();
            match parse(&yaml) {
                Ok(model) => {
                    let changes = diff::diff(&modules[old].model, &model);
                    pairs.push(Pair {
                        old,
                        new: modules.len(),
                        change: format!("{change:?}"),
                        changes,
                    });
                    modules.push(Module {
                        name: format!("m{i}_new"),
                        yaml,
                        model,
                    });
                    value_seeds.push(value_seed ^ 0xabcd);
                }
                Err(e) => spec_failures.push(format!("{e}\n--- manifest ---\n{yaml}")),
            }
        }
    }
    // Fixed cases for what earlier runs found (docs/robustness.md#property-tests).
    let regressions = modules.len();
    modules.push(Module {
        name: "regressions".into(),
        yaml: REGRESSIONS.into(),
        model: parse(REGRESSIONS).unwrap(),
    });
    value_seeds.push(0);
    assert!(
        spec_failures.is_empty(),
        "the validator rejects generated manifests:\n{}",
        spec_failures.join("\n\n")
    );

    // Values of every type of every module, with the text Rust must write back.
    let mut cases = Vec::new();
    let mut info = Vec::new();
    // (module, type) -> the valid values' canonical texts.
    let mut canonical: BTreeMap<(usize, String), Vec<String>> = BTreeMap::new();
    for (m, module) in modules.iter().enumerate() {
        let model = &module.model;
        let mut g = Generator {
            model,
            rng: Rng::new(value_seeds[m]),
        };
        for t in &model.types {
            let event = model
                .events
                .iter()
                .find(|e| e.payload.as_deref() == Some(&t.name))
                .map(|e| e.name.clone());
            let ty = TypeRef::Named(t.name.clone());
            let count = match &t.kind {
                TypeKind::Enum(values) => values.len().min(4),
                TypeKind::Struct(_) => 4,
            };
            for n in 0..count {
                let optionals = match n {
                    0 => Optionals::All,
                    1 => Optionals::None,
                    _ => Optionals::Random,
                };
                let (value, canon): (Value, Canon) = g.named(&t.name, 0, optionals);
                let text = canon.text();
                canonical
                    .entry((m, t.name.clone()))
                    .or_default()
                    .push(text.clone());
                cases.push(Case {
                    module: m,
                    ty: Some(t.name.clone()),
                    event: event.clone(),
                    json: values::text(&value),
                });
                info.push(CaseInfo {
                    purpose: Purpose::Value,
                    expect: Expect::Exact(text),
                    what: format!("valid value #{n}"),
                });
                if n < 2 {
                    for (mutant, what, expect) in values::mutants(model, &ty, &value, &mut g.rng) {
                        cases.push(Case {
                            module: m,
                            ty: Some(t.name.clone()),
                            event: event.clone(),
                            json: values::text(&mutant),
                        });
                        info.push(CaseInfo {
                            purpose: Purpose::Value,
                            expect,
                            what: format!("mutant of #{n}: {what}"),
                        });
                    }
                }
            }
        }
        // Events without payload: `emit_json` takes `null` or `{}` (on events whose delivery
        // needs neither a store nor timers).
        for e in model.events.iter().filter(|e| e.payload.is_none()) {
            let simple = !e.persist && e.policies.is_empty();
            for (json, expect) in [
                ("null", Expect::Accept),
                ("{}", Expect::Accept),
                ("{\"a\":1}", Expect::Reject),
                ("[]", Expect::Reject),
                ("0", Expect::Reject),
                ("\"x\"", Expect::Reject),
                ("false", Expect::Reject),
            ] {
                if simple {
                    cases.push(Case {
                        module: m,
                        ty: None,
                        event: Some(e.name.clone()),
                        json: json.into(),
                    });
                    info.push(CaseInfo {
                        purpose: Purpose::Value,
                        expect,
                        what: "no payload".into(),
                    });
                }
            }
        }
    }

    for (json, expect) in REGRESSION_CASES {
        let expect = match *expect {
            "exact" => Expect::Exact((*json).to_owned()),
            "accept" => Expect::Accept,
            _ => Expect::Reject,
        };
        cases.push(Case {
            module: regressions,
            ty: Some("Floats".into()),
            event: Some("floats".into()),
            json: (*json).to_owned(),
        });
        info.push(CaseInfo {
            purpose: Purpose::Value,
            expect,
            what: "regression".into(),
        });
    }

    // Property 4: each version's JSON read by the other.
    for (p, pair) in pairs.iter().enumerate() {
        let (old, new) = (&modules[pair.old].model, &modules[pair.new].model);
        let worst = pair.changes.iter().map(|c| c.level).min(); // Breaking < Warning < Safe
        for oe in &old.events {
            let Some(ne) = new.event(&oe.name) else {
                continue;
            };
            let (Some(op), Some(np)) = (&oe.payload, &ne.payload) else {
                continue;
            };
            let top = format!("events.{}.payload.", oe.name);
            let rule_at = |rule: &str| -> Vec<&str> {
                pair.changes
                    .iter()
                    .filter(|c| c.rule == rule)
                    .filter_map(|c| c.path.strip_prefix(&top))
                    .filter(|rest| !rest.contains(['.', '[', '{']))
                    .collect()
            };
            let added_required = rule_at("REQUIRED_FIELD_ADDED");
            let now_required = rule_at("FIELD_NOW_REQUIRED");
            let removed_required: Vec<&str> = rule_at("FIELD_REMOVED")
                .into_iter()
                .filter(|f| struct_field(old, op, f).is_some_and(|f| !f.optional))
                .collect();
            for text in canonical.get(&(pair.old, op.clone())).into_iter().flatten() {
                let value: Value = serde_json::from_str(text).unwrap();
                let expect = match worst {
                    None | Some(Level::Safe) | Some(Level::Warning) => Expect::Exact(text.clone()),
                    Some(Level::Breaking) => {
                        let lacks = |f: &&str| value.get(*f).is_none();
                        if !added_required.is_empty() || now_required.iter().any(lacks) {
                            Expect::Reject
                        } else {
                            Expect::Either
                        }
                    }
                };
                cases.push(Case {
                    module: pair.new,
                    ty: Some(np.clone()),
                    event: Some(ne.name.clone()),
                    json: text.clone(),
                });
                info.push(CaseInfo {
                    purpose: Purpose::Compat { pair: p },
                    expect,
                    what: format!("old JSON of `{}` read by the new type", oe.name),
                });
            }
            for text in canonical.get(&(pair.new, np.clone())).into_iter().flatten() {
                let expect = match worst {
                    None | Some(Level::Safe) => Expect::Accept,
                    Some(Level::Breaking) if !removed_required.is_empty() => Expect::Reject,
                    _ => Expect::Either,
                };
                cases.push(Case {
                    module: pair.old,
                    ty: Some(op.clone()),
                    event: Some(oe.name.clone()),
                    json: text.clone(),
                });
                info.push(CaseInfo {
                    purpose: Purpose::Compat { pair: p },
                    expect,
                    what: format!("new JSON of `{}` read by the old type", oe.name),
                });
            }
        }
    }

    // Build once, judge everything.
    let dir = harness::write_sources(&modules);
    let rust = harness::build(&dir).map(|exe| harness::run_rust(&exe, &cases));
    let guards =
        harness::compile_typescript(&dir, &modules).and_then(|js| harness::run_guards(&js, &cases));
    eprintln!(
        "properties: {} manifests ({} modules, {} changed pairs), {} cases, seed {}, {:.1?}",
        manifests_count(),
        modules.len(),
        pairs.len(),
        cases.len(),
        seed(),
        started.elapsed()
    );
    Run {
        modules,
        pairs,
        cases,
        info,
        rust,
        guards,
    }
}

fn struct_field<'m>(
    model: &'m Model,
    ty: &str,
    field: &str,
) -> Option<&'m eventbus_codegen::Field> {
    match &model.type_def(ty)?.kind {
        TypeKind::Struct(fields) => fields.iter().find(|f| f.name == field),
        TypeKind::Enum(_) => None,
    }
}

impl Run {
    fn rust(&self) -> &[Verdict] {
        match &self.rust {
            Ok(v) => v,
            Err(report) => panic!(
                "the generated Rust of the random manifests does not compile (manifests in {}):\n{report}",
                harness::work_dir().join("crate/manifests").display()
            ),
        }
    }

    /// Panics with every failure, the manifests involved and the values.
    fn report(&self, property: &str, failures: Vec<(usize, String)>) {
        if failures.is_empty() {
            return;
        }
        let mut out = format!("{property}: {} failure(s)\n", failures.len());
        let mut shown = BTreeSet::new();
        for (case, message) in failures.iter().take(12) {
            let c = &self.cases[*case];
            let module = &self.modules[c.module];
            out.push_str(&format!(
                "\n- module {} ({}), type {:?}, event {:?}:\n  {message}\n  JSON: {}\n",
                module.name, self.info[*case].what, c.ty, c.event, c.json
            ));
            if let Purpose::Compat { pair, .. } = self.info[*case].purpose {
                let p = &self.pairs[pair];
                out.push_str(&format!(
                    "  change: {}\n  diff: {:#?}\n",
                    p.change, p.changes
                ));
                shown.insert(p.old);
                shown.insert(p.new);
            }
            shown.insert(c.module);
        }
        for m in shown {
            out.push_str(&format!(
                "\n--- manifest {} ---\n{}",
                self.modules[m].name, self.modules[m].yaml
            ));
        }
        out.push_str(&format!(
            "\n(seed {}; all manifests of this run are in {})",
            seed(),
            harness::work_dir().join("crate/manifests").display()
        ));
        panic!("{out}");
    }
}

fn check_expect(expect: &Expect, rust: &Verdict) -> Option<String> {
    match (expect, rust.accepted) {
        (Expect::Exact(text), true) if rust.detail != *text => Some(format!(
            "Rust wrote back\n    {}\n  instead of the canonical\n    {text}",
            rust.detail
        )),
        (Expect::Exact(_) | Expect::Accept, false) => {
            Some(format!("Rust rejects it: {}", rust.detail))
        }
        (Expect::Reject, true) => Some(format!("Rust accepts it (wrote {})", rust.detail)),
        _ => None,
    }
}

// ---- property 1 -----------------------------------------------------------------------------------

#[test]
fn generated_rust_compiles_and_round_trips_json_to_the_canonical_text() {
    let run = shared_run();
    let rust = run.rust();
    let mut failures = Vec::new();
    let mut exact = 0;
    for (i, info) in run.info.iter().enumerate() {
        if let Purpose::Value = info.purpose {
            if matches!(info.expect, Expect::Exact(_)) {
                exact += 1;
            }
            if let Some(message) = check_expect(&info.expect, &rust[i]) {
                failures.push((i, message));
            }
        }
    }
    assert!(exact > 0, "no valid values were generated");
    run.report("round trip through the generated Rust", failures);
}

// ---- property 2 -----------------------------------------------------------------------------------

#[test]
fn typescript_guards_accept_exactly_what_serde_accepts() {
    let run = shared_run();
    let rust = run.rust();
    let guards = match &run.guards {
        Ok(v) => v,
        Err(report) => panic!(
            "the generated TypeScript of the random manifests (in {}) fails:\n{report}",
            harness::work_dir().join("crate/ts").display()
        ),
    };
    assert_eq!(guards.len(), rust.len());
    let mut failures = Vec::new();
    let (mut accepted, mut rejected) = (0, 0);
    for (i, (r, g)) in rust.iter().zip(guards).enumerate() {
        if r.accepted {
            accepted += 1;
        } else {
            rejected += 1;
        }
        if r.accepted != g.accepted {
            failures.push((
                i,
                format!(
                    "serde {} ({}), the guards {} ({})",
                    if r.accepted { "accepts" } else { "rejects" },
                    r.detail,
                    if g.accepted { "accept" } else { "reject" },
                    g.detail
                ),
            ));
        }
    }
    assert!(
        accepted > 0 && rejected > 0,
        "{accepted} accepted, {rejected} rejected"
    );
    run.report("TypeScript guards vs serde", failures);
}

// ---- property 4 -----------------------------------------------------------------------------------

#[test]
fn changes_classified_safe_read_the_old_json_with_the_new_types() {
    let run = shared_run();
    let rust = run.rust();
    let mut failures = Vec::new();
    let mut checked = BTreeMap::<&str, usize>::new();
    let mut witnessed = BTreeSet::new();
    for (i, info) in run.info.iter().enumerate() {
        let Purpose::Compat { pair, .. } = info.purpose else {
            continue;
        };
        let level = run.pairs[pair].changes.iter().map(|c| c.level).min();
        *checked
            .entry(level.map_or("none", Level::as_str))
            .or_default() += 1;
        if !rust[i].accepted && level == Some(Level::Breaking) {
            witnessed.insert(pair);
        }
        if let Some(message) = check_expect(&info.expect, &rust[i]) {
            failures.push((i, message));
        }
    }
    let mut pairs_by_level = BTreeMap::<&str, usize>::new();
    for p in &run.pairs {
        let level = p.changes.iter().map(|c| c.level).min();
        *pairs_by_level
            .entry(level.map_or("none", Level::as_str))
            .or_default() += 1;
    }
    eprintln!(
        "property 4: {} changed manifests by worst level {pairs_by_level:?}; cases {checked:?}; \
         {} breaking ones with a value the other side rejects",
        run.pairs.len(),
        witnessed.len()
    );
    run.report("changes and the wire", failures);
}
