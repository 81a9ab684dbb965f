//! Letterboxing: scale an image (or a region of it) to fit the model input, keep its aspect ratio, pad with grey
//! 114, and write normalised planar RGB (`[3, H, W]`, 0..1) into a caller-owned buffer.

use fast_image_resize::images::{Image, ImageRef};
use fast_image_resize::{FilterType, PixelType, ResizeAlg, ResizeOptions, Resizer};

use crate::error::InferenceError;
use crate::frame::Frame;
use crate::postprocess::BoxPx;

/// The grey used for padding, as Ultralytics and most YOLO exports expect.
pub const PAD_GREY: u8 = 114;

/// A rectangle of whole pixels in a frame's buffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RegionPx {
    /// Left edge.
    pub x: u32,
    /// Top edge.
    pub y: u32,
    /// Width (> 0).
    pub width: u32,
    /// Height (> 0).
    pub height: u32,
}

/// How a letterboxed input maps back to the source: `input = (source - offset) * scale + pad`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LetterboxTransform {
    /// Horizontal scale from source pixels to input pixels.
    pub scale_x: f32,
    /// Vertical scale from source pixels to input pixels.
    pub scale_y: f32,
    /// Left padding in input pixels.
    pub pad_x_px: f32,
    /// Top padding in input pixels.
    pub pad_y_px: f32,
    /// Left edge of the letterboxed region in the source.
    pub offset_x_px: f32,
    /// Top edge of the letterboxed region in the source.
    pub offset_y_px: f32,
}

impl LetterboxTransform {
    /// Maps a box in model-input pixels back to source pixels (not clipped).
    pub fn to_source(&self, b: BoxPx) -> BoxPx {
        BoxPx {
            x1: (b.x1 - self.pad_x_px) / self.scale_x + self.offset_x_px,
            y1: (b.y1 - self.pad_y_px) / self.scale_y + self.offset_y_px,
            x2: (b.x2 - self.pad_x_px) / self.scale_x + self.offset_x_px,
            y2: (b.y2 - self.pad_y_px) / self.scale_y + self.offset_y_px,
        }
    }
}

/// Letterboxes frames into a fixed model input size, reusing its resize buffers across calls (no allocation per
/// frame once the largest size has been seen).
pub struct Letterboxer {
    width_px: u32,
    height_px: u32,
    resizer: Resizer,
    options: ResizeOptions,
    resized: Vec<u8>,
    to_unit: [f32; 256],
}

impl std::fmt::Debug for Letterboxer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Letterboxer").field("width_px", &self.width_px).field("height_px", &self.height_px).finish()
    }
}

impl Letterboxer {
    /// A letterboxer for a `width_px` x `height_px` model input.
    pub fn new(width_px: u32, height_px: u32) -> Self {
        let mut to_unit = [0.0; 256];
        for (i, v) in to_unit.iter_mut().enumerate() {
            *v = i as f32 / 255.0;
        }
        Self {
            width_px,
            height_px,
            resizer: Resizer::new(),
            // Bilinear convolution scales its kernel with the reduction, so large downscales do not alias.
            options: ResizeOptions::new().resize_alg(ResizeAlg::Convolution(FilterType::Bilinear)),
            resized: Vec::new(),
            to_unit,
        }
    }

    /// Number of `f32` values one letterboxed image occupies (`3 * H * W`).
    pub fn input_len(&self) -> usize {
        3 * self.width_px as usize * self.height_px as usize
    }

