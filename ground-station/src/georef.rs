//! Georeferencing glue: a capture's pose plus a detection box -> a WGS84 ground position with its uncertainty,
//! grid cell and nearest address.
//!
//! The geometry (pixel -> ray -> flat ground, uncertainty from pose errors and the off-nadir angle) lives in
//! `mission_planner::camera`; this module picks the box point ([`BoxAnchor`]: the centre by default, right for
//! nadir photos; the bottom-centre for upright objects in oblique photos) and attaches the district lookups.
//! The ground is flat at the take-off altitude: the relative altitude is the height above ground.

use mission_planner::camera::{CameraPose, Intrinsics, PoseErrors, Rotation, pixel_to_ground, position_uncertainty_m};
use mission_planner::geo::GeoPoint;

use crate::config::BoxAnchor;
use crate::hazard::{Address, Position};
use crate::tracking::Locate;

/// Where the camera was and how it looked when a frame was taken.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CapturePose {
    /// The drone's WGS84 position.
    pub position: GeoPoint,
    /// Altitude above the take-off point, metres (the height above flat ground).
    pub relative_alt_m: f64,
    /// NED <- camera head (`CameraPose::nadir_mount`, `CameraPose::stabilised_gimbal`, or the capture
    /// quaternion).
    pub orientation: Rotation,
    /// Camera intrinsics at the resolution of the frame the boxes refer to.
    pub intrinsics: Intrinsics,
}

/// A detection box in frame pixels (top-left origin).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BoxPx {
    /// Left edge.
    pub x_min: f64,
    /// Top edge.
    pub y_min: f64,
    /// Right edge.
    pub x_max: f64,
    /// Bottom edge.
    pub y_max: f64,
}

impl BoxPx {
    /// The pixel the anchor picks.
    pub fn anchor(&self, anchor: BoxAnchor) -> (f64, f64) {
        let u = (self.x_min + self.x_max) / 2.0;
        match anchor {
            BoxAnchor::Centre => (u, (self.y_min + self.y_max) / 2.0),
            BoxAnchor::BottomCentre => (u, self.y_max),
        }
    }
}

/// A georeferenced detection.
#[derive(Debug, Clone, PartialEq)]
pub struct GroundFix {
    /// Position and one-sigma uncertainty.
    pub position: Position,
    /// Angle between the ray and straight down, degrees.
    pub off_nadir_deg: f64,
    /// Grid cell, if any.
    pub grid_cell: Option<String>,
    /// Nearest registered address within the limit, if any.
    pub address: Option<Address>,
}

/// Projects detection boxes onto the ground.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Georeferencer {
    /// Which point of a box is projected.
    pub anchor: BoxAnchor,
    /// One-sigma pose errors.
    pub errors: PoseErrors,
}

impl Georeferencer {
    /// The ground position of `bbox` in a frame taken at `pose`, or `None` when its anchor ray does not reach
    /// the ground (at or above the horizon, or a non-positive height).
    pub fn locate(&self, pose: &CapturePose, bbox: &BoxPx, district: &dyn Locate) -> Option<GroundFix> {
        let camera = CameraPose {
            position: pose.position,
            height_above_ground_m: pose.relative_alt_m,
            orientation: pose.orientation,
        };
        let (u, v) = bbox.anchor(self.anchor);
        let hit = pixel_to_ground(&pose.intrinsics, &camera, u, v)?;
        let uncertainty_m = position_uncertainty_m(pose.relative_alt_m, hit.off_nadir_rad, &self.errors);
        Some(GroundFix {
            position: Position::new(hit.point.lat_deg, hit.point.lon_deg, uncertainty_m),
            off_nadir_deg: hit.off_nadir_rad.to_degrees(),
            grid_cell: district.grid_cell(hit.point),
            address: district.nearest_address(hit.point),
        })
    }
}

#[cfg(test)]
mod tests {
    use mission_planner::camera::Attitude;
    use mission_planner::geo::{LocalFrame, geodesic_distance_m};

    use super::*;
    use crate::district::District;

    const DRONE: GeoPoint = GeoPoint::new(47.0005, 8.0005);

    /// 1000 x 1000 pixels, focal length 1000 px: a pixel 100 px off centre is 0.1 rad-ish off axis.
    fn intrinsics() -> Intrinsics {
        Intrinsics { width_px: 1000.0, height_px: 1000.0, fx_px: 1000.0, fy_px: 1000.0, cx_px: 500.0, cy_px: 500.0 }
    }

    fn nadir(yaw_deg: f64, alt_m: f64) -> CapturePose {
        CapturePose {
            position: DRONE,
            relative_alt_m: alt_m,
            orientation: CameraPose::nadir_mount(Attitude::from_degrees(0.0, 0.0, yaw_deg)),
            intrinsics: intrinsics(),
        }
    }

    fn boxed(u: f64, v: f64, half: f64) -> BoxPx {
        BoxPx { x_min: u - half, y_min: v - half, x_max: u + half, y_max: v + half }
    }

    fn georef(anchor: BoxAnchor) -> Georeferencer {
        Georeferencer { anchor, errors: PoseErrors { attitude_deg: 1.0, height_m: 1.0, horizontal_m: 1.5 } }
    }

