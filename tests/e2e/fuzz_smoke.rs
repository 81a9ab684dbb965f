//! The fuzz smoke: every committed seed corpus file and crash regression under `fuzz/` through the same harness
//! functions the libFuzzer targets call (`fuzz/src/lib.rs`, included here), on stable, in well under a second.
//! Coverage-guided runs need nightly and cargo-fuzz (`docs/reliability.md`, "Fuzzing"); this keeps the harnesses
//! compiling and every input that once crashed fixed.

// Test helpers outside #[test] functions are not covered by clippy.toml's allow-unwrap-in-tests.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use firmware_bridge::signing::SigningKey;

#[allow(unreachable_pub, dead_code)]
#[path = "../../fuzz/src/lib.rs"]
mod harness;

/// A harness function: one fuzz input through the product's parsers.
type Harness = fn(&[u8]);

/// The fuzz targets, by the name of their corpus folder, and their harness.
const TARGETS: [(&str, Harness); 6] = [
    ("photo_ingest", harness::photo_ingest),
    ("push_request", harness::push_request),
    ("config_load", harness::config_load),
    ("mission_file", harness::mission_file),
    ("area_geojson", harness::area_geojson),
    ("area_kml", harness::area_kml),
];

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

/// The seed corpus and the crash regressions of `target`, sorted by path.
fn inputs(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let mut out = Vec::new();
    for dir in ["corpus", "regressions"] {
        let Ok(entries) = std::fs::read_dir(fuzz_dir().join(dir).join(target)) else { continue };
        for entry in entries {
            let path = entry.unwrap().path();
            let hidden = path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'));
            if path.is_file() && !hidden {
                let bytes = std::fs::read(&path).unwrap();
                out.push((path, bytes));
            }
        }
    }
    out.sort();
    out
}

#[test]
fn every_corpus_file_and_regression_runs_clean() {
    for (target, harness) in TARGETS {
        let inputs = inputs(target);
        assert!(!inputs.is_empty(), "no seed corpus for {target}");
        for (path, bytes) in inputs {
            eprintln!("{target}: {}", path.display());
            harness(&bytes);
        }
    }
}

#[test]
fn mavlink_corpus_runs_clean_and_the_seeds_decode() {
    let key = SigningKey::from_passphrase(harness::FUZZ_SIGNING_PASSPHRASE);
    let inputs = inputs("mavlink_receive");
    assert!(!inputs.is_empty(), "no seed corpus for mavlink_receive");
    let mut frames = 0;
    for (path, bytes) in &inputs {
        eprintln!("mavlink_receive: {}", path.display());
        frames += harness::mavlink_receive(bytes, &key);
    }
    // The seeds are real frames (unsigned, and signed with the harness key): they must reach the parsers.
    assert!(frames >= inputs.len(), "only {frames} frames decoded from {} seeds", inputs.len());
}
