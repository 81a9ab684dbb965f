//! The ONNX detector end to end on the fixture models (see `fixtures/make_models.py`): each output layout, names
//! from metadata and sidecar, hazard map, thresholds, reduced-scale JPEG decode, tiling, and every kind of bad
//! input. Needs the ONNX Runtime library: `scripts/setup-onnxruntime.sh`.

// Helpers outside #[test] fns panic on setup failures too; clippy.toml only covers the test fns themselves.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::io::Cursor;
use std::path::PathBuf;

use inference::{
    BoxPx, DecodedImage, Detection, Detector, DetectorConfig, HazardKind, HazardMap, ImageInput, InferenceError,
    LabelTarget, OnnxDetector, OutputLayout, TileConfig,
};
use sha2::{Digest, Sha256};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures").join(name)
}

fn config(model: &str) -> DetectorConfig {
    DetectorConfig { model_path: fixture(model), score_threshold: 0.5, ..DetectorConfig::default() }
}

fn load(model: &str) -> OnnxDetector {
    OnnxDetector::load(config(model)).unwrap_or_else(|e| panic!("{model}: {e}"))
}

/// A black image with filled rectangles `(x, y, w, h, rgb)`.
fn image(width: u32, height: u32, rects: &[(u32, u32, u32, u32, [u8; 3])]) -> DecodedImage {
    let mut rgb = vec![0u8; (width * height * 3) as usize];
    for &(x, y, w, h, color) in rects {
        for yy in y..y + h {
            for xx in x..x + w {
                let i = ((yy * width + xx) * 3) as usize;
                rgb[i..i + 3].copy_from_slice(&color);
            }
        }
    }
    DecodedImage::from_rgb(rgb, width, height)
}

fn sorted(mut d: Vec<Detection>) -> Vec<Detection> {
    d.sort_by(|a, b| a.label.cmp(&b.label).then(a.bbox.x1.total_cmp(&b.bbox.x1)));
    d
}

fn assert_box(actual: BoxPx, expected: [f32; 4], tolerance_px: f32) {
    let a = [actual.x1, actual.y1, actual.x2, actual.y2];
    for (x, e) in a.iter().zip(expected) {
        assert!((x - e).abs() <= tolerance_px, "box {a:?} != {expected:?}");
    }
}

/// 640x480 letterboxed into 320: scale 0.5, 40 px of padding on top. A 40 px square at (160, 80) fills input cell
/// (col 4, row 4) exactly; one at (400, 200) fills cell (10, 6).
fn two_squares() -> DecodedImage {
    image(640, 480, &[(160, 80, 40, 40, [255, 0, 0]), (400, 200, 40, 40, [0, 255, 0])])
}

fn check_two_squares(detections: Vec<Detection>) {
    let d = sorted(detections);
    assert_eq!(d.len(), 2, "{d:?}");
    assert_eq!((d[0].label.as_str(), d[0].class_id, d[0].hazard), ("fire", 0, HazardKind::Fire));
    assert_eq!((d[1].label.as_str(), d[1].class_id, d[1].hazard), ("smoke", 1, HazardKind::Fire));
    assert!(d.iter().all(|d| d.score > 0.9), "{d:?}");
    assert_box(d[0].bbox, [160.0, 80.0, 200.0, 120.0], 0.01);
    assert_box(d[1].bbox, [400.0, 200.0, 440.0, 240.0], 0.01);
}

#[test]
fn yolov8_layout_finds_both_squares_and_carries_the_model_identity() {
    let mut detector = load("yolov8_grid.onnx");
    let info = detector.model_info().clone();
    assert_eq!(info.layout, Some(OutputLayout::YoloV8 { num_classes: 2 }));
    assert_eq!(info.class_names, ["fire", "smoke"]);
    assert_eq!((info.input_width_px, info.input_height_px), (320, 320));
    let bytes = std::fs::read(fixture("yolov8_grid.onnx")).unwrap();
    let sha: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(info.sha256, sha);
    assert_eq!(info.version, "fixture-1");

    let img = two_squares();
    let d = detector.detect(&img.frame().unwrap()).unwrap();
    assert!(d.iter().all(|d| *d.model_sha256 == *sha && &*d.model_version == "fixture-1"));
    check_two_squares(d);
}

