//! WGS84 positions and a local tangent plane (east, north) around an area.
//!
//! Everything stored or exchanged is WGS84 (`GeoPoint`). Geometry that needs metres (coverage, routing,
//! georeferencing) works in a [`LocalFrame`]: an east-north-up tangent plane at an origin, exact through ECEF,
//! whose east/north plane distances match geodesic distances to a few centimetres over 20 km.

use serde::{Deserialize, Serialize};

/// WGS84 semi-major axis.
const WGS84_A_M: f64 = 6_378_137.0;
/// WGS84 flattening.
const WGS84_F: f64 = 1.0 / 298.257_223_563;
/// First eccentricity squared.
const WGS84_E2: f64 = WGS84_F * (2.0 - WGS84_F);

/// A WGS84 position on the ground (latitude and longitude in degrees).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GeoPoint {
    /// Latitude, degrees north.
    pub lat_deg: f64,
    /// Longitude, degrees east.
    pub lon_deg: f64,
}

impl GeoPoint {
    /// A point from latitude and longitude in degrees.
    pub const fn new(lat_deg: f64, lon_deg: f64) -> Self {
        Self { lat_deg, lon_deg }
    }

    /// True when both coordinates are finite and within their ranges.
    pub fn is_valid(&self) -> bool {
        self.lat_deg.is_finite()
            && self.lon_deg.is_finite()
            && (-90.0..=90.0).contains(&self.lat_deg)
            && (-180.0..=180.0).contains(&self.lon_deg)
    }

    /// Latitude as the integer degrees * 1e7 that MAVLink `*_INT` messages use.
    pub fn lat_e7(&self) -> i32 {
        degrees_to_e7(self.lat_deg)
    }

    /// Longitude as the integer degrees * 1e7 that MAVLink `*_INT` messages use.
    pub fn lon_e7(&self) -> i32 {
        degrees_to_e7(self.lon_deg)
    }

    /// A point from MAVLink degrees * 1e7 integers.
    pub fn from_e7(lat_e7: i32, lon_e7: i32) -> Self {
        Self::new(f64::from(lat_e7) * 1e-7, f64::from(lon_e7) * 1e-7)
    }
}

#[allow(clippy::cast_possible_truncation)] // clamped to the i32 range first
fn degrees_to_e7(deg: f64) -> i32 {
    (deg * 1e7).round().clamp(f64::from(i32::MIN), f64::from(i32::MAX)) as i32
}

/// A point in a local tangent plane, metres east and north of the frame's origin.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize, Deserialize)]
pub struct LocalPoint {
    /// Metres east of the origin.
    pub east_m: f64,
    /// Metres north of the origin.
    pub north_m: f64,
}

impl LocalPoint {
    /// A local point from east and north metres.
    pub const fn new(east_m: f64, north_m: f64) -> Self {
        Self { east_m, north_m }
    }

    /// Straight-line distance in the plane.
    pub fn distance_to(&self, other: &LocalPoint) -> f64 {
        (self.east_m - other.east_m).hypot(self.north_m - other.north_m)
    }
}

/// An east-north-up tangent plane at a WGS84 origin on the ellipsoid.
///
/// Points are projected along the origin's up axis onto the plane; `to_geo` inverts this exactly for points
/// on the ellipsoid surface (height 0), so round trips are lossless to well under a millimetre.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct LocalFrame {
    origin: GeoPoint,
    origin_ecef: [f64; 3],
    /// Rows: east, north, up unit vectors in ECEF.
    enu_axes: [[f64; 3]; 3],
}

impl LocalFrame {
    /// A tangent plane whose origin is `origin`.
    pub fn new(origin: GeoPoint) -> Self {
        let lat = origin.lat_deg.to_radians();
        let lon = origin.lon_deg.to_radians();
        let (sin_lat, cos_lat) = lat.sin_cos();
        let (sin_lon, cos_lon) = lon.sin_cos();
        Self {
            origin,
            origin_ecef: geodetic_to_ecef(origin, 0.0),
            enu_axes: [
                [-sin_lon, cos_lon, 0.0],
                [-sin_lat * cos_lon, -sin_lat * sin_lon, cos_lat],
                [cos_lat * cos_lon, cos_lat * sin_lon, sin_lat],
            ],
        }
    }

    /// A frame centred on the mean of `points` (a good origin for an area); `None` for no points.
    pub fn around(points: impl IntoIterator<Item = GeoPoint>) -> Option<Self> {
        let (mut lat, mut lon, mut n) = (0.0, 0.0, 0.0_f64);
        for p in points {
            lat += p.lat_deg;
            lon += p.lon_deg;
            n += 1.0;
        }
        (n > 0.0).then(|| Self::new(GeoPoint::new(lat / n, lon / n)))
    }

    /// The frame's origin.
    pub fn origin(&self) -> GeoPoint {
        self.origin
    }

    /// Projects a WGS84 point (on the ellipsoid) into the plane.
    pub fn to_local(&self, point: GeoPoint) -> LocalPoint {
        let [e, n, _] = self.ecef_to_enu(geodetic_to_ecef(point, 0.0));
        LocalPoint::new(e, n)
    }

    /// The WGS84 point (on the ellipsoid) that projects to `local`.
    pub fn to_geo(&self, local: LocalPoint) -> GeoPoint {
        // The surface point lies below the plane by about d^2 / 2R; refine `up` until its height is zero.
        let radius = WGS84_A_M;
        let mut up = -(local.east_m.powi(2) + local.north_m.powi(2)) / (2.0 * radius);
        let mut geo = self.origin;
        for _ in 0..4 {
            let ecef = self.enu_to_ecef([local.east_m, local.north_m, up]);
            let (point, height) = ecef_to_geodetic(ecef);
            geo = point;
            // The plane's up axis and the local normal differ by d/R: a height error maps to `up` 1:1 to
            // within that, so this converges quadratically.
            up -= height;
            if height.abs() < 1e-6 {
                break;
            }
        }
        geo
    }

