//! Coverage of one region by boustrophedon passes, in a local frame.
//!
//! The region (a cell minus the grown no-fly zones, concave and with holes allowed) is swept by parallel
//! strips one line spacing wide. Each strip becomes the x-extent of the region inside it (exact, by slabs
//! between the vertices, so slanted and concave edges are covered), clipped against the airspace; a strip that
//! the region or a zone splits gives several passes, and the legs between them are routed later. The sweep
//! angle is searched (every 10 degrees and every edge direction) for the least flight time. Spacing and trigger
//! distance follow QGroundControl's `CameraCalc`: footprint x (1 - overlap), the image's long side across track.

use geo::{BoundingRect, Coord, CoordsIter, MultiPolygon};

use crate::camera::Intrinsics;
use crate::error::PlanError;
use crate::mission::FlightModel;
use crate::routing::{Airspace, distance};

/// The survey geometry that a camera, a height and the overlaps give.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SurveyGeometry {
    /// Flight height above ground, metres.
    pub altitude_m: f64,
    /// Ground sample distance at that height, metres per pixel.
    pub gsd_m: f64,
    /// Photo footprint across track (image width), metres.
    pub footprint_across_m: f64,
    /// Photo footprint along track (image height), metres.
    pub footprint_along_m: f64,
    /// Distance between neighbouring passes, metres.
    pub spacing_m: f64,
    /// Distance flown between two photos, metres.
    pub trigger_distance_m: f64,
}

impl SurveyGeometry {
    /// The geometry for `intrinsics` at `altitude_m` with front and side overlaps as fractions (0.75 = 75 %).
    ///
    /// # Errors
    /// [`PlanError::InvalidParameter`] for a non-positive height, a front overlap outside [0.5, 0.95] (below
    /// one half the last photo of a pass may miss the pass's end) or a side overlap outside [0, 0.95].
    pub fn new(
        intrinsics: &Intrinsics,
        altitude_m: f64,
        front_overlap: f64,
        side_overlap: f64,
    ) -> Result<Self, PlanError> {
        if !(altitude_m.is_finite() && altitude_m > 0.0) {
            return Err(PlanError::parameter("altitude", format!("must be above 0 m, got {altitude_m}")));
        }
        if !(0.5..=0.95).contains(&front_overlap) {
            return Err(PlanError::parameter(
                "front_overlap",
                format!("must be between 0.5 and 0.95 (50 % to 95 %), got {front_overlap}"),
            ));
        }
        if !(0.0..=0.95).contains(&side_overlap) {
            return Err(PlanError::parameter(
                "side_overlap",
                format!("must be between 0 and 0.95 (0 % to 95 %), got {side_overlap}"),
            ));
        }
        let (across, along) = intrinsics.footprint_m(altitude_m);
        Ok(Self {
            altitude_m,
            gsd_m: intrinsics.gsd_m(altitude_m),
            footprint_across_m: across,
            footprint_along_m: along,
            spacing_m: across * (1.0 - side_overlap),
            trigger_distance_m: along * (1.0 - front_overlap),
        })
    }

    /// Area of one photo footprint, square metres.
    pub fn footprint_area_m2(&self) -> f64 {
        self.footprint_across_m * self.footprint_along_m
    }
}

/// One straight photo pass. The camera triggers from `start` to `end`; `entry` and `exit` are the turnaround
/// points before and after it (equal to `start`/`end` when there is no turnaround).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Pass {
    /// Where the drone lines up.
    pub entry: Coord<f64>,
    /// First photo.
    pub start: Coord<f64>,
    /// Last photo (at or before this point).
    pub end: Coord<f64>,
    /// Where the drone turns after the pass.
    pub exit: Coord<f64>,
}

impl Pass {
    /// The positions of the photos taken every `trigger_distance_m` from `start` (one at `start`, the last
    /// within `trigger_distance_m` of `end`).
    pub fn photo_points(&self, trigger_distance_m: f64) -> Vec<Coord<f64>> {
        let len = distance(self.start, self.end);
        if len < 1e-9 || trigger_distance_m <= 0.0 {
            return vec![self.start];
        }
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // non-negative, small
        let count = (len / trigger_distance_m + 1e-9).floor() as usize + 1;
        (0..count)
            .map(|k| {
                #[allow(clippy::cast_precision_loss)]
                let t = (k as f64 * trigger_distance_m / len).min(1.0);
                Coord {
                    x: self.start.x + (self.end.x - self.start.x) * t,
                    y: self.start.y + (self.end.y - self.start.y) * t,
                }
            })
            .collect()
    }

