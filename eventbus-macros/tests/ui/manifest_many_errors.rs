// Independent mistakes of every kind, reported at once.
#[eventbus::event_bus("manifests/many_errors.yaml")]
pub mod events {}

fn main() {}
