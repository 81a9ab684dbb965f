//! Request parsing for the push endpoint, where a companion computer posts a photo with its capture metadata.
//!
//! Two request shapes are accepted:
//! - `multipart/form-data` with a `metadata` part (JSON, [`CaptureMetadata`]) and an `image` part (the JPEG);
//! - a raw JPEG body (`Content-Type: image/jpeg`) with the JSON metadata in the `X-Capture-Metadata` header or
//!   the URL-encoded `metadata` query parameter.
//!
//! The metadata's JSON Schema is `docs/schemas/push-metadata.json`. Parsing is pure (headers, query and body
//! bytes in; a [`PushedFrame`] or a typed [`PushError`] out) so the HTTP handler only maps errors to statuses.

use std::ops::Range;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::http::HeaderMap;
use axum::http::header::CONTENT_TYPE;
use bytes::Bytes;
use mission_planner::camera::{Attitude, CameraPose, CameraSpec, Intrinsics, Rotation};
use mission_planner::geo::GeoPoint;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::jpeg;
use super::photo_pose::PhotoError;
use crate::georef::CapturePose;

/// The header that carries the metadata of a raw JPEG body.
pub const METADATA_HEADER: &str = "x-capture-metadata";

/// Size limits of a push request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PushLimits {
    /// Largest accepted request body, bytes.
    pub max_body_bytes: usize,
    /// Largest accepted metadata document, bytes.
    pub max_metadata_bytes: usize,
}

impl Default for PushLimits {
    /// 32 MiB bodies (a 48 MP JPEG is about 20 MiB) and 64 KiB of metadata.
    fn default() -> Self {
        Self { max_body_bytes: 32 << 20, max_metadata_bytes: 64 << 10 }
    }
}