    /// Heading of the pass, degrees clockwise from north (x = east, y = north).
    pub fn heading_deg(&self) -> f64 {
        let h = (self.end.x - self.start.x).atan2(self.end.y - self.start.y).to_degrees();
        if h < 0.0 { h + 360.0 } else { h }
    }

    /// The waypoints the drone flies for this pass (turnaround points only where they differ).
    pub fn waypoints(&self) -> Vec<Coord<f64>> {
        let mut out = Vec::with_capacity(4);
        if distance(self.entry, self.start) > 1e-6 {
            out.push(self.entry);
        }
        out.push(self.start);
        if distance(self.start, self.end) > 1e-6 {
            out.push(self.end);
        }
        if distance(self.end, self.exit) > 1e-6 {
            out.push(self.exit);
        }
        out
    }

    /// Distance flown from `entry` to `exit`.
    pub fn length_m(&self) -> f64 {
        distance(self.entry, self.start) + distance(self.start, self.end) + distance(self.end, self.exit)
    }
}

/// Which corner a sweep starts from: the first or last strip, flown forwards or backwards.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EntryCorner {
    /// Start with the last strip instead of the first.
    pub last_strip_first: bool,
    /// Fly the first strip against the sweep direction.
    pub reversed: bool,
}

impl EntryCorner {
    /// The four corners.
    pub const ALL: [EntryCorner; 4] = [
        EntryCorner { last_strip_first: false, reversed: false },
        EntryCorner { last_strip_first: false, reversed: true },
        EntryCorner { last_strip_first: true, reversed: false },
        EntryCorner { last_strip_first: true, reversed: true },
    ];
}

/// The free pieces of one strip.
type Row = Vec<(Coord<f64>, Coord<f64>)>;

/// A region's sweep: the chosen angle and the free pieces of each strip.
#[derive(Debug, Clone, PartialEq)]
pub struct Sweep {
    /// Direction of the passes, degrees counter-clockwise from east, in [0, 180).
    pub angle_deg: f64,
    /// For each strip, its pieces in sweep direction order, each from its low to its high end.
    rows: Vec<Row>,
    turnaround_m: f64,
}

impl Sweep {
    /// Number of passes.
    pub fn pass_count(&self) -> usize {
        self.rows.iter().map(Vec::len).sum()
    }

    /// The passes in flying order from `corner`, with turnarounds where the airspace allows them.
    pub fn passes(&self, corner: EntryCorner, airspace: &Airspace) -> Vec<Pass> {
        let mut out = Vec::with_capacity(self.pass_count());
        let mut rows: Vec<&Row> = self.rows.iter().collect();
        if corner.last_strip_first {
            rows.reverse();
        }
        let mut backwards = corner.reversed;
        for row in rows.into_iter().filter(|r| !r.is_empty()) {
            let pieces: Vec<(Coord<f64>, Coord<f64>)> =
                if backwards { row.iter().rev().map(|&(a, b)| (b, a)).collect() } else { row.clone() };
            for (start, end) in pieces {
                out.push(self.with_turnarounds(start, end, airspace));
            }
            backwards = !backwards;
        }
        out
    }

    fn with_turnarounds(&self, start: Coord<f64>, end: Coord<f64>, airspace: &Airspace) -> Pass {
        let len = distance(start, end);
        if self.turnaround_m <= 0.0 || len < 1e-9 {
            return Pass { entry: start, start, end, exit: end };
        }
        let (ux, uy) = ((end.x - start.x) / len, (end.y - start.y) / len);
        let t = self.turnaround_m;
        let entry = Coord { x: start.x - ux * t, y: start.y - uy * t };
        let exit = Coord { x: end.x + ux * t, y: end.y + uy * t };
        Pass {
            entry: if airspace.segment_free(entry, start) { entry } else { start },
            start,
            end,
            exit: if airspace.segment_free(end, exit) { exit } else { end },
        }
    }
}

