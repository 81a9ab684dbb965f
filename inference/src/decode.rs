//! JPEG and PNG decoding, at reduced scale when the model needs fewer pixels than the photo has.
//!
//! A 12 MP drone photo bound for a 640 px model does not need 12 million decoded pixels: JPEG's DCT lets the
//! decoder produce 1/2, 1/4 or 1/8 scale output directly (the inverse transform runs on fewer coefficients), which
//! cuts decode time several-fold and leaves a small image for the final resize.

use std::io::Cursor;

use crate::error::InferenceError;
use crate::frame::DecodedImage;

/// How many pixels the decoder must deliver.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DecodeTarget {
    /// Full resolution (tiled inference needs every pixel).
    Full,
    /// The image will be letterboxed into `width_px` x `height_px`: any decode at least as large as the letterboxed
    /// content is enough.
    Letterbox {
        /// Model input width.
        width_px: u32,
        /// Model input height.
        height_px: u32,
    },
}

/// Image container formats this crate reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImageFormat {
    /// JPEG (baseline or progressive).
    Jpeg,
    /// PNG.
    Png,
}

impl ImageFormat {
    /// Guesses the format from the first bytes.
    ///
    /// # Errors
    /// [`InferenceError::EmptyImage`] or [`InferenceError::UnsupportedImageFormat`].
    pub fn sniff(bytes: &[u8]) -> Result<Self, InferenceError> {
        if bytes.is_empty() {
            return Err(InferenceError::EmptyImage);
        }
        if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Ok(Self::Jpeg)
        } else if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
            Ok(Self::Png)
        } else {
            Err(InferenceError::UnsupportedImageFormat { magic: bytes.iter().take(8).copied().collect() })
        }
    }
}

/// Decodes a JPEG or PNG into RGB8, at the smallest JPEG DCT scale that still satisfies `target`.
///
/// EXIF orientation is not applied: boxes refer to the stored pixel grid, as a photo's georeferencing does.
///
/// # Errors
/// [`InferenceError::EmptyImage`], [`InferenceError::UnsupportedImageFormat`], [`InferenceError::CorruptImage`]
/// (also for truncated files) and [`InferenceError::ZeroSizeImage`].
pub fn decode_image(bytes: &[u8], target: DecodeTarget) -> Result<DecodedImage, InferenceError> {
    match ImageFormat::sniff(bytes)? {
        ImageFormat::Jpeg => decode_jpeg(bytes, target),
        ImageFormat::Png => decode_png(bytes),
    }
}

/// The DCT scale (in eighths: 1, 2, 4 or 8) and output size for a JPEG of `width` x `height` under `target`.
pub(crate) fn jpeg_scale(width: u32, height: u32, target: DecodeTarget) -> (u32, u32, u32) {
    let scaled = |len: u32, eighths: u32| (len * eighths).div_ceil(8);
    let (need_w, need_h) = match target {
        DecodeTarget::Full => (width, height),
        DecodeTarget::Letterbox { width_px, height_px } => {
            let ratio = (width_px as f32 / width as f32).min(height_px as f32 / height as f32).min(1.0);
            ((width as f32 * ratio).ceil() as u32, (height as f32 * ratio).ceil() as u32)
        }
    };
    for eighths in [1, 2, 4] {
        let (w, h) = (scaled(width, eighths), scaled(height, eighths));
        if w >= need_w && h >= need_h {
            return (eighths, w, h);
        }
    }
    (8, width, height)
}

fn corrupt(format: &'static str, detail: impl ToString) -> InferenceError {
    InferenceError::CorruptImage { format, detail: detail.to_string() }
}

/// The largest photo decoded, in pixels: above the biggest aerial survey cameras (150 MP), far below what a
/// corrupt or hostile header can claim (65535 x 65535 = 4.3 G pixels).
pub const MAX_IMAGE_PIXELS: u64 = 200_000_000;