/// Why a push request was rejected. Every variant is the client's fault (an HTTP 4xx).
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PushError {
    /// The body is larger than the limit.
    #[error("request body of {size} bytes exceeds the limit of {limit} bytes")]
    BodyTooLarge {
        /// Body size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The metadata document is larger than the limit.
    #[error("metadata of {size} bytes exceeds the limit of {limit} bytes")]
    MetadataTooLarge {
        /// Metadata size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The content type is neither multipart/form-data nor a JPEG.
    #[error(
        "unsupported content type {content_type:?}: post multipart/form-data (parts `metadata` and `image`) or image/jpeg with an X-Capture-Metadata header"
    )]
    UnsupportedContentType {
        /// The content type sent ("" when none).
        content_type: String,
    },
    /// The multipart body is malformed.
    #[error("malformed multipart body: {reason}")]
    Multipart {
        /// What is wrong.
        reason: &'static str,
    },
    /// A required part or header is absent.
    #[error("missing {what}")]
    Missing {
        /// What is missing, e.g. "multipart part `image`".
        what: &'static str,
    },
    /// A part, header or parameter appears twice, so which one counts is ambiguous.
    #[error("{what} is given more than once")]
    Duplicate {
        /// What is duplicated.
        what: &'static str,
    },
    /// The metadata is not valid JSON of the expected shape.
    #[error("invalid metadata JSON")]
    MetadataJson(#[source] serde_json::Error),
    /// The metadata parses but a field is out of range or inconsistent.
    #[error("invalid metadata field `{field}`: {reason}")]
    InvalidField {
        /// The field, e.g. `lat_deg`.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
    /// The image is not a complete JPEG.
    #[error("invalid image")]
    Image(#[source] PhotoError),
    /// The metadata names a camera the caller does not know.
    #[error("unknown camera {name:?}: configure it or send `intrinsics`")]
    UnknownCamera {
        /// The name sent.
        name: String,
    },
    /// The named camera's description is invalid.
    #[error("invalid camera description")]
    Camera(#[source] mission_planner::error::PlanError),
}

/// Roll, pitch and yaw in degrees (ZYX, NED).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AnglesDeg {
    /// Roll, right side down positive.
    pub roll_deg: f64,
    /// Pitch, nose (or lens) up positive; -90 looks straight down.
    pub pitch_deg: f64,
    /// Yaw, clockwise from true north.
    pub yaw_deg: f64,
}

impl AnglesDeg {
    fn attitude(&self) -> Attitude {
        Attitude::from_degrees(self.roll_deg, self.pitch_deg, self.yaw_deg)
    }
}

/// Pinhole intrinsics as sent by the companion computer, for the resolution it states.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntrinsicsPx {
    /// Image width the values refer to.
    pub width_px: u32,
    /// Image height the values refer to.
    pub height_px: u32,
    /// Focal length along x, pixels.
    pub fx_px: f64,
    /// Focal length along y, pixels.
    pub fy_px: f64,
    /// Principal point x (defaults to the centre).
    #[serde(default)]
    pub cx_px: Option<f64>,
    /// Principal point y (defaults to the centre).
    #[serde(default)]
    pub cy_px: Option<f64>,
}

/// The capture metadata a companion computer sends with a photo (`docs/schemas/push-metadata.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaptureMetadata {
    /// The drone that took the photo.
    pub drone_id: String,
    /// When the photo was taken (RFC 3339 with `Z` or an offset).
    #[serde(serialize_with = "serialize_rfc3339", deserialize_with = "deserialize_rfc3339")]
    pub capture_time: SystemTime,
    /// Sequence number of the photo on the drone, when it numbers them.
    #[serde(default)]
    pub image_index: Option<u32>,
    /// WGS84 latitude of the drone, degrees.
    pub lat_deg: f64,
    /// WGS84 longitude of the drone, degrees.
    pub lon_deg: f64,
    /// Height above the take-off point, metres.
    pub relative_alt_m: f64,
    /// Vehicle attitude; with a camera fixed pointing down (nadir mount) when neither `gimbal` nor
    /// `quaternion` is given.
    #[serde(default)]
    pub attitude: Option<AnglesDeg>,
    /// Camera attitude (w, x, y, z), NED <- camera head, as in MAVLink `CAMERA_IMAGE_CAPTURED.q`. Wins over
    /// `gimbal` and `attitude`.
    #[serde(default)]
    pub quaternion: Option<[f64; 4]>,
    /// Stabilised gimbal attitude in the earth frame (yaw from north). Wins over `attitude`.
    #[serde(default)]
    pub gimbal: Option<AnglesDeg>,
    /// Camera intrinsics (exactly one of `intrinsics` and `camera`).
    #[serde(default)]
    pub intrinsics: Option<IntrinsicsPx>,
    /// Name of a camera the station knows (exactly one of `intrinsics` and `camera`).
    #[serde(default)]
    pub camera: Option<String>,
}

/// A parsed push request.
#[derive(Debug, Clone, PartialEq)]
pub struct PushedFrame {
    /// The validated metadata.
    pub metadata: CaptureMetadata,
    /// The JPEG, a zero-copy slice of the request body.
    pub image: Bytes,
    /// Image width from the JPEG frame header.
    pub width_px: u32,
    /// Image height from the JPEG frame header.
    pub height_px: u32,
}

/// Parses a push request.
///
/// # Errors
/// [`PushError`] for a body or metadata over the limits, an unsupported content type, a malformed multipart
/// body, a missing or duplicated part, invalid metadata, or an image that is not a complete JPEG.
pub fn parse_push(
    headers: &HeaderMap,
    query: Option<&str>,
    body: Bytes,
    limits: &PushLimits,
) -> Result<PushedFrame, PushError> {
    if body.len() > limits.max_body_bytes {
        return Err(PushError::BodyTooLarge { size: body.len(), limit: limits.max_body_bytes });
    }
    let content_type = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or("").trim().to_owned();
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    let (metadata, image) = match essence.as_str() {
        "multipart/form-data" => {
            let boundary = parameter(&content_type, "boundary")
                .ok_or(PushError::Multipart { reason: "the content type has no boundary parameter" })?;
            let parts = multipart_parts(&body, boundary.as_bytes())?;
            let metadata =
                unique_part(&parts, "metadata")?.ok_or(PushError::Missing { what: "multipart part `metadata`" })?;
            let image = unique_part(&parts, "image")?.ok_or(PushError::Missing { what: "multipart part `image`" })?;
            (body.slice(metadata), body.slice(image))
        }
        "image/jpeg" | "application/octet-stream" => {
            let mut from_header = headers.get_all(METADATA_HEADER).iter();
            let header = from_header.next();
            if from_header.next().is_some() {
                return Err(PushError::Duplicate { what: "the X-Capture-Metadata header" });
            }
            let from_query = query.map(|q| query_parameter(q, "metadata")).transpose()?.flatten();
            let metadata = match (header, from_query) {
                (Some(_), Some(_)) => {
                    return Err(PushError::Duplicate { what: "metadata (X-Capture-Metadata header and query)" });
                }
                (Some(value), None) => Bytes::copy_from_slice(value.as_bytes()),
                (None, Some(value)) => Bytes::from(value),
                (None, None) => {
                    return Err(PushError::Missing {
                        what: "metadata (X-Capture-Metadata header or `metadata` query parameter)",
                    });
                }
            };
            (metadata, body)
        }
        _ => return Err(PushError::UnsupportedContentType { content_type }),
    };
    if metadata.len() > limits.max_metadata_bytes {
        return Err(PushError::MetadataTooLarge { size: metadata.len(), limit: limits.max_metadata_bytes });
    }
    let metadata: CaptureMetadata = serde_json::from_slice(&metadata).map_err(PushError::MetadataJson)?;
    metadata.validate()?;
    let headers = jpeg::read_headers(&image).map_err(PushError::Image)?;
    Ok(PushedFrame { metadata, width_px: headers.width_px, height_px: headers.height_px, image })
}

impl CaptureMetadata {
    /// Checks ranges and the one-of rules the JSON shape cannot express.
    fn validate(&self) -> Result<(), PushError> {
        let invalid = |field, reason: &str| Err(PushError::InvalidField { field, reason: reason.to_owned() });
        let id_ok = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.');
        if self.drone_id.is_empty() || self.drone_id.len() > 64 || !self.drone_id.chars().all(id_ok) {
            return invalid("drone_id", "1 to 64 characters of A-Z, a-z, 0-9, '-', '_' and '.'");
        }
        if !GeoPoint::new(self.lat_deg, self.lon_deg).is_valid() {
            return invalid("lat_deg/lon_deg", "latitude -90..90 and longitude -180..180 degrees");
        }
        if !self.relative_alt_m.is_finite() {
            return invalid("relative_alt_m", "must be a number");
        }
        for (field, angles) in [("attitude", self.attitude), ("gimbal", self.gimbal)] {
            if angles.is_some_and(|a| ![a.roll_deg, a.pitch_deg, a.yaw_deg].iter().all(|v| v.is_finite())) {
                return invalid(field, "angles must be numbers");
            }
        }
        if let Some(q) = self.quaternion
            && Rotation::from_quaternion(q).is_none()
        {
            return invalid("quaternion", "must be a non-zero quaternion (w, x, y, z)");
        }
        if self.attitude.is_none() && self.gimbal.is_none() && self.quaternion.is_none() {
            return invalid(
                "attitude",
                "give `quaternion`, `gimbal` or `attitude`: the camera's orientation is needed",
            );
        }
        match (&self.intrinsics, &self.camera) {
            (Some(_), Some(_)) | (None, None) => {
                return invalid("intrinsics", "give exactly one of `intrinsics` and `camera`");
            }
            (Some(k), None) => {
                let positive = |v: f64| v.is_finite() && v > 0.0;
                let centre_ok = |c: Option<f64>| c.is_none_or(f64::is_finite);
                if k.width_px == 0
                    || k.height_px == 0
                    || !positive(k.fx_px)
                    || !positive(k.fy_px)
                    || !centre_ok(k.cx_px)
                    || !centre_ok(k.cy_px)
                {
                    return invalid("intrinsics", "sizes and focal lengths must be positive");
                }
            }
            (None, Some(name)) if name.trim().is_empty() => return invalid("camera", "must not be empty"),
            (None, Some(_)) => {}
        }
        Ok(())
    }

    /// The camera orientation (NED <- camera head): the quaternion, else the stabilised gimbal, else a nadir
    /// mount on the vehicle attitude.
    fn orientation(&self) -> Option<Rotation> {
        if let Some(q) = self.quaternion {
            return Rotation::from_quaternion(q);
        }
        if let Some(gimbal) = self.gimbal {
            return Some(CameraPose::stabilised_gimbal(gimbal.attitude()));
        }
        self.attitude.map(|a| CameraPose::nadir_mount(a.attitude()))
    }
}

impl PushedFrame {
    /// The capture pose, with the intrinsics scaled to the pushed image's size. `camera` is the description the
    /// caller found for `metadata.camera` (`None` when it knows no such camera).
    ///
    /// # Errors
    /// [`PushError::UnknownCamera`] when the metadata names a camera and `camera` is `None`,
    /// [`PushError::Camera`] when that camera's description is invalid.
    pub fn capture_pose(&self, camera: Option<&CameraSpec>) -> Result<CapturePose, PushError> {
        let m = &self.metadata;
        let intrinsics = match (&m.intrinsics, &m.camera) {
            (Some(k), _) => Intrinsics {
                width_px: f64::from(k.width_px),
                height_px: f64::from(k.height_px),
                fx_px: k.fx_px,
                fy_px: k.fy_px,
                cx_px: k.cx_px.unwrap_or(f64::from(k.width_px) / 2.0),
                cy_px: k.cy_px.unwrap_or(f64::from(k.height_px) / 2.0),
            },
            (None, name) => match camera {
                Some(spec) => spec.intrinsics().map_err(PushError::Camera)?,
                None => return Err(PushError::UnknownCamera { name: name.clone().unwrap_or_default() }),
            },
        };
        let orientation = m
            .orientation()
            .ok_or(PushError::InvalidField { field: "attitude", reason: "no usable camera orientation".into() })?;
        Ok(CapturePose {
            position: GeoPoint::new(m.lat_deg, m.lon_deg),
            relative_alt_m: m.relative_alt_m,
            orientation,
            intrinsics: intrinsics.scaled_to(self.width_px, self.height_px),
        })
    }
}

/// A parameter of a header value like `multipart/form-data; boundary="abc"`, unquoted.
fn parameter(header: &str, name: &str) -> Option<String> {
    header.split(';').skip(1).find_map(|param| {
        let (key, value) = param.split_once('=')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim().trim_matches('"').to_owned())
    })
}

