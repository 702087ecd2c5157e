//! The TypeScript output, checked by the real compiler.
//!
//! - For every `tests/golden/*.yaml` the generated module must equal the committed
//!   `tests/golden/<name>.ts`, and for the repository's `events.yaml` the module the Admin UI
//!   imports, `ui/src/generated/events.ts`. `EVENTBUS_BLESS=1` rewrites them.
//! - `tsc --strict` (pinned in `package-lock.json`; `npm ci` runs when `node_modules` is stale) accepts all of them, plus
//!   `tests/ts/usage.ts`, and `tests/ts/expect_errors.ts` whose `// @ts-expect-error` lines
//!   must each be a real error of the expected code.
//!
//! The JSON round trip between Rust and the guards is `tests/typescript_roundtrip.rs` in the
//! facade crate (it needs the compiled golden Rust types).

use std::path::{Path, PathBuf};
use std::process::Command;

mod support;
use support::{repo, tsc};

const REGENERATE: &str = "EVENTBUS_BLESS=1 cargo test -p eventbus-codegen --test typescript";

fn bless() -> bool {
    std::env::var_os("EVENTBUS_BLESS").is_some()
}

/// (manifest, committed TypeScript) for every golden manifest.
fn golden_cases() -> Vec<(PathBuf, PathBuf)> {
    let mut cases: Vec<_> = std::fs::read_dir(repo().join("tests/golden"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .map(|p| (p.clone(), p.with_extension("ts")))
        .collect();
    cases.sort();
    cases
}

fn generate(manifest: &Path) -> String {
    let model = eventbus_codegen::Model::load(manifest).unwrap_or_else(|e| panic!("{e}"));
    eventbus_codegen::typescript::file(&model)
}

/// Compares (or, when blessing, writes) the output; returns the stale path, if any.
fn check(manifest: &Path, committed: &Path) -> Option<String> {
    let code = generate(manifest);
    if bless() {
        eventbus_codegen::write_if_changed(committed, code.as_bytes()).unwrap();
        None
    } else if std::fs::read_to_string(committed).ok().as_deref() != Some(code.as_str()) {
        Some(
            committed
                .strip_prefix(repo())
                .unwrap_or(committed)
                .display()
                .to_string(),
        )
    } else {
        None
    }
}

#[test]
fn generated_typescript_matches_the_golden_files() {
    let cases = golden_cases();
    assert!(cases.len() >= 3);
    let stale: Vec<_> = cases.iter().filter_map(|(m, ts)| check(m, ts)).collect();
    assert!(
        stale.is_empty(),
        "stale golden TypeScript {stale:?}: run `{REGENERATE}` and review the diff"
    );
}

#[test]
fn the_admin_ui_types_are_up_to_date() {
    let committed = repo().join("ui/src/generated/events.ts");
    if let Some(stale) = check(&repo().join("events.yaml"), &committed) {
        panic!(
            "`{stale}` is stale: it no longer matches `events.yaml`. Regenerate it with `{REGENERATE}` \
             and commit the result."
        );
    }
}

#[test]
fn the_builder_writes_the_same_typescript() {
    let out = std::env::temp_dir().join(format!("eventbus-ts-builder-{}", std::process::id()));
    let manifest = repo().join("tests/golden/shapes.yaml");
    let ts = out.join("nested/dir/events.ts");
    eventbus_codegen::Builder::new(&manifest)
        .out_dir(&out)
        .typescript(&ts)
        .build()
        .unwrap();
    assert_eq!(std::fs::read_to_string(&ts).unwrap(), generate(&manifest));
    let before = std::fs::metadata(&ts).unwrap().modified().unwrap();
    eventbus_codegen::Builder::new(&manifest)
        .out_dir(&out)
        .typescript(&ts)
        .build()
        .unwrap();
    assert_eq!(
        std::fs::metadata(&ts).unwrap().modified().unwrap(),
        before,
        "unchanged output is not rewritten"
    );
    std::fs::remove_dir_all(out).unwrap();
}

#[test]
fn names_the_typescript_module_defines_are_reserved() {
    let source = "version: 1\npackage: demo\ntypes:\n  EventMap: { enum: [a] }\nevents:\n  eventName:\n    payload: { a: u8 }\n";
    let err = eventbus_codegen::Model::parse("events.yaml", source).unwrap_err();
    let messages: Vec<_> = err.diagnostics.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "type name `EventMap` is reserved",
            "the inline payload of `eventName` would be named `EventName`, which is reserved",
        ]
    );
}

