//! The crate's one error type.

use std::path::PathBuf;

/// Everything that can go wrong while loading a model or detecting hazards in an image.
///
/// Errors about one image ([`InferenceError::is_per_image`]) leave the detector usable: a batch carries on with
/// the next frame.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InferenceError {
    /// The ONNX Runtime shared library was not found in any of the places searched.
    #[error(
        "the ONNX Runtime library (libonnxruntime.so.{version}) was not found; run scripts/setup-onnxruntime.sh \
         or set PATROL_ORT_LIB to its path (searched: {})",
        display_paths(searched)
    )]
    RuntimeMissing {
        /// The ONNX Runtime version this build expects.
        version: &'static str,
        /// Every path that was tried, in order.
        searched: Vec<PathBuf>,
    },
    /// The ONNX Runtime library exists but could not be loaded (wrong version or architecture, corrupt file).
    #[error(
        "could not load the ONNX Runtime library {}: {message}; run scripts/setup-onnxruntime.sh to install \
         the supported version",
        path.display()
    )]
    RuntimeLoad {
        /// The library that failed to load.
        path: PathBuf,
        /// What the loader said.
        message: String,
    },
    /// The model file could not be read.
    #[error("could not read the model {}", path.display())]
    ReadModel {
        /// The model path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The class-names sidecar file could not be read.
    #[error("could not read the class names file {}", path.display())]
    ReadNames {
        /// The sidecar path.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// ONNX Runtime rejected the model or failed while creating the session.
    #[error("ONNX Runtime could not load the model {}: {message}", path.display())]
    LoadModel {
        /// The model path.
        path: PathBuf,
        /// ONNX Runtime's message.
        message: String,
    },
    /// The model's input is not a float32 `[batch, 3, height, width]` image tensor.
    #[error("the model {} has an unsupported input: {detail} (expected one float32 input [batch, 3, height, width])", path.display())]
    UnsupportedInput {
        /// The model path.
        path: PathBuf,
        /// What was found instead.
        detail: String,
    },
    /// The model's output shape matches none of the supported detection layouts.
    #[error(
        "unsupported model output shape {shape:?}{}: expected [1, 4+nc, N] (YOLOv8/YOLO11), [1, N, 5+nc] \
         (YOLOv5/YOLOX) or [1, N, 6] (x1, y1, x2, y2, score, class: YOLOv10, RT-DETR, D-FINE)",
        match num_classes { Some(nc) => format!(" for {nc} class names"), None => String::new() }
    )]
    UnsupportedOutput {
        /// The output tensor's shape.
        shape: Vec<i64>,
        /// The number of class names, when known.
        num_classes: Option<usize>,
    },
    /// The class names in the model metadata or sidecar could not be parsed.
    #[error("could not parse class names from {source_name}: {detail}")]
    BadNames {
        /// Where the names came from (`model metadata` or a file path).
        source_name: String,
        /// What is wrong.
        detail: String,
    },
    /// The configuration is inconsistent (e.g. a threshold outside 0..=1, a zero tile size).
    #[error("invalid detector configuration: {0}")]
    Config(String),
    /// ONNX Runtime failed while running the model on one input.
    #[error("ONNX Runtime failed to run the model: {0}")]
    Run(String),
    /// The image bytes are empty.
    #[error("the image is empty (0 bytes)")]
    EmptyImage,
    /// The image is neither JPEG nor PNG.
    #[error("unsupported image format (only JPEG and PNG are read); the file starts with {magic:02x?}")]
    UnsupportedImageFormat {
        /// The first bytes of the input.
        magic: Vec<u8>,
    },
    /// The image is corrupt or truncated.
    #[error("the {format} image is corrupt or truncated: {detail}")]
    CorruptImage {
        /// `JPEG` or `PNG`.
        format: &'static str,
        /// The decoder's message.
        detail: String,
    },
    /// The image has no pixels.
    #[error("the image has zero size ({width}x{height})")]
    ZeroSizeImage {
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
    /// The image header declares more pixels than any camera this station serves makes.
    #[error(
        "the image declares {width}x{height} pixels, more than the {max_pixels} this station decodes; \
         the file is corrupt or not a drone photo"
    )]
    ImageTooLarge {
        /// Declared width in pixels.
        width: u32,
        /// Declared height in pixels.
        height: u32,
        /// The limit, [`crate::decode::MAX_IMAGE_PIXELS`].
        max_pixels: u64,
    },
    /// The detector thread could not be started.
    #[error("could not start the detector thread")]
    Spawn(#[source] std::io::Error),
    /// The detector thread panicked.
    #[error("the detector thread panicked")]
    ThreadPanicked,
    /// An RGB buffer does not hold `width * height * 3` bytes.
    #[error("RGB buffer of {len} bytes does not match {width}x{height}x3")]
    BadFrameBuffer {
        /// Buffer length in bytes.
        len: usize,
        /// Width in pixels.
        width: u32,
        /// Height in pixels.
        height: u32,
    },
}

impl InferenceError {
    /// Whether the error concerns one image only (bad bytes, a failed run), so that the next image may succeed.
    /// Setup errors (library, model, configuration) are not.
    pub fn is_per_image(&self) -> bool {
        matches!(
            self,
            Self::Run(_)
                | Self::EmptyImage
                | Self::UnsupportedImageFormat { .. }
                | Self::CorruptImage { .. }
                | Self::ZeroSizeImage { .. }
                | Self::ImageTooLarge { .. }
                | Self::BadFrameBuffer { .. }
                | Self::UnsupportedOutput { .. }
        )
    }
}

fn display_paths(paths: &[PathBuf]) -> String {
    paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", ")
}