/// Rejects a JPEG whose header promises more pixels than its file can hold.
///
/// Every 8x8 block of the full-resolution component costs at least one bit of entropy-coded data after the first
/// start-of-scan marker (a Huffman code is never shorter), in baseline and progressive files alike. jpeg-decoder
/// decodes every block a frame header declares, reading zeros past the end of the data, so without this check
/// a 539-byte file declaring 32784 x 50960 pixels kept the detector thread busy for minutes (a fuzz finding).
fn check_jpeg_size(bytes: &[u8], width: u32, height: u32) -> Result<(), InferenceError> {
    let pixels = u64::from(width) * u64::from(height);
    if pixels > MAX_IMAGE_PIXELS {
        return Err(InferenceError::ImageTooLarge { width, height, max_pixels: MAX_IMAGE_PIXELS });
    }
    let blocks = u64::from(width.div_ceil(8)) * u64::from(height.div_ceil(8));
    let scan_bits = (bytes.len() - first_scan_offset(bytes).unwrap_or(0)) as u64 * 8;
    if scan_bits < blocks {
        return Err(corrupt(
            "JPEG",
            format!(
                "the header declares {width}x{height} pixels ({blocks} blocks) but only {} bytes of image data follow; \
                 the file is truncated or forged",
                scan_bits / 8
            ),
        ));
    }
    Ok(())
}

/// Byte offset of the first start-of-scan (SOS) marker, found by walking the marker segments; `None` when the
/// segments do not lead to one (the decoder then reports what is wrong).
fn first_scan_offset(bytes: &[u8]) -> Option<usize> {
    const SOS: u8 = 0xDA;
    let mut at = 2; // after SOI
    loop {
        if *bytes.get(at)? != 0xFF {
            return None;
        }
        while *bytes.get(at + 1)? == 0xFF {
            at += 1; // fill bytes
        }
        let marker = *bytes.get(at + 1)?;
        match marker {
            SOS => return Some(at),
            // Standalone markers carry no length.
            0x01 | 0xD0..=0xD7 => at += 2,
            _ => {
                let len = usize::from(u16::from_be_bytes([*bytes.get(at + 2)?, *bytes.get(at + 3)?]));
                at += 2 + len;
            }
        }
    }
}

fn decode_jpeg(bytes: &[u8], target: DecodeTarget) -> Result<DecodedImage, InferenceError> {
    let mut decoder = jpeg_decoder::Decoder::new(Cursor::new(bytes));
    decoder.read_info().map_err(|e| corrupt("JPEG", e))?;
    let info = decoder.info().ok_or_else(|| corrupt("JPEG", "no frame header"))?;
    let (width, height) = (u32::from(info.width), u32::from(info.height));
    if width == 0 || height == 0 {
        return Err(InferenceError::ZeroSizeImage { width, height });
    }
    check_jpeg_size(bytes, width, height)?;
    let (eighths, want_w, want_h) = jpeg_scale(width, height, target);
    if eighths < 8 {
        // jpeg-decoder picks the smallest scale reaching the requested size, which is exactly `eighths`.
        decoder.scale(want_w as u16, want_h as u16).map_err(|e| corrupt("JPEG", e))?;
    }
    let pixels = decoder.decode().map_err(|e| corrupt("JPEG", e))?;
    let info = decoder.info().ok_or_else(|| corrupt("JPEG", "no frame header"))?;
    let (out_w, out_h) = (u32::from(info.width), u32::from(info.height));
    let count = out_w as usize * out_h as usize;
    let rgb = match info.pixel_format {
        jpeg_decoder::PixelFormat::RGB24 => pixels,
        jpeg_decoder::PixelFormat::L8 => pixels.iter().flat_map(|&l| [l, l, l]).collect(),
        jpeg_decoder::PixelFormat::L16 => pixels.chunks_exact(2).flat_map(|c| [c[0], c[0], c[0]]).collect(),
        jpeg_decoder::PixelFormat::CMYK32 => pixels
            .chunks_exact(4)
            .flat_map(|c| {
                // Adobe CMYK JPEGs store inverted values: channel * K / 255 is the RGB value.
                let k = u16::from(c[3]);
                [c[0], c[1], c[2]].map(|v| (u16::from(v) * k / 255) as u8)
            })
            .collect(),
    };
    if rgb.len() != count * 3 {
        return Err(corrupt("JPEG", format!("decoder returned {} bytes for {out_w}x{out_h}", rgb.len())));
    }
    Ok(DecodedImage { rgb, width_px: out_w, height_px: out_h, original_width_px: width, original_height_px: height })
}