#[test]
fn yolov5_and_end_to_end_layouts_agree() {
    let img = two_squares();
    let mut v5 = load("yolov5_grid.onnx");
    assert_eq!(v5.model_info().layout, Some(OutputLayout::YoloV5 { num_classes: 2 }));
    assert_eq!(v5.model_info().version, "yolov5_grid", "no version metadata: the file stem");
    check_two_squares(v5.detect(&img.frame().unwrap()).unwrap());

    let mut e2e =
        OnnxDetector::load(DetectorConfig { names_path: Some(fixture("e2e_grid.names")), ..config("e2e_grid.onnx") })
            .unwrap();
    assert_eq!(e2e.model_info().layout, Some(OutputLayout::EndToEnd));
    check_two_squares(e2e.detect(&img.frame().unwrap()).unwrap());
}

#[test]
fn fixed_batch_model_runs_tiles_one_at_a_time() {
    let mut detector = load("yolov8_grid_b1.onnx");
    detector.set_tiling(Some(TileConfig { tile_px: 0, overlap_px: 64, full_view: true })).unwrap();
    let img = image(700, 500, &[(300, 240, 40, 40, [255, 0, 0])]);
    let d = detector.detect(&img.frame().unwrap()).unwrap();
    assert!(!d.is_empty());
    for det in &d {
        assert_eq!(det.label, "fire");
        let (cx, cy) = ((det.bbox.x1 + det.bbox.x2) / 2.0, (det.bbox.y1 + det.bbox.y2) / 2.0);
        assert!((cx - 320.0).abs() < 40.0 && (cy - 260.0).abs() < 40.0, "{det:?}");
    }
}

#[test]
fn hazard_map_and_per_class_thresholds_filter_labels() {
    let img = two_squares();
    let ignore_smoke =
        HazardMap(BTreeMap::from([("fire".to_owned(), LabelTarget::Gas), ("smoke".to_owned(), LabelTarget::Ignore)]));
    let mut d = OnnxDetector::load(DetectorConfig { hazard_map: ignore_smoke, ..config("yolov8_grid.onnx") }).unwrap();
    let found = d.detect(&img.frame().unwrap()).unwrap();
    assert_eq!(found.len(), 1);
    assert_eq!((found[0].label.as_str(), found[0].hazard), ("fire", HazardKind::Gas));

    // A dim red square scores about 0.44 for fire: found with a 0.4 threshold for fire, not with the default 0.5.
    let dim = image(
        640,
        480,
        &[(160, 80, 40, 40, [255, 0, 0]), (400, 200, 40, 40, [0, 255, 0]), (0, 400, 40, 40, [115, 0, 0])],
    );
    let mut d = load("yolov8_grid.onnx");
    assert_eq!(d.detect(&dim.frame().unwrap()).unwrap().len(), 2);
    let thresholds = BTreeMap::from([("fire".to_owned(), 0.4)]);
    let mut d =
        OnnxDetector::load(DetectorConfig { class_thresholds: thresholds, ..config("yolov8_grid.onnx") }).unwrap();
    let found = sorted(d.detect(&dim.frame().unwrap()).unwrap());
    assert_eq!(found.iter().map(|d| d.label.as_str()).collect::<Vec<_>>(), ["fire", "fire", "smoke"]);
    assert_box(found[0].bbox, [0.0, 400.0, 40.0, 440.0], 0.01);
    assert!((0.4..0.46).contains(&found[0].score), "{found:?}");
    // Boxes in the letterbox padding lie outside the image: grey padding (0.447) never shows up.
    assert!(found.iter().all(|d| d.bbox.area() > 0.0));
}

#[test]
fn reduced_scale_jpeg_boxes_come_back_in_original_pixels() {
    // 1280x960 JPEG; the model needs 320x240, so it decodes at 1/4. A 160 px red square at (320, 320) becomes a
    // 40 px square at (80, 80) + 40 px padding: cells (4..6, 6..8) of the grid.
    let img = image(1280, 960, &[(320, 320, 160, 160, [255, 0, 0])]);
    let mut jpeg = Cursor::new(Vec::new());
    image::RgbImage::from_raw(1280, 960, img.rgb.clone())
        .unwrap()
        .write_to(&mut jpeg, image::ImageFormat::Jpeg)
        .unwrap();
    let mut detector = load("yolov8_grid.onnx");
    let result = detector.detect_input(&ImageInput::Encoded(jpeg.into_inner())).unwrap();
    assert_eq!((result.width_px, result.height_px), (1280, 960));
    let fire: Vec<_> = result.detections.iter().filter(|d| d.label == "fire").collect();
    assert_eq!(fire.len(), 4, "{:?}", result.detections);
    let x1 = fire.iter().map(|d| d.bbox.x1).fold(f32::MAX, f32::min);
    let y1 = fire.iter().map(|d| d.bbox.y1).fold(f32::MAX, f32::min);
    let x2 = fire.iter().map(|d| d.bbox.x2).fold(f32::MIN, f32::max);
    let y2 = fire.iter().map(|d| d.bbox.y2).fold(f32::MIN, f32::max);
    assert_box(BoxPx { x1, y1, x2, y2 }, [320.0, 320.0, 480.0, 480.0], 0.01);
}