/// Rotates (x, y) by -angle so that the sweep direction becomes the x axis.
fn rotate(c: Coord<f64>, sin: f64, cos: f64) -> Coord<f64> {
    Coord { x: c.x * cos + c.y * sin, y: -c.x * sin + c.y * cos }
}

fn unrotate(c: Coord<f64>, sin: f64, cos: f64) -> Coord<f64> {
    Coord { x: c.x * cos - c.y * sin, y: c.x * sin + c.y * cos }
}

/// Edges of every ring of `region` rotated by -angle, each with its lower end first; horizontal edges dropped.
fn rotated_edges(region: &MultiPolygon<f64>, sin: f64, cos: f64) -> Vec<(Coord<f64>, Coord<f64>)> {
    let mut edges = Vec::new();
    for polygon in region {
        for ring in std::iter::once(polygon.exterior()).chain(polygon.interiors()) {
            for line in ring.lines() {
                let (a, b) = (rotate(line.start, sin, cos), rotate(line.end, sin, cos));
                if (a.y - b.y).abs() < 1e-12 {
                    continue;
                }
                edges.push(if a.y < b.y { (a, b) } else { (b, a) });
            }
        }
    }
    edges
}

fn x_at(edge: &(Coord<f64>, Coord<f64>), y: f64) -> f64 {
    let (a, b) = edge;
    a.x + (b.x - a.x) * ((y - a.y) / (b.y - a.y))
}

/// The x-extents of the (rotated) region inside the strip `y0..y1`, merged where they overlap.
fn strip_intervals(edges: &[(Coord<f64>, Coord<f64>)], y0: f64, y1: f64) -> Vec<(f64, f64)> {
    let mut levels = vec![y0, y1];
    for (a, b) in edges {
        for y in [a.y, b.y] {
            if y > y0 && y < y1 {
                levels.push(y);
            }
        }
    }
    levels.sort_by(f64::total_cmp);
    levels.dedup_by(|x, y| (*x - *y).abs() < 1e-9);
    let mut intervals: Vec<(f64, f64)> = Vec::new();
    let mut crossing: Vec<(f64, f64, f64)> = Vec::new();
    for w in levels.windows(2) {
        let (ya, yb) = (w[0], w[1]);
        let ym = (ya + yb) / 2.0;
        crossing.clear();
        for e in edges {
            if e.0.y <= ym && e.1.y >= ym {
                crossing.push((x_at(e, ym), x_at(e, ya.max(e.0.y)), x_at(e, yb.min(e.1.y))));
            }
        }
        crossing.sort_by(|p, q| p.0.total_cmp(&q.0));
        for pair in crossing.chunks_exact(2) {
            let lo = pair[0].1.min(pair[0].2);
            let hi = pair[1].1.max(pair[1].2);
            intervals.push((lo.min(hi), hi.max(lo)));
        }
    }
    intervals.sort_by(|p, q| p.0.total_cmp(&q.0));
    let mut merged: Vec<(f64, f64)> = Vec::with_capacity(intervals.len());
    for (lo, hi) in intervals {
        match merged.last_mut() {
            Some(last) if lo <= last.1 + 1e-6 => last.1 = last.1.max(hi),
            _ => merged.push((lo, hi)),
        }
    }
    merged
}

/// Strips (y ranges of at most `spacing_m`) and their intervals for one angle.
struct Strips {
    sin: f64,
    cos: f64,
    rows: Vec<(f64, Vec<(f64, f64)>)>,
    width_m: f64,
}

fn strips(region: &MultiPolygon<f64>, angle_rad: f64, spacing_m: f64) -> Option<Strips> {
    let (sin, cos) = angle_rad.sin_cos();
    let edges = rotated_edges(region, sin, cos);
    let (mut y_min, mut y_max) = (f64::INFINITY, f64::NEG_INFINITY);
    for c in region.coords_iter() {
        let y = rotate(c, sin, cos).y;
        y_min = y_min.min(y);
        y_max = y_max.max(y);
    }
    let height = y_max - y_min;
    if !height.is_finite() || height <= 1e-9 || spacing_m <= 0.0 {
        return None;
    }
    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)] // positive, bounded by the area's size
    let n = (height / spacing_m - 1e-9).ceil().max(1.0) as usize;
    #[allow(clippy::cast_precision_loss)]
    let width_m = height / n as f64;
    let rows = (0..n)
        .map(|i| {
            #[allow(clippy::cast_precision_loss)]
            let y0 = y_min + width_m * i as f64;
            (y0 + width_m / 2.0, strip_intervals(&edges, y0, y0 + width_m))
        })
        .collect();
    Some(Strips { sin, cos, rows, width_m })
}

