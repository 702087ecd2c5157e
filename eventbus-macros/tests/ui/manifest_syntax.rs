// Broken YAML.
#[eventbus::event_bus("manifests/syntax.yaml")]
pub mod events {}

fn main() {}
