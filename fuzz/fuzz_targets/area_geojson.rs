//! See `patrol_fuzz::area_geojson`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| patrol_fuzz::area_geojson(data));