#[test]
fn tiling_finds_a_40px_object_in_a_12_megapixel_photo() {
    let img = image(4000, 3000, &[(2413, 1617, 40, 40, [255, 0, 0])]);
    let frame = img.frame().unwrap();
    let mut detector = load("yolov8_grid.onnx");
    assert!(detector.detect(&frame).unwrap().is_empty(), "the downscaled view alone cannot see it");

    detector.set_tiling(Some(TileConfig { tile_px: 0, overlap_px: 128, full_view: true })).unwrap();
    let found = detector.detect(&frame).unwrap();
    assert!(!found.is_empty());
    for d in &found {
        assert_eq!(d.label, "fire");
        let (cx, cy) = ((d.bbox.x1 + d.bbox.x2) / 2.0, (d.bbox.y1 + d.bbox.y2) / 2.0);
        assert!((cx - 2433.0).abs() <= 30.0 && (cy - 1637.0).abs() <= 30.0, "{d:?}");
    }
    // The best cell lies inside the object, so it scores 1.
    assert!(found[0].score > 0.99, "{found:?}");
}

#[test]
fn bad_images_are_typed_errors_and_the_detector_carries_on() {
    let mut detector = load("yolov8_grid.onnx");
    let mut jpeg = Cursor::new(Vec::new());
    image::RgbImage::new(64, 48).write_to(&mut jpeg, image::ImageFormat::Jpeg).unwrap();
    let jpeg = jpeg.into_inner();
    type Check = fn(&InferenceError) -> bool;
    let cases: Vec<(Vec<u8>, Check)> = vec![
        (Vec::new(), |e| matches!(e, InferenceError::EmptyImage)),
        (jpeg[..jpeg.len() / 3].to_vec(), |e| matches!(e, InferenceError::CorruptImage { .. })),
        (b"BM this is a bitmap".to_vec(), |e| matches!(e, InferenceError::UnsupportedImageFormat { .. })),
    ];
    for (bytes, expected) in cases {
        let err = detector.detect_input(&ImageInput::Encoded(bytes)).unwrap_err();
        assert!(expected(&err) && err.is_per_image(), "{err}");
        check_two_squares(detector.detect(&two_squares().frame().unwrap()).unwrap());
    }
    let zero = DecodedImage::from_rgb(Vec::new(), 0, 10);
    assert!(matches!(detector.detect_input(&ImageInput::Decoded(zero)), Err(InferenceError::ZeroSizeImage { .. })));
}

#[test]
fn models_outside_the_contract_are_rejected_at_load() {
    let err = OnnxDetector::load(config("bad_shape.onnx")).unwrap_err();
    assert!(matches!(&err, InferenceError::UnsupportedOutput { shape, .. } if shape == &[1, 3, 16, 16]), "{err}");
    assert!(err.to_string().contains("[1, 4+nc, N]"), "{err}");

    let err = OnnxDetector::load(config("uint8_input.onnx")).unwrap_err();
    assert!(matches!(&err, InferenceError::UnsupportedInput { detail, .. } if detail.contains("Uint8")), "{err}");

    let err = OnnxDetector::load(config("e2e_grid.onnx")).unwrap_err();
    assert!(matches!(err, InferenceError::BadNames { .. }), "{err}");

    let err = OnnxDetector::load(config("no_such_model.onnx")).unwrap_err();
    assert!(matches!(err, InferenceError::ReadModel { .. }), "{err}");

    let dir = tempfile::tempdir().unwrap();
    let junk = dir.path().join("junk.onnx");
    std::fs::write(&junk, b"definitely not protobuf").unwrap();
    let err = OnnxDetector::load(DetectorConfig { model_path: junk, ..DetectorConfig::default() }).unwrap_err();
    assert!(matches!(err, InferenceError::LoadModel { .. }), "{err}");

    let bad_threshold = BTreeMap::from([("dragon".to_owned(), 0.5)]);
    let err = OnnxDetector::load(DetectorConfig { class_thresholds: bad_threshold, ..config("yolov8_grid.onnx") })
        .unwrap_err();
    assert!(matches!(err, InferenceError::Config(_)), "{err}");
}
