//! Folder throughput, as `patrol detect` runs it: a reader thread decodes the next 12 MP photo (at the reduced
//! JPEG scale the model needs) while the [`DetectorThread`] runs the current one; compared with decoding and
//! detecting one photo after the other on one thread. Then tiled inference (full-resolution decode, 640 px tiles
//! plus a downscaled full view) through the same overlapped path. Prints photos/s.
//!
//! Model and images as in `benches/pipeline.rs`: `target/bench-data/yolov8n.onnx` and
//! `target/bench-data/photos/*.jpg` (made by `inference/benches/ultralytics/bench.py prepare target/bench-data`).
//! `PATROL_BENCH_PASSES` (default 2) sets how many times the folder is run through.

use std::path::{Path, PathBuf};
use std::time::Instant;

use inference::{
    DecodeTarget, Detector, DetectorConfig, DetectorJob, DetectorThread, ImageInput, OnnxDetector, TileConfig,
    decode_image,
};

fn bench_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../target/bench-data")
}

fn load(tiling: Option<TileConfig>) -> OnnxDetector {
    let model = std::env::var_os("PATROL_BENCH_MODEL").map_or_else(|| bench_data().join("yolov8n.onnx"), PathBuf::from);
    // Ultralytics' predict default (conf 0.25), as the comparison runs it.
    let config = DetectorConfig { model_path: model, score_threshold: 0.25, tiling, ..DetectorConfig::default() };
    OnnxDetector::load(config).expect("load the bench model (run bench.py prepare, see docs/benchmarks.md)")
}

/// Photos per second, decoding on a reader thread while the detector thread runs the previous photo.
fn overlapped(detector: OnnxDetector, photos: &[PathBuf], passes: usize) -> f64 {
    let (thread, results) = DetectorThread::spawn_with_channel(detector, 2, 4).expect("spawn the detector thread");
    let target = thread.decode_target();
    let jobs: Vec<PathBuf> = photos.iter().cycle().take(photos.len() * passes).cloned().collect();
    let total = jobs.len();
    let started = Instant::now();
    let reader = std::thread::spawn(move || {
        for path in jobs {
            let bytes = std::fs::read(&path).expect("read a photo");
            let image = decode_image(&bytes, target).expect("decode a photo");
            thread.submit(DetectorJob { tag: (), image: ImageInput::Decoded(image) }).expect("detector running");
        }
        thread.close().expect("detector thread");
    });
    for out in results.iter().take(total) {
        out.result.expect("detect");
    }
    let seconds = started.elapsed().as_secs_f64();
    reader.join().expect("reader thread");
    total as f64 / seconds
}

/// Photos per second, reading, decoding and detecting one photo after the other on this thread.
fn serial(detector: &mut OnnxDetector, photos: &[PathBuf], passes: usize) -> f64 {
    let started = Instant::now();
    for path in photos.iter().cycle().take(photos.len() * passes) {
        let bytes = std::fs::read(path).expect("read a photo");
        detector.detect_input(&ImageInput::Encoded(bytes)).expect("detect");
    }
    (photos.len() * passes) as f64 / started.elapsed().as_secs_f64()
}

fn main() {
    let mut photos: Vec<PathBuf> = std::fs::read_dir(bench_data().join("photos"))
        .expect("target/bench-data/photos (run bench.py prepare, see docs/benchmarks.md)")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    photos.sort();
    assert!(!photos.is_empty(), "no photos in target/bench-data/photos");
    let passes: usize = std::env::var("PATROL_BENCH_PASSES").ok().and_then(|v| v.parse().ok()).unwrap_or(2);
    let n = photos.len() * passes;

    let mut detector = load(None);
    assert!(matches!(detector.decode_target(), DecodeTarget::Letterbox { .. }));
    // Warm-up: the first runs of a session are slower.
    serial(&mut detector, &photos[..1], 1);
    let serial_rate = serial(&mut detector, &photos, passes);
    println!("throughput/serial_12mp: {n} photos, {serial_rate:.2} photos/s ({:.0} ms/photo)", 1e3 / serial_rate);
    let rate = overlapped(detector, &photos, passes);
    println!("throughput/overlapped_12mp: {n} photos, {rate:.2} photos/s ({:.0} ms/photo)", 1e3 / rate);

    let tiled = load(Some(TileConfig::default()));
    let tiled_rate = overlapped(tiled, &photos, 1);
    println!(
        "throughput/tiled_12mp: {} photos, {tiled_rate:.3} photos/s ({:.1} s/photo)",
        photos.len(),
        1.0 / tiled_rate
    );
}
