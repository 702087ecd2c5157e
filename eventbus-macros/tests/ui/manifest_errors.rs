// Every problem of the manifest is reported, each with its line, column, snippet and hint.
#[eventbus::event_bus("manifests/unknown_type.yaml")]
pub mod events {}

fn main() {}
