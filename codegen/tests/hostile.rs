//! Hostile manifests are data, never code (issue 11, part 3): descriptions, examples and
//! enum/field text containing comment terminators, quotes, backslashes, backticks, `${..}`,
//! `</script>`, Markdown pipes and Unicode confusables or bidi controls must not break the
//! syntax of any generated file, and names outside the identifier grammar are rejected with a
//! located error. See docs/robustness.md.

use std::process::Command;

use eventbus_codegen::Model;

mod support;
use support::repo;

/// Text that would end a comment, a string or a template, open a tag, or split a table row.
const HOSTILE: &[&str] = &[
    "ends */ a comment /* and opens one",
    "quote \" single ' backslash \\ trailing \\",
    "backtick ` template ${process.exit(1)} `${x}`",
    "</script><script>alert(1)</script> <!-- -->",
    "pipe | in | a | table |",
    "confusable \u{0430}\u{0435} bidi \u{202e}evil\u{202c} zero width \u{200b} nul-ish \u{2028} \u{2029}",
    "doc line */ #[doc = \"x\"] fn injected() {} /*",
    "newline\n# Heading injected\n| a | b |\n",
    "\"\"\" r#\"raw\"# ''' \\u{0} \\x00",
];

/// The hostile text as a YAML double-quoted scalar.
fn yaml_string(text: &str) -> String {
    serde_json::to_string(text).unwrap()
}

/// A manifest whose every free-text place holds `text` (descriptions of the package, types,
/// fields and events; example strings).
fn manifest(text: &str) -> String {
    let s = yaml_string(text);
    format!(
        r#"version: 1
package: hostile
description: {s}
types:
  Level:
    description: {s}
    enum: [low, high]
  Detail:
    description: {s}
    fields:
      note:
        type: string
        description: {s}
      level:
        type: Level
        description: {s}
events:
  somethingHappened:
    category: chain
    description: {s}
    payload: Detail
    example: {{ note: {s}, level: low }}
  other:
    description: {s}
    payload:
      text: string
    example: {{ text: {s} }}
"#
    )
}

fn model(text: &str) -> Model {
    Model::parse("events.yaml", &manifest(text)).unwrap_or_else(|e| panic!("{text:?}: {e}"))
}

#[test]
fn generated_rust_parses_and_carries_no_injected_item() {
    for text in HOSTILE {
        let code = eventbus_codegen::rust::file(&model(text));
        let file = syn::parse_file(&code).unwrap_or_else(|e| panic!("{text:?}: {e}\n{code}"));
        let benign = syn::parse_file(&eventbus_codegen::rust::file(&model("plain"))).unwrap();
        assert_eq!(
            file.items.len(),
            benign.items.len(),
            "{text:?}: items injected"
        );
        // The text survives only inside doc comments.
        for line in code.lines().filter(|l| l.contains("injected()")) {
            let line = line.trim_start();
            assert!(
                line.starts_with("///") || line.contains("\\\"x\\\""),
                "{text:?}: code injected: {line}"
            );
        }
    }
}

#[test]
fn asyncapi_is_json_and_holds_the_text_verbatim() {
    for text in HOSTILE {
        let document = eventbus_codegen::asyncapi::document(&model(text));
        let json = serde_json::to_string(&document).unwrap();
        let back: serde_json::Value = serde_json::from_str(&json).unwrap();
        assert_eq!(back, document);
        assert!(json.contains(&serde_json::to_string(text).unwrap()[1..text.len().min(10)]));
    }
}

/// Headings and the cell count of every table row, the structure a reader relies on.
fn markdown_structure(markdown: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut in_code = false;
    for line in markdown.lines() {
        if line.starts_with("```") {
            in_code = !in_code;
            out.push("```".into());
        } else if in_code {
            continue;
        } else if line.starts_with('#') {
            out.push(line.split_whitespace().next().unwrap_or("").to_owned());
        } else if line.starts_with('|') {
            let bytes = line.as_bytes();
            let cells = (0..bytes.len())
                .filter(|&i| bytes[i] == b'|' && (i == 0 || bytes[i - 1] != b'\\'))
                .count();
            out.push(format!("row {cells}"));
        }
    }
    out
}

#[test]
fn markdown_keeps_its_headings_and_table_rows() {
    let benign = markdown_structure(&eventbus_codegen::docs::markdown(&model("plain")));
    for text in HOSTILE {
        let markdown = eventbus_codegen::docs::markdown(&model(text));
        assert_eq!(
            markdown_structure(&markdown),
            benign,
            "{text:?} changed the Markdown structure:\n{markdown}"
        );
        // Outside code blocks (JSON examples), HTML is escaped.
        let prose: String = markdown
            .split("```")
            .step_by(2)
            .collect::<Vec<_>>()
            .concat();
        assert!(
            !prose.contains("<script>"),
            "{text:?}: raw HTML:\n{markdown}"
        );
    }
}

#[test]
fn typescript_passes_tsc_strict() {
    let tsc = support::tsc();
    let dir = repo().join("target/hostile-ts");
    std::fs::create_dir_all(&dir).unwrap();
    let mut files = Vec::new();
    for (i, text) in HOSTILE.iter().enumerate() {
        let ts = eventbus_codegen::typescript::file(&model(text));
        let path = dir.join(format!("hostile{i}.ts"));
        std::fs::write(&path, ts).unwrap();
        files.push(path);
    }
    let output = Command::new(&tsc)
        .args([
            "--strict", "--noEmit", "--target", "es2020", "--module", "es2020",
        ])
        .args(&files)
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "tsc refused the TypeScript of a hostile manifest:\n{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

#[test]
fn names_outside_the_grammar_are_rejected_with_a_location() {
    for name in [
        "a*/b",
        "x\"y",
        "a`b",
        "${x}",
        "a|b",
        "\u{0430}bc",
        "a b",
        "a\\b",
        "</script>",
    ] {
        let quoted = yaml_string(name);
        for source in [
            format!("version: 1\npackage: demo\nevents:\n  {quoted}: {{}}\n"),
            format!(
                "version: 1\npackage: demo\nevents:\n  ok:\n    payload: {{ {quoted}: string }}\n"
            ),
            format!(
                "version: 1\npackage: demo\ntypes:\n  E:\n    enum: [{quoted}]\nevents:\n  ok:\n    payload: E\n"
            ),
            format!("version: 1\npackage: {quoted}\nevents:\n  ok: {{}}\n"),
        ] {
            let err = Model::parse("events.yaml", &source)
                .err()
                .unwrap_or_else(|| panic!("{name:?} accepted in\n{source}"));
            assert!(
                err.diagnostics.iter().any(|d| d.span.line >= 2),
                "{name:?}: no located error: {err}"
            );
        }
    }
}