fn strips_time_s(s: &Strips, turnaround_m: f64, flight: &FlightModel) -> f64 {
    let mut distance_m = 0.0;
    let mut waypoints = 0.0;
    let mut rows = 0.0;
    for (_, intervals) in &s.rows {
        if intervals.is_empty() {
            continue;
        }
        rows += 1.0;
        for w in intervals.windows(2) {
            distance_m += w[1].0 - w[0].1;
        }
        for (lo, hi) in intervals {
            distance_m += hi - lo + 2.0 * turnaround_m;
            waypoints += if turnaround_m > 0.0 { 4.0 } else { 2.0 };
        }
    }
    distance_m += (rows - 1.0_f64).max(0.0) * s.width_m;
    distance_m / flight.cruise_speed_mps + waypoints * flight.waypoint_penalty_s
}

fn candidate_angles(region: &MultiPolygon<f64>) -> Vec<f64> {
    let mut angles: Vec<f64> = (0..18).map(|i| f64::from(i) * 10.0).collect();
    let mut edges: Vec<(f64, f64)> = Vec::new();
    for polygon in region {
        for line in polygon.exterior().lines() {
            let (dx, dy) = (line.end.x - line.start.x, line.end.y - line.start.y);
            let len = dx.hypot(dy);
            if len > 1e-6 {
                edges.push((len, dy.atan2(dx).to_degrees().rem_euclid(180.0)));
            }
        }
    }
    edges.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.total_cmp(&b.1)));
    angles.extend(edges.iter().take(12).map(|e| e.1));
    angles.sort_by(f64::total_cmp);
    angles.dedup_by(|a, b| (*a - *b).abs() < 0.5);
    angles
}

/// Sweeps `region` (local metres) with passes `survey.spacing_m` apart at the angle that minimises flight
/// time, clipped to the free `airspace`. `None` when the region is degenerate or no free pass remains.
pub fn sweep(
    region: &MultiPolygon<f64>,
    survey: &SurveyGeometry,
    airspace: &Airspace,
    flight: &FlightModel,
    turnaround_m: f64,
) -> Option<Sweep> {
    region.bounding_rect()?;
    let mut best: Option<(f64, f64, Strips)> = None;
    for angle_deg in candidate_angles(region) {
        let Some(s) = strips(region, angle_deg.to_radians(), survey.spacing_m) else { continue };
        let time = strips_time_s(&s, turnaround_m, flight);
        if best.as_ref().is_none_or(|(t, _, _)| time < *t - 1e-9) {
            best = Some((time, angle_deg, s));
        }
    }
    let (_, angle_deg, s) = best?;
    let rows: Vec<Vec<(Coord<f64>, Coord<f64>)>> = s
        .rows
        .iter()
        .map(|(y, intervals)| {
            intervals
                .iter()
                .flat_map(|&(lo, hi)| {
                    let a = unrotate(Coord { x: lo, y: *y }, s.sin, s.cos);
                    let b = unrotate(Coord { x: hi, y: *y }, s.sin, s.cos);
                    airspace.free_pieces(a, b, 0.5)
                })
                .collect()
        })
        .collect();
    let sweep = Sweep { angle_deg, rows, turnaround_m };
    (sweep.pass_count() > 0).then_some(sweep)
}

#[cfg(test)]
mod tests {
    use geo::{LineString, Polygon, polygon};

    use super::*;

    fn survey() -> SurveyGeometry {
        SurveyGeometry {
            altitude_m: 100.0,
            gsd_m: 0.03,
            footprint_across_m: 60.0,
            footprint_along_m: 45.0,
            spacing_m: 20.0,
            trigger_distance_m: 10.0,
        }
    }