    fn district() -> District {
        let cells = r#"{"type": "FeatureCollection", "features": [
          {"type": "Feature", "properties": {"id": "A1"}, "geometry": {"type": "Polygon",
            "coordinates": [[[8.000, 47.000], [8.001, 47.000], [8.001, 47.001], [8.000, 47.001], [8.000, 47.000]]]}}]}"#;
        let addresses = r#"{"type": "FeatureCollection", "features": [
          {"type": "Feature", "properties": {"building_id": "b1", "address": "Main Street 1"},
           "geometry": {"type": "Point", "coordinates": [8.0005, 47.0005]}}]}"#;
        District::from_geojson(Some(cells), Some(addresses), 50.0).unwrap()
    }

    #[test]
    fn nadir_centre_is_below_the_drone_with_cell_address_and_uncertainty() {
        let fix =
            georef(BoxAnchor::Centre).locate(&nadir(0.0, 100.0), &boxed(500.0, 500.0, 20.0), &district()).unwrap();
        assert!(geodesic_distance_m(fix.position.point(), DRONE) < 0.01);
        assert!(fix.off_nadir_deg.abs() < 1e-6);
        assert_eq!(fix.grid_cell.as_deref(), Some("A1"));
        assert_eq!(fix.address.unwrap().building_id, "b1");
        // Hand-computed: pointing 100 m * 1 degree = 1.745 m, GNSS 1.5 m, no height term at nadir.
        let expected = (100.0 * 1.0_f64.to_radians()).hypot(1.5);
        assert!((fix.position.uncertainty_m - expected).abs() < 1e-9);
    }

    #[test]
    fn an_off_centre_box_lands_at_the_hand_computed_distance() {
        // 100 px right of centre with f = 1000 px from 100 m: 10 m from the point below the drone.
        let fix =
            georef(BoxAnchor::Centre).locate(&nadir(0.0, 100.0), &boxed(600.0, 500.0, 10.0), &district()).unwrap();
        let d = geodesic_distance_m(fix.position.point(), DRONE);
        assert!((d - 10.0).abs() < 0.01, "{d}");
        assert!((fix.off_nadir_deg - 0.1_f64.atan().to_degrees()).abs() < 1e-6);
        // Off nadir the uncertainty grows.
        assert!(fix.position.uncertainty_m > (100.0 * 1.0_f64.to_radians()).hypot(1.5));
    }

    #[test]
    fn yaw_90_turns_the_offset_a_quarter() {
        let frame = LocalFrame::new(DRONE);
        let north =
            georef(BoxAnchor::Centre).locate(&nadir(0.0, 100.0), &boxed(600.0, 500.0, 10.0), &District::empty());
        let east =
            georef(BoxAnchor::Centre).locate(&nadir(90.0, 100.0), &boxed(600.0, 500.0, 10.0), &District::empty());
        let a = frame.to_local(north.unwrap().position.point());
        let b = frame.to_local(east.unwrap().position.point());
        // Rotating the drone 90 degrees clockwise rotates the ground offset 90 degrees clockwise: (e, n) -> (n, -e).
        assert!((b.east_m - a.north_m).abs() < 0.01 && (b.north_m + a.east_m).abs() < 0.01, "{a:?} -> {b:?}");
    }

    #[test]
    fn high_altitude_scales_the_offset_and_the_uncertainty() {
        let low = georef(BoxAnchor::Centre)
            .locate(&nadir(0.0, 50.0), &boxed(600.0, 500.0, 10.0), &District::empty())
            .unwrap();
        let high = georef(BoxAnchor::Centre)
            .locate(&nadir(0.0, 400.0), &boxed(600.0, 500.0, 10.0), &District::empty())
            .unwrap();
        let d_low = geodesic_distance_m(low.position.point(), DRONE);
        let d_high = geodesic_distance_m(high.position.point(), DRONE);
        assert!((d_low - 5.0).abs() < 0.01 && (d_high - 40.0).abs() < 0.01, "{d_low} {d_high}");
        assert!(high.position.uncertainty_m > 4.0 * low.position.uncertainty_m / 2.0);
    }

    #[test]
    fn bottom_centre_anchor_uses_the_bottom_edge() {
        let bbox = BoxPx { x_min: 450.0, y_min: 400.0, x_max: 550.0, y_max: 500.0 };
        assert_eq!(bbox.anchor(BoxAnchor::Centre), (500.0, 450.0));
        assert_eq!(bbox.anchor(BoxAnchor::BottomCentre), (500.0, 500.0));
        let fix = georef(BoxAnchor::BottomCentre).locate(&nadir(0.0, 100.0), &bbox, &District::empty()).unwrap();
        assert!(geodesic_distance_m(fix.position.point(), DRONE) < 0.01);
    }

    #[test]
    fn rays_above_the_horizon_or_without_height_do_not_locate() {
        let level = CapturePose {
            orientation: CameraPose::stabilised_gimbal(Attitude::from_degrees(0.0, 10.0, 0.0)),
            ..nadir(0.0, 100.0)
        };
        assert!(georef(BoxAnchor::Centre).locate(&level, &boxed(500.0, 500.0, 5.0), &District::empty()).is_none());
        assert!(
            georef(BoxAnchor::Centre).locate(&nadir(0.0, 0.0), &boxed(500.0, 500.0, 5.0), &District::empty()).is_none()
        );
    }
}
