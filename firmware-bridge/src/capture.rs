//! Camera captures: `CAMERA_IMAGE_CAPTURED` (MAVLink camera protocol), ArduPilot `CAMERA_FEEDBACK` and PX4
//! `CAMERA_TRIGGER`, each joined with the vehicle's pose and gimbal state at the capture time into one
//! [`Capture`].
//!
//! Poses are kept in a short history keyed by the vehicle's boot clock and interpolated at the capture
//! timestamp, never "latest pose": a photo taken 80 ms before the last ATTITUDE is placed with the attitude
//! of 80 ms earlier.

use std::collections::{BTreeSet, VecDeque};

use mission_planner::camera::{Attitude, CameraPose, Rotation};
use mission_planner::geo::GeoPoint;

use crate::vehicle::Position;

/// Which message announced a capture.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaptureSource {
    /// `CAMERA_IMAGE_CAPTURED` from a MAVLink camera (PX4, companion computers).
    ImageCaptured,
    /// ArduPilot `CAMERA_FEEDBACK`.
    CameraFeedback,
    /// PX4 `CAMERA_TRIGGER`.
    CameraTrigger,
}

/// Where the camera orientation of a capture came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrientationSource {
    /// The camera's own quaternion in `CAMERA_IMAGE_CAPTURED`.
    Camera,
    /// The gimbal's reported attitude.
    Gimbal,
    /// The vehicle attitude (interpolated at the capture time) with a fixed nadir mount.
    VehicleNadir,
    /// No attitude known: straight down, north up.
    Assumed,
}

/// One photo with the pose it was taken at.
#[derive(Debug, Clone, PartialEq)]
pub struct Capture {
    /// Which message announced it.
    pub source: CaptureSource,
    /// Vehicle boot time of the capture, milliseconds (when the message carried it).
    pub time_boot_ms: Option<u32>,
    /// UTC time of the capture, microseconds since the UNIX epoch (when known).
    pub time_utc_us: Option<u64>,
    /// Where the camera was.
    pub position: Option<Position>,
    /// NED <- camera head (x along the optical axis), as `mission_planner::camera::CameraPose` expects.
    pub orientation: Rotation,
    /// Where `orientation` came from.
    pub orientation_source: OrientationSource,
    /// The vehicle's attitude at the capture time, when known.
    pub vehicle_attitude: Option<Attitude>,
    /// Image index (sequence number for `CAMERA_TRIGGER`).
    pub image_index: Option<i64>,
    /// Where to download the image (`CAMERA_IMAGE_CAPTURED.file_url`), when given.
    pub file_url: Option<String>,
}

const HISTORY: usize = 64;
/// Boot times above this are UNIX times (some firmwares stamp CAMERA_TRIGGER with UTC).
const BOOT_TIME_LIMIT_US: u64 = 1_000_000_000_000_000;
/// Missing image indices re-requested at most per gap.
const MAX_REREQUEST: i32 = 16;

/// A short, time-ordered history of samples keyed by vehicle boot time in ms.
#[derive(Debug)]
struct History<T> {
    samples: VecDeque<(u32, T)>,
}

impl<T: Copy> History<T> {
    fn new() -> Self {
        Self { samples: VecDeque::with_capacity(HISTORY) }
    }

    fn push(&mut self, t_ms: u32, value: T) {
        // A clock going backwards means the vehicle rebooted: the old history is meaningless.
        if self.samples.back().is_some_and(|(last, _)| t_ms < *last) {
            self.samples.clear();
        }
        if self.samples.len() == HISTORY {
            self.samples.pop_front();
        }
        self.samples.push_back((t_ms, value));
    }

    fn latest(&self) -> Option<T> {
        self.samples.back().map(|(_, v)| *v)
    }

    /// The two samples around `t_ms` and the fraction between them, clamped to the ends of the history.
    fn around(&self, t_ms: u32) -> Option<(T, T, f64)> {
        let first = self.samples.front()?;
        if t_ms <= first.0 {
            return Some((first.1, first.1, 0.0));
        }
        for pair in self.samples.iter().zip(self.samples.iter().skip(1)) {
            let ((t0, a), (t1, b)) = pair;
            if t_ms <= *t1 {
                let span = f64::from(t1 - t0);
                let frac = if span > 0.0 { f64::from(t_ms - t0) / span } else { 1.0 };
                return Some((*a, *b, frac));
            }
        }
        self.latest().map(|v| (v, v, 0.0))
    }
}