/// One part of a multipart body: its form field name and where its content is.
#[derive(Debug)]
struct Part {
    name: Option<String>,
    content: Range<usize>,
}

fn find(haystack: &[u8], needle: &[u8], from: usize) -> Option<usize> {
    memchr::memmem::find(haystack.get(from..)?, needle).map(|at| from + at)
}

/// Splits a multipart body (RFC 7578) into its parts.
fn multipart_parts(body: &[u8], boundary: &[u8]) -> Result<Vec<Part>, PushError> {
    if boundary.is_empty() || boundary.len() > 70 {
        return Err(PushError::Multipart { reason: "the boundary must be 1 to 70 characters" });
    }
    let delimiter = [b"--".as_slice(), boundary].concat();
    let next_delimiter = [b"\r\n--".as_slice(), boundary].concat();
    let mut pos = find(body, &delimiter, 0).ok_or(PushError::Multipart { reason: "no boundary in the body" })?;
    pos += delimiter.len();
    let mut parts = Vec::new();
    loop {
        let rest = &body[pos..];
        if rest.starts_with(b"--") {
            return Ok(parts);
        }
        // Transport padding (spaces, tabs) may follow a delimiter.
        let padding = rest.iter().take_while(|&&b| b == b' ' || b == b'\t').count();
        if !rest[padding..].starts_with(b"\r\n") {
            return Err(PushError::Multipart { reason: "a boundary is not followed by a line break" });
        }
        let headers_start = pos + padding + 2;
        let headers_end = if body[headers_start..].starts_with(b"\r\n") {
            headers_start
        } else {
            find(body, b"\r\n\r\n", headers_start)
                .ok_or(PushError::Multipart { reason: "a part's headers do not end" })?
                + 2
        };
        let headers = std::str::from_utf8(&body[headers_start..headers_end])
            .map_err(|_| PushError::Multipart { reason: "a part's headers are not UTF-8" })?;
        let content_start = headers_end + 2;
        let content_end = find(body, &next_delimiter, content_start)
            .ok_or(PushError::Multipart { reason: "the body ends before the closing boundary" })?;
        let name = headers.split("\r\n").find_map(|line| {
            let (key, value) = line.split_once(':')?;
            if !key.trim().eq_ignore_ascii_case("content-disposition") {
                return None;
            }
            parameter(value, "name")
        });
        parts.push(Part { name, content: content_start..content_end });
        pos = content_end + next_delimiter.len();
    }
}

