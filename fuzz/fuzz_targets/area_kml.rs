//! See `patrol_fuzz::area_kml`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| patrol_fuzz::area_kml(data));
