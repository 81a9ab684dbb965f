//! [`OnnxDetector`]: an ONNX Runtime session plus letterboxing, decoding, NMS and tiling.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ort::session::Session;
use ort::session::builder::GraphOptimizationLevel;
use ort::value::{TensorElementType, TensorRef, ValueType};
use sha2::{Digest, Sha256};

use crate::decode::DecodeTarget;
use crate::detector::{Detection, Detector, DetectorConfig, ModelInfo};
use crate::error::InferenceError;
use crate::frame::Frame;
use crate::labels::{ClassTable, parse_class_names};
use crate::postprocess::{OutputLayout, ScoredBox, decode_output, nms};
use crate::preprocess::{LetterboxTransform, Letterboxer, RegionPx};
use crate::runtime;
use crate::tiling::{TileConfig, plan_tiles, touches_inner_edge};

/// Input size used when the model leaves height/width dynamic.
const DEFAULT_INPUT_PX: u32 = 640;
/// Most images letterboxed into one run when tiling with a dynamic batch (bounds the input buffer: 8 x 4.9 MB).
const MAX_TILE_BATCH: usize = 8;
/// Boxes within this many pixels of a tile's inner edge are treated as cut off.
const TILE_EDGE_MARGIN_PX: f32 = 2.0;

/// The raw output of one run: shape and values.
#[derive(Debug, Clone, PartialEq)]
pub struct RawOutput {
    /// Output tensor shape.
    pub shape: Vec<i64>,
    /// Output values, row-major.
    pub values: Vec<f32>,
}

/// A hazard detector running an ONNX model on ONNX Runtime (CPU).
pub struct OnnxDetector {
    session: Session,
    input_name: String,
    /// `Some(n)` when the model's batch dimension is fixed.
    fixed_batch: Option<usize>,
    layout: OutputLayout,
    classes: ClassTable,
    info: ModelInfo,
    model_sha256: Arc<str>,
    model_version: Arc<str>,
    config: DetectorConfig,
    letterboxer: Letterboxer,
    /// Reused input tensor storage, `batch * 3 * H * W`.
    input: Vec<f32>,
    /// Reused candidate and transform buffers.
    candidates: Vec<ScoredBox>,
    transforms: Vec<(LetterboxTransform, Option<RegionPx>)>,
}

impl std::fmt::Debug for OnnxDetector {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OnnxDetector").field("info", &self.info).field("config", &self.config).finish_non_exhaustive()
    }
}

fn run_err(e: impl std::fmt::Display) -> InferenceError {
    InferenceError::Run(e.to_string())
}

impl OnnxDetector {
    /// Loads the ONNX Runtime library and the model, checks its input and output against the model contract, and
    /// runs it once on a grey image (which tells the output layout of models with dynamic shapes).
    ///
    /// # Errors
    /// [`InferenceError::RuntimeMissing`] / [`InferenceError::RuntimeLoad`] (run `scripts/setup-onnxruntime.sh`),
    /// [`InferenceError::ReadModel`], [`InferenceError::LoadModel`], [`InferenceError::UnsupportedInput`],
    /// [`InferenceError::UnsupportedOutput`], [`InferenceError::ReadNames`], [`InferenceError::BadNames`],
    /// [`InferenceError::Config`].
    pub fn load(config: DetectorConfig) -> Result<Self, InferenceError> {
        let path = config.model_path.clone();
        let bytes = std::fs::read(&path).map_err(|source| InferenceError::ReadModel { path: path.clone(), source })?;
        if !(0.0..=1.0).contains(&config.iou_threshold) {
            return Err(InferenceError::Config(format!("IoU threshold {} is not in 0..=1", config.iou_threshold)));
        }
        let env = runtime::environment()?;
        let load_err =
            |e: &dyn std::fmt::Display| InferenceError::LoadModel { path: path.clone(), message: e.to_string() };
        let mut builder = Session::builder(&env)
            .map_err(|e| load_err(&e))?
            .with_optimization_level(GraphOptimizationLevel::All)
            .map_err(|e| load_err(&e))?
            .with_inter_threads(1)
            .map_err(|e| load_err(&e))?
            // Idle intra-op threads sleep instead of spin-waiting for the next operator: the decode thread that
            // prepares the next photo, and the rest of the ground station, need those cores. On the shared 2-core VM
            // spinning made the bare run 1.6x slower (docs/benchmarks.md).
            .with_intra_op_spinning(false)
            .map_err(|e| load_err(&e))?;
        if config.threads > 0 {
            builder = builder.with_intra_threads(config.threads).map_err(|e| load_err(&e))?;
        }
        let session = builder.commit_from_memory(&bytes).map_err(|e| load_err(&e))?;
        let sha256: String = Sha256::digest(&bytes).iter().map(|b| format!("{b:02x}")).collect();

        let (input_name, fixed_batch, input_w, input_h) = check_input(&session, &path)?;
        let metadata = session.metadata().map_err(|e| load_err(&e))?;
        let version = metadata
            .custom("version")
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default());
        let names = match &config.names_path {
            Some(names_path) => {
                let text = std::fs::read_to_string(names_path)
                    .map_err(|source| InferenceError::ReadNames { path: names_path.clone(), source })?;
                Some(parse_class_names(&text, &names_path.display().to_string())?)
            }
            None => match metadata.custom("names") {
                Some(text) => Some(parse_class_names(&text, "model metadata `names`")?),
                None => None,
            },
        };
        drop(metadata);
        if session.outputs().is_empty() {
            return Err(InferenceError::UnsupportedOutput {
                shape: Vec::new(),
                num_classes: names.as_ref().map(Vec::len),
            });
        }

