//! Fuzz target `nats_message`: the body is `eventbus_runtime::__fuzz::nats_message`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| eventbus_runtime::__fuzz::nats_message(data));