    fn ecef_to_enu(&self, ecef: [f64; 3]) -> [f64; 3] {
        let d = [ecef[0] - self.origin_ecef[0], ecef[1] - self.origin_ecef[1], ecef[2] - self.origin_ecef[2]];
        self.enu_axes.map(|axis| axis[0] * d[0] + axis[1] * d[1] + axis[2] * d[2])
    }

    fn enu_to_ecef(&self, enu: [f64; 3]) -> [f64; 3] {
        let mut out = self.origin_ecef;
        for (axis, value) in self.enu_axes.iter().zip(enu) {
            for (o, a) in out.iter_mut().zip(axis) {
                *o += a * value;
            }
        }
        out
    }
}

fn geodetic_to_ecef(point: GeoPoint, height_m: f64) -> [f64; 3] {
    let lat = point.lat_deg.to_radians();
    let lon = point.lon_deg.to_radians();
    let (sin_lat, cos_lat) = lat.sin_cos();
    let n = WGS84_A_M / (1.0 - WGS84_E2 * sin_lat * sin_lat).sqrt();
    [
        (n + height_m) * cos_lat * lon.cos(),
        (n + height_m) * cos_lat * lon.sin(),
        (n * (1.0 - WGS84_E2) + height_m) * sin_lat,
    ]
}

fn ecef_to_geodetic(ecef: [f64; 3]) -> (GeoPoint, f64) {
    let [x, y, z] = ecef;
    let p = x.hypot(y);
    let lon = y.atan2(x);
    // Fixed-point iteration on latitude; converges to below 1e-12 rad in a few steps near the surface.
    let mut lat = z.atan2(p * (1.0 - WGS84_E2));
    let mut height = 0.0;
    for _ in 0..6 {
        let sin_lat = lat.sin();
        let n = WGS84_A_M / (1.0 - WGS84_E2 * sin_lat * sin_lat).sqrt();
        height = p / lat.cos() - n;
        lat = z.atan2(p * (1.0 - WGS84_E2 * n / (n + height)));
    }
    (GeoPoint::new(lat.to_degrees(), lon.to_degrees()), height)
}

/// Geodesic distance between two WGS84 points on the ellipsoid (Karney's method, via `geo`).
pub fn geodesic_distance_m(a: GeoPoint, b: GeoPoint) -> f64 {
    use geo::{Distance, Geodesic, Point};
    Geodesic.distance(Point::new(a.lon_deg, a.lat_deg), Point::new(b.lon_deg, b.lat_deg))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIGIN: GeoPoint = GeoPoint::new(22.55, 113.88);

    #[test]
    fn origin_maps_to_zero_and_back() {
        let frame = LocalFrame::new(ORIGIN);
        let local = frame.to_local(ORIGIN);
        assert!(local.east_m.abs() < 1e-9 && local.north_m.abs() < 1e-9);
        let back = frame.to_geo(LocalPoint::default());
        assert!((back.lat_deg - ORIGIN.lat_deg).abs() < 1e-12);
    }

    #[test]
    fn round_trip_over_20_km_is_sub_millimetre() {
        let frame = LocalFrame::new(ORIGIN);
        for (e, n) in [(20_000.0, 0.0), (0.0, -20_000.0), (-14_000.0, 14_000.0), (123.4, 5.6)] {
            let geo = frame.to_geo(LocalPoint::new(e, n));
            let local = frame.to_local(geo);
            assert!((local.east_m - e).abs() < 1e-3, "east {e} -> {}", local.east_m);
            assert!((local.north_m - n).abs() < 1e-3, "north {n} -> {}", local.north_m);
        }
    }

    #[test]
    fn plane_distances_match_geodesic_within_half_a_metre_over_20_km() {
        let frame = LocalFrame::new(ORIGIN);
        let points = [
            GeoPoint::new(22.55, 113.88 + 0.1945),        // ~20 km east
            GeoPoint::new(22.55 + 0.1806, 113.88),        // ~20 km north
            GeoPoint::new(22.55 - 0.127, 113.88 - 0.138), // ~20 km south-west
            GeoPoint::new(22.56, 113.89),
        ];
        for a in points {
            for b in points.iter().copied().chain([ORIGIN]) {
                let plane = frame.to_local(a).distance_to(&frame.to_local(b));
                let geodesic = geodesic_distance_m(a, b);
                assert!((plane - geodesic).abs() < 0.5, "{a:?} -> {b:?}: plane {plane} vs geodesic {geodesic}");
            }
        }
    }

    #[test]
    fn one_degree_of_latitude_is_about_110_7_km_here() {
        // Known value: at 22.5 N one degree of latitude spans 110 757 m on WGS84.
        let d = geodesic_distance_m(GeoPoint::new(22.0, 113.88), GeoPoint::new(23.0, 113.88));
        assert!((d - 110_757.0).abs() < 30.0, "{d}");
        let frame = LocalFrame::new(ORIGIN);
        let north = frame.to_local(GeoPoint::new(22.56, 113.88)).north_m;
        assert!((north - 1107.6).abs() < 0.5, "{north}");
    }

    #[test]
    fn e7_round_trip() {
        let p = GeoPoint::new(22.553_456_7, 113.881_234_5);
        let q = GeoPoint::from_e7(p.lat_e7(), p.lon_e7());
        assert!((p.lat_deg - q.lat_deg).abs() < 1e-7 && (p.lon_deg - q.lon_deg).abs() < 1e-7);
    }
}