    #[test]
    fn camera_calc_matches_qgc() {
        // QGC CameraCalc: footprint side = image width * GSD; spacing = side * (1 - overlap).
        let spec = crate::camera::CameraSpec {
            name: "Mavic 3E".into(),
            image_width_px: 5280,
            image_height_px: 3956,
            sensor_width_mm: Some(17.3),
            sensor_height_mm: Some(13.0),
            focal_length_mm: Some(12.29),
            horizontal_fov_deg: None,
            min_trigger_interval_s: 0.7,
        };
        let intr = spec.intrinsics().unwrap();
        let g = SurveyGeometry::new(&intr, 100.0, 0.8, 0.7).unwrap();
        let gsd = 17.3 * 100.0 / (12.29 * 5280.0);
        assert!((g.gsd_m - gsd).abs() < 1e-9);
        assert!((g.footprint_across_m - 5280.0 * gsd).abs() < 1e-6);
        assert!((g.spacing_m - 5280.0 * gsd * 0.3).abs() < 1e-6);
        let along = 3956.0 * 13.0 * 100.0 / (12.29 * 3956.0);
        assert!((g.trigger_distance_m - along * 0.2).abs() < 1e-6);
        assert!(SurveyGeometry::new(&intr, 100.0, 0.3, 0.7).is_err());
    }

    #[test]
    fn rectangle_is_swept_along_its_long_side() {
        let region = MultiPolygon::new(vec![
            polygon![(x: 0.0, y: 0.0), (x: 400.0, y: 0.0), (x: 400.0, y: 100.0), (x: 0.0, y: 100.0)],
        ]);
        let air = Airspace::new(&[], 0.0, None);
        let s = sweep(&region, &survey(), &air, &FlightModel::default(), 0.0).unwrap();
        assert!(s.angle_deg.abs() < 1e-9, "{}", s.angle_deg);
        assert_eq!(s.pass_count(), 5);
        let passes = s.passes(EntryCorner::ALL[0], &air);
        // Boustrophedon: alternate directions.
        assert!(passes[0].end.x > passes[0].start.x && passes[1].end.x < passes[1].start.x);
    }

    #[test]
    fn concave_u_gives_two_passes_per_strip_in_the_arms() {
        let u = Polygon::new(
            LineString::from(vec![
                (0.0, 0.0),
                (300.0, 0.0),
                (300.0, 300.0),
                (200.0, 300.0),
                (200.0, 100.0),
                (100.0, 100.0),
                (100.0, 300.0),
                (0.0, 300.0),
                (0.0, 0.0),
            ]),
            vec![],
        );
        let region = MultiPolygon::new(vec![u]);
        let air = Airspace::new(&[], 0.0, None);
        // Forcing horizontal strips: those above y = 100 cross both arms.
        let s = strips(&region, 0.0, 20.0).unwrap();
        let top = s.rows.last().unwrap();
        assert_eq!(top.1.len(), 2, "{:?}", top.1);
        assert!((top.1[0].0 - 0.0).abs() < 1e-6 && (top.1[0].1 - 100.0).abs() < 1e-6);
        assert!(sweep(&region, &survey(), &air, &FlightModel::default(), 0.0).is_some());
    }

    #[test]
    fn slanted_edge_extent_covers_the_whole_strip() {
        // Triangle: the strip at the bottom reaches further than its centre line.
        let region = MultiPolygon::new(vec![polygon![(x: 0.0, y: 0.0), (x: 100.0, y: 0.0), (x: 0.0, y: 100.0)]]);
        let s = strips(&region, 0.0, 20.0).unwrap();
        let (_, first) = &s.rows[0];
        assert!((first[0].1 - 100.0).abs() < 1e-6, "{first:?}");
    }

    #[test]
    fn photo_points_are_spaced_by_the_trigger_distance() {
        let p = Pass {
            entry: Coord { x: -5.0, y: 0.0 },
            start: Coord { x: 0.0, y: 0.0 },
            end: Coord { x: 25.0, y: 0.0 },
            exit: Coord { x: 30.0, y: 0.0 },
        };
        let pts = p.photo_points(10.0);
        assert_eq!(pts.len(), 3);
        assert!((pts[2].x - 20.0).abs() < 1e-9);
        assert!((p.heading_deg() - 90.0).abs() < 1e-9);
        assert_eq!(p.waypoints().len(), 4);
    }
}
