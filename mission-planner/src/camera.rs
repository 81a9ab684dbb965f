//! The pinhole camera model: footprint, ground sample distance, and pixel <-> ground projection.
//!
//! Frames and conventions (the MAVLink ones):
//! - The world frame is local NED (north, east, down) at the camera's position.
//! - A *camera head* frame is like a vehicle body frame: x forward along the optical axis, y right, z down.
//!   Its attitude is a rotation NED <- head, given as roll/pitch/yaw (ZYX) or a quaternion. This is what
//!   MAVLink `CAMERA_IMAGE_CAPTURED.q` carries (zero rotation = looking forward, level) and what a gimbal
//!   reports; a nadir camera has pitch -90 degrees.
//! - The *image* frame is the optical frame: x right, y down, z along the optical axis; pixel (0, 0) is the
//!   top-left corner of the top-left pixel. For a nadir camera on a level drone the top of the image faces the
//!   drone's heading.

use serde::{Deserialize, Serialize};

use crate::error::PlanError;
use crate::geo::{GeoPoint, LocalFrame, LocalPoint};

/// A camera as its data sheet describes it. Either the sensor size and focal length, or a horizontal field of
/// view, fixes the intrinsics.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CameraSpec {
    /// A human name, e.g. "DJI Zenmuse P1 35 mm".
    #[serde(default)]
    pub name: String,
    /// Image width in pixels.
    pub image_width_px: u32,
    /// Image height in pixels.
    pub image_height_px: u32,
    /// Sensor width in millimetres (with `focal_length_mm`).
    #[serde(default)]
    pub sensor_width_mm: Option<f64>,
    /// Sensor height in millimetres (optional; square pixels are assumed when missing).
    #[serde(default)]
    pub sensor_height_mm: Option<f64>,
    /// Focal length in millimetres (with `sensor_width_mm`).
    #[serde(default)]
    pub focal_length_mm: Option<f64>,
    /// Horizontal field of view in degrees (instead of sensor size and focal length).
    #[serde(default)]
    pub horizontal_fov_deg: Option<f64>,
    /// Minimum time between two photos the camera can take, in seconds (0 = no limit).
    #[serde(default)]
    pub min_trigger_interval_s: f64,
}

impl CameraSpec {
    /// The pinhole intrinsics for this camera.
    ///
    /// # Errors
    /// [`PlanError::InvalidCamera`] when the image size is zero, when neither a sensor + focal length nor a
    /// field of view is given, or when any of them is not a positive finite number (a zero focal length, say).
    pub fn intrinsics(&self) -> Result<Intrinsics, PlanError> {
        let invalid = |reason: String| PlanError::InvalidCamera { name: self.name.clone(), reason };
        if self.image_width_px == 0 || self.image_height_px == 0 {
            return Err(invalid("image_width_px and image_height_px must be above zero".into()));
        }
        let width = f64::from(self.image_width_px);
        let height = f64::from(self.image_height_px);
        let positive = |value: f64, what: &str| {
            if value.is_finite() && value > 0.0 {
                Ok(value)
            } else {
                Err(invalid(format!("{what} must be a positive number, got {value}")))
            }
        };
        let (fx, fy) = match (self.sensor_width_mm, self.focal_length_mm, self.horizontal_fov_deg) {
            (Some(sensor_w), Some(focal), _) => {
                let sensor_w = positive(sensor_w, "sensor_width_mm")?;
                let focal = positive(focal, "focal_length_mm")?;
                let fx = focal / sensor_w * width;
                let fy = match self.sensor_height_mm {
                    Some(sensor_h) => focal / positive(sensor_h, "sensor_height_mm")? * height,
                    None => fx,
                };
                (fx, fy)
            }
            (_, _, Some(fov)) => {
                let fov = positive(fov, "horizontal_fov_deg")?;
                if fov >= 179.0 {
                    return Err(invalid(format!("horizontal_fov_deg must be below 179, got {fov}")));
                }
                let fx = width / 2.0 / (fov.to_radians() / 2.0).tan();
                (fx, fx)
            }
            _ => {
                return Err(invalid("give sensor_width_mm and focal_length_mm, or horizontal_fov_deg".into()));
            }
        };
        Ok(Intrinsics {
            width_px: width,
            height_px: height,
            fx_px: fx,
            fy_px: fy,
            cx_px: width / 2.0,
            cy_px: height / 2.0,
        })
    }
}

