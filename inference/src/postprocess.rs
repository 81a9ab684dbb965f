//! Model output decoding (the three supported layouts), class-wise non-maximum suppression and boxes.

use serde::{Deserialize, Serialize};

use crate::error::InferenceError;

/// An axis-aligned box in pixels: `(x1, y1)` top-left, `(x2, y2)` bottom-right.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct BoxPx {
    /// Left edge.
    pub x1: f32,
    /// Top edge.
    pub y1: f32,
    /// Right edge.
    pub x2: f32,
    /// Bottom edge.
    pub y2: f32,
}

impl BoxPx {
    /// A box from its centre and size.
    pub fn from_center(cx: f32, cy: f32, width: f32, height: f32) -> Self {
        Self { x1: cx - width / 2.0, y1: cy - height / 2.0, x2: cx + width / 2.0, y2: cy + height / 2.0 }
    }

    /// Width (0 for an inverted box).
    pub fn width(&self) -> f32 {
        (self.x2 - self.x1).max(0.0)
    }

    /// Height (0 for an inverted box).
    pub fn height(&self) -> f32 {
        (self.y2 - self.y1).max(0.0)
    }

    /// Area in square pixels.
    pub fn area(&self) -> f32 {
        self.width() * self.height()
    }

    /// Intersection over union, 0 when either box is empty.
    pub fn iou(&self, other: &Self) -> f32 {
        let w = (self.x2.min(other.x2) - self.x1.max(other.x1)).max(0.0);
        let h = (self.y2.min(other.y2) - self.y1.max(other.y1)).max(0.0);
        let inter = w * h;
        let union = self.area() + other.area() - inter;
        if union <= 0.0 { 0.0 } else { inter / union }
    }

    /// The box clipped to `[0, width] x [0, height]`.
    pub fn clip(&self, width: f32, height: f32) -> Self {
        Self {
            x1: self.x1.clamp(0.0, width),
            y1: self.y1.clamp(0.0, height),
            x2: self.x2.clamp(0.0, width),
            y2: self.y2.clamp(0.0, height),
        }
    }

    /// The box with every coordinate multiplied by `sx` (x) and `sy` (y).
    pub fn scaled(&self, sx: f32, sy: f32) -> Self {
        Self { x1: self.x1 * sx, y1: self.y1 * sy, x2: self.x2 * sx, y2: self.y2 * sy }
    }
}

/// A box with a class and a score, before labels are attached.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScoredBox {
    /// Index into the model's class names.
    pub class_id: usize,
    /// Confidence in 0..1.
    pub score: f32,
    /// The box (model-input pixels after decoding; source pixels once mapped back).
    pub bbox: BoxPx,
}

/// How a detection model lays out its output, told apart from the output's shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OutputLayout {
    /// `[B, 4 + nc, N]`: cx, cy, w, h then one (sigmoid) score per class, per anchor column (YOLOv8, YOLO11).
    YoloV8 {
        /// Number of classes.
        num_classes: usize,
    },
    /// `[B, N, 5 + nc]`: cx, cy, w, h, objectness, then class scores, per row (YOLOv5, YOLOX).
    YoloV5 {
        /// Number of classes.
        num_classes: usize,
    },
    /// `[B, N, 6]`: x1, y1, x2, y2, score, class id, already free of duplicates (YOLOv10, RT-DETR, D-FINE).
    EndToEnd,
}

impl OutputLayout {
    /// Tells the layout from an output shape; `num_names` (the number of class names, when known) settles the
    /// ambiguous cases. A YOLOv5 export with exactly one class (`[B, N, 6]`) reads as [`OutputLayout::EndToEnd`].
    ///
    /// # Errors
    /// [`InferenceError::UnsupportedOutput`] for any other shape, or one that disagrees with the names.
    pub fn from_shape(shape: &[i64], num_names: Option<usize>) -> Result<Self, InferenceError> {
        let unsupported = || InferenceError::UnsupportedOutput { shape: shape.to_vec(), num_classes: num_names };
        let &[batch, d1, d2] = shape else { return Err(unsupported()) };
        if batch < 1 || d1 < 1 || d2 < 1 {
            return Err(unsupported());
        }
        let (d1, d2) = (d1 as usize, d2 as usize);
        let layout = match num_names {
            Some(nc) if d1 == 4 + nc && d2 > d1 => Self::YoloV8 { num_classes: nc },
            Some(_) if d2 == 6 => Self::EndToEnd,
            Some(nc) if d2 == 5 + nc => Self::YoloV5 { num_classes: nc },
            Some(_) => return Err(unsupported()),
            None if d1 > 4 && d1 < d2 => Self::YoloV8 { num_classes: d1 - 4 },
            None if d2 == 6 => Self::EndToEnd,
            None if d2 > 5 => Self::YoloV5 { num_classes: d2 - 5 },
            None => return Err(unsupported()),
        };
        Ok(layout)
    }

