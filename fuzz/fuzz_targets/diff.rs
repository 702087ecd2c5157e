//! Fuzz target `diff`: the body is `eventbus_codegen::__fuzz::diff`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| eventbus_codegen::__fuzz::diff(data));