impl CameraSpec {
    /// Parses a camera profile from TOML (the fields of [`CameraSpec`], e.g. `image_width_px = 5280`).
    ///
    /// # Errors
    /// [`PlanError::Format`] for bad TOML or unknown fields; [`PlanError::InvalidCamera`] when the profile
    /// does not describe a camera (see [`CameraSpec::intrinsics`]).
    pub fn from_toml_str(text: &str) -> Result<Self, PlanError> {
        let spec: CameraSpec = toml::from_str(text)
            .map_err(|e| PlanError::Format { what: "camera profile".into(), reason: e.to_string() })?;
        spec.intrinsics()?;
        Ok(spec)
    }

    /// Reads a camera profile TOML file.
    ///
    /// # Errors
    /// The file cannot be read, or as [`CameraSpec::from_toml_str`].
    pub fn read_toml(path: &std::path::Path) -> Result<Self, PlanError> {
        Self::from_toml_str(&crate::area::read_text(path)?)
    }
}

/// Pinhole intrinsics in pixels.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Intrinsics {
    /// Image width.
    pub width_px: f64,
    /// Image height.
    pub height_px: f64,
    /// Focal length along x, pixels.
    pub fx_px: f64,
    /// Focal length along y, pixels.
    pub fy_px: f64,
    /// Principal point x.
    pub cx_px: f64,
    /// Principal point y.
    pub cy_px: f64,
}

impl Intrinsics {
    /// Ground sample distance (metres per pixel, across the image) for a nadir photo `height_m` above ground.
    pub fn gsd_m(&self, height_m: f64) -> f64 {
        height_m / self.fx_px
    }

    /// The height above ground that gives `gsd_m` metres per pixel for a nadir photo.
    pub fn height_for_gsd_m(&self, gsd_m: f64) -> f64 {
        gsd_m * self.fx_px
    }

    /// Ground footprint (across the image, along the image) in metres of a nadir photo at `height_m`.
    pub fn footprint_m(&self, height_m: f64) -> (f64, f64) {
        (self.width_px * height_m / self.fx_px, self.height_px * height_m / self.fy_px)
    }

    /// Intrinsics for the same camera with the image scaled to `width_px` x `height_px` (a thumbnail, a
    /// rendered preview).
    pub fn scaled_to(&self, width_px: u32, height_px: u32) -> Intrinsics {
        let sx = f64::from(width_px) / self.width_px;
        let sy = f64::from(height_px) / self.height_px;
        Intrinsics {
            width_px: f64::from(width_px),
            height_px: f64::from(height_px),
            fx_px: self.fx_px * sx,
            fy_px: self.fy_px * sy,
            cx_px: self.cx_px * sx,
            cy_px: self.cy_px * sy,
        }
    }
}

/// Roll, pitch and yaw (ZYX, radians) of a vehicle or camera head relative to NED.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct Attitude {
    /// Roll, radians, right wing down positive.
    pub roll_rad: f64,
    /// Pitch, radians, nose up positive.
    pub pitch_rad: f64,
    /// Yaw, radians, clockwise from north.
    pub yaw_rad: f64,
}

impl Attitude {
    /// An attitude from degrees.
    pub fn from_degrees(roll_deg: f64, pitch_deg: f64, yaw_deg: f64) -> Self {
        Self { roll_rad: roll_deg.to_radians(), pitch_rad: pitch_deg.to_radians(), yaw_rad: yaw_deg.to_radians() }
    }
}

/// A rotation matrix (rows of a 3x3 matrix) mapping vectors from one frame into another.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rotation([[f64; 3]; 3]);

