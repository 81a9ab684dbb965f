//! The capture pose of a drone photo, read from its EXIF and DJI XMP tags.
//!
//! [`read_photo`] extracts a [`PhotoMetadata`] from JPEG bytes; [`PhotoMetadata::capture_pose`] turns it into
//! the [`CapturePose`] the georeferencer needs, or says which tags are missing.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use exif::{In, Tag, Value};
use mission_planner::camera::{Attitude, CameraPose, CameraSpec, Intrinsics};
use mission_planner::error::PlanError;
use mission_planner::geo::GeoPoint;
use serde::{Serialize, Serializer};

use super::{jpeg, xmp};
use crate::georef::CapturePose;

/// The diagonal of a 36 x 24 mm frame: the reference of a "35 mm equivalent" focal length.
const FULL_FRAME_DIAGONAL_MM: f64 = 43.266_615_305_567_87;

/// Why a photo's metadata could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PhotoError {
    /// The bytes do not start with the JPEG start-of-image marker.
    #[error("not a JPEG file (no start-of-image marker)")]
    NotJpeg,
    /// The file ends inside a segment or without the end-of-image marker.
    #[error("the JPEG is truncated at byte {offset} (a partial copy?)")]
    Truncated {
        /// Where the data ran out.
        offset: usize,
    },
    /// A marker segment is malformed.
    #[error("malformed JPEG marker at byte {offset}")]
    BadMarker {
        /// Where the bad marker is.
        offset: usize,
    },
    /// No start-of-frame segment gives the image size.
    #[error("the JPEG has no frame header with the image size")]
    NoFrameSize,
    /// The photo has no EXIF block, so no GPS position or capture time.
    #[error("the photo has no EXIF data (was it exported or edited? use the original from the drone's SD card)")]
    NoExif,
    /// The EXIF block is malformed.
    #[error("invalid EXIF data: {reason}")]
    InvalidExif {
        /// What the EXIF reader reported.
        reason: String,
    },
    /// The XMP packet is not UTF-8 XML.
    #[error("invalid XMP packet: {reason}")]
    InvalidXmp {
        /// What the XML parser reported.
        reason: String,
    },
    /// A tag holds a value that is not what its definition says.
    #[error("tag {tag} has an invalid value {value:?}")]
    InvalidTag {
        /// The tag, e.g. `GPSLatitude` or `drone-dji:RelativeAltitude`.
        tag: String,
        /// The value as written (shortened).
        value: String,
    },
}

/// The DJI `drone-dji:` XMP tags. Angles are degrees, altitudes metres; `None` when the tag is absent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize)]
pub struct DjiTags {
    /// Altitude above the take-off point (`RelativeAltitude`).
    pub relative_altitude_m: Option<f64>,
    /// Altitude above mean sea level (`AbsoluteAltitude`).
    pub absolute_altitude_m: Option<f64>,
    /// Gimbal pitch in the earth frame, -90 = straight down (`GimbalPitchDegree`).
    pub gimbal_pitch_deg: Option<f64>,
    /// Gimbal yaw from true north, clockwise (`GimbalYawDegree`).
    pub gimbal_yaw_deg: Option<f64>,
    /// Gimbal roll in the earth frame (`GimbalRollDegree`).
    pub gimbal_roll_deg: Option<f64>,
    /// Aircraft yaw from true north (`FlightYawDegree`).
    pub flight_yaw_deg: Option<f64>,
    /// Aircraft pitch, nose up positive (`FlightPitchDegree`).
    pub flight_pitch_deg: Option<f64>,
    /// Aircraft roll, right down positive (`FlightRollDegree`).
    pub flight_roll_deg: Option<f64>,
    /// Latitude (`GpsLatitude`), used when EXIF has no GPS.
    pub gps_latitude_deg: Option<f64>,
    /// Longitude (`GpsLongitude`, or DJI's `GpsLongtitude`), used when EXIF has no GPS.
    pub gps_longitude_deg: Option<f64>,
}

