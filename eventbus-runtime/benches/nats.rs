//! NATS benchmark (being written).
fn main() {}
