//! Property tests on random cells with holes and random no-fly zones: no leg touches a zone, every coverable
//! cell is >= 99 % under photo footprints, sorties fit the battery, and the plan is deterministic.

use std::f64::consts::TAU;

use geo::{BoundingRect, Contains, Coord, Intersects, Line, LineString, MultiPolygon, Point, Polygon};
use mission_planner::area::{GridCell, LaunchPoint, NoFlyZone, ZoneShape};
use mission_planner::camera::CameraSpec;
use mission_planner::geo::{GeoPoint, LocalFrame, LocalPoint};
use mission_planner::mission::Battery;
use mission_planner::patrol::{AltitudeTarget, PatrolPlan, PatrolRequest, UncoveredReason, plan_patrol};
use proptest::prelude::*;

const ORIGIN: GeoPoint = GeoPoint::new(22.56, 113.90);

fn camera() -> CameraSpec {
    CameraSpec {
        name: "M3E".into(),
        image_width_px: 5280,
        image_height_px: 3956,
        sensor_width_mm: Some(17.3),
        sensor_height_mm: Some(13.0),
        focal_length_mm: Some(12.29),
        horizontal_fov_deg: None,
        min_trigger_interval_s: 0.0,
    }
}

/// A star-shaped ring around (cx, cy): `n` vertices at jittered, evenly spread angles.
fn star(cx: f64, cy: f64, radii: &[f64], jitter: &[f64], reverse: bool) -> Vec<(f64, f64)> {
    #[allow(clippy::cast_precision_loss)]
    let n = radii.len() as f64;
    let mut pts: Vec<(f64, f64)> = radii
        .iter()
        .zip(jitter)
        .enumerate()
        .map(|(k, (r, j))| {
            #[allow(clippy::cast_precision_loss)]
            let a = (k as f64 + j * 0.3) * TAU / n;
            (cx + r * a.cos(), cy + r * a.sin())
        })
        .collect();
    if reverse {
        pts.reverse();
    }
    pts
}

fn to_geo_ring(frame: &LocalFrame, pts: &[(f64, f64)]) -> LineString<f64> {
    LineString::from(
        pts.iter()
            .chain(pts.first())
            .map(|&(e, n)| {
                let g = frame.to_geo(LocalPoint::new(e, n));
                (g.lon_deg, g.lat_deg)
            })
            .collect::<Vec<_>>(),
    )
}

/// Radii and angle jitters of a star-shaped ring.
type Star = (Vec<f64>, Vec<f64>);

#[derive(Debug, Clone)]
struct Case {
    /// Exterior and optional hole of each cell.
    cells: Vec<(Vec<f64>, Vec<f64>, Option<Star>)>,
    zones: Vec<(f64, f64, f64, bool)>,
    endurance_s: f64,
}

fn case() -> impl Strategy<Value = Case> {
    let cell = (5usize..9).prop_flat_map(|n| {
        (
            prop::collection::vec(180.0..420.0f64, n),
            prop::collection::vec(-1.0..1.0f64, n),
            prop::option::of((prop::collection::vec(25.0..70.0f64, 5), prop::collection::vec(-1.0..1.0f64, 5))),
        )
    });
    (
        prop::collection::vec(cell, 1..4),
        prop::collection::vec((-300.0..2100.0f64, -400.0..400.0f64, 40.0..220.0f64, any::<bool>()), 0..3),
        600.0..1800.0f64,
    )
        .prop_map(|(cells, zones, endurance_s)| Case { cells, zones, endurance_s })
}

fn request(case: &Case) -> PatrolRequest {
    let frame = LocalFrame::new(ORIGIN);
    let cells = case
        .cells
        .iter()
        .enumerate()
        .map(|(i, (radii, jitter, hole))| {
            #[allow(clippy::cast_precision_loss)]
            let cx = i as f64 * 900.0;
            let exterior = to_geo_ring(&frame, &star(cx, 0.0, radii, jitter, false));
            let holes = hole.iter().map(|(r, j)| to_geo_ring(&frame, &star(cx, 0.0, r, j, true))).collect();
            GridCell {
                id: format!("cell-{i}"),
                name: None,
                community: None,
                street: None,
                priority: None,
                demo: false,
                area: MultiPolygon::new(vec![Polygon::new(exterior, holes)]),
            }
        })
        .collect();
    let zones = case
        .zones
        .iter()
        .enumerate()
        .map(|(i, &(x, y, r, circle))| NoFlyZone {
            id: format!("zone-{i}"),
            name: None,
            shape: if circle {
                ZoneShape::Circle { center: frame.to_geo(LocalPoint::new(x, y)), radius_m: r }
            } else {
                // A rotated square.
                let pts: Vec<(f64, f64)> = (0..4)
                    .map(|k| {
                        (x + r * (0.4 + f64::from(k) * TAU / 4.0).cos(), y + r * (0.4 + f64::from(k) * TAU / 4.0).sin())
                    })
                    .collect();
                ZoneShape::Polygon(MultiPolygon::new(vec![Polygon::new(to_geo_ring(&frame, &pts), vec![])]))
            },
        })
        .collect();
    let launch = LaunchPoint { id: "L".into(), name: None, point: frame.to_geo(LocalPoint::new(-700.0, -700.0)) };
    let mut req = PatrolRequest::new(cells, vec![launch], camera(), AltitudeTarget::GroundSampleDistance(0.025));
    req.zones = zones;
    req.drones = 2;
    req.battery = Battery { endurance_s: case.endurance_s, reserve_fraction: 0.2 };
    req
}