        let mut detector = Self {
            session,
            input_name,
            fixed_batch,
            layout: OutputLayout::EndToEnd,
            classes: ClassTable { names: Vec::new(), hazards: Vec::new(), thresholds: Vec::new() },
            info: ModelInfo {
                sha256: sha256.clone(),
                version: version.clone(),
                class_names: Vec::new(),
                input_width_px: input_w,
                input_height_px: input_h,
                layout: None,
            },
            model_sha256: sha256.into(),
            model_version: version.into(),
            letterboxer: Letterboxer::new(input_w, input_h),
            input: Vec::new(),
            candidates: Vec::new(),
            transforms: Vec::new(),
            config,
        };
        if let Some(tiling) = &detector.config.tiling {
            tiling.validate(input_w.min(input_h))?;
        }

        // A warm-up run on a grey image: tells the layout from the real output shape and fails early on a model
        // that does not fit the contract.
        let batch = detector.fixed_batch.unwrap_or(1);
        let len = batch * detector.letterboxer.input_len();
        detector.input.clear();
        detector.input.resize(len, 114.0 / 255.0);
        let raw = detector.run_input(batch)?;
        let layout = OutputLayout::from_shape(&raw.shape, names.as_ref().map(Vec::len))?;
        let names = match (names, layout.num_classes()) {
            (Some(names), _) => names,
            (None, Some(nc)) => (0..nc).map(|i| format!("class{i}")).collect(),
            (None, None) => {
                return Err(InferenceError::BadNames {
                    source_name: path.display().to_string(),
                    detail: "an end-to-end model without `names` metadata needs a names file (names_path)".into(),
                });
            }
        };
        let classes = ClassTable::new(
            names,
            &detector.config.hazard_map,
            detector.config.score_threshold,
            &detector.config.class_thresholds,
        )?;
        detector.layout = layout;
        detector.info.class_names = classes.names.clone();
        detector.info.layout = Some(layout);
        detector.classes = classes;
        Ok(detector)
    }

    /// The configuration the detector was loaded with.
    pub fn config(&self) -> &DetectorConfig {
        &self.config
    }

    /// Turns tiled inference on (`Some`) or off.
    ///
    /// # Errors
    /// [`InferenceError::Config`] when the overlap is not smaller than the tile.
    pub fn set_tiling(&mut self, tiling: Option<TileConfig>) -> Result<(), InferenceError> {
        if let Some(t) = &tiling {
            t.validate(self.info.input_width_px.min(self.info.input_height_px))?;
        }
        self.config.tiling = tiling;
        Ok(())
    }

    /// Runs the model on a caller-made input tensor (`batch * 3 * H * W` values, planar RGB 0..1) and returns the
    /// raw first output. For checking the model against other runtimes; detection uses [`Detector::detect`].
    ///
    /// # Errors
    /// [`InferenceError::Config`] for a wrong length, [`InferenceError::Run`] when ONNX Runtime fails.
    pub fn run_raw(&mut self, input: &[f32], batch: usize) -> Result<RawOutput, InferenceError> {
        if batch == 0 || input.len() != batch * self.letterboxer.input_len() {
            return Err(InferenceError::Config(format!(
                "raw input holds {} values; batch {batch} needs {}",
                input.len(),
                batch * self.letterboxer.input_len()
            )));
        }
        self.input.clear();
        self.input.extend_from_slice(input);
        self.run_input(batch)
    }

    /// Runs the session on `self.input[..batch * len]`, copying the output (for the warm-up and `run_raw`).
    fn run_input(&mut self, batch: usize) -> Result<RawOutput, InferenceError> {
        let (w, h) = (self.info.input_width_px as i64, self.info.input_height_px as i64);
        let n = batch * self.letterboxer.input_len();
        let tensor = TensorRef::from_array_view(([batch as i64, 3, h, w], &self.input[..n])).map_err(run_err)?;
        let outputs = self.session.run(ort::inputs![self.input_name.as_str() => tensor]).map_err(run_err)?;
        let (shape, values) = outputs[0].try_extract_tensor::<f32>().map_err(run_err)?;
        Ok(RawOutput { shape: shape.to_vec(), values: values.to_vec() })
    }

    /// Runs the session on `batch` letterboxed images in `self.input` and decodes item `i` of the output into
    /// `self.candidates` (input pixels), then maps to source pixels with `self.transforms[first + i]`.
    fn run_and_decode(&mut self, batch: usize, first: usize, frame: &Frame<'_>) -> Result<(), InferenceError> {
        let (w, h) = (self.info.input_width_px as i64, self.info.input_height_px as i64);
        let n = batch * self.letterboxer.input_len();
        let tensor = TensorRef::from_array_view(([batch as i64, 3, h, w], &self.input[..n])).map_err(run_err)?;
        let outputs = self.session.run(ort::inputs![self.input_name.as_str() => tensor]).map_err(run_err)?;
        let (shape, values) = outputs[0].try_extract_tensor::<f32>().map_err(run_err)?;
        let unexpected =
            || InferenceError::UnsupportedOutput { shape: shape.to_vec(), num_classes: Some(self.classes.names.len()) };
        let &[out_batch, d1, d2] = &shape[..] else { return Err(unexpected()) };
        if out_batch < batch as i64 || OutputLayout::from_shape(shape, Some(self.classes.names.len()))? != self.layout {
            return Err(unexpected());
        }
        let (d1, d2) = (d1 as usize, d2 as usize);
        let (frame_w, frame_h) = (frame.width_px() as f32, frame.height_px() as f32);
        let (image_w, image_h) = (frame.width_px(), frame.height_px());
        let mut item_boxes = Vec::new();
        for i in 0..batch.min(self.transforms.len().saturating_sub(first)) {
            let (transform, tile) = self.transforms[first + i];
            item_boxes.clear();
            let item = &values[i * d1 * d2..(i + 1) * d1 * d2];
            decode_output(self.layout, item, d1, d2, &self.classes.thresholds, &mut item_boxes);
            for mut b in item_boxes.drain(..) {
                b.bbox = transform.to_source(b.bbox).clip(frame_w, frame_h);
                if b.bbox.area() <= 0.0 {
                    continue;
                }
                if let Some(tile) = &tile
                    && touches_inner_edge(&b.bbox, tile, image_w, image_h, TILE_EDGE_MARGIN_PX)
                {
                    continue;
                }
                self.candidates.push(b);
            }
        }
        Ok(())
    }

    fn ensure_input(&mut self, batch: usize) {
        let len = batch * self.letterboxer.input_len();
        if self.input.len() < len {
            self.input.resize(len, 0.0);
        }
    }

    /// Letterboxes `items` (None = whole frame) in batches and decodes them into `self.candidates`.
    fn detect_items(&mut self, frame: &Frame<'_>, items: &[Option<RegionPx>]) -> Result<(), InferenceError> {
        let chunk = match self.fixed_batch {
            Some(b) => b,
            None if items.len() > 1 => MAX_TILE_BATCH,
            None => 1,
        };
        let len = self.letterboxer.input_len();
        self.transforms.clear();
        for group in items.chunks(chunk) {
            let batch = self.fixed_batch.unwrap_or(group.len());
            self.ensure_input(batch);
            let first = self.transforms.len();
            for (slot, region) in group.iter().enumerate() {
                let out = &mut self.input[slot * len..(slot + 1) * len];
                let transform = self.letterboxer.letterbox_into(frame, *region, out)?;
                self.transforms.push((transform, *region));
            }
            // A fixed batch larger than what is left is padded with grey; its outputs are not read.
            self.input[group.len() * len..batch * len].fill(114.0 / 255.0);
            self.run_and_decode(batch, first, frame)?;
        }
        Ok(())
    }
}

