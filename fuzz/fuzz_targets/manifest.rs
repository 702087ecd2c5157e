//! Fuzz target `manifest`: the body is `eventbus_codegen::__fuzz::manifest`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| eventbus_codegen::__fuzz::manifest(data));
