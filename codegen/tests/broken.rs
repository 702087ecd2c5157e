//! The broken-manifest corpus: every `broken/*.yaml` must be rejected with exactly the report
//! in its `.stderr` file (line, column, message, snippet, hint). `EVENTBUS_BLESS=1` rewrites the
//! `.stderr` files; review the diff.

use std::path::Path;

use eventbus_codegen::Model;

#[test]
fn every_broken_manifest_gets_its_exact_report() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken");
    let bless = std::env::var_os("EVENTBUS_BLESS").is_some();
    let mut cases = 0;
    let mut failures = Vec::new();
    let mut entries: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    entries.sort();
    for path in entries
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
    {
        cases += 1;
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let source = std::fs::read_to_string(&path).unwrap();
        let report = match Model::parse(format!("broken/{name}"), &source) {
            Ok(_) => {
                failures.push(format!("{name}: accepted, but it is broken"));
                continue;
            }
            Err(err) => err.to_string(),
        };
        let expected_path = path.with_extension("stderr");
        if bless {
            std::fs::write(&expected_path, &report).unwrap();
            continue;
        }
        let expected = std::fs::read_to_string(&expected_path).unwrap_or_default();
        if expected != report {
            failures.push(format!(
                "{name}: report differs\n--- expected\n{expected}\n--- actual\n{report}"
            ));
        }
    }
    assert!(cases >= 15, "the corpus shrank to {cases} cases");
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

/// Every error of a broken manifest carries a real position inside the file.
#[test]
fn every_error_points_into_the_file() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken");
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        let source = std::fs::read_to_string(&path).unwrap();
        let lines = source.lines().count().max(1);
        let err = Model::parse("x.yaml", &source).unwrap_err();
        for d in &err.diagnostics {
            assert!(
                d.span.line >= 1 && d.span.line <= lines,
                "{}: {d:?}",
                path.display()
            );
            assert!(d.span.column >= 1, "{}: {d:?}", path.display());
        }
    }
}

#[test]
fn independent_errors_are_all_reported() {
    let source = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken/many_errors.yaml"),
    )
    .unwrap();
    let err = Model::parse("events.yaml", &source).unwrap_err();
    let found: Vec<(usize, usize, &str)> = err
        .diagnostics
        .iter()
        .map(|d| (d.span.line, d.span.column, d.message.as_str()))
        .collect();
    assert_eq!(
        found,
        vec![
            (5, 5, "unknown key `descripton` in type `PackageEvent`"),
            (13, 9, "`ui` must be none, to_ui, from_ui or both"),
            (14, 14, "`persist` must be true or false, found a string"),
            (16, 14, "unknown type `PackageEvents`"),
            (
                17,
                15,
                "bad duration for `throttle`: `fast` is not a duration"
            ),
        ]
    );
    assert_eq!(
        err.diagnostics[0].help.as_deref(),
        Some("did you mean `description`?")
    );
    assert_eq!(
        err.diagnostics[1].help.as_deref(),
        Some("did you mean `to_ui`?")
    );
    assert_eq!(
        err.diagnostics[3].help.as_deref(),
        Some("did you mean `PackageEvent`?")
    );
}

/// `scope` takes `local` or `distributed`; a typo gets a did-you-mean hint.
#[test]
fn scope_values_are_checked_with_a_hint() {
    let source = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/broken/bad_scope.yaml"),
    )
    .unwrap();
    let err = Model::parse("bad_scope.yaml", &source).unwrap_err();
    let found: Vec<(usize, usize, &str, Option<&str>)> = err
        .diagnostics
        .iter()
        .map(|d| {
            (
                d.span.line,
                d.span.column,
                d.message.as_str(),
                d.help.as_deref(),
            )
        })
        .collect();
    let message = "`scope` must be local or distributed";
    assert_eq!(
        found,
        vec![
            (6, 12, message, Some("did you mean `distributed`?")),
            (8, 12, message, Some("one of: local, distributed")),
            (10, 12, message, Some("one of: local, distributed")),
        ]
    );
    let ok = Model::parse(
        "ok.yaml",
        "version: 1\npackage: demo\nevents:\n  a: { scope: distributed }\n  b: { scope: local }\n  c: {}\n",
    )
    .unwrap();
    let scopes: Vec<_> = ok.events.iter().map(|e| e.scope.as_str()).collect();
    assert_eq!(scopes, ["distributed", "local", "local"]);
}

/// Hostile inputs: each must come back as an error (or a model), quickly, without a panic.
#[test]
fn hostile_inputs_are_rejected_without_panic() {
    let deep = format!("{}{}", "[".repeat(10_000), "]".repeat(10_000));
    let deep_block: String = (0..300)
        .map(|i| format!("{}k{i}:\n", "  ".repeat(i)))
        .collect();
    let huge = format!(
        "version: 1\npackage: demo\ndescription: \"{}\"\nevents: {{}}\n",
        "x".repeat(10 * 1024 * 1024)
    );
    let laughs = {
        let mut s = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..30 {
            s.push_str(&format!("a{i}: &a{i} [*a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}, *a{p}]\n", p = i - 1));
        }
        s
    };
    let binary: String = (0u8..=255).map(char::from).collect();
    let many_events: String = {
        let mut s = String::from("version: 1\npackage: demo\nevents:\n");
        for i in 0..5000 {
            s.push_str(&format!("  e{i}: {{ payload: Missing{i} }}\n"));
        }
        s
    };
    let long_chain: String = {
        // Many types in one long chain and one long required cycle: the cycle check must stay
        // linear (it once took minutes here) and must not recurse per type.
        let mut s = String::from("version: 1\npackage: demo\ntypes:\n");
        for i in 0..20_000 {
            s.push_str(&format!(
                "  T{i}: {{ fields: {{ next: T{} }} }}\n",
                (i + 1) % 20_000
            ));
        }
        s.push_str("events: {}\n");
        s
    };
    for (name, input) in [
        ("long type cycle", long_chain.as_str()),
        ("deep flow nesting", deep.as_str()),
        ("deep block nesting", deep_block.as_str()),
        ("10 MB", huge.as_str()),
        ("billion laughs", laughs.as_str()),
        ("binary", binary.as_str()),
        ("many errors", many_events.as_str()),
        ("tabs", "\t\t\tversion: 1"),
        ("only a scalar", "42"),
        ("null", "~"),
        ("document markers", "---\n---\n"),
    ] {
        let result = Model::parse("hostile.yaml", input);
        let err = result.expect_err(name);
        assert!(!err.diagnostics.is_empty(), "{name}");
        let rendered = err.to_string();
        assert!(rendered.contains("hostile.yaml:"), "{name}: {rendered}");
    }
}

#[test]
fn endless_files_are_not_read_into_memory() {
    let err = Model::load("/dev/zero").unwrap_err();
    assert!(
        err.to_string().contains("larger than the manifest limit"),
        "{err}"
    );
}
