//! `patrol detect`: batch hazard detection on photos, for reviewers checking a model on last week's flights.
//!
//! Three threads overlap the work: a reader decodes the next photo (at the reduced JPEG scale the model needs)
//! while the detector thread runs the current one, and this thread writes records, annotated copies and the
//! progress bar. Every image gets a record; one that cannot be read or decoded gets an `error` instead of
//! detections, and the batch goes on.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{BufWriter, Write};
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc::{SyncSender, sync_channel};
use std::time::Instant;

use anyhow::Context as _;
use clap::ValueEnum;
use indicatif::{ProgressBar, ProgressStyle};
use inference::{
    DecodeTarget, DecodedImage, Detection, Detector, DetectorConfig, DetectorJob, DetectorOutput, DetectorThread,
    HazardKind, ImageInput, OnnxDetector, TileConfig, decode_image,
};

/// Arguments of `patrol detect`.
#[derive(Debug, clap::Args)]
#[command(after_help = "Examples:\n  patrol detect photos/ > detections.jsonl\n  patrol detect --format csv \
                        --annotate review/ flight-0612/\n  patrol detect --tile DJI_0042.JPG   (tiles for small \
                        objects in 12 MP photos)")]
pub struct DetectArgs {
    /// Image files (JPEG, PNG) or folders, searched recursively for *.jpg, *.jpeg and *.png.
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// The ONNX model (YOLOv8/YOLO11, YOLOv5/YOLOX or end-to-end export).
    #[arg(long, env = "PATROL_MODEL", default_value = "models/patrol-hazard.onnx")]
    pub model: PathBuf,
    /// Class names file (one per line), when the model's metadata has none.
    #[arg(long, value_name = "FILE")]
    pub names: Option<PathBuf>,
    /// Output format on stdout (or --output): one JSON object per image, or one CSV row per detection.
    #[arg(long, value_enum, default_value_t = OutputFormat::Jsonl)]
    pub format: OutputFormat,
    /// Write the records to this file instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Write a copy of each image with boxes and labels into this folder (at the decoded resolution).
    #[arg(long, value_name = "DIR")]
    pub annotate: Option<PathBuf>,
    /// Tiled inference for small objects in large photos; optional tile edge in pixels (default: the model's
    /// input size, i.e. native resolution).
    #[arg(long, value_name = "PX", num_args = 0..=1, default_missing_value = "0")]
    pub tile: Option<u32>,
    /// Overlap between tiles, in pixels.
    #[arg(long, value_name = "PX", default_value_t = 128, requires = "tile")]
    pub tile_overlap: u32,
    /// ONNX Runtime threads (0 = one per core).
    #[arg(long, default_value_t = 0)]
    pub threads: usize,
    /// Minimum score for a detection (default: the shipped model's operating point, 0.525; see
    /// train/MODEL_CARD.md).
    #[arg(long, default_value_t = inference::DetectorConfig::default().score_threshold)]
    pub conf: f32,
    /// IoU above which overlapping boxes of one class are merged.
    #[arg(long, default_value_t = 0.45)]
    pub iou: f32,
}

/// Record format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// JSON Lines: `{"path", "width", "height", "detections": [...]}` per image.
    Jsonl,
    /// CSV: one row per detection; an image without detections gets one row with empty detection fields.
    Csv,
}

