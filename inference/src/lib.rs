//! Hazard detection on drone photos with ONNX Runtime.
//!
//! Role: turn an image into [`Detection`]s (fire, gas cylinder, illegal structure) with boxes in the original
//! image's pixels, fast on a CPU. Non-goals: no async, no network, no video decoding; the only file it opens is
//! the model (and its optional class-names file).
//!
//! Layout:
//! - [`decode`]: JPEG/PNG to RGB, JPEGs at reduced DCT scale when the model needs fewer pixels.
//! - [`preprocess`]: letterboxing into a reused input buffer.
//! - [`postprocess`]: the three output layouts of the model contract, class-wise NMS.
//! - [`labels`]: class names from metadata or a sidecar, the label → hazard map, per-class thresholds.
//! - [`tiling`]: overlapping tiles plus a downscaled full view for large photos.
//! - [`OnnxDetector`] (feature `onnx`, default): the session and the whole pipeline; [`Detector`] is the trait
//!   the ground station programs against, [`DetectorThread`] runs one on its own thread.
//! - [`ScriptedDetector`] (feature `test-util`): canned detections for other crates' tests.
//!
//! The ONNX Runtime library is loaded at run time: run `scripts/setup-onnxruntime.sh` once.
//!
//! ```no_run
//! use inference::{Detector, DetectorConfig, ImageInput, OnnxDetector};
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut detector = OnnxDetector::load(DetectorConfig::default())?;
//! let photo = std::fs::read("photo.jpg")?;
//! for d in detector.detect_input(&ImageInput::Encoded(photo))?.detections {
//!     println!("{} {:.2} at {:?}", d.label, d.score, d.bbox);
//! }
//! # Ok(())
//! # }
//! ```

pub mod decode;
mod detector;
mod error;
mod frame;
pub mod labels;
#[cfg(feature = "onnx")]
mod onnx;
pub mod postprocess;
pub mod preprocess;
#[cfg(feature = "onnx")]
pub mod runtime;
#[cfg(feature = "test-util")]
mod scripted;
mod thread;
pub mod tiling;

pub use decode::{DecodeTarget, decode_image};
pub use detector::{Detection, Detector, DetectorConfig, ImageDetections, ModelInfo};
pub use error::InferenceError;
pub use frame::{DecodedImage, Frame, ImageInput};
pub use labels::{HazardKind, HazardMap, LabelTarget};
#[cfg(feature = "onnx")]
pub use onnx::{OnnxDetector, RawOutput};
pub use postprocess::{BoxPx, OutputLayout};
#[cfg(feature = "test-util")]
pub use scripted::ScriptedDetector;
pub use thread::{DetectorJob, DetectorOutput, DetectorThread, SubmitError};
pub use tiling::TileConfig;