impl Rotation {
    /// The identity.
    pub const IDENTITY: Rotation = Rotation([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 1.0]]);

    /// NED <- body for a ZYX (yaw, then pitch, then roll) attitude.
    pub fn from_attitude(attitude: Attitude) -> Self {
        let (sr, cr) = attitude.roll_rad.sin_cos();
        let (sp, cp) = attitude.pitch_rad.sin_cos();
        let (sy, cy) = attitude.yaw_rad.sin_cos();
        Rotation([
            [cp * cy, sr * sp * cy - cr * sy, cr * sp * cy + sr * sy],
            [cp * sy, sr * sp * sy + cr * cy, cr * sp * sy - sr * cy],
            [-sp, sr * cp, cr * cp],
        ])
    }

    /// From a unit quaternion (w, x, y, z), as MAVLink sends attitude. A zero or non-finite quaternion (MAVLink
    /// sends all zeros for "unknown") gives `None`.
    pub fn from_quaternion(q: [f64; 4]) -> Option<Self> {
        let norm = q.iter().map(|c| c * c).sum::<f64>().sqrt();
        if !norm.is_finite() || norm < 1e-9 {
            return None;
        }
        let [w, x, y, z] = q.map(|c| c / norm);
        Some(Rotation([
            [1.0 - 2.0 * (y * y + z * z), 2.0 * (x * y - w * z), 2.0 * (x * z + w * y)],
            [2.0 * (x * y + w * z), 1.0 - 2.0 * (x * x + z * z), 2.0 * (y * z - w * x)],
            [2.0 * (x * z - w * y), 2.0 * (y * z + w * x), 1.0 - 2.0 * (x * x + y * y)],
        ]))
    }

    /// The quaternion (w, x, y, z) of this rotation.
    pub fn to_quaternion(&self) -> [f64; 4] {
        let m = &self.0;
        let trace = m[0][0] + m[1][1] + m[2][2];
        let q = if trace > 0.0 {
            let s = (trace + 1.0).sqrt() * 2.0;
            [0.25 * s, (m[2][1] - m[1][2]) / s, (m[0][2] - m[2][0]) / s, (m[1][0] - m[0][1]) / s]
        } else if m[0][0] > m[1][1] && m[0][0] > m[2][2] {
            let s = (1.0 + m[0][0] - m[1][1] - m[2][2]).sqrt() * 2.0;
            [(m[2][1] - m[1][2]) / s, 0.25 * s, (m[0][1] + m[1][0]) / s, (m[0][2] + m[2][0]) / s]
        } else if m[1][1] > m[2][2] {
            let s = (1.0 + m[1][1] - m[0][0] - m[2][2]).sqrt() * 2.0;
            [(m[0][2] - m[2][0]) / s, (m[0][1] + m[1][0]) / s, 0.25 * s, (m[1][2] + m[2][1]) / s]
        } else {
            let s = (1.0 + m[2][2] - m[0][0] - m[1][1]).sqrt() * 2.0;
            [(m[1][0] - m[0][1]) / s, (m[0][2] + m[2][0]) / s, (m[1][2] + m[2][1]) / s, 0.25 * s]
        };
        if q[0] < 0.0 { q.map(|c| -c) } else { q }
    }

    /// The attitude (ZYX Euler angles) of this rotation.
    pub fn to_attitude(&self) -> Attitude {
        let m = &self.0;
        Attitude {
            roll_rad: m[2][1].atan2(m[2][2]),
            pitch_rad: (-m[2][0]).clamp(-1.0, 1.0).asin(),
            yaw_rad: m[1][0].atan2(m[0][0]),
        }
    }

    /// `self * other`: first `other`, then `self`.
    pub fn then_from(&self, other: &Rotation) -> Rotation {
        let mut out = [[0.0; 3]; 3];
        for (i, row) in out.iter_mut().enumerate() {
            for (j, cell) in row.iter_mut().enumerate() {
                *cell = (0..3).map(|k| self.0[i][k] * other.0[k][j]).sum();
            }
        }
        Rotation(out)
    }

    /// The inverse rotation.
    pub fn transpose(&self) -> Rotation {
        let m = &self.0;
        Rotation([[m[0][0], m[1][0], m[2][0]], [m[0][1], m[1][1], m[2][1]], [m[0][2], m[1][2], m[2][2]]])
    }

    /// Rotates a vector.
    pub fn apply(&self, v: [f64; 3]) -> [f64; 3] {
        self.0.map(|row| row[0] * v[0] + row[1] * v[1] + row[2] * v[2])
    }
}