/// Runs `patrol detect`.
///
/// # Errors
/// No images found, the model or the ONNX Runtime library cannot be loaded, or the output cannot be written.
/// Per-image failures are reported in the records and the summary, not as errors; the exit code is 1 when any
/// image failed.
pub fn run(args: DetectArgs) -> anyhow::Result<ExitCode> {
    let files = collect_images(&args.paths)?;
    anyhow::ensure!(!files.is_empty(), "no JPEG or PNG files found in {}", display_paths(&args.paths));
    let config = DetectorConfig {
        model_path: args.model.clone(),
        names_path: args.names.clone(),
        score_threshold: args.conf,
        iou_threshold: args.iou,
        threads: args.threads,
        tiling: args.tile.map(|tile_px| TileConfig { tile_px, overlap_px: args.tile_overlap, full_view: true }),
        ..DetectorConfig::default()
    };
    let detector = OnnxDetector::load(config).with_context(|| format!("loading the model {}", args.model.display()))?;
    let info = detector.model_info();
    tracing::info!(model = %args.model.display(), version = %info.version, sha256 = %info.sha256, images = files.len(), "Model loaded.");

    let out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(File::create(path).with_context(|| format!("creating {}", path.display()))?),
        None => Box::new(std::io::stdout().lock()),
    };
    if let Some(dir) = &args.annotate {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let progress = ProgressBar::new(files.len() as u64).with_style(
        ProgressStyle::with_template(
            "{spinner} [{elapsed_precise}] {bar:30} {pos}/{len} images, {per_sec} ({eta} left) {msg}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let options = BatchOptions { format: args.format, annotate: args.annotate.clone() };
    let summary = run_batch(detector, files, BufWriter::new(out), &options, &progress)?;
    progress.finish_and_clear();
    eprint!("{}", summary.render());
    Ok(if summary.failed > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// Options of one batch.
#[derive(Debug, Clone)]
struct BatchOptions {
    format: OutputFormat,
    annotate: Option<PathBuf>,
}

/// What happened in a batch.
#[derive(Debug, Default, Clone, PartialEq)]
struct Summary {
    images: usize,
    failed: usize,
    /// Detections per label, with their hazard.
    per_label: BTreeMap<String, (HazardKind, usize)>,
    images_with_hazards: usize,
    seconds: f64,
}

impl Summary {
    fn render(&self) -> String {
        let mut s = format!(
            "{} images in {:.1} s ({:.2} images/s); {} with hazards, {} failed\n",
            self.images,
            self.seconds,
            self.images as f64 / self.seconds.max(1e-9),
            self.images_with_hazards,
            self.failed
        );
        if self.per_label.is_empty() {
            s.push_str("no detections\n");
        }
        for (label, (hazard, count)) in &self.per_label {
            s.push_str(&format!("  {label:<16} {:<18} {count}\n", hazard.as_str()));
        }
        s
    }
}

/// Tag travelling with each image through the detector thread.
#[derive(Debug)]
struct Tag {
    path: PathBuf,
    /// The decoded pixels, kept for `--annotate`.
    pixels: Option<DecodedImage>,
}

/// What the writer receives, in the order images finish.
enum Event {
    /// The image could not be read or decoded.
    Failed { path: PathBuf, error: String },
    /// The detector's answer.
    Done(DetectorOutput<Tag>),
}

fn run_batch<D: Detector + 'static, W: Write>(
    detector: D,
    files: Vec<PathBuf>,
    mut out: W,
    options: &BatchOptions,
    progress: &ProgressBar,
) -> anyhow::Result<Summary> {
    let started = Instant::now();
    // Policy: bounded everywhere; the reader waits for the detector (a batch drops nothing), the detector waits
    // for this writer. Capacity 2 lets the next photo be decoded while the current one is detected.
    let (events_tx, events_rx) = sync_channel::<Event>(4);
    let detector_events = events_tx.clone();
    let thread = DetectorThread::spawn(detector, 2, move |out| match detector_events.send(Event::Done(out)) {
        Ok(()) => ControlFlow::Continue(()),
        Err(_) => ControlFlow::Break(()),
    })?;
    let target = thread.decode_target();
    let keep_pixels = options.annotate.is_some();
    let total = files.len();
    let reader = std::thread::Builder::new().name("detect-reader".into()).spawn(move || {
        read_images(files, target, keep_pixels, &thread, &events_tx);
        // Closing the detector lets its last results through before the events channel closes.
        if let Err(error) = thread.close() {
            let _ = events_tx.send(Event::Failed { path: PathBuf::new(), error: error.to_string() });
        }
    })?;

    let mut summary = Summary::default();
    let mut csv_header = options.format == OutputFormat::Csv;
    let mut annotated_names = BTreeMap::new();
    for event in events_rx.iter().take(total) {
        summary.images += 1;
        let record = match event {
            Event::Failed { path, error } => Record { path, error: Some(error), ..Record::default() },
            Event::Done(DetectorOutput { tag, result, .. }) => match result {
                Ok(found) => {
                    if let (Some(dir), Some(pixels)) = (&options.annotate, &tag.pixels) {
                        let name = annotated_name(&tag.path, &mut annotated_names);
                        if let Err(error) = annotate(pixels, &found.detections, &dir.join(&name)) {
                            tracing::warn!(path = %tag.path.display(), %error, "Could not write the annotated copy.");
                        }
                    }
                    Record {
                        path: tag.path,
                        width_px: found.width_px,
                        height_px: found.height_px,
                        detections: found.detections,
                        error: None,
                    }
                }
                Err(error) => Record { path: tag.path, error: Some(error.to_string()), ..Record::default() },
            },
        };
        if let Some(error) = &record.error {
            summary.failed += 1;
            progress.suspend(|| tracing::warn!(path = %record.path.display(), %error, "Image skipped."));
        }
        if !record.detections.is_empty() {
            summary.images_with_hazards += 1;
        }
        for d in &record.detections {
            summary.per_label.entry(d.label.clone()).or_insert((d.hazard, 0)).1 += 1;
        }
        match options.format {
            OutputFormat::Jsonl => write_jsonl(&mut out, &record)?,
            OutputFormat::Csv => write_csv(&mut out, &record, std::mem::take(&mut csv_header))?,
        }
        progress.inc(1);
    }
    out.flush().context("writing the records")?;
    drop(events_rx);
    if reader.join().is_err() {
        anyhow::bail!("the image reader thread panicked");
    }
    summary.seconds = started.elapsed().as_secs_f64();
    Ok(summary)
}

/// Reads and decodes each file, then queues it for the detector (waiting while the detector is busy).
fn read_images(
    files: Vec<PathBuf>,
    target: DecodeTarget,
    keep_pixels: bool,
    thread: &DetectorThread<Tag>,
    events: &SyncSender<Event>,
) {
    for path in files {
        let decoded = std::fs::read(&path)
            .map_err(|e| format!("could not read the file: {e}"))
            .and_then(|bytes| decode_image(&bytes, target).map_err(|e| e.to_string()));
        let sent = match decoded {
            Ok(image) => {
                let pixels = keep_pixels.then(|| image.clone());
                thread.submit(DetectorJob { tag: Tag { path, pixels }, image: ImageInput::Decoded(image) }).is_ok()
            }
            Err(error) => events.send(Event::Failed { path, error }).is_ok(),
        };
        if !sent {
            return; // The writer has stopped.
        }
    }
}

/// One output record.
#[derive(Debug, Default)]
struct Record {
    path: PathBuf,
    width_px: u32,
    height_px: u32,
    detections: Vec<Detection>,
    error: Option<String>,
}

fn write_jsonl(out: &mut impl Write, record: &Record) -> anyhow::Result<()> {
    let value = match &record.error {
        Some(error) => serde_json::json!({ "path": record.path, "error": error }),
        None => serde_json::json!({
            "path": record.path,
            "width": record.width_px,
            "height": record.height_px,
            "detections": record.detections,
        }),
    };
    serde_json::to_writer(&mut *out, &value).context("writing a JSON record")?;
    writeln!(out).context("writing a JSON record")
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) { format!("\"{}\"", s.replace('"', "\"\"")) } else { s.to_owned() }
}

fn write_csv(out: &mut impl Write, record: &Record, header: bool) -> anyhow::Result<()> {
    if header {
        writeln!(out, "path,width,height,label,hazard,class_id,score,x1,y1,x2,y2,model_version,model_sha256,error")?;
    }
    let path = csv_field(&record.path.display().to_string());
    if let Some(error) = &record.error {
        writeln!(out, "{path},,,,,,,,,,,,,{}", csv_field(error))?;
    } else if record.detections.is_empty() {
        writeln!(out, "{path},{},{},,,,,,,,,,,", record.width_px, record.height_px)?;
    }
    for d in &record.detections {
        let b = d.bbox;
        writeln!(
            out,
            "{path},{},{},{},{},{},{:.4},{:.1},{:.1},{:.1},{:.1},{},{},",
            record.width_px,
            record.height_px,
            csv_field(&d.label),
            d.hazard.as_str(),
            d.class_id,
            d.score,
            b.x1,
            b.y1,
            b.x2,
            b.y2,
            csv_field(&d.model_version),
            d.model_sha256
        )?;
    }
    Ok(())
}

fn is_image(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| ["jpg", "jpeg", "png"].iter().any(|x| e.eq_ignore_ascii_case(x)))
}

/// The image files named, folders searched recursively, sorted within each folder.
fn collect_images(paths: &[PathBuf]) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    for path in paths {
        let meta = std::fs::metadata(path).with_context(|| format!("{} does not exist", path.display()))?;
        if meta.is_dir() {
            walk(path, &mut files)?;
        } else {
            // A file named explicitly is always tried; a wrong type gets a per-image error.
            files.push(path.clone());
        }
    }
    Ok(files)
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading the folder {}", dir.display()))?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, files)?;
        } else if is_image(&path) {
            files.push(path);
        }
    }
    Ok(())
}