    /// Number of classes the layout itself states (`None` for end-to-end outputs, which carry class ids).
    pub fn num_classes(&self) -> Option<usize> {
        match self {
            Self::YoloV8 { num_classes } | Self::YoloV5 { num_classes } => Some(*num_classes),
            Self::EndToEnd => None,
        }
    }
}

/// Decodes one batch item of a model output into `out` (appending), keeping candidates whose score reaches the
/// threshold of their class (`thresholds[class_id]`; classes past the end of `thresholds` are dropped).
///
/// `item` is the `[d1 * d2]` slice of one batch item, with `d1`, `d2` the output's last two dimensions.
pub fn decode_output(
    layout: OutputLayout,
    item: &[f32],
    d1: usize,
    d2: usize,
    thresholds: &[f32],
    out: &mut Vec<ScoredBox>,
) {
    let min_threshold = thresholds.iter().copied().fold(f32::INFINITY, f32::min);
    if item.len() < d1 * d2 || thresholds.is_empty() {
        return;
    }
    match layout {
        OutputLayout::YoloV8 { num_classes } => {
            let n = d2;
            let rows = num_classes.min(d1.saturating_sub(4));
            for a in 0..n {
                let (mut best, mut best_score) = (0, f32::NEG_INFINITY);
                for c in 0..rows {
                    let s = item[(4 + c) * n + a];
                    if s > best_score {
                        best = c;
                        best_score = s;
                    }
                }
                if best_score < min_threshold || !passes(thresholds, best, best_score) {
                    continue;
                }
                let bbox = BoxPx::from_center(item[a], item[n + a], item[2 * n + a], item[3 * n + a]);
                out.push(ScoredBox { class_id: best, score: best_score, bbox });
            }
        }
        OutputLayout::YoloV5 { num_classes } => {
            let cols = d2;
            let classes = num_classes.min(cols.saturating_sub(5));
            for row in item.chunks_exact(cols).take(d1) {
                let objectness = row[4];
                if objectness < min_threshold {
                    continue;
                }
                let (mut best, mut best_score) = (0, f32::NEG_INFINITY);
                for (c, &s) in row[5..5 + classes].iter().enumerate() {
                    if s > best_score {
                        best = c;
                        best_score = s;
                    }
                }
                let score = objectness * best_score;
                if !passes(thresholds, best, score) {
                    continue;
                }
                out.push(ScoredBox { class_id: best, score, bbox: BoxPx::from_center(row[0], row[1], row[2], row[3]) });
            }
        }
        OutputLayout::EndToEnd => {
            for row in item.chunks_exact(d2).take(d1) {
                let (score, class) = (row[4], row[5]);
                if score < min_threshold || !class.is_finite() || class < 0.0 {
                    continue;
                }
                let class_id = class.round() as usize;
                if !passes(thresholds, class_id, score) {
                    continue;
                }
                out.push(ScoredBox { class_id, score, bbox: BoxPx { x1: row[0], y1: row[1], x2: row[2], y2: row[3] } });
            }
        }
    }
}

fn passes(thresholds: &[f32], class_id: usize, score: f32) -> bool {
    thresholds.get(class_id).is_some_and(|&t| score >= t && score.is_finite())
}

