//! Images handed to a detector: a borrowed RGB view ([`Frame`]) and owned inputs ([`ImageInput`],
//! [`DecodedImage`]).

use crate::error::InferenceError;

/// A borrowed, tightly packed RGB8 image (row-major, 3 bytes per pixel).
///
/// The pixels may be a reduced-scale decode of a larger original (see [`crate::decode_image`]); detections are
/// reported in the *original* image's pixels, so the frame remembers the original size.
#[derive(Debug, Clone, Copy)]
pub struct Frame<'a> {
    rgb: &'a [u8],
    width_px: u32,
    height_px: u32,
    original_width_px: u32,
    original_height_px: u32,
}

impl<'a> Frame<'a> {
    /// Wraps an RGB8 buffer of `width_px * height_px * 3` bytes.
    ///
    /// # Errors
    /// [`InferenceError::ZeroSizeImage`] for a zero dimension, [`InferenceError::BadFrameBuffer`] when the length
    /// does not match.
    pub fn new(rgb: &'a [u8], width_px: u32, height_px: u32) -> Result<Self, InferenceError> {
        if width_px == 0 || height_px == 0 {
            return Err(InferenceError::ZeroSizeImage { width: width_px, height: height_px });
        }
        let expected = width_px as usize * height_px as usize * 3;
        if rgb.len() != expected {
            return Err(InferenceError::BadFrameBuffer { len: rgb.len(), width: width_px, height: height_px });
        }
        Ok(Self { rgb, width_px, height_px, original_width_px: width_px, original_height_px: height_px })
    }

    /// Declares that these pixels are a scaled copy of a `width_px` x `height_px` original: detections come back
    /// in the original's pixels. A zero size is ignored.
    #[must_use]
    pub fn with_original_size(mut self, width_px: u32, height_px: u32) -> Self {
        if width_px > 0 && height_px > 0 {
            self.original_width_px = width_px;
            self.original_height_px = height_px;
        }
        self
    }

    /// The RGB8 bytes.
    pub fn rgb(&self) -> &'a [u8] {
        self.rgb
    }

    /// Width of the pixel buffer.
    pub fn width_px(&self) -> u32 {
        self.width_px
    }

    /// Height of the pixel buffer.
    pub fn height_px(&self) -> u32 {
        self.height_px
    }

    /// Width of the original image, in which detections are reported.
    pub fn original_width_px(&self) -> u32 {
        self.original_width_px
    }

    /// Height of the original image, in which detections are reported.
    pub fn original_height_px(&self) -> u32 {
        self.original_height_px
    }

    /// Factor from buffer pixels to original pixels along x and y.
    pub fn to_original_scale(self) -> (f32, f32) {
        (self.original_width_px as f32 / self.width_px as f32, self.original_height_px as f32 / self.height_px as f32)
    }
}

/// An owned RGB8 image, possibly a reduced-scale decode of a larger original.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DecodedImage {
    /// Tightly packed RGB8 pixels, `width_px * height_px * 3` bytes.
    pub rgb: Vec<u8>,
    /// Width of `rgb`.
    pub width_px: u32,
    /// Height of `rgb`.
    pub height_px: u32,
    /// Width of the encoded original.
    pub original_width_px: u32,
    /// Height of the encoded original.
    pub original_height_px: u32,
}

impl DecodedImage {
    /// Wraps full-size RGB8 pixels (original size = buffer size).
    pub fn from_rgb(rgb: Vec<u8>, width_px: u32, height_px: u32) -> Self {
        Self { rgb, width_px, height_px, original_width_px: width_px, original_height_px: height_px }
    }

    /// A [`Frame`] view of the pixels, carrying the original size.
    ///
    /// # Errors
    /// As [`Frame::new`].
    pub fn frame(&self) -> Result<Frame<'_>, InferenceError> {
        Ok(Frame::new(&self.rgb, self.width_px, self.height_px)?
            .with_original_size(self.original_width_px, self.original_height_px))
    }
}

/// An image to detect in, as the caller has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ImageInput {
    /// JPEG or PNG bytes, decoded by the detector's thread at the scale the model needs.
    Encoded(Vec<u8>),
    /// Already decoded pixels.
    Decoded(DecodedImage),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frame_checks_buffer_length_and_size() {
        assert!(Frame::new(&[0; 12], 2, 2).is_ok());
        assert!(matches!(Frame::new(&[0; 11], 2, 2), Err(InferenceError::BadFrameBuffer { len: 11, .. })));
        assert!(matches!(Frame::new(&[], 0, 5), Err(InferenceError::ZeroSizeImage { width: 0, height: 5 })));
    }

    #[test]
    fn original_size_sets_the_scale() {
        let frame = Frame::new(&[0; 4 * 3 * 3], 4, 3).unwrap().with_original_size(16, 12);
        assert_eq!(frame.to_original_scale(), (4.0, 4.0));
        let unchanged = frame.with_original_size(0, 0);
        assert_eq!(unchanged.original_width_px(), 16);
    }
}