fn unique_part(parts: &[Part], name: &'static str) -> Result<Option<Range<usize>>, PushError> {
    let mut found = parts.iter().filter(|p| p.name.as_deref() == Some(name));
    let first = found.next().map(|p| p.content.clone());
    if found.next().is_some() {
        return Err(PushError::Duplicate {
            what: if name == "image" { "multipart part `image`" } else { "multipart part `metadata`" },
        });
    }
    Ok(first)
}

/// The percent-decoded value of `name` in a query string (`+` is a space).
fn query_parameter(query: &str, name: &str) -> Result<Option<Vec<u8>>, PushError> {
    let mut found = None;
    for pair in query.split('&') {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        if key != name {
            continue;
        }
        if found.is_some() {
            return Err(PushError::Duplicate { what: "the `metadata` query parameter" });
        }
        found = Some(percent_decode(value)?);
    }
    Ok(found)
}

fn percent_decode(value: &str) -> Result<Vec<u8>, PushError> {
    let bad = || PushError::InvalidField { field: "metadata", reason: "bad percent-encoding in the query".into() };
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let hex = bytes.get(i + 1..i + 3).ok_or_else(bad)?;
                let hex = std::str::from_utf8(hex).map_err(|_| bad())?;
                out.push(u8::from_str_radix(hex, 16).map_err(|_| bad())?);
                i += 3;
            }
            b'+' => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// Parses RFC 3339 (`2026-05-04T08:02:01.25Z`, `...+02:00`); a lower-case `t`/`z` or a space separator are