/// Class-wise greedy non-maximum suppression, in place: within each class, a box is dropped when it overlaps a
/// higher-scoring kept box with IoU above `iou_threshold`. Keeps at most `max_keep` boxes, highest score first.
pub fn nms(boxes: &mut Vec<ScoredBox>, iou_threshold: f32, max_keep: usize) {
    boxes.retain(|b| b.score.is_finite());
    boxes.sort_unstable_by(|a, b| a.class_id.cmp(&b.class_id).then(b.score.total_cmp(&a.score)));
    let mut keep = vec![false; boxes.len()];
    let mut start = 0;
    while start < boxes.len() {
        let class = boxes[start].class_id;
        let end = start + boxes[start..].iter().take_while(|b| b.class_id == class).count();
        let mut kept: Vec<usize> = Vec::new();
        for i in start..end {
            // No class can contribute more than `max_keep` boxes to the result.
            if kept.len() >= max_keep {
                break;
            }
            let candidate = boxes[i].bbox;
            if kept.iter().all(|&k| boxes[k].bbox.iou(&candidate) <= iou_threshold) {
                kept.push(i);
                keep[i] = true;
            }
        }
        start = end;
    }
    let mut i = 0;
    boxes.retain(|_| {
        i += 1;
        keep[i - 1]
    });
    boxes.sort_unstable_by(|a, b| b.score.total_cmp(&a.score));
    boxes.truncate(max_keep);
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn sb(class_id: usize, score: f32, x1: f32, y1: f32, x2: f32, y2: f32) -> ScoredBox {
        ScoredBox { class_id, score, bbox: BoxPx { x1, y1, x2, y2 } }
    }

    #[test]
    fn iou_of_known_boxes() {
        let a = BoxPx { x1: 0.0, y1: 0.0, x2: 10.0, y2: 10.0 };
        let b = BoxPx { x1: 5.0, y1: 0.0, x2: 15.0, y2: 10.0 };
        assert!((a.iou(&b) - 50.0 / 150.0).abs() < 1e-6);
        assert_eq!(a.iou(&a), 1.0);
        let far = BoxPx { x1: 20.0, y1: 20.0, x2: 30.0, y2: 30.0 };
        assert_eq!(a.iou(&far), 0.0);
        let empty = BoxPx { x1: 3.0, y1: 3.0, x2: 3.0, y2: 3.0 };
        assert_eq!(empty.iou(&empty), 0.0);
    }

    #[test]
    fn nms_suppresses_overlaps_within_a_class_only() {
        let mut boxes = vec![
            sb(0, 0.9, 0.0, 0.0, 10.0, 10.0),
            sb(0, 0.8, 1.0, 0.0, 11.0, 10.0), // IoU 0.82 with the first: dropped
            sb(0, 0.7, 50.0, 50.0, 60.0, 60.0),
            sb(1, 0.6, 1.0, 0.0, 11.0, 10.0), // other class: kept
        ];
        nms(&mut boxes, 0.5, 100);
        let scores: Vec<f32> = boxes.iter().map(|b| b.score).collect();
        assert_eq!(scores, vec![0.9, 0.7, 0.6]);
    }

    #[test]
    fn nms_caps_the_number_kept() {
        let mut boxes: Vec<ScoredBox> =
            (0..10).map(|i| sb(0, i as f32 / 10.0, i as f32 * 20.0, 0.0, i as f32 * 20.0 + 10.0, 10.0)).collect();
        nms(&mut boxes, 0.5, 3);
        assert_eq!(boxes.len(), 3);
        assert_eq!(boxes[0].score, 0.9);
    }

    #[test]
    fn layouts_from_shapes() {
        assert_eq!(OutputLayout::from_shape(&[1, 9, 8400], Some(5)).unwrap(), OutputLayout::YoloV8 { num_classes: 5 });
        assert_eq!(OutputLayout::from_shape(&[1, 84, 8400], None).unwrap(), OutputLayout::YoloV8 { num_classes: 80 });
        assert_eq!(
            OutputLayout::from_shape(&[1, 25200, 10], Some(5)).unwrap(),
            OutputLayout::YoloV5 { num_classes: 5 }
        );
        assert_eq!(OutputLayout::from_shape(&[1, 25200, 85], None).unwrap(), OutputLayout::YoloV5 { num_classes: 80 });
        assert_eq!(OutputLayout::from_shape(&[1, 300, 6], Some(5)).unwrap(), OutputLayout::EndToEnd);
        assert_eq!(OutputLayout::from_shape(&[1, 300, 6], None).unwrap(), OutputLayout::EndToEnd);
        // Two classes in YOLOv8 form are [1, 6, N], not end-to-end.
        assert_eq!(OutputLayout::from_shape(&[1, 6, 8400], Some(2)).unwrap(), OutputLayout::YoloV8 { num_classes: 2 });
        for bad in [&[1, 10][..], &[1, 3, 7, 7], &[1, 9, 8400, 1], &[1, 4, 3]] {
            assert!(matches!(OutputLayout::from_shape(bad, None), Err(InferenceError::UnsupportedOutput { .. })));
        }
        // Names that fit no layout.
        assert!(OutputLayout::from_shape(&[1, 9, 8400], Some(3)).is_err());
    }

    #[test]
    fn decodes_each_layout() {
        let thresholds = [0.5, 0.5];
        // YOLOv8: 2 classes, 3 anchors; columns are anchors.
        #[rustfmt::skip]
        let v8 = [
            10.0, 20.0, 30.0, // cx
            10.0, 20.0, 30.0, // cy
            4.0, 4.0, 4.0,    // w
            2.0, 2.0, 2.0,    // h
            0.9, 0.1, 0.3,    // class 0
            0.2, 0.8, 0.4,    // class 1
        ];
        let mut out = Vec::new();
        decode_output(OutputLayout::YoloV8 { num_classes: 2 }, &v8, 6, 3, &thresholds, &mut out);
        assert_eq!(out, vec![sb(0, 0.9, 8.0, 9.0, 12.0, 11.0), sb(1, 0.8, 18.0, 19.0, 22.0, 21.0)]);

        // YOLOv5: score = objectness * class score.
        #[rustfmt::skip]
        let v5 = [
            10.0, 10.0, 4.0, 2.0, 0.9, 1.0, 0.1,
            20.0, 20.0, 4.0, 2.0, 0.4, 1.0, 0.0, // objectness below threshold
            30.0, 30.0, 4.0, 2.0, 0.8, 0.2, 0.75, // 0.6 for class 1
        ];
        out.clear();
        decode_output(OutputLayout::YoloV5 { num_classes: 2 }, &v5, 3, 7, &thresholds, &mut out);
        assert_eq!(out.len(), 2);
        assert_eq!(out[0], sb(0, 0.9, 8.0, 9.0, 12.0, 11.0));
        assert_eq!((out[1].class_id, out[1].bbox.x1), (1, 28.0));
        assert!((out[1].score - 0.6).abs() < 1e-6);

        // End-to-end: corners, score, class id; unknown classes and low scores are dropped.
        #[rustfmt::skip]
        let e2e = [
            1.0, 2.0, 3.0, 4.0, 0.95, 1.0,
            1.0, 2.0, 3.0, 4.0, 0.10, 0.0,
            1.0, 2.0, 3.0, 4.0, 0.99, 7.0,
        ];
        out.clear();
        decode_output(OutputLayout::EndToEnd, &e2e, 3, 6, &thresholds, &mut out);
        assert_eq!(out, vec![sb(1, 0.95, 1.0, 2.0, 3.0, 4.0)]);
    }

    #[test]
    fn per_class_thresholds_apply() {
        #[rustfmt::skip]
        let v8 = [
            10.0, 30.0, 10.0, 30.0, 4.0, 4.0, 2.0, 2.0,
            0.3, 0.0, // class 0 at 0.3
            0.0, 0.3, // class 1 at 0.3
        ];
        let mut out = Vec::new();
        decode_output(OutputLayout::YoloV8 { num_classes: 2 }, &v8, 6, 2, &[0.25, 0.5], &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].class_id, 0);
    }

    fn arb_box() -> impl Strategy<Value = ScoredBox> {
        (0usize..3, 0.0f32..1.0, 0.0f32..500.0, 0.0f32..500.0, 1.0f32..200.0, 1.0f32..200.0)
            .prop_map(|(c, s, x, y, w, h)| sb(c, s, x, y, x + w, y + h))
    }

    proptest! {
        #[test]
        fn nms_output_is_a_subset_respecting_the_iou_bound(
            boxes in prop::collection::vec(arb_box(), 0..120),
            iou in 0.1f32..0.9,
        ) {
            let mut kept = boxes.clone();
            nms(&mut kept, iou, usize::MAX);
            for k in &kept {
                prop_assert!(boxes.contains(k));
            }
            for (i, a) in kept.iter().enumerate() {
                for b in &kept[i + 1..] {
                    if a.class_id == b.class_id {
                        prop_assert!(a.bbox.iou(&b.bbox) <= iou);
                    }
                }
            }
            // A cap keeps exactly the best boxes the uncapped run keeps.
            let mut capped = boxes.clone();
            nms(&mut capped, iou, 5);
            prop_assert_eq!(&capped[..], &kept[..kept.len().min(5)]);
            // Sorted by score, and the best box of each class always survives.
            prop_assert!(kept.windows(2).all(|w| w[0].score >= w[1].score));
            for class in 0..3 {
                let best = boxes.iter().filter(|b| b.class_id == class).map(|b| b.score).fold(f32::NAN, f32::max);
                if !best.is_nan() {
                    prop_assert!(kept.iter().any(|k| k.class_id == class && k.score == best));
                }
            }
        }
    }
}