fn lerp(a: f64, b: f64, f: f64) -> f64 {
    a + (b - a) * f
}

fn lerp_angle(a: f64, b: f64, f: f64) -> f64 {
    let mut d = (b - a) % std::f64::consts::TAU;
    if d > std::f64::consts::PI {
        d -= std::f64::consts::TAU;
    } else if d < -std::f64::consts::PI {
        d += std::f64::consts::TAU;
    }
    let mut out = (a + d * f) % std::f64::consts::TAU;
    if out > std::f64::consts::PI {
        out -= std::f64::consts::TAU;
    } else if out <= -std::f64::consts::PI {
        out += std::f64::consts::TAU;
    }
    out
}

fn interpolate_attitude(a: Attitude, b: Attitude, f: f64) -> Attitude {
    Attitude {
        roll_rad: lerp_angle(a.roll_rad, b.roll_rad, f),
        pitch_rad: lerp_angle(a.pitch_rad, b.pitch_rad, f),
        yaw_rad: lerp_angle(a.yaw_rad, b.yaw_rad, f),
    }
}

fn interpolate_position(a: Position, b: Position, f: f64) -> Position {
    Position {
        point: GeoPoint::new(lerp(a.point.lat_deg, b.point.lat_deg, f), lerp(a.point.lon_deg, b.point.lon_deg, f)),
        alt_msl_m: lerp(a.alt_msl_m, b.alt_msl_m, f),
        relative_alt_m: lerp(a.relative_alt_m, b.relative_alt_m, f),
    }
}

/// Pose history plus capture bookkeeping of one vehicle.
#[derive(Debug)]
pub(crate) struct CaptureTracker {
    attitudes: History<Attitude>,
    positions: History<Position>,
    /// NED <- camera head of a gimbal, with its time; `earth_yaw` false means yaw is relative to the vehicle.
    gimbal: Option<(Rotation, bool)>,
    highest_index: Option<i32>,
    seen: BTreeSet<i32>,
}

/// The fields of a `CAMERA_IMAGE_CAPTURED`, translated at the boundary.
#[derive(Debug, Clone)]
pub(crate) struct ImageCaptured {
    pub(crate) time_boot_ms: u32,
    pub(crate) time_utc_us: u64,
    pub(crate) position: Position,
    pub(crate) q: [f32; 4],
    pub(crate) image_index: i32,
    pub(crate) file_url: String,
}

/// The fields of an ArduPilot `CAMERA_FEEDBACK`.
#[derive(Debug, Clone)]
pub(crate) struct Feedback {
    pub(crate) time_usec: u64,
    pub(crate) position: Position,
    pub(crate) attitude: Attitude,
    pub(crate) image_index: u16,
}

impl CaptureTracker {
    pub(crate) fn new() -> Self {
        Self {
            attitudes: History::new(),
            positions: History::new(),
            gimbal: None,
            highest_index: None,
            seen: BTreeSet::new(),
        }
    }

    pub(crate) fn on_attitude(&mut self, time_boot_ms: u32, attitude: Attitude) {
        self.attitudes.push(time_boot_ms, attitude);
    }

    pub(crate) fn on_position(&mut self, time_boot_ms: u32, position: Position) {
        self.positions.push(time_boot_ms, position);
    }

    /// A gimbal attitude: `earth_yaw` when its yaw is in the earth frame, else relative to the vehicle.
    pub(crate) fn on_gimbal(&mut self, orientation: Rotation, earth_yaw: bool) {
        self.gimbal = Some((orientation, earth_yaw));
    }

    fn attitude_at(&self, t_ms: Option<u32>) -> Option<Attitude> {
        match t_ms {
            Some(t) => self.attitudes.around(t).map(|(a, b, f)| interpolate_attitude(a, b, f)),
            None => self.attitudes.latest(),
        }
    }