/// When a photo was taken, as the camera's clock wrote it (`DateTimeOriginal` + `SubSecTimeOriginal` +
/// `OffsetTimeOriginal`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureTime {
    /// Year.
    pub year: u16,
    /// Month, 1-12.
    pub month: u8,
    /// Day of the month, 1-31.
    pub day: u8,
    /// Hour, 0-23.
    pub hour: u8,
    /// Minute.
    pub minute: u8,
    /// Second.
    pub second: u8,
    /// Fraction of the second, nanoseconds (0 without `SubSecTimeOriginal`).
    pub nanosecond: u32,
    /// Offset of the camera's clock from UTC, minutes; `None` when the photo does not say (the time is then
    /// local to an unknown zone).
    pub utc_offset_min: Option<i16>,
}

impl CaptureTime {
    /// The instant, when the UTC offset is known.
    pub fn to_system_time(&self) -> Option<SystemTime> {
        let offset_min = self.utc_offset_min?;
        let days = days_from_civil(i64::from(self.year), i64::from(self.month), i64::from(self.day));
        let seconds = days * 86_400 + i64::from(self.hour) * 3600 + i64::from(self.minute) * 60
            - i64::from(offset_min) * 60
            + i64::from(self.second);
        let seconds = u64::try_from(seconds).ok()?;
        UNIX_EPOCH.checked_add(Duration::new(seconds, self.nanosecond))
    }
}

impl fmt::Display for CaptureTime {
    /// RFC 3339 (`2026-05-04T10:02:01.250+02:00`); without the offset when unknown.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
            self.year, self.month, self.day, self.hour, self.minute, self.second
        )?;
        if self.nanosecond > 0 {
            write!(f, ".{:03}", self.nanosecond / 1_000_000)?;
        }
        match self.utc_offset_min {
            Some(0) => write!(f, "Z"),
            Some(offset) => {
                let sign = if offset < 0 { '-' } else { '+' };
                let abs = offset.unsigned_abs();
                write!(f, "{sign}{:02}:{:02}", abs / 60, abs % 60)
            }
            None => Ok(()),
        }
    }
}

impl Serialize for CaptureTime {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's `days_from_civil`).
pub(super) fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month_index = (month + 9) % 12;
    let day_of_year = (153 * month_index + 2) / 5 + day - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

/// What a drone photo says about where and how it was taken.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PhotoMetadata {
    /// Image width (from the JPEG frame header).
    pub width_px: u32,
    /// Image height (from the JPEG frame header).
    pub height_px: u32,
    /// Camera maker (`Make`).
    pub make: Option<String>,
    /// Camera model (`Model`), e.g. `FC6310`.
    pub model: Option<String>,
    /// WGS84 position from EXIF GPS, else from the DJI `GpsLatitude`/`GpsLongitude` tags.
    pub position: Option<GeoPoint>,
    /// GPS altitude, metres above (or, negative, below) sea level.
    pub gps_altitude_m: Option<f64>,
    /// When the photo was taken.
    pub captured: Option<CaptureTime>,
    /// Lens focal length (`FocalLength`), millimetres.
    pub focal_length_mm: Option<f64>,
    /// 35 mm equivalent focal length (`FocalLengthIn35mmFilm`), millimetres.
    pub focal_length_35mm_mm: Option<f64>,
    /// The DJI flight and gimbal tags.
    pub dji: DjiTags,
}

/// A pose ingredient a photo lacks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum PoseField {
    /// No GPS position.
    Position,
    /// No height above ground.
    RelativeAltitude,
    /// No camera attitude.
    Orientation,
    /// No way to know the camera's focal length in pixels.
    Intrinsics,
}