/// Fraction of `region` (local metres) under at least one photo footprint of the cell, on a sampling grid.
fn coverage(plan: &PatrolPlan, cell: usize, region: &MultiPolygon<f64>) -> f64 {
    let Some(rect) = region.bounding_rect() else { return 1.0 };
    let (w, h) = (plan.survey.footprint_across_m / 2.0, plan.survey.footprint_along_m / 2.0);
    let photos: Vec<(Coord<f64>, f64, f64)> = plan
        .sorties
        .iter()
        .flat_map(|s| s.photos.iter())
        .filter(|p| p.cell == cell)
        .map(|p| {
            let l = plan.frame.to_local(p.point);
            let hd = p.heading_deg.to_radians();
            (Coord { x: l.east_m, y: l.north_m }, hd.sin(), hd.cos())
        })
        .collect();
    let step = 6.0;
    let (mut inside, mut covered) = (0usize, 0usize);
    let mut y = rect.min().y + step / 2.0;
    while y < rect.max().y {
        let mut x = rect.min().x + step / 2.0;
        while x < rect.max().x {
            if region.contains(&Point::new(x, y)) {
                inside += 1;
                let hit = photos.iter().any(|(c, s, co)| {
                    let (dx, dy) = (x - c.x, y - c.y);
                    // Along = heading direction (sin, cos); across = (cos, -sin).
                    let along = dx * s + dy * co;
                    let across = dx * co - dy * s;
                    along.abs() <= h && across.abs() <= w
                });
                covered += usize::from(hit);
            }
            x += step;
        }
        y += step;
    }
    #[allow(clippy::cast_precision_loss)]
    if inside == 0 { 1.0 } else { covered as f64 / inside as f64 }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 16, ..ProptestConfig::default() })]

    #[test]
    fn plans_are_safe_complete_within_battery_and_deterministic(case in case()) {
        let req = request(&case);
        let plan = match plan_patrol(&req) {
            Ok(plan) => plan,
            // The launch point may fall inside a random zone: that is a clear error, not a plan.
            Err(e) => { prop_assert!(e.to_string().contains("launch point"), "{e}"); return Ok(()); }
        };
        let zones: Vec<MultiPolygon<f64>> = req.zones.iter().map(|z| z.shape.to_local(&plan.frame)).collect();
        let limits = req.limits();
        for s in &plan.sorties {
            prop_assert!(s.flight_time_s <= req.battery.budget_s(), "sortie {} s over {} s", s.flight_time_s, req.battery.budget_s());
            let v = s.mission.validate(&limits);
            prop_assert!(v.is_empty(), "{:?}", v.iter().map(ToString::to_string).collect::<Vec<_>>());
            // And independently of `validate`: no leg of the flown route touches a zone.
            let pts: Vec<Coord<f64>> = s.route.iter().map(|g| { let l = plan.frame.to_local(*g); Coord { x: l.east_m, y: l.north_m } }).collect();
            for w in pts.windows(2) {
                let leg = Line::new(w[0], w[1]);
                prop_assert!(!zones.iter().any(|z| z.intersects(&leg)), "leg {:?} enters a zone", leg);
            }
        }
        for c in &plan.covered {
            if plan.uncovered.iter().any(|u| u.id == c.id && u.reason == UncoveredReason::BeyondBatteryRange) {
                continue;
            }
            let f = coverage(&plan, c.index, &c.region_local);
            prop_assert!(f >= 0.99, "cell {} only {:.3} covered", c.id, f);
        }
        // Every cell is either covered or reported.
        for cell in &req.cells {
            prop_assert!(plan.covered.iter().any(|c| c.id == cell.id) || plan.uncovered.iter().any(|u| u.id == cell.id));
        }
        prop_assert_eq!(plan_patrol(&req).unwrap(), plan);
    }
}
