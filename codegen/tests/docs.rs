//! The committed docs of the repository's own manifest are fresh (`docs/EVENTS.md`,
//! `docs/asyncapi.json`; `EVENTBUS_BLESS=1` rewrites them), and manifest text cannot break
//! the structure of the generated Markdown.

use std::path::Path;

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
    // Examples are shown as the validated wire JSON.
    let install = model.event("packageInstall").unwrap();
    if let Some(example) = &install.example {
        assert!(md.contains(&serde_json::to_string_pretty(example).unwrap()));
    }
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