impl fmt::Display for PoseField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            PoseField::Position => "position (EXIF GPSLatitude/GPSLongitude or drone-dji:GpsLatitude/GpsLongitude)",
            PoseField::RelativeAltitude => "height above take-off (drone-dji:RelativeAltitude)",
            PoseField::Orientation => {
                "camera attitude (drone-dji:GimbalPitchDegree + GimbalYawDegree, or drone-dji:FlightYawDegree)"
            }
            PoseField::Intrinsics => "focal length (EXIF FocalLengthIn35mmFilm, or give the camera with --camera)",
        })
    }
}

/// Why a photo's metadata does not give a capture pose.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PoseError {
    /// Tags the pose needs are missing.
    #[error("no capture pose: missing {}", list(.0))]
    Missing(Vec<PoseField>),
    /// The camera description given for the photo is invalid.
    #[error("invalid camera description")]
    Camera(#[source] PlanError),
}

fn list(fields: &[PoseField]) -> String {
    fields.iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
}

/// Reads the metadata of a drone photo.
///
/// # Errors
/// [`PhotoError`] when the bytes are not a complete JPEG, carry no EXIF, or hold malformed EXIF or XMP.
pub fn read_photo(bytes: &[u8]) -> Result<PhotoMetadata, PhotoError> {
    let headers = jpeg::read_headers(bytes)?;
    let exif_bytes = headers.exif.ok_or(PhotoError::NoExif)?;
    let exif = exif::Reader::new()
        .read_raw(exif_bytes.to_vec())
        .map_err(|error| PhotoError::InvalidExif { reason: error.to_string() })?;
    let dji = headers.xmp.map(xmp::parse_dji).transpose()?.unwrap_or_default();
    let field = |tag: Tag| exif.get_field(tag, In::PRIMARY).map(|f| &f.value);
    let exif_position = gps_position(field(Tag::GPSLatitude), field(Tag::GPSLatitudeRef), Tag::GPSLatitude)?
        .zip(gps_position(field(Tag::GPSLongitude), field(Tag::GPSLongitudeRef), Tag::GPSLongitude)?)
        .map(|(lat, lon)| GeoPoint::new(lat, lon));
    let dji_position = dji.gps_latitude_deg.zip(dji.gps_longitude_deg).map(|(lat, lon)| GeoPoint::new(lat, lon));
    let position = exif_position.or(dji_position);
    if let Some(point) = position.filter(|p| !p.is_valid()) {
        return Err(PhotoError::InvalidTag {
            tag: "GPSLatitude/GPSLongitude".into(),
            value: format!("{}, {}", point.lat_deg, point.lon_deg),
        });
    }
    let gps_altitude_m = rational(field(Tag::GPSAltitude), Tag::GPSAltitude)?.map(|alt| {
        let below_sea_level = matches!(field(Tag::GPSAltitudeRef), Some(Value::Byte(b)) if b.first() == Some(&1));
        if below_sea_level { -alt } else { alt }
    });
    Ok(PhotoMetadata {
        width_px: headers.width_px,
        height_px: headers.height_px,
        make: ascii(field(Tag::Make)),
        model: ascii(field(Tag::Model)),
        position,
        gps_altitude_m,
        captured: capture_time(
            field(Tag::DateTimeOriginal),
            field(Tag::SubSecTimeOriginal),
            field(Tag::OffsetTimeOriginal),
        )?,
        focal_length_mm: rational(field(Tag::FocalLength), Tag::FocalLength)?,
        focal_length_35mm_mm: field(Tag::FocalLengthIn35mmFilm)
            .and_then(|v| v.get_uint(0))
            .filter(|&mm| mm > 0)
            .map(f64::from),
        dji,
    })
}

/// The first string of an ASCII value, trimmed.
fn ascii(value: Option<&Value>) -> Option<String> {
    match value {
        Some(Value::Ascii(strings)) => {
            strings.first().map(|s| String::from_utf8_lossy(s).trim().to_owned()).filter(|s| !s.is_empty())
        }
        _ => None,
    }
}

fn invalid(tag: Tag, value: &Value) -> PhotoError {
    PhotoError::InvalidTag { tag: tag.to_string(), value: format!("{value:?}").chars().take(64).collect() }
}

