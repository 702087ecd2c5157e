// The path as an identifier, a number, and a macro call: only a string literal works.
#[eventbus::event_bus(events_yaml)]
pub mod a {}

#[eventbus::event_bus(42)]
pub mod b {}

#[eventbus::event_bus(concat!("events", ".yaml"))]
pub mod c {}

fn main() {}