fn decode_png(bytes: &[u8]) -> Result<DecodedImage, InferenceError> {
    let reader = image::ImageReader::with_format(Cursor::new(bytes), image::ImageFormat::Png);
    let (width, height) = {
        let probe = image::ImageReader::with_format(Cursor::new(bytes), image::ImageFormat::Png);
        probe.into_dimensions().map_err(|e| corrupt("PNG", e))?
    };
    if width == 0 || height == 0 {
        return Err(InferenceError::ZeroSizeImage { width, height });
    }
    let image = reader.decode().map_err(|e| corrupt("PNG", e))?;
    let rgb = image.into_rgb8();
    let (w, h) = rgb.dimensions();
    Ok(DecodedImage::from_rgb(rgb.into_raw(), w, h))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(format: image::ImageFormat, width: u32, height: u32) -> Vec<u8> {
        let img = image::RgbImage::from_fn(width, height, |x, y| image::Rgb([(x % 256) as u8, (y % 256) as u8, 77]));
        let mut out = Cursor::new(Vec::new());
        img.write_to(&mut out, format).unwrap();
        out.into_inner()
    }

    #[test]
    fn scale_is_the_smallest_that_covers_the_letterbox() {
        let target = DecodeTarget::Letterbox { width_px: 640, height_px: 640 };
        // 4000x3000 into 640: content 640x480; 1/4 gives 1000x750, 1/8 gives 500x375 (too small).
        assert_eq!(jpeg_scale(4000, 3000, target), (2, 1000, 750));
        // 1920x1080 into 640: content 640x360; 1/2 gives 960x540, 1/4 gives 480x270 (too small).
        assert_eq!(jpeg_scale(1920, 1080, target), (4, 960, 540));
        assert_eq!(jpeg_scale(8000, 6000, target), (1, 1000, 750));
        assert_eq!(jpeg_scale(300, 200, target), (8, 300, 200));
        assert_eq!(jpeg_scale(4000, 3000, DecodeTarget::Full), (8, 4000, 3000));
    }

    #[test]
    fn decodes_jpeg_at_reduced_scale_and_keeps_the_original_size() {
        let jpeg = encode(image::ImageFormat::Jpeg, 1600, 1200);
        let img = decode_image(&jpeg, DecodeTarget::Letterbox { width_px: 320, height_px: 320 }).unwrap();
        assert_eq!((img.width_px, img.height_px), (400, 300));
        assert_eq!((img.original_width_px, img.original_height_px), (1600, 1200));
        assert_eq!(img.rgb.len(), 400 * 300 * 3);
        let full = decode_image(&jpeg, DecodeTarget::Full).unwrap();
        assert_eq!((full.width_px, full.height_px), (1600, 1200));
    }

    #[test]
    fn decodes_png() {
        let png = encode(image::ImageFormat::Png, 33, 17);
        let img = decode_image(&png, DecodeTarget::Full).unwrap();
        assert_eq!((img.width_px, img.height_px, img.original_width_px), (33, 17, 33));
        assert_eq!(&img.rgb[..3], &[0, 0, 77]);
        assert_eq!(&img.rgb[3..6], &[1, 0, 77]);
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        let target = DecodeTarget::Full;
        assert!(matches!(decode_image(&[], target), Err(InferenceError::EmptyImage)));
        assert!(matches!(decode_image(b"GIF89a....", target), Err(InferenceError::UnsupportedImageFormat { .. })));
        let jpeg = encode(image::ImageFormat::Jpeg, 64, 64);
        let truncated = &jpeg[..jpeg.len() / 2];
        assert!(matches!(decode_image(truncated, target), Err(InferenceError::CorruptImage { format: "JPEG", .. })));
        let mut garbage = jpeg.clone();
        for b in garbage.iter_mut().skip(3).take(200) {
            *b = 0x5A;
        }
        assert!(matches!(decode_image(&garbage, target), Err(InferenceError::CorruptImage { .. })));
        let png = encode(image::ImageFormat::Png, 64, 64);
        assert!(matches!(decode_image(&png[..png.len() - 20], target), Err(InferenceError::CorruptImage { .. })));
    }

    #[test]
    fn jpeg_declaring_more_blocks_than_its_data_holds_is_rejected_before_decoding() {
        // The fuzz finding: 539 bytes whose frame header declares 32784 x 50960 pixels (jpeg-decoder decoded every
        // block of it for minutes). Rejected from the header alone.
        let forged =
            include_bytes!("../../fuzz/regressions/photo_ingest/timeout-b95fbfa54101100a52176fc5f4eadf4d2ec844d6");
        let err = decode_image(forged, DecodeTarget::Letterbox { width_px: 640, height_px: 640 }).unwrap_err();
        assert!(matches!(err, InferenceError::ImageTooLarge { .. } | InferenceError::CorruptImage { .. }), "{err}");

        // A small frame header over a few bytes of scan: same image size limit, but too little data for its blocks.
        let jpeg = encode(image::ImageFormat::Jpeg, 64, 64);
        let sof = jpeg.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        let mut claims_more = jpeg.clone();
        // Height and width live 5..9 bytes after the SOF marker: claim 8000 x 8000 (64 MP, 1 M blocks).
        claims_more[sof + 5..sof + 9].copy_from_slice(&[0x1F, 0x40, 0x1F, 0x40]);
        let err = decode_image(&claims_more, DecodeTarget::Full).unwrap_err();
        assert!(matches!(&err, InferenceError::CorruptImage { detail, .. } if detail.contains("8000x8000")), "{err}");

        // A flat photo, the sparsest real case, still decodes: the check is a lower bound, not a guess.
        let flat = {
            let img = image::RgbImage::from_pixel(2000, 1500, image::Rgb([90, 120, 60]));
            let mut out = Cursor::new(Vec::new());
            img.write_to(&mut out, image::ImageFormat::Jpeg).unwrap();
            out.into_inner()
        };
        assert!(decode_image(&flat, DecodeTarget::Full).is_ok());
    }

    #[test]
    fn first_scan_offset_walks_marker_segments() {
        let jpeg = encode(image::ImageFormat::Jpeg, 16, 16);
        let sos = first_scan_offset(&jpeg).unwrap();
        assert_eq!(&jpeg[sos..sos + 2], &[0xFF, 0xDA]);
        assert_eq!(first_scan_offset(&jpeg[..sos]), None);
        assert_eq!(first_scan_offset(b"\xFF\xD8garbage"), None);
    }

    #[test]
    fn zero_size_png_is_rejected() {
        // A hand-made PNG header claiming 0x0 pixels.
        let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
        png.extend_from_slice(&13u32.to_be_bytes());
        png.extend_from_slice(b"IHDR");
        png.extend_from_slice(&[0, 0, 0, 0, 0, 0, 0, 0, 8, 2, 0, 0, 0]);
        png.extend_from_slice(&[0, 0, 0, 0]);
        let err = decode_image(&png, DecodeTarget::Full).unwrap_err();
        assert!(matches!(err, InferenceError::ZeroSizeImage { .. } | InferenceError::CorruptImage { .. }), "{err}");
    }
}