    fn position_at(&self, t_ms: Option<u32>) -> Option<Position> {
        match t_ms {
            Some(t) => self.positions.around(t).map(|(a, b, f)| interpolate_position(a, b, f)),
            None => self.positions.latest(),
        }
    }

    fn orientation(&self, vehicle: Option<Attitude>) -> (Rotation, OrientationSource) {
        match (self.gimbal, vehicle) {
            (Some((gimbal, true)), _) => (gimbal, OrientationSource::Gimbal),
            (Some((gimbal, false)), Some(v)) => {
                let heading = Rotation::from_attitude(Attitude { roll_rad: 0.0, pitch_rad: 0.0, yaw_rad: v.yaw_rad });
                (heading.then_from(&gimbal), OrientationSource::Gimbal)
            }
            (Some((gimbal, false)), None) => (gimbal, OrientationSource::Gimbal),
            (None, Some(v)) => (CameraPose::nadir_mount(v), OrientationSource::VehicleNadir),
            (None, None) => (CameraPose::nadir_mount(Attitude::default()), OrientationSource::Assumed),
        }
    }

    /// Joins a `CAMERA_IMAGE_CAPTURED`; returns the capture (`None` for a duplicate) and image indices that
    /// were skipped and should be re-requested.
    pub(crate) fn on_image_captured(&mut self, msg: ImageCaptured) -> (Option<Capture>, Vec<i32>) {
        let mut missing = Vec::new();
        if !self.seen.insert(msg.image_index) {
            return (None, missing);
        }
        if self.seen.len() > 1024 {
            self.seen.pop_first();
        }
        match self.highest_index {
            Some(high) if msg.image_index > high => {
                let from = (high + 1).max(msg.image_index - MAX_REREQUEST);
                missing.extend((from..msg.image_index).filter(|i| !self.seen.contains(i)));
                self.highest_index = Some(msg.image_index);
            }
            None => self.highest_index = Some(msg.image_index),
            Some(_) => {}
        }
        let t = Some(msg.time_boot_ms);
        let vehicle = self.attitude_at(t);
        let q = msg.q.map(f64::from);
        let (orientation, source) = match Rotation::from_quaternion(q) {
            Some(rotation) => (rotation, OrientationSource::Camera),
            None => self.orientation(vehicle),
        };
        let position = if msg.position.point.lat_deg == 0.0 && msg.position.point.lon_deg == 0.0 {
            self.position_at(t)
        } else {
            Some(msg.position)
        };
        let capture = Capture {
            source: CaptureSource::ImageCaptured,
            time_boot_ms: t,
            time_utc_us: (msg.time_utc_us > 0).then_some(msg.time_utc_us),
            position,
            orientation,
            orientation_source: source,
            vehicle_attitude: vehicle,
            image_index: Some(i64::from(msg.image_index)),
            file_url: (!msg.file_url.is_empty()).then_some(msg.file_url),
        };
        (Some(capture), missing)
    }

    /// Joins an ArduPilot `CAMERA_FEEDBACK` (which carries its own position and vehicle attitude).
    pub(crate) fn on_feedback(&self, msg: Feedback) -> Capture {
        let (orientation, source) = self.orientation(Some(msg.attitude));
        Capture {
            source: CaptureSource::CameraFeedback,
            time_boot_ms: None,
            time_utc_us: (msg.time_usec > BOOT_TIME_LIMIT_US).then_some(msg.time_usec),
            position: Some(msg.position),
            orientation,
            orientation_source: source,
            vehicle_attitude: Some(msg.attitude),
            image_index: Some(i64::from(msg.image_index)),
            file_url: None,
        }
    }