/// Checks the model has one float32 `[batch, 3, H, W]` input; returns its name, fixed batch and size.
fn check_input(session: &Session, path: &Path) -> Result<(String, Option<usize>, u32, u32), InferenceError> {
    let unsupported = |detail: String| InferenceError::UnsupportedInput { path: PathBuf::from(path), detail };
    let [input] = session.inputs() else {
        return Err(unsupported(format!("{} inputs", session.inputs().len())));
    };
    let ValueType::Tensor { ty, shape, .. } = input.dtype() else {
        return Err(unsupported(format!("input `{}` is not a tensor", input.name())));
    };
    if *ty != TensorElementType::Float32 {
        return Err(unsupported(format!("input `{}` has element type {ty:?}", input.name())));
    }
    let &[batch, channels, height, width] = &shape[..] else {
        return Err(unsupported(format!("input `{}` has shape {:?}", input.name(), &shape[..])));
    };
    if channels != 3 && channels != -1 {
        return Err(unsupported(format!("input `{}` has {channels} channels", input.name())));
    }
    let size = |d: i64| if d > 0 { d as u32 } else { DEFAULT_INPUT_PX };
    let fixed_batch = (batch > 0).then_some(batch as usize);
    Ok((input.name().to_owned(), fixed_batch, size(width), size(height)))
}

