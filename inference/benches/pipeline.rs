//! Inference benches: letterbox 1080p into 640, NMS over 8k candidates, JPEG decode, and the full pipeline per
//! image against the bare ONNX Runtime run on the same model.
//!
//! The model: `PATROL_BENCH_MODEL`, else `target/bench-data/yolov8n.onnx` (an untrained YOLOv8n export made by
//! `inference/benches/ultralytics/bench.py prepare target/bench-data`, which also writes the synthetic 12 MP photos
//! and 1080p frames used here), else the tiny fixture model. Images: `target/bench-data/{photos,frames}/*.jpg`,
//! else synthetic ones made in memory. See docs/benchmarks.md for the commands and the measured figures.

use std::hint::black_box;
use std::io::Cursor;
use std::path::{Path, PathBuf};
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use inference::postprocess::{ScoredBox, nms};
use inference::preprocess::Letterboxer;
use inference::{
    BoxPx, DecodeTarget, DecodedImage, Detector, DetectorConfig, Frame, OnnxDetector, TileConfig, decode_image,
};

fn workspace() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn model_path() -> PathBuf {
    if let Some(p) = std::env::var_os("PATROL_BENCH_MODEL") {
        return p.into();
    }
    let exported = workspace().join("target/bench-data/yolov8n.onnx");
    if exported.exists() {
        exported
    } else {
        eprintln!("{} missing: benchmarking the tiny fixture model instead", exported.display());
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/yolov8_grid.onnx")
    }
}

/// A noisy synthetic image, JPEG-encoded (used when target/bench-data has no images).
fn synthetic_jpeg(width: u32, height: u32) -> Vec<u8> {
    let mut state = 0x1234_5678_u32;
    let img = image::RgbImage::from_fn(width, height, |x, y| {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let n = (state >> 27) as u8;
        image::Rgb([((x / 50 * 37) % 200) as u8 + n, ((y / 50 * 53) % 200) as u8 + n, 90 + n])
    });
    let mut out = Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Jpeg).expect("encode");
    out.into_inner()
}

fn images(sub: &str, width: u32, height: u32) -> Vec<Vec<u8>> {
    let dir = workspace().join("target/bench-data").join(sub);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .map(|d| {
            d.filter_map(|e| e.ok().map(|e| e.path())).filter(|p| p.extension().is_some_and(|e| e == "jpg")).collect()
        })
        .unwrap_or_default();
    files.sort();
    if files.is_empty() {
        return vec![synthetic_jpeg(width, height)];
    }
    files.iter().map(|p| std::fs::read(p).expect("read bench image")).collect()
}

fn candidates(n: usize) -> Vec<ScoredBox> {
    let mut state = 42u64;
    let mut next = || {
        state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (state >> 40) as f32 / (1u64 << 24) as f32
    };
    (0..n)
        .map(|_| {
            let (x, y, w, h) = (next() * 600.0, next() * 600.0, 10.0 + next() * 80.0, 10.0 + next() * 80.0);
            ScoredBox {
                class_id: (next() * 5.0) as usize,
                score: next(),
                bbox: BoxPx { x1: x, y1: y, x2: x + w, y2: y + h },
            }
        })
        .collect()
}

fn preprocessing(c: &mut Criterion) {
    let frame_jpeg = images("frames", 1920, 1080).swap_remove(0);
    let decoded = decode_image(&frame_jpeg, DecodeTarget::Full).expect("decode");
    let frame = decoded.frame().expect("frame");
    let mut letterboxer = Letterboxer::new(640, 640);
    let mut out = vec![0.0; letterboxer.input_len()];
    c.bench_function("letterbox/1080p_to_640", |b| {
        b.iter(|| letterboxer.letterbox_into(black_box(&frame), None, &mut out).expect("letterbox"))
    });

    let boxes = candidates(8_000);
    c.bench_function("nms/8k_candidates", |b| {
        b.iter_batched(|| boxes.clone(), |mut v| nms(&mut v, 0.45, 300), BatchSize::SmallInput)
    });

    let photo = images("photos", 4000, 3000).swap_remove(0);
    let target = DecodeTarget::Letterbox { width_px: 640, height_px: 640 };
    c.bench_function("decode/12mp_jpeg_for_640", |b| {
        b.iter(|| decode_image(black_box(&photo), target).expect("decode"))
    });
    c.bench_function("decode/12mp_jpeg_full", |b| {
        b.iter(|| decode_image(black_box(&photo), DecodeTarget::Full).expect("decode"))
    });
}

fn pipeline(c: &mut Criterion) {
    // Ultralytics' predict default (conf 0.25), as the comparison runs it.
    let config = DetectorConfig { model_path: model_path(), score_threshold: 0.25, ..DetectorConfig::default() };
    let mut detector = match OnnxDetector::load(config) {
        Ok(d) => d,
        Err(error) => {
            eprintln!("pipeline benches skipped: {error}");
            return;
        }
    };
    let info = detector.model_info().clone();
    let input = vec![0.5; 3 * info.input_width_px as usize * info.input_height_px as usize];
    c.bench_function("pipeline/bare_run", |b| b.iter(|| detector.run_raw(black_box(&input), 1).expect("run")));

    let photos = images("photos", 4000, 3000);
    let target = detector.decode_target();
    let mut i = 0;
    c.bench_function("pipeline/12mp_jpeg", |b| {
        b.iter(|| {
            i = (i + 1) % photos.len();
            let img = decode_image(&photos[i], target).expect("decode");
            detector.detect(&img.frame().expect("frame")).expect("detect")
        })
    });

    let frames: Vec<DecodedImage> =
        images("frames", 1920, 1080).iter().map(|j| decode_image(j, DecodeTarget::Full).expect("decode")).collect();
    let views: Vec<Frame<'_>> = frames.iter().map(|f| f.frame().expect("frame")).collect();
    c.bench_function("pipeline/1080p_frame", |b| {
        b.iter(|| {
            i = (i + 1) % views.len();
            detector.detect(&views[i]).expect("detect")
        })
    });
    c.bench_function("pipeline/bare_run_again", |b| b.iter(|| detector.run_raw(black_box(&input), 1).expect("run")));

    detector.set_tiling(Some(TileConfig::default())).expect("tiling");
    let full = decode_image(&photos[0], DecodeTarget::Full).expect("decode");
    let mut group = c.benchmark_group("tiled");
    group.sample_size(10).measurement_time(Duration::from_secs(30));
    group.bench_function("12mp_decoded_640_tiles", |b| {
        b.iter(|| detector.detect(&full.frame().expect("frame")).expect("detect"))
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().sample_size(10).warm_up_time(Duration::from_secs(2)).measurement_time(Duration::from_secs(8));
    targets = preprocessing, pipeline
}
criterion_main!(benches);