    /// Joins a PX4 `CAMERA_TRIGGER` (only a time and a sequence number) with the pose history.
    pub(crate) fn on_trigger(&self, time_usec: u64, seq: u32) -> Capture {
        let (t, utc) = if time_usec > BOOT_TIME_LIMIT_US {
            (None, Some(time_usec))
        } else {
            (u32::try_from(time_usec / 1000).ok(), None)
        };
        let vehicle = self.attitude_at(t);
        let (orientation, source) = self.orientation(vehicle);
        Capture {
            source: CaptureSource::CameraTrigger,
            time_boot_ms: t,
            time_utc_us: utc,
            position: self.position_at(t),
            orientation,
            orientation_source: source,
            vehicle_attitude: vehicle,
            image_index: Some(i64::from(seq)),
            file_url: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(lat: f64, rel: f64) -> Position {
        Position { point: GeoPoint::new(lat, 8.0), alt_msl_m: 400.0 + rel, relative_alt_m: rel }
    }

    #[test]
    fn trigger_interpolates_attitude_and_position_at_its_time() {
        let mut t = CaptureTracker::new();
        t.on_attitude(1000, Attitude::from_degrees(0.0, 0.0, 350.0));
        t.on_attitude(1100, Attitude::from_degrees(10.0, 0.0, 10.0));
        t.on_position(1000, pos(47.0, 30.0));
        t.on_position(1200, pos(47.001, 40.0));
        let c = t.on_trigger(1_050_000, 3);
        let att = c.vehicle_attitude.unwrap();
        assert!((att.roll_rad.to_degrees() - 5.0).abs() < 1e-9);
        // Yaw interpolates across north (350 -> 10 passes 0, not 180).
        assert!(att.yaw_rad.to_degrees().abs() < 1e-9, "{}", att.yaw_rad.to_degrees());
        let p = c.position.unwrap();
        assert!((p.relative_alt_m - 32.5).abs() < 1e-9);
        assert_eq!(c.orientation_source, OrientationSource::VehicleNadir);
        assert_eq!(c.image_index, Some(3));
        assert_eq!(c.time_boot_ms, Some(1050));
    }

    #[test]
    fn image_captured_uses_its_quaternion_and_reports_gaps_once() {
        let mut t = CaptureTracker::new();
        let msg = |i: i32, q: [f32; 4]| ImageCaptured {
            time_boot_ms: 5000,
            time_utc_us: 0,
            position: pos(47.0, 50.0),
            q,
            image_index: i,
            file_url: format!("http://cam/{i}.jpg"),
        };
        let (c, missing) = t.on_image_captured(msg(0, [1.0, 0.0, 0.0, 0.0]));
        let c = c.unwrap();
        assert!(missing.is_empty());
        assert_eq!(c.orientation_source, OrientationSource::Camera);
        assert_eq!(c.file_url.as_deref(), Some("http://cam/0.jpg"));
        let (_, missing) = t.on_image_captured(msg(4, [0.0; 4]));
        assert_eq!(missing, vec![1, 2, 3]);
        // A re-requested image fills the gap; a duplicate is dropped.
        let (c, missing) = t.on_image_captured(msg(2, [0.0; 4]));
        assert!(c.is_some() && missing.is_empty());
        assert!(t.on_image_captured(msg(2, [0.0; 4])).0.is_none());
        // Zero quaternion and no attitude known: assumed nadir.
        assert_eq!(t.on_image_captured(msg(5, [0.0; 4])).0.unwrap().orientation_source, OrientationSource::Assumed);
    }

    #[test]
    fn feedback_prefers_an_earth_frame_gimbal() {
        let mut t = CaptureTracker::new();
        let fb = Feedback {
            time_usec: 1_700_000_000_000_000,
            position: pos(47.0, 20.0),
            attitude: Attitude::from_degrees(1.0, 2.0, 90.0),
            image_index: 7,
        };
        let c = t.on_feedback(fb.clone());
        assert_eq!(c.orientation_source, OrientationSource::VehicleNadir);
        assert_eq!(c.time_utc_us, Some(1_700_000_000_000_000));
        let gimbal = Rotation::from_attitude(Attitude::from_degrees(0.0, -90.0, 45.0));
        t.on_gimbal(gimbal, true);
        let c = t.on_feedback(fb);
        assert_eq!((c.orientation, c.orientation_source), (gimbal, OrientationSource::Gimbal));
    }

    #[test]
    fn a_reboot_clears_the_history() {
        let mut t = CaptureTracker::new();
        t.on_attitude(9000, Attitude::from_degrees(30.0, 0.0, 0.0));
        t.on_attitude(100, Attitude::from_degrees(0.0, 0.0, 0.0));
        let c = t.on_trigger(9_000_000, 0);
        assert!(c.vehicle_attitude.unwrap().roll_rad.abs() < 1e-12);
    }
}
