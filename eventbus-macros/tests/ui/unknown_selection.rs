// Names in `events = [..]` and `categories = [..]` that the manifest does not have.
#[eventbus::event_bus(
    "events.yaml",
    events = ["packageInstal", "packageInstall", "nothingLikeIt"],
    categories = ["chains"]
)]
pub mod events {}

fn main() {}
