// A path that does not exist relative to the crate root.
#[eventbus::event_bus("manifests/evnts.yaml")]
pub mod events {}

fn main() {}
