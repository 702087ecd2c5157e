// A user item named like the generated bus.
#[eventbus::event_bus("events.yaml")]
pub mod events {
    pub struct EventBus;
}

fn main() {}
