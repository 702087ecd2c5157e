//! The manifest's `scope` key through every generator: the Rust metadata, the docs, the
//! AsyncAPI document; and a manifest that does not use it keeps its fingerprint.

use eventbus_codegen::{Model, asyncapi, docs, rust};

const MANIFEST: &str = "\
version: 1
package: demo
events:
  installed: { payload: { name: string }, persist: true, scope: distributed }
  progress: { payload: { percent: f64 }, scope: distributed }
  refresh: { scope: local }
";

fn model(source: &str) -> Model {
    Model::parse("scope.yaml", source).unwrap()
}

#[test]
fn distributed_events_are_marked_in_every_output() {
    let model = model(MANIFEST);
    let code = rust::file(&model);
    assert_eq!(
        code.matches("scope: ::eventbus::Scope::Distributed")
            .count(),
        2
    );
    assert_eq!(code.matches("scope: ::eventbus::Scope::Local").count(), 1);
    assert!(code.contains("distributed: also published on NATS subject `demo.events.installed`"));

    let markdown = docs::markdown(&model);
    assert!(
        markdown
            .contains("| Scope | distributed: NATS subject `demo.events.installed`, JetStream |")
    );
    assert!(markdown.contains("| Scope | distributed: NATS subject `demo.events.progress` |"));
    assert_eq!(
        markdown.matches("| Scope |").count(),
        2,
        "local events get no row"
    );

    let document = asyncapi::document(&model);
    let messages = &document["components"]["messages"];
    assert_eq!(messages["installed"]["x-eventbus"]["scope"], "distributed");
    assert_eq!(
        messages["installed"]["x-eventbus"]["subject"],
        "demo.events.installed"
    );
    assert!(messages["refresh"]["x-eventbus"].get("scope").is_none());
}

#[test]
fn writing_the_default_scope_changes_nothing() {
    let without = model("version: 1\npackage: demo\nevents:\n  refresh: {}\n");
    let with = model("version: 1\npackage: demo\nevents:\n  refresh: { scope: local }\n");
    assert_eq!(without, with);
    // Stored events name the fingerprint of the manifest that wrote them: adding the key to
    // the language did not change the fingerprint of manifests that do not use it.
    assert_eq!(without.fingerprint(), with.fingerprint());
    let distributed =
        model("version: 1\npackage: demo\nevents:\n  refresh: { scope: distributed }\n");
    assert_ne!(without.fingerprint(), distributed.fingerprint());
}
