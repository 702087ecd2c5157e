//! The AsyncAPI documents of every golden manifest and of `events.yaml` pass the official
//! AsyncAPI parser (`@asyncapi/parser` from npm, installed on demand by `npm ci`), with no error-severity
//! diagnostic.

use std::process::Command;

mod support;
use support::repo;

#[test]
fn asyncapi_documents_pass_the_official_parser() {
    let parser = support::npm::node_modules().join("@asyncapi/parser");
    assert!(
        parser.exists(),
        "`{}` is missing after `npm ci`: is @asyncapi/parser still in package.json's devDependencies?",
        parser.display()
    );
    let dir = std::env::temp_dir().join(format!("eventbus-asyncapi-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let mut manifests = vec![repo().join("events.yaml")];
    for e in std::fs::read_dir(repo().join("tests/golden")).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|e| e == "yaml") {
            manifests.push(p);
        }
    }
    let mut docs = Vec::new();
    for m in &manifests {
        let model = eventbus_codegen::Model::load(m).unwrap_or_else(|e| panic!("{e}"));
        let doc = eventbus_codegen::asyncapi::document(&model);
        let path = dir.join(format!("{}.json", m.file_stem().unwrap().to_string_lossy()));
        std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
        docs.push(path);
    }
    let output = Command::new("node")
        .arg(repo().join("tests/asyncapi/validate.mjs"))
        .args(&docs)
        .current_dir(repo())
        .output()
        .expect("node must be installed to validate AsyncAPI documents");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "{stdout}\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        stdout.matches("valid AsyncAPI 3.0.0").count(),
        manifests.len(),
        "{stdout}"
    );
    std::fs::remove_dir_all(dir).unwrap();
}