/// A single finite rational.
fn rational(value: Option<&Value>, tag: Tag) -> Result<Option<f64>, PhotoError> {
    match value {
        None => Ok(None),
        Some(Value::Rational(r)) if r.first().is_some_and(|r| r.denom != 0) => Ok(r.first().map(|r| r.to_f64())),
        Some(other) => Err(invalid(tag, other)),
    }
}

/// Degrees from an EXIF degrees/minutes/seconds triple and its N/S/E/W reference.
fn gps_position(dms: Option<&Value>, reference: Option<&Value>, tag: Tag) -> Result<Option<f64>, PhotoError> {
    let Some(dms) = dms else { return Ok(None) };
    let parts = match dms {
        Value::Rational(r) if !r.is_empty() && r.len() <= 3 && r.iter().all(|r| r.denom != 0) => {
            r.iter().map(|r| r.to_f64()).collect::<Vec<_>>()
        }
        other => return Err(invalid(tag, other)),
    };
    let degrees = parts.iter().zip([1.0, 60.0, 3600.0]).map(|(part, per_degree)| part / per_degree).sum::<f64>();
    let negative = matches!(reference, Some(Value::Ascii(s)) if s.first().is_some_and(|s| s.starts_with(b"S") || s.starts_with(b"W")));
    Ok(Some(if negative { -degrees } else { degrees }))
}

fn capture_time(
    date_time: Option<&Value>,
    subsec: Option<&Value>,
    offset: Option<&Value>,
) -> Result<Option<CaptureTime>, PhotoError> {
    let Some(date_time) = date_time else { return Ok(None) };
    let Value::Ascii(strings) = date_time else { return Err(invalid(Tag::DateTimeOriginal, date_time)) };
    let Some(text) = strings.first() else { return Ok(None) };
    let mut parsed = match exif::DateTime::from_ascii(text) {
        Ok(parsed) => parsed,
        // Cameras without a clock write a blank value: the same as no value.
        Err(exif::Error::BlankValue(_)) => return Ok(None),
        Err(_) => return Err(invalid(Tag::DateTimeOriginal, date_time)),
    };
    if !(1..=12).contains(&parsed.month) || !(1..=31).contains(&parsed.day) || parsed.hour > 23 || parsed.minute > 59 {
        return Err(invalid(Tag::DateTimeOriginal, date_time));
    }
    if let Some(Value::Ascii(s)) = subsec
        && let Some(s) = s.first()
    {
        parsed.parse_subsec(s).map_err(|_| invalid(Tag::SubSecTimeOriginal, date_time))?;
    }
    if let Some(Value::Ascii(s)) = offset
        && let Some(s) = s.first()
    {
        match parsed.parse_offset(s) {
            Ok(()) | Err(exif::Error::BlankValue(_)) => {}
            Err(_) => return Err(invalid(Tag::OffsetTimeOriginal, offset.unwrap_or(date_time))),
        }
    }
    Ok(Some(CaptureTime {
        year: parsed.year,
        month: parsed.month,
        day: parsed.day,
        hour: parsed.hour,
        minute: parsed.minute,
        second: parsed.second.min(60),
        nanosecond: parsed.nanosecond.unwrap_or(0),
        utc_offset_min: parsed.offset,
    }))
}

impl PhotoMetadata {
    /// The camera attitude: a stabilised gimbal from the gimbal tags (pitch and yaw; roll 0 when absent), else
    /// a nadir mount on the aircraft's flight attitude (yaw; pitch and roll 0 when absent). `None` without either.
    pub fn orientation(&self) -> Option<mission_planner::camera::Rotation> {
        let d = &self.dji;
        if let (Some(pitch), Some(yaw)) = (d.gimbal_pitch_deg, d.gimbal_yaw_deg) {
            let roll = d.gimbal_roll_deg.unwrap_or(0.0);
            return Some(CameraPose::stabilised_gimbal(Attitude::from_degrees(roll, pitch, yaw)));
        }
        let yaw = d.flight_yaw_deg?;
        let attitude = Attitude::from_degrees(d.flight_roll_deg.unwrap_or(0.0), d.flight_pitch_deg.unwrap_or(0.0), yaw);
        Some(CameraPose::nadir_mount(attitude))
    }

