//! Checks a manifest and prints its report: `cargo run -p eventbus-codegen --example check -- events.yaml`.
fn main() {
    let path = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "events.yaml".into());
    match eventbus_codegen::Model::load(&path) {
        Ok(model) => println!(
            "{path}: {} events, {} types",
            model.events.len(),
            model.types.len()
        ),
        Err(err) => {
            eprint!("{err}");
            std::process::exit(1);
        }
    }
}
