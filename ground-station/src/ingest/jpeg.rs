//! A JPEG marker walker: finds the EXIF and XMP APP1 payloads and the frame size without decoding the image.

use super::photo_pose::PhotoError;

/// The APP1 identifier of an EXIF payload (a TIFF structure follows).
const EXIF_ID: &[u8] = b"Exif\0\0";
/// The APP1 identifier of a standard XMP packet.
const XMP_ID: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";

/// What the headers of a JPEG hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct JpegHeaders<'a> {
    /// The TIFF structure of the first EXIF APP1 segment.
    pub(crate) exif: Option<&'a [u8]>,
    /// The first standard XMP packet.
    pub(crate) xmp: Option<&'a [u8]>,
    /// Frame width from the start-of-frame segment.
    pub(crate) width_px: u32,
    /// Frame height from the start-of-frame segment.
    pub(crate) height_px: u32,
}

/// Walks the marker segments of `bytes` up to the start of scan.
///
/// # Errors
/// [`PhotoError::NotJpeg`] without the start-of-image marker, [`PhotoError::Truncated`] when a segment runs past
/// the end or the file does not end with the end-of-image marker (a partial copy), [`PhotoError::NoFrameSize`]
/// when no start-of-frame segment precedes the scan.
pub(crate) fn read_headers(bytes: &[u8]) -> Result<JpegHeaders<'_>, PhotoError> {
    if !bytes.starts_with(&[0xFF, 0xD8]) {
        return Err(PhotoError::NotJpeg);
    }
    let mut headers = JpegHeaders { exif: None, xmp: None, width_px: 0, height_px: 0 };
    let mut frame_seen = false;
    let mut pos = 2;
    loop {
        // Markers may be preceded by any number of 0xFF fill bytes.
        if bytes.get(pos) != Some(&0xFF) {
            return Err(if pos >= bytes.len() {
                PhotoError::Truncated { offset: pos }
            } else {
                PhotoError::BadMarker { offset: pos }
            });
        }
        while bytes.get(pos) == Some(&0xFF) {
            pos += 1;
        }
        let marker = *bytes.get(pos).ok_or(PhotoError::Truncated { offset: pos })?;
        pos += 1;
        match marker {
            // Standalone markers carry no length.
            0x01 | 0xD0..=0xD7 => continue,
            0xD9 | 0xDA => break,
            _ => {}
        }
        let len_bytes = bytes.get(pos..pos + 2).ok_or(PhotoError::Truncated { offset: pos })?;
        let len = usize::from(u16::from_be_bytes([len_bytes[0], len_bytes[1]]));
        if len < 2 {
            return Err(PhotoError::BadMarker { offset: pos });
        }
        let payload = bytes.get(pos + 2..pos + len).ok_or(PhotoError::Truncated { offset: pos })?;
        match marker {
            0xC0..=0xC3 | 0xC5..=0xC7 | 0xC9..=0xCB | 0xCD..=0xCF if !frame_seen => {
                let size = payload.get(1..5).ok_or(PhotoError::BadMarker { offset: pos })?;
                headers.height_px = u32::from(u16::from_be_bytes([size[0], size[1]]));
                headers.width_px = u32::from(u16::from_be_bytes([size[2], size[3]]));
                frame_seen = true;
            }
            0xE1 if headers.exif.is_none() && payload.starts_with(EXIF_ID) => {
                headers.exif = Some(&payload[EXIF_ID.len()..]);
            }
            0xE1 if headers.xmp.is_none() && payload.starts_with(XMP_ID) => {
                headers.xmp = Some(&payload[XMP_ID.len()..]);
            }
            _ => {}
        }
        pos += len;
    }
    if !frame_seen || headers.width_px == 0 || headers.height_px == 0 {
        return Err(PhotoError::NoFrameSize);
    }
    // A copy cut short (a pulled SD card, a partial upload) loses the end-of-image marker. Some writers pad the
    // file with zeros after it.
    let end = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
    if end < 2 || bytes[end - 2..end] != [0xFF, 0xD9] {
        return Err(PhotoError::Truncated { offset: bytes.len() });
    }
    Ok(headers)
}