    /// The camera intrinsics at this photo's size: from `camera` when given (scaled to the photo), else from the
    /// 35 mm equivalent focal length (`None` without it).
    ///
    /// # Errors
    /// [`PoseError::Camera`] when `camera` is invalid.
    pub fn intrinsics(&self, camera: Option<&CameraSpec>) -> Result<Option<Intrinsics>, PoseError> {
        if let Some(camera) = camera {
            let intrinsics = camera.intrinsics().map_err(PoseError::Camera)?;
            return Ok(Some(intrinsics.scaled_to(self.width_px, self.height_px)));
        }
        let Some(f35_mm) = self.focal_length_35mm_mm else { return Ok(None) };
        let (width, height) = (f64::from(self.width_px), f64::from(self.height_px));
        // The 35 mm equivalent keeps the diagonal field of view of a 36 x 24 mm frame.
        let f_px = f35_mm / FULL_FRAME_DIAGONAL_MM * width.hypot(height);
        Ok(Some(Intrinsics {
            width_px: width,
            height_px: height,
            fx_px: f_px,
            fy_px: f_px,
            cx_px: width / 2.0,
            cy_px: height / 2.0,
        }))
    }

    /// The capture pose for the georeferencer.
    ///
    /// # Errors
    /// [`PoseError::Missing`] naming every missing ingredient (position, relative altitude, attitude, focal
    /// length), [`PoseError::Camera`] when `camera` is invalid.
    pub fn capture_pose(&self, camera: Option<&CameraSpec>) -> Result<CapturePose, PoseError> {
        let intrinsics = self.intrinsics(camera)?;
        let orientation = self.orientation();
        let mut missing = Vec::new();
        if self.position.is_none() {
            missing.push(PoseField::Position);
        }
        if self.dji.relative_altitude_m.is_none() {
            missing.push(PoseField::RelativeAltitude);
        }
        if orientation.is_none() {
            missing.push(PoseField::Orientation);
        }
        if intrinsics.is_none() {
            missing.push(PoseField::Intrinsics);
        }
        match (self.position, self.dji.relative_altitude_m, orientation, intrinsics) {
            (Some(position), Some(relative_alt_m), Some(orientation), Some(intrinsics)) => {
                Ok(CapturePose { position, relative_alt_m, orientation, intrinsics })
            }
            _ => Err(PoseError::Missing(missing)),
        }
    }
}

#[cfg(test)]
mod tests {
    use mission_planner::camera::{Rotation, ground_to_pixel, pixel_to_ground};
    use mission_planner::geo::geodesic_distance_m;
    use proptest::prelude::{any, prop, proptest};

    use super::*;
    use crate::ingest::fixture::{PhotoSpec, dji_xmp, photo};

    fn assert_rotation_eq(a: &Rotation, b: &Rotation) {
        let (qa, qb) = (a.to_quaternion(), b.to_quaternion());
        assert!(qa.iter().zip(qb).all(|(x, y)| (x - y).abs() < 1e-9), "{qa:?} vs {qb:?}");
    }