fn display_paths(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}

/// `<stem>.jpg`, with `-2`, `-3`... when two inputs share a stem.
fn annotated_name(path: &Path, used: &mut BTreeMap<String, usize>) -> String {
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_else(|| "image".into());
    let count = used.entry(stem.clone()).or_insert(0);
    *count += 1;
    if *count == 1 { format!("{stem}.jpg") } else { format!("{stem}-{count}.jpg") }
}

fn hazard_colour(hazard: HazardKind) -> [u8; 3] {
    match hazard {
        HazardKind::Fire => [255, 64, 32],
        HazardKind::Gas => [255, 210, 0],
        HazardKind::IllegalStructure => [0, 170, 255],
    }
}

/// Draws boxes and `label score` tags on a copy of the decoded pixels and writes it as JPEG.
fn annotate(image: &DecodedImage, detections: &[Detection], path: &Path) -> anyhow::Result<()> {
    let mut canvas = image::RgbImage::from_raw(image.width_px, image.height_px, image.rgb.clone())
        .context("decoded image has the wrong length")?;
    // Boxes are in original pixels; the decoded copy may be smaller.
    let sx = image.width_px as f32 / image.original_width_px.max(1) as f32;
    let sy = image.height_px as f32 / image.original_height_px.max(1) as f32;
    let thickness = (image.width_px.max(image.height_px) / 400).clamp(1, 6);
    let text_scale = (image.width_px.max(image.height_px) / 700).clamp(1, 4);
    for d in detections {
        let colour = hazard_colour(d.hazard);
        let b = d.bbox.scaled(sx, sy);
        draw_rect(&mut canvas, b.x1 as i64, b.y1 as i64, b.x2 as i64, b.y2 as i64, thickness, colour);
        let text = format!("{} {:.0}%", d.label, d.score * 100.0);
        let (tw, th) = ((text.len() as u32 * 8 + 2) * text_scale, 10 * text_scale);
        let ty = if b.y1 as i64 >= i64::from(th) { b.y1 as i64 - i64::from(th) } else { b.y2 as i64 };
        fill_rect(&mut canvas, b.x1 as i64, ty, b.x1 as i64 + i64::from(tw), ty + i64::from(th), colour);
        draw_text(&mut canvas, b.x1 as i64 + i64::from(text_scale), ty + i64::from(text_scale), &text, text_scale);
    }
    canvas.save_with_format(path, image::ImageFormat::Jpeg).with_context(|| format!("writing {}", path.display()))
}

