//! Planning a large area: 500 cells over 50 km², 3 no-fly zones, 4 drones from 4 launch points (one per quadrant).
//! Target: under 1 s on one core (`cargo bench -p mission-planner --bench plan`).
#![allow(missing_docs)] // criterion's macros generate undocumented public functions

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use geo::{LineString, MultiPolygon, Polygon};
use mission_planner::area::{GridCell, LaunchPoint, NoFlyZone, ZoneShape};
use mission_planner::camera::CameraSpec;
use mission_planner::geo::{GeoPoint, LocalFrame, LocalPoint};
use mission_planner::patrol::{AltitudeTarget, PatrolRequest, plan_patrol};

fn polygon(frame: &LocalFrame, pts: &[(f64, f64)]) -> Polygon<f64> {
    let ring: Vec<(f64, f64)> = pts
        .iter()
        .chain(pts.first())
        .map(|&(e, n)| {
            let g = frame.to_geo(LocalPoint::new(e, n));
            (g.lon_deg, g.lat_deg)
        })
        .collect();
    Polygon::new(LineString::from(ring), vec![])
}

/// 25 x 20 cells of 316 m (50 km²); every seventh cell has a notch (concave), every eleventh is skewed.
fn request() -> PatrolRequest {
    let frame = LocalFrame::new(GeoPoint::new(22.58, 113.90));
    let size = 316.2;
    let mut cells = Vec::new();
    for j in 0..20 {
        for i in 0..25 {
            let (x, y) = (f64::from(i) * size - 12.5 * size, f64::from(j) * size - 10.0 * size);
            let k = j * 25 + i;
            let pts: Vec<(f64, f64)> = if k % 7 == 0 {
                vec![
                    (x, y),
                    (x + size, y),
                    (x + size, y + size),
                    (x + size * 0.6, y + size),
                    (x + size * 0.6, y + size * 0.5),
                    (x + size * 0.4, y + size * 0.5),
                    (x + size * 0.4, y + size),
                    (x, y + size),
                ]
            } else if k % 11 == 0 {
                vec![(x, y), (x + size, y + 20.0), (x + size, y + size), (x, y + size - 20.0)]
            } else {
                vec![(x, y), (x + size, y), (x + size, y + size), (x, y + size)]
            };
            cells.push(GridCell {
                id: format!("C{k:03}"),
                name: None,
                community: None,
                street: None,
                priority: None,
                demo: false,
                area: MultiPolygon::new(vec![polygon(&frame, &pts)]),
            });
        }
    }
    let camera = CameraSpec {
        name: "DJI Mavic 3E wide".into(),
        image_width_px: 5280,
        image_height_px: 3956,
        sensor_width_mm: Some(17.3),
        sensor_height_mm: Some(13.0),
        focal_length_mm: Some(12.29),
        horizontal_fov_deg: None,
        min_trigger_interval_s: 0.7,
    };
    let launch = |id: &str, e: f64, n: f64| LaunchPoint {
        id: id.into(),
        name: None,
        point: frame.to_geo(LocalPoint::new(e, n)),
    };
    let mut req = PatrolRequest::new(
        cells,
        vec![
            launch("SW", -2000.0, -1600.0),
            launch("SE", 2000.0, -1600.0),
            launch("NW", -1000.0, 2200.0),
            launch("NE", 2000.0, 1600.0),
        ],
        camera,
        AltitudeTarget::GroundSampleDistance(0.03),
    );
    req.drones = 4;
    req.zones = vec![
        NoFlyZone {
            id: "airport".into(),
            name: None,
            shape: ZoneShape::Polygon(MultiPolygon::new(vec![polygon(
                &frame,
                &[(-3950.0, 1000.0), (-1500.0, 1500.0), (-1800.0, 3200.0), (-3950.0, 3200.0)],
            )])),
        },
        NoFlyZone {
            id: "plant".into(),
            name: None,
            shape: ZoneShape::Circle { center: frame.to_geo(LocalPoint::new(1000.0, 0.0)), radius_m: 400.0 },
        },
        NoFlyZone {
            id: "prison".into(),
            name: None,
            shape: ZoneShape::Polygon(MultiPolygon::new(vec![polygon(
                &frame,
                &[(2500.0, -2000.0), (3300.0, -2000.0), (3300.0, -1200.0), (2900.0, -1500.0), (2500.0, -1200.0)],
            )])),
        },
    ];
    req
}

fn bench_plan(c: &mut Criterion) {
    let req = request();
    let plan = plan_patrol(&req).expect("the bench area plans");
    let totals = plan.totals();
    eprintln!(
        "500 cells: {} sorties, {:.0} km, {} photos, {} uncovered, done after {:.0} min",
        totals.sorties,
        totals.distance_m / 1000.0,
        totals.photos,
        plan.uncovered.len(),
        totals.finish_s / 60.0
    );
    let mut group = c.benchmark_group("plan");
    group.sample_size(10);
    group.bench_function("500_cells_50km2_3_zones_4_drones", |b| b.iter(|| plan_patrol(black_box(&req))));
    group.finish();
}

criterion_group!(benches, bench_plan);
criterion_main!(benches);