impl Detector for OnnxDetector {
    fn model_info(&self) -> &ModelInfo {
        &self.info
    }

    fn decode_target(&self) -> DecodeTarget {
        match self.config.tiling {
            Some(_) => DecodeTarget::Full,
            None => {
                DecodeTarget::Letterbox { width_px: self.info.input_width_px, height_px: self.info.input_height_px }
            }
        }
    }

    fn detect(&mut self, frame: &Frame<'_>) -> Result<Vec<Detection>, InferenceError> {
        self.candidates.clear();
        match self.config.tiling {
            None => self.detect_items(frame, &[None])?,
            Some(tiling) => {
                let input_px = self.info.input_width_px.min(self.info.input_height_px);
                let tile = tiling.resolved_tile_px(input_px);
                let mut items: Vec<Option<RegionPx>> =
                    plan_tiles(frame.width_px(), frame.height_px(), tile, tiling.overlap_px)
                        .into_iter()
                        .map(Some)
                        .collect();
                if tiling.full_view || items.is_empty() {
                    items.push(None);
                }
                self.detect_items(frame, &items)?;
            }
        }
        nms(&mut self.candidates, self.config.iou_threshold, self.config.max_detections);
        let (sx, sy) = frame.to_original_scale();
        let (ow, oh) = (frame.original_width_px() as f32, frame.original_height_px() as f32);
        Ok(self
            .candidates
            .iter()
            .filter_map(|c| {
                let hazard = (*self.classes.hazards.get(c.class_id)?)?;
                Some(Detection {
                    class_id: c.class_id,
                    label: self.classes.names[c.class_id].clone(),
                    hazard,
                    score: c.score,
                    bbox: c.bbox.scaled(sx, sy).clip(ow, oh),
                    model_sha256: Arc::clone(&self.model_sha256),
                    model_version: Arc::clone(&self.model_version),
                })
            })
            .collect())
    }
}
