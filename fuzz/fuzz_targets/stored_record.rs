//! Fuzz target `stored_record`: the body is `eventbus_runtime::__fuzz::stored_record`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| eventbus_runtime::__fuzz::stored_record(data));
