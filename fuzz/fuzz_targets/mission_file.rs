//! See `patrol_fuzz::mission_file`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| patrol_fuzz::mission_file(data));
