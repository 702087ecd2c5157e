//! The serde adapters of `eventbus_runtime::wire`, at their boundaries.

use std::collections::BTreeMap;

use eventbus_runtime::wire::{As, Int64, List, MAX_SAFE_INTEGER, Map, Optional, Same};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct U(#[serde(with = "As::<Int64>")] u64);

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct I(
    // The absolute spelling generated code uses.
    #[serde(with = "::eventbus_runtime::wire::As::<::eventbus_runtime::wire::Int64>")] i64,
);

fn u(json: &str) -> Result<u64, String> {
    serde_json::from_str::<U>(json)
        .map(|U(v)| v)
        .map_err(|e| e.to_string())
}

fn i(json: &str) -> Result<i64, String> {
    serde_json::from_str::<I>(json)
        .map(|I(v)| v)
        .map_err(|e| e.to_string())
}

const POLICY: &str = "64-bit integers travel as JSON strings because JSON numbers above 2^53 lose precision in JavaScript";

#[test]
fn int64_serializes_as_decimal_strings() {
    assert_eq!(
        serde_json::to_string(&U(u64::MAX)).unwrap(),
        r#""18446744073709551615""#
    );
    assert_eq!(serde_json::to_string(&U(0)).unwrap(), r#""0""#);
    assert_eq!(
        serde_json::to_string(&I(i64::MIN)).unwrap(),
        r#""-9223372036854775808""#
    );
    assert_eq!(serde_json::to_string(&I(-1)).unwrap(), r#""-1""#);
    for v in [
        0,
        1,
        9,
        10,
        MAX_SAFE_INTEGER as u64 + 1,
        u64::MAX - 1,
        u64::MAX,
    ] {
        assert_eq!(u(&serde_json::to_string(&U(v)).unwrap()), Ok(v));
    }
    for v in [
        i64::MIN,
        i64::MIN + 1,
        -MAX_SAFE_INTEGER - 2,
        -1,
        0,
        1,
        i64::MAX,
    ] {
        assert_eq!(i(&serde_json::to_string(&I(v)).unwrap()), Ok(v));
    }
}

#[test]
fn int64_accepts_canonical_strings_within_range() {
    assert_eq!(u(r#""18446744073709551615""#), Ok(u64::MAX));
    assert_eq!(u(r#""0""#), Ok(0));
    assert_eq!(u(r#""10""#), Ok(10));
    assert_eq!(i(r#""-9223372036854775808""#), Ok(i64::MIN));
    assert_eq!(i(r#""9223372036854775807""#), Ok(i64::MAX));
    assert_eq!(i(r#""-1""#), Ok(-1));

    let out_of_range = u(r#""18446744073709551616""#).unwrap_err();
    assert!(
        out_of_range.contains("out of range for u64"),
        "{out_of_range}"
    );
    assert!(
        i(r#""9223372036854775808""#)
            .unwrap_err()
            .contains("out of range for i64")
    );
    assert!(i(r#""-9223372036854775809""#).is_err());
}

#[test]
fn int64_rejects_non_canonical_strings() {
    for bad in [
        r#""-0""#,
        r#""007""#,
        r#""00""#,
        r#""+1""#,
        r#"" 1""#,
        r#""1 ""#,
        r#""""#,
        r#""-""#,
        r#""--1""#,
        r#""-01""#,
        r#""1e3""#,
        r#""1.0""#,
        r#""0x10""#,
        r#""١""#,
    ] {
        let error = i(bad).unwrap_err();
        assert!(error.contains("invalid value: string"), "{bad}: {error}");
        assert!(error.contains(POLICY), "{bad}: {error}");
        assert!(u(bad).is_err(), "{bad}");
    }
    // A sign is for i64 only.
    assert!(u(r#""-1""#).unwrap_err().contains("invalid value"));
}

#[test]
fn int64_accepts_numbers_javascript_can_represent_exactly() {
    assert_eq!(u("9007199254740991"), Ok(9_007_199_254_740_991));
    assert_eq!(u("0"), Ok(0));
    assert_eq!(i("9007199254740991"), Ok(MAX_SAFE_INTEGER));
    assert_eq!(i("-9007199254740991"), Ok(-MAX_SAFE_INTEGER));
    assert_eq!(i("-5"), Ok(-5));
    assert!(u("-5").unwrap_err().contains("out of range for u64"));
}

#[test]
fn int64_rejects_numbers_beyond_2_pow_53_and_non_integers() {
    for bad in [
        "9007199254740992",
        "9007199254740993",
        "18446744073709551615",
    ] {
        let error = u(bad).unwrap_err();
        assert!(error.contains(POLICY), "{bad}: {error}");
        assert!(
            error.contains(&format!("send it as the string \"{bad}\"")),
            "{error}"
        );
    }
    for bad in [
        "-9007199254740992",
        "-9007199254740993",
        "-9223372036854775808",
    ] {
        let error = i(bad).unwrap_err();
        assert!(error.contains(POLICY), "{bad}: {error}");
    }
    // Larger than any u64: serde_json reads it as a float, which is rejected too.
    for bad in ["18446744073709551616", "1.5", "1e3", "1.0", "-0.0"] {
        let error = u(bad).unwrap_err();
        assert!(error.contains("floating point"), "{bad}: {error}");
        assert!(error.contains(POLICY), "{bad}: {error}");
        assert!(i(bad).is_err(), "{bad}");
    }
    for bad in ["null", "true", "[]", "{}"] {
        assert!(u(bad).is_err() && i(bad).is_err(), "{bad}");
    }
}

#[derive(Debug, PartialEq, Default, Serialize, Deserialize)]
struct Optionals {
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "As::<Optional<Same>>"
    )]
    name: Option<String>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "As::<Optional<Same>>"
    )]
    extra: Option<Value>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "As::<Optional<Int64>>"
    )]
    big: Option<u64>,
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "As::<Optional<List<Int64>>>"
    )]
    bigs: Option<Vec<i64>>,
}

fn optionals(json: &str) -> Result<Optionals, String> {
    serde_json::from_str(json).map_err(|e| e.to_string())
}

#[test]
fn optional_absent_is_none_and_none_is_omitted() {
    assert_eq!(optionals("{}"), Ok(Optionals::default()));
    assert_eq!(serde_json::to_string(&Optionals::default()).unwrap(), "{}");
}

#[test]
fn optional_present_values_go_through_the_inner_adapter() {
    let all = Optionals {
        name: Some("a".into()),
        extra: Some(json!({"k": [1]})),
        big: Some(u64::MAX),
        bigs: Some(vec![i64::MIN, 0]),
    };
    let text = serde_json::to_string(&all).unwrap();
    assert_eq!(
        text,
        r#"{"name":"a","extra":{"k":[1]},"big":"18446744073709551615","bigs":["-9223372036854775808","0"]}"#
    );
    assert_eq!(optionals(&text), Ok(all));
    assert_eq!(optionals(r#"{"big": 12}"#).unwrap().big, Some(12));
}

#[test]
fn optional_explicit_null_is_rejected_unless_the_inner_type_accepts_it() {
    let error = optionals(r#"{"name": null}"#).unwrap_err();
    assert!(
        error.contains("invalid type: null, expected a string"),
        "{error}"
    );
    assert!(optionals(r#"{"big": null}"#).is_err());
    assert!(optionals(r#"{"bigs": null}"#).is_err());
    assert_eq!(
        optionals(r#"{"extra": null}"#).unwrap().extra,
        Some(Value::Null)
    );
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Collections {
    #[serde(with = "As::<List<Int64>>")]
    heights: Vec<u64>,
    #[serde(with = "As::<List<Same>>")]
    tags: Vec<String>,
    #[serde(with = "As::<Map<Int64>>")]
    balances: BTreeMap<String, i64>,
    #[serde(with = "As::<Map<Same>>")]
    env: BTreeMap<String, String>,
    #[serde(with = "As::<Map<List<Int64>>>")]
    nested: BTreeMap<String, Vec<u64>>,
    #[serde(with = "As::<List<List<Int64>>>")]
    matrix: Vec<Vec<i64>>,
}

#[test]
fn lists_and_maps_apply_the_adapter_to_each_element() {
    let value = Collections {
        heights: vec![1, u64::MAX],
        tags: vec!["x".into()],
        balances: BTreeMap::from([("a".into(), -5), ("b".into(), i64::MAX)]),
        env: BTreeMap::from([("HOME".into(), "/root".into())]),
        nested: BTreeMap::from([("k".into(), vec![u64::MAX])]),
        matrix: vec![vec![], vec![-1, 2]],
    };
    let text = serde_json::to_value(&value).unwrap();
    assert_eq!(
        text,
        json!({
            "heights": ["1", "18446744073709551615"],
            "tags": ["x"],
            "balances": {"a": "-5", "b": "9223372036854775807"},
            "env": {"HOME": "/root"},
            "nested": {"k": ["18446744073709551615"]},
            "matrix": [[], ["-1", "2"]],
        })
    );
    assert_eq!(serde_json::from_value::<Collections>(text).unwrap(), value);

    // Numbers are accepted element-wise under the same rule.
    let mixed = json!({
        "heights": [1, "2"], "tags": [], "balances": {"a": -5}, "env": {},
        "nested": {}, "matrix": [[3]],
    });
    let parsed: Collections = serde_json::from_value(mixed).unwrap();
    assert_eq!(parsed.heights, [1, 2]);
    assert_eq!(parsed.balances["a"], -5);
    assert_eq!(parsed.matrix, [vec![3]]);
}

#[test]
fn lists_and_maps_reject_bad_elements_and_wrong_shapes() {
    let base = || json!({"heights": [], "tags": [], "balances": {}, "env": {}, "nested": {}, "matrix": []});
    let with = |field: &str, value: Value| {
        let mut v = base();
        v[field] = value;
        serde_json::from_value::<Collections>(v)
            .map(|_| ())
            .map_err(|e| e.to_string())
    };
    assert_eq!(with("heights", json!([])), Ok(()));
    assert!(
        with("heights", json!([9_007_199_254_740_993_u64]))
            .unwrap_err()
            .contains(POLICY)
    );
    assert!(with("heights", json!(["007"])).is_err());
    assert!(
        with("heights", json!(null))
            .unwrap_err()
            .contains("expected a JSON array")
    );
    assert!(with("heights", json!({})).is_err());
    assert!(with("balances", json!({"a": 1.5})).is_err());
    assert!(
        with("balances", json!([]))
            .unwrap_err()
            .contains("expected a JSON object")
    );
    assert!(with("tags", json!([1])).is_err());
    assert!(with("nested", json!({"k": [-1]})).is_err());
    assert!(with("matrix", json!([["-0"]])).is_err());
}
