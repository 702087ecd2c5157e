fn main() {
    eventbus_codegen::compile("../../events.yaml");
}
