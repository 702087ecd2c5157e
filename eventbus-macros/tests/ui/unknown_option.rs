// A misspelt option, and one that does not exist.
#[eventbus::event_bus("events.yaml", evnts = ["packageInstall"])]
pub mod a {}

#[eventbus::event_bus("events.yaml", crate_path = ["::eventbus"])]
pub mod b {}

fn main() {}