/// accepted too.
fn parse_rfc3339(text: &str) -> Option<SystemTime> {
    let b = text.as_bytes();
    let digits = |range: Range<usize>| -> Option<i64> {
        let s = text.get(range)?;
        s.bytes().all(|c| c.is_ascii_digit()).then(|| s.parse().ok())?
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut pos = 19;
    let mut nanos = 0u32;
    if b.get(pos) == Some(&b'.') {
        let count = b[pos + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
        if count == 0 {
            return None;
        }
        let frac = &text[pos + 1..pos + 1 + count.min(9)];
        nanos = frac.parse::<u32>().ok()? * 10u32.pow(9 - u32::try_from(frac.len()).ok()?);
        pos += 1 + count;
    }
    let offset_s = match &text[pos..] {
        "Z" | "z" => 0,
        zone if zone.len() == 6 && matches!(zone.as_bytes()[0], b'+' | b'-') && zone.as_bytes()[3] == b':' => {
            let hours = digits(pos + 1..pos + 3)?;
            let minutes = digits(pos + 4..pos + 6)?;
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            sign * (hours * 3600 + minutes * 60)
        }
        _ => return None,
    };
    let days = super::photo_pose::days_from_civil(year, month, day);
    let seconds = days * 86_400 + hour * 3600 + minute * 60 + second - offset_s;
    UNIX_EPOCH.checked_add(Duration::new(u64::try_from(seconds).ok()?, nanos))
}

fn deserialize_rfc3339<'de, D: Deserializer<'de>>(deserializer: D) -> Result<SystemTime, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_rfc3339(&text).ok_or_else(|| {
        serde::de::Error::custom(format!("capture_time {text:?} is not an RFC 3339 time like 2026-05-04T08:02:01.250Z"))
    })
}

fn serialize_rfc3339<S: Serializer>(time: &SystemTime, serializer: S) -> Result<S::Ok, S::Error> {
    let since = time.duration_since(UNIX_EPOCH).map_err(serde::ser::Error::custom)?;
    let secs = i64::try_from(since.as_secs()).map_err(serde::ser::Error::custom)?;
    let (days, rem) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    serializer.collect_str(&format_args!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        since.subsec_millis()
    ))
}

