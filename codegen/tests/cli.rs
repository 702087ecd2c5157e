//! The real `eventbus` binary: exit codes, both output formats, stale `--check`, diff.

use std::path::PathBuf;
use std::process::{Command, Output};

mod support;
use support::repo;

fn eventbus(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_eventbus"))
        .args(args)
        .current_dir(repo())
        .env("NO_COLOR", "1")
        .output()
        .unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("eventbus-cli-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

#[test]
fn check_accepts_the_repository_manifest() {
    let out = eventbus(&["check"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("events.yaml: ok (30 events"),
        "{}",
        text(&out.stdout)
    );
}

#[test]
fn check_reports_every_error_and_exits_1() {
    let out = eventbus(&["check", "codegen/tests/broken/many_errors.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    // Piped: the compact form, `path:line:column: error: message` first.
    assert!(
        err.contains("codegen/tests/broken/many_errors.yaml:16:14: error: unknown type `PackageEvents`\n   |\n16 |     payload: PackageEvents\n"),
        "{err}"
    );
    assert!(err.contains("= help: did you mean `PackageEvent`?"));
    assert!(err.contains("due to 5 errors"));
    assert!(!err.contains('\x1b'), "no colors when piped");
}

#[test]
fn color_flag_forces_or_suppresses_ansi_on_a_pipe() {
    const MANIFEST: &str = "codegen/tests/broken/unknown_type.yaml";
    // `eventbus()` sets NO_COLOR: `--color always` must still win over it.
    let out = eventbus(&["check", MANIFEST, "--color", "always"]);
    assert_eq!(out.status.code(), Some(1));
    let err = text(&out.stderr);
    // The rustc-style layout (not the compact pipe form), with style.rs's escapes: a bold red
    // `error`, a bold headline, blue `-->` and gutters, a red caret line, a bold `help`.
    assert!(
        err.starts_with("\x1b[1;31merror\x1b[0m\x1b[1m: unknown type `strng`\x1b[0m\n"),
        "{err:?}"
    );
    assert!(
        err.contains(&format!(" \x1b[1;34m-->\x1b[0m {MANIFEST}:6:16\n")),
        "{err:?}"
    );
    assert!(
        err.contains("\x1b[1;34m6 |\x1b[0m       dnpName: strng\n"),
        "{err:?}"
    );
    assert!(
        err.contains(
            "\x1b[1;34m  |\x1b[0m\x1b[1;31m                ^^^^^ not a primitive or a declared type\x1b[0m\n"
        ),
        "{err:?}"
    );
    assert!(
        err.contains("  \x1b[1;34m=\x1b[0m \x1b[1mhelp\x1b[0m: did you mean `string`?\n"),
        "{err:?}"
    );
    // The global flag goes before the subcommand too, and colors one-line file problems.
    let out = eventbus(&["--color", "always", "check", "does/not/exist.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).starts_with("\x1b[1;31merror\x1b[0m: cannot read `does/not/exist.yaml`"),
        "{:?}",
        text(&out.stderr)
    );

    // `--color never` wins over CLICOLOR_FORCE: the plain compact form.
    let never = Command::new(env!("CARGO_BIN_EXE_eventbus"))
        .args(["check", MANIFEST, "--color", "never"])
        .current_dir(repo())
        .env_remove("NO_COLOR")
        .env("CLICOLOR_FORCE", "1")
        .output()
        .unwrap();
    assert_eq!(never.status.code(), Some(1));
    let err = text(&never.stderr);
    assert!(!err.contains('\x1b'), "{err:?}");
    assert!(
        err.starts_with(&format!("{MANIFEST}:6:16: error: unknown type `strng`\n")),
        "{err:?}"
    );

    // `auto` on a pipe: plain, unless CLICOLOR_FORCE asks for colors.
    let auto = |force: Option<&str>| {
        let mut command = Command::new(env!("CARGO_BIN_EXE_eventbus"));
        command
            .args(["check", MANIFEST])
            .current_dir(repo())
            .env_remove("NO_COLOR")
            .env_remove("CLICOLOR_FORCE");
        if let Some(force) = force {
            command.env("CLICOLOR_FORCE", force);
        }
        text(&command.output().unwrap().stderr)
    };
    assert!(!auto(None).contains('\x1b'));
    assert!(!auto(Some("0")).contains('\x1b'));
    assert!(
        auto(Some("1")).starts_with("\x1b[1;31merror\x1b[0m"),
        "{:?}",
        auto(Some("1"))
    );
}

#[test]
fn check_json_lists_every_diagnostic() {
    let out = eventbus(&[
        "check",
        "codegen/tests/broken/unknown_type.yaml",
        "--format",
        "json",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let items = json.as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert_eq!(items[2]["line"], 10);
    assert_eq!(items[2]["column"], 14);
    assert_eq!(items[2]["severity"], "error");
    assert_eq!(items[2]["message"], "unknown type `PackageEvnt`");
    assert_eq!(items[2]["hint"], "did you mean `PackageEvent`?");
    assert_eq!(items[2]["path"], "codegen/tests/broken/unknown_type.yaml");
    let ok = eventbus(&["check", "--format", "json"]);
    assert_eq!(ok.status.code(), Some(0));
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&ok.stdout).unwrap(),
        serde_json::json!([])
    );
}

#[test]
fn file_and_argument_problems_are_one_line_and_exit_2() {
    let out = eventbus(&["check", "does/not/exist.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("error: cannot read `does/not/exist.yaml`"),
        "{err}"
    );
    assert!(out.stdout.is_empty());
    // With `--format json`, stdout carries the same problem as a diagnostic for CI tools.
    let out = eventbus(&["check", "does/not/exist.yaml", "--format", "json"]);
    assert_eq!(out.status.code(), Some(2));
    assert_eq!(
        text(&out.stderr).lines().count(),
        1,
        "{}",
        text(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let items = json.as_array().unwrap();
    assert_eq!(items.len(), 1, "{json}");
    assert_eq!(items[0]["path"], "does/not/exist.yaml");
    assert_eq!(items[0]["severity"], "error");
    assert_eq!(items[0]["line"], serde_json::Value::Null);
    assert!(
        items[0]["message"]
            .as_str()
            .unwrap()
            .starts_with("cannot read `does/not/exist.yaml`"),
        "{json}"
    );
    let mut keys: Vec<_> = items[0].as_object().unwrap().keys().collect();
    keys.sort();
    assert_eq!(
        keys,
        [
            "column", "hint", "label", "line", "message", "path", "severity"
        ],
        "the keys of every other diagnostic"
    );
    let out = eventbus(&["generate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("nothing to generate"));
    let out = eventbus(&["frobnicate"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(!text(&out.stderr).contains("panicked"));
}

#[test]
fn generate_writes_only_changes_and_check_detects_stale_outputs() {
    let dir = scratch("generate");
    let (rust, ts, md, api) = (
        dir.join("rust"),
        dir.join("events.ts"),
        dir.join("EVENTS.md"),
        dir.join("asyncapi.json"),
    );
    let args = |check: bool| {
        let mut a = vec![
            "generate".to_owned(),
            "events.yaml".to_owned(),
            "--rust".to_owned(),
            rust.display().to_string(),
            "--ts".to_owned(),
            ts.display().to_string(),
            "--docs".to_owned(),
            md.display().to_string(),
            "--asyncapi".to_owned(),
            api.display().to_string(),
        ];
        if check {
            a.push("--check".to_owned());
        }
        a
    };
    let run = |check: bool| {
        let a = args(check);
        eventbus(&a.iter().map(String::as_str).collect::<Vec<_>>())
    };
    // Missing outputs are stale, and --check writes nothing.
    let out = run(true);
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        text(&out.stderr).matches("stale:").count(),
        4,
        "{}",
        text(&out.stderr)
    );
    assert!(!ts.exists());
    let out = run(false);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stderr).matches("wrote").count(), 4);
    assert!(
        std::fs::read_to_string(rust.join("events.rs"))
            .unwrap()
            .starts_with("// @generated")
    );
    assert_eq!(run(true).status.code(), Some(0));
    let out = run(false);
    assert_eq!(text(&out.stderr).matches("unchanged").count(), 4);
    // A hand edit makes the output stale.
    std::fs::write(&md, "edited").unwrap();
    let out = run(true);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains(&format!("stale: {}", md.display())));
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn docs_prints_markdown_and_checks_the_committed_file() {
    let out = eventbus(&["docs"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(text(&out.stdout).starts_with("<!-- @generated"));
    let out = eventbus(&["docs", "events.yaml", "--out", "docs/EVENTS.md", "--check"]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "docs/EVENTS.md is stale: {}",
        text(&out.stderr)
    );
}

#[test]
fn diff_exit_codes_and_formats() {
    let d = "codegen/tests/diff";
    let out = eventbus(&[
        "diff",
        &format!("{d}/fields/old.yaml"),
        &format!("{d}/fields/new.yaml"),
    ]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stdout).contains("breaking: events.job.payload.removed [FIELD_REMOVED]"));
    let out = eventbus(&[
        "diff",
        &format!("{d}/fields/old.yaml"),
        &format!("{d}/fields/new.yaml"),
        "--allow-breaking",
    ]);
    assert_eq!(out.status.code(), Some(0));
    let out = eventbus(&[
        "diff",
        &format!("{d}/fields/old.yaml"),
        &format!("{d}/fields/new.yaml"),
        "--format",
        "json",
        "--allow-breaking",
    ]);
    let changes: Vec<serde_json::Value> = serde_json::from_slice(&out.stdout).unwrap();
    assert!(changes.iter().any(|c| c["rule"] == "FIELD_REMOVED"
        && c["level"] == "breaking"
        && c["path"] == "events.job.payload.removed"));
    let out = eventbus(&[
        "diff",
        &format!("{d}/cosmetic/old.yaml"),
        &format!("{d}/cosmetic/new.yaml"),
        "--format",
        "markdown",
    ]);
    assert_eq!(out.status.code(), Some(0));
    assert_eq!(
        text(&out.stdout),
        "### Event manifest changes\n\nNo changes.\n"
    );
    // Real changes in Markdown: a table row per change, most serious first, still exit 1.
    let out = eventbus(&[
        "diff",
        &format!("{d}/types/old.yaml"),
        &format!("{d}/types/new.yaml"),
        "--format",
        "markdown",
    ]);
    assert_eq!(out.status.code(), Some(1));
    let md = text(&out.stdout);
    let lines: Vec<&str> = md.lines().collect();
    assert_eq!(
        lines[..4],
        [
            "### Event manifest changes",
            "",
            "| Level | Path | Rule | Change |",
            "| --- | --- | --- | --- |"
        ],
        "{md}"
    );
    assert_eq!(lines.len(), 4 + 10, "one row per change: {md}");
    assert_eq!(
        lines[4],
        "| ❌ breaking | `events.counted.payload.byName{}` | `FIELD_TYPE_CHANGED` | type changed from `u32` to `string` |"
    );
    assert!(lines.contains(
        &"| ⚠️ warning | `events.measured.payload` | `PAYLOAD_TYPE_RENAMED` | payload type `Reading` is now `Measurement`: Rust and TypeScript code naming it must change |"
    ));
    assert_eq!(
        lines[13],
        "| ✅ safe | `events.measured.payload.unit` | `OPTIONAL_FIELD_ADDED` | optional field `unit` added |"
    );
    // A broken side is reported like `check` does.
    let out = eventbus(&["diff", "codegen/tests/broken/version.yaml", "events.yaml"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("unsupported manifest version 2"));
}

#[test]
fn diff_reads_old_manifests_from_git() {
    // A committed corpus manifest against the work tree's new side: the report must be the one
    // the same old text gives when read from a file, and hold the corpus' known changes.
    let d = "codegen/tests/diff/fields";
    let committed = Command::new("git")
        .args(["show", &format!("HEAD:{d}/old.yaml")])
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(committed.status.success(), "{}", text(&committed.stderr));
    let dir = scratch("git");
    let old_file = dir.join("old.yaml");
    std::fs::write(&old_file, &committed.stdout).unwrap();
    let from_git = eventbus(&[
        "diff",
        &format!("git:HEAD:{d}/old.yaml"),
        &format!("{d}/new.yaml"),
    ]);
    let from_file = eventbus(&["diff", old_file.to_str().unwrap(), &format!("{d}/new.yaml")]);
    assert_eq!(
        from_git.status.code(),
        Some(1),
        "{}",
        text(&from_git.stderr)
    );
    let report = text(&from_git.stdout);
    assert_eq!(report, text(&from_file.stdout));
    assert!(
        report.contains(
            "breaking: events.job.payload.removed [FIELD_REMOVED] field `removed` removed\n"
        ),
        "{report}"
    );
    assert!(
        report.ends_with("\n8 breaking, 4 warning, 1 safe\n"),
        "{report}"
    );
    std::fs::remove_dir_all(dir).unwrap();
    // The repository's own history: HEAD's events.yaml against the work tree's.
    let out = eventbus(&[
        "diff",
        "git:HEAD:events.yaml",
        "events.yaml",
        "--allow-breaking",
    ]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).ends_with(" safe\n") || text(&out.stdout) == "no changes\n",
        "{}",
        text(&out.stdout)
    );
    let out = eventbus(&["diff", "git:no-such-rev:events.yaml", "events.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).starts_with("error: `git:no-such-rev:events.yaml`"));
    let out = eventbus(&["diff", "git:HEAD", "events.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("expected `git:REV:path`"));
}

#[test]
fn git_option_injection_is_refused() {
    let dir = scratch("git-injection");
    let target = dir.join("x");
    // Before the fix, git read `--output=<dir>/x:y` as an option and wrote that file.
    for spec in [
        format!("git:--output={}:y", target.display()),
        "git:HEAD:--output=y".to_owned(),
    ] {
        let out = eventbus(&["diff", &spec, "events.yaml"]);
        assert_eq!(out.status.code(), Some(2), "{spec}: {}", text(&out.stderr));
        let err = text(&out.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(
            err.starts_with(&format!(
                "error: `{spec}`: a revision or path starting with `-` is refused"
            )),
            "{err}"
        );
        assert!(out.stdout.is_empty());
    }
    let written: Vec<_> = std::fs::read_dir(&dir).unwrap().collect();
    assert!(written.is_empty(), "git wrote {written:?}");
    assert!(!repo().join("y").exists() && !repo().join("--output=y").exists());
    std::fs::remove_dir_all(dir).unwrap();
}

#[test]
fn two_outputs_on_one_path_are_refused() {
    let dir = scratch("same-path");
    let ts = dir.join("client.ts");
    let out = eventbus(&["generate", "--ts", ts.to_str().unwrap(), "--ts-client"]);
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("two outputs would be written to"),
        "{}",
        text(&out.stderr)
    );
    assert!(!ts.exists(), "nothing is written");
    std::fs::remove_dir_all(dir).unwrap();
}
