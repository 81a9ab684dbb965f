//! The shipped model (`models/patrol-hazard.onnx`) on committed sample images: every expected detection is found
//! (same label, IoU >= 0.5) and images listed with no expectations give no detection at all.
//!
//! Samples live in `tests/samples/` with `expected.json`:
//! `{"samples": [{"image": "fire-01.jpg", "expect": [{"label": "fire", "bbox": [x1, y1, x2, y2]}]}, ...]}`
//! (boxes in the image's pixels). Until the trained model and its samples are committed, the test says so and
//! passes; from then on it checks every sample.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use inference::{BoxPx, Detector, DetectorConfig, ImageInput, OnnxDetector};
use serde::Deserialize;

#[derive(Debug, Deserialize)]
struct Expected {
    samples: Vec<Sample>,
}

#[derive(Debug, Deserialize)]
struct Sample {
    image: String,
    expect: Vec<ExpectedBox>,
}

#[derive(Debug, Deserialize)]
struct ExpectedBox {
    label: String,
    bbox: [f32; 4],
}

fn paths() -> (PathBuf, PathBuf) {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    (crate_dir.join("../models/patrol-hazard.onnx"), crate_dir.join("tests/samples"))
}

#[test]
fn shipped_model_finds_the_expected_hazards_on_sample_images() {
    let (model, samples) = paths();
    let expected_path = samples.join("expected.json");
    if !model.exists() || !expected_path.exists() {
        eprintln!("{} or {} not committed yet: nothing to check", model.display(), expected_path.display());
        return;
    }
    let expected: Expected = serde_json::from_slice(&std::fs::read(&expected_path).unwrap()).unwrap();
    assert!(!expected.samples.is_empty());
    let mut detector = OnnxDetector::load(DetectorConfig { model_path: model, ..DetectorConfig::default() }).unwrap();
    let mut failures = Vec::new();
    for sample in &expected.samples {
        let bytes = std::fs::read(samples.join(&sample.image)).unwrap();
        let found = detector.detect_input(&ImageInput::Encoded(bytes)).unwrap().detections;
        if sample.expect.is_empty() && !found.is_empty() {
            failures.push(format!("{}: expected nothing, found {found:?}", sample.image));
        }
        for want in &sample.expect {
            let [x1, y1, x2, y2] = want.bbox;
            let want_box = BoxPx { x1, y1, x2, y2 };
            if !found.iter().any(|d| d.label == want.label && d.bbox.iou(&want_box) >= 0.5) {
                failures.push(format!("{}: no {} near {:?}; found {found:?}", sample.image, want.label, want.bbox));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
