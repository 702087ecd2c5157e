// Option values must be non-empty lists of string literals.
#[eventbus::event_bus("events.yaml", events = "packageInstall")]
pub mod a {}

#[eventbus::event_bus("events.yaml", categories = [chain])]
pub mod b {}

#[eventbus::event_bus("events.yaml", events = [])]
pub mod c {}

#[eventbus::event_bus("events.yaml", events = ["chainSync"], events = ["packageInstall"])]
pub mod d {}

fn main() {}