fn fill_rect(canvas: &mut image::RgbImage, x1: i64, y1: i64, x2: i64, y2: i64, colour: [u8; 3]) {
    let (w, h) = (i64::from(canvas.width()), i64::from(canvas.height()));
    for y in y1.max(0)..y2.min(h) {
        for x in x1.max(0)..x2.min(w) {
            canvas.put_pixel(x as u32, y as u32, image::Rgb(colour));
        }
    }
}

fn draw_rect(canvas: &mut image::RgbImage, x1: i64, y1: i64, x2: i64, y2: i64, t: u32, colour: [u8; 3]) {
    let t = i64::from(t);
    fill_rect(canvas, x1, y1, x2, y1 + t, colour);
    fill_rect(canvas, x1, y2 - t, x2, y2, colour);
    fill_rect(canvas, x1, y1, x1 + t, y2, colour);
    fill_rect(canvas, x2 - t, y1, x2, y2, colour);
}

/// Black text in the 8x8 bitmap font of the `font8x8` crate (MIT), scaled by `scale`.
fn draw_text(canvas: &mut image::RgbImage, x: i64, y: i64, text: &str, scale: u32) {
    let scale = i64::from(scale);
    for (i, ch) in text.chars().enumerate() {
        let glyph = font8x8::legacy::BASIC_LEGACY.get(ch as usize).copied().unwrap_or([0; 8]);
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..8 {
                if bits & (1 << col) != 0 {
                    let (px, py) = (x + (i as i64 * 8 + col) * scale, y + row as i64 * scale);
                    fill_rect(canvas, px, py, px + scale, py + scale, [0, 0, 0]);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use inference::{BoxPx, ScriptedDetector};

    use super::*;

    fn write_jpeg(path: &Path, width: u32, height: u32) {
        image::RgbImage::from_pixel(width, height, image::Rgb([90, 120, 60])).save(path).unwrap();
    }

    fn fire(x: f32) -> Detection {
        ScriptedDetector::detection("fire", HazardKind::Fire, 0.875, BoxPx { x1: x, y1: 10.0, x2: x + 20.0, y2: 40.0 })
    }

    #[test]
    fn jsonl_has_one_record_per_image_errors_included_and_annotates() {
        let dir = tempfile::tempdir().unwrap();
        let photos = dir.path().join("photos");
        std::fs::create_dir_all(photos.join("nested")).unwrap();
        write_jpeg(&photos.join("a.jpg"), 64, 48);
        std::fs::write(photos.join("b.jpg"), b"\xFF\xD8\xFF truncated").unwrap();
        write_jpeg(&photos.join("nested/c.JPG"), 32, 32);
        std::fs::write(photos.join("notes.txt"), b"ignored").unwrap();
        let files = collect_images(std::slice::from_ref(&photos)).unwrap();
        assert_eq!(files.len(), 3);

        let detector = ScriptedDetector::new(vec![vec![fire(5.0)], vec![fire(1.0), fire(30.0)]]);
        let annotate_dir = dir.path().join("review");
        std::fs::create_dir_all(&annotate_dir).unwrap();
        let options = BatchOptions { format: OutputFormat::Jsonl, annotate: Some(annotate_dir.clone()) };
        let mut out = Vec::new();
        let summary = run_batch(detector, files, &mut out, &options, &ProgressBar::hidden()).unwrap();
        assert_eq!((summary.images, summary.failed, summary.images_with_hazards), (3, 1, 2));
        assert_eq!(summary.per_label.get("fire"), Some(&(HazardKind::Fire, 3)));
        assert!(summary.render().contains("fire"));

        let lines: Vec<serde_json::Value> =
            String::from_utf8(out).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 3);
        let by_name = |name: &str| lines.iter().find(|l| l["path"].as_str().unwrap().ends_with(name)).unwrap();
        assert!(by_name("b.jpg")["error"].as_str().unwrap().contains("corrupt"));
        let a = by_name("a.jpg");
        assert_eq!((a["width"].as_u64(), a["height"].as_u64()), (Some(64), Some(48)));
        assert_eq!(a["detections"][0]["label"], "fire");
        assert_eq!(a["detections"][0]["model_version"], ScriptedDetector::MODEL_VERSION);
        assert_eq!(by_name("c.JPG")["detections"].as_array().unwrap().len(), 2);

        let annotated = image::open(annotate_dir.join("a.jpg")).unwrap().into_rgb8();
        assert_eq!(annotated.dimensions(), (64, 48));
        // The box edge is drawn in the fire colour (JPEG shifts it a little).
        let p = annotated.get_pixel(5, 25).0;
        assert!(p[0] > 200 && p[2] < 120, "{p:?}");
        assert!(annotate_dir.join("c.jpg").exists());
    }

    #[test]
    fn csv_has_a_header_and_a_row_per_detection_or_image() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a,1.png"), dir.path().join("b.png"));
        image::RgbImage::new(20, 10).save(&a).unwrap();
        image::RgbImage::new(20, 10).save(&b).unwrap();
        let detector = ScriptedDetector::new(vec![vec![fire(1.0), fire(2.0)], vec![]]);
        let options = BatchOptions { format: OutputFormat::Csv, annotate: None };
        let mut out = Vec::new();
        run_batch(detector, vec![a, b], &mut out, &options, &ProgressBar::hidden()).unwrap();
        let text = String::from_utf8(out).unwrap();
        let rows: Vec<&str> = text.lines().collect();
        assert_eq!(rows.len(), 4, "{text}");
        assert!(rows[0].starts_with("path,width,height,label"));
        assert!(rows[1].contains("a,1.png\",20,10,fire,fire,0,0.8750,1.0,10.0,21.0,40.0,scripted,"));
        assert!(rows[3].ends_with("b.png,20,10,,,,,,,,,,,"), "{}", rows[3]);
        assert_eq!(rows[3].split(',').count(), 14);
    }

    #[test]
    fn missing_paths_and_empty_folders_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        let err = collect_images(&[dir.path().join("nope")]).unwrap_err();
        assert!(err.to_string().contains("does not exist"));
        assert!(collect_images(&[dir.path().to_path_buf()]).unwrap().is_empty());
    }

    #[test]
    fn annotated_names_do_not_collide() {
        let mut used = BTreeMap::new();
        assert_eq!(annotated_name(Path::new("x/a.png"), &mut used), "a.jpg");
        assert_eq!(annotated_name(Path::new("y/a.jpg"), &mut used), "a-2.jpg");
    }

    #[test]
    fn font_draws_visible_glyphs() {
        let mut canvas = image::RgbImage::from_pixel(20, 10, image::Rgb([255, 255, 255]));
        draw_text(&mut canvas, 0, 0, "A", 1);
        let dark = canvas.pixels().filter(|p| p.0 == [0, 0, 0]).count();
        assert!(dark > 10, "{dark}");
    }
}