    #[test]
    fn reads_gps_time_focal_length_size_and_dji_tags() {
        let meta = read_photo(&photo(&PhotoSpec::default(), 4000, 3000)).unwrap();
        assert_eq!((meta.width_px, meta.height_px), (4000, 3000));
        assert_eq!(meta.make.as_deref(), Some("DJI"));
        assert_eq!(meta.model.as_deref(), Some("FC3411"));
        let position = meta.position.unwrap();
        assert!((position.lat_deg - 47.123_456).abs() < 1e-6 && (position.lon_deg - 8.654_321).abs() < 1e-6);
        assert_eq!(meta.gps_altitude_m, Some(512.5));
        assert_eq!(meta.focal_length_mm, Some(4.5));
        assert_eq!(meta.focal_length_35mm_mm, Some(24.0));
        assert_eq!(meta.dji.relative_altitude_m, Some(60.3));
        assert_eq!(meta.dji.absolute_altitude_m, Some(572.8));
        assert_eq!(meta.dji.gimbal_pitch_deg, Some(-90.0));
        assert_eq!(meta.dji.gimbal_yaw_deg, Some(45.0));
        assert_eq!(meta.dji.flight_yaw_deg, Some(44.0));
        let captured = meta.captured.unwrap();
        assert_eq!(captured.to_string(), "2026-05-04T10:02:01.250+02:00");
        // 2026-05-04T08:02:01.25Z, computed with `date -u -d 2026-05-04T08:02:01Z +%s`.
        assert_eq!(captured.to_system_time(), Some(UNIX_EPOCH + Duration::new(1_777_881_721, 250_000_000)));
    }

    #[test]
    fn southern_western_and_below_sea_level_are_negative() {
        let spec = PhotoSpec {
            lat: Some((33.5, "S")),
            lon: Some((70.25, "W")),
            gps_alt: Some((12.0, 1)),
            ..PhotoSpec::default()
        };
        let meta = read_photo(&photo(&spec, 640, 480)).unwrap();
        assert_eq!(meta.position, Some(GeoPoint::new(-33.5, -70.25)));
        assert_eq!(meta.gps_altitude_m, Some(-12.0));
    }

    #[test]
    fn time_without_offset_is_local_and_has_no_instant() {
        let spec = PhotoSpec { subsec: None, offset: None, ..PhotoSpec::default() };
        let captured = read_photo(&photo(&spec, 640, 480)).unwrap().captured.unwrap();
        assert_eq!(captured.to_string(), "2026-05-04T10:02:01");
        assert_eq!(captured.to_system_time(), None);
        let utc = PhotoSpec { offset: Some("+00:00"), ..PhotoSpec::default() };
        let captured = read_photo(&photo(&utc, 640, 480)).unwrap().captured.unwrap();
        assert_eq!(captured.to_string(), "2026-05-04T10:02:01.250Z");
    }

    #[test]
    fn gimbal_tags_give_a_stabilised_gimbal_pose_with_35mm_intrinsics() {
        let meta = read_photo(&photo(&PhotoSpec::default(), 4000, 3000)).unwrap();
        let pose = meta.capture_pose(None).unwrap();
        assert_eq!(pose.relative_alt_m, 60.3);
        assert_eq!(pose.position, meta.position.unwrap());
        assert_rotation_eq(&pose.orientation, &CameraPose::stabilised_gimbal(Attitude::from_degrees(0.0, -90.0, 45.0)));
        // 24 mm equivalent on a 4:3 frame: f = 24 / 43.2666 * 5000 px = 2773.50 px (hand-computed).
        assert!((pose.intrinsics.fx_px - 2773.50).abs() < 0.01, "{:?}", pose.intrinsics);
        assert_eq!((pose.intrinsics.cx_px, pose.intrinsics.cy_px), (2000.0, 1500.0));
        // A nadir photo: the image centre is below the drone.
        let camera = CameraPose { position: pose.position, height_above_ground_m: 60.3, orientation: pose.orientation };
        let hit = pixel_to_ground(&pose.intrinsics, &camera, 2000.0, 1500.0).unwrap();
        assert!(geodesic_distance_m(hit.point, pose.position) < 0.01);
    }