/// Where a camera was and how it looked when it took a photo.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CameraPose {
    /// The camera's WGS84 position.
    pub position: GeoPoint,
    /// Height of the camera above the ground it looks at, metres (relative altitude over flat ground, or
    /// altitude minus terrain elevation).
    pub height_above_ground_m: f64,
    /// NED <- camera head.
    pub orientation: Rotation,
}

impl CameraPose {
    /// The head orientation of a camera fixed to the vehicle and pointing straight down (nadir mount).
    pub fn nadir_mount(vehicle: Attitude) -> Rotation {
        Rotation::from_attitude(vehicle).then_from(&Rotation::from_attitude(Attitude::from_degrees(0.0, -90.0, 0.0)))
    }

    /// The head orientation of a camera on a gimbal that holds roll/pitch in the earth frame and whose yaw
    /// is `yaw_rad` in the earth frame (how DJI and MAVLink gimbal v2 report absolute yaw).
    pub fn stabilised_gimbal(gimbal: Attitude) -> Rotation {
        Rotation::from_attitude(gimbal)
    }
}

/// A pixel projected onto the ground.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GroundHit {
    /// WGS84 position of the ground point.
    pub point: GeoPoint,
    /// Offset from the point below the camera, metres east and north.
    pub offset: LocalPoint,
    /// Angle between the ray and straight down, radians.
    pub off_nadir_rad: f64,
    /// Distance along the ray from the camera to the ground, metres.
    pub slant_range_m: f64,
}

/// Rays closer to the horizon than this (about 85 degrees off nadir) are not projected: the ground point
/// would be kilometres away and meaningless.
const MAX_OFF_NADIR_RAD: f64 = 85.0 * std::f64::consts::PI / 180.0;

/// Projects pixel (`u`, `v`) (pixel units, top-left origin, fractional values allowed) onto flat ground
/// `pose.height_above_ground_m` below the camera. `None` when the ray does not reach the ground (at or above
/// the horizon) or the height is not positive.
pub fn pixel_to_ground(intrinsics: &Intrinsics, pose: &CameraPose, u: f64, v: f64) -> Option<GroundHit> {
    if !(pose.height_above_ground_m.is_finite() && pose.height_above_ground_m > 0.0) {
        return None;
    }
    let image = [(u - intrinsics.cx_px) / intrinsics.fx_px, (v - intrinsics.cy_px) / intrinsics.fy_px, 1.0];
    // Optical (right, down, forward) -> head (forward, right, down).
    let head = [image[2], image[0], image[1]];
    let ned = pose.orientation.apply(head);
    let norm = (ned[0] * ned[0] + ned[1] * ned[1] + ned[2] * ned[2]).sqrt();
    let off_nadir = (ned[2] / norm).clamp(-1.0, 1.0).acos();
    if ned[2] <= 0.0 || off_nadir > MAX_OFF_NADIR_RAD {
        return None;
    }
    let t = pose.height_above_ground_m / ned[2];
    let offset = LocalPoint::new(ned[1] * t, ned[0] * t);
    let frame = LocalFrame::new(pose.position);
    Some(GroundHit { point: frame.to_geo(offset), offset, off_nadir_rad: off_nadir, slant_range_m: norm * t })
}

