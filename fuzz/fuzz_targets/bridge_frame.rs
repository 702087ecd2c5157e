//! Fuzz target `bridge_frame`: the body is `eventbus_runtime::__fuzz::bridge_frame`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| eventbus_runtime::__fuzz::bridge_frame(data));