    #[test]
    fn oblique_gimbal_looks_along_its_yaw() {
        // Pitch -45 looking east: the image centre lands `height` metres east of the drone.
        let spec = PhotoSpec { xmp: Some(dji_xmp("+50.0", "-45.0", "+90.0", "0", "+10")), ..PhotoSpec::default() };
        let pose = read_photo(&photo(&spec, 4000, 3000)).unwrap().capture_pose(None).unwrap();
        let camera = CameraPose { position: pose.position, height_above_ground_m: 50.0, orientation: pose.orientation };
        let hit = pixel_to_ground(&pose.intrinsics, &camera, 2000.0, 1500.0).unwrap();
        assert!((hit.offset.east_m - 50.0).abs() < 0.01 && hit.offset.north_m.abs() < 0.01, "{:?}", hit.offset);
        assert!(ground_to_pixel(&pose.intrinsics, &camera, hit.point).is_some());
    }

    #[test]
    fn without_gimbal_tags_the_flight_attitude_gives_a_nadir_mount() {
        let xmp = r#"<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description xmlns:drone-dji="http://www.dji.com/drone-dji/1.0/"><drone-dji:RelativeAltitude>+80</drone-dji:RelativeAltitude>
<drone-dji:FlightYawDegree>+30.5</drone-dji:FlightYawDegree><drone-dji:FlightPitchDegree>-2</drone-dji:FlightPitchDegree>
<drone-dji:FlightRollDegree>+1</drone-dji:FlightRollDegree></rdf:Description></rdf:RDF></x:xmpmeta>"#;
        let spec = PhotoSpec { xmp: Some(xmp.into()), ..PhotoSpec::default() };
        let pose = read_photo(&photo(&spec, 4000, 3000)).unwrap().capture_pose(None).unwrap();
        assert_eq!(pose.relative_alt_m, 80.0);
        assert_rotation_eq(&pose.orientation, &CameraPose::nadir_mount(Attitude::from_degrees(1.0, -2.0, 30.5)));
    }

    #[test]
    fn a_camera_description_overrides_the_35mm_focal_length_and_is_scaled() {
        let meta = read_photo(&photo(&PhotoSpec::default(), 2000, 1500)).unwrap();
        let camera = CameraSpec {
            name: "test".into(),
            image_width_px: 4000,
            image_height_px: 3000,
            sensor_width_mm: Some(8.0),
            sensor_height_mm: None,
            focal_length_mm: Some(4.0),
            horizontal_fov_deg: None,
            min_trigger_interval_s: 0.0,
        };
        let pose = meta.capture_pose(Some(&camera)).unwrap();
        // 4 mm / 8 mm * 4000 px = 2000 px at full size, 1000 px at half size.
        assert!((pose.intrinsics.fx_px - 1000.0).abs() < 1e-9);
        let broken = CameraSpec { focal_length_mm: Some(0.0), ..camera };
        assert!(matches!(meta.capture_pose(Some(&broken)), Err(PoseError::Camera(_))));
    }

    #[test]
    fn missing_pose_ingredients_are_all_named() {
        let spec = PhotoSpec { lat: None, lon: None, focal_35mm: None, xmp: None, ..PhotoSpec::default() };
        let meta = read_photo(&photo(&spec, 640, 480)).unwrap();
        assert_eq!(meta.dji, DjiTags::default());
        let error = meta.capture_pose(None).unwrap_err();
        match &error {
            PoseError::Missing(fields) => assert_eq!(
                fields,
                &[PoseField::Position, PoseField::RelativeAltitude, PoseField::Orientation, PoseField::Intrinsics]
            ),
            other => panic!("{other:?}"),
        }
        let message = error.to_string();
        assert!(message.contains("drone-dji:RelativeAltitude") && message.contains("--camera"), "{message}");

        // Only the relative altitude missing: the error names only that.
        let xmp = r#"<r xmlns:d="http://www.dji.com/drone-dji/1.0/" d:GimbalPitchDegree="-90" d:GimbalYawDegree="0"/>"#;
        let spec = PhotoSpec { xmp: Some(xmp.into()), ..PhotoSpec::default() };
        let error = read_photo(&photo(&spec, 640, 480)).unwrap().capture_pose(None).unwrap_err();
        assert!(matches!(error, PoseError::Missing(ref f) if f == &[PoseField::RelativeAltitude]), "{error}");
    }

