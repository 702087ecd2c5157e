//! The diff corpus: for every `diff/<case>/{old,new}.yaml`, the classified changes must equal
//! `diff/<case>/expected.txt` (`EVENTBUS_BLESS=1` rewrites it; review the diff). Plus rules
//! checked one by one, and `diff(m, m)` reporting nothing for every golden manifest.

use std::path::Path;

use eventbus_codegen::Model;
use eventbus_codegen::diff::{Level, diff, has_breaking, text_report};

fn load(path: &Path) -> Model {
    Model::load(path).unwrap_or_else(|e| panic!("{e}"))
}

#[test]
fn every_pair_gets_its_expected_classification() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/diff");
    let bless = std::env::var_os("EVENTBUS_BLESS").is_some();
    let mut cases: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    cases.sort();
    assert!(cases.len() >= 8);
    let mut failures = Vec::new();
    for case in cases {
        let report = text_report(&diff(
            &load(&case.join("old.yaml")),
            &load(&case.join("new.yaml")),
        ));
        let expected_path = case.join("expected.txt");
        if bless {
            std::fs::write(&expected_path, &report).unwrap();
        } else if std::fs::read_to_string(&expected_path).unwrap_or_default() != report {
            failures.push(format!("{}:\n{report}", case.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn rules(case: &str) -> Vec<(Level, &'static str, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/diff")
        .join(case);
    diff(&load(&dir.join("old.yaml")), &load(&dir.join("new.yaml")))
        .into_iter()
        .map(|c| (c.level, c.rule, c.path))
        .collect()
}

#[test]
fn descriptions_examples_categories_and_order_are_never_changes() {
    assert_eq!(rules("cosmetic"), vec![]);
}

#[test]
fn field_rules() {
    let r = rules("fields");
    let has = |level, rule: &str, path: &str| {
        r.iter()
            .any(|(l, ru, p)| *l == level && *ru == rule && p == path)
    };
    let p = "events.job.payload";
    assert!(
        has(Level::Breaking, "FIELD_REMOVED", &format!("{p}.removed")),
        "{r:?}"
    );
    assert!(has(
        Level::Breaking,
        "FIELD_NOW_REQUIRED",
        &format!("{p}.becomesRequired")
    ));
    assert!(has(
        Level::Warning,
        "FIELD_NOW_OPTIONAL",
        &format!("{p}.becomesOptional")
    ));
    assert!(has(
        Level::Breaking,
        "FIELD_TYPE_CHANGED",
        &format!("{p}.typeChanged")
    ));
    assert!(has(
        Level::Warning,
        "FIELD_TYPE_WIDENED",
        &format!("{p}.widened")
    ));
    assert!(has(
        Level::Warning,
        "FIELD_TYPE_WIDENED",
        &format!("{p}.widenedFloat")
    ));
    // u32 → u64 changes the JSON form (number → string): breaking.
    assert!(has(
        Level::Breaking,
        "FIELD_TYPE_CHANGED",
        &format!("{p}.intToString64")
    ));
    assert!(has(
        Level::Breaking,
        "CARDINALITY_CHANGED",
        &format!("{p}.listToScalar")
    ));
    assert!(has(
        Level::Breaking,
        "CARDINALITY_CHANGED",
        &format!("{p}.mapToList")
    ));
    assert!(has(
        Level::Breaking,
        "ENUM_VALUE_REMOVED",
        &format!("{p}.status.failed")
    ));
    assert!(has(
        Level::Warning,
        "ENUM_VALUE_ADDED",
        &format!("{p}.status.cancelled")
    ));
    assert!(has(
        Level::Breaking,
        "REQUIRED_FIELD_ADDED",
        &format!("{p}.addedRequired")
    ));
    assert!(has(
        Level::Safe,
        "OPTIONAL_FIELD_ADDED",
        &format!("{p}.addedOptional")
    ));
}

#[test]
fn event_rules() {
    let r = rules("events");
    let has = |level, rule: &str, path: &str| {
        r.iter()
            .any(|(l, ru, p)| *l == level && *ru == rule && p == path)
    };
    assert!(
        has(Level::Breaking, "EVENT_REMOVED", "events.removed"),
        "{r:?}"
    );
    // A rename is a removal plus an addition.
    assert!(has(Level::Breaking, "EVENT_REMOVED", "events.oldName"));
    assert!(has(Level::Safe, "EVENT_ADDED", "events.newName"));
    // Deprecation is the documented way to remove.
    assert!(has(
        Level::Warning,
        "DEPRECATED_EVENT_REMOVED",
        "events.goingAway"
    ));
    assert!(has(
        Level::Safe,
        "EVENT_DEPRECATED",
        "events.kept.deprecated"
    ));
    assert!(has(
        Level::Breaking,
        "PAYLOAD_ADDED",
        "events.noPayload.payload"
    ));
    assert!(has(
        Level::Breaking,
        "PAYLOAD_REMOVED",
        "events.withPayload.payload"
    ));
}

#[test]
fn bridge_and_persistence_rules() {
    let r = rules("bridge");
    let has = |level, rule: &str, path: &str| {
        r.iter()
            .any(|(l, ru, p)| *l == level && *ru == rule && p == path)
    };
    assert!(
        has(Level::Breaking, "UI_NARROWED", "events.narrowed.ui"),
        "{r:?}"
    );
    assert!(has(
        Level::Breaking,
        "UI_NARROWED",
        "events.fromUiDropped.ui"
    ));
    assert!(has(Level::Safe, "UI_WIDENED", "events.widened.ui"));
    assert!(has(
        Level::Warning,
        "PERSIST_DROPPED",
        "events.persisted.persist"
    ));
    assert!(has(
        Level::Safe,
        "PERSIST_ADDED",
        "events.becomesPersisted.persist"
    ));
    assert!(has(
        Level::Warning,
        "POLICY_CHANGED",
        "events.throttled.policies"
    ));
}

#[test]
fn scope_rules() {
    let r = rules("scope");
    assert_eq!(
        r,
        vec![
            (
                Level::Breaking,
                "SCOPE_NARROWED",
                "events.narrowed.scope".to_owned()
            ),
            (
                Level::Safe,
                "SCOPE_WIDENED",
                "events.widened.scope".to_owned()
            ),
        ],
        "writing `scope: local` or leaving it out is the same"
    );
}

#[test]
fn nested_and_recursive_types_are_followed() {
    let r = rules("nested");
    let has = |level, rule: &str, path: &str| {
        r.iter()
            .any(|(l, ru, p)| *l == level && *ru == rule && p == path)
    };
    assert!(
        has(
            Level::Breaking,
            "REQUIRED_FIELD_ADDED",
            "events.tree.payload.weight"
        ),
        "{r:?}"
    );
    assert!(has(
        Level::Warning,
        "FIELD_TYPE_RENAMED",
        "events.tree.payload.tags{}"
    ));
    assert!(has(
        Level::Safe,
        "OPTIONAL_FIELD_ADDED",
        "events.tree.payload.tags{}.color"
    ));
}

#[test]
fn type_rules() {
    use Level::{Breaking, Safe, Warning};
    let r = rules("types");
    let expected: Vec<(Level, &str, &str)> = vec![
        // Element types are compared inside lists and maps; the cardinality is unchanged.
        (
            Breaking,
            "FIELD_TYPE_CHANGED",
            "events.counted.payload.byName{}",
        ),
        (
            Breaking,
            "FIELD_TYPE_CHANGED",
            "events.counted.payload.counts[]",
        ),
        (Breaking, "TYPE_KIND_CHANGED", "events.drawn.payload.mode"),
        (Breaking, "TYPE_KIND_CHANGED", "events.drawn.payload.shape"),
        (Breaking, "TYPE_KIND_CHANGED", "events.drawn.payload.tool"),
        // A field rename is a removal plus an addition.
        (Breaking, "FIELD_REMOVED", "events.named.payload.r"),
        (Breaking, "REQUIRED_FIELD_ADDED", "events.named.payload.r2"),
        (Warning, "FIELD_TYPE_RENAMED", "events.drawn.payload.tool"),
        // A renamed payload type is a warning, and its shape is still compared.
        (Warning, "PAYLOAD_TYPE_RENAMED", "events.measured.payload"),
        (Safe, "OPTIONAL_FIELD_ADDED", "events.measured.payload.unit"),
    ];
    let got: Vec<(Level, &str, &str)> = r.iter().map(|(l, ru, p)| (*l, *ru, p.as_str())).collect();
    assert_eq!(got, expected);
}

#[test]
fn a_manifest_never_differs_from_itself() {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
    let mut manifests = vec![repo.join("events.yaml")];
    for e in std::fs::read_dir(repo.join("tests/golden")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|e| e == "yaml") {
            manifests.push(p);
        }
    }
    for m in manifests {
        let model = load(&m);
        assert_eq!(diff(&model, &model), vec![], "{}", m.display());
    }
}

#[test]
fn package_rename_is_breaking() {
    let r = rules("package");
    assert_eq!(
        r,
        vec![(Level::Breaking, "PACKAGE_CHANGED", "package".to_owned())]
    );
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/diff/package");
    assert!(has_breaking(&diff(
        &load(&dir.join("old.yaml")),
        &load(&dir.join("new.yaml"))
    )));
}
