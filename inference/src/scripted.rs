//! [`ScriptedDetector`]: a [`Detector`] that returns canned results, for other crates' tests (feature
//! `test-util`).

use std::collections::VecDeque;
use std::sync::Arc;

use crate::decode::DecodeTarget;
use crate::detector::{Detection, Detector, ModelInfo};
use crate::error::InferenceError;
use crate::frame::Frame;
use crate::labels::HazardKind;
use crate::postprocess::BoxPx;

/// Returns one scripted result per [`Detector::detect`] call, in order, then no detections. It checks nothing
/// about the pixels, so a test controls exactly what the pipeline downstream sees.
#[derive(Debug)]
pub struct ScriptedDetector {
    script: VecDeque<Result<Vec<Detection>, InferenceError>>,
    info: ModelInfo,
    calls: usize,
}

impl ScriptedDetector {
    /// The model identity scripted detections carry.
    pub const MODEL_SHA256: &'static str = "0000000000000000000000000000000000000000000000000000000000000000";
    /// The model version scripted detections carry.
    pub const MODEL_VERSION: &'static str = "scripted";

    /// A detector answering `script[i]` to the i-th call.
    pub fn new(script: Vec<Vec<Detection>>) -> Self {
        Self::from_results(script.into_iter().map(Ok).collect())
    }

    /// A detector answering results that may be errors.
    pub fn from_results(script: Vec<Result<Vec<Detection>, InferenceError>>) -> Self {
        Self {
            script: script.into(),
            info: ModelInfo {
                sha256: Self::MODEL_SHA256.into(),
                version: Self::MODEL_VERSION.into(),
                class_names: ["fire", "smoke", "gas_cylinder", "steel_shed", "rooftop_addon"].map(String::from).into(),
                input_width_px: 640,
                input_height_px: 640,
                layout: None,
            },
            calls: 0,
        }
    }

    /// A detection as the scripted model would report it (class id looked up in the shipped class names).
    pub fn detection(label: &str, hazard: HazardKind, score: f32, bbox: BoxPx) -> Detection {
        let names = ["fire", "smoke", "gas_cylinder", "steel_shed", "rooftop_addon"];
        Detection {
            class_id: names.iter().position(|n| *n == label).unwrap_or(names.len()),
            label: label.to_owned(),
            hazard,
            score,
            bbox,
            model_sha256: Arc::from(Self::MODEL_SHA256),
            model_version: Arc::from(Self::MODEL_VERSION),
        }
    }

    /// How many times `detect` was called.
    pub fn calls(&self) -> usize {
        self.calls
    }
}

impl Detector for ScriptedDetector {
    fn model_info(&self) -> &ModelInfo {
        &self.info
    }

    fn decode_target(&self) -> DecodeTarget {
        DecodeTarget::Letterbox { width_px: self.info.input_width_px, height_px: self.info.input_height_px }
    }

    fn detect(&mut self, _frame: &Frame<'_>) -> Result<Vec<Detection>, InferenceError> {
        self.calls += 1;
        self.script.pop_front().unwrap_or_else(|| Ok(Vec::new()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_in_order_then_nothing() {
        let fire =
            ScriptedDetector::detection("fire", HazardKind::Fire, 0.9, BoxPx { x1: 1.0, y1: 2.0, x2: 3.0, y2: 4.0 });
        let mut d = ScriptedDetector::from_results(vec![Ok(vec![fire.clone()]), Err(InferenceError::EmptyImage)]);
        let rgb = [0u8; 12];
        let frame = Frame::new(&rgb, 2, 2).unwrap();
        assert_eq!(d.detect(&frame).unwrap(), vec![fire]);
        assert!(matches!(d.detect(&frame), Err(InferenceError::EmptyImage)));
        assert!(d.detect(&frame).unwrap().is_empty());
        assert_eq!(d.calls(), 3);
    }
}
