// User items named like generated types (declared and inline payload) and `MANIFEST`.
#[eventbus::event_bus("events.yaml")]
pub mod events {
    pub enum PackageStatus {
        Done,
    }

    pub type ChainSync = u32;

    pub static MANIFEST: &str = "mine";

    pub use std::fmt::Debug as PackageEvent;

    // Fine: a function lives in the value namespace, the generated enum in the type one.
    #[allow(non_snake_case)]
    pub fn PackageStatus() {}
}

fn main() {}