/// Runs tsc; returns (success, diagnostics).
fn run_tsc(args: &[&str]) -> (bool, String) {
    let output = Command::new(tsc())
        .args(args)
        .current_dir(repo())
        .output()
        .unwrap_or_else(|e| panic!("cannot run tsc (is Node installed?): {e}"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

#[test]
fn tsc_strict_accepts_the_output_the_usage_and_every_expected_error() {
    let (ok, text) = run_tsc(&["-p", "tests/ts/tsconfig.json", "--pretty", "false"]);
    assert!(
        ok,
        "tsc --strict failed on the generated TypeScript or tests/ts:\n{text}"
    );
    // The config really covers every golden and the UI module.
    let (ok, listed) = run_tsc(&["-p", "tests/ts/tsconfig.json", "--listFilesOnly"]);
    assert!(ok, "{listed}");
    let mut expected: Vec<PathBuf> = golden_cases().into_iter().map(|(_, ts)| ts).collect();
    expected.push(repo().join("ui/src/generated/events.ts"));
    expected.push(repo().join("tests/ts/usage.ts"));
    expected.push(repo().join("tests/ts/expect_errors.ts"));
    for path in expected {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let parent = path
            .parent()
            .unwrap()
            .file_name()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        assert!(
            listed
                .lines()
                .any(|l| l.ends_with(&format!("{parent}/{name}"))),
            "tsc does not check {}:\n{listed}",
            path.display()
        );
    }
}

/// `@ts-expect-error` only proves that *some* error is on the next line. Without the
/// directives, tsc must report an error of the annotated code on each of those lines and
/// nowhere else.
#[test]
fn each_expected_error_is_the_intended_one() {
    let source_path = repo().join("tests/ts/expect_errors.ts");
    let source = std::fs::read_to_string(&source_path).unwrap();
    let mut expected: Vec<(usize, String)> = Vec::new(); // (1-based line of the error, code)
    let mut stripped = String::new();
    for (i, line) in source.lines().enumerate() {
        if let Some(rest) = line.trim_start().strip_prefix("// @ts-expect-error") {
            let at = line.len() - line.trim_start().len();
            let code = rest
                .split_whitespace()
                .next()
                .filter(|w| w.starts_with("TS"))
                .unwrap_or_else(|| {
                    panic!(
                        "line {}: write the expected code: `// @ts-expect-error TS2322 why`",
                        i + 1
                    )
                });
            expected.push((i + 2, code.to_owned()));
            stripped.push_str(&line[..at]);
            stripped.push_str("// (expected error below)\n");
        } else {
            stripped.push_str(line);
            stripped.push('\n');
        }
    }
    assert!(
        expected.len() >= 10,
        "expect_errors.ts should hold the negative cases"
    );
    // Same directory, so that the relative imports and the tsconfig still apply.
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("ts-expect-errors");
    std::fs::create_dir_all(&dir).unwrap();
    let copy = dir.join("expect_errors.stripped.ts");
    let fixed = stripped
        .replace("from \"../../", &format!("from \"{}/", repo().display()))
        .replace("from \"../", &format!("from \"{}/tests/", repo().display()));
    std::fs::write(&copy, fixed).unwrap();
    let tsconfig = dir.join("tsconfig.json");
    let config = serde_json::json!({
        "extends": repo().join("tests/ts/tsconfig.json"),
        "include": [],
        "files": ["expect_errors.stripped.ts"],
    });
    std::fs::write(&tsconfig, config.to_string()).unwrap();
    let (ok, text) = run_tsc(&["-p", tsconfig.to_str().unwrap(), "--pretty", "false"]);
    assert!(!ok, "without the directives tsc must fail:\n{text}");
    // Lines look like `path(12,5): error TS2322: message`.
    let mut found: Vec<(usize, String)> = Vec::new();
    for l in text
        .lines()
        .filter(|l| l.contains("expect_errors.stripped.ts("))
    {
        let after = &l[l.find(".ts(").unwrap() + 4..];
        let line: usize = after[..after.find(',').unwrap()].parse().unwrap();
        let code = after
            .split("error ")
            .nth(1)
            .and_then(|s| s.split(':').next())
            .unwrap_or("?");
        found.push((line, code.to_owned()));
    }
    let unexpected: Vec<_> = found
        .iter()
        .filter(|(line, _)| !expected.iter().any(|(l, _)| l == line))
        .collect();
    assert!(
        unexpected.is_empty(),
        "errors on lines without a directive: {unexpected:?}\n{text}"
    );
    for (line, code) in &expected {
        assert!(
            found.iter().any(|(l, c)| l == line && c == code),
            "expect_errors.ts:{line}: expected error {code}, tsc reported {:?}\n{text}",
            found.iter().filter(|(l, _)| l == line).collect::<Vec<_>>()
        );
    }
    let _ = std::fs::remove_dir_all(dir);
}