    #[test]
    fn dji_gps_tags_stand_in_for_missing_exif_gps() {
        let xmp = r#"<r xmlns:d="http://www.dji.com/drone-dji/1.0/" d:GpsLatitude="+47.5" d:GpsLongtitude="+8.25"/>"#;
        let spec = PhotoSpec { lat: None, lon: None, xmp: Some(xmp.into()), ..PhotoSpec::default() };
        assert_eq!(read_photo(&photo(&spec, 640, 480)).unwrap().position, Some(GeoPoint::new(47.5, 8.25)));
    }

    #[test]
    fn bad_input_gives_typed_errors() {
        let good = photo(&PhotoSpec::default(), 640, 480);
        assert!(matches!(read_photo(b""), Err(PhotoError::NotJpeg)));
        assert!(matches!(read_photo(b"GIF89a"), Err(PhotoError::NotJpeg)));
        // Cut in the headers, and cut in the image data.
        assert!(matches!(read_photo(&good[..40]), Err(PhotoError::Truncated { .. })));
        assert!(matches!(read_photo(&good[..good.len() - 10]), Err(PhotoError::Truncated { .. })));
        // Zero padding after the end marker is fine.
        assert!(read_photo(&[good.as_slice(), &[0; 16]].concat()).is_ok());
        let no_exif = photo(&PhotoSpec { exif: false, ..PhotoSpec::default() }, 640, 480);
        assert!(matches!(read_photo(&no_exif), Err(PhotoError::NoExif)));
        let garbage_xmp = PhotoSpec { xmp: Some("<x:xmpmeta><rdf:RDF".into()), ..PhotoSpec::default() };
        assert!(matches!(read_photo(&photo(&garbage_xmp, 640, 480)), Err(PhotoError::InvalidXmp { .. })));
        let zero_size = photo(&PhotoSpec::default(), 0, 480);
        assert!(matches!(read_photo(&zero_size), Err(PhotoError::NoFrameSize)));
        let bad_date = PhotoSpec { date_time: Some("2026:13:40 99:00:00"), ..PhotoSpec::default() };
        assert!(matches!(read_photo(&photo(&bad_date, 640, 480)), Err(PhotoError::InvalidTag { .. })));
        let bad_lat = PhotoSpec { lat: Some((95.0, "N")), ..PhotoSpec::default() };
        assert!(matches!(read_photo(&photo(&bad_lat, 640, 480)), Err(PhotoError::InvalidTag { .. })));
        // Corrupt the TIFF header inside the EXIF segment.
        let mut bad_exif = good.clone();
        let tiff = bad_exif.windows(6).position(|w| w == b"Exif\0\0").unwrap() + 6;
        bad_exif[tiff..tiff + 4].copy_from_slice(b"XXXX");
        assert!(matches!(read_photo(&bad_exif), Err(PhotoError::InvalidExif { .. })));
    }

    #[test]
    fn days_from_civil_matches_known_dates() {
        assert_eq!(days_from_civil(1970, 1, 1), 0);
        assert_eq!(days_from_civil(2000, 3, 1), 11_017);
        assert_eq!(days_from_civil(1969, 12, 31), -1);
    }

    proptest! {
        #[test]
        fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
            let _ = read_photo(&bytes);
            let mut jpeg = vec![0xFF, 0xD8];
            jpeg.extend_from_slice(&bytes);
            let _ = read_photo(&jpeg);
        }

        #[test]
        fn corrupted_photos_never_panic(flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..16)) {
            let mut bytes = photo(&PhotoSpec::default(), 640, 480);
            for (index, value) in flips {
                let i = index.index(bytes.len());
                bytes[i] = value;
            }
            if let Ok(meta) = read_photo(&bytes) {
                let _ = meta.capture_pose(None);
            }
        }
    }
}
