// `#[event_bus]` on a function instead of a module.
#[eventbus::event_bus("events.yaml")]
fn events() {}

fn main() {
    events();
}
