//! Geofence zones built from an uploaded FENCE list, and the breach test.
//!
//! Polygon vertices come in runs: each `NAV_FENCE_POLYGON_VERTEX_*` item's param1 is the vertex count of its
//! polygon. Circles carry the radius in param1. The vehicle must stay inside at least one inclusion zone (when
//! there are any) and outside every exclusion zone.

use mavlink::dialects::ardupilotmega::{MISSION_ITEM_INT_DATA, MavCmd};
use mission_planner::geo::{GeoPoint, LocalFrame, LocalPoint};

#[derive(Debug, Clone, PartialEq)]
enum Shape {
    Polygon(Vec<LocalPoint>),
    Circle { centre: LocalPoint, radius_m: f64 },
}

impl Shape {
    fn contains(&self, p: LocalPoint) -> bool {
        match self {
            Shape::Circle { centre, radius_m } => centre.distance_to(&p) <= *radius_m,
            Shape::Polygon(vertices) => {
                // Even-odd ray casting.
                let mut inside = false;
                let n = vertices.len();
                for i in 0..n {
                    let (a, b) = (vertices[i], vertices[(i + n - 1) % n]);
                    if (a.north_m > p.north_m) != (b.north_m > p.north_m) {
                        let t = (p.north_m - a.north_m) / (b.north_m - a.north_m);
                        if p.east_m < a.east_m + t * (b.east_m - a.east_m) {
                            inside = !inside;
                        }
                    }
                }
                inside
            }
        }
    }
}

/// The zones of an uploaded fence, in a drone's home frame.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Fence {
    inclusions: Vec<Shape>,
    exclusions: Vec<Shape>,
}

impl Fence {
    /// Builds the zones from FENCE items; malformed runs (a polygon with fewer than 3 vertices) are skipped.
    pub(crate) fn from_items(items: &[MISSION_ITEM_INT_DATA], frame: &LocalFrame) -> Self {
        let mut fence = Fence::default();
        let local = |item: &MISSION_ITEM_INT_DATA| frame.to_local(GeoPoint::from_e7(item.x, item.y));
        let mut i = 0;
        while i < items.len() {
            let item = &items[i];
            match item.command {
                MavCmd::MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION
                | MavCmd::MAV_CMD_NAV_FENCE_POLYGON_VERTEX_EXCLUSION => {
                    // Vertex counts are small whole numbers.
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    let count = (item.param1.max(0.0) as usize).max(1);
                    let run: Vec<_> = items[i..].iter().take(count).take_while(|v| v.command == item.command).collect();
                    if run.len() >= 3 {
                        let shape = Shape::Polygon(run.iter().map(|v| local(v)).collect());
                        if item.command == MavCmd::MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION {
                            fence.inclusions.push(shape);
                        } else {
                            fence.exclusions.push(shape);
                        }
                    }
                    i += run.len().max(1);
                }
                MavCmd::MAV_CMD_NAV_FENCE_CIRCLE_INCLUSION | MavCmd::MAV_CMD_NAV_FENCE_CIRCLE_EXCLUSION => {
                    let shape = Shape::Circle { centre: local(item), radius_m: f64::from(item.param1) };
                    if item.command == MavCmd::MAV_CMD_NAV_FENCE_CIRCLE_INCLUSION {
                        fence.inclusions.push(shape);
                    } else {
                        fence.exclusions.push(shape);
                    }
                    i += 1;
                }
                _ => i += 1,
            }
        }
        fence
    }

    /// Whether there is anything to enforce.
    pub(crate) fn is_empty(&self) -> bool {
        self.inclusions.is_empty() && self.exclusions.is_empty()
    }

    /// Whether `p` breaches the fence.
    pub(crate) fn breached(&self, p: LocalPoint) -> bool {
        let outside_inclusions = !self.inclusions.is_empty() && !self.inclusions.iter().any(|s| s.contains(p));
        outside_inclusions || self.exclusions.iter().any(|s| s.contains(p))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vertex(cmd: MavCmd, count: f32, p: GeoPoint) -> MISSION_ITEM_INT_DATA {
        MISSION_ITEM_INT_DATA { command: cmd, param1: count, x: p.lat_e7(), y: p.lon_e7(), ..Default::default() }
    }

    #[test]
    fn inclusion_square_and_exclusion_circle() {
        let home = GeoPoint::new(22.55, 113.88);
        let frame = LocalFrame::new(home);
        let g = |e, n| frame.to_geo(LocalPoint::new(e, n));
        let inc = MavCmd::MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION;
        let mut items: Vec<_> = [(-100.0, -100.0), (100.0, -100.0), (100.0, 100.0), (-100.0, 100.0)]
            .iter()
            .map(|&(e, n)| vertex(inc, 4.0, g(e, n)))
            .collect();
        let mut circle = vertex(MavCmd::MAV_CMD_NAV_FENCE_CIRCLE_EXCLUSION, 20.0, g(50.0, 50.0));
        circle.param1 = 20.0;
        items.push(circle);
        let fence = Fence::from_items(&items, &frame);
        assert!(!fence.is_empty());
        assert!(!fence.breached(LocalPoint::new(0.0, 0.0)));
        assert!(fence.breached(LocalPoint::new(150.0, 0.0)));
        assert!(fence.breached(LocalPoint::new(55.0, 45.0)));
        assert!(!fence.breached(LocalPoint::new(-50.0, -50.0)));
    }

    #[test]
    fn a_two_vertex_polygon_is_ignored() {
        let frame = LocalFrame::new(GeoPoint::new(0.0, 0.0));
        let inc = MavCmd::MAV_CMD_NAV_FENCE_POLYGON_VERTEX_INCLUSION;
        let items = vec![vertex(inc, 2.0, GeoPoint::new(0.0, 0.0)), vertex(inc, 2.0, GeoPoint::new(0.001, 0.0))];
        assert!(Fence::from_items(&items, &frame).is_empty());
    }
}