/// Projects a ground point, given as metres east/north of the point below the camera, into the image.
/// Returns pixel coordinates (which may lie outside the image), or `None` when the point is behind the camera.
pub fn ground_offset_to_pixel(intrinsics: &Intrinsics, pose: &CameraPose, offset: LocalPoint) -> Option<(f64, f64)> {
    let ned = [offset.north_m, offset.east_m, pose.height_above_ground_m];
    let head = pose.orientation.transpose().apply(ned);
    // Head (forward, right, down) -> optical (right, down, forward).
    let (x, y, z) = (head[1], head[2], head[0]);
    (z > 1e-9).then(|| (intrinsics.cx_px + intrinsics.fx_px * x / z, intrinsics.cy_px + intrinsics.fy_px * y / z))
}

/// Projects a WGS84 ground point into the image (see [`ground_offset_to_pixel`]).
pub fn ground_to_pixel(intrinsics: &Intrinsics, pose: &CameraPose, point: GeoPoint) -> Option<(f64, f64)> {
    ground_offset_to_pixel(intrinsics, pose, LocalFrame::new(pose.position).to_local(point))
}

/// One-sigma errors of the pose that a georeferenced position inherits.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PoseErrors {
    /// Attitude (camera pointing) error, degrees.
    pub attitude_deg: f64,
    /// Height-above-ground error, metres.
    pub height_m: f64,
    /// Horizontal position (GNSS) error, metres.
    pub horizontal_m: f64,
}

impl Default for PoseErrors {
    /// Typical for a small multicopter with a consumer GNSS and a gimbal: 1 degree, 1 m, 1.5 m.
    fn default() -> Self {
        Self { attitude_deg: 1.0, height_m: 1.0, horizontal_m: 1.5 }
    }
}