/// The date of a day count since 1970-01-01 (Howard Hinnant's `civil_from_days`).
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    (year_of_era + era * 400 + i64::from(month <= 2), month, day)
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;
    use mission_planner::camera::pixel_to_ground;
    use mission_planner::geo::geodesic_distance_m;
    use proptest::prelude::{any, prop, proptest};
    use serde_json::{Value, json};

    use super::*;
    use crate::ingest::fixture::{PhotoSpec, photo};

    const BOUNDARY: &str = "----patrolBoundary7MA4YWxk";

    fn jpeg() -> Vec<u8> {
        photo(&PhotoSpec::default(), 4000, 3000)
    }

    fn metadata() -> Value {
        json!({
            "drone_id": "dji-m30-1",
            "capture_time": "2026-05-04T10:02:01.250+02:00",
            "image_index": 17,
            "lat_deg": 47.1,
            "lon_deg": 8.6,
            "relative_alt_m": 60.0,
            "attitude": {"roll_deg": 1.0, "pitch_deg": -2.0, "yaw_deg": 44.0},
            "gimbal": {"roll_deg": 0.0, "pitch_deg": -90.0, "yaw_deg": 45.0},
            "intrinsics": {"width_px": 8000, "height_px": 6000, "fx_px": 5000.0, "fy_px": 5000.0}
        })
    }

    fn multipart(parts: &[(&str, &[u8])]) -> Vec<u8> {
        let mut body = b"preamble is ignored\r\n".to_vec();
        for (name, content) in parts {
            body.extend(format!("--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n").bytes());
            body.extend(b"Content-Type: application/octet-stream\r\n\r\n");
            body.extend_from_slice(content);
            body.extend(b"\r\n");
        }
        body.extend(format!("--{BOUNDARY}--\r\n").bytes());
        body
    }

    fn headers(content_type: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_str(content_type).unwrap());
        headers
    }

    fn multipart_headers() -> HeaderMap {
        headers(&format!("multipart/form-data; boundary=\"{BOUNDARY}\""))
    }

    fn push_multipart(metadata: &Value) -> Result<PushedFrame, PushError> {
        let body = multipart(&[("metadata", metadata.to_string().as_bytes()), ("image", &jpeg())]);
        parse_push(&multipart_headers(), None, Bytes::from(body), &PushLimits::default())
    }

    fn schema() -> jsonschema::Validator {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/schemas/push-metadata.json");
        let schema: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        jsonschema::options().should_validate_formats(true).build(&schema).unwrap()
    }

    #[test]
    fn multipart_push_gives_metadata_image_and_a_gimbal_pose() {
        let frame = push_multipart(&metadata()).unwrap();
        assert_eq!(frame.image.as_ref(), jpeg().as_slice());
        assert_eq!((frame.width_px, frame.height_px), (4000, 3000));
        let m = &frame.metadata;
        assert_eq!(m.drone_id, "dji-m30-1");
        assert_eq!(m.image_index, Some(17));
        // 2026-05-04T08:02:01.25Z (`date -u -d 2026-05-04T08:02:01Z +%s` = 1777881721).
        assert_eq!(m.capture_time, UNIX_EPOCH + Duration::new(1_777_881_721, 250_000_000));
        let pose = frame.capture_pose(None).unwrap();
        // The gimbal wins over the vehicle attitude; 8000 px intrinsics halve for the 4000 px image.
        assert_eq!(pose.orientation, CameraPose::stabilised_gimbal(Attitude::from_degrees(0.0, -90.0, 45.0)));
        assert_eq!((pose.intrinsics.fx_px, pose.intrinsics.cx_px, pose.intrinsics.cy_px), (2500.0, 2000.0, 1500.0));
        let camera = CameraPose { position: pose.position, height_above_ground_m: 60.0, orientation: pose.orientation };
        let hit = pixel_to_ground(&pose.intrinsics, &camera, 2000.0, 1500.0).unwrap();
        assert!(geodesic_distance_m(hit.point, GeoPoint::new(47.1, 8.6)) < 0.01);
    }

    #[test]
    fn the_quaternion_wins_and_the_attitude_alone_is_a_nadir_mount() {
        let mut with_q = metadata();
        with_q["quaternion"] = json!([0.0, 0.0, 1.0, 0.0]);
        let pose = push_multipart(&with_q).unwrap().capture_pose(None).unwrap();
        assert_eq!(Some(pose.orientation), Rotation::from_quaternion([0.0, 0.0, 1.0, 0.0]));
        let mut attitude_only = metadata();
        attitude_only["gimbal"] = Value::Null;
        let pose = push_multipart(&attitude_only).unwrap().capture_pose(None).unwrap();
        assert_eq!(pose.orientation, CameraPose::nadir_mount(Attitude::from_degrees(1.0, -2.0, 44.0)));
    }

    #[test]
    fn raw_jpeg_with_metadata_in_a_header_or_the_query() {
        let limits = PushLimits::default();
        let mut with_header = headers("image/jpeg");
        with_header.insert(METADATA_HEADER, HeaderValue::from_str(&metadata().to_string()).unwrap());
        let frame = parse_push(&with_header, Some("other=1"), Bytes::from(jpeg()), &limits).unwrap();
        assert_eq!(frame.metadata.drone_id, "dji-m30-1");

        let encoded: String = metadata()
            .to_string()
            .bytes()
            .map(|b| if b.is_ascii_alphanumeric() { char::from(b).to_string() } else { format!("%{b:02X}") })
            .collect();
        let query = format!("a=b&metadata={encoded}");
        let frame = parse_push(&headers("image/jpeg"), Some(&query), Bytes::from(jpeg()), &limits).unwrap();
        assert_eq!(frame.metadata.lat_deg, 47.1);

        let both = parse_push(&with_header, Some(&query), Bytes::from(jpeg()), &limits);
        assert!(matches!(both, Err(PushError::Duplicate { .. })), "{both:?}");
        let neither = parse_push(&headers("image/jpeg"), None, Bytes::from(jpeg()), &limits);
        assert!(matches!(neither, Err(PushError::Missing { .. })), "{neither:?}");
        let bad_escape = parse_push(&headers("image/jpeg"), Some("metadata=%zz"), Bytes::from(jpeg()), &limits);
        assert!(matches!(bad_escape, Err(PushError::InvalidField { field: "metadata", .. })), "{bad_escape:?}");
    }

    #[test]
    fn limits_are_enforced() {
        let limits = PushLimits { max_body_bytes: 100, max_metadata_bytes: 64 << 10 };
        let result = parse_push(&multipart_headers(), None, Bytes::from(vec![0; 101]), &limits);
        assert!(matches!(result, Err(PushError::BodyTooLarge { size: 101, limit: 100 })), "{result:?}");
        let limits = PushLimits { max_body_bytes: 1 << 20, max_metadata_bytes: 50 };
        let body = multipart(&[("metadata", metadata().to_string().as_bytes()), ("image", &jpeg())]);
        let result = parse_push(&multipart_headers(), None, Bytes::from(body), &limits);
        assert!(matches!(result, Err(PushError::MetadataTooLarge { limit: 50, .. })), "{result:?}");
    }

    #[test]
    fn malformed_requests_get_typed_errors() {
        let limits = PushLimits::default();
        let meta = metadata().to_string();
        let good = multipart(&[("metadata", meta.as_bytes()), ("image", &jpeg())]);
        let parse = |headers: &HeaderMap, body: &[u8]| parse_push(headers, None, Bytes::copy_from_slice(body), &limits);
        assert!(matches!(parse(&headers("text/plain"), &good), Err(PushError::UnsupportedContentType { .. })));
        assert!(matches!(parse(&HeaderMap::new(), &good), Err(PushError::UnsupportedContentType { .. })));
        assert!(matches!(parse(&headers("multipart/form-data"), &good), Err(PushError::Multipart { .. })));
        assert!(matches!(parse(&multipart_headers(), &good[..good.len() - 30]), Err(PushError::Multipart { .. })));
        assert!(matches!(parse(&multipart_headers(), b"no boundary here"), Err(PushError::Multipart { .. })));
        let no_image = multipart(&[("metadata", meta.as_bytes())]);
        assert!(matches!(parse(&multipart_headers(), &no_image), Err(PushError::Missing { .. })));
        let two_images = multipart(&[("metadata", meta.as_bytes()), ("image", &jpeg()), ("image", &jpeg())]);
        assert!(matches!(parse(&multipart_headers(), &two_images), Err(PushError::Duplicate { .. })));
        let not_jpeg = multipart(&[("metadata", meta.as_bytes()), ("image", b"PNG...")]);
        assert!(matches!(parse(&multipart_headers(), &not_jpeg), Err(PushError::Image(PhotoError::NotJpeg))));
        let cut = jpeg();
        let cut_jpeg = multipart(&[("metadata", meta.as_bytes()), ("image", &cut[..cut.len() / 2])]);
        assert!(matches!(parse(&multipart_headers(), &cut_jpeg), Err(PushError::Image(PhotoError::Truncated { .. }))));
    }

    #[test]
    fn invalid_metadata_is_rejected_with_the_field_named() {
        let field_error = |patch: Value| {
            let mut m = metadata();
            for (key, value) in patch.as_object().unwrap() {
                m[key] = value.clone();
            }
            push_multipart(&m).unwrap_err()
        };
        assert!(matches!(
            field_error(json!({"lat_deg": 91.0})),
            PushError::InvalidField { field: "lat_deg/lon_deg", .. }
        ));
        assert!(matches!(field_error(json!({"drone_id": "a b"})), PushError::InvalidField { field: "drone_id", .. }));
        let no_orientation = field_error(json!({"gimbal": null, "attitude": null}));
        assert!(matches!(no_orientation, PushError::InvalidField { field: "attitude", .. }), "{no_orientation}");
        assert!(matches!(
            field_error(json!({"quaternion": [0, 0, 0, 0]})),
            PushError::InvalidField { field: "quaternion", .. }
        ));
        assert!(matches!(
            field_error(json!({"camera": "m30t-wide"})),
            PushError::InvalidField { field: "intrinsics", .. }
        ));
        assert!(matches!(
            field_error(json!({"intrinsics": null})),
            PushError::InvalidField { field: "intrinsics", .. }
        ));
        let zero_focal = json!({"intrinsics": {"width_px": 10, "height_px": 10, "fx_px": 0.0, "fy_px": 1.0}});
        assert!(matches!(field_error(zero_focal), PushError::InvalidField { field: "intrinsics", .. }));
        // Shape errors come from the JSON parser, naming the field.
        let unknown = field_error(json!({"altitude": 3}));
        assert!(matches!(unknown, PushError::MetadataJson(ref e) if e.to_string().contains("altitude")), "{unknown}");
        let bad_time = field_error(json!({"capture_time": "yesterday"}));
        assert!(matches!(bad_time, PushError::MetadataJson(ref e) if e.to_string().contains("RFC 3339")), "{bad_time}");
    }

    #[test]
    fn a_named_camera_is_resolved_by_the_caller_and_scaled() {
        let mut m = metadata();
        m["intrinsics"] = Value::Null;
        m["camera"] = json!("m30t-wide");
        let frame = push_multipart(&m).unwrap();
        assert!(matches!(frame.capture_pose(None), Err(PushError::UnknownCamera { ref name }) if name == "m30t-wide"));
        let spec = CameraSpec {
            name: "m30t-wide".into(),
            image_width_px: 8000,
            image_height_px: 6000,
            sensor_width_mm: None,
            sensor_height_mm: None,
            focal_length_mm: None,
            horizontal_fov_deg: Some(90.0),
            min_trigger_interval_s: 0.0,
        };
        let pose = frame.capture_pose(Some(&spec)).unwrap();
        // 90 degrees across 4000 px: f = 2000 px.
        assert!((pose.intrinsics.fx_px - 2000.0).abs() < 1e-9, "{:?}", pose.intrinsics);
    }

    #[test]
    fn rfc3339_times_parse_and_print() {
        let t = |s| parse_rfc3339(s).map(|t| t.duration_since(UNIX_EPOCH).unwrap());
        assert_eq!(t("1970-01-01T00:00:00Z"), Some(Duration::ZERO));
        assert_eq!(t("2026-05-04T08:02:01Z"), Some(Duration::from_secs(1_777_881_721)));
        assert_eq!(t("2026-05-04 10:02:01.5+02:00"), Some(Duration::new(1_777_881_721, 500_000_000)));
        assert_eq!(t("2026-05-04T03:32:01.123456789123-04:30"), Some(Duration::new(1_777_881_721, 123_456_789)));
        for bad in [
            "2026-05-04",
            "2026-05-04T08:02:01",
            "2026-13-04T08:02:01Z",
            "2026-05-04T08:02:01+0200",
            "2026-05-04T08:02:01.Z",
            "x026-05-04T08:02:01Z",
        ] {
            assert_eq!(t(bad), None, "{bad}");
        }
        let frame = push_multipart(&metadata()).unwrap();
        let json = serde_json::to_value(&frame.metadata).unwrap();
        assert_eq!(json["capture_time"], "2026-05-04T08:02:01.250Z");
        assert_eq!(serde_json::from_value::<CaptureMetadata>(json).unwrap(), frame.metadata);
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
    }

    #[test]
    fn the_schema_accepts_what_the_parser_accepts_and_rejects_what_it_rejects() {
        let schema = schema();
        let accepted = push_multipart(&metadata()).unwrap().metadata;
        let mut named = metadata();
        named["intrinsics"] = Value::Null;
        named["camera"] = json!("m30t-wide");
        for doc in [metadata(), serde_json::to_value(accepted).unwrap(), named] {
            let errors: Vec<String> = schema.iter_errors(&doc).map(|e| e.to_string()).collect();
            assert!(errors.is_empty(), "{doc:#}\n{errors:#?}");
        }
        let patches = [
            json!({"camera": "both"}),
            json!({"intrinsics": null}),
            json!({"gimbal": null, "attitude": null}),
            json!({"lat_deg": 91}),
            json!({"drone_id": "a b"}),
            json!({"altitude": 3}),
            json!({"capture_time": "yesterday"}),
        ];
        for patch in patches {
            let mut doc = metadata();
            for (key, value) in patch.as_object().unwrap() {
                doc[key] = value.clone();
            }
            assert!(!schema.is_valid(&doc), "schema accepts {patch}");
            assert!(push_multipart(&doc).is_err(), "parser accepts {patch}");
        }
    }

    proptest! {
        #[test]
        fn random_multipart_bodies_never_panic(body in prop::collection::vec(any::<u8>(), 0..1024), cut in any::<prop::sample::Index>()) {
            let _ = parse_push(&multipart_headers(), None, Bytes::from(body), &PushLimits::default());
            let good = multipart(&[("metadata", metadata().to_string().as_bytes()), ("image", &jpeg())]);
            let cut = cut.index(good.len());
            let _ = parse_push(&multipart_headers(), None, Bytes::copy_from_slice(&good[..cut]), &PushLimits::default());
        }

        #[test]
        fn random_queries_and_times_never_panic(query in ".{0,200}", time in ".{0,40}") {
            let _ = parse_push(&headers("image/jpeg"), Some(&query), Bytes::from(jpeg()), &PushLimits::default());
            let _ = parse_rfc3339(&time);
        }
    }
}
