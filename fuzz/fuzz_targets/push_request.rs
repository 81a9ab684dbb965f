//! See `patrol_fuzz::push_request`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| patrol_fuzz::push_request(data));