/// The one-sigma horizontal uncertainty, in metres, of a ground point seen `off_nadir_rad` off nadir from
/// `height_m` above ground. A pointing error moves the point by h * dtheta / cos^2(theta) along the ray's
/// azimuth; a height error by dh * tan(theta); GNSS error adds directly. Combined as independent errors.
pub fn position_uncertainty_m(height_m: f64, off_nadir_rad: f64, errors: &PoseErrors) -> f64 {
    let cos = off_nadir_rad.cos().max(0.05);
    let pointing = height_m * errors.attitude_deg.to_radians() / (cos * cos);
    let height = errors.height_m * off_nadir_rad.tan().abs();
    (pointing * pointing + height * height + errors.horizontal_m * errors.horizontal_m).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geo::geodesic_distance_m;

    fn camera() -> Intrinsics {
        // A 4000 x 3000 camera with a 13.2 x 8.8 mm sensor and 8.8 mm lens (a 1" survey camera).
        CameraSpec {
            name: "test".into(),
            image_width_px: 4000,
            image_height_px: 3000,
            sensor_width_mm: Some(13.2),
            sensor_height_mm: Some(9.9),
            focal_length_mm: Some(8.8),
            horizontal_fov_deg: None,
            min_trigger_interval_s: 0.0,
        }
        .intrinsics()
        .unwrap()
    }

    fn pose(height: f64, head: Rotation) -> CameraPose {
        CameraPose { position: GeoPoint::new(22.55, 113.88), height_above_ground_m: height, orientation: head }
    }

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() < tol
    }

    #[test]
    fn gsd_and_footprint_follow_the_data_sheet() {
        let cam = camera();
        // GSD = sensor_w * h / (f * w) = 13.2 * 100 / (8.8 * 4000) = 0.0375 m.
        assert!(close(cam.gsd_m(100.0), 0.0375, 1e-9));
        let (w, h) = cam.footprint_m(100.0);
        assert!(close(w, 150.0, 1e-9) && close(h, 112.5, 1e-9));
        assert!(close(cam.height_for_gsd_m(0.0375), 100.0, 1e-9));
    }

    #[test]
    fn reads_a_toml_profile() {
        let spec = CameraSpec::from_toml_str(
            "name = \"M3E\"\nimage_width_px = 5280\nimage_height_px = 3956\nsensor_width_mm = 17.3\n\
             sensor_height_mm = 13.0\nfocal_length_mm = 12.29\n",
        )
        .unwrap();
        assert_eq!(spec.image_width_px, 5280);
        assert!(
            CameraSpec::from_toml_str(
                "image_width_px = 1\nimage_height_px = 1\nfocal_length_mm = 0.0\nsensor_width_mm = 1.0"
            )
            .unwrap_err()
            .to_string()
            .contains("focal_length_mm")
        );
        assert!(CameraSpec::from_toml_str("bogus = 1").is_err());
    }

    #[test]
    fn zero_focal_length_is_a_clear_error() {
        let mut spec = CameraSpec {
            name: "bad".into(),
            image_width_px: 100,
            image_height_px: 100,
            sensor_width_mm: Some(10.0),
            sensor_height_mm: None,
            focal_length_mm: Some(0.0),
            horizontal_fov_deg: None,
            min_trigger_interval_s: 0.0,
        };
        let err = spec.intrinsics().unwrap_err().to_string();
        assert!(err.contains("focal_length_mm"), "{err}");
        spec.focal_length_mm = None;
        assert!(spec.intrinsics().unwrap_err().to_string().contains("horizontal_fov_deg"));
    }

    #[test]
    fn nadir_centre_pixel_lands_below_the_camera() {
        let cam = camera();
        let p = pose(100.0, CameraPose::nadir_mount(Attitude::default()));
        let hit = pixel_to_ground(&cam, &p, 2000.0, 1500.0).unwrap();
        assert!(hit.offset.distance_to(&LocalPoint::default()) < 1e-6);
        assert!(close(hit.off_nadir_rad, 0.0, 1e-9));
        assert!(close(hit.slant_range_m, 100.0, 1e-9));
    }

    #[test]
    fn nadir_corners_match_the_footprint_and_image_top_faces_heading() {
        let cam = camera();
        let p = pose(100.0, CameraPose::nadir_mount(Attitude::default()));
        // Top-left pixel corner: 75 m west, 56.25 m north when heading north.
        let hit = pixel_to_ground(&cam, &p, 0.0, 0.0).unwrap();
        assert!(close(hit.offset.east_m, -75.0, 1e-6) && close(hit.offset.north_m, 56.25, 1e-6), "{hit:?}");
        // Heading east (yaw 90): the top of the image faces east, the left faces north.
        let p = pose(100.0, CameraPose::nadir_mount(Attitude::from_degrees(0.0, 0.0, 90.0)));
        let hit = pixel_to_ground(&cam, &p, 0.0, 0.0).unwrap();
        assert!(close(hit.offset.east_m, 56.25, 1e-6) && close(hit.offset.north_m, 75.0, 1e-6), "{hit:?}");
        // The WGS84 point is that far from the camera.
        let d = geodesic_distance_m(p.position, hit.point);
        assert!(close(d, 56.25_f64.hypot(75.0), 0.01), "{d}");
    }

    #[test]
    fn thirty_degree_tilt_moves_the_centre_by_h_tan_30() {
        let cam = camera();
        // Gimbal pitched to -60 (30 degrees off nadir), looking north.
        let p = pose(80.0, CameraPose::stabilised_gimbal(Attitude::from_degrees(0.0, -60.0, 0.0)));
        let hit = pixel_to_ground(&cam, &p, 2000.0, 1500.0).unwrap();
        assert!(close(hit.offset.north_m, 80.0 * 30f64.to_radians().tan(), 1e-6), "{hit:?}");
        assert!(close(hit.offset.east_m, 0.0, 1e-6));
        assert!(close(hit.off_nadir_rad.to_degrees(), 30.0, 1e-9));
        assert!(close(hit.slant_range_m, 80.0 / 30f64.to_radians().cos(), 1e-6));
        // The same tilt from the vehicle pitching nose-up 30 degrees with a fixed nadir camera: nose up turns
        // the belly (and the camera) forward, so it also looks north.
        let p = pose(80.0, CameraPose::nadir_mount(Attitude::from_degrees(0.0, 30.0, 0.0)));
        let hit = pixel_to_ground(&cam, &p, 2000.0, 1500.0).unwrap();
        assert!(close(hit.offset.north_m, 80.0 * 30f64.to_radians().tan(), 1e-6), "{hit:?}");
        // Nose down 30 degrees looks backwards (south).
        let p = pose(80.0, CameraPose::nadir_mount(Attitude::from_degrees(0.0, -30.0, 0.0)));
        let hit = pixel_to_ground(&cam, &p, 2000.0, 1500.0).unwrap();
        assert!(close(hit.offset.north_m, -80.0 * 30f64.to_radians().tan(), 1e-6), "{hit:?}");
    }

    #[test]
    fn high_altitude_scales_linearly() {
        let cam = camera();
        let low =
            pixel_to_ground(&cam, &pose(50.0, CameraPose::nadir_mount(Attitude::default())), 3000.0, 500.0).unwrap();
        let high =
            pixel_to_ground(&cam, &pose(500.0, CameraPose::nadir_mount(Attitude::default())), 3000.0, 500.0).unwrap();
        assert!(close(high.offset.east_m, 10.0 * low.offset.east_m, 1e-6));
        assert!(close(high.offset.north_m, 10.0 * low.offset.north_m, 1e-6));
        // 1000 px right of centre at 500 m: 1000 * 500 / fx = 1000 * 500 / 2666.67 = 187.5 m east.
        assert!(close(high.offset.east_m, 187.5, 1e-6));
    }

    #[test]
    fn ray_above_the_horizon_does_not_hit() {
        let cam = camera();
        let p = pose(80.0, CameraPose::stabilised_gimbal(Attitude::from_degrees(0.0, 10.0, 0.0)));
        assert!(pixel_to_ground(&cam, &p, 2000.0, 1500.0).is_none());
        assert!(pixel_to_ground(&cam, &pose(0.0, CameraPose::nadir_mount(Attitude::default())), 1.0, 1.0).is_none());
    }

    #[test]
    fn projection_round_trips_for_tilted_rolled_yawed_cameras() {
        let cam = camera();
        for (r, p, y) in [(0.0, -90.0, 0.0), (5.0, -70.0, 33.0), (-10.0, -45.0, 250.0), (0.0, -89.0, 90.0)] {
            let pose = pose(60.0, CameraPose::stabilised_gimbal(Attitude::from_degrees(r, p, y)));
            for (u, v) in [(0.0, 0.0), (4000.0, 3000.0), (1234.5, 2222.0)] {
                let Some(hit) = pixel_to_ground(&cam, &pose, u, v) else { continue };
                let (u2, v2) = ground_to_pixel(&cam, &pose, hit.point).unwrap();
                assert!(close(u, u2, 1e-3) && close(v, v2, 1e-3), "({u},{v}) -> ({u2},{v2})");
            }
        }
    }

    #[test]
    fn quaternion_and_euler_agree() {
        let att = Attitude::from_degrees(3.0, -60.0, 120.0);
        let r = Rotation::from_attitude(att);
        let q = r.to_quaternion();
        let r2 = Rotation::from_quaternion(q).unwrap();
        let back = r2.to_attitude();
        assert!(close(back.roll_rad, att.roll_rad, 1e-9));
        assert!(close(back.pitch_rad, att.pitch_rad, 1e-9));
        assert!(close(back.yaw_rad, att.yaw_rad, 1e-9));
        assert!(Rotation::from_quaternion([0.0; 4]).is_none());
    }

    #[test]
    fn uncertainty_grows_off_nadir_and_with_height() {
        let e = PoseErrors::default();
        let nadir = position_uncertainty_m(100.0, 0.0, &e);
        // 100 m * 1 deg = 1.745 m pointing, 1.5 m GNSS.
        assert!(close(nadir, (1.745_f64.powi(2) + 1.5_f64.powi(2)).sqrt(), 0.01), "{nadir}");
        assert!(position_uncertainty_m(100.0, 0.5, &e) > nadir);
        assert!(position_uncertainty_m(200.0, 0.0, &e) > nadir);
    }
}
