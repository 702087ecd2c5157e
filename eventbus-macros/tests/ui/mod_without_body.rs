// A module declared without a body: the generated items need braces to go into.
#[eventbus::event_bus("events.yaml")]
mod events;

fn main() {}
