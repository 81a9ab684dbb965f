//! The shipped model (`models/patrol-hazard.onnx`) on committed sample images (`tests/fixtures/images/`, chosen
//! by `train/make_fixtures.py`): every expected box is found with its label (IoU >= 0.5), and the plain
//! background gives no detection at the model card's operating threshold.

#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};

use inference::{BoxPx, Detector, DetectorConfig, ImageInput, OnnxDetector};
use serde::Deserialize;

/// The model card's operating threshold (the default `score_threshold`) is 0.525 (best F1 on validation); the
/// Rust pre-processing resizes a little differently from PIL, so expected boxes are matched from a slightly lower
/// score.
const MATCH_SCORE: f32 = 0.45;

#[derive(Debug, Deserialize)]
struct Expected {
    images: Vec<Sample>,
}

#[derive(Debug, Deserialize)]
struct Sample {
    file: String,
    expected: Vec<ExpectedBox>,
}

#[derive(Debug, Deserialize)]
struct ExpectedBox {
    name: String,
    box_xyxy: [f32; 4],
}

fn fixtures() -> (PathBuf, PathBuf) {
    let crate_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    (crate_dir.join("../models/patrol-hazard.onnx"), crate_dir.join("tests/fixtures/images"))
}

fn detector(score_threshold: f32) -> OnnxDetector {
    let (model, _) = fixtures();
    OnnxDetector::load(DetectorConfig { model_path: model, score_threshold, ..DetectorConfig::default() }).unwrap()
}

#[test]
fn shipped_model_finds_the_expected_hazards_on_sample_images() {
    let (_, images) = fixtures();
    let expected: Expected = serde_json::from_slice(&std::fs::read(images.join("expected.json")).unwrap()).unwrap();
    assert!(expected.images.iter().any(|s| !s.expected.is_empty()));
    let mut detector = detector(MATCH_SCORE);
    let mut failures = Vec::new();
    for sample in &expected.images {
        let bytes = std::fs::read(images.join(&sample.file)).unwrap();
        let found = detector.detect_input(&ImageInput::Encoded(bytes)).unwrap().detections;
        for want in &sample.expected {
            let [x1, y1, x2, y2] = want.box_xyxy;
            let want_box = BoxPx { x1, y1, x2, y2 };
            if !found.iter().any(|d| d.label == want.name && d.bbox.iou(&want_box) >= 0.5) {
                failures.push(format!("{}: no {} near {:?}; found {found:?}", sample.file, want.name, want.box_xyxy));
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The operating threshold the training run chose for the shipped model.
fn operating_threshold() -> f32 {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../models/patrol-hazard.metrics.json");
    let metrics: serde_json::Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    metrics["threshold"].as_f64().unwrap() as f32
}

#[test]
fn default_threshold_is_the_shipped_models_operating_threshold() {
    assert_eq!(DetectorConfig::default().score_threshold, operating_threshold());
}

#[test]
fn shipped_model_sees_nothing_on_a_plain_background() {
    let (_, images) = fixtures();
    let bytes = std::fs::read(images.join("background.jpg")).unwrap();
    let found = detector(DetectorConfig::default().score_threshold)
        .detect_input(&ImageInput::Encoded(bytes))
        .unwrap()
        .detections;
    assert!(found.is_empty(), "{found:?}");
}