    /// Letterboxes `region` of `frame` (the whole frame when `None`) into `out`, which must hold
    /// [`Letterboxer::input_len`] values, as planar RGB scaled to 0..1.
    ///
    /// # Errors
    /// [`InferenceError::Config`] if `out` has the wrong length or the region lies outside the frame;
    /// [`InferenceError::Run`] if the resizer fails.
    pub fn letterbox_into(
        &mut self,
        frame: &Frame<'_>,
        region: Option<RegionPx>,
        out: &mut [f32],
    ) -> Result<LetterboxTransform, InferenceError> {
        if out.len() != self.input_len() {
            return Err(InferenceError::Config(format!(
                "letterbox buffer holds {} values, expected {}",
                out.len(),
                self.input_len()
            )));
        }
        let region = region.unwrap_or(RegionPx { x: 0, y: 0, width: frame.width_px(), height: frame.height_px() });
        if region.width == 0
            || region.height == 0
            || region.x + region.width > frame.width_px()
            || region.y + region.height > frame.height_px()
        {
            return Err(InferenceError::Config(format!(
                "region {region:?} outside the {}x{} frame",
                frame.width_px(),
                frame.height_px()
            )));
        }
        let (dst_w, dst_h) = (self.width_px, self.height_px);
        let ratio = (dst_w as f32 / region.width as f32).min(dst_h as f32 / region.height as f32);
        let new_w = ((region.width as f32 * ratio).round() as u32).clamp(1, dst_w);
        let new_h = ((region.height as f32 * ratio).round() as u32).clamp(1, dst_h);
        let pad_x = (dst_w - new_w) / 2;
        let pad_y = (dst_h - new_h) / 2;

        let frame_w = frame.width_px() as usize;
        // Source rows: either the frame itself (no resize needed) or the resized copy.
        let (src, src_stride, src_x0, src_y0) = if new_w == region.width && new_h == region.height {
            (frame.rgb(), frame_w * 3, region.x as usize, region.y as usize)
        } else {
            let needed = new_w as usize * new_h as usize * 3;
            if self.resized.len() < needed {
                self.resized.resize(needed, 0);
            }
            let src_image = ImageRef::new(frame.width_px(), frame.height_px(), frame.rgb(), PixelType::U8x3)
                .map_err(|e| InferenceError::Run(format!("resize source: {e}")))?;
            let mut dst_image = Image::from_slice_u8(new_w, new_h, &mut self.resized[..needed], PixelType::U8x3)
                .map_err(|e| InferenceError::Run(format!("resize destination: {e}")))?;
            let options = self.options.crop(
                f64::from(region.x),
                f64::from(region.y),
                f64::from(region.width),
                f64::from(region.height),
            );
            self.resizer
                .resize(&src_image, &mut dst_image, &options)
                .map_err(|e| InferenceError::Run(format!("resize: {e}")))?;
            (&self.resized[..needed], new_w as usize * 3, 0, 0)
        };

        let plane = dst_w as usize * dst_h as usize;
        let (r_plane, rest) = out.split_at_mut(plane);
        let (g_plane, b_plane) = rest.split_at_mut(plane);
        let grey = self.to_unit[PAD_GREY as usize];
        let (dst_w, new_w, pad_x) = (dst_w as usize, new_w as usize, pad_x as usize);
        for y in 0..dst_h as usize {
            let row = y * dst_w..(y + 1) * dst_w;
            let (r, g, b) = (&mut r_plane[row.clone()], &mut g_plane[row.clone()], &mut b_plane[row]);
            let content_row = y.checked_sub(pad_y as usize).filter(|&cy| cy < new_h as usize);
            let Some(cy) = content_row else {
                r.fill(grey);
                g.fill(grey);
                b.fill(grey);
                continue;
            };
            for plane_row in [&mut *r, &mut *g, &mut *b] {
                plane_row[..pad_x].fill(grey);
                plane_row[pad_x + new_w..].fill(grey);
            }
            let start = (src_y0 + cy) * src_stride + src_x0 * 3;
            let pixels = &src[start..start + new_w * 3];
            let lut = &self.to_unit;
            for (i, px) in pixels.chunks_exact(3).enumerate() {
                r[pad_x + i] = lut[px[0] as usize];
                g[pad_x + i] = lut[px[1] as usize];
                b[pad_x + i] = lut[px[2] as usize];
            }
        }
        Ok(LetterboxTransform {
            scale_x: new_w as f32 / region.width as f32,
            scale_y: new_h as f32 / region.height as f32,
            pad_x_px: pad_x as f32,
            pad_y_px: pad_y as f32,
            offset_x_px: region.x as f32,
            offset_y_px: region.y as f32,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn solid(width: u32, height: u32, rgb: [u8; 3]) -> Vec<u8> {
        (0..width * height).flat_map(|_| rgb).collect()
    }

    #[test]
    fn wide_image_is_padded_top_and_bottom() {
        let rgb = solid(200, 100, [255, 0, 51]);
        let frame = Frame::new(&rgb, 200, 100).unwrap();
        let mut lb = Letterboxer::new(100, 100);
        let mut out = vec![0.0; lb.input_len()];
        let t = lb.letterbox_into(&frame, None, &mut out).unwrap();
        assert_eq!((t.scale_x, t.scale_y, t.pad_x_px, t.pad_y_px), (0.5, 0.5, 0.0, 25.0));
        let grey = 114.0 / 255.0;
        let at = |c: usize, x: usize, y: usize| out[c * 10_000 + y * 100 + x];
        assert_eq!(at(0, 50, 0), grey);
        assert_eq!(at(0, 50, 24), grey);
        assert_eq!(at(0, 50, 25), 1.0);
        assert_eq!(at(1, 0, 50), 0.0);
        assert!((at(2, 99, 74) - 0.2).abs() < 1e-6);
        assert_eq!(at(2, 99, 75), grey);
    }

    #[test]
    fn tall_image_is_padded_left_and_right_and_maps_back() {
        let rgb = solid(50, 200, [10, 20, 30]);
        let frame = Frame::new(&rgb, 50, 200).unwrap();
        let mut lb = Letterboxer::new(64, 64);
        let mut out = vec![0.0; lb.input_len()];
        let t = lb.letterbox_into(&frame, None, &mut out).unwrap();
        assert_eq!((t.pad_x_px, t.pad_y_px), (24.0, 0.0));
        let grey = 114.0 / 255.0;
        assert_eq!(out[10 * 64 + 23], grey);
        assert!((out[10 * 64 + 24] - 10.0 / 255.0).abs() < 1e-6);
        assert!((out[10 * 64 + 39] - 10.0 / 255.0).abs() < 1e-6);
        assert_eq!(out[10 * 64 + 40], grey);
        // The content's corners map back to the source's corners.
        let back = t.to_source(BoxPx { x1: 24.0, y1: 0.0, x2: 40.0, y2: 64.0 });
        assert_eq!(back, BoxPx { x1: 0.0, y1: 0.0, x2: 50.0, y2: 200.0 });
    }

    #[test]
    fn same_size_is_copied_exactly_and_region_offsets_map_back() {
        let rgb: Vec<u8> = (0..8 * 8 * 3).map(|i| i as u8).collect();
        let frame = Frame::new(&rgb, 8, 8).unwrap();
        let mut lb = Letterboxer::new(4, 4);
        let mut out = vec![0.0; lb.input_len()];
        let region = RegionPx { x: 2, y: 3, width: 4, height: 4 };
        let t = lb.letterbox_into(&frame, Some(region), &mut out).unwrap();
        assert_eq!((t.scale_x, t.pad_x_px, t.offset_x_px, t.offset_y_px), (1.0, 0.0, 2.0, 3.0));
        // Red of input pixel (0,0) is source pixel (2,3).
        assert_eq!(out[0], f32::from(rgb[(3 * 8 + 2) * 3]) / 255.0);
        // Blue plane, input pixel (3,3) is source pixel (5,6).
        assert_eq!(out[2 * 16 + 3 * 4 + 3], f32::from(rgb[(6 * 8 + 5) * 3 + 2]) / 255.0);
        let b = t.to_source(BoxPx { x1: 1.0, y1: 1.0, x2: 2.0, y2: 2.0 });
        assert_eq!(b, BoxPx { x1: 3.0, y1: 4.0, x2: 4.0, y2: 5.0 });
    }

    #[test]
    fn rejects_bad_buffers_and_regions() {
        let rgb = solid(8, 8, [0, 0, 0]);
        let frame = Frame::new(&rgb, 8, 8).unwrap();
        let mut lb = Letterboxer::new(4, 4);
        let mut short = vec![0.0; 10];
        assert!(lb.letterbox_into(&frame, None, &mut short).is_err());
        let mut out = vec![0.0; lb.input_len()];
        let outside = RegionPx { x: 6, y: 0, width: 4, height: 4 };
        assert!(lb.letterbox_into(&frame, Some(outside), &mut out).is_err());
    }

    #[test]
    fn buffers_are_reused_in_steady_state() {
        let rgb = solid(1920, 1080, [1, 2, 3]);
        let frame = Frame::new(&rgb, 1920, 1080).unwrap();
        let mut lb = Letterboxer::new(640, 640);
        let mut out = vec![0.0; lb.input_len()];
        lb.letterbox_into(&frame, None, &mut out).unwrap();
        let ptr = lb.resized.as_ptr();
        let cap = lb.resized.capacity();
        lb.letterbox_into(&frame, None, &mut out).unwrap();
        assert_eq!((lb.resized.as_ptr(), lb.resized.capacity()), (ptr, cap));
    }
}
