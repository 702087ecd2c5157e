//! The committed docs of the repository's own manifest are fresh (`docs/EVENTS.md`,
//! `docs/asyncapi.json`), the Markdown of every `tests/golden/*.yaml` equals the committed
//! `tests/golden/<name>.md` (`EVENTBUS_BLESS=1` rewrites them all; review the diff), and
//! manifest text cannot break the structure of the generated Markdown.

use std::path::Path;

use eventbus_codegen::model::TypeKind;
use eventbus_codegen::{Model, asyncapi, docs};

mod support;
use support::repo;

fn check_fresh(path: &Path, contents: &str, stale: &mut Vec<String>) {
    if std::env::var_os("EVENTBUS_BLESS").is_some() {
        eventbus_codegen::write_if_changed(path, contents.as_bytes()).unwrap();
    } else if std::fs::read_to_string(path).ok().as_deref() != Some(contents) {
        stale.push(path.display().to_string());
    }
}

#[test]
fn committed_docs_are_fresh() {
    let model = Model::load(repo().join("events.yaml")).unwrap_or_else(|e| panic!("{e}"));
    let mut stale = Vec::new();
    check_fresh(
        &repo().join("docs/EVENTS.md"),
        &docs::markdown(&model),
        &mut stale,
    );
    let doc = serde_json::to_string_pretty(&asyncapi::document(&model)).unwrap() + "\n";
    check_fresh(&repo().join("docs/asyncapi.json"), &doc, &mut stale);
    assert!(
        stale.is_empty(),
        "stale: {stale:?}; regenerate with `cargo run -p eventbus-codegen -- generate --docs docs/EVENTS.md \
         --asyncapi docs/asyncapi.json` (or EVENTBUS_BLESS=1 cargo test -p eventbus-codegen --test docs)"
    );
}

#[test]
fn generated_markdown_matches_the_golden_files() {
    let mut stale = Vec::new();
    let mut cases = 0;
    for e in std::fs::read_dir(repo().join("tests/golden")).unwrap() {
        let manifest = e.unwrap().path();
        if manifest.extension().is_none_or(|e| e != "yaml") {
            continue;
        }
        cases += 1;
        let model = Model::load(&manifest).unwrap_or_else(|e| panic!("{e}"));
        check_fresh(
            &manifest.with_extension("md"),
            &docs::markdown(&model),
            &mut stale,
        );
    }
    assert!(cases >= 3, "{cases} golden manifests");
    assert!(
        stale.is_empty(),
        "stale golden Markdown (rerun with EVENTBUS_BLESS=1 and review the diff): {stale:?}"
    );
}

/// The text between `### `name`` and the next heading.
fn section<'a>(md: &'a str, name: &str) -> &'a str {
    let start = md
        .find(&format!("### `{name}`\n"))
        .unwrap_or_else(|| panic!("no section for `{name}`"));
    let body = &md[start..];
    let end = body[4..].find("\n#").map_or(body.len(), |i| i + 4);
    &body[..end]
}

#[test]
fn deprecation_notices_are_rendered() {
    let model = Model::load(repo().join("tests/golden/shapes.yaml")).unwrap();
    let md = docs::markdown(&model);
    // `deprecated: use limited` shows its note, first thing under the heading;
    // `deprecated: true` shows the notice alone.
    assert!(
        section(&md, "quiet").starts_with("### `quiet`\n\n> **Deprecated**: use limited\n\n"),
        "{}",
        section(&md, "quiet")
    );
    assert!(
        section(&md, "old").starts_with("### `old`\n\n> **Deprecated**\n\n"),
        "{}",
        section(&md, "old")
    );
    assert!(!section(&md, "guarded").contains("Deprecated"));
    assert_eq!(md.matches("> **Deprecated**").count(), 2);
}

#[test]
fn the_wire_encoding_is_explained() {
    let model = Model::load(repo().join("events.yaml")).unwrap();
    let md = docs::markdown(&model);
    let legend = &md[md.find("## How values travel\n").expect("a legend")..];
    let legend = &legend[..legend[3..].find("\n## ").unwrap() + 3];
    assert!(
        legend.contains("| `i64` `u64` | a decimal string, always written so"),
        "{legend}"
    );
    assert!(
        legend.contains("| `timestamp` | a JSON integer: milliseconds since the Unix epoch"),
        "{legend}"
    );
    // What the legend says is what the examples show: a u64 as a string, a timestamp as a
    // number of milliseconds.
    let chain = section(&md, "chainSync");
    assert!(chain.contains("| `blockHeight` | `u64` |"), "{chain}");
    assert!(chain.contains("\"blockHeight\": \"19876543\""), "{chain}");
    assert!(section(&md, "notification").contains("\"timestamp\": 1718000000000"));
}

#[test]
fn every_event_and_type_is_documented() {
    let model = Model::load(repo().join("events.yaml")).unwrap();
    let md = docs::markdown(&model);
    assert!(md.starts_with("<!-- @generated"));
    for e in &model.events {
        assert!(md.contains(&format!("### `{}`\n", e.name)), "{}", e.name);
    }
    for t in &model.types {
        assert!(
            md.contains(&format!("<a id=\"type-{}\"></a>", t.name.to_lowercase())),
            "{}",
            t.name
        );
    }
    assert!(md.contains("```mermaid\nflowchart LR"));
    // Examples are the validated wire JSON, keys in the order the fields are declared (the
    // order the generated Rust writes them).
    let mut examples = 0;
    for e in &model.events {
        let (Some(example), Some(payload)) = (&e.example, &e.payload) else {
            continue;
        };
        examples += 1;
        let body = section(&md, &e.name);
        let json = &body[body.find("```json\n").unwrap() + 8..];
        let json = &json[..json.find("\n```").unwrap()];
        let shown: serde_json::Value = serde_json::from_str(json).unwrap();
        assert_eq!(&shown, example, "{}", e.name);
        let TypeKind::Struct(fields) = &model.type_def(payload).unwrap().kind else {
            continue;
        };
        let positions: Vec<usize> = fields
            .iter()
            .filter_map(|f| json.find(&format!("\n  \"{}\": ", f.name)))
            .collect();
        assert!(
            positions.is_sorted(),
            "{}: keys out of field order:\n{json}",
            e.name
        );
    }
    assert!(examples >= 10, "{examples} examples");
}

#[test]
fn hostile_descriptions_stay_text() {
    let source = r#"
version: 1
package: demo
types:
  T:
    description: "</script><img src=x onerror=alert(1)> | pipe"
    fields:
      a: { type: string, description: "cell | with pipe\nand a newline" }
events:
  evil:
    description: "```\n# Not a heading\n"
    payload: T
    example: { a: "```json" }
"#;
    let model: Model = source.parse().unwrap();
    let md = docs::markdown(&model);
    assert!(!md.contains("<script>") && !md.contains("</script>") && !md.contains("<img"));
    assert!(md.contains("cell \\| with pipe and a newline"));
    // The example's backticks cannot close its fence: the fence is longer.
    assert!(md.contains("````json\n"));
    let table_rows = md.lines().filter(|l| l.starts_with("| `a` |")).count();
    assert_eq!(
        table_rows, 2,
        "one row in the event's table, one in the type's"
    );
}
