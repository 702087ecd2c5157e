// A path naming a directory.
#[eventbus::event_bus("manifests")]
pub mod events {}

fn main() {}
