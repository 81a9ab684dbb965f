//! See `patrol_fuzz::photo_ingest`.
#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| patrol_fuzz::photo_ingest(data));
