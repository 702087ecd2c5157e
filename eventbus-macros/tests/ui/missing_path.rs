// No arguments at all.
#[eventbus::event_bus]
pub mod events {}

// Options but no path.
#[eventbus::event_bus(categories = ["chain"])]
pub mod chain {}

fn main() {}
