//! The detector contract: [`Detection`], [`ModelInfo`], [`DetectorConfig`] and the [`Detector`] trait.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::decode::{DecodeTarget, decode_image};
use crate::error::InferenceError;
use crate::frame::{DecodedImage, Frame, ImageInput};
use crate::labels::{HazardKind, HazardMap};
use crate::postprocess::{BoxPx, OutputLayout};
use crate::tiling::TileConfig;

/// The shipped model's operating threshold (max micro-F1 on validation, `models/patrol-hazard.metrics.json`).
const SHIPPED_MODEL_THRESHOLD: f32 = 0.525;

/// Identity of the model that produced a detection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelInfo {
    /// Lower-case hex sha256 of the model file.
    pub sha256: String,
    /// The model's `version` metadata, else its file stem.
    pub version: String,
    /// Class names, indexed by class id.
    pub class_names: Vec<String>,
    /// Model input width in pixels.
    pub input_width_px: u32,
    /// Model input height in pixels.
    pub input_height_px: u32,
    /// The output layout, once known (models with dynamic output shapes are told apart at their first run).
    pub layout: Option<OutputLayout>,
}

/// One hazard found in an image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Detection {
    /// Index into the model's class names.
    pub class_id: usize,
    /// The model's label for the class (e.g. `smoke`).
    pub label: String,
    /// The hazard the label maps to.
    pub hazard: HazardKind,
    /// Confidence in 0..1.
    pub score: f32,
    /// The box in the original image's pixels.
    pub bbox: BoxPx,
    /// sha256 of the model file.
    pub model_sha256: Arc<str>,
    /// Model version.
    pub model_version: Arc<str>,
}

/// What the ground station configures about a detector (its `[inference]` section).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct DetectorConfig {
    /// The `.onnx` file.
    pub model_path: PathBuf,
    /// Optional class-names sidecar (one name per line, a JSON list, or Ultralytics' dict); overrides metadata.
    pub names_path: Option<PathBuf>,
    /// Label → hazard map; labels not in it are ignored.
    pub hazard_map: HazardMap,
    /// Minimum score for a detection, unless `class_thresholds` names the label. The default, 0.525, is the
    /// operating threshold of the shipped `models/patrol-hazard.onnx` (best micro-F1 on validation, from
    /// `models/patrol-hazard.metrics.json` and `train/MODEL_CARD.md`); the model's ONNX metadata carries no
    /// threshold. Lower it (e.g. 0.25) for other models such as Ultralytics exports.
    pub score_threshold: f32,
    /// Per-label minimum scores.
    pub class_thresholds: BTreeMap<String, f32>,
    /// IoU above which NMS drops the lower-scoring box of the same class.
    pub iou_threshold: f32,
    /// Most detections kept per image.
    pub max_detections: usize,
    /// ONNX Runtime intra-op threads; 0 = ONNX Runtime's default, one per physical core.
    pub threads: usize,
    /// Tiled inference for large images; `None` = letterbox the whole image once.
    pub tiling: Option<TileConfig>,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            model_path: PathBuf::from("models/patrol-hazard.onnx"),
            names_path: None,
            hazard_map: HazardMap::default(),
            score_threshold: SHIPPED_MODEL_THRESHOLD,
            class_thresholds: BTreeMap::new(),
            iou_threshold: 0.45,
            max_detections: 300,
            threads: 0,
            tiling: None,
        }
    }
}

/// Detections for one image, with the image's original size.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImageDetections {
    /// Original width in pixels.
    pub width_px: u32,
    /// Original height in pixels.
    pub height_px: u32,
    /// The detections, highest score first.
    pub detections: Vec<Detection>,
}

/// Finds hazards in images. Synchronous and `&mut self`: a detector owns reusable buffers and a session, and
/// lives on its own thread (see [`crate::DetectorThread`]), never on an async runtime.
pub trait Detector: Send {
    /// The model's identity.
    fn model_info(&self) -> &ModelInfo;

    /// How much of an encoded image this detector needs decoded (reduced-scale JPEG decode when letterboxing).
    fn decode_target(&self) -> DecodeTarget;

    /// Detects hazards in `frame`; boxes are in the frame's original pixels.
    ///
    /// # Errors
    /// Per-image errors ([`InferenceError::is_per_image`]) leave the detector usable.
    fn detect(&mut self, frame: &Frame<'_>) -> Result<Vec<Detection>, InferenceError>;

    /// Decodes (if needed) and detects.
    ///
    /// # Errors
    /// Decoding errors and those of [`Detector::detect`].
    fn detect_input(&mut self, input: &ImageInput) -> Result<ImageDetections, InferenceError> {
        let decoded;
        let image: &DecodedImage = match input {
            ImageInput::Encoded(bytes) => {
                decoded = decode_image(bytes, self.decode_target())?;
                &decoded
            }
            ImageInput::Decoded(image) => image,
        };
        let frame = image.frame()?;
        let detections = self.detect(&frame)?;
        Ok(ImageDetections { width_px: frame.original_width_px(), height_px: frame.original_height_px(), detections })
    }
}

impl<D: Detector + ?Sized> Detector for Box<D> {
    fn model_info(&self) -> &ModelInfo {
        (**self).model_info()
    }
    fn decode_target(&self) -> DecodeTarget {
        (**self).decode_target()
    }
    fn detect(&mut self, frame: &Frame<'_>) -> Result<Vec<Detection>, InferenceError> {
        (**self).detect(frame)
    }
}
